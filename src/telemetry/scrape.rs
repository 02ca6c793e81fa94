//! `--target-metrics URL`: the target's own Prometheus endpoints (a
//! server's `/metrics`, node_exporter on its host) scraped once a second
//! while the run goes. Only the series named by `--target-metrics-keep`
//! are kept ([`DEFAULT_KEEP`] by default); they are written as scraped to
//! `target_metrics.csv`, and from them:
//! - the target *process* (`process_cpu_seconds_total`,
//!   `process_resident_memory_bytes`, `process_open_fds`, summed over the
//!   endpoints that have them) stands in for `--target-pid` when no pid is
//!   known: `timeseries.csv`'s `target_cpu_pct`, `target_rss_mb`,
//!   `target_connections` (open fds, sockets included) and the summary's
//!   cost columns (`target_cpu_s`, `target_rss_*`, marginal memory per
//!   1,000 connections) are computed from it exactly as from /proc;
//! - the target *host* (node_exporter's `node_*` series) gives the
//!   `target_host_*` columns: busy CPU (every mode but idle and iowait),
//!   memory used (`MemTotal − MemAvailable`), network bytes per second
//!   (every device node_exporter reports; its default leaves out `lo`).
//!
//! A scrape that fails (unreachable, non-2xx, timeout) is counted and the
//! run goes on; the run ends with a warning naming the counts.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::exposition::{self, Sample};
use super::http::{exchange, Endpoint};
use crate::folder::target_metrics;
use crate::metrics::process::ProcSample;

/// Series kept when `--target-metrics-keep` is not given (`*` matches
/// any run of characters).
pub const DEFAULT_KEEP: &[&str] = &[
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "node_cpu_seconds_total",
    "node_memory_MemTotal_bytes",
    "node_memory_MemAvailable_bytes",
    "node_network_*_bytes_total",
];

/// How often each endpoint is scraped.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// What the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Name patterns of the series to keep.
    pub keep: Vec<String>,
}

/// The target as last scraped.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    /// The target process, when an endpoint exposes `process_*` metrics.
    pub process: Option<ProcSample>,
    /// Busy CPU of the target host since the previous scrape, % of one core.
    pub host_cpu_pct: Option<f64>,
    /// Memory in use on the target host, MB.
    pub host_memory_used_mb: Option<f64>,
    /// Network bytes received by the target host per second.
    pub host_network_received_bytes_per_s: Option<f64>,
    /// Network bytes sent by the target host per second.
    pub host_network_sent_bytes_per_s: Option<f64>,
}

/// Cumulative host totals of one scrape round, for rates.
#[derive(Debug, Clone, Copy)]
struct Totals {
    at: Instant,
    cpu_busy_s: Option<f64>,
    rx: Option<f64>,
    tx: Option<f64>,
}

#[derive(Default)]
struct Stats {
    scrapes: u64,
    failed: u64,
    first_error: Option<String>,
    bad_lines: u64,
    first_bad_line: Option<String>,
}

struct State {
    latest: Reading,
    prev: Option<Totals>,
    stats: Vec<Stats>,
    out: Option<target_metrics::Writer>,
    write_error: Option<String>,
}

/// A running scraper; [`Scraper::finish`] stops it.
pub struct Scraper {
    state: Arc<Mutex<State>>,
    urls: Vec<String>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// A run that ends early (an error between start and `finish`) must not
/// leave the loop scraping the target.
impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.cancel();
        self.task.abort();
    }
}

