//! Reaching the target: the reference server (started as a child or
//! attached to) or a URL, checked reachable before anything runs.

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

use super::RunOptions;
use crate::error::{Error, Result};
use crate::folder::run_json::{HostInfo, TargetInfo};
use crate::metrics::process;
use crate::plan::{Plan, TargetPlan};
use crate::reference::ReferenceChild;
use crate::shutdown::Shutdown;

/// The target of this run.
pub(super) struct Target {
    pub addr: SocketAddr,
    pub authority: String,
    pub info: TargetInfo,
    pub child_done: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl Target {
    /// The reference server at `addr`, attached to or started by this run.
    fn builtin(
        addr: SocketAddr,
        url: String,
        pid: i32,
        child_done: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
    ) -> Target {
        Target {
            addr,
            authority: addr.to_string(),
            info: TargetInfo {
                url,
                builtin: true,
                pid: Some(pid),
            },
            child_done,
        }
    }
}

/// One connect before anything runs, so an unreachable target is one clear
/// error (exit 3), not a run of connect failures.
async fn reachable(addr: SocketAddr, url: &str, plan: &Plan) -> Result<()> {
    crate::net::connect(addr, plan.connect_timeout)
        .await
        .map(|_| ())
        .map_err(|f| Error::TargetUnreachable(format!("{url}: {}", f.detail)))
}

/// The first of a name's addresses that accepts a connection, tried in
/// the resolver's order as curl does (`localhost` may give `::1` first to
/// a server listening on 127.0.0.1 only). `Err(None)`: no address at all.
async fn first_reachable(
    addrs: &[SocketAddr],
    url: &str,
    plan: &Plan,
) -> std::result::Result<SocketAddr, Option<Error>> {
    let mut failures = Vec::new();
    for &addr in addrs {
        match crate::net::connect(addr, plan.connect_timeout).await {
            Ok(_) => return Ok(addr),
            Err(f) => failures.push(f.detail),
        }
    }
    if failures.is_empty() {
        return Err(None);
    }
    Err(Some(Error::TargetUnreachable(format!(
        "{url}: {}",
        failures.join("; ")
    ))))
}

pub(super) async fn start_target(
    plan: &Plan,
    opts: &RunOptions,
    shutdown: &Shutdown,
) -> Result<Target> {
    match &plan.target {
        TargetPlan::Builtin if opts.attach_builtin.is_some() => {
            let (url, pid) = opts.attach_builtin.clone().unwrap_or_default();
            let addr: SocketAddr = url
                .strip_prefix("http://")
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| {
                    Error::Usage(format!("--attach-builtin: {url:?} is not http://IP:PORT"))
                })?;
            reachable(addr, &url, plan).await?;
            Ok(Target::builtin(addr, url, pid, None))
        }
        TargetPlan::Builtin => {
            let exe = opts
                .builtin_exe
                .clone()
                .or_else(|| std::env::current_exe().ok())
                .ok_or_else(|| Error::TargetStart("cannot locate the stampede binary".into()))?;
            // The target holds every connection too: as many workers as
            // its open-file limit needs (the same hard limit as ours).
            let workers = process::needed(plan.peak_connections(), process::raise_nofile_limit().1);
            let child = ReferenceChild::spawn_with(
                &exe,
                plan.builtin_delay,
                plan.builtin_cost_per_conn,
                plan.faults.as_ref(),
                workers,
            )
            .await?;
            let (addr, url, pid) = (child.addr, child.url.clone(), child.pid);
            let done = CancellationToken::new();
            let watch = child.watch(shutdown.clone(), done.clone());
            Ok(Target::builtin(addr, url, pid, Some((done, watch))))
        }
        TargetPlan::Url { url, authority, .. } => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(authority.as_str())
                .await
                .map_err(|e| {
                    Error::TargetUnreachable(format!("{url}: cannot resolve {authority}: {e}"))
                })?
                .collect();
            let addr = first_reachable(&addrs, url, plan)
                .await
                .map_err(|e| match e {
                    Some(e) => e,
                    None => Error::TargetUnreachable(format!("{url}: {authority} has no address")),
                })?;
            Ok(Target {
                addr,
                authority: authority.clone(),
                info: TargetInfo {
                    url: url.clone(),
                    builtin: false,
                    pid: plan.target_pid,
                },
                child_done: None,
            })
        }
    }
}

pub(super) fn host_info(nofile: u64) -> HostInfo {
    HostInfo {
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        nofile_limit: nofile,
    }
}
