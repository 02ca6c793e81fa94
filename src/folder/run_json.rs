//! `run.json`: what ran, where, when, and how it ended. Written at the start
//! (status `running`) and rewritten at the end, so even a killed run leaves a
//! description of itself.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Host facts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostInfo {
    /// Host name.
    pub hostname: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// OS and architecture.
    pub os: String,
    /// Open-file soft limit after raising it.
    pub nofile_limit: u64,
}

/// The target as run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetInfo {
    /// Base URL.
    pub url: String,
    /// True for the reference server.
    pub builtin: bool,
    /// Its pid, when watched.
    pub pid: Option<i32>,
}

/// One phase's timing and publisher figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseInfo {
    /// Phase number.
    pub index: usize,
    /// Groups in the phase.
    pub groups: Vec<String>,
    /// Seconds since the run start.
    pub start_s: f64,
    /// Measured window start.
    pub measure_from_s: f64,
    /// Measured publish window end.
    pub measure_to_s: f64,
    /// Phase end.
    pub end_s: f64,
    /// Cut short by an interruption or fault.
    pub stopped_early: bool,
    /// Events published in the whole phase.
    pub published_total: u64,
    /// Publishes that failed.
    pub publish_errors: u64,
    /// Publish latency p99 from the intended time, ms.
    pub publish_p99_ms: Option<f64>,
    /// First publish failure.
    pub publish_first_error: Option<String>,
    /// The sweep value this phase ran, for a sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_value: Option<String>,
    /// The phase's `[storm]`, when the scenario has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm: Option<StormInfo>,
}

/// A phase's reconnect storm and what each group measured of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StormInfo {
    /// Seconds since the run start.
    pub at_s: f64,
    /// `client` or `target`.
    pub via: String,
    /// Why the target's drop failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Per subscribing group.
    #[serde(default)]
    pub groups: Vec<StormGroup>,
}

impl StormInfo {
    /// Fills `groups` from the summary rows of the phase's groups that
    /// measured the storm (so a merge can refill it from merged rows).
    pub fn fill(&mut self, phase_groups: &[String], rows: &[super::summary::SummaryRow]) {
        self.groups = rows
            .iter()
            .filter(|r| phase_groups.contains(&r.group) && r.lost.is_some())
            .map(|r| StormGroup {
                group: r.group.clone(),
                reconnected: r.storm_reconnected,
                reconnect_p50_ms: r.storm_reconnect_p50_ms,
                reconnect_p99_ms: r.storm_reconnect_p99_ms,
                reconnect_max_ms: r.storm_reconnect_max_ms,
                receiving: r.storm_receiving,
                all_receiving_s: r.storm_all_receiving_s,
                lost: r.lost,
            })
            .collect();
    }
}

/// One group's storm figures (the `storm_*` summary columns, and `lost`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StormGroup {
    /// Group.
    pub group: String,
    /// Clients subscribed again after the drop.
    pub reconnected: Option<u64>,
    /// Drop to re-subscription, p50.
    pub reconnect_p50_ms: Option<f64>,
    /// Drop to re-subscription, p99.
    pub reconnect_p99_ms: Option<f64>,
    /// Drop to re-subscription, slowest client.
    pub reconnect_max_ms: Option<f64>,
    /// Clients that received an event again.
    pub receiving: Option<u64>,
    /// Drop to the last client's first event after it.
    pub all_receiving_s: Option<f64>,
    /// Events lost in the measured window (the storm's gap included).
    pub lost: Option<u64>,
}

/// The first error of each kind seen by a group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorExample {
    /// Group.
    pub group: String,
    /// Error kind label.
    pub kind: String,
    /// Message.
    pub detail: String,
}

/// A message without an envelope, kept as an example of its kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageExample {
    /// Group.
    pub group: String,
    /// `control` (a profile rule names it) or `other`.
    pub kind: String,
    /// The message (cut at 300 bytes, secrets redacted).
    pub message: String,
}

