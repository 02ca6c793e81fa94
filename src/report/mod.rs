//! Reports drawn from run folders (whose files' schema, writers and
//! readers are [`crate::folder`]'s).
//!
//! [`generate`] is `stampede report`: it reads finished folders
//! ([`crate::folder::read`]) and writes `charts/*.svg` ([`charts`], and [`sweep_chart`]
//! for a sweep, [`rooms_chart`] for rooms, drawn by [`plot`] on [`axis`]) and `report.html`
//! ([`html`]); it never runs load.

pub mod axis;
pub mod capacity_chart;
pub mod charts;
pub mod format;
pub mod html;
pub mod plot;
pub mod rooms_chart;
pub mod sweep_chart;

// The run folder's files, read and written by the schema module; kept
// under their old paths for callers.
pub use crate::folder::{
    default_run_dir, folder_timestamp, hlog, hlog_name, read as folder, rfc3339, run_json,
    sanitize, summary as summary_csv, sweep_csv, timeseries,
};

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What `stampede report` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// `report.html`.
    pub html: PathBuf,
    /// The chart files.
    pub charts: Vec<PathBuf>,
}

/// Reads the run folders `dirs` and writes `out/charts/*.svg` and
/// `out/report.html`. Several runs are overlaid in every chart.
pub fn generate(dirs: &[PathBuf], out: &Path) -> Result<Written> {
    if dirs.is_empty() {
        return Err(Error::Usage("report: give at least one run folder".into()));
    }
    let runs = crate::folder::read::read_runs(dirs)?;
    let charts = charts::all(&runs)?;
    let chart_dir = out.join("charts");
    std::fs::create_dir_all(&chart_dir).map_err(|e| Error::output(&chart_dir, e))?;
    let mut written = Vec::with_capacity(charts.len());
    for c in &charts {
        let path = chart_dir.join(&c.file);
        write_atomic(&path, c.svg.as_bytes())?;
        written.push(path);
    }
    let html = out.join("report.html");
    write_atomic(&html, html::page(&runs, &charts).as_bytes())?;
    Ok(Written {
        html,
        charts: written,
    })
}

/// Temp file then rename: a viewer never sees half a file, and an
/// interrupted report leaves the previous one intact.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(|e| Error::output(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::output(path, e))
}

/// Prints the summary as aligned tables: subscriber groups (delivery of
/// the event stream), then request and echo groups (exchanges).
pub fn print_table(
    rows: &[crate::metrics::summary::SummaryRow],
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let n = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    let (subs, exch): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.delivered.is_some());
    if !subs.is_empty() {
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
    }
    for r in &subs {
        writeln!(
            out,
            "{:<14} {:>7} {:>9} {:>9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>7}",
            r.group,
            r.clients,
            n(r.published),
            n(r.delivered),
            n(r.lost),
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
    if !exch.is_empty() {
        if !subs.is_empty() {
            writeln!(out)?;
        }
        writeln!(
            out,
            "{:<14} {:>7} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>11} {:>8} {:>7}",
            "group",
            "clients",
            "requests",
            "req/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "uncorr p99",
            "non-2xx",
            "errors"
        )?;
    }
    let g = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for r in &exch {
        // Empty for echo groups, which have no statuses.
        let non_2xx = r.status_2xx.is_some().then(|| {
            r.status_1xx.unwrap_or(0)
                + r.status_3xx.unwrap_or(0)
                + r.status_4xx.unwrap_or(0)
                + r.status_5xx.unwrap_or(0)
        });
        writeln!(
            out,
            "{:<14} {:>7} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>11} {:>8} {:>7}",
            r.group,
            r.clients,
            r.requests,
            r.requests_per_s.map_or("-".into(), |v| format!("{v:.0}")),
            g(r.request_p50_ms),
            g(r.request_p99_ms),
            g(r.request_p999_ms),
            g(r.request_max_ms),
            g(r.request_uncorrected_p99_ms),
            n(non_2xx),
            r.errors
        )?;
    }
    Ok(())
}
