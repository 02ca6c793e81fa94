//! Sharded runs against the reference server: `--processes 2` equals the
//! merge of its two `--shard` folders, percentiles equal an exact
//! histogram merge, accounting equals a single-process run's, one shard
//! merges back to its own summary, and folders of different scenarios or
//! versions are refused.

mod support;

use std::path::Path;
use std::process::Command;

use hdrhistogram::Histogram;
use stampede::metrics::summary::SummaryRow;
use stampede::report::hlog;
use stampede::report::run_json::RunInfo;
use support::{exe, TempDir};

/// Every transport kind at once, so every window rule of the summary is
/// exercised: subscribers through the drain, exchanges over the hold only.
const SCENARIO: &str = r#"
name = "shard-test"
duration = "3s"
ramp_up = "1s"
warmup = "1s"
mode = "concurrent"

[publisher]
rate = 20
channels = 3

[[groups]]
transport = "poll"
clients = 7
interval = "500ms"

[[groups]]
transport = "long-poll"
clients = 6

[[groups]]
transport = "sse"
clients = 5

[[groups]]
transport = "websocket"
clients = 5

[[groups]]
name = "hello"
transport = "request"
clients = 4
rate = 200
url = "/hello"

[[groups]]
name = "echo"
transport = "echo"
clients = 3
rate = 30
url = "/echo"
"#;

