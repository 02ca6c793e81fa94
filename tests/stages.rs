//! Load stages end to end: clients ramp up, hold, and some leave; the time
//! series names each stage, and clients that left are expected to have
//! received only what was published while they were connected.

mod support;

use stampede::shutdown::Shutdown;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramp_hold_and_leave() {
    let target = InProcess::start().await;
    let mut p = plan(
        "name = \"stages\"\nduration = \"3s\"\n[publisher]\nrate = 50\n\
         [[groups]]\ntransport = \"sse\"\nclients = 10\n\
         stages = [{ to = 10, over = \"1s\" }, { hold = \"1s\" }, { to = 4, over = \"1s\" }]\n",
    );
    target.aim(&mut p);
    let dir = TempDir::new("stages");
    let out = run_plan(p, dir.path(), Shutdown::new()).await;
    target.stop().await;

    let r = row(&out.rows, "sse");
    assert_eq!(r.clients, 10, "the ceiling");
    assert_eq!(r.lost, Some(0), "leavers expect nothing after they left");
    assert_eq!(r.errors, 0);
    // Fewer than 10 full windows: six clients left a second before the end.
    assert!(r.expected.unwrap() < r.published.unwrap() * 10);

    let ts = stampede::report::timeseries::read(dir.path()).unwrap();
    let peak = ts.iter().map(|t| t.connections).max().unwrap();
    assert_eq!(peak, 10);
    let mut seen: Vec<String> = Vec::new();
    for s in ts.iter().filter_map(|t| t.stage.clone()) {
        if seen.last() != Some(&s) {
            seen.push(s);
        }
    }
    assert_eq!(
        seen,
        vec!["ramp 1/3 to 10", "hold 2/3", "ramp 3/3 to 4", "after"],
        "stage column"
    );
}
