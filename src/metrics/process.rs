//! CPU time and memory of this process and of a target process, read from
//! /proc (Linux). Sampled once per interval by the run loop.

use serde::Serialize;

use super::summary::{Marginal, Resources};

/// One reading of a process's resource use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ProcSample {
    /// User + system CPU seconds since the process started.
    pub cpu_s: f64,
    /// Resident set size in bytes now.
    pub rss_bytes: u64,
    /// Open sockets (TCP connections and listeners) now; `None` when its
    /// fd table cannot be read (another user's process).
    pub sockets: Option<u64>,
}

/// Reads `pid` (this process when `None`) together with its direct
/// children (a target that runs as several worker processes, like
/// `stampede serve --processes N` or nginx's master and workers); `None`
/// if it is gone.
pub fn sample(pid: Option<i32>) -> Option<ProcSample> {
    let mut total = sample_one(pid)?;
    if let Some(p) = pid {
        let children =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            if let Some(s) = sample_one(Some(c)) {
                total.cpu_s += s.cpu_s;
                total.rss_bytes += s.rss_bytes;
                total.sockets = match (total.sockets, s.sockets) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.or(b),
                };
            }
        }
    }
    Some(total)
}

fn sample_one(pid: Option<i32>) -> Option<ProcSample> {
    let proc = match pid {
        Some(p) => procfs::process::Process::new(p).ok()?,
        None => procfs::process::Process::myself().ok()?,
    };
    let stat = proc.stat().ok()?;
    let ticks = procfs::ticks_per_second() as f64;
    Some(ProcSample {
        cpu_s: (stat.utime + stat.stime) as f64 / ticks,
        rss_bytes: stat.rss * procfs::page_size(),
        // Our own sockets are the clients' side, not a target's: skip the
        // walk over tens of thousands of fds.
        sockets: pid.and_then(open_sockets),
    })
}

/// Above this many open fds a target's sockets are not counted one by one
/// (see [`open_sockets`]).
const WALK_MAX_FDS: u64 = 4096;

/// Non-socket fds of each pid at its last full count: a server's files
/// (epoll, eventfd, logs, its binary's libraries' handles) hardly change
/// under load while its sockets come and go by the thousand.
static NON_SOCKETS: std::sync::Mutex<Vec<(i32, u64)>> = std::sync::Mutex::new(Vec::new());

/// Open sockets of `pid` (TCP connections and listeners; `None` if its fd
/// table cannot be read).
///
/// Exact while the process has at most [`WALK_MAX_FDS`] fds: the fds in
/// `/proc/PID/fd` that link to `socket:[inode]`. Past that, the open-fd
/// count from one `stat` of `/proc/PID/fd` (its size is the number of open
/// fds since Linux 6.2) minus the non-socket fds of the last full count.
/// Why: the full count is a `readlink` per fd, ~3–6 µs each; hold-100k's
/// six shards each counted the reference server's ~100,000 fds every
/// second, which took 420 s of kernel time in a 6.5-minute run, made the
/// samplers fall tens of seconds behind and the clients' deliveries with
/// them. The `stat` takes ~30 µs at any size. Older kernels report size 0:
/// there the full count is kept.
pub fn open_sockets(pid: i32) -> Option<u64> {
    let dir = format!("/proc/{pid}/fd");
    let fds = std::fs::metadata(&dir).ok()?.len();
    let cached = || {
        NON_SOCKETS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(p, _)| *p == pid)
            .map(|&(_, n)| n)
    };
    if fds > WALK_MAX_FDS {
        if let Some(other) = cached() {
            return Some(fds.saturating_sub(other));
        }
    }
    let (listed, n) = walk_fds(pid)?;
    if fds > 0 {
        let mut known = NON_SOCKETS.lock().unwrap_or_else(|p| p.into_inner());
        let other = listed.saturating_sub(n);
        match known.iter_mut().find(|(p, _)| *p == pid) {
            Some(k) => k.1 = other,
            None => known.push((pid, other)),
        }
    }
    Some(n)
}

/// (open fds, of which sockets) of `pid`, one `readlink` per fd.
fn walk_fds(pid: i32) -> Option<(u64, u64)> {
    let (mut listed, mut n) = (0u64, 0u64);
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        listed += 1;
        if std::fs::read_link(entry.path())
            .is_ok_and(|l| l.as_os_str().as_encoded_bytes().starts_with(b"socket:"))
        {
            n += 1;
        }
    }
    // Listing our own table counts the listing's handle too.
    if pid == std::process::id() as i32 {
        listed = listed.saturating_sub(1);
    }
    Some((listed, n))
}

