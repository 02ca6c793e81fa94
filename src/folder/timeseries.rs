//! `timeseries.csv`: one row per group per interval (about a second), written
//! and flushed as the run goes. Rates are per second of the interval.

use std::fs::File;
use std::path::Path;

use super::record::csv_record;
use crate::error::{Error, Result};

csv_record! {
    /// One row. Columns missing from an older file read as zero / empty.
    pub struct Row [()] {
        unix_s: f64,
        elapsed_s: f64,
        interval_s: f64,
        phase: usize,
        group: String,
        transport: String,
        measured: bool,
        connections: i64,
        deliveries: u64,
        deliveries_per_s: f64,
        requests_per_s: f64,
        delivery_p50_ms: Option<f64>,
        delivery_p99_ms: Option<f64>,
        delivery_max_ms: Option<f64>,
        errors: u64,
    }
    errors;
    {
        reconnects: u64,
        bytes_sent_per_s: f64,
        bytes_received_per_s: f64,
        client_cpu_pct: Option<f64>,
        target_cpu_pct: Option<f64>,
        target_rss_mb: Option<f64>,
        /// Open sockets of the target process (built-in or `--target-pid`;
        /// with `--target-metrics` and no pid, its `process_open_fds`).
        target_connections: Option<u64>,
        /// Largest event-loop lag of stampede in the interval, ms.
        loadgen_lag_ms: Option<f64>,
        /// The group's load stage in the middle of the interval (`ramp 1/3 to 5000`,
        /// `hold 2/3`); empty without `stages`.
        stage: Option<String>,
        /// `--target-metrics` (node_exporter): the target host's busy CPU
        /// (every mode but idle and iowait), % of one core.
        target_host_cpu_pct: Option<f64>,
        /// `--target-metrics`: the target host's memory in use
        /// (`MemTotal − MemAvailable`), MB.
        target_host_memory_used_mb: Option<f64>,
        /// `--target-metrics`: bytes the target host received per second,
        /// every network device node_exporter reports
        /// (its default leaves out `lo`).
        target_host_network_received_bytes_per_s: Option<f64>,
        /// `--target-metrics`: bytes the target host sent per second.
        target_host_network_sent_bytes_per_s: Option<f64>,
    }
}

/// Appends rows to `timeseries.csv`.
pub struct Writer {
    inner: csv::Writer<File>,
    path: std::path::PathBuf,
}

impl Writer {
    /// Creates `dir/timeseries.csv`.
    pub fn create(dir: &Path) -> Result<Writer> {
        let path = dir.join("timeseries.csv");
        let inner = csv::Writer::from_path(&path)
            .map_err(|e| Error::output(&path, std::io::Error::other(e.to_string())))?;
        Ok(Writer { inner, path })
    }

    /// Writes and flushes one row.
    pub fn row(&mut self, row: &Row) -> Result<()> {
        self.inner
            .serialize(row)
            .map_err(|e| Error::output(&self.path, std::io::Error::other(e.to_string())))?;
        self.inner.flush().map_err(|e| Error::output(&self.path, e))
    }
}

/// Reads `dir/timeseries.csv`; an unreadable or malformed file is an error
/// naming it.
pub fn read(dir: &Path) -> Result<Vec<Row>> {
    let path = dir.join("timeseries.csv");
    let err = |e: csv::Error| Error::RunFolder {
        path: path.clone(),
        message: e.to_string(),
    };
    let mut r = csv::Reader::from_path(&path).map_err(err)?;
    r.deserialize()
        .collect::<std::result::Result<Vec<Row>, _>>()
        .map_err(err)
}
