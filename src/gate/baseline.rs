//! One side of a comparison: a run folder (its `summary.csv`, plus the
//! summaries of its repeats, and its threshold results), or a baseline file
//! saved from one (`stampede baseline save`): small JSON, meant to be
//! committed.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::threshold::ThresholdResult;
use crate::error::{Error, Result};
use crate::folder::run_json::RunInfo;
use crate::folder::summary::{self as summary_csv, SummaryRow};

/// A comparable set of results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Side {
    /// Scenario name.
    pub scenario: String,
    /// stampede version that measured it.
    pub stampede_version: String,
    /// When it was measured (RFC 3339).
    pub measured_at: String,
    /// Summary rows (medians over repeats when there are repeats).
    pub rows: Vec<SummaryRow>,
    /// Each repeat's rows, when the run was repeated.
    #[serde(default)]
    pub repeats: Vec<Vec<SummaryRow>>,
    /// Threshold results of the run.
    #[serde(default)]
    pub thresholds: Vec<ThresholdResult>,
    /// Registry columns its summary does not have (an older file, or a
    /// column renamed since): they read as empty, and `compare` names them
    /// instead of comparing nothing.
    #[serde(skip)]
    pub missing_columns: Vec<&'static str>,
}

pub use crate::folder::repeat_dir;

impl Side {
    /// Loads a run folder or a baseline file.
    pub fn load(path: &Path) -> Result<Side> {
        if path.is_dir() {
            let info = RunInfo::read(path)?;
            let (rows, missing_columns) = summary_csv::read_checked(path)?;
            let mut repeats = Vec::new();
            for i in 1.. {
                let d = repeat_dir(path, i);
                if !d.is_dir() {
                    break;
                }
                repeats.push(summary_csv::read(&d)?);
            }
            Ok(Side {
                scenario: info
                    .plan
                    .get("name")
                    .and_then(|n| n.as_str())
                    .unwrap_or_default()
                    .to_string(),
                stampede_version: info.stampede_version,
                measured_at: info.started_at,
                rows,
                repeats,
                thresholds: info.thresholds,
                missing_columns,
            })
        } else {
            let text = std::fs::read_to_string(path).map_err(|e| Error::RunFolder {
                path: path.to_path_buf(),
                message: format!("not a run folder or baseline file: {e}"),
            })?;
            let bad = |e: serde_json::Error| Error::RunFolder {
                path: path.to_path_buf(),
                message: format!("not a baseline file: {e}"),
            };
            let value: serde_json::Value = serde_json::from_str(&text).map_err(bad)?;
            // The columns of its first row, as saved.
            let keys = value
                .get("rows")
                .and_then(|r| r.get(0))
                .and_then(|r| r.as_object())
                .map(|o| o.keys().cloned().collect::<Vec<_>>());
            let mut side: Side = serde_json::from_value(value).map_err(bad)?;
            if let Some(keys) = keys {
                side.missing_columns = crate::folder::columns::all()
                    .iter()
                    .map(|c| c.name())
                    .filter(|n| !keys.iter().any(|k| k == n))
                    .collect();
            }
            Ok(side)
        }
    }

    /// Writes this side as a baseline file.
    pub fn save(&self, to: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::output(to, e.into()))?;
        std::fs::write(to, text + "\n").map_err(|e| Error::output(to, e))
    }
}
