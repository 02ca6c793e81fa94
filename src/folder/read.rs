//! Reading finished run folders (for `stampede report`): `run.json`,
//! `summary.csv`, `timeseries.csv`, the `.hlog` files and, for a sweep,
//! `sweep.csv`. It only reads:
//! nothing here runs load or rewrites a run's own files. Every unusable file
//! is an [`Error::RunFolder`] naming it.

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use super::run_json::{PhaseInfo, RunInfo};
use super::summary::{self as summary_csv, SummaryRow};
use super::sweep_csv::{self, SweepRow};
use super::{hlog, hlog_name, timeseries};
use crate::error::{Error, Result};

/// One run folder, read.
#[derive(Debug)]
pub struct RunData {
    /// The folder.
    pub dir: PathBuf,
    /// Short unique name for legends and tables (see [`label_runs`]).
    pub label: String,
    /// `run.json`.
    pub info: RunInfo,
    /// `summary.csv` (per-column medians for a `--repeat` folder).
    pub rows: Vec<SummaryRow>,
    /// What was measured over time: the run itself, or each repeat.
    pub traces: Vec<Trace>,
    /// `sweep.csv`; empty when the run was not a sweep.
    pub sweep: Vec<SweepRow>,
    /// `rooms.csv`; empty when the run had no rooms.
    pub rooms: Vec<super::rooms::RoomsRow>,
}

/// Per-second data and full-window histograms of one execution.
#[derive(Debug)]
pub struct Trace {
    /// `None` for the run itself, `repeat-i` for one repeat of a `--repeat`
    /// folder.
    pub name: Option<String>,
    /// Phase timing, from that execution's `run.json`.
    pub phases: Vec<PhaseInfo>,
    /// `timeseries.csv`.
    pub series: Vec<timeseries::Row>,
    /// One entry per group that ran, in summary order.
    pub groups: Vec<GroupHistograms>,
}

/// A group's latency histograms added up over the same windows as
/// `summary.csv`.
#[derive(Debug)]
pub struct GroupHistograms {
    /// Group name.
    pub group: String,
    /// Delivery latency over the measured window; `None` without samples.
    pub delivery: Option<Histogram<u64>>,
    /// TCP connect time over the whole phase; `None` without samples.
    pub connect: Option<Histogram<u64>>,
}

impl RunData {
    /// The scenario name recorded in `run.json`.
    pub fn scenario(&self) -> &str {
        scenario_name(&self.info)
    }
}

/// The scenario name from a run's resolved plan.
pub fn scenario_name(info: &RunInfo) -> &str {
    info.plan
        .get("name")
        .and_then(|v| v.as_str())
        .unwrap_or("(unnamed)")
}

/// Reads several run folders and gives them unique labels.
pub fn read_runs(dirs: &[PathBuf]) -> Result<Vec<RunData>> {
    let mut runs = dirs.iter().map(|d| read(d)).collect::<Result<Vec<_>>>()?;
    let labels = label_runs(&runs);
    for (r, l) in runs.iter_mut().zip(labels) {
        r.label = l;
    }
    Ok(runs)
}

/// Reads one run folder. A `--repeat` folder has no time series of its own:
/// its traces come from its `repeat-i` folders.
pub fn read(dir: &Path) -> Result<RunData> {
    if !dir.is_dir() {
        return Err(Error::RunFolder {
            path: dir.to_path_buf(),
            message: "not a run folder (no such directory)".into(),
        });
    }
    let info = RunInfo::read(dir)?;
    let rows = summary_csv::read(dir)?;
    let traces = match info.repeats {
        Some(n) if !dir.join("timeseries.csv").exists() => (1..=n)
            .map(|i| {
                let sub = super::repeat_dir(dir, i);
                let sub_info = RunInfo::read(&sub)?;
                let sub_rows = summary_csv::read(&sub)?;
                read_trace(&sub, Some(format!("repeat-{i}")), &sub_info, &sub_rows)
            })
            .collect::<Result<Vec<_>>>()?,
        _ => vec![read_trace(dir, None, &info, &rows)?],
    };
    Ok(RunData {
        dir: dir.to_path_buf(),
        label: String::new(),
        sweep: sweep_csv::read(dir)?,
        rooms: super::rooms::read(dir)?,
        info,
        rows,
        traces,
    })
}

