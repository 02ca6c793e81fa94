//! `timeseries.csv`: one row per group per interval (about a second), written
//! and flushed as the run goes. Rates are per second of the interval.

use std::fs::File;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One row.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Row {
    pub unix_s: f64,
    pub elapsed_s: f64,
    pub interval_s: f64,
    pub phase: usize,
    pub group: String,
    pub transport: String,
    pub measured: bool,
    pub connections: i64,
    pub deliveries: u64,
    pub deliveries_per_s: f64,
    pub requests_per_s: f64,
    pub delivery_p50_ms: Option<f64>,
    pub delivery_p99_ms: Option<f64>,
    pub delivery_max_ms: Option<f64>,
    pub errors: u64,
    /// Per-kind error counts (columns `errors_<label>`; absent from older
    /// files, read as zero).
    #[serde(default)]
    pub errors_refused: u64,
    #[serde(default)]
    pub errors_reset: u64,
    #[serde(default)]
    pub errors_timeout: u64,
    #[serde(default)]
    pub errors_status: u64,
    #[serde(default)]
    pub errors_protocol: u64,
    #[serde(default)]
    pub errors_closed: u64,
    #[serde(default)]
    pub errors_limit: u64,
    #[serde(default)]
    pub errors_rate_limited: u64,
    #[serde(default)]
    pub errors_tls: u64,
    #[serde(default)]
    pub errors_other: u64,
    pub reconnects: u64,
    pub bytes_sent_per_s: f64,
    pub bytes_received_per_s: f64,
    pub client_cpu_pct: Option<f64>,
    pub target_cpu_pct: Option<f64>,
    pub target_rss_mb: Option<f64>,
    /// Open sockets of the target process (built-in or `--target-pid`).
    #[serde(default)]
    pub target_connections: Option<u64>,
    /// Largest event-loop lag of stampede in the interval, ms.
    #[serde(default)]
    pub loadgen_lag_ms: Option<f64>,
    /// The group's load stage in the middle of the interval (`ramp 1/3 to 5000`,
    /// `hold 2/3`); empty without `stages`.
    #[serde(default)]
    pub stage: Option<String>,
}

impl Row {
    /// The per-kind error counts (indexed as `ErrorKind::ALL`), the inverse
    /// of [`Row::set_errors`].
    pub fn errors_by_kind(&self) -> [u64; crate::fault::ErrorKind::ALL.len()] {
        use crate::fault::ErrorKind as K;
        K::ALL.map(|k| match k {
            K::Refused => self.errors_refused,
            K::Reset => self.errors_reset,
            K::Timeout => self.errors_timeout,
            K::Status => self.errors_status,
            K::Protocol => self.errors_protocol,
            K::Closed => self.errors_closed,
            K::Limit => self.errors_limit,
            K::RateLimited => self.errors_rate_limited,
            K::Tls => self.errors_tls,
            K::Other => self.errors_other,
        })
    }

    /// Fills the `errors_<label>` columns from per-kind counts (indexed as
    /// `ErrorKind::ALL`).
    pub fn set_errors(&mut self, by_kind: &[u64; crate::fault::ErrorKind::ALL.len()]) {
        use crate::fault::ErrorKind as K;
        let get = |k: K| by_kind[k.index()];
        self.errors_refused = get(K::Refused);
        self.errors_reset = get(K::Reset);
        self.errors_timeout = get(K::Timeout);
        self.errors_status = get(K::Status);
        self.errors_protocol = get(K::Protocol);
        self.errors_closed = get(K::Closed);
        self.errors_limit = get(K::Limit);
        self.errors_rate_limited = get(K::RateLimited);
        self.errors_tls = get(K::Tls);
        self.errors_other = get(K::Other);
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
