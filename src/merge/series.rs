//! `timeseries.csv` of a merged folder: the shards' rows added per group
//! and wall-clock second, percentiles from the added interval histograms.

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;

use super::{folder_error, logs::read_log, max_opt, ShardData};
use crate::error::Result;
use crate::folder::hlog;
use crate::folder::{hlog_name, timeseries};
use crate::metrics::recorder::new_histogram;
use crate::metrics::summary::{pct_ms, SummaryRow};
use crate::metrics::Latency;

/// One shard's rows of one group within one wall-clock second.
#[derive(Default)]
struct Slot {
    unix_s: f64,
    interval_s: f64,
    phase: usize,
    transport: String,
    measured: bool,
    connections: i64,
    deliveries: u64,
    errors: u64,
    errors_by_kind: crate::folder::record::ErrorCounts,
    reconnects: u64,
    // Rate × interval, so a second split over two rows is weighted right.
    deliveries_x: f64,
    requests_x: f64,
    sent_x: f64,
    received_x: f64,
    client_cpu_x: Option<f64>,
    target_cpu: Option<f64>,
    target_rss: Option<f64>,
    target_connections: Option<u64>,
    lag_ms: Option<f64>,
    stage: Option<String>,
    /// The `target_host_*` readings (every shard scrapes the same host).
    host: [Option<f64>; 4],
}

impl Slot {
    /// Adds one of the shard's rows for this second: counts and rate ×
    /// interval sums add up, target readings keep their largest value.
    fn add(&mut self, row: &timeseries::Row) {
        let w = row.interval_s;
        self.unix_s = self.unix_s.max(row.unix_s);
        self.interval_s += w;
        self.phase = row.phase;
        self.transport = row.transport.clone();
        self.measured |= row.measured;
        self.connections = row.connections;
        self.deliveries += row.deliveries;
        self.errors += row.errors;
        for (a, b) in self.errors_by_kind.iter_mut().zip(row.errors_by_kind) {
            *a += b;
        }
        self.reconnects += row.reconnects;
        self.deliveries_x += row.deliveries_per_s * w;
        self.requests_x += row.requests_per_s * w;
        self.sent_x += row.bytes_sent_per_s * w;
        self.received_x += row.bytes_received_per_s * w;
        if let Some(c) = row.client_cpu_pct {
            self.client_cpu_x = Some(self.client_cpu_x.unwrap_or(0.0) + c * w);
        }
        self.target_cpu = max_opt(self.target_cpu, row.target_cpu_pct);
        self.target_rss = max_opt(self.target_rss, row.target_rss_mb);
        self.target_connections = self.target_connections.max(row.target_connections);
        self.lag_ms = max_opt(self.lag_ms, row.loadgen_lag_ms);
        let host = [
            row.target_host_cpu_pct,
            row.target_host_memory_used_mb,
            row.target_host_network_received_bytes_per_s,
            row.target_host_network_sent_bytes_per_s,
        ];
        for (a, b) in self.host.iter_mut().zip(host) {
            *a = max_opt(*a, b);
        }
        if row.stage.is_some() {
            self.stage = row.stage.clone();
        }
    }
}