/// Soft and hard open-file limits after lifting the soft one to the hard one.
// rlim_t is u64 on Linux but not everywhere.
#[allow(clippy::unnecessary_cast)]
pub fn raise_nofile_limit() -> (u64, u64) {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return (0, 0);
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        (lim.rlim_cur as u64, lim.rlim_max as u64)
    }
}

/// CPU and RSS of stampede and of the target over one phase, sampled once
/// per interval.
#[derive(Default)]
pub struct PhaseUsage {
    first: Option<(ProcSample, Option<ProcSample>)>,
    last: Option<(u64, ProcSample, Option<ProcSample>)>,
    client_peak: u64,
    target_peak: u64,
    target_seen: bool,
    target_sockets_peak: Option<u64>,
    /// The target's sample at the held load (see [`PhaseUsage::mark_held`]).
    target_held: Option<ProcSample>,
    /// The target's (open sockets, RSS bytes) at every sample, and how
    /// many of them led up to the held sample.
    target_points: Vec<(u64, u64)>,
    held_points: usize,
}

impl PhaseUsage {
    /// Samples now; returns (client CPU %, target CPU %, target RSS bytes)
    /// since the last sample (100% = one core). The target is read from
    /// /proc when its `pid` is known, else taken from `scraped` (its
    /// `process_*` metrics, `--target-metrics`).
    pub fn sample(
        &mut self,
        now_ns: u64,
        pid: Option<i32>,
        scraped: Option<ProcSample>,
    ) -> (Option<f64>, Option<f64>, Option<u64>) {
        let Some(me) = sample(None) else {
            return (None, None, None);
        };
        let target = match pid {
            Some(p) => sample(Some(p)),
            None => scraped,
        };
        self.client_peak = self.client_peak.max(me.rss_bytes);
        if let Some(t) = target {
            self.target_peak = self.target_peak.max(t.rss_bytes);
            self.target_seen = true;
            if let Some(n) = t.sockets {
                self.target_sockets_peak = Some(self.target_sockets_peak.unwrap_or(0).max(n));
            }
        }
        match &mut self.first {
            None => self.first = Some((me, target)),
            // A scraped target may answer only after the phase began: its
            // first reading is its baseline.
            Some((_, t @ None)) => *t = target,
            Some(_) => {}
        }
        let pct = |a: f64, b: f64, secs: f64| {
            (secs > 0.0).then(|| ((b - a) / secs * 1000.0).round() / 10.0)
        };
        let out = match &self.last {
            Some((t0, me0, tg0)) => {
                let secs = (now_ns - t0) as f64 / 1e9;
                (
                    pct(me0.cpu_s, me.cpu_s, secs),
                    match (tg0, target) {
                        (Some(a), Some(b)) => pct(a.cpu_s, b.cpu_s, secs),
                        _ => None,
                    },
                    target.map(|t| t.rss_bytes),
                )
            }
            None => (None, None, target.map(|t| t.rss_bytes)),
        };
        if let Some(ProcSample {
            sockets: Some(n),
            rss_bytes,
            ..
        }) = target
        {
            self.target_points.push((n, rss_bytes));
        }
        self.last = Some((now_ns, me, target));
        out
    }

    /// Offers the last sample, taken in the measured window, as the held
    /// load the marginal memory is measured at: the one with the most open
    /// sockets is kept, the latest of equals (clients leave during the
    /// drain, which the measured window includes, while freed memory
    /// mostly stays with the process).
    pub fn mark_held(&mut self) {
        if let Some((_, _, Some(t))) = self.last {
            if self.target_held.is_none_or(|h| t.sockets >= h.sockets) {
                self.target_held = Some(t);
                self.held_points = self.target_points.len();
            }
        }
    }

    /// The target's open sockets at the last sample.
    pub fn target_sockets(&self) -> Option<u64> {
        self.last
            .as_ref()
            .and_then(|(_, _, t)| t.and_then(|t| t.sockets))
    }

