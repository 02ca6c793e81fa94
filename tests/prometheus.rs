//! Prometheus remote write against a real Prometheus (Debian's 2.42,
//! started by the test with the remote-write receiver and native
//! histograms): after a run, what PromQL reads back agrees with
//! `summary.csv` — counters exactly, `histogram_quantile(0.99, ...)` within
//! the native histogram's bucket width. A dead receiver is a warning with
//! the count of dropped pushes, never a failed run.

mod support;

use std::process::Command;

use stampede::folder::{run_json::RunInfo, summary};
use stampede::telemetry::native::BUCKET_WIDTH;
use support::prometheus::{free_port, installed_or_skip, Server, NODE_EXPORTER, PROMETHEUS};
use support::{exe, row, TempDir};

const SCENARIO: &str = "name = \"prom\"\nduration = \"4s\"\nramp_up = \"1s\"\nwarmup = \"1s\"\n\
    mode = \"concurrent\"\n[publisher]\nrate = 40\n\
    [[groups]]\ntransport = \"poll\"\nclients = 5\ninterval = \"200ms\"\n\
    [[groups]]\ntransport = \"sse\"\nclients = 5\n\
    [[groups]]\ntransport = \"websocket\"\nclients = 5\n";

fn run(dir: &TempDir, extra: &[&str]) -> (std::path::PathBuf, String) {
    let scenario = dir.path().join("s.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let out = dir.path().join("run");
    let o = Command::new(exe())
        .args(["run", "--quiet", "--no-report", "--out"])
        .arg(&out)
        .args(extra)
        .arg(&scenario)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "stampede run failed: {stderr}");
    (out, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_agrees_with_the_summary() {
    if !installed_or_skip("remote_write_agrees_with_the_summary", PROMETHEUS) {
        return;
    }
    let prom = Server::prometheus().await;
    // The target's host as node_exporter shows it, scraped into the run
    // and pushed on with the rest.
    if !installed_or_skip("remote_write_agrees_with_the_summary", NODE_EXPORTER) {
        return;
    }
    let node = Server::node_exporter().await;
    let dir = TempDir::new("remote-write");
    let url = format!("{}/api/v1/write", prom.url);
    let node_url = format!("{}/metrics", node.url);
    let (out, stderr) = run(
        &dir,
        &[
            "--prometheus-remote-write",
            &url,
            "--prometheus-remote-write-interval",
            "1s",
            "--prometheus-label",
            "run=rw1",
            "--prometheus-label",
            "env=test",
            "--target-metrics",
            &node_url,
        ],
    );
    assert!(!stderr.contains("dropped"), "{stderr}");
    let rows = summary::read(&out).unwrap();
    let mut checked = 0;
    for group in ["poll", "sse", "websocket"] {
        let r = row(&rows, group);
        assert_eq!(r.lost, Some(0), "{group} lost events");
        let sel = format!(
            "run=\"rw1\",env=\"test\",scenario=\"prom\",group=\"{group}\",transport=\"{group}\""
        );
        let measured = format!("{sel},measured=\"true\"");
        // Counters over the measured intervals equal the summary's columns.
        for (col, v) in [
            ("requests", r.requests),
            ("bytes_sent", r.bytes_sent),
            ("bytes_received", r.bytes_received),
            ("errors", r.errors),
        ] {
            let got = prom
                .scalar(&format!("stampede_{col}_total{{{measured}}}"))
                .await;
            assert_eq!(got, v as f64, "{group}.{col}");
        }
        // The summary itself, every number as written.
        for (col, v) in [
            ("delivered", r.delivered),
            ("expected", r.expected),
            ("lost", r.lost),
            ("clients", Some(r.clients)),
        ] {
            let got = prom
                .scalar(&format!("stampede_summary_{col}{{{sel}}}"))
                .await;
            assert_eq!(Some(got), v.map(|v| v as f64), "summary {group}.{col}");
        }
        // The native histogram's p99 lies within one bucket of HDR's.
        let p99_ms = r.delivery_p99_ms.expect("delivery p99");
        let q = prom
            .scalar(&format!(
                "histogram_quantile(0.99, stampede_delivery_seconds{{{measured}}})"
            ))
            .await
            * 1000.0;
        let tolerance = p99_ms * BUCKET_WIDTH + 0.001;
        eprintln!("{group}: PromQL p99 {q:.3} ms, summary.csv {p99_ms} ms");
        assert!(
            (q - p99_ms).abs() <= tolerance,
            "{group}: PromQL p99 {q} ms vs summary {p99_ms} ms (tolerance {tolerance})"
        );
        // Gauges from the time series: the last connections sample.
        let conns = prom.scalar(&format!("stampede_connections{{{sel}}}")).await;
        assert!(conns >= 0.0);
        checked += 1;
    }
    assert_eq!(checked, 3);
    // Deliveries across groups and windows add up in PromQL.
    let all = prom
        .scalar("sum(stampede_deliveries_total{run=\"rw1\"})")
        .await;
    assert!(all > 0.0);
    // The scraped host went through too.
    let host = prom
        .query("stampede_target_host_memory_used_mb{run=\"rw1\"}")
        .await;
    assert_eq!(host.len(), 3, "one series per group: {host:?}");
    // Every query of the Grafana dashboard answers with data.
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("deploy/grafana/stampede.json").unwrap())
            .unwrap();
    let mut exprs = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    for e in exprs {
        let q = e
            .replace("$run", "rw1")
            .replace("$group", ".*")
            .replace("$__rate_interval", "1m");
        let r = prom.query(&q).await;
        assert!(!r.is_empty(), "dashboard query {q} is empty");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_receiver_is_a_warning_with_the_dropped_count() {
    let dir = TempDir::new("remote-write-dead");
    // A port nobody listens on: every push is refused.
    let url = format!("http://127.0.0.1:{}/api/v1/write", free_port());
    let (out, stderr) = run(
        &dir,
        &[
            "--prometheus-remote-write",
            &url,
            "--prometheus-remote-write-interval",
            "1s",
        ],
    );
    let info = RunInfo::read(&out).unwrap();
    let w = info
        .warnings
        .iter()
        .find(|w| w.contains("Prometheus remote write"))
        .unwrap_or_else(|| panic!("no warning in {:?}", info.warnings));
    assert!(stderr.contains(w.as_str()), "{stderr}");
    // "N of N pushes dropped": every push failed, and there were several.
    let words: Vec<&str> = w.split_whitespace().collect();
    let at = words.iter().position(|x| *x == "of").expect("count");
    let (dropped, total): (u64, u64) = (
        words[at - 1].parse().unwrap(),
        words[at + 1].parse().unwrap(),
    );
    assert_eq!(dropped, total, "{w}");
    assert!(dropped >= 3, "a 6 s run with 1 s pushes: {w}");
    assert!(w.contains("connect"), "{w}");
    assert_eq!(info.status, "completed", "{info:?}");
}

/// `--processes 2`: each shard pushes its own series (label `shard`) under
/// the parent's `run` label, so PromQL's sums equal the merged summary and
/// the native histograms add across shards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_push_series_that_add_up_to_the_merged_summary() {
    if !installed_or_skip(
        "shards_push_series_that_add_up_to_the_merged_summary",
        PROMETHEUS,
    ) {
        return;
    }
    let prom = Server::prometheus().await;
    let dir = TempDir::new("remote-write-shards");
    let url = format!("{}/api/v1/write", prom.url);
    let (out, stderr) = run(
        &dir,
        &[
            "--processes",
            "2",
            "--prometheus-remote-write",
            &url,
            "--prometheus-remote-write-interval",
            "1s",
        ],
    );
    assert!(!stderr.contains("dropped"), "{stderr}");
    let rows = summary::read(&out).unwrap();
    for group in ["poll", "sse", "websocket"] {
        let r = row(&rows, group);
        let sel = format!("run=\"run\",group=\"{group}\",measured=\"true\"");
        let shards = prom
            .query(&format!("stampede_requests_total{{{sel}}}"))
            .await;
        assert_eq!(shards.len(), 2, "{group}: one series per shard: {shards:?}");
        for (col, v) in [
            ("requests", r.requests),
            ("bytes_received", r.bytes_received),
        ] {
            let got = prom
                .scalar(&format!("sum(stampede_{col}_total{{{sel}}})"))
                .await;
            assert_eq!(got, v as f64, "{group}.{col}");
        }
        let p99_ms = r.delivery_p99_ms.expect("delivery p99");
        let q = prom
            .scalar(&format!(
                "histogram_quantile(0.99, sum(stampede_delivery_seconds{{{sel}}}))"
            ))
            .await
            * 1000.0;
        let tolerance = p99_ms * BUCKET_WIDTH + 0.001;
        assert!(
            (q - p99_ms).abs() <= tolerance,
            "{group}: PromQL p99 over shards {q} ms vs merged summary {p99_ms} ms"
        );
    }
}
