//! `summary.json`: the summary for scripts — every `summary.csv` column
//! with its unit, the groups it applies to and its meaning (from the
//! registry, [`super::columns`]), each group's values (the very cells of
//! `summary.csv`, typed), the thresholds' verdicts, and the run's status
//! and warnings from `run.json`. Written whenever an ended run's
//! `run.json` is written next to a `summary.csv` (runs, `--repeat`
//! folders, merged folders), so it never disagrees with either.
//!
//! ```text
//! jq '.groups[] | {group, p99: .values.delivery_p99_ms}' summary.json
//! jq '.columns.delivery_p99_ms.unit' summary.json
//! jq -e '.thresholds_passed' summary.json
//! jq '.rooms[] | {room_size, p99: .delivery_p99_ms}' summary.json
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::columns;
use super::run_json::{RunInfo, ThresholdResult};
use super::summary::{self, SummaryRow};
use crate::error::{Error, Result};

/// File name in the run folder.
pub const FILE: &str = "summary.json";

/// The schema's name and version: a new version only for a change that
/// breaks a reader (added keys do not).
pub const SCHEMA: &str = "stampede-summary/1";

/// One column as the registry describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnDoc {
    /// Unit (`ms`, `s`, `MB`, `count`, ...; `text` for text columns).
    pub unit: String,
    /// Groups it applies to, in words.
    pub applies_to: String,
    /// Meaning (Markdown).
    pub meaning: String,
}

/// One group's row: `values` holds every column, in file order; an empty
/// cell is `null`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupValues {
    /// Group label.
    pub group: String,
    /// Transport label.
    pub transport: String,
    /// Column name → value.
    pub values: Map<String, Value>,
}

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SummaryJson {
    /// [`SCHEMA`].
    pub schema: String,
    /// stampede version that wrote it.
    pub stampede_version: String,
    /// Scenario file as given.
    pub scenario_file: String,
    /// Start, RFC 3339 UTC.
    pub started_at: String,
    /// End.
    pub ended_at: Option<String>,
    /// `completed`, `interrupted`, `aborted` or `failed`.
    pub status: String,
    /// Process exit code (see the README's exit codes).
    pub exit_code: Option<i32>,
    /// True when the run did not complete its plan.
    pub partial: bool,
    /// Why it is partial.
    pub partial_reason: Option<String>,
    /// Things that make the numbers less trustworthy.
    pub warnings: Vec<String>,
    /// True when every threshold held (also when there are none).
    pub thresholds_passed: bool,
    /// Each threshold on each group.
    pub thresholds: Vec<ThresholdResult>,
    /// Column names in `summary.csv` order.
    pub column_order: Vec<String>,
    /// Column name → its unit and meaning.
    pub columns: BTreeMap<String, ColumnDoc>,
    /// One entry per `summary.csv` row, in file order.
    pub groups: Vec<GroupValues>,
    /// `rooms.csv`'s rows (delivery by room size; absent without rooms),
    /// its columns as [`super::rooms`] declares them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rooms: Vec<super::rooms::RoomsRow>,
}

/// The registry's description of every column.
pub fn column_docs() -> BTreeMap<String, ColumnDoc> {
    columns::all()
        .iter()
        .map(|c| {
            let unit = if c.unit().is_empty() {
                "text"
            } else {
                c.unit()
            };
            (
                c.name().to_string(),
                ColumnDoc {
                    unit: unit.to_string(),
                    applies_to: c.applies().describe().to_string(),
                    meaning: c.meaning(),
                },
            )
        })
        .collect()
}

/// A cell of `summary.csv` as JSON: `null` when empty, a number for a
/// numeric column (an integer for an integer column), else the text.
fn cell(column: Option<&columns::Column>, text: &str) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    match column {
        Some(c) if c.is_integral() => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(text)),
        Some(c) if c.is_numeric() => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::from(text), Value::Number),
        _ => Value::from(text),
    }
}

/// The rows as `summary.csv` writes them, cell by cell: so the JSON holds
/// the file's values, rounding included.
fn groups(rows: &[SummaryRow]) -> Result<(Vec<String>, Vec<GroupValues>)> {
    let err = |e: String| Error::output(Path::new(FILE), std::io::Error::other(e));
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(|e| err(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| err(e.to_string()))?;
    let mut header: Vec<String> = columns::all()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let mut out = Vec::new();
    if !rows.is_empty() {
        let mut r = csv::Reader::from_reader(bytes.as_slice());
        header = r
            .headers()
            .map_err(|e| err(e.to_string()))?
            .iter()
            .map(String::from)
            .collect();
        for (rec, row) in r.records().zip(rows) {
            let rec = rec.map_err(|e| err(e.to_string()))?;
            let values = header
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.clone(), cell(columns::find(h), v)))
                .collect();
            out.push(GroupValues {
                group: row.group.clone(),
                transport: row.transport.clone(),
                values,
            });
        }
    }
    Ok((header, out))
}

impl SummaryJson {
    /// Builds the file's content from `run.json` and the summary rows.
    pub fn new(info: &RunInfo, rows: &[SummaryRow]) -> Result<SummaryJson> {
        let (column_order, groups) = groups(rows)?;
        Ok(SummaryJson {
            schema: SCHEMA.into(),
            stampede_version: info.stampede_version.clone(),
            scenario_file: info.scenario_file.clone(),
            started_at: info.started_at.clone(),
            ended_at: info.ended_at.clone(),
            status: info.status.clone(),
            exit_code: info.exit_code,
            partial: info.partial,
            partial_reason: info.partial_reason.clone(),
            warnings: info.warnings.clone(),
            thresholds_passed: info.thresholds.iter().all(|t| t.passed),
            thresholds: info.thresholds.clone(),
            column_order,
            columns: column_docs(),
            groups,
            rooms: Vec::new(),
        })
    }

    /// Reads `dir/summary.json`.
    pub fn read(dir: &Path) -> Result<SummaryJson> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::RunFolder {
            path: path.clone(),
            message: e.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| Error::RunFolder {
            path,
            message: e.to_string(),
        })
    }
}

/// Writes `dir/summary.json` from `info` and the folder's `summary.csv`
/// (atomically: temp file, then rename).
pub fn write(dir: &Path, info: &RunInfo) -> Result<()> {
    let rows = summary::read(dir)?;
    let path = dir.join(FILE);
    let tmp = dir.join(".summary.json.tmp");
    let mut doc = SummaryJson::new(info, &rows)?;
    doc.rooms = super::rooms::read(dir)?;
    let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::output(&path, e.into()))?;
    let text = crate::secrets::redact(&text);
    std::fs::write(&tmp, text + "\n").map_err(|e| Error::output(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::output(&path, e))
}
