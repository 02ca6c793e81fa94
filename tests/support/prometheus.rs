//! A real Prometheus (Debian's `prometheus`) and a real node_exporter
//! (`prometheus-node-exporter`), each started as a child of the test on a
//! free loopback port and killed when dropped. Prometheus runs with the
//! remote-write receiver and native histograms, on a fresh TSDB in a
//! temporary folder. Missing binaries skip the calling test with a clear
//! message, unless `STAMPEDE_REQUIRE_PROMETHEUS=1` (set by `.ci/run`),
//! which makes it a failure.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use stampede::telemetry::http::{exchange, Endpoint};

use super::TempDir;

pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// True when `bin` exists; else says why and returns false, or fails
/// under `STAMPEDE_REQUIRE_PROMETHEUS=1`.
pub fn installed_or_skip(test: &str, bin: &str) -> bool {
    if Path::new(bin).exists() {
        return true;
    }
    let why =
        format!("{bin} is not installed; apt-get install prometheus prometheus-node-exporter");
    if std::env::var("STAMPEDE_REQUIRE_PROMETHEUS").as_deref() == Ok("1") {
        panic!("{test}: STAMPEDE_REQUIRE_PROMETHEUS=1 but {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    false
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A child process killed (and reaped) on drop; the kernel kills it too if
/// the test process dies first.
pub struct Server {
    child: Child,
    pub url: String,
    _dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(bin: &str, args: &[String], dir: &TempDir) -> Child {
    let mut cmd = Command::new(bin);
    // SAFETY: prctl in the child before exec; no allocation.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let log = std::fs::File::create(dir.path().join("log")).expect("log file");
    cmd.args(args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e}"))
}

/// GETs `url`, returning the status and body.
pub async fn get(url: &str) -> Result<(u16, String), String> {
    let ep = Endpoint::parse(url)?;
    let r = exchange(&ep, None, &[], Duration::from_secs(10)).await?;
    Ok((r.status, String::from_utf8_lossy(&r.body).into_owned()))
}

async fn wait_ready(url: &str, dir: &TempDir, what: &str) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = get(url).await {
            return;
        }
        if Instant::now() > until {
            let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
            panic!("{what} not ready at {url} within 60 s; its log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Server {
    /// Prometheus with `--web.enable-remote-write-receiver` and
    /// `--enable-feature=native-histograms`, scraping nothing.
    pub async fn prometheus() -> Server {
        let dir = TempDir::new("prometheus");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1m\n").expect("config");
        let port = free_port();
        let args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--web.enable-remote-write-receiver".into(),
            "--enable-feature=native-histograms".into(),
            "--log.level=warn".into(),
        ];
        let child = spawn(PROMETHEUS, &args, &dir);
        let url = format!("http://127.0.0.1:{port}");
        let s = Server {
            child,
            url: url.clone(),
            _dir: dir,
        };
        wait_ready(&format!("{url}/-/ready"), &s._dir, "prometheus").await;
        s
    }

    /// node_exporter on a free loopback port, counting the loopback
    /// device too (its default leaves `lo` out; the tests' traffic is all
    /// there).
    pub async fn node_exporter() -> Server {
        let dir = TempDir::new("node-exporter");
        let port = free_port();
        let args = vec![
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--collector.netdev.device-exclude=^$".into(),
        ];
        let child = spawn(NODE_EXPORTER, &args, &dir);
        let url = format!("http://127.0.0.1:{port}");
        let s = Server {
            child,
            url: url.clone(),
            _dir: dir,
        };
        wait_ready(&format!("{url}/metrics"), &s._dir, "node_exporter").await;
        s
    }

    /// Runs an instant PromQL query; returns `data.result`.
    pub async fn query(&self, promql: &str) -> Vec<Value> {
        let q: String = promql
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let (status, body) = get(&format!("{}/api/v1/query?query={q}", self.url))
            .await
            .unwrap_or_else(|e| panic!("query {promql}: {e}"));
        assert_eq!(status, 200, "query {promql}: {body}");
        let v: Value = serde_json::from_str(&body).expect("query json");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The one value of an instant query that must return one float sample.
    pub async fn scalar(&self, promql: &str) -> f64 {
        let r = self.query(promql).await;
        assert_eq!(r.len(), 1, "{promql}: one series expected, got {r:?}");
        r[0]["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{promql}: no float value in {r:?}"))
    }
}

/// A child process killed and reaped on drop.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
