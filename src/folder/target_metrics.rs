//! `target_metrics.csv`: the series kept from `--target-metrics`
//! endpoints, as scraped, one row per series per scrape (long format:
//! exporters name their own series, so they cannot be fixed columns).
//! Columns: `unix_s` (scrape time, s), `endpoint` (URL), `metric` (name),
//! `labels` (`k="v",...` as exposed), `value`.

use std::fs::File;
use std::path::Path;

use serde::Serialize;

/// File name in the run folder.
pub const FILE: &str = "target_metrics.csv";

#[derive(Serialize)]
struct Row<'a> {
    unix_s: f64,
    endpoint: &'a str,
    metric: &'a str,
    labels: String,
    value: f64,
}

/// Appends scrapes to `target_metrics.csv`.
pub struct Writer {
    inner: csv::Writer<File>,
}

impl Writer {
    /// Creates `dir/target_metrics.csv`.
    pub fn create(dir: &Path) -> std::io::Result<Writer> {
        let inner = csv::Writer::from_path(dir.join(FILE)).map_err(std::io::Error::other)?;
        Ok(Writer { inner })
    }

    /// Writes and flushes one scrape's kept samples: (metric, labels,
    /// value) each.
    pub fn write<'a>(
        &mut self,
        unix_s: f64,
        endpoint: &str,
        samples: impl IntoIterator<Item = (&'a str, &'a [(String, String)], f64)>,
    ) -> std::io::Result<()> {
        for (metric, labels, value) in samples {
            let labels = labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(",");
            self.inner
                .serialize(Row {
                    unix_s: (unix_s * 1000.0).round() / 1000.0,
                    endpoint,
                    metric,
                    labels,
                    value,
                })
                .map_err(std::io::Error::other)?;
        }
        self.inner.flush()
    }
}
