//! Publish-rate stages end to end on the reference server: a steady rate, a
//! burst and a step; the ledger settles exactly (nothing lost), `published`
//! is the schedule's count in the measured window, and the time series
//! names the publisher's stage.

mod support;

use std::time::Duration;

use stampede::shutdown::Shutdown;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_and_step_are_published_and_settled_exactly() {
    let target = InProcess::start().await;
    let mut p = plan(
        "name = \"pubstages\"\nduration = \"4s\"\nwarmup = \"500ms\"\nmode = \"concurrent\"\n\
         [publisher]\nrate = 20\nchannels = 2\n\
         stages = [{ rate = 20, for = \"1500ms\" }, { burst = 300, for = \"1s\" }, { rate = 60, for = \"1s\" }]\n\
         [[groups]]\ntransport = \"sse\"\nclients = 6\n\
         [[groups]]\ntransport = \"long-poll\"\nclients = 6\n",
    );
    target.aim(&mut p);
    let sched = p.publisher.as_ref().map(|p| p.schedule()).unwrap();
    let dir = TempDir::new("pubstages");
    let out = run_plan(p, dir.path(), Shutdown::new()).await;
    target.stop().await;
    assert_eq!(out.exit_code, 0);

    // Measured window [0.5 s, 4.5 s): 20 + 300 + 60 + 60 events by the
    // rates; exactly what the schedule (and so the publisher) has there.
    let want = sched.count_between(2, Duration::from_millis(500), Duration::from_millis(4500));
    assert!((439..=441).contains(&want), "{want}");
    for group in ["sse", "long-poll"] {
        let r = row(&out.rows, group);
        assert_eq!(r.published, Some(want), "{group}: published");
        // Six clients over two channels: three see each channel's share.
        assert_eq!(r.expected, Some(want * 3), "{group}: expected");
        assert_eq!(r.delivered, r.expected, "{group}: delivered");
        assert_eq!(
            (r.lost, r.duplicated, r.reordered),
            (Some(0), Some(0), Some(0)),
            "{group}"
        );
        assert_eq!(r.errors, 0, "{group}: errors");
    }

    let ts = stampede::report::timeseries::read(dir.path()).unwrap();
    let mut seen: Vec<String> = Vec::new();
    for s in ts
        .iter()
        .filter(|t| t.group == "sse")
        .filter_map(|t| t.stage.clone())
    {
        if seen.last() != Some(&s) {
            seen.push(s);
        }
    }
    assert_eq!(
        seen,
        vec!["publish 20/s", "burst 300/s", "publish 60/s"],
        "stage column"
    );
}
