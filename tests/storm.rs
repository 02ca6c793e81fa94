//! Reconnect storms: every subscriber connection dropped at one instant,
//! by the clients themselves or by the reference server. Transports that
//! resume (SSE with Last-Event-ID, long-poll and poll with a cursor) lose
//! nothing, and every client's reconnect time is measured from the drop.

mod support;

use stampede::shutdown::Shutdown;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_storm_loses_nothing_on_resumable_transports() {
    let target = InProcess::start().await;
    let mut p = plan(
        "name = \"storm\"\nduration = \"3s\"\nwarmup = \"500ms\"\nmode = \"concurrent\"\n\
         [publisher]\nrate = 100\n\
         [storm]\nat = \"1500ms\"\n\
         [[groups]]\ntransport = \"sse\"\nclients = 10\nreconnect = { backoff = \"200ms\", jitter = 0.5 }\n\
         [[groups]]\ntransport = \"long-poll\"\nclients = 10\nreconnect = { backoff = \"200ms\", jitter = 0.5 }\n\
         [[groups]]\ntransport = \"poll\"\nclients = 10\ninterval = \"200ms\"\nreconnect = { backoff = \"200ms\", jitter = 0.5 }\n",
    );
    target.aim(&mut p);
    let dir = TempDir::new("storm-client");
    let out = run_plan(p, dir.path(), Shutdown::new()).await;
    target.stop().await;

    for g in ["sse", "long-poll", "poll"] {
        let r = row(&out.rows, g);
        assert_eq!(r.lost, Some(0), "{g} resumes from its cursor");
        assert_eq!(r.storm_reconnected, Some(10), "{g}: every client came back");
        assert_eq!(
            r.storm_receiving,
            Some(10),
            "{g}: every client receives again"
        );
        let p50 = r.storm_reconnect_p50_ms.unwrap();
        let p99 = r.storm_reconnect_p99_ms.unwrap();
        // Backoff 100–200 ms (jitter 0.5), plus a local connect.
        assert!((90.0..=1000.0).contains(&p50), "{g}: p50 {p50}");
        assert!(p99 >= p50, "{g}");
        let all = r.storm_all_receiving_s.unwrap();
        // `all` is rounded to the millisecond.
        assert!(
            all * 1000.0 + 1.0 >= p99 && all < 2.0,
            "{g}: all receiving {all}"
        );
    }
    let ts = stampede::report::timeseries::read(dir.path()).unwrap();
    assert_eq!(
        ts.iter()
            .filter(|t| t.stage.as_deref() == Some("storm"))
            .count(),
        3,
        "one storm interval per group"
    );
    let info = stampede::report::run_json::RunInfo::read(dir.path()).unwrap();
    let storm = info.phases[0].storm.as_ref().expect("run.json storm");
    assert_eq!(storm.via, "client");
    assert_eq!(storm.groups.len(), 3);
    assert!(storm.groups.iter().all(|g| g.reconnect_p99_ms.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_side_storm_ends_streams_and_sse_resumes() {
    let target = InProcess::start().await;
    let mut p = plan(
        "name = \"storm\"\nduration = \"3s\"\nwarmup = \"500ms\"\nmode = \"concurrent\"\n\
         [publisher]\nrate = 100\n\
         [storm]\nat = \"1500ms\"\nvia = \"target\"\n\
         [[groups]]\ntransport = \"sse\"\nclients = 10\nreconnect = { backoff = \"200ms\" }\n\
         [[groups]]\ntransport = \"long-poll\"\nclients = 5\n",
    );
    target.aim(&mut p);
    let dir = TempDir::new("storm-target");
    let out = run_plan(p, dir.path(), Shutdown::new()).await;
    target.stop().await;

    let sse = row(&out.rows, "sse");
    assert_eq!(sse.lost, Some(0));
    assert_eq!(sse.reconnects, 10);
    assert_eq!(sse.storm_reconnected, Some(10));
    assert!(sse.storm_reconnect_p50_ms.unwrap() >= 190.0);
    // The target's drop ends streams only: long-pollers keep their
    // connections, so they have nothing to reconnect from.
    let lp = row(&out.rows, "long-poll");
    assert_eq!(lp.lost, Some(0));
    assert_eq!(lp.storm_reconnected, None);
    let info = stampede::report::run_json::RunInfo::read(dir.path()).unwrap();
    let storm = info.phases[0].storm.as_ref().expect("run.json storm");
    assert_eq!(
        (storm.via.as_str(), storm.error.as_deref()),
        ("target", None)
    );
}
