//! The capacity search's files: `capacity.csv` (one row per step) and
//! `capacity-summary.csv` (one row per group), in the search's folder.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One step of a search.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRow {
    pub group: String,
    pub transport: String,
    pub vary: String,
    pub value: f64,
    pub clients: u64,
    pub rate_per_s: Option<f64>,
    /// `probe` (stepping up) or `refine` (bisecting).
    pub search: String,
    pub slo_passed: bool,
    /// The SLO terms this step broke, with their values.
    pub broken: String,
    pub delivery_p50_ms: Option<f64>,
    pub delivery_p99_ms: Option<f64>,
    pub lost: Option<u64>,
    pub error_rate: f64,
    pub deliveries_per_s: Option<f64>,
    pub target_cpu_s: Option<f64>,
    /// Target CPU over the step's phase, percent of one core.
    pub target_cpu_pct: Option<f64>,
    pub target_rss_peak_mb: Option<f64>,
    pub target_connections_peak: Option<u64>,
    pub target_rss_per_1k_conn_mb: Option<f64>,
    pub target_cpu_ms_per_1k_deliveries: Option<f64>,
    pub client_cpu_pct: f64,
    pub loadgen_lag_p99_ms: Option<f64>,
    pub publish_slip_p99_ms: Option<f64>,
    pub loadgen_saturated: bool,
    /// Why stampede counted as saturated.
    pub saturation: String,
    pub run_dir: String,
}

/// The answer for one group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupCapacity {
    pub group: String,
    pub transport: String,
    pub vary: String,
    /// Highest load that met the SLO (empty: not even the first step).
    pub max_sustainable: Option<f64>,
    /// Lowest load that broke it (empty: none up to `max`).
    pub first_failing: Option<f64>,
    /// The SLO terms that broke at `first_failing`.
    pub broken: String,
    /// `target` (the SLO broke), `load generator` (stampede was saturated
    /// at the failing step: the real maximum is higher), `max` (no step
    /// failed up to the search's maximum) or `interrupted`.
    pub limited_by: String,
    /// Steps run.
    pub steps: usize,
}

/// Writes `dir/capacity.csv` and `dir/capacity-summary.csv`.
pub fn write(dir: &Path, steps: &[StepRow], groups: &[GroupCapacity]) -> Result<()> {
    write_csv(&dir.join("capacity.csv"), steps)?;
    write_csv(&dir.join("capacity-summary.csv"), groups)
}

fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let err = |e: csv::Error| Error::output(path, std::io::Error::other(e.to_string()));
    let mut w = csv::Writer::from_path(path).map_err(err)?;
    for r in rows {
        w.serialize(r).map_err(err)?;
    }
    w.flush().map_err(|e| Error::output(path, e))
}
