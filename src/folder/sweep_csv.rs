//! `sweep.csv`: one row per sweep value per group, the curves of a sweep as
//! a table. Derived from `summary.csv` rows and the sweep recorded in
//! `run.json`, so a `--repeat` folder's medians give its curves too.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::run_json::{PhaseInfo, SweepInfo};
use super::summary::SummaryRow;
use crate::error::Result;

/// File name in the run folder.
pub const FILE: &str = "sweep.csv";

/// One `sweep.csv` row. Missing columns read as empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SweepRow {
    /// The swept key path.
    pub parameter: String,
    /// The value as written.
    pub value: String,
    /// Seconds for a duration, the number for a number; empty otherwise.
    pub value_num: Option<f64>,
    /// The group's name in the scenario.
    pub group: String,
    /// Its name in summary.csv (`group@value`).
    pub summary_group: String,
    /// Transport.
    pub transport: String,
    /// Clients.
    pub clients: u64,
    /// Events delivered in the measured window.
    pub delivered: Option<u64>,
    /// Delivery latency p50, ms.
    pub delivery_p50_ms: Option<f64>,
    /// Delivery latency p99, ms.
    pub delivery_p99_ms: Option<f64>,
    /// Requests (or sessions) per delivery.
    pub requests_per_delivery: Option<f64>,
    /// Wire bytes per delivery.
    pub bytes_per_delivery: Option<f64>,
    /// Target CPU seconds of the phase.
    pub target_cpu_s: Option<f64>,
    /// Target CPU ms per 1,000 deliveries (empty when the phase was shared).
    pub target_cpu_ms_per_1k_deliveries: Option<f64>,
    /// Events lost.
    pub lost: Option<u64>,
    /// Failed exchanges.
    pub errors: u64,
    /// Request / echo groups: p50 from the intended start, ms.
    pub request_p50_ms: Option<f64>,
    /// Request / echo groups: p99 from the intended start, ms.
    pub request_p99_ms: Option<f64>,
    /// Request-based kinds: requests per second.
    pub requests_per_s: Option<f64>,
}

/// The rows of `sweep`, in value order then group order; groups that did
/// not run (an interrupted run) have no row.
pub fn rows(sweep: &SweepInfo, phases: &[PhaseInfo], summary: &[SummaryRow]) -> Vec<SweepRow> {
    let mut out = Vec::new();
    for v in &sweep.values {
        for g in &v.groups {
            let Some(r) = summary.iter().find(|r| r.group == g.summary_group) else {
                continue;
            };
            // Target CPU is measured per phase: a shared one cannot be split.
            let shared = phases
                .iter()
                .any(|p| p.groups.len() > 1 && p.groups.contains(&g.summary_group));
            out.push(SweepRow {
                parameter: sweep.parameter.clone(),
                value: v.value.clone(),
                value_num: v.value_num,
                group: g.group.clone(),
                summary_group: g.summary_group.clone(),
                transport: r.transport.clone(),
                clients: r.clients,
                delivered: r.delivered,
                delivery_p50_ms: r.delivery_p50_ms,
                delivery_p99_ms: r.delivery_p99_ms,
                requests_per_delivery: r.requests_per_delivery,
                bytes_per_delivery: r.bytes_per_delivery,
                target_cpu_s: r.target_cpu_s,
                target_cpu_ms_per_1k_deliveries: if shared {
                    None
                } else {
                    super::cost::target_cpu_ms_per_1k_deliveries(r.target_cpu_s, r.delivered)
                },
                lost: r.lost,
                errors: r.errors,
                request_p50_ms: r.request_p50_ms,
                request_p99_ms: r.request_p99_ms,
                requests_per_s: r.requests_per_s,
            });
        }
    }
    out
}

/// Writes `dir/sweep.csv`; nothing before the first value has a row.
pub fn write(dir: &Path, rows: &[SweepRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    super::write_rows(&dir.join(FILE), rows)
}

/// Reads `dir/sweep.csv`; an empty list when the run had no sweep.
pub fn read(dir: &Path) -> Result<Vec<SweepRow>> {
    super::read_rows_if_present(&dir.join(FILE))
}
