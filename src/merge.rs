//! `stampede merge`: shard run folders (`run --shard I/N`) into one run
//! folder that `report`, `compare` and thresholds read like any other.
//!
//! Nothing is averaged. Each shard's measured histograms are read back
//! from its `.hlog` files over the same windows its summary used, added,
//! and summarized again by the same code as a single run
//! ([`GroupResult::row`]); counters are summed. The merged `.hlog` files
//! hold every shard's intervals on one time base, and `timeseries.csv`
//! adds the shards' rows up per group and wall-clock second, with
//! percentiles from the added interval histograms.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use crate::error::{Error, Result};
use crate::exit;
use crate::folder::hlog::{self, HlogWriter, RawInterval};
use crate::folder::run_json::{ErrorExample, MergedShard, PhaseInfo, RunInfo};
use crate::folder::{hlog_name, summary as summary_csv, timeseries};
use crate::gate::threshold::{self, Threshold, ThresholdResult};
use crate::metrics::recorder::new_histogram;
use crate::metrics::summary::{pct_ms, GroupResult, SummaryRow};
use crate::metrics::Latency;
use crate::report;
use crate::transport::TransportKind;

/// Slack for times that run.json and the logs both round to the millisecond.
const ROUNDING_S: f64 = 0.0015;

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

fn transport_of(row: &SummaryRow, path: &Path) -> Result<TransportKind> {
    serde_json::from_value(serde_json::Value::String(row.transport.clone())).map_err(|_| {
        folder_error(
            path,
            format!(
                "group {:?}: unknown transport {:?}",
                row.group, row.transport
            ),
        )
    })
}

/// The summary of every group over all shards, in the first shard's order.
fn merge_summary(shards: &[ShardData]) -> Result<Vec<SummaryRow>> {
    let mut order: Vec<String> = Vec::new();
    for s in shards {
        for r in &s.rows {
            if !order.contains(&r.group) {
                order.push(r.group.clone());
            }
        }
    }
    let same_host = shards
        .iter()
        .all(|s| s.info.host.hostname == shards[0].info.host.hostname);
    let mut rows = Vec::with_capacity(order.len());
    for group in &order {
        let mut total: Option<GroupResult> = None;
        for s in shards {
            let Some(row) = s.rows.iter().find(|r| &r.group == group) else {
                continue;
            };
            let transport = transport_of(row, &s.dir.join("summary.csv"))?;
            let hists = measured_histograms(s, row, transport)?;
            let part = GroupResult::from_row(row, transport, hists, s.info.host.cpus as f64);
            total = Some(match total {
                None => part,
                Some(t) => add_results(t, part, &s.dir, same_host)?,
            });
        }
        if let Some(t) = total {
            rows.push(t.row());
        }
    }
    Ok(rows)
}

/// Two shards' results of one group: clients, counters and histograms add;
/// the measured window is the shards' common one; load-generator cost adds
/// (separate processes); the target's is the same process seen by each
/// shard, so its largest reading is kept.
fn add_results(
    mut a: GroupResult,
    b: GroupResult,
    dir: &Path,
    same_host: bool,
) -> Result<GroupResult> {
    a.clients += b.clients;
    a.accounting = match (a.accounting, b.accounting) {
        (Some((mut t, p)), Some((u, q))) => {
            t += u;
            Some((t, p + q))
        }
        (x, y) => x.or(y),
    };
    for (h, o) in a.measured.hists.iter_mut().zip(&b.measured.hists) {
        h.add(o).map_err(|e| {
            folder_error(
                dir,
                format!("histograms of group {} cannot be added: {e}", a.name),
            )
        })?;
    }
    for (c, o) in a.measured.counts.iter_mut().zip(&b.measured.counts) {
        *c += o;
    }
    for (c, o) in a.measured.errors.iter_mut().zip(&b.measured.errors) {
        *c += o;
    }
    a.measured_s = a.measured_s.max(b.measured_s);
    a.client.cpu_s += b.client.cpu_s;
    a.client.rss_peak_bytes += b.client.rss_peak_bytes;
    // The merged run was limited by its load generators if any one was:
    // the worst lag and slip; CPU adds up on one machine (shared cores)
    // and is each host's own across machines.
    a.health = crate::metrics::health::Health {
        cpu_pct: if same_host {
            a.health.cpu_pct + b.health.cpu_pct
        } else {
            a.health.cpu_pct.max(b.health.cpu_pct)
        },
        cores: a.health.cores.max(b.health.cores),
        lag_p99_ms: max_opt(a.health.lag_p99_ms, b.health.lag_p99_ms),
        slip_p99_ms: max_opt(a.health.slip_p99_ms, b.health.slip_p99_ms),
    };
    a.target = match (a.target, b.target) {
        (Some(mut t), Some(u)) => {
            t.cpu_s = t.cpu_s.max(u.cpu_s);
            t.rss_peak_bytes = t.rss_peak_bytes.max(u.rss_peak_bytes);
            t.sockets_peak = t.sockets_peak.max(u.sockets_peak);
            // One target seen by every shard: its lowest RSS before the
            // phase, its highest at the held load and the most sockets
            // added any shard saw (each saw every shard's clients).
            t.marginal = match (t.marginal, u.marginal) {
                (Some(mut m), Some(n)) => {
                    m.rss_before_bytes = m.rss_before_bytes.min(n.rss_before_bytes);
                    m.rss_held_bytes = m.rss_held_bytes.max(n.rss_held_bytes);
                    m.sockets_added = m.sockets_added.max(n.sockets_added);
                    // Every shard's clients ramp together: the steeper.
                    m.per_1k_mb = match (m.per_1k_mb, n.per_1k_mb) {
                        (Some(x), Some(y)) => Some(x.max(y)),
                        (x, y) => x.or(y),
                    };
                    Some(m)
                }
                (x, y) => x.or(y),
            };
            Some(t)
        }
        (x, y) => x.or(y),
    };
    Ok(a)
}

