//! The run folder: the interface between measuring and reporting. Every
//! file's schema, writer and reader lives here — `summary.csv`
//! ([`summary`], whose declaration is the column registry [`columns`]),
//! `timeseries.csv` ([`timeseries`]), the `.hlog` interval logs ([`hlog`],
//! and which of them a group has: [`latency`]), `run.json`
//! ([`run_json`]), `summary.json` ([`summary_json`]), `sweep.csv` ([`sweep_csv`]),
//! `target_metrics.csv` ([`target_metrics`]), `rooms.csv` and its
//! per-bucket interval logs ([`rooms`]) and the capacity search's
//! files ([`capacity`]) — the reader of a whole folder ([`read`]), and the
//! cost columns' one definition ([`cost`]).
//!
//! A leaf: it knows the transports' kinds and error kinds, and owns the
//! latency metrics (their labels name the `.hlog` files); it never knows the runner, the report or the gate, which all read it.

pub mod capacity;
pub mod columns;
pub mod cost;
pub mod hlog;
pub mod latency;
pub mod read;
pub mod record;
pub mod rooms;
pub mod run_json;
pub mod summary;
pub mod summary_json;
pub mod sweep_csv;
pub mod target_metrics;
pub mod timeseries;

/// File name of a group's interval log for one metric.
pub fn hlog_name(group: &str, metric: &str) -> String {
    format!("{}.{metric}.hlog", sanitize(group))
}

/// Folder of repeat `i` inside a `--repeat` run folder.
pub fn repeat_dir(dir: &std::path::Path, i: usize) -> std::path::PathBuf {
    dir.join(format!("repeat-{i}"))
}

/// Writes `rows` as a CSV file with a header at `path` (the serde field
/// names, which the registries declare). Errors: the file cannot be
/// written.
fn write_rows<T: serde::Serialize>(path: &std::path::Path, rows: &[T]) -> crate::error::Result<()> {
    use crate::error::Error;
    let err = |e: csv::Error| Error::output(path, std::io::Error::other(e.to_string()));
    let mut w = csv::Writer::from_path(path).map_err(err)?;
    for r in rows {
        w.serialize(r).map_err(err)?;
    }
    w.flush().map_err(|e| Error::output(path, e))
}

/// Reads the CSV file at `path` into rows; an empty list when the file is
/// absent (the run had none). Errors: a file that does not parse, named.
fn read_rows_if_present<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
) -> crate::error::Result<Vec<T>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let err = |e: csv::Error| crate::error::Error::RunFolder {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut r = csv::Reader::from_path(path).map_err(err)?;
    r.deserialize()
        .collect::<std::result::Result<Vec<T>, _>>()
        .map_err(err)
}

/// Keeps names safe as file names.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;

/// A compact UTC timestamp for folder names: `20261121T194400Z`.
pub fn folder_timestamp(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace(['-', ':'], "")
}

/// RFC 3339 UTC time with milliseconds.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// `results/<scenario>/<timestamp>` under `root`.
pub fn default_run_dir(
    root: &std::path::Path,
    scenario: &str,
    t: std::time::SystemTime,
) -> std::path::PathBuf {
    root.join(sanitize(scenario)).join(folder_timestamp(t))
}