/// The whole `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// stampede version.
    pub stampede_version: String,
    /// Scenario file as given.
    pub scenario_file: String,
    /// The resolved plan.
    pub plan: serde_json::Value,
    /// Host.
    pub host: HostInfo,
    /// Target.
    pub target: TargetInfo,
    /// Start, RFC 3339 UTC.
    pub started_at: String,
    /// End, RFC 3339 UTC.
    pub ended_at: Option<String>,
    /// Wall seconds.
    pub duration_s: Option<f64>,
    /// `running`, `completed`, `interrupted` or `failed`.
    pub status: String,
    /// Process exit code.
    pub exit_code: Option<i32>,
    /// True when the run did not complete its plan.
    pub partial: bool,
    /// Why it is partial.
    pub partial_reason: Option<String>,
    /// Phases.
    pub phases: Vec<PhaseInfo>,
    /// First errors per group and kind.
    pub errors: Vec<ErrorExample>,
    /// A few messages without an envelope per group and kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub message_examples: Vec<MessageExample>,
    /// Things that make the numbers less trustworthy.
    pub warnings: Vec<String>,
    /// Threshold results (each: value, limit, pass/fail).
    #[serde(default)]
    pub thresholds: Vec<ThresholdResult>,
    /// Number of repeats, when this folder aggregates repeated runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<usize>,
    /// The sweep (parameter, values, each value's groups and phases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepInfo>,
    /// Wall-clock time of the run clock's zero, Unix seconds: `phases`,
    /// the `.hlog` intervals and `elapsed_s` count from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_unix_s: Option<f64>,
    /// Digest of the scenario as planned (file, overrides, version) before
    /// any sharding: shards of one run share it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario_digest: Option<String>,
    /// This run is one shard of a sharded run (`--shard I/N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardRun>,
    /// This folder merges shard runs (`stampede merge`, `--processes`):
    /// each shard's host and timing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedShard>,
}

/// One shard's place in a sharded run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardRun {
    /// Shard number, from 0.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
    /// The agreed start (`--start-at`), RFC 3339 UTC.
    pub start_at: Option<String>,
    /// How late this shard began against `start_at` (0 when on time).
    pub late_by_s: Option<f64>,
}

/// What a merged folder keeps of each shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergedShard {
    /// Shard number.
    pub index: u32,
    /// The shard's run folder as given to `merge`.
    pub dir: String,
    /// The shard's host.
    pub host: HostInfo,
    /// Its start and end, RFC 3339.
    pub started_at: String,
    /// End.
    pub ended_at: Option<String>,
    /// Its clock's zero, Unix seconds.
    pub epoch_unix_s: Option<f64>,
    /// How late it began against the agreed start.
    pub late_by_s: Option<f64>,
    /// Its status and exit code.
    pub status: String,
    /// Exit code.
    pub exit_code: Option<i32>,
}

impl RunInfo {
    /// Writes `dir/run.json` (atomically: temp file, then rename).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join("run.json");
        let tmp = dir.join(".run.json.tmp");
        let text =
            serde_json::to_string_pretty(self).map_err(|e| Error::output(&path, e.into()))?;
        // Last line of defence: no expanded secret reaches the file, whatever
        // field it found its way into.
        let text = crate::secrets::redact(&text);
        std::fs::write(&tmp, text + "\n").map_err(|e| Error::output(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::output(&path, e))?;
        // An ended run's summary for scripts goes with it, from the same
        // facts: every writer of a finished folder writes run.json last.
        if self.status != "running" && dir.join(super::summary::FILE).exists() {
            super::summary_json::write(dir, self)?;
        }
        Ok(())
    }

    /// Reads `dir/run.json`.
    pub fn read(dir: &Path) -> Result<RunInfo> {
        let path = dir.join("run.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::RunFolder {
            path: path.clone(),
            message: e.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| Error::RunFolder {
            path,
            message: e.to_string(),
        })
    }
}

/// The outcome of one threshold on one group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// The threshold as written.
    pub threshold: String,
    /// Group it was applied to.
    pub group: String,
    /// Column.
    pub column: String,
    /// The measured value (`None`: no samples).
    pub value: Option<f64>,
    /// The condition, e.g. `< 50`.
    pub limit: String,
    /// True if it held.
    pub passed: bool,
}

/// A group of one sweep value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepGroup {
    /// The group's name in the scenario.
    pub group: String,
    /// Its name in summary.csv, timeseries.csv and the .hlog files.
    pub summary_group: String,
}

/// The sweep as recorded in `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepInfo {
    /// The key path.
    pub parameter: String,
    /// Per value, in run order.
    pub values: Vec<SweepValueInfo>,
}

/// One value as recorded in `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepValueInfo {
    /// The value as a label.
    pub value: String,
    /// Seconds or number, where the value parses as one.
    pub value_num: Option<f64>,
    /// Its groups.
    pub groups: Vec<SweepGroup>,
    /// Indices of the phases (`run.json` `phases`) that ran this value.
    pub phases: Vec<usize>,
}
