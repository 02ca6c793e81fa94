//! `run.json` over a run's life: written first as "running", grown phase
//! by phase, and finished with the run's status and exit code however it
//! ends.

use std::time::SystemTime;

use super::{Env, LATE_WARNING};
use crate::exit;
use crate::folder;
use crate::folder::run_json::{PhaseInfo, RunInfo, ShardRun, StormInfo};
use crate::gate::threshold::{self, ThresholdResult};
use crate::load::runner::PhaseReport;
use crate::metrics::summary::{pct_ms, GroupResult, SummaryRow};
use crate::plan::Plan;
use crate::shutdown::StopReason;

/// The run's `run.json` before its first phase: status "running", partial.
pub(super) fn start(env: &Env<'_>, started: SystemTime) -> RunInfo {
    let (plan, opts, clock, late_by) = (env.plan, env.opts, env.clock, env.late_by);
    let mut info = RunInfo {
        stampede_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario_file: opts.scenario_file.clone(),
        plan: serde_json::to_value(plan).unwrap_or(serde_json::Value::Null),
        host: super::target::host_info(env.nofile),
        target: env.target.info.clone(),
        started_at: folder::rfc3339(started),
        ended_at: None,
        duration_s: None,
        status: "running".into(),
        exit_code: None,
        partial: true,
        partial_reason: Some("the run has not finished".into()),
        phases: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        thresholds: Vec::new(),
        repeats: None,
        sweep: plan.sweep.as_ref().map(|s| s.info()),
        epoch_unix_s: Some(clock.unix_s(0)),
        scenario_digest: opts.digest.clone(),
        shard: plan.shard.map(|s| ShardRun {
            index: s.index,
            count: s.count,
            start_at: opts.start_at.map(folder::rfc3339),
            late_by_s: late_by.map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
        }),
        merged_from: Vec::new(),
    };
    if let Some(late) = late_by.filter(|d| *d > LATE_WARNING) {
        info.warnings.push(format!(
            "started {:.3} s after --start-at: its first phase overlaps less with the other shards'",
            late.as_secs_f64()
        ));
    }
    if plan.tls.as_ref().is_some_and(|t| t.insecure) {
        info.warnings
            .push("--insecure: the target's TLS certificate was not verified".into());
    }
    info
}

/// The phase's entry in `run.json`: its timing, publishing and storm.
pub(super) fn phase(
    pi: usize,
    plan: &Plan,
    groups: &[usize],
    report: &PhaseReport,
    sweep_value: Option<String>,
    results: &[GroupResult],
) -> PhaseInfo {
    let s = |ns: u64| (ns as f64 / 1e6).round() / 1e3;
    PhaseInfo {
        index: pi,
        groups: groups
            .iter()
            .map(|&g| plan.groups[g].name.clone())
            .collect(),
        start_s: s(report.start_ns),
        measure_from_s: s(report.measure_from_ns),
        measure_to_s: s(report.measure_to_ns),
        end_s: s(report.end_ns),
        stopped_early: report.stopped_early,
        published_total: report
            .publish
            .log
            .channels
            .iter()
            .map(|c| c.sent_ns.len() as u64)
            .sum::<u64>()
            - report.publish.errors,
        publish_errors: report.publish.errors,
        publish_p99_ms: pct_ms(&report.publish.latency, 0.99),
        publish_first_error: report.publish.first_error.clone(),
        sweep_value,
        storm: plan.storm.map(|st| {
            let mut info = StormInfo {
                at_s: s(report.start_ns + st.at.as_nanos() as u64),
                via: match st.via {
                    crate::plan::StormVia::Client => "client".into(),
                    crate::plan::StormVia::Target => "target".into(),
                },
                error: report.storm_error.clone(),
                groups: Vec::new(),
            };
            let names: Vec<String> = groups
                .iter()
                .map(|&g| plan.groups[g].name.clone())
                .collect();
            let rows: Vec<SummaryRow> = results.iter().map(GroupResult::row).collect();
            info.fill(&names, &rows);
            info
        }),
    }
}

/// Ends `run.json`: thresholds, the lost-events warning, status, exit code
/// and partial flag from how the run stopped. Returns the exit code and the
/// threshold results.
pub(super) fn finish(
    info: &mut RunInfo,
    plan: &Plan,
    stop: &Option<StopReason>,
    publisher_never_succeeded: Option<String>,
    rows: &[SummaryRow],
    started: SystemTime,
) -> (i32, Vec<ThresholdResult>) {
    let threshold_results = threshold::evaluate(&plan.thresholds, rows);
    let thresholds_failed = threshold_results.iter().any(|t| !t.passed);
    info.thresholds = threshold_results.clone();
    let lost: u64 = rows.iter().filter_map(|r| r.lost).sum();
    if lost > 0 {
        info.warnings
            .push(format!("{lost} events were lost (see the `lost` column)"));
    }
    let (status, code, reason) = match stop {
        None if publisher_never_succeeded.is_some() => {
            ("failed", exit::RUNTIME, publisher_never_succeeded)
        }
        None if thresholds_failed => ("completed", exit::THRESHOLD, None),
        None => ("completed", exit::OK, None),
        Some(StopReason::Threshold(why)) => ("aborted", exit::THRESHOLD, Some(why.clone())),
        Some(StopReason::Interrupted) => (
            "interrupted",
            exit::INTERRUPTED,
            Some("interrupted (Ctrl-C)".to_string()),
        ),
        Some(StopReason::Fatal(why)) => ("failed", exit::RUNTIME, Some(why.clone())),
    };
    let ended = SystemTime::now();
    info.ended_at = Some(folder::rfc3339(ended));
    info.duration_s = ended.duration_since(started).ok().map(|d| d.as_secs_f64());
    info.status = status.into();
    info.exit_code = Some(code);
    info.partial = stop.is_some();
    info.partial_reason = reason;
    (code, threshold_results)
}