impl std::fmt::Debug for Scraper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scraper({:?})", self.urls)
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Scraper {
    /// Starts scraping every second, writing kept series to
    /// `dir/target_metrics.csv` (not written when `dir` is `None`).
    pub fn start(config: &Config, dir: Option<&Path>) -> Scraper {
        let out = dir.and_then(|d| target_metrics::Writer::create(d).ok());
        let state = Arc::new(Mutex::new(State {
            latest: Reading::default(),
            prev: None,
            stats: config.endpoints.iter().map(|_| Stats::default()).collect(),
            out,
            write_error: None,
        }));
        let stop = CancellationToken::new();
        let keep: Vec<String> = if config.keep.is_empty() {
            DEFAULT_KEEP.iter().map(|s| s.to_string()).collect()
        } else {
            config.keep.clone()
        };
        let task = tokio::spawn(scrape_loop(
            state.clone(),
            config.endpoints.clone(),
            keep,
            stop.clone(),
        ));
        Scraper {
            state,
            urls: config.endpoints.iter().map(|e| e.url.clone()).collect(),
            stop,
            task,
        }
    }

    /// The target as last scraped.
    pub fn latest(&self) -> Reading {
        lock(&self.state).latest
    }

    /// Stops scraping; returns a warning per endpoint whose scrapes failed
    /// or had malformed lines.
    pub async fn finish(mut self) -> Vec<String> {
        self.stop.cancel();
        let _ = (&mut self.task).await;
        let st = lock(&self.state);
        let mut warnings = Vec::new();
        for (url, s) in self.urls.iter().zip(&st.stats) {
            if s.failed > 0 {
                warnings.push(format!(
                    "--target-metrics {url}: {} of {} scrapes failed (first error: {})",
                    s.failed,
                    s.scrapes,
                    s.first_error.as_deref().unwrap_or("unknown")
                ));
            }
            if s.bad_lines > 0 {
                warnings.push(format!(
                    "--target-metrics {url}: {} malformed lines skipped (first: {})",
                    s.bad_lines,
                    s.first_bad_line.as_deref().unwrap_or("")
                ));
            }
        }
        if let Some(e) = &st.write_error {
            warnings.push(format!("target_metrics.csv: {e}"));
        }
        warnings
    }
}

async fn scrape_loop(
    state: Arc<Mutex<State>>,
    endpoints: Vec<Endpoint>,
    keep: Vec<String>,
    stop: CancellationToken,
) {
    let mut timer = tokio::time::interval(INTERVAL);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = timer.tick() => {}
        }
        let results = futures_util::future::join_all(
            endpoints
                .iter()
                .map(|e| exchange(e, None, &[("accept", "text/plain")], INTERVAL)),
        )
        .await;
        let (at, unix_s) = (Instant::now(), unix_now());
        let mut kept: Vec<Vec<Sample>> = Vec::new();
        let mut st = lock(&state);
        for (i, r) in results.into_iter().enumerate() {
            let stats = &mut st.stats[i];
            stats.scrapes += 1;
            let text = match r {
                Ok(r) if (200..300).contains(&r.status) => r.body,
                Ok(r) => {
                    stats.failed += 1;
                    stats
                        .first_error
                        .get_or_insert(format!("HTTP {}", r.status));
                    continue;
                }
                Err(e) => {
                    stats.failed += 1;
                    stats.first_error.get_or_insert(e);
                    continue;
                }
            };
            let (samples, bad) = exposition::parse(&String::from_utf8_lossy(&text));
            stats.bad_lines += bad.len() as u64;
            if let Some(b) = bad.into_iter().next() {
                stats.first_bad_line.get_or_insert(b);
            }
            kept.push(
                samples
                    .into_iter()
                    .filter(|s| keep.iter().any(|k| exposition::matches(k, &s.name)))
                    .collect(),
            );
            if let Some(out) = &mut st.out {
                let rows = kept
                    .last()
                    .into_iter()
                    .flatten()
                    .map(|s| (s.name.as_str(), s.labels.as_slice(), s.value));
                if let Err(e) = out.write(unix_s, &endpoints[i].url, rows) {
                    st.write_error.get_or_insert(e.to_string());
                }
            }
        }
        let all: Vec<&Sample> = kept.iter().flatten().collect();
        let totals = totals(&all, at);
        let prev = st.prev.replace(totals);
        st.latest = reading(&all, prev, totals);
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The sum of `name`'s samples that pass `keep`; `None` when there are none.
fn sum(samples: &[&Sample], name: &str, keep: impl Fn(&Sample) -> bool) -> Option<f64> {
    let mut it = samples
        .iter()
        .filter(|s| s.name == name && keep(s))
        .peekable();
    it.peek()?;
    Some(it.map(|s| s.value).sum())
}

fn totals(samples: &[&Sample], at: Instant) -> Totals {
    Totals {
        at,
        cpu_busy_s: sum(samples, "node_cpu_seconds_total", |s| {
            !matches!(s.label("mode"), Some("idle" | "iowait"))
        }),
        rx: sum(samples, "node_network_receive_bytes_total", |_| true),
        tx: sum(samples, "node_network_transmit_bytes_total", |_| true),
    }
}

