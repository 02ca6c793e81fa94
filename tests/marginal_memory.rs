//! Marginal memory per 1,000 connections: the built-in target (its own
//! process) measured before its clients connect and at the held load, in
//! summary.csv and in the report's cost chart.

mod support;

use stampede::folder::cost;
use stampede::shutdown::Shutdown;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_hold_has_a_marginal_memory_apart_from_the_baseline() {
    let text = "name = \"marginal\"\nduration = \"2s\"\nramp_up = \"1s\"\nmode = \"sequential\"\n\
        [publisher]\nrate = 10\n\
        [[groups]]\ntransport = \"websocket\"\nclients = 300\n";
    let dir = TempDir::new("marginal");
    let out = run_plan(plan(text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0);
    let r = &out.rows[0];
    let before = r.target_rss_before_mb.expect("RSS before the clients");
    let held = r.target_rss_held_mb.expect("RSS at the held load");
    assert!(before > 0.0 && held >= before, "{r:?}");
    assert!(held <= r.target_rss_peak_mb.unwrap(), "{r:?}");
    // The target's own fd table is readable: every client's socket (and
    // the publisher's) was added.
    let added = r.target_connections_added.expect("sockets added");
    assert!(added >= 300, "{r:?}");
    let marginal = r.target_rss_marginal_per_1k_conn_mb.expect("marginal");
    assert!(marginal > 0.0, "{r:?}");
    // The difference over the phase includes what the first connections
    // brought along once; the ramp's slope leaves it out.
    let whole =
        cost::target_rss_marginal_per_1k_conn_mb(Some(before), Some(held), Some(added), 300)
            .unwrap();
    assert!(marginal <= whole * 1.5, "{marginal} vs {whole}: {r:?}");
    // Without the baseline RSS, far below the peak per connection.
    assert!(
        marginal < r.target_rss_per_1k_conn_mb.unwrap() / 2.0,
        "{r:?}"
    );

    // The report's cost chart has the panel.
    stampede::report::generate(std::slice::from_ref(&out.dir), &out.dir).unwrap();
    let svg = std::fs::read_to_string(out.dir.join("charts/cost-per-delivery.svg")).unwrap();
    let titles: Vec<&str> = svg.split(">").filter(|t| t.contains("memory")).collect();
    assert!(
        svg.contains("Target marginal memory per 1,000 connections"),
        "{titles:?}"
    );
    let html = std::fs::read_to_string(out.dir.join("report.html")).unwrap();
    assert!(html.contains("target marginal RSS / 1k conn (MB)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_phase_on_the_same_target_reads_as_reused_memory_in_the_chart() {
    let text = "name = \"marginal2\"\nduration = \"1s\"\nramp_up = \"1s\"\nmode = \"sequential\"\n\
        [publisher]\nrate = 10\n\
        [[groups]]\ntransport = \"sse\"\nclients = 50\n\
        [[groups]]\ntransport = \"websocket\"\nclients = 50\n";
    let dir = TempDir::new("marginal2");
    let out = run_plan(plan(text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0);
    // Both phases measure; the column keeps the later phase's figure.
    for r in &out.rows {
        assert!(r.target_rss_before_mb.is_some(), "{r:?}");
    }
    stampede::report::generate(std::slice::from_ref(&out.dir), &out.dir).unwrap();
    let svg = std::fs::read_to_string(out.dir.join("charts/cost-per-delivery.svg")).unwrap();
    assert!(
        svg.contains("n/a: after an earlier phase (its freed memory is reused)"),
        "the websocket phase ran after the sse phase on the same target"
    );
}