fn read_trace(
    dir: &Path,
    name: Option<String>,
    info: &RunInfo,
    rows: &[SummaryRow],
) -> Result<Trace> {
    let series = timeseries::read(dir)?;
    let mut groups = Vec::with_capacity(rows.len());
    for r in rows {
        // A group that is in summary.csv ran in some phase; without one
        // (an older or hand-edited run.json) take every interval.
        let phase = info.phases.iter().find(|p| p.groups.contains(&r.group));
        let measure_from = phase.map_or(f64::NEG_INFINITY, |p| p.measure_from_s);
        groups.push(GroupHistograms {
            group: r.group.clone(),
            delivery: sum_log(&dir.join(hlog_name(&r.group, "delivery")), |start| {
                // run.json and the log both round to the millisecond.
                start >= measure_from - 0.0015
            })?,
            connect: sum_log(&dir.join(hlog_name(&r.group, "connect")), |_| true)?,
        });
    }
    Ok(Trace {
        name,
        phases: info.phases.clone(),
        series,
        groups,
    })
}

/// Adds up the intervals of a log whose start (seconds since the run start)
/// passes `keep`; `None` when no sample was kept or the log is absent.
fn sum_log(path: &Path, keep: impl Fn(f64) -> bool) -> Result<Option<Histogram<u64>>> {
    let err = |message: String| Error::RunFolder {
        path: path.to_path_buf(),
        message,
    };
    let mut total: Option<Histogram<u64>> = None;
    let mut add_error = None;
    hlog::for_each(path, |iv| {
        if !keep(iv.start_s) || iv.hist.is_empty() || add_error.is_some() {
            return;
        }
        match &mut total {
            None => total = Some(iv.hist),
            Some(t) => {
                if let Err(e) = t.add(&iv.hist) {
                    add_error = Some(format!("intervals cannot be added: {e}"));
                }
            }
        }
    })
    .or_else(|e| {
        // A group has only the logs of the metrics it can record.
        if e.kind() == std::io::ErrorKind::NotFound {
            Ok(())
        } else {
            Err(err(format!(
                "not a readable HdrHistogram interval log: {e}"
            )))
        }
    })?;
    if let Some(m) = add_error {
        return Err(err(m));
    }
    Ok(total)
}

/// Unique labels for legends: the folder name, or `scenario timestamp` when
/// the folder has the default timestamp name; the parent folder is prefixed,
/// then a counter, until no two runs share a label.
pub fn label_runs(runs: &[RunData]) -> Vec<String> {
    let name = |d: &Path| {
        d.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| d.display().to_string())
    };
    let mut labels: Vec<String> = runs
        .iter()
        .map(|r| {
            let folder = name(&r.dir);
            if is_timestamp(&folder) {
                format!("{} {folder}", r.scenario())
            } else {
                folder
            }
        })
        .collect();
    let dup = |labels: &[String], i: usize| labels.iter().filter(|l| **l == labels[i]).count() > 1;
    for i in 0..labels.len() {
        if dup(&labels, i) {
            if let Some(parent) = runs[i].dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                labels[i] = format!("{}/{}", name(parent), labels[i]);
            }
        }
    }
    for i in 0..labels.len() {
        if dup(&labels, i) {
            labels[i] = format!("{}#{}", labels[i], i + 1);
        }
    }
    labels
}

/// True for the default run folder name, e.g. `20261121T194400Z`.
fn is_timestamp(name: &str) -> bool {
    name.len() == 16
        && name.ends_with('Z')
        && name.as_bytes()[8] == b'T'
        && name
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 8 || i == 15 || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_default_folder_names() {
        assert!(is_timestamp("20261121T194400Z"));
        assert!(!is_timestamp("repeat-1"));
        assert!(!is_timestamp("20261121X194400Z"));
    }
}
