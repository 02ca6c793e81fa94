//! `summary.csv`: one row per client group, the comparative table.

use std::path::Path;

use crate::error::{Error, Result};
use crate::metrics::summary::SummaryRow;

/// Writes the rows to `dir/summary.csv`.
pub fn write(dir: &Path, rows: &[SummaryRow]) -> Result<()> {
    let path = dir.join("summary.csv");
    let err = |e: csv::Error| Error::output(&path, std::io::Error::other(e.to_string()));
    let mut w = csv::Writer::from_path(&path).map_err(err)?;
    for r in rows {
        w.serialize(r).map_err(err)?;
    }
    w.flush().map_err(|e| Error::output(&path, e))
}

/// Reads `dir/summary.csv`.
pub fn read(dir: &Path) -> Result<Vec<SummaryRow>> {
    let path = dir.join("summary.csv");
    let err = |e: csv::Error| Error::RunFolder {
        path: path.clone(),
        message: e.to_string(),
    };
    let mut r = csv::Reader::from_path(&path).map_err(err)?;
    r.deserialize()
        .collect::<std::result::Result<Vec<SummaryRow>, _>>()
        .map_err(err)
}
