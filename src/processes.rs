//! `stampede run --processes P`: P shard processes of this binary on this
//! machine, started together, then merged. It is the sharded path of
//! `--shard` + `merge` end to end, with one difference: the shards share
//! one reference server (started here), so the target is the same server a
//! single-process run would have loaded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cli::RunArgs;
use crate::error::{Error, Result};
use crate::plan::{Plan, TargetPlan};
use crate::reference::ReferenceChild;
use crate::{exit, merge, report};

// The open-file arithmetic lives with the limit it divides.
pub use crate::metrics::process::{needed, FD_RESERVE};

/// The folder of shard `i` inside the merged run folder.
pub fn shard_dir(dir: &Path, i: u32) -> PathBuf {
    dir.join(format!("shard-{i}"))
}

/// Runs `plan` as `processes` shard processes and merges them into one
/// run folder; returns the exit code.
pub async fn run_command(args: &RunArgs, plan: Plan, processes: u32) -> Result<i32> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::TargetStart(format!("cannot locate the stampede binary: {e}")))?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| report::default_run_dir(&args.results, &plan.name, SystemTime::now()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::output(&dir, e))?;
    // One reference server for every shard, as in a single-process run.
    let target = match plan.target {
        TargetPlan::Builtin => Some(
            ReferenceChild::spawn_with(
                &exe,
                plan.builtin_delay,
                plan.builtin_cost_per_conn,
                plan.faults.as_ref(),
                needed(
                    plan.peak_connections(),
                    crate::metrics::process::raise_nofile_limit().1,
                ),
            )
            .await?,
        ),
        TargetPlan::Url { .. } => None,
    };
    // Whole seconds, with time for every process to start and plan.
    let lead = Duration::from_millis(1500 + 100 * u64::from(processes));
    let start_at = (SystemTime::now() + lead)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() + 1);
    if !args.quiet {
        eprintln!(
            "stampede: {processes} shard processes, starting together at Unix time {start_at}; folders in {}",
            dir.display()
        );
    }

    let mut children = Vec::with_capacity(processes as usize);
    for i in 0..processes {
        let mut cmd = shard_command(&exe, args, &dir, i, processes, start_at, target.as_ref());
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            // Own process group: a terminal Ctrl-C reaches only this
            // process, which passes one interrupt on to each shard.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::TargetStart(format!("{}: {e}", exe.display())))?;
        children.push(child);
    }

    let (codes, interrupts) = wait_for_shards(&mut children, processes, args.quiet).await?;
    drop(target);

    let dirs: Vec<PathBuf> = (0..processes).map(|i| shard_dir(&dir, i)).collect();
    for (i, (d, code)) in dirs.iter().zip(&codes).enumerate() {
        if !d.join("run.json").is_file() {
            return Err(Error::TargetStart(format!(
                "shard {i}/{processes} exited with {code} before writing {}",
                d.display()
            )));
        }
    }
    let merged = merge::merge(&dirs, &dir)?;
    let mut stdout = std::io::stdout().lock();
    if !args.quiet {
        crate::print_results(&merged.rows, &merged.thresholds, &mut stdout);
        if interrupts > 0 {
            eprintln!("stampede: run stopped early (interrupted); partial results written");
        }
    }
    if !args.no_report {
        merge::write_report(&merged.dir);
    }
    let _ = writeln!(stdout, "{}", merged.dir.display());
    Ok(if interrupts > 0 {
        exit::INTERRUPTED
    } else {
        merged.exit_code
    })
}

/// The command line of shard `i`: the scenario and flags of this run, the
/// shard's slice and folder, the common start time and the shared
/// reference server.
fn shard_command(
    exe: &Path,
    args: &RunArgs,
    dir: &Path,
    i: u32,
    processes: u32,
    start_at: u64,
    target: Option<&ReferenceChild>,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("run")
        .arg(&args.scenario)
        .arg("--shard")
        .arg(format!("{i}/{processes}"))
        .arg("--start-at")
        .arg(start_at.to_string())
        .arg("--out")
        .arg(shard_dir(dir, i))
        .args(["--quiet", "--no-report"]);
    for s in &args.sets {
        cmd.arg("--set").arg(s);
    }
    if let Some(d) = args.duration {
        cmd.arg(format!("--duration={}ms", d.as_millis()));
    }
    if let Some(t) = &args.target {
        cmd.arg("--target").arg(t);
    }
    if let Some(p) = &args.profile {
        cmd.arg("--profile").arg(p);
    }
    if let Some(pid) = args.target_pid {
        cmd.arg("--target-pid").arg(pid.to_string());
    }
    if !args.local_addr.is_empty() {
        let list: Vec<String> = args.local_addr.iter().map(|a| a.to_string()).collect();
        cmd.arg("--local-addr").arg(list.join(","));
    }
    if let Some(url) = &args.prometheus_remote_write {
        // Each shard pushes its own series (labelled `shard`); they share
        // the parent's `run` label, so PromQL adds them up.
        cmd.arg("--prometheus-remote-write")
            .arg(&url.url)
            .arg(format!(
                "--prometheus-remote-write-interval={}ms",
                args.prometheus_remote_write_interval.as_millis()
            ));
        if !args.prometheus_labels.iter().any(|(k, _)| k == "run") {
            let run = dir
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned());
            cmd.arg("--prometheus-label").arg(format!("run={run}"));
        }
        for (k, v) in &args.prometheus_labels {
            cmd.arg("--prometheus-label").arg(format!("{k}={v}"));
        }
    }
    for m in &args.target_metrics {
        cmd.arg("--target-metrics").arg(&m.url);
    }
    if !args.target_metrics_keep.is_empty() {
        cmd.arg("--target-metrics-keep")
            .arg(args.target_metrics_keep.join(","));
    }
    if let Some(t) = target {
        cmd.arg("--attach-builtin")
            .arg(&t.url)
            .arg(t.pid.to_string());
    }
    cmd
}

/// Waits for every shard in turn and returns their exit codes and how many
/// interrupts arrived. The first Ctrl-C is passed on to the shards not yet
/// reaped, so they write their results; a second exits at once.
async fn wait_for_shards(
    children: &mut [tokio::process::Child],
    processes: u32,
    quiet: bool,
) -> Result<(Vec<i32>, u32)> {
    let pids: Vec<Option<i32>> = children.iter().map(|c| c.id().map(|p| p as i32)).collect();
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Error::TargetStart(format!("cannot watch for Ctrl-C: {e}")))?;
    let mut interrupts = 0;
    let mut codes = Vec::with_capacity(children.len());
    for (i, child) in children.iter_mut().enumerate() {
        let code = loop {
            tokio::select! {
                status = child.wait() => {
                    break status.ok().and_then(|s| s.code()).unwrap_or(exit::RUNTIME);
                }
                Some(()) = sigint.recv() => {
                    interrupts += 1;
                    if interrupts == 1 {
                        eprintln!("stampede: interrupted, the shards are writing their results (Ctrl-C again to quit at once)");
                    }
                    // Shards not yet reaped: their pids are still theirs.
                    for pid in pids[i..].iter().flatten() {
                        // SAFETY: kill(2) with a pid and a signal number has no
                        // memory effects.
                        unsafe {
                            libc::kill(*pid, libc::SIGINT);
                        }
                    }
                    if interrupts > 1 {
                        std::process::exit(exit::INTERRUPTED);
                    }
                }
            }
        };
        if !quiet {
            eprintln!("stampede: shard {i}/{processes} finished (exit {code})");
        }
        codes.push(code);
    }
    Ok((codes, interrupts))
}