fn write_scenario(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn stampede(args: &[&str]) -> std::process::Output {
    Command::new(exe())
        .args(args)
        .env_remove("STAMPEDE_TARGET")
        .env_remove("STAMPEDE_SHARD")
        .env_remove("STAMPEDE_START_AT")
        .output()
        .expect("stampede runs")
}

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn summary(dir: &Path) -> Vec<SummaryRow> {
    stampede::report::summary_csv::read(dir).unwrap()
}

/// The measured delivery histogram of `group` in one shard folder, added
/// up here from its log, independently of `merge`.
fn measured_delivery(dir: &Path, group: &str) -> Histogram<u64> {
    let info = RunInfo::read(dir).unwrap();
    let phase = info
        .phases
        .iter()
        .find(|p| p.groups.iter().any(|g| g == group))
        .unwrap();
    let mut total = stampede::metrics::recorder::new_histogram();
    for iv in hlog::read_or_empty(&dir.join(format!("{group}.delivery.hlog"))).unwrap() {
        if iv.start_s >= phase.measure_from_s - 0.0015 {
            total.add(&iv.hist).unwrap();
        }
    }
    total
}

fn ms(h: &Histogram<u64>, q: f64) -> Option<f64> {
    stampede::metrics::summary::pct_ms(h, q)
}

#[test]
fn processes_merge_exactly_and_account_like_one_process() {
    let tmp = TempDir::new("shard-processes");
    let scenario = write_scenario(tmp.path(), "s.toml", SCENARIO);
    let scenario = scenario.to_str().unwrap();
    let merged = tmp.path().join("p2");
    ok(&stampede(&[
        "run",
        scenario,
        "--processes",
        "2",
        "--quiet",
        "--no-report",
        "--out",
        merged.to_str().unwrap(),
    ]));
    let single = tmp.path().join("single");
    ok(&stampede(&[
        "run",
        scenario,
        "--quiet",
        "--no-report",
        "--out",
        single.to_str().unwrap(),
    ]));

    let rows = summary(&merged);
    let one = summary(&single);
    assert_eq!(rows.len(), 6);
    for (m, s) in rows.iter().zip(&one) {
        assert_eq!(m.group, s.group);
        assert_eq!(m.clients, s.clients, "{}: clients", m.group);
        // Same clients, same per-channel schedules: the same events.
        assert_eq!(m.published, s.published, "{}: published", m.group);
        assert_eq!(m.expected, s.expected, "{}: expected", m.group);
        assert_eq!(
            m.lost,
            Some(0).filter(|_| m.published.is_some()),
            "{}",
            m.group
        );
        assert_eq!(m.delivered, s.delivered, "{}: delivered", m.group);
    }

    // The shards as `--processes` left them, merged again by `merge`.
    let shards = [merged.join("shard-0"), merged.join("shard-1")];
    let again = tmp.path().join("again");
    ok(&stampede(&[
        "merge",
        shards[0].to_str().unwrap(),
        shards[1].to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--quiet",
        "--no-report",
    ]));
    assert_eq!(summary(&again), rows);

    // Counters are the shards' sums; percentiles are those of the added
    // histograms.
    let parts: Vec<Vec<SummaryRow>> = shards.iter().map(|d| summary(d)).collect();
    for r in &rows {
        let of = |d: usize| parts[d].iter().find(|x| x.group == r.group).unwrap();
        assert_eq!(r.clients, of(0).clients + of(1).clients);
        assert_eq!(r.requests, of(0).requests + of(1).requests);
        assert_eq!(
            r.bytes_received,
            of(0).bytes_received + of(1).bytes_received
        );
        assert_eq!(r.errors, of(0).errors + of(1).errors);
        let mut h = measured_delivery(&shards[0], &r.group);
        h.add(measured_delivery(&shards[1], &r.group)).unwrap();
        for (q, got) in [
            (0.5, r.delivery_p50_ms),
            (0.99, r.delivery_p99_ms),
            (1.0, r.delivery_max_ms),
        ] {
            assert_eq!(got, ms(&h, q), "{} p{q}", r.group);
        }
    }

    let info = RunInfo::read(&merged).unwrap();
    assert_eq!(info.merged_from.len(), 2);
    assert!(info.shard.is_none());
    // The merged plan is the scenario's again.
    let clients: Vec<u64> = info.plan["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["clients"].as_u64().unwrap())
        .collect();
    assert_eq!(clients, vec![7, 6, 5, 5, 4, 3]);
    assert_eq!(info.plan["groups"][4]["rate_per_s"].as_f64(), Some(200.0));
    for s in [&shards[0], &shards[1]] {
        let si = RunInfo::read(s).unwrap();
        let sh = si.shard.unwrap();
        assert_eq!(sh.count, 2);
        assert!(sh.late_by_s.unwrap() < 1.0, "a shard started late: {sh:?}");
    }
    // The merged time series has one row per group and second, with the
    // shards' connections added.
    let series = stampede::report::timeseries::read(&merged).unwrap();
    let peak = series
        .iter()
        .filter(|r| r.group == "sse")
        .map(|r| r.connections)
        .max();
    assert_eq!(peak, Some(5));
}

#[test]
fn one_shard_merges_back_to_its_own_summary() {
    let tmp = TempDir::new("shard-one");
    let scenario = write_scenario(tmp.path(), "s.toml", SCENARIO);
    let run = tmp.path().join("run");
    ok(&stampede(&[
        "run",
        scenario.to_str().unwrap(),
        "--shard",
        "0/1",
        "--quiet",
        "--no-report",
        "--out",
        run.to_str().unwrap(),
    ]));
    let merged = tmp.path().join("merged");
    ok(&stampede(&[
        "merge",
        run.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
        "--quiet",
    ]));
    // Read back from the logs over the same windows, every latency column
    // and counter comes out as the run wrote it.
    assert_eq!(summary(&merged), summary(&run));
    assert!(merged.join("report.html").is_file());
    let info = RunInfo::read(&merged).unwrap();
    assert_eq!(info.phases.len(), 1);
    assert_eq!(info.exit_code, Some(0));
    // A merged folder has its summary for scripts too, from the merged rows.
    let json = stampede::folder::summary_json::SummaryJson::read(&merged).unwrap();
    assert_eq!(json.exit_code, Some(0));
    assert_eq!(json.groups.len(), summary(&merged).len());
}

#[test]
fn merge_refuses_what_is_not_one_sharded_run() {
    let tmp = TempDir::new("shard-refuse");
    let tiny = |name: &str| {
        format!(
            "name = \"{name}\"\nduration = \"1s\"\n[[groups]]\nname = \"hello\"\ntransport = \"request\"\nclients = 2\nrate = 20\nurl = \"/hello\"\n"
        )
    };
    let a = write_scenario(tmp.path(), "a.toml", &tiny("alpha"));
    let b = write_scenario(tmp.path(), "b.toml", &tiny("beta"));
    let run = |scenario: &Path, shard: &str, out: &str, extra: &[&str]| {
        let out = tmp.path().join(out);
        let mut args = vec![
            "run",
            scenario.to_str().unwrap(),
            "--quiet",
            "--no-report",
            "--out",
            out.to_str().unwrap(),
        ];
        if !shard.is_empty() {
            args.extend(["--shard", shard]);
        }
        args.extend(extra);
        ok(&stampede(&args));
        out
    };
    let a0 = run(&a, "0/2", "a0", &[]);
    let b1 = run(&b, "1/2", "b1", &[]);
    let a1_other = run(&a, "1/2", "a1-other", &["--set", "groups.hello.clients=3"]);
    let plain = run(&a, "", "plain", &[]);

    let merge = |dirs: &[&Path]| {
        let mut args = vec!["merge".to_string()];
        args.extend(dirs.iter().map(|d| d.to_str().unwrap().to_string()));
        args.extend([
            "--out".into(),
            tmp.path().join("m").to_str().unwrap().into(),
        ]);
        let out = Command::new(exe()).args(&args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = merge(&[&a0, &b1]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("only shards of one run merge"), "{err}");
    let (code, err) = merge(&[&a0, &a1_other]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("differs"), "{err}");
    let (code, err) = merge(&[&a0, &plain]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a shard run"), "{err}");
    let (code, err) = merge(&[&a0, &a0]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("same shard"), "{err}");

    // Another version's folder is refused too.
    let info_path = b1.join("run.json");
    let mut info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&info_path).unwrap()).unwrap();
    info["stampede_version"] = "0.0.0-other".into();
    info["plan"]["name"] = "alpha".into();
    std::fs::write(&info_path, info.to_string()).unwrap();
    let (code, err) = merge(&[&a0, &b1]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("stampede 0.0.0-other"), "{err}");

    // A missing shard is merged, but the folder says it is partial.
    let out = tmp.path().join("partial");
    let status = Command::new(exe())
        .args([
            "merge",
            a0.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--no-report",
        ])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0));
    let info = RunInfo::read(&out).unwrap();
    assert!(info.partial);
    assert!(info
        .partial_reason
        .unwrap()
        .contains("shards 1 of 2 are missing"));
}

#[test]
fn bad_shard_arguments_are_usage_errors() {
    for (args, needle) in [
        (vec!["--shard", "2/2"], "below N"),
        (vec!["--shard", "x"], "I/N"),
        (vec!["--start-at", "yesterday"], "RFC 3339"),
        (
            vec!["--processes", "2", "--shard", "0/2"],
            "cannot be combined",
        ),
    ] {
        let mut all = vec!["run", "scenarios/ci-smoke.toml", "--quiet"];
        all.extend(args);
        let out = stampede(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{all:?}: {err}");
    }
}

#[test]
fn target_workers_share_one_port_and_every_event() {
    use std::io::BufRead;
    let tmp = TempDir::new("serve-workers");
    let mut serve = Command::new(exe())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--processes",
            "3",
            "--exit-with-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(serve.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", serve.id()))
        .unwrap_or_default();
    assert_eq!(children.split_whitespace().count(), 3, "three workers");

    // Many connections, so every worker holds subscribers while the
    // publishes land on whichever worker the kernel picked.
    let scenario = write_scenario(
        tmp.path(),
        "w.toml",
        r#"
name = "workers"
duration = "2s"
ramp_up = "500ms"
mode = "concurrent"
[publisher]
rate = 20
channels = 2
[[groups]]
transport = "sse"
clients = 12
[[groups]]
transport = "websocket"
clients = 12
[[groups]]
transport = "long-poll"
clients = 12
[[groups]]
transport = "poll"
clients = 12
interval = "250ms"
"#,
    );
    let out = tmp.path().join("run");
    ok(&stampede(&[
        "run",
        scenario.to_str().unwrap(),
        "--target",
        &url,
        "--profile",
        "builtin",
        "--quiet",
        "--no-report",
        "--out",
        out.to_str().unwrap(),
    ]));
    for r in summary(&out) {
        assert!(r.published.unwrap() > 0, "{}", r.group);
        assert_eq!(r.lost, Some(0), "{}", r.group);
        assert_eq!(r.duplicated, Some(0), "{}", r.group);
        assert_eq!(r.delivered, r.expected, "{}", r.group);
    }
    // Closing stdin stops the parent, and the workers with it.
    drop(serve.stdin.take());
    assert!(serve.wait().unwrap().success());
    for pid in children.split_whitespace() {
        let gone = (0..50).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            !Path::new(&format!("/proc/{pid}")).exists()
        });
        assert!(gone, "worker {pid} outlived its parent");
    }
}

#[test]
fn a_plan_past_the_open_file_limit_is_refused_before_connecting() {
    let hard: u64 = std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4)?.parse().ok())
        .unwrap_or(u64::MAX);
    if hard > 500_000 {
        eprintln!("skipped: the open-file hard limit ({hard}) is above this test's plan");
        return;
    }
    let out = stampede(&[
        "run",
        "scenarios/ci-smoke.toml",
        "--set",
        "groups.sse.clients=600000",
        "--quiet",
        "--no-report",
        "--out",
        TempDir::new("fd-refuse").path().join("r").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--processes"), "{err}");
}
