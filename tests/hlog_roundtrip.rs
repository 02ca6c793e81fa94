//! The `.hlog` files a run writes are standard HdrHistogram interval logs:
//! read back and added up, their percentiles match summary.csv.

mod support;

use stampede::metrics::recorder::new_histogram;
use stampede::metrics::summary::pct_ms;
use stampede::report::hlog;
use stampede::shutdown::Shutdown;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hlog_percentiles_match_the_summary() {
    let p = plan(
        "name = \"hlog\"\nduration = \"2s\"\nwarmup = \"1s\"\ndrain = \"1s\"\n\
         [publisher]\nrate = 50\n\
         [[groups]]\ntransport = \"websocket\"\nclients = 10\n",
    );
    let dir = TempDir::new("hlog");
    let out = run_plan(p, dir.path(), Shutdown::new()).await;
    let info = stampede::report::run_json::RunInfo::read(&out.dir).unwrap();
    assert_eq!(info.status, "completed");
    assert!(!info.partial);
    let measure_from = info.phases[0].measure_from_s;

    let text = std::fs::read_to_string(out.dir.join("websocket.delivery.hlog")).unwrap();
    assert!(text.contains("#[StartTime: ") && text.contains("#[BaseTime: "));
    let intervals = hlog::read(&out.dir.join("websocket.delivery.hlog")).unwrap();
    assert!(
        intervals.len() >= 4,
        "one line per interval: {}",
        intervals.len()
    );
    let mut all = new_histogram();
    let mut measured = new_histogram();
    for i in &intervals {
        all.add(&i.hist).unwrap();
        // Interval starts are written with millisecond precision.
        if i.start_s + 0.001 >= measure_from {
            measured.add(&i.hist).unwrap();
        }
    }
    assert!(
        all.len() > measured.len(),
        "warm-up intervals are in the log"
    );
    let r = row(&out.rows, "websocket");
    assert_eq!(pct_ms(&measured, 0.5), r.delivery_p50_ms);
    assert_eq!(pct_ms(&measured, 0.99), r.delivery_p99_ms);
    assert_eq!(pct_ms(&measured, 1.0), r.delivery_max_ms);
    // Latencies are attributed to intervals by when the collector took
    // them, accounting by publish time: the two differ only at the edges.
    let (n, d) = (measured.len() as f64, r.delivered.unwrap_or(0) as f64);
    assert!((n - d).abs() <= d * 0.05, "{n} samples vs {d} deliveries");
}
