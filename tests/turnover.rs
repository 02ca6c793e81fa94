//! Arrival rate, session lengths and churn end to end: clients that leave
//! after their session or by churn expect only what was published while
//! they were connected, so nothing counts as lost, and the time series
//! names the turnover.

mod support;

use stampede::shutdown::Shutdown;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrivals_sessions_and_churn_lose_nothing() {
    let target = InProcess::start().await;
    let mut p = plan(
        "name = \"turnover\"\nduration = \"3s\"\nmode = \"concurrent\"\n[publisher]\nrate = 50\n\
         [[groups]]\nname = \"open\"\ntransport = \"sse\"\nclients = 60\n\
         arrival = { rate = 20 }\nsession = { distribution = \"fixed\", mean = \"1s\" }\n\
         [[groups]]\nname = \"churn\"\ntransport = \"sse\"\nclients = 10\n\
         churn = { rate = 10, gap = \"200ms\" }\n",
    );
    target.aim(&mut p);
    let dir = TempDir::new("turnover");
    let out = run_plan(p, dir.path(), Shutdown::new()).await;
    target.stop().await;

    for g in ["open", "churn"] {
        let r = row(&out.rows, g);
        assert_eq!(
            r.lost,
            Some(0),
            "{g}: leavers expect nothing after they left"
        );
        assert_eq!(r.errors, 0, "{g}");
        assert!(r.delivered.unwrap() > 0, "{g}");
    }
    let ts = stampede::report::timeseries::read(dir.path()).unwrap();
    let stages = |g: &str| -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for s in ts
            .iter()
            .filter(|t| t.group == g)
            .filter_map(|t| t.stage.clone())
        {
            if seen.last() != Some(&s) {
                seen.push(s);
            }
        }
        seen
    };
    assert_eq!(stages("open"), vec!["arrivals", "sessions"]);
    assert_eq!(stages("churn"), vec!["churn 10/s"]);
    // 20 arrivals/s staying 1 s each: about 20 connected (plus the 0.5 s
    // leave grace), never all 60.
    let peak = ts
        .iter()
        .filter(|t| t.group == "open")
        .map(|t| t.connections)
        .max()
        .unwrap();
    assert!((15..=35).contains(&peak), "open peak {peak}");
}
