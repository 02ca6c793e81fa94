//! `run.json` of a merged folder: the shards' plans, run info and phase
//! timings brought onto one time base and added up.

use super::{max_opt, ShardData};
use crate::folder::run_json::{ErrorExample, MergedShard, PhaseInfo, RunInfo};

/// The scenario's plan from the shards' plans: client counts and request
/// rates add up; the shard markers go.
fn merged_plan(plans: &[&serde_json::Value]) -> serde_json::Value {
    use serde_json::Value;
    let mut out = plans.first().map_or(Value::Null, |p| (*p).clone());
    if let Some(o) = out.as_object_mut() {
        o.remove("shard");
    }
    let n = out
        .get("groups")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    for gi in 0..n {
        let field = |key: &str| -> Option<f64> {
            plans
                .iter()
                .map(|p| {
                    p.pointer(&format!("/groups/{gi}/{key}"))
                        .and_then(Value::as_f64)
                })
                .sum()
        };
        let clients = plans
            .iter()
            .filter_map(|p| {
                p.pointer(&format!("/groups/{gi}/clients"))
                    .and_then(Value::as_u64)
            })
            .sum::<u64>();
        let rate = field("rate_per_s");
        if let Some(g) = out
            .pointer_mut(&format!("/groups/{gi}"))
            .and_then(Value::as_object_mut)
        {
            g.insert("clients".into(), clients.into());
            g.remove("shard_of");
            if let Some(r) = rate {
                g.insert("rate_per_s".into(), r.into());
            }
        }
    }
    let values = out
        .pointer("/sweep/values")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    for vi in 0..values {
        let path = format!("/sweep/values/{vi}/plan");
        let parts: Vec<Value> = plans
            .iter()
            .filter_map(|p| p.pointer(&path).cloned())
            .collect();
        let merged = merged_plan(&parts.iter().collect::<Vec<_>>());
        if let Some(slot) = out.pointer_mut(&path) {
            *slot = merged;
        }
    }
    out
}

/// `run.json` of the merged folder.
pub(super) fn merged_info(shards: &[ShardData], epoch: f64, missing: &[u32]) -> RunInfo {
    let first = &shards[0].info;
    let plans: Vec<&serde_json::Value> = shards.iter().map(|s| &s.info.plan).collect();
    let rank = |status: &str| match status {
        "completed" => 0,
        "aborted" => 1,
        "interrupted" => 2,
        "running" => 3,
        _ => 4,
    };
    let status = shards
        .iter()
        .map(|s| s.info.status.as_str())
        .max_by_key(|s| rank(s))
        .unwrap_or("completed")
        .to_string();
    let mut reasons: Vec<String> = shards
        .iter()
        .filter_map(|s| {
            let sh = s.info.shard.as_ref()?;
            let why = s.info.partial_reason.as_ref().filter(|_| s.info.partial)?;
            Some(format!("shard {}: {why}", sh.index))
        })
        .collect();
    if !missing.is_empty() {
        reasons.push(format!(
            "shards {} of {} are missing: totals cover the shards given only",
            missing
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            first.shard.as_ref().map_or(0, |s| s.count)
        ));
    }
    let mut warnings: Vec<String> = reasons
        .iter()
        .filter(|r| r.contains("missing"))
        .cloned()
        .collect();
    let mut errors: Vec<ErrorExample> = Vec::new();
    for s in shards {
        let index = s.info.shard.as_ref().map_or(0, |s| s.index);
        warnings.extend(
            s.info
                .warnings
                .iter()
                .map(|w| format!("shard {index}: {w}")),
        );
        for e in &s.info.errors {
            if !errors
                .iter()
                .any(|x| x.group == e.group && x.kind == e.kind)
            {
                errors.push(ErrorExample {
                    detail: format!("shard {index}: {}", e.detail),
                    ..e.clone()
                });
            }
        }
    }
    let phases = merged_phases(shards, epoch);
    let started = shards
        .iter()
        .map(|s| s.info.started_at.clone())
        .min()
        .unwrap_or_default();
    let ended = shards.iter().filter_map(|s| s.info.ended_at.clone()).max();
    let span = shards
        .iter()
        .filter_map(|s| s.info.duration_s.map(|d| s.epoch - epoch + d))
        .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))));
    RunInfo {
        stampede_version: first.stampede_version.clone(),
        scenario_file: first.scenario_file.clone(),
        plan: merged_plan(&plans),
        host: first.host.clone(),
        target: first.target.clone(),
        started_at: started,
        ended_at: ended,
        duration_s: span,
        status,
        exit_code: None,
        partial: !reasons.is_empty(),
        partial_reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        phases,
        errors,
        warnings,
        thresholds: Vec::new(),
        repeats: None,
        sweep: first.sweep.clone(),
        epoch_unix_s: Some(epoch),
        scenario_digest: first.scenario_digest.clone(),
        shard: None,
        merged_from: shards
            .iter()
            .map(|s| MergedShard {
                index: s.info.shard.as_ref().map_or(0, |s| s.index),
                dir: s.dir.display().to_string(),
                host: s.info.host.clone(),
                started_at: s.info.started_at.clone(),
                ended_at: s.info.ended_at.clone(),
                epoch_unix_s: Some(s.epoch),
                late_by_s: s.info.shard.as_ref().and_then(|s| s.late_by_s),
                status: s.info.status.clone(),
                exit_code: s.info.exit_code,
            })
            .collect(),
    }
}

/// Phase timing on the merged time base: the earliest start, the common
/// measured window's widest extent, the latest end; publisher figures add.
fn merged_phases(shards: &[ShardData], epoch: f64) -> Vec<PhaseInfo> {
    let mut out: Vec<PhaseInfo> = Vec::new();
    let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
    for s in shards {
        let shift = s.epoch - epoch;
        for p in &s.info.phases {
            let moved = PhaseInfo {
                start_s: r3(p.start_s + shift),
                measure_from_s: r3(p.measure_from_s + shift),
                measure_to_s: r3(p.measure_to_s + shift),
                end_s: r3(p.end_s + shift),
                ..p.clone()
            };
            match out.iter_mut().find(|q| q.index == p.index) {
                None => out.push(moved),
                Some(q) => {
                    q.start_s = q.start_s.min(moved.start_s);
                    q.measure_from_s = q.measure_from_s.min(moved.measure_from_s);
                    q.measure_to_s = q.measure_to_s.max(moved.measure_to_s);
                    q.end_s = q.end_s.max(moved.end_s);
                    q.stopped_early |= moved.stopped_early;
                    q.published_total += moved.published_total;
                    q.publish_errors += moved.publish_errors;
                    q.publish_p99_ms = max_opt(q.publish_p99_ms, moved.publish_p99_ms);
                    if q.publish_first_error.is_none() {
                        q.publish_first_error = moved.publish_first_error;
                    }
                    if let (Some(a), Some(b)) = (&mut q.storm, moved.storm) {
                        a.at_s = a.at_s.min(b.at_s);
                        a.error = a.error.take().or(b.error);
                    }
                }
            }
        }
    }
    out.sort_by_key(|p| p.index);
    out
}
