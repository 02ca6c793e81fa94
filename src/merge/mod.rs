//! `stampede merge`: shard run folders (`run --shard I/N`) into one run
//! folder that `report`, `compare` and thresholds read like any other.
//!
//! Nothing is averaged. Each shard's measured histograms are read back
//! from its `.hlog` files over the same windows its summary used, added,
//! and summarized again by the same code as a single run
//! ([`GroupResult::row`](crate::metrics::summary::GroupResult::row)); counters are summed. The merged `.hlog` files
//! hold every shard's intervals on one time base, and `timeseries.csv`
//! adds the shards' rows up per group and wall-clock second, with
//! percentiles from the added interval histograms. `rooms.csv` adds up
//! the same way, bucket by bucket.

mod info;
mod logs;
mod results;
mod rooms;
mod series;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::exit;
use crate::folder::run_json::RunInfo;
use crate::folder::{summary as summary_csv, timeseries};
use crate::gate::threshold::{self, Threshold, ThresholdResult};
use crate::metrics::summary::SummaryRow;
use crate::report;

use info::merged_info;
use logs::merge_logs;
use results::merge_summary;
use series::merge_series;

/// A merged folder, written.
#[derive(Debug)]
pub struct Merged {
    /// The merged folder.
    pub dir: PathBuf,
    /// Its summary rows.
    pub rows: Vec<SummaryRow>,
    /// Threshold results on the merged rows.
    pub thresholds: Vec<ThresholdResult>,
    /// The merged run's exit code (thresholds, or the worst shard's).
    pub exit_code: i32,
}

/// One shard folder, read.
struct ShardData {
    dir: PathBuf,
    info: RunInfo,
    rows: Vec<SummaryRow>,
    series: Vec<timeseries::Row>,
    /// Its clock zero, Unix seconds.
    epoch: f64,
}

fn folder_error(path: &Path, message: impl Into<String>) -> Error {
    Error::RunFolder {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Merges the shard folders `dirs` into `out`.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Merged> {
    let mut shards = Vec::with_capacity(dirs.len());
    for d in dirs {
        if !d.is_dir() {
            return Err(folder_error(d, "not a run folder (no such directory)"));
        }
        let info = RunInfo::read(d)?;
        let epoch = info.epoch_unix_s.ok_or_else(|| {
            folder_error(
                &d.join("run.json"),
                "no `epoch_unix_s`: not written by a stampede that can merge",
            )
        })?;
        shards.push(ShardData {
            dir: d.clone(),
            rows: summary_csv::read(d)?,
            series: timeseries::read(d)?,
            info,
            epoch,
        });
    }
    let missing = check_mergeable(&mut shards)?;
    std::fs::create_dir_all(out).map_err(|e| Error::output(out, e))?;

    let epoch = shards.iter().map(|s| s.epoch).fold(f64::INFINITY, f64::min);
    let rows = merge_summary(&shards)?;
    summary_csv::write(out, &rows)?;
    merge_logs(&shards, &rows, epoch, out)?;
    rooms::merge_rooms(&shards, out)?;
    merge_series(&shards, &rows, epoch, out)?;

    let mut info = merged_info(&shards, epoch, &missing);
    // A storm's per-group figures are those of the merged rows.
    for p in &mut info.phases {
        let groups = p.groups.clone();
        if let Some(st) = &mut p.storm {
            st.fill(&groups, &rows);
        }
    }
    let specs: Vec<Threshold> = info
        .plan
        .get("thresholds")
        .cloned()
        .and_then(|t| serde_json::from_value(t).ok())
        .unwrap_or_default();
    let thresholds = threshold::evaluate(&specs, &rows);
    let failed = thresholds.iter().any(|t| !t.passed);
    info.thresholds = thresholds.clone();
    let worst = shards
        .iter()
        .filter_map(|s| s.info.exit_code)
        .filter(|c| *c != exit::OK && *c != exit::THRESHOLD)
        .max_by_key(|c| match *c {
            exit::INTERRUPTED => 1,
            _ => 2,
        });
    let exit_code = match worst {
        Some(c) => c,
        None if failed => exit::THRESHOLD,
        // A shard's early abort on a threshold stopped it short.
        None if shards
            .iter()
            .any(|s| s.info.exit_code == Some(exit::THRESHOLD) && s.info.partial) =>
        {
            exit::THRESHOLD
        }
        None => exit::OK,
    };
    info.exit_code = Some(exit_code);
    crate::run::write_sweep(out, &info, &rows)?;
    info.write(out)?;
    Ok(Merged {
        dir: out.to_path_buf(),
        rows,
        thresholds,
        exit_code,
    })
}

/// Refuses folders that are not shards of one run; sorts them by shard
/// number; returns the shard numbers that are missing.
fn check_mergeable(shards: &mut [ShardData]) -> Result<Vec<u32>> {
    let first = shards
        .first()
        .ok_or_else(|| Error::Usage("merge: no run folders given".into()))?;
    let first_dir = first.dir.clone();
    let first_info = first.info.clone();
    let Some(first_shard) = &first_info.shard else {
        return Err(folder_error(
            &first_dir,
            "not a shard run (its run.json has no `shard`): run shards with --shard I/N",
        ));
    };
    for s in shards.iter() {
        let name = |i: &RunInfo| crate::folder::read::scenario_name(i).to_string();
        let Some(sh) = &s.info.shard else {
            return Err(folder_error(
                &s.dir,
                "not a shard run (its run.json has no `shard`): run shards with --shard I/N",
            ));
        };
        if name(&s.info) != name(&first_info) {
            return Err(folder_error(
                &s.dir,
                format!(
                    "scenario {:?} differs from {:?} in {}: only shards of one run merge",
                    name(&s.info),
                    name(&first_info),
                    first_dir.display()
                ),
            ));
        }
        if s.info.stampede_version != first_info.stampede_version {
            return Err(folder_error(
                &s.dir,
                format!(
                    "written by stampede {} but {} was written by {}: merge shards of one version",
                    s.info.stampede_version,
                    first_dir.display(),
                    first_info.stampede_version
                ),
            ));
        }
        if s.info.scenario_digest != first_info.scenario_digest {
            return Err(folder_error(
                &s.dir,
                format!(
                    "the scenario as planned (file, --set, --duration, target) differs from {}'s: only shards of one run merge",
                    first_dir.display()
                ),
            ));
        }
        if sh.count != first_shard.count {
            return Err(folder_error(
                &s.dir,
                format!(
                    "is shard {}/{} but {} is shard {}/{}",
                    sh.index,
                    sh.count,
                    first_dir.display(),
                    first_shard.index,
                    first_shard.count
                ),
            ));
        }
    }
    shards.sort_by_key(|s| s.info.shard.as_ref().map_or(0, |s| s.index));
    for w in shards.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.info.shard.as_ref().map(|s| s.index) == b.info.shard.as_ref().map(|s| s.index) {
            return Err(folder_error(
                &b.dir,
                format!(
                    "is the same shard as {}: give each shard once",
                    a.dir.display()
                ),
            ));
        }
    }
    let present: Vec<u32> = shards
        .iter()
        .filter_map(|s| s.info.shard.as_ref().map(|s| s.index))
        .collect();
    Ok((0..first_shard.count)
        .filter(|i| !present.contains(i))
        .collect())
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// Writes the report of a merged folder; a failure is a warning.
pub fn write_report(dir: &Path) {
    if let Err(e) = report::generate(std::slice::from_ref(&dir.to_path_buf()), dir) {
        let e = crate::secrets::redact(&e.to_string());
        eprintln!("stampede: warning: report not written: {e}");
    }
}