/// A group's histograms over the windows its summary row used: connect,
/// subscribe and first-event times over the whole phase; deliveries and
/// polls from the start of the measured window through the drain; request
/// and echo exchanges over the measured window only.
fn measured_histograms(
    s: &ShardData,
    row: &SummaryRow,
    transport: TransportKind,
) -> Result<Vec<Histogram<u64>>> {
    let phase = s.info.phases.iter().find(|p| p.groups.contains(&row.group));
    let (from, to) = phase.map_or((f64::NEG_INFINITY, f64::INFINITY), |p| {
        (p.measure_from_s, p.measure_to_s)
    });
    let mut out = Vec::with_capacity(Latency::ALL.len());
    for m in Latency::ALL {
        let path = s.dir.join(hlog_name(&row.group, m.label()));
        let whole_phase = m.whole_phase();
        let keep = |iv: &RawInterval| {
            whole_phase
                || (iv.start_s >= from - ROUNDING_S
                    && (transport.subscribes() || iv.start_s + iv.duration_s <= to + ROUNDING_S))
        };
        let mut total = new_histogram();
        for iv in read_log(&path)?
            .unwrap_or_default()
            .iter()
            .filter(|iv| keep(iv))
        {
            let h = hlog::decode(&iv.encoded).map_err(|e| {
                folder_error(&path, format!("not a readable interval histogram: {e}"))
            })?;
            total
                .add(&h)
                .map_err(|e| folder_error(&path, format!("intervals cannot be added: {e}")))?;
        }
        out.push(total);
    }
    Ok(out)
}

/// A log's intervals; `None` when the file is absent (a group only has
/// the logs of metrics it can record: absent reads as empty).
fn read_log(path: &Path) -> Result<Option<Vec<RawInterval>>> {
    match hlog::read_raw(path) {
        Ok(log) => Ok(Some(log)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(folder_error(
            path,
            format!("not a readable HdrHistogram interval log: {e}"),
        )),
    }
}

fn system_time(unix_s: f64) -> SystemTime {
    UNIX_EPOCH + Duration::try_from_secs_f64(unix_s.max(0.0)).unwrap_or_default()
}

/// Every shard's intervals, on the merged time base, in start order.
fn merge_logs(shards: &[ShardData], rows: &[SummaryRow], epoch: f64, out: &Path) -> Result<()> {
    let mut paths = Vec::new();
    let mut contents = Vec::new();
    for r in rows {
        for m in Latency::ALL {
            let name = hlog_name(&r.group, m.label());
            let mut all: Vec<RawInterval> = Vec::new();
            let mut logged = false;
            for s in shards {
                if !s.rows.iter().any(|x| x.group == r.group) {
                    continue;
                }
                let shift = s.epoch - epoch;
                let Some(log) = read_log(&s.dir.join(&name))? else {
                    continue;
                };
                logged = true;
                all.extend(log.into_iter().map(|mut iv| {
                    iv.start_s += shift;
                    iv
                }));
            }
            // Only the logs some shard wrote: the metrics the group has.
            if !logged {
                continue;
            }
            all.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
            paths.push(out.join(&name));
            contents.push((name, all));
        }
    }
    let writer =
        HlogWriter::create(paths, system_time(epoch)).map_err(|e| Error::output(out, e))?;
    for (file, (name, intervals)) in contents.iter().enumerate() {
        for iv in intervals {
            let h = hlog::decode(&iv.encoded).map_err(|e| {
                folder_error(
                    &out.join(name),
                    format!("not a readable interval histogram: {e}"),
                )
            })?;
            writer.write(
                file,
                &h,
                Duration::try_from_secs_f64(iv.start_s.max(0.0)).unwrap_or_default(),
                Duration::try_from_secs_f64(iv.duration_s.max(0.0)).unwrap_or_default(),
            );
        }
    }
    writer.finish().map_err(|e| Error::output(out, e))
}

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
}

