//! The cost chart: requests, bytes, target CPU and memory per delivery or
//! connection, per group; target figures only where a group had its phase
//! to itself.

use super::{Chart, Names};
use crate::error::Result;
use crate::folder::read::RunData;
use crate::metrics::summary::SummaryRow;
use crate::report::plot::{self, Bar, BarChart, Panel};

/// Cost figures of one summary row; `None` where a value is empty or has no
/// meaning.
pub struct Cost {
    /// `requests_per_delivery`.
    pub requests_per_delivery: Option<f64>,
    /// `bytes_per_delivery`.
    pub bytes_per_delivery: Option<f64>,
    /// Target CPU milliseconds per 1,000 deliveries
    /// (`target_cpu_ms_per_1k_deliveries`).
    pub target_cpu_ms_per_1k: Option<f64>,
    /// Target peak RSS per 1,000 connections, MB (`target_rss_per_1k_conn_mb`).
    pub target_mb_per_1k_conn: Option<f64>,
    /// What 1,000 more connections added to the target's RSS, MB
    /// (`target_rss_marginal_per_1k_conn_mb`).
    pub target_marginal_mb_per_1k_conn: Option<f64>,
}

impl Cost {
    /// Figures of `row`. Target cost is per phase; in a phase shared with
    /// other groups it cannot be attributed to one transport (`shared`).
    pub fn of(row: &SummaryRow, shared: bool) -> Cost {
        use crate::folder::cost;
        let own = |v: Option<f64>| if shared { None } else { v };
        Cost {
            requests_per_delivery: row.requests_per_delivery,
            bytes_per_delivery: row.bytes_per_delivery,
            target_cpu_ms_per_1k: cost::target_cpu_ms_per_1k_deliveries(
                own(row.target_cpu_s),
                row.delivered,
            ),
            target_mb_per_1k_conn: cost::target_rss_per_1k_conn_mb(
                own(row.target_rss_peak_mb),
                row.target_connections_peak,
                row.clients,
            ),
            target_marginal_mb_per_1k_conn: own(row.target_rss_marginal_per_1k_conn_mb),
        }
    }
}

/// True when `row`'s group ran after another phase on the same watched
/// target process: the memory that phase freed stays with the process and
/// is reused, so the later phase's marginal memory reads low (measured:
/// 0 MB per 1,000 WebSocket connections after poll, long-poll and SSE, 7.5
/// on a fresh target).
pub fn reuses_memory(run: &RunData, row: &SummaryRow) -> bool {
    let Some(before) = row.target_rss_before_mb else {
        return false;
    };
    let Some(phase) = run
        .info
        .phases
        .iter()
        .position(|p| p.groups.contains(&row.group))
    else {
        return false;
    };
    let earlier: Vec<&String> = run.info.phases[..phase]
        .iter()
        .flat_map(|p| &p.groups)
        .collect();
    run.rows
        .iter()
        .filter(|r| earlier.contains(&&r.group))
        .any(|r| r.target_rss_peak_mb.is_some() && before > 0.0)
}

/// True when `group` ran in a phase together with other groups.
pub fn shares_phase(run: &RunData, group: &str) -> bool {
    run.info
        .phases
        .iter()
        .any(|p| p.groups.len() > 1 && p.groups.iter().any(|g| g == group))
}

