//! `[sweep]`: a short sweep against the reference server gives one summary
//! row per value per group, `sweep.csv`, a sweep chart and the sweep in
//! `run.json`; sweeps over an unknown key or with an invalid value are
//! scenario errors that name the place (exit code 2).

mod support;

use std::process::Command;

use stampede::report::sweep_csv;
use stampede::shutdown::Shutdown;
use support::{exe, TempDir};

const SWEEP: &str = "name = \"sweep-test\"\nduration = \"1s\"\ndrain = \"500ms\"\n\
    [publisher]\nrate = 20\n\
    [[groups]]\nname = \"poll\"\ntransport = \"poll\"\nclients = 3\ninterval = \"100ms\"\n\
    [[groups]]\ntransport = \"sse\"\nclients = 3\n\
    [thresholds]\n\"poll.lost\" = \"== 0\"\n\"*.errors\" = \"== 0\"\n\
    [sweep]\nparameter = \"groups.poll.interval\"\nvalues = [\"100ms\", \"400ms\"]\n";

#[tokio::test]
async fn a_sweep_runs_every_value_and_writes_its_curves() {
    let dir = TempDir::new("sweep");
    let plan = support::plan(SWEEP);
    assert_eq!(plan.steps().len(), 2);
    let out = support::run_plan(plan, dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0, "{:?}", out.thresholds);

    let groups: Vec<&str> = out.rows.iter().map(|r| r.group.as_str()).collect();
    assert_eq!(
        groups,
        ["poll@100ms", "sse@100ms", "poll@400ms", "sse@400ms"]
    );
    for r in &out.rows {
        assert!(
            r.delivered.unwrap_or(0) > 0,
            "{}: nothing delivered",
            r.group
        );
    }
    // Thresholds apply to every value's group: 2 × poll.lost + 4 × *.errors.
    assert_eq!(out.thresholds.len(), 6, "{:?}", out.thresholds);

    let rows = sweep_csv::read(dir.path()).expect("sweep.csv");
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r.value.as_str(), r.group.as_str(), r.summary_group.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("100ms", "poll", "poll@100ms"),
            ("100ms", "sse", "sse@100ms"),
            ("400ms", "poll", "poll@400ms"),
            ("400ms", "sse", "sse@400ms"),
        ]
    );
    for r in &rows {
        assert_eq!(r.parameter, "groups.poll.interval");
        assert!(r.delivery_p50_ms.is_some() && r.requests_per_delivery.is_some());
        // The reference server runs as a child process: its CPU is measured.
        assert!(r.target_cpu_ms_per_1k_deliveries.is_some(), "{r:?}");
    }
    assert_eq!(rows[0].value_num, Some(0.1));
    assert_eq!(rows[2].value_num, Some(0.4));
    // A longer interval: fewer requests per delivery.
    assert!(rows[2].requests_per_delivery < rows[0].requests_per_delivery);

    let info = stampede::report::run_json::RunInfo::read(dir.path()).expect("run.json");
    let sweep = info.sweep.expect("run.json records the sweep");
    assert_eq!(sweep.parameter, "groups.poll.interval");
    let phases: Vec<Vec<usize>> = sweep.values.iter().map(|v| v.phases.clone()).collect();
    assert_eq!(phases, [vec![0, 1], vec![2, 3]]);
    assert_eq!(info.phases[2].sweep_value.as_deref(), Some("400ms"));
    assert_eq!(info.phases[2].groups, ["poll@400ms"]);
    assert!(dir.path().join("poll_400ms.delivery.hlog").exists());

    // The report draws the sweep charts and puts them in the page.
    let written =
        stampede::report::generate(&[dir.path().to_path_buf()], dir.path()).expect("report");
    for name in ["sweep.svg", "sweep-cost.svg"] {
        let path = dir.path().join("charts").join(name);
        let text = std::fs::read_to_string(&path).expect("sweep chart");
        let doc = roxmltree::Document::parse(&text).expect("chart is XML");
        let texts: String = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(texts.contains("400ms") && texts.contains("poll"), "{name}");
    }
    let html = std::fs::read_to_string(written.html).expect("report.html");
    assert!(html.contains("id=\"sweep-table\"") && html.contains("id=\"sweep-cost\""));
}

fn run_err(dir: &TempDir, text: &str) -> (Option<i32>, String) {
    let path = dir.path().join("s.toml");
    std::fs::write(&path, text).expect("write scenario");
    let out = Command::new(exe())
        .arg("run")
        .arg(&path)
        .args(["--quiet", "--no-report", "--out"])
        .arg(dir.path().join("out"))
        .output()
        .expect("run stampede");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const BASE: &str = "name = \"x\"\nduration = \"1s\"\n[publisher]\nrate = 1\n\
    [[groups]]\ntransport = \"poll\"\nclients = 1\n[sweep]\n";

#[test]
fn bad_sweeps_are_scenario_errors_with_places() {
    let dir = TempDir::new("sweep-err");
    // Line 9 holds `parameter`, line 10 `values`.
    let (code, err) = run_err(
        &dir,
        &format!("{BASE}parameter = \"groups.poll.intervall\"\nvalues = [\"1s\"]\n"),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("s.toml:9:13") && err.contains("intervall"),
        "{err}"
    );
    let (code, err) = run_err(
        &dir,
        &format!("{BASE}parameter = \"groups.nope.interval\"\nvalues = [\"1s\"]\n"),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("s.toml:9:13") && err.contains("nope"), "{err}");
    let (code, err) = run_err(
        &dir,
        &format!("{BASE}parameter = \"groups.poll.interval\"\nvalues = [\"1s\", \"soon\"]\n"),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("s.toml:10:17") && err.contains("invalid duration"),
        "{err}"
    );
    let (code, err) = run_err(
        &dir,
        &format!("{BASE}parameter = \"publisher.rate\"\nvalues = [1, -2]\n"),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("s.toml:10:14") && err.contains("rate"),
        "{err}"
    );
    let (code, err) = run_err(
        &dir,
        &format!("{BASE}parameter = \"publisher.rate\"\nvalues = [1, 1]\n"),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("repeats"), "{err}");
}
