//! Repeated runs (`run --repeat N`): the same plan N times, each into its own
//! `repeat-i` folder, then a top-level folder whose `summary.csv` holds the
//! per-column medians and whose `run.json` says how many repeats there were.
//! `compare` reads the repeats to learn the runs' own spread.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::exit;
use crate::folder::columns;
use crate::folder::repeat_dir;
use crate::folder::run_json::RunInfo;
use crate::folder::summary as summary_csv;
use crate::gate::threshold;
use crate::metrics::summary::SummaryRow;
use crate::plan::Plan;
use crate::report;
use crate::run::{self, RunOptions, RunOutcome};
use crate::shutdown::Shutdown;

/// Runs `plan` `n` times and aggregates.
pub async fn run_repeated(
    plan: Plan,
    opts: RunOptions,
    shutdown: Shutdown,
    n: u32,
) -> Result<RunOutcome> {
    let dir = opts.out.clone().unwrap_or_else(|| {
        report::default_run_dir(&opts.results_root, &plan.name, std::time::SystemTime::now())
    });
    let mut outcomes = Vec::new();
    for i in 1..=n as usize {
        if shutdown.is_stopped() {
            break;
        }
        let o = run::run(
            plan.clone(),
            RunOptions {
                out: Some(repeat_dir(&dir, i)),
                ..opts.clone()
            },
            shutdown.clone(),
        )
        .await?;
        let stop = o.stop.is_some();
        outcomes.push(o);
        if stop {
            break;
        }
    }
    let last = outcomes
        .last()
        .ok_or_else(|| Error::Usage("no repeat ran".into()))?;
    let runs: Vec<Vec<SummaryRow>> = outcomes.iter().map(|o| o.rows.clone()).collect();
    let rows = median_rows(&runs);
    summary_csv::write(&dir, &rows)?;
    let mut info = RunInfo::read(&last.dir)?;
    info.repeats = Some(outcomes.len());
    // A sweep's curves from the medians, like the summary.
    run::write_sweep(&dir, &info, &rows)?;
    info.thresholds = threshold::evaluate(&plan.thresholds, &rows);
    let failed = info.thresholds.iter().any(|t| !t.passed);
    let worst = outcomes
        .iter()
        .map(|o| o.exit_code)
        .max_by_key(|c| match *c {
            exit::OK => 0,
            exit::THRESHOLD => 1,
            _ => 2,
        });
    let code = match worst.unwrap_or(exit::OK) {
        exit::OK if failed => exit::THRESHOLD,
        exit::THRESHOLD if !failed && last.stop.is_none() => exit::OK,
        c => c,
    };
    info.exit_code = Some(code);
    info.write(&dir)?;
    Ok(RunOutcome {
        dir: PathBuf::from(&dir),
        exit_code: code,
        rows,
        stop: last.stop.clone(),
        thresholds: info.thresholds,
    })
}

/// Per group (as in the first run), the median of every numeric column
/// (integer columns rounded); text columns are the first run's.
pub fn median_rows(runs: &[Vec<SummaryRow>]) -> Vec<SummaryRow> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|base| {
            let mut row = base.clone();
            for col in columns::numeric() {
                let mut vals: Vec<f64> = runs
                    .iter()
                    .filter_map(|rows| rows.iter().find(|r| r.group == base.group))
                    .filter_map(|r| col.value(r))
                    .collect();
                if vals.is_empty() {
                    continue;
                }
                vals.sort_by(f64::total_cmp);
                let m = vals.len() / 2;
                let median = if vals.len() % 2 == 1 {
                    vals[m]
                } else {
                    (vals[m - 1] + vals[m]) / 2.0
                };
                col.set(&mut row, median);
            }
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_per_column() {
        let row = |p99: f64, lost: u64| {
            let mut r = SummaryRow::example();
            r.delivery_p99_ms = Some(p99);
            r.lost = Some(lost);
            r
        };
        let m = median_rows(&[vec![row(3.0, 1)], vec![row(1.0, 4)], vec![row(2.0, 2)]]);
        assert_eq!(m[0].delivery_p99_ms, Some(2.0));
        assert_eq!(m[0].lost, Some(2));
    }
}
