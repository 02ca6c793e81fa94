//! Output formats of a run folder, one file each. Rows are written as the run
//! goes (time series, interval logs), so a crash leaves data behind; the
//! summary and `run.json` are written at the end, `run.json` also at the
//! start (status `running`). Reading commands use the same types.

pub mod format;
pub mod hlog;
pub mod plot;
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

/// Prints the summary as an aligned table.
pub fn print_table(
    rows: &[crate::metrics::summary::SummaryRow],
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    writeln!(
        out,
        "{:<14} {:>7} {:>9} {:>9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>7}",
        "group",
        "clients",
        "published",
        "delivered",
        "lost",
        "p50 ms",
        "p99 ms",
        "max ms",
        "req/deliv",
        "bytes/del",
        "tgt cpu s",
        "errors"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<14} {:>7} {:>9} {:>9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>7}",
            r.group,
            r.clients,
            r.published,
            r.delivered,
            r.lost,
            f(r.delivery_p50_ms),
            f(r.delivery_p99_ms),
            f(r.delivery_max_ms),
            r.requests_per_delivery
                .map_or("-".into(), |v| format!("{v:.2}")),
            f(r.bytes_per_delivery),
            r.target_cpu_s.map_or("-".into(), |v| format!("{v:.2}")),
            r.errors
        )?;
    }
    Ok(())
}
