//! The CI gate on synthetic run folders: regressions, noise, thresholds,
//! baseline files, and the JUnit shape CI systems parse.

mod support;

use std::path::Path;
use std::process::Command;

use stampede::gate::threshold::ThresholdResult;
use stampede::metrics::summary::SummaryRow;
use stampede::report::run_json::{HostInfo, RunInfo, TargetInfo};
use support::{exe, TempDir};

fn make_run(dir: &Path, scenario: &str, p99_ms: f64, thresholds: Vec<ThresholdResult>) {
    std::fs::create_dir_all(dir).unwrap();
    let info = RunInfo {
        stampede_version: "test".into(),
        scenario_file: "s.toml".into(),
        plan: serde_json::json!({ "name": scenario }),
        host: HostInfo {
            hostname: "h".into(),
            cpus: 2,
            os: "linux".into(),
            nofile_limit: 1024,
        },
        target: TargetInfo {
            url: "http://127.0.0.1:1".into(),
            builtin: true,
            pid: None,
        },
        started_at: "2026-11-21T00:00:00Z".into(),
        ended_at: None,
        duration_s: None,
        status: "completed".into(),
        exit_code: Some(0),
        partial: false,
        partial_reason: None,
        phases: vec![],
        errors: vec![],
        message_examples: vec![],
        warnings: vec![],
        thresholds,
        repeats: None,
        sweep: None,
        epoch_unix_s: None,
        scenario_digest: None,
        shard: None,
        merged_from: vec![],
    };
    info.write(dir).unwrap();
    let rows: Vec<SummaryRow> = ["sse", "websocket"]
        .iter()
        .map(|g| {
            let mut r = SummaryRow::example();
            r.group = g.to_string();
            r.transport = g.to_string();
            r.clients = 100;
            r.published = Some(300);
            r.expected = Some(30_000);
            r.delivered = Some(30_000);
            r.delivery_p50_ms = Some(p99_ms / 2.0);
            r.delivery_p99_ms = Some(p99_ms);
            r.deliveries_per_s = Some(1000.0);
            r.bytes_per_delivery = Some(260.0);
            r.target_cpu_s = Some(1.0);
            r
        })
        .collect();
    stampede::report::summary_csv::write(dir, &rows).unwrap();
}

fn compare(a: &Path, b: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(exe())
        .arg("compare")
        .arg(a)
        .arg(b)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), text)
}

#[test]
fn a_30_percent_worse_p99_fails_and_junit_names_it() {
    let t = TempDir::new("gate-regress");
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    make_run(&a, "s", 100.0, vec![]);
    make_run(&b, "s", 130.0, vec![]);
    let junit = t.path().join("junit.xml");
    let md = t.path().join("summary.md");
    let csv = t.path().join("cmp.csv");
    let (code, text) = compare(
        &a,
        &b,
        &[
            "--junit",
            junit.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("REGRESSED") && text.contains("delivery_p99_ms"),
        "{text}"
    );

    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let mut cases = 0;
    let mut failures = Vec::new();
    for suite in root.children().filter(|n| n.is_element()) {
        assert_eq!(suite.tag_name().name(), "testsuite");
        assert!(suite.attribute("name").is_some());
        let declared: usize = suite.attribute("tests").unwrap().parse().unwrap();
        let declared_failures: usize = suite.attribute("failures").unwrap().parse().unwrap();
        let suite_cases: Vec<_> = suite.children().filter(|n| n.is_element()).collect();
        assert_eq!(declared, suite_cases.len());
        let mut suite_failures = 0;
        for case in suite_cases {
            assert_eq!(case.tag_name().name(), "testcase");
            assert!(case.attribute("name").is_some() && case.attribute("classname").is_some());
            cases += 1;
            if let Some(f) = case.children().find(|n| n.has_tag_name("failure")) {
                suite_failures += 1;
                failures.push(f.attribute("message").unwrap().to_string());
            }
        }
        assert_eq!(declared_failures, suite_failures);
    }
    assert_eq!(
        root.attribute("tests").unwrap().parse::<usize>().unwrap(),
        cases
    );
    // Both groups' p99 and p50 regressed; the message states value, baseline and limit.
    let p99 = failures
        .iter()
        .find(|m| m.contains("sse.delivery_p99_ms"))
        .expect("p99 failure");
    assert!(
        p99.contains("current 130") && p99.contains("baseline 100") && p99.contains("+10.0%"),
        "{p99}"
    );

    let md = std::fs::read_to_string(&md).unwrap();
    assert!(
        md.contains("**Failed**")
            && md.contains("| sse | `delivery_p99_ms` | 100 | 130 | +30.0% | **REGRESSED** |"),
        "{md}"
    );
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .starts_with("group,metric,baseline,current"));
}

