//! Capacity search against the reference server with a known knee: every
//! publish waits 1 ms per open subscriber stream, so with N SSE clients each
//! event is delivered at least N ms late. Under an SLO of p99 < 150 ms the
//! true knee is just below 150 clients; the search must find it within one
//! geometric step (20, 40, 80, 160, then bisection) and name the term.

mod support;

use stampede::capacity::{self, Flags, Options, Settings};
use stampede::plan::Overrides;
use stampede::progress::Display;
use stampede::run::RunOptions;
use stampede::scenario::{self, Source};
use stampede::shutdown::Shutdown;
use support::*;

const SCENARIO: &str = r#"
name = "knee"
duration = "1s"
drain = "1s"
builtin_cost_per_conn = "1ms"

[publisher]
rate = 5

[[groups]]
transport = "sse"
clients = 20

[capacity]
slo = "delivery_p99_ms<150,lost==0"
max = 320
refine = 2
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_the_known_knee_within_one_step() {
    let src = Source {
        path: "knee.toml".into(),
        text: SCENARIO.into(),
        overridden: false,
    };
    let sc = scenario::parse(&src).unwrap();
    let settings = Settings::resolve(&sc, &src, &Flags::default()).unwrap();
    let dir = TempDir::new("capacity");
    let opts = Options {
        scenario_file: "knee.toml".into(),
        overrides: Overrides::default(),
        run: RunOptions {
            dashboard: None,
            remote_write: None,
            target_metrics: None,
            scenario_file: "knee.toml".into(),
            out: Some(dir.path().to_path_buf()),
            results_root: dir.path().to_path_buf(),
            builtin_exe: Some(exe()),
            display: Display::Quiet,
            start_at: None,
            digest: None,
            attach_builtin: None,
        },
        verbose: false,
    };
    let out = capacity::search(&sc, &src, &settings, &opts, Shutdown::new())
        .await
        .unwrap();
    let g = &out.groups[0];
    let max_ok = g.max_sustainable.expect("some step met the SLO");
    let first_bad = g.first_failing.expect("some step broke the SLO");
    // 150 clients cost at least 150 ms per event: the knee is below 150,
    // and 80 (one geometric step below 160) carries at least 80 ms.
    assert!((80.0..150.0).contains(&max_ok), "max ok {max_ok}");
    assert!(
        first_bad > max_ok && first_bad <= 160.0,
        "first bad {first_bad}"
    );
    // A busy CI machine may make stampede itself late at the failing step;
    // the search then says so instead of bisecting.
    assert!(
        ["target", "load generator"].contains(&g.limited_by.as_str()),
        "{}",
        g.limited_by
    );
    assert!(g.broken.contains("delivery_p99_ms"), "{}", g.broken);
    // The probes stop at the first failure; bisection adds at most 2 steps.
    let probes: Vec<f64> = out
        .steps
        .iter()
        .filter(|s| s.search == "probe")
        .map(|s| s.value)
        .collect();
    assert_eq!(probes, vec![20.0, 40.0, 80.0, 160.0]);
    assert!(out.steps.len() <= 6);
    assert!(out.steps.iter().all(|s| s.target_cpu_s.is_some()));
    assert!(out.steps.iter().all(|s| s.lost == Some(0)));

    let csv = std::fs::read_to_string(dir.path().join("capacity.csv")).unwrap();
    assert_eq!(csv.lines().count(), out.steps.len() + 1);
    assert!(csv.starts_with("group,transport,vary,value,clients"));
    let summary = std::fs::read_to_string(dir.path().join("capacity-summary.csv")).unwrap();
    // The same verdict as the search's (a busy machine may make it the
    // load generator, as allowed above).
    assert!(
        summary.contains(&format!(",{},", g.limited_by)),
        "{summary}"
    );
    let svg = std::fs::read_to_string(dir.path().join("charts/capacity.svg")).unwrap();
    assert!(
        svg.contains("SLO: delivery_p99_ms &lt; 150") || svg.contains("SLO: delivery_p99_ms < 150")
    );
}

#[test]
fn slo_and_capacity_errors_name_their_place() {
    let src = Source {
        path: "bad.toml".into(),
        text: SCENARIO.replace("max = 320", "max = -1"),
        overridden: false,
    };
    let sc = scenario::parse(&src).unwrap();
    let err = Settings::resolve(&sc, &src, &Flags::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.toml:16:7"), "{err}");
    assert!(err.contains("capacity.max"), "{err}");

    let src = Source {
        path: "bad.toml".into(),
        text: SCENARIO.replace("lost==0", "lots==0"),
        overridden: false,
    };
    let sc = scenario::parse(&src).unwrap();
    let err = Settings::resolve(&sc, &src, &Flags::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.toml:15:7"), "{err}");
}