pub(super) fn cost(runs: &[RunData], names: &Names) -> Result<Chart> {
    let mut panels: Vec<Panel> = [
        ("Requests per delivery", "requests"),
        ("Bytes per delivery", "bytes (sent + received)"),
        ("Target CPU per 1,000 deliveries", "CPU ms"),
        ("Target memory per 1,000 connections", "peak RSS MB"),
        (
            "Target marginal memory per 1,000 connections",
            "RSS growth MB",
        ),
    ]
    .iter()
    .map(|(t, y)| Panel {
        title: (*t).into(),
        y_desc: (*y).into(),
        bars: Vec::new(),
        note: String::new(),
    })
    .collect();
    let mut legend = Vec::new();
    // The same group of every run side by side, as in the summary table.
    let mut order: Vec<(usize, usize, &SummaryRow)> = Vec::new();
    let mut groups: Vec<&str> = Vec::new();
    for (ri, run) in runs.iter().enumerate() {
        for row in &run.rows {
            let gi = groups
                .iter()
                .position(|g| *g == row.group)
                .unwrap_or_else(|| {
                    groups.push(&row.group);
                    groups.len() - 1
                });
            order.push((gi, ri, row));
        }
    }
    order.sort_by_key(|(gi, ri, _)| (*gi, *ri));
    for (_, ri, row) in order {
        let run = &runs[ri];
        let shared = shares_phase(run, &row.group);
        let mut c = Cost::of(row, shared);
        let reused = !shared && reuses_memory(run, row);
        if reused {
            c.target_marginal_mb_per_1k_conn = None;
        }
        let color = names.color(ri, 0, &row.group);
        legend.push((names.label(run, None, &row.group), color));
        let target_why = if shared {
            "n/a: groups sharing a phase share the target's cost"
        } else if row.target_cpu_s.is_none() {
            "n/a: external target (its process is not watched)"
        } else {
            "n/a: no deliveries"
        };
        let values = [
            (c.requests_per_delivery, "n/a: no deliveries"),
            (c.bytes_per_delivery, "n/a: no deliveries"),
            (c.target_cpu_ms_per_1k, target_why),
            (c.target_mb_per_1k_conn, target_why),
            (
                c.target_marginal_mb_per_1k_conn,
                if shared || row.target_cpu_s.is_none() {
                    target_why
                } else if reused {
                    "n/a: after an earlier phase (its freed memory is reused)"
                } else {
                    "n/a: no sample at the held load"
                },
            ),
        ];
        for (panel, (value, why)) in panels.iter_mut().zip(values) {
            if value.is_none() && !panel.note.contains(why) {
                if !panel.note.is_empty() {
                    panel.note.push_str("; ");
                }
                panel.note.push_str(why);
            }
            panel.bars.push(Bar {
                label: row.group.clone(),
                color,
                value,
            });
        }
    }
    let title = "Cost per delivered event";
    let chart = BarChart {
        title: title.into(),
        panels,
        legend,
    };
    Ok(Chart {
        file: "cost-per-delivery.svg".into(),
        title: title.into(),
        note: "From summary.csv: requests_per_delivery, bytes_per_delivery, \
               target_cpu_s × 1,000,000 / delivered (ms per 1,000 deliveries) and \
               target_rss_peak_mb / target_connections_peak × 1,000 (per client when the sockets cannot be read), \
               and target_rss_marginal_per_1k_conn_mb (the RSS 1,000 more connections add, \
               from the slope of RSS against open sockets over the ramp, without the \
               target's baseline); the same definitions as the summary columns. Target CPU and memory cover the whole \
               phase (ramp-up and drain included); for groups that ran concurrently they \
               cannot be split per transport and read n/a, as they do for an external target."
            .into(),
        svg: plot::bar_chart(&chart)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_skips_what_is_empty_or_shared() {
        let mut row = SummaryRow::example();
        row.clients = 250;
        row.delivered = Some(10_000);
        row.target_cpu_s = Some(2.0);
        row.target_rss_peak_mb = Some(25.0);
        let c = Cost::of(&row, false);
        assert_eq!(c.target_cpu_ms_per_1k, Some(200.0));
        assert_eq!(c.target_mb_per_1k_conn, Some(100.0));
        assert_eq!(c.target_marginal_mb_per_1k_conn, None);
        row.target_rss_marginal_per_1k_conn_mb = Some(6.4);
        let c = Cost::of(&row, false);
        assert_eq!(c.target_marginal_mb_per_1k_conn, Some(6.4));
        assert_eq!(Cost::of(&row, true).target_marginal_mb_per_1k_conn, None);
        assert_eq!(c.requests_per_delivery, None);
        let c = Cost::of(&row, true);
        assert_eq!(c.target_cpu_ms_per_1k, None);
        row.delivered = Some(0);
        assert_eq!(Cost::of(&row, false).target_cpu_ms_per_1k, None);
    }
}