#[test]
fn identical_runs_and_changes_inside_the_noise_floor_pass() {
    let t = TempDir::new("gate-same");
    let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
    make_run(&a, "s", 1.0, vec![]);
    make_run(&b, "s", 1.0, vec![]);
    // +40% of a 1 ms p99 is 0.4 ms: inside the floor.
    make_run(&c, "s", 1.4, vec![]);
    assert_eq!(compare(&a, &b, &[]).0, 0);
    let (code, text) = compare(&a, &c, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("PASS"));
    // A stricter per-metric rule file turns the same change into a failure.
    let rules = t.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[metrics.delivery_p99_ms]\nnoise_floor = 0.1\nmax_regression = \"20%\"\n",
    )
    .unwrap();
    assert_eq!(compare(&a, &c, &["--rules", rules.to_str().unwrap()]).0, 1);
    // --max-regression loosens every metric.
    make_run(&b, "s", 130.0, vec![]);
    make_run(&a, "s", 100.0, vec![]);
    assert_eq!(compare(&a, &b, &["--max-regression", "50%"]).0, 0);
}

#[test]
fn failed_thresholds_fail_the_gate_and_baselines_round_trip() {
    let t = TempDir::new("gate-thresholds");
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    make_run(&a, "s", 10.0, vec![]);
    let failed = ThresholdResult {
        threshold: "*.lost == 0".into(),
        group: "sse".into(),
        column: "lost".into(),
        value: Some(3.0),
        limit: "== 0".into(),
        passed: false,
    };
    make_run(&b, "s", 10.0, vec![failed]);
    let junit = t.path().join("j.xml");
    let (code, _) = compare(&a, &b, &["--junit", junit.to_str().unwrap()]);
    assert_eq!(code, 1);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("sse.lost = 3, limit == 0"), "{xml}");

    let base = t.path().join("baseline.json");
    let out = Command::new(exe())
        .args(["baseline", "save"])
        .arg(&a)
        .arg("--to")
        .arg(&base)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        std::fs::metadata(&base).unwrap().len() < 20_000,
        "small enough to commit"
    );
    assert_eq!(compare(&base, &a, &[]).0, 0);

    let other = t.path().join("other");
    make_run(&other, "another-scenario", 10.0, vec![]);
    let (code, text) = compare(&a, &other, &[]);
    assert_eq!(code, 2);
    assert!(text.contains("cannot compare scenario"), "{text}");
    assert_eq!(compare(&a, &t.path().join("nope"), &[]).0, 2);
}

#[test]
fn a_threshold_on_a_missing_column_is_a_scenario_error() {
    let t = TempDir::new("gate-bad-threshold");
    let s = t.path().join("s.toml");
    std::fs::write(
        &s,
        "name = \"x\"\nduration = \"1s\"\n[thresholds]\n\"*.latency_p99\" = \"< 5\"\n[publisher]\nrate = 1\n[[groups]]\ntransport = \"sse\"\nclients = 1\n",
    )
    .unwrap();
    let out = Command::new(exe()).arg("run").arg(&s).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s.toml:4:19")
            && err.contains("latency_p99")
            && err.contains("not a numeric summary column"),
        "{err}"
    );
}

#[test]
fn abort_on_fail_stops_a_slow_run_early_with_exit_1() {
    let t = TempDir::new("gate-abort");
    let s = t.path().join("s.toml");
    std::fs::write(
        &s,
        "name = \"abort\"\nduration = \"60s\"\nbuiltin_delay = \"20ms\"\n\
         [thresholds]\n\"websocket.delivery_p99_ms\" = { limit = \"< 5\", abort_on_fail = true, grace = \"1s\" }\n\
         [publisher]\nrate = 20\n[[groups]]\ntransport = \"websocket\"\nclients = 5\n",
    )
    .unwrap();
    let out_dir = t.path().join("run");
    let started = std::time::Instant::now();
    let out = Command::new(exe())
        .arg("run")
        .arg(&s)
        .arg("--quiet")
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "stopped early"
    );
    let info = RunInfo::read(&out_dir).unwrap();
    assert_eq!(info.status, "aborted");
    assert!(info.partial);
    assert!(info
        .partial_reason
        .unwrap()
        .contains("websocket.delivery_p99_ms < 5"));
    let failed: Vec<_> = info.thresholds.iter().filter(|t| !t.passed).collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].value.unwrap() >= 20.0,
        "the delay shows: {:?}",
        failed[0].value
    );
}
