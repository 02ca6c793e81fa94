//! Output formats of a run folder, one file each. Rows are written as the run
//! goes (time series, interval logs), so a crash leaves data behind; the
//! summary and `run.json` are written at the end, `run.json` also at the
//! start (status `running`). Reading commands use the same types.

pub mod hlog;
pub mod run_json;
pub mod summary_csv;
pub mod timeseries;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A compact UTC timestamp for folder names: `20261121T194400Z`.
pub fn folder_timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace(['-', ':'], "")
}

/// RFC 3339 UTC time with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// File name of a group's interval log for one metric.
pub fn hlog_name(group: &str, metric: &str) -> String {
    format!("{}.{metric}.hlog", sanitize(group))
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

/// `results/<scenario>/<timestamp>` under `root`.
pub fn default_run_dir(root: &Path, scenario: &str, t: SystemTime) -> PathBuf {
    root.join(sanitize(scenario)).join(folder_timestamp(t))
}
