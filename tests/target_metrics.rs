//! `--target-metrics`: the target's own Prometheus endpoints scraped every
//! second, against a real node_exporter (Debian's, started by the test on
//! a free port) and against the reference server's own `/metrics`.

mod support;

use std::io::BufRead;
use std::process::{Command, Stdio};

use futures_util::StreamExt;
use stampede::folder::{summary, timeseries};
use stampede::telemetry::exposition;
use support::prometheus::{get, installed_or_skip, Server, NODE_EXPORTER};
use support::{exe, row, InProcess, TempDir};

const SCENARIO: &str = "name = \"scrape\"\nduration = \"4s\"\nramp_up = \"1s\"\nwarmup = \"1s\"\n\
    mode = \"concurrent\"\n[publisher]\nrate = 40\npayload_bytes = 512\n\
    [[groups]]\ntransport = \"sse\"\nclients = 10\n\
    [[groups]]\ntransport = \"websocket\"\nclients = 10\n";

fn run(dir: &TempDir, extra: &[&str]) -> std::path::PathBuf {
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
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "stampede run failed: {stderr}");
    assert!(!stderr.contains("scrapes failed"), "{stderr}");
    out
}

fn mem_total_mb() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_exporter_fills_the_host_columns() {
    if !installed_or_skip("node_exporter_fills_the_host_columns", NODE_EXPORTER) {
        return;
    }
    let node = Server::node_exporter().await;
    let dir = TempDir::new("scrape-node");
    let out = run(
        &dir,
        &["--target-metrics", &format!("{}/metrics", node.url)],
    );
    let rows: Vec<timeseries::Row> = timeseries::read(&out)
        .unwrap()
        .into_iter()
        .filter(|r| r.group == "sse")
        .collect();
    let cpus = std::thread::available_parallelism().unwrap().get() as f64;
    let with_cpu: Vec<f64> = rows.iter().filter_map(|r| r.target_host_cpu_pct).collect();
    assert!(
        with_cpu.len() + 2 >= rows.len(),
        "host CPU in nearly every row: {with_cpu:?}"
    );
    // A rate over our clock's second between two scrapes, whose answers
    // can each come tens of ms late on a busy machine: a quarter of slack
    // over all cores busy.
    assert!(
        with_cpu.iter().all(|c| (0.0..=125.0 * cpus).contains(c)),
        "{with_cpu:?}"
    );
    let total = mem_total_mb();
    for r in &rows {
        let m = r
            .target_host_memory_used_mb
            .expect("memory used in every row");
        assert!(m > 0.0 && m <= total, "{m} MB of {total}");
    }
    // Every byte the clients moved crossed the loopback device, which
    // node_exporter counts (with TCP/IP headers, and the whole run, not just
    // the measured window): its received bytes cover the clients' bytes.
    let lo_received: f64 = rows
        .iter()
        .filter_map(|r| {
            r.target_host_network_received_bytes_per_s
                .map(|b| b * r.interval_s)
        })
        .sum();
    let sum = summary::read(&out).unwrap();
    let clients: u64 = sum.iter().map(|r| r.bytes_sent + r.bytes_received).sum();
    assert!(clients > 0);
    assert!(
        lo_received >= clients as f64,
        "host received {lo_received} bytes, the clients moved {clients}"
    );
    // Only the kept series are written, as scraped.
    let kept = std::fs::read_to_string(out.join("target_metrics.csv")).unwrap();
    assert!(
        kept.starts_with("unix_s,endpoint,metric,labels,value\n"),
        "{kept:.200}"
    );
    assert!(kept.contains(",node_cpu_seconds_total,"), "{kept:.400}");
    assert!(kept.contains(",node_memory_MemAvailable_bytes,"));
    // CSV doubles the quotes of the label text `device="lo"`.
    assert!(
        kept.contains(",node_network_receive_bytes_total,\"device=\"\"lo\"\"\","),
        "{kept:.400}"
    );
    assert!(!kept.contains(",node_load1,"), "not kept by default");
    // The builtin target's pid is known: process columns still come from /proc.
    assert!(row(&sum, "sse").target_cpu_s.is_some());
    // The report charts both.
    let o = Command::new(exe())
        .args(["report", "--quiet"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(out.join("charts/target-cpu-over-time.svg")).unwrap();
    assert!(
        svg.contains("target host") && svg.contains("target process"),
        "{svg:.300}"
    );
}

/// The reference server's `/metrics` as a remote target's: no pid, so the
/// cost columns come from its `process_*` series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_servers_metrics_fill_the_cost_columns() {
    let mut serve = Command::new(exe())
        .args(["serve", "--listen", "127.0.0.1:0", "--exit-with-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let url = std::io::BufReader::new(serve.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let serve = support::prometheus::Reaped(serve);
    let dir = TempDir::new("scrape-reference");
    let out = run(
        &dir,
        &[
            "--target",
            &url,
            "--target-metrics",
            &format!("{url}/metrics"),
        ],
    );
    let sum = summary::read(&out).unwrap();
    for group in ["sse", "websocket"] {
        let r = row(&sum, group);
        assert_eq!(r.lost, Some(0), "{group}");
        let cpu = r
            .target_cpu_s
            .expect("target CPU from process_cpu_seconds_total");
        assert!(cpu > 0.0, "{group}: {cpu}");
        let rss = r
            .target_rss_peak_mb
            .expect("target RSS from process_resident_memory_bytes");
        assert!(rss > 1.0, "{group}: {rss}");
        // Open fds cover the 20 client connections, the publisher's and the listener.
        let fds = r.target_connections_peak.expect("process_open_fds");
        assert!(fds >= 21, "{group}: {fds}");
        assert!(r.target_rss_per_1k_conn_mb.is_some());
    }
    let rows = timeseries::read(&out).unwrap();
    assert!(rows
        .iter()
        .any(|r| r.target_rss_mb.is_some_and(|m| m > 1.0)));
    // The page itself: after the run, no stream is open; the counters add up.
    // The run's connections close on the server a little after the run
    // ends, so the count settles: /proc is read on both sides of each scrape
    // and the reported value must fall between them (±1 for the scrape's own
    // connection) once the count stops moving.
    let proc_fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", serve.0.id()))
            .map(|d| d.count() as f64)
            .unwrap_or(f64::NAN)
    };
    let mut last = String::new();
    let mut samples = Vec::new();
    for _ in 0..60 {
        let before = proc_fds();
        let (status, text) = get(&format!("{url}/metrics")).await.unwrap();
        let after = proc_fds();
        assert_eq!(status, 200);
        let (s, bad) = exposition::parse(&text);
        assert!(bad.is_empty(), "{bad:?}");
        let reported = s
            .iter()
            .find(|x| x.name == "process_open_fds")
            .map(|x| x.value)
            .expect("process_open_fds");
        samples = s;
        if reported >= before.min(after) - 1.0 && reported <= before.max(after) + 1.0 {
            last.clear();
            break;
        }
        last = format!("{reported} fds reported, /proc had {before} before and {after} after");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(last.is_empty(), "{last}");
    let value = |n: &str| samples.iter().find(|s| s.name == n).map(|s| s.value);
    assert_eq!(value("stampede_reference_open_streams"), Some(0.0));
    assert!(value("stampede_reference_delivered_total").unwrap() > 0.0);
}

/// Open streams and sockets, exactly, on an idle in-process server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_open_streams() {
    let target = InProcess::start().await;
    let ws_url = target.url.replace("http://", "ws://");
    let mut socks = Vec::new();
    for _ in 0..3 {
        let (s, _) = tokio_tungstenite::connect_async(format!("{ws_url}/ws/m"))
            .await
            .unwrap();
        socks.push(s);
    }
    // A stream counts once its handler runs: wait for the three.
    let mut open = None;
    for _ in 0..100 {
        let (_, text) = get(&format!("{}/metrics", target.url)).await.unwrap();
        let (samples, _) = exposition::parse(&text);
        open = samples
            .iter()
            .find(|s| s.name == "stampede_reference_open_streams")
            .map(|s| s.value);
        if open == Some(3.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(open, Some(3.0));
    for mut s in socks {
        let _ = s.close(None).await;
        while s.next().await.is_some() {}
    }
}

/// An endpoint that answers nothing: a warning with the count of failed
/// scrapes, never a failed run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_metrics_endpoint_is_a_warning() {
    let dir = TempDir::new("scrape-dead");
    let url = format!(
        "http://127.0.0.1:{}/metrics",
        support::prometheus::free_port()
    );
    let scenario = dir.path().join("s.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let out = dir.path().join("run");
    let o = Command::new(exe())
        .args([
            "run",
            "--quiet",
            "--no-report",
            "--target-metrics",
            &url,
            "--out",
        ])
        .arg(&out)
        .arg(&scenario)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let info = stampede::folder::run_json::RunInfo::read(&out).unwrap();
    let w = info
        .warnings
        .iter()
        .find(|w| w.contains("--target-metrics"))
        .unwrap_or_else(|| panic!("no warning in {:?}", info.warnings));
    // "N of N scrapes failed": one a second over a run of about 7 s.
    let words: Vec<&str> = w.split_whitespace().collect();
    let at = words.iter().position(|x| *x == "of").expect("count");
    let (failed, total): (u64, u64) = (
        words[at - 1].parse().unwrap(),
        words[at + 1].parse().unwrap(),
    );
    assert_eq!(failed, total, "{w}");
    assert!(failed >= 4, "{w}");
    // Nothing was scraped, so nothing was kept.
    let kept = std::fs::read_to_string(out.join("target_metrics.csv")).unwrap_or_default();
    assert!(kept.lines().count() <= 1, "{kept}");
}
