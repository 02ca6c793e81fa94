//! Coordinated omission: when the target stalls for 1 s, interval polling's
//! latency percentiles must show it (polls are timed from their intended
//! start), and no event may be lost.

mod support;

use std::time::Duration;

use stampede::shutdown::Shutdown;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_second_stall_shows_in_polling_p99() {
    let target = InProcess::start().await;
    let mut p = plan(
        "name = \"stall\"\nduration = \"4s\"\nmode = \"concurrent\"\n\
         [publisher]\nrate = 20\n\
         [[groups]]\ntransport = \"poll\"\nclients = 10\ninterval = \"100ms\"\n\
         [[groups]]\ntransport = \"sse\"\nclients = 5\n",
    );
    target.aim(&mut p);
    let hub = target.hub.clone();
    let stall = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        hub.stall_for(Duration::from_secs(1));
    });
    let dir = TempDir::new("stall");
    let out = run_plan(p, dir.path(), Shutdown::new()).await;
    stall.await.unwrap();
    target.stop().await;

    let poll = row(&out.rows, "poll");
    let req_p50 = poll.request_p50_ms.unwrap();
    let req_p99 = poll.request_p99_ms.unwrap();
    let delivery_max = poll.delivery_max_ms.unwrap();
    // About 10% of the polls fall into the stall: p99 sits inside it.
    assert!(req_p99 >= 500.0, "request p99 {req_p99} ms hides the stall");
    assert!(req_p50 < 100.0, "request p50 {req_p50} ms");
    assert!(delivery_max >= 800.0, "delivery max {delivery_max} ms");
    for r in &out.rows {
        assert_eq!(r.lost.unwrap(), 0, "{}", r.group);
        assert_eq!(r.delivered.unwrap(), r.expected.unwrap(), "{}", r.group);
    }
    // Publishing stalled too: SSE deliveries wait for it.
    assert!(row(&out.rows, "sse").delivery_max_ms.unwrap() >= 800.0);
}