    /// CPU used and peak RSS over the phase: (stampede, target).
    pub fn resources(&self) -> (Resources, Option<Resources>) {
        let (Some((me0, tg0)), Some((_, me1, tg1))) = (&self.first, &self.last) else {
            return (Resources::default(), None);
        };
        let client = Resources {
            cpu_s: me1.cpu_s - me0.cpu_s,
            rss_peak_bytes: self.client_peak,
            sockets_peak: None,
            marginal: None,
        };
        let target = match (tg0, tg1) {
            (Some(a), Some(b)) if self.target_seen => Some(Resources {
                cpu_s: b.cpu_s - a.cpu_s,
                rss_peak_bytes: self.target_peak,
                sockets_peak: self.target_sockets_peak,
                marginal: self.target_held.map(|h| Marginal {
                    rss_before_bytes: a.rss_bytes,
                    rss_held_bytes: h.rss_bytes,
                    sockets_added: match (a.sockets, h.sockets) {
                        (Some(x), Some(y)) if y > x => Some(y - x),
                        _ => None,
                    },
                    per_1k_mb: a.sockets.and_then(|before| {
                        rss_slope(&self.target_points[..self.held_points], before)
                            .map(|b| b * 1000.0 / 1048576.0)
                    }),
                }),
            }),
            _ => None,
        };
        (client, target)
    }
}

/// Descriptors a process keeps for itself beyond its connections: the
/// runtime, log and result files, the target's pipes, and slack.
pub const FD_RESERVE: u64 = 512;

/// Processes needed to hold `connections` sockets when each process may
/// open `limit` files.
pub fn needed(connections: u64, limit: u64) -> u32 {
    let per = limit.saturating_sub(FD_RESERVE).max(1);
    connections.div_ceil(per).clamp(1, 256) as u32
}

/// Bytes of RSS per open socket: the least-squares slope of RSS against
/// sockets over the samples taken once clients had connected (more sockets
/// than `before`) until the held load was first reached (the hold's own
/// growth at a constant load — caches, buffers filling — is not per
/// connection). What the first connections bring
/// along once (runtime threads, the publisher's buffers) is the line's
/// intercept, not its slope, so it reads like `benches/hold.sh`'s
/// difference of two loads. `None` without two different socket counts
/// (no ramp to measure); never negative.
pub fn rss_slope(points: &[(u64, u64)], before: u64) -> Option<f64> {
    let top = points.iter().map(|p| p.0).max()?;
    let reached = points.iter().position(|p| p.0 == top)?;
    let pts: Vec<(f64, f64)> = points[..=reached]
        .iter()
        .filter(|(n, _)| *n > before)
        .map(|&(n, r)| (n as f64, r as f64))
        .collect();
    let len = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / len;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / len;
    let var: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let cov: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (pts.len() >= 2 && var > 0.0).then(|| (cov / var).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::{open_sockets, walk_fds};

    /// Past `WALK_MAX_FDS` the count comes from the fd table's size and
    /// still matches a full count (other tests in this process open and
    /// close a few fds meanwhile: hence the slack).
    #[test]
    fn many_sockets_are_counted_without_walking_them() {
        let me = std::process::id() as i32;
        let before = open_sockets(me).expect("own fd table");
        let pairs: Vec<_> = (0..2500)
            .map(|_| std::os::unix::net::UnixStream::pair())
            .collect::<Result<_, _>>()
            .expect("socket pairs");
        let fast = open_sockets(me).expect("own fd table");
        let (_, exact) = walk_fds(me).expect("own fd table");
        assert!(fast >= before + 5000, "{before} then {fast}");
        assert!(
            fast.abs_diff(exact) <= 64,
            "{fast} by size, {exact} by readlink"
        );
        drop(pairs);
    }

    #[test]
    fn slope_leaves_the_first_connections_fixed_cost_out() {
        let mib = 1048576;
        // 4 sockets idle at 9 MiB; the first 700 connections bring 33 MiB
        // along once, then 7 KiB each.
        let pts = [
            (4, 9 * mib),
            (704, 42 * mib),
            (1404, 42 * mib + 700 * 7168),
            (2104, 42 * mib + 1400 * 7168),
            // The hold's own growth at the same load is left out.
            (2104, 50 * mib),
        ];
        let s = super::rss_slope(&pts, 4).unwrap();
        assert!((s - 7168.0).abs() < 1.0, "{s}");
        assert_eq!(super::rss_slope(&pts[..2], 4), None);
        assert_eq!(super::rss_slope(&[(10, 5), (20, 1)], 4), Some(0.0));
    }

    #[test]
    fn reads_self() {
        let s = super::sample(None).expect("own /proc entry");
        assert!(s.rss_bytes > 0);
        assert!(super::sample(Some(i32::MAX)).is_none());
    }
}