/// `timeseries.csv` of the merged run: per group and wall-clock second,
/// counts and rates summed over shards, delivery percentiles from the
/// added interval histograms.
fn merge_series(shards: &[ShardData], rows: &[SummaryRow], epoch: f64, out: &Path) -> Result<()> {
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
                let w = row.interval_s;
                slot.unix_s = slot.unix_s.max(row.unix_s);
                slot.interval_s += w;
                slot.phase = row.phase;
                slot.transport = row.transport.clone();
                slot.measured |= row.measured;
                slot.connections = row.connections;
                slot.deliveries += row.deliveries;
                slot.errors += row.errors;
                for (a, b) in slot.errors_by_kind.iter_mut().zip(row.errors_by_kind) {
                    *a += b;
                }
                slot.reconnects += row.reconnects;
                slot.deliveries_x += row.deliveries_per_s * w;
                slot.requests_x += row.requests_per_s * w;
                slot.sent_x += row.bytes_sent_per_s * w;
                slot.received_x += row.bytes_received_per_s * w;
                if let Some(c) = row.client_cpu_pct {
                    slot.client_cpu_x = Some(slot.client_cpu_x.unwrap_or(0.0) + c * w);
                }
                slot.target_cpu = max_opt(slot.target_cpu, row.target_cpu_pct);
                slot.target_rss = max_opt(slot.target_rss, row.target_rss_mb);
                slot.target_connections = slot.target_connections.max(row.target_connections);
                slot.lag_ms = max_opt(slot.lag_ms, row.loadgen_lag_ms);
                if row.stage.is_some() {
                    slot.stage = row.stage.clone();
                }
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
            errors_by_kind,
        };
        w.row(&row)?;
    }
    Ok(())
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// The scenario's plan from the shards' plans: client counts and request
/// rates add up; the shard markers go.
fn merged_plan(plans: &[&serde_json::Value]) -> serde_json::Value {
    use serde_json::Value;
    let mut out = plans.first().map_or(Value::Null, |p| (*p).clone());
    if let Some(o) = out.as_object_mut() {
        o.remove("shard");
    }
    let n = out
        .get("groups")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    for gi in 0..n {
        let field = |key: &str| -> Option<f64> {
            plans
                .iter()
                .map(|p| {
                    p.pointer(&format!("/groups/{gi}/{key}"))
                        .and_then(Value::as_f64)
                })
                .sum()
        };
        let clients = plans
            .iter()
            .filter_map(|p| {
                p.pointer(&format!("/groups/{gi}/clients"))
                    .and_then(Value::as_u64)
            })
            .sum::<u64>();
        let rate = field("rate_per_s");
        if let Some(g) = out
            .pointer_mut(&format!("/groups/{gi}"))
            .and_then(Value::as_object_mut)
        {
            g.insert("clients".into(), clients.into());
            g.remove("shard_of");
            if let Some(r) = rate {
                g.insert("rate_per_s".into(), r.into());
            }
        }
    }
    let values = out
        .pointer("/sweep/values")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    for vi in 0..values {
        let path = format!("/sweep/values/{vi}/plan");
        let parts: Vec<Value> = plans
            .iter()
            .filter_map(|p| p.pointer(&path).cloned())
            .collect();
        let merged = merged_plan(&parts.iter().collect::<Vec<_>>());
        if let Some(slot) = out.pointer_mut(&path) {
            *slot = merged;
        }
    }
    out
}