/// `timeseries.csv` of the merged run: per group and wall-clock second,
/// counts and rates summed over shards, delivery percentiles from the
/// added interval histograms.
pub(super) fn merge_series(
    shards: &[ShardData],
    rows: &[SummaryRow],
    epoch: f64,
    out: &Path,
) -> Result<()> {
    // (second, group position) → per-shard slots, and the added histogram.
    let mut cells: BTreeMap<(i64, usize), (Vec<Slot>, Histogram<u64>)> = BTreeMap::new();
    for (si, s) in shards.iter().enumerate() {
        for (gi, r) in rows.iter().enumerate() {
            let series: Vec<&timeseries::Row> =
                s.series.iter().filter(|x| x.group == r.group).collect();
            if series.is_empty() {
                continue;
            }
            let path = s.dir.join(hlog_name(&r.group, Latency::Delivery.label()));
            // Groups that receive no events have no delivery log.
            let log = read_log(&path)?;
            if let Some(log) = log.as_ref().filter(|l| l.len() != series.len()) {
                return Err(folder_error(
                    &path,
                    format!(
                        "{} intervals, but timeseries.csv has {} rows for group {:?}: one of them is truncated",
                        log.len(),
                        series.len(),
                        r.group
                    ),
                ));
            }
            let log = log.unwrap_or_default();
            for (i, row) in series.into_iter().enumerate() {
                let key = (row.unix_s.round() as i64, gi);
                let cell = cells
                    .entry(key)
                    .or_insert_with(|| (Vec::new(), new_histogram()));
                if cell.0.len() < shards.len() {
                    cell.0.resize_with(shards.len(), Slot::default);
                }
                let slot = &mut cell.0[si];
                slot.add(row);
                let Some(iv) = log.get(i) else { continue };
                let h = hlog::decode(&iv.encoded).map_err(|e| {
                    folder_error(&path, format!("not a readable interval histogram: {e}"))
                })?;
                cell.1
                    .add(&h)
                    .map_err(|e| folder_error(&path, format!("intervals cannot be added: {e}")))?;
            }
        }
    }
    let mut w = timeseries::Writer::create(out)?;
    let r1 = |v: f64| (v * 10.0).round() / 10.0;
    for ((_, gi), (slots, hist)) in cells {
        let used: Vec<&Slot> = slots.iter().filter(|s| s.interval_s > 0.0).collect();
        let Some(first) = used.first() else { continue };
        let rate = |f: fn(&Slot) -> f64| r1(used.iter().map(|s| f(s) / s.interval_s).sum());
        let unix_s = used.iter().map(|s| s.unix_s).fold(f64::MIN, f64::max);
        let cpu: Vec<f64> = used
            .iter()
            .filter_map(|s| s.client_cpu_x.map(|c| c / s.interval_s))
            .collect();
        let mut errors_by_kind = crate::folder::record::ErrorCounts::default();
        for s in &used {
            for (a, b) in errors_by_kind.iter_mut().zip(s.errors_by_kind) {
                *a += b;
            }
        }
        let row = timeseries::Row {
            unix_s,
            elapsed_s: ((unix_s - epoch) * 1000.0).round() / 1000.0,
            interval_s: (used.iter().map(|s| s.interval_s).fold(0.0, f64::max) * 1000.0).round()
                / 1000.0,
            phase: first.phase,
            group: rows[gi].group.clone(),
            transport: first.transport.clone(),
            measured: used.iter().any(|s| s.measured),
            connections: used.iter().map(|s| s.connections).sum(),
            deliveries: used.iter().map(|s| s.deliveries).sum(),
            deliveries_per_s: rate(|s| s.deliveries_x),
            requests_per_s: rate(|s| s.requests_x),
            delivery_p50_ms: pct_ms(&hist, 0.5),
            delivery_p99_ms: pct_ms(&hist, 0.99),
            delivery_max_ms: pct_ms(&hist, 1.0),
            errors: used.iter().map(|s| s.errors).sum(),
            reconnects: used.iter().map(|s| s.reconnects).sum(),
            bytes_sent_per_s: rate(|s| s.sent_x),
            bytes_received_per_s: rate(|s| s.received_x),
            client_cpu_pct: (!cpu.is_empty()).then(|| r1(cpu.iter().sum())),
            target_cpu_pct: used.iter().fold(None, |m, s| max_opt(m, s.target_cpu)),
            target_rss_mb: used.iter().fold(None, |m, s| max_opt(m, s.target_rss)),
            // Every shard sees the same target process.
            target_connections: used.iter().filter_map(|s| s.target_connections).max(),
            loadgen_lag_ms: used.iter().fold(None, |m, s| max_opt(m, s.lag_ms)),
            stage: used.iter().find_map(|s| s.stage.clone()),
            target_host_cpu_pct: used.iter().fold(None, |m, s| max_opt(m, s.host[0])),
            target_host_memory_used_mb: used.iter().fold(None, |m, s| max_opt(m, s.host[1])),
            target_host_network_received_bytes_per_s: used
                .iter()
                .fold(None, |m, s| max_opt(m, s.host[2])),
            target_host_network_sent_bytes_per_s: used
                .iter()
                .fold(None, |m, s| max_opt(m, s.host[3])),
            errors_by_kind,
        };
        w.row(&row)?;
    }
    Ok(())
}
