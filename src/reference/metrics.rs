//! `GET /metrics` of the reference server: the Prometheus text exposition
//! format (0.0.4), so `--target-metrics` can read the reference server as
//! it reads any server. The process series carry the names and meanings of
//! the Prometheus client libraries' process collector; the server's own
//! are prefixed `stampede_reference_`.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::hub::Hub;

/// The process's (CPU seconds, RSS bytes, open fds, open sockets), read
/// from /proc/self; `None` where /proc is unreadable.
fn process() -> Option<(f64, u64, u64, u64)> {
    let me = procfs::process::Process::myself().ok()?;
    let stat = me.stat().ok()?;
    let cpu = (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64;
    let rss = stat.rss * procfs::page_size();
    // `Process` holds an fd on /proc/self and the listing holds one on
    // /proc/self/fd: neither is the server's, so the first is closed before
    // counting and the second is not counted (a count from outside, as
    // `ls /proc/PID/fd`, then agrees).
    drop(me);
    let (mut fds, mut sockets) = (0u64, 0u64);
    let mut probe = 0u64;
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        fds += 1;
        match std::fs::read_link(entry.path()) {
            Ok(l) if l.as_os_str().as_encoded_bytes().starts_with(b"socket:") => sockets += 1,
            // The listing's own handle, or one closed while listing.
            Ok(l) if l.as_os_str() == "/proc/self/fd" || l.starts_with("/proc") => probe += 1,
            Err(_) => probe += 1,
            Ok(_) => {}
        }
    }
    Some((cpu, rss, fds.saturating_sub(probe), sockets))
}

/// The page: process CPU, RSS and open fds, the open sockets (connections
/// and listeners), the open subscriber streams, and the hub's counters.
pub fn render(hub: &Hub) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    };
    if let Some((cpu, rss, fds, sockets)) = process() {
        metric(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            format!("{cpu}"),
        );
        metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            rss.to_string(),
        );
        metric(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            fds.to_string(),
        );
        metric(
            "stampede_reference_open_sockets",
            "gauge",
            "Open sockets of the process: client connections and listeners.",
            sockets.to_string(),
        );
    }
    metric(
        "stampede_reference_open_streams",
        "gauge",
        "Open subscriber streams (SSE, NDJSON, WebSocket).",
        hub.open_streams().to_string(),
    );
    let s = &hub.stats;
    for (name, help, v) in [
        ("published", "Events accepted.", &s.published),
        (
            "delivered",
            "Events delivered to subscribers.",
            &s.delivered,
        ),
        (
            "dropped",
            "Events subscribers missed by lagging behind the buffers.",
            &s.dropped,
        ),
        (
            "subscriptions",
            "Subscriber sessions opened.",
            &s.subscriptions,
        ),
    ] {
        metric(
            &format!("stampede_reference_{name}_total"),
            "counter",
            help,
            v.load(Ordering::Relaxed).to_string(),
        );
    }
    out
}
