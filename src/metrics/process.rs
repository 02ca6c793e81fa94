//! CPU time and memory of this process and of a target process, read from
//! /proc (Linux). Sampled once per interval by the run loop.

use serde::Serialize;

/// One reading of a process's resource use.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcSample {
    /// User + system CPU seconds since the process started.
    pub cpu_s: f64,
    /// Resident set size in bytes now.
    pub rss_bytes: u64,
}

/// Reads `pid` (this process when `None`); `None` if it is gone.
pub fn sample(pid: Option<i32>) -> Option<ProcSample> {
    let proc = match pid {
        Some(p) => procfs::process::Process::new(p).ok()?,
        None => procfs::process::Process::myself().ok()?,
    };
    let stat = proc.stat().ok()?;
    let ticks = procfs::ticks_per_second() as f64;
    Some(ProcSample {
        cpu_s: (stat.utime + stat.stime) as f64 / ticks,
        rss_bytes: stat.rss * procfs::page_size(),
    })
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

#[cfg(test)]
mod tests {
    #[test]
    fn reads_self() {
        let s = super::sample(None).expect("own /proc entry");
        assert!(s.rss_bytes > 0);
        assert!(super::sample(Some(i32::MAX)).is_none());
    }
}