/// A reading from one round's kept samples and the previous round's totals.
fn reading(samples: &[&Sample], prev: Option<Totals>, now: Totals) -> Reading {
    let cpu = sum(samples, "process_cpu_seconds_total", |_| true);
    let rss = sum(samples, "process_resident_memory_bytes", |_| true);
    let fds = sum(samples, "process_open_fds", |_| true);
    let process = (cpu.is_some() || rss.is_some()).then(|| ProcSample {
        cpu_s: cpu.unwrap_or(0.0),
        rss_bytes: rss.unwrap_or(0.0) as u64,
        sockets: fds.map(|f| f as u64),
    });
    let total = sum(samples, "node_memory_MemTotal_bytes", |_| true);
    let avail = sum(samples, "node_memory_MemAvailable_bytes", |_| true);
    let secs = prev.map(|p| now.at.duration_since(p.at).as_secs_f64());
    let rate = |a: Option<f64>, b: Option<f64>| -> Option<f64> {
        let (a, b, s) = (a?, b?, secs.filter(|s| *s > 0.0)?);
        // A counter that went down was reset (an exporter restart).
        (b >= a).then(|| (b - a) / s)
    };
    let r1 = |v: f64| (v * 10.0).round() / 10.0;
    Reading {
        process,
        host_cpu_pct: rate(prev.and_then(|p| p.cpu_busy_s), now.cpu_busy_s).map(|r| r1(r * 100.0)),
        host_memory_used_mb: match (total, avail) {
            (Some(t), Some(a)) => Some(r1((t - a) / 1048576.0)),
            _ => None,
        },
        host_network_received_bytes_per_s: rate(prev.and_then(|p| p.rx), now.rx).map(r1),
        host_network_sent_bytes_per_s: rate(prev.and_then(|p| p.tx), now.tx).map(r1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_come_from_process_and_node_series() {
        let text0 = "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 100\n\
            node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 10\n\
            node_cpu_seconds_total{cpu=\"1\",mode=\"system\"} 5\n\
            node_cpu_seconds_total{cpu=\"1\",mode=\"iowait\"} 7\n\
            node_network_receive_bytes_total{device=\"lo\"} 1000\n\
            node_network_receive_bytes_total{device=\"eth0\"} 500\n\
            node_network_transmit_bytes_total{device=\"lo\"} 1000\n\
            node_memory_MemTotal_bytes 4194304\nnode_memory_MemAvailable_bytes 1048576\n\
            process_cpu_seconds_total 2.5\nprocess_resident_memory_bytes 3e6\nprocess_open_fds 9\n";
        let text1 = text0
            .replace("\"user\"} 10", "\"user\"} 10.5")
            .replace("\"system\"} 5", "\"system\"} 5.25")
            .replace("\"idle\"} 100", "\"idle\"} 101")
            .replace(
                "\"lo\"} 1000\nnode_network_receive_bytes_total{device=\"eth0\"} 500",
                "\"lo\"} 3000\nnode_network_receive_bytes_total{device=\"eth0\"} 500",
            );
        let t0 = Instant::now();
        let (s0, _) = exposition::parse(text0);
        let (s1, _) = exposition::parse(&text1);
        let r0: Vec<&Sample> = s0.iter().collect();
        let r1: Vec<&Sample> = s1.iter().collect();
        let a = totals(&r0, t0);
        let b = totals(&r1, t0 + Duration::from_secs(2));
        let r = reading(&r1, Some(a), b);
        // (0.5 + 0.25) busy seconds over 2 s: 37.5% of one core.
        assert_eq!(r.host_cpu_pct, Some(37.5));
        assert_eq!(r.host_network_received_bytes_per_s, Some(1000.0));
        assert_eq!(r.host_network_sent_bytes_per_s, Some(0.0));
        assert_eq!(r.host_memory_used_mb, Some(3.0));
        let p = r.process.unwrap();
        assert_eq!((p.cpu_s, p.rss_bytes, p.sockets), (2.5, 3_000_000, Some(9)));
        // The first round has no rates; an endpoint without process_* gives no process.
        let first = reading(&r0[..4], None, a);
        assert_eq!((first.host_cpu_pct, first.process), (None, None));
    }
}