/// `run.json` of the merged folder.
fn merged_info(shards: &[ShardData], epoch: f64, missing: &[u32]) -> RunInfo {
    let first = &shards[0].info;
    let plans: Vec<&serde_json::Value> = shards.iter().map(|s| &s.info.plan).collect();
    let rank = |status: &str| match status {
        "completed" => 0,
        "aborted" => 1,
        "interrupted" => 2,
        "running" => 3,
        _ => 4,
    };
    let status = shards
        .iter()
        .map(|s| s.info.status.as_str())
        .max_by_key(|s| rank(s))
        .unwrap_or("completed")
        .to_string();
    let mut reasons: Vec<String> = shards
        .iter()
        .filter_map(|s| {
            let sh = s.info.shard.as_ref()?;
            let why = s.info.partial_reason.as_ref().filter(|_| s.info.partial)?;
            Some(format!("shard {}: {why}", sh.index))
        })
        .collect();
    if !missing.is_empty() {
        reasons.push(format!(
            "shards {} of {} are missing: totals cover the shards given only",
            missing
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            first.shard.as_ref().map_or(0, |s| s.count)
        ));
    }
    let mut warnings: Vec<String> = reasons
        .iter()
        .filter(|r| r.contains("missing"))
        .cloned()
        .collect();
    let mut errors: Vec<ErrorExample> = Vec::new();
    for s in shards {
        let index = s.info.shard.as_ref().map_or(0, |s| s.index);
        warnings.extend(
            s.info
                .warnings
                .iter()
                .map(|w| format!("shard {index}: {w}")),
        );
        for e in &s.info.errors {
            if !errors
                .iter()
                .any(|x| x.group == e.group && x.kind == e.kind)
            {
                errors.push(ErrorExample {
                    detail: format!("shard {index}: {}", e.detail),
                    ..e.clone()
                });
            }
        }
    }
    let phases = merged_phases(shards, epoch);
    let started = shards
        .iter()
        .map(|s| s.info.started_at.clone())
        .min()
        .unwrap_or_default();
    let ended = shards.iter().filter_map(|s| s.info.ended_at.clone()).max();
    let span = shards
        .iter()
        .filter_map(|s| s.info.duration_s.map(|d| s.epoch - epoch + d))
        .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))));
    RunInfo {
        stampede_version: first.stampede_version.clone(),
        scenario_file: first.scenario_file.clone(),
        plan: merged_plan(&plans),
        host: first.host.clone(),
        target: first.target.clone(),
        started_at: started,
        ended_at: ended,
        duration_s: span,
        status,
        exit_code: None,
        partial: !reasons.is_empty(),
        partial_reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        phases,
        errors,
        warnings,
        thresholds: Vec::new(),
        repeats: None,
        sweep: first.sweep.clone(),
        epoch_unix_s: Some(epoch),
        scenario_digest: first.scenario_digest.clone(),
        shard: None,
        merged_from: shards
            .iter()
            .map(|s| MergedShard {
                index: s.info.shard.as_ref().map_or(0, |s| s.index),
                dir: s.dir.display().to_string(),
                host: s.info.host.clone(),
                started_at: s.info.started_at.clone(),
                ended_at: s.info.ended_at.clone(),
                epoch_unix_s: Some(s.epoch),
                late_by_s: s.info.shard.as_ref().and_then(|s| s.late_by_s),
                status: s.info.status.clone(),
                exit_code: s.info.exit_code,
            })
            .collect(),
    }
}

/// Phase timing on the merged time base: the earliest start, the common
/// measured window's widest extent, the latest end; publisher figures add.
fn merged_phases(shards: &[ShardData], epoch: f64) -> Vec<PhaseInfo> {
    let mut out: Vec<PhaseInfo> = Vec::new();
    let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
    for s in shards {
        let shift = s.epoch - epoch;
        for p in &s.info.phases {
            let moved = PhaseInfo {
                start_s: r3(p.start_s + shift),
                measure_from_s: r3(p.measure_from_s + shift),
                measure_to_s: r3(p.measure_to_s + shift),
                end_s: r3(p.end_s + shift),
                ..p.clone()
            };
            match out.iter_mut().find(|q| q.index == p.index) {
                None => out.push(moved),
                Some(q) => {
                    q.start_s = q.start_s.min(moved.start_s);
                    q.measure_from_s = q.measure_from_s.min(moved.measure_from_s);
                    q.measure_to_s = q.measure_to_s.max(moved.measure_to_s);
                    q.end_s = q.end_s.max(moved.end_s);
                    q.stopped_early |= moved.stopped_early;
                    q.published_total += moved.published_total;
                    q.publish_errors += moved.publish_errors;
                    q.publish_p99_ms = max_opt(q.publish_p99_ms, moved.publish_p99_ms);
                    if q.publish_first_error.is_none() {
                        q.publish_first_error = moved.publish_first_error;
                    }
                    if let (Some(a), Some(b)) = (&mut q.storm, moved.storm) {
                        a.at_s = a.at_s.min(b.at_s);
                        a.error = a.error.take().or(b.error);
                    }
                }
            }
        }
    }
    out.sort_by_key(|p| p.index);
    out
}

/// Writes the report of a merged folder; a failure is a warning.
pub fn write_report(dir: &Path) {
    if let Err(e) = report::generate(std::slice::from_ref(&dir.to_path_buf()), dir) {
        let e = crate::secrets::redact(&e.to_string());
        eprintln!("stampede: warning: report not written: {e}");
    }
}
