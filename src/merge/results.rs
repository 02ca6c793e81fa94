//! `summary.csv` of a merged folder: each group's results added over the
//! shards, histograms re-read over the windows the shards' summaries used.

use std::path::Path;

use hdrhistogram::Histogram;

use super::{folder_error, logs::read_log, max_opt, ShardData};
use crate::error::Result;
use crate::folder::hlog::{self, RawInterval};
use crate::folder::hlog_name;
use crate::metrics::recorder::new_histogram;
use crate::metrics::summary::{GroupResult, SummaryRow};
use crate::metrics::Latency;
use crate::transport::TransportKind;

/// Slack for times that run.json and the logs both round to the millisecond.
pub(super) const ROUNDING_S: f64 = 0.0015;

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
pub(super) fn merge_summary(shards: &[ShardData]) -> Result<Vec<SummaryRow>> {
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
                Some(t) => add_results(t, part, same_host),
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
fn add_results(mut a: GroupResult, b: GroupResult, same_host: bool) -> GroupResult {
    a.clients += b.clients;
    a.accounting = match (a.accounting, b.accounting) {
        (Some((mut t, p)), Some((u, q))) => {
            t += u;
            Some((t, p + q))
        }
        (x, y) => x.or(y),
    };
    // Every histogram has the run's fixed bounds, so adding cannot fail.
    a.measured.merge_hists(&b.measured);
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
    a
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
