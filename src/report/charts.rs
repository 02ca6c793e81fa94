//! Which charts a report has and what goes into them, from run folders
//! already read ([`super::folder`]); drawing is [`super::plot`]'s job.
//!
//! Series are named by group for one run and `run-label/group` for several
//! (plus `repeat-i` for the repeats of a `--repeat` folder). A series keeps
//! its colour in every chart.
//!
//! Percentile charts add up a group's `.hlog` intervals over the same
//! windows as `summary.csv`: delivery latency from the measured window's
//! start (after ramp-up and warm-up) through the drain, connect time over
//! the whole phase (connections are made during ramp-up). So the lines
//! agree with the table's p50/p99.

use std::collections::HashMap;

use hdrhistogram::Histogram;
use plotters::style::RGBColor;

use super::axis::{self, Axis, Scale};
use super::plot::{self, Band, Bar, BarChart, Line, LineChart, Mark, Panel};
use crate::error::Result;
use crate::folder::read::{GroupHistograms, RunData, Trace};
use crate::metrics::summary::SummaryRow;

/// One drawn chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File name under `charts/`.
    pub file: String,
    /// Title (also the figure caption).
    pub title: String,
    /// What the chart shows and how to read it.
    pub note: String,
    /// The SVG document.
    pub svg: String,
}

/// Positions on the percentile axis: 0 to 99.999% in steps of 0.02 nines.
const NINES_STEPS: usize = 250;

/// Shorter time-series intervals are left out of rate lines.
const MIN_RATE_INTERVAL_S: f64 = 0.25;

/// Latency axes switch to log when lines differ by more than this factor.
pub(super) const LOG_RATIO: f64 = 50.0;

/// Draws every chart for `runs`.
pub fn all(runs: &[RunData]) -> Result<Vec<Chart>> {
    let names = Names::new(runs);
    let mut charts = vec![
        percentiles(runs, &names, Metric::Delivery)?,
        percentiles(runs, &names, Metric::Connect)?,
        latency_over_time(runs, &names)?,
        throughput_over_time(runs, &names)?,
        cost(runs, &names)?,
    ];
    // A sweep's curves (only when a run has sweep.csv).
    charts.extend(super::sweep_chart::charts(runs)?);
    Ok(charts)
}

/// Series names and colours, fixed once for all charts.
struct Names {
    multi: bool,
    colors: HashMap<(usize, usize, String), RGBColor>,
}

impl Names {
    fn new(runs: &[RunData]) -> Names {
        let mut colors = HashMap::new();
        for (ri, r) in runs.iter().enumerate() {
            for ti in 0..r.traces.len() {
                for row in &r.rows {
                    let n = colors.len();
                    colors
                        .entry((ri, ti, row.group.clone()))
                        .or_insert_with(|| plot::color(n));
                }
            }
        }
        Names {
            multi: runs.len() > 1,
            colors,
        }
    }

    fn label(&self, run: &RunData, trace: Option<&Trace>, group: &str) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if self.multi {
            parts.push(&run.label);
        }
        if let Some(name) = trace.and_then(|t| t.name.as_deref()) {
            parts.push(name);
        }
        parts.push(group);
        parts.join("/")
    }

    fn color(&self, run: usize, trace: usize, group: &str) -> RGBColor {
        self.colors
            .get(&(run, trace, group.to_string()))
            .copied()
            .unwrap_or(RGBColor(0x70, 0x70, 0x70))
    }
}

#[derive(Clone, Copy)]
enum Metric {
    Delivery,
    Connect,
}

fn percentiles(runs: &[RunData], names: &Names, metric: Metric) -> Result<Chart> {
    let pick = |g: &GroupHistograms| -> Option<Histogram<u64>> {
        match metric {
            Metric::Delivery => g.delivery.clone(),
            Metric::Connect => g.connect.clone(),
        }
    };
    let mut lines = Vec::new();
    for (ri, run) in runs.iter().enumerate() {
        for (ti, trace) in run.traces.iter().enumerate() {
            for g in &trace.groups {
                let Some(h) = pick(g) else { continue };
                let points = (0..=NINES_STEPS)
                    .map(|i| {
                        let x = axis::MAX_NINES * i as f64 / NINES_STEPS as f64;
                        let q = axis::nines_q(x);
                        (x, Some(h.value_at_quantile(q) as f64 / 1000.0))
                    })
                    .collect();
                lines.push(Line {
                    label: names.label(run, Some(trace), &g.group),
                    color: names.color(ri, ti, &g.group),
                    dashed: false,
                    markers: false,
                    points,
                });
            }
        }
    }
    let ys = all_y(&lines);
    let (file, title, y_desc, note, empty) = match metric {
        Metric::Delivery => (
            "delivery-percentiles.svg",
            "Delivery latency by percentile",
            "delivery latency (ms)",
            "Every delivery in the measured window (after ramp-up and warm-up, through the drain), \
             from the .hlog files. Read across: the latency that p% of deliveries stayed under.",
            "no deliveries",
        ),
        Metric::Connect => (
            "connect-percentiles.svg",
            "TCP connect time by percentile",
            "connect time (ms)",
            "Every TCP connection of the phase, ramp-up included (connections are made then).",
            "no connections",
        ),
    };
    let chart = LineChart {
        title: title.into(),
        x: Axis::new("percentile (nines scale)", Scale::Nines, std::iter::empty()),
        y: Axis::auto(y_desc, &ys, LOG_RATIO),
        lines,
        bands: Vec::new(),
        marks: Vec::new(),
        empty_text: empty.into(),
    };
    Ok(Chart {
        file: file.into(),
        title: title.into(),
        note: note.into(),
        svg: plot::line_chart(&chart)?,
    })
}

fn latency_over_time(runs: &[RunData], names: &Names) -> Result<Chart> {
    let mut lines = Vec::new();
    for_each_group_series(runs, names, |label, color, rows| {
        let at =
            |f: fn(&crate::folder::timeseries::Row) -> Option<f64>| -> Vec<(f64, Option<f64>)> {
                rows.iter().map(|r| (r.elapsed_s, f(r))).collect()
            };
        if rows.iter().any(|r| r.delivery_p99_ms.is_some()) {
            lines.push(Line {
                label: format!("{label} p99"),
                color,
                dashed: false,
                markers: false,
                points: at(|r| r.delivery_p99_ms),
            });
            lines.push(Line {
                label: format!("{label} p50"),
                color,
                dashed: true,
                markers: false,
                points: at(|r| r.delivery_p50_ms),
            });
        }
    });
    let ys = all_y(&lines);
    let (bands, marks, note) = phase_marks(runs);
    let title = "Delivery latency over time";
    let chart = LineChart {
        title: title.into(),
        x: time_axis(runs),
        y: Axis::auto("delivery latency (ms)", &ys, LOG_RATIO),
        lines,
        bands,
        marks,
        empty_text: "no deliveries".into(),
    };
    Ok(Chart {
        file: "latency-over-time.svg".into(),
        title: title.into(),
        note: format!(
            "p99 (solid) and p50 (dashed) of each second's deliveries, from timeseries.csv. {note}"
        ),
        svg: plot::line_chart(&chart)?,
    })
}

fn throughput_over_time(runs: &[RunData], names: &Names) -> Result<Chart> {
    let mut lines = Vec::new();
    for_each_group_series(runs, names, |label, color, rows| {
        // Intervals cut short at window edges hold a handful of events;
        // divided by a few milliseconds they draw spikes that never happened.
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|r| r.interval_s >= MIN_RATE_INTERVAL_S)
            .collect();
        lines.push(Line {
            label: format!("{label} deliveries/s"),
            color,
            dashed: false,
            markers: false,
            points: rows
                .iter()
                .map(|r| (r.elapsed_s, Some(r.deliveries_per_s)))
                .collect(),
        });
        // Streaming kinds make no poll requests: a flat zero line is noise.
        if rows.iter().any(|r| r.requests_per_s > 0.0) {
            lines.push(Line {
                label: format!("{label} requests/s"),
                color,
                dashed: true,
                markers: false,
                points: rows
                    .iter()
                    .map(|r| (r.elapsed_s, Some(r.requests_per_s)))
                    .collect(),
            });
        }
    });
    let ys = all_y(&lines);
    let (bands, marks, note) = phase_marks(runs);
    let title = "Throughput over time";
    let chart = LineChart {
        title: title.into(),
        x: time_axis(runs),
        y: Axis::new("per second", Scale::Linear, ys.into_iter()),
        lines,
        bands,
        marks,
        empty_text: "no data".into(),
    };
    Ok(Chart {
        file: "throughput-over-time.svg".into(),
        title: title.into(),
        note: format!(
            "Deliveries per second (solid, all clients of a group together) and poll requests \
             per second (dashed, polling kinds only), from timeseries.csv; intervals shorter \
             than 250 ms (cut at window edges) are left out. {note}"
        ),
        svg: plot::line_chart(&chart)?,
    })
}

/// Calls `f(label, colour, rows)` for every group of every trace, rows in
/// time order.
fn for_each_group_series(
    runs: &[RunData],
    names: &Names,
    mut f: impl FnMut(String, RGBColor, Vec<&crate::folder::timeseries::Row>),
) {
    for (ri, run) in runs.iter().enumerate() {
        for (ti, trace) in run.traces.iter().enumerate() {
            for g in &trace.groups {
                let mut rows: Vec<&crate::folder::timeseries::Row> =
                    trace.series.iter().filter(|r| r.group == g.group).collect();
                rows.sort_by(|a, b| a.elapsed_s.total_cmp(&b.elapsed_s));
                if !rows.is_empty() {
                    f(
                        names.label(run, Some(trace), &g.group),
                        names.color(ri, ti, &g.group),
                        rows,
                    );
                }
            }
        }
    }
}

fn time_axis(runs: &[RunData]) -> Axis {
    let ends = runs.iter().flat_map(|r| &r.traces).flat_map(|t| {
        let series = t.series.iter().map(|r| r.elapsed_s);
        series.chain(t.phases.iter().map(|p| p.end_s))
    });
    Axis::new("time since the run started (s)", Scale::Linear, ends)
}

/// Shaded ramp-up / warm-up and drain spans and a line at each phase start,
/// from the first run (overlaid runs of one scenario share their timing).
fn phase_marks(runs: &[RunData]) -> (Vec<Band>, Vec<Mark>, String) {
    let Some((run, trace)) = runs.first().and_then(|r| r.traces.first().map(|t| (r, t))) else {
        return (Vec::new(), Vec::new(), String::new());
    };
    let mut bands = Vec::new();
    let mut marks = Vec::new();
    for p in &trace.phases {
        if p.measure_from_s > p.start_s {
            bands.push(Band {
                from: p.start_s,
                to: p.measure_from_s,
                shade: 0.12,
                label: "ramp-up + warm-up".into(),
            });
        }
        if p.end_s > p.measure_to_s {
            bands.push(Band {
                from: p.measure_to_s,
                to: p.end_s,
                shade: 0.05,
                label: "drain (publishing stopped)".into(),
            });
        }
        marks.push(Mark {
            at: p.start_s,
            text: format!("phase {}: {}", p.index + 1, p.groups.join(", ")),
        });
        if let Some(st) = &p.storm {
            marks.push(Mark {
                at: st.at_s,
                text: format!("storm (via {})", st.via),
            });
        }
    }
    // Load stages (`stages` in a group): a line where a group's stage
    // changes, at the start of the interval that first shows it.
    let mut last: Vec<(&str, &str)> = Vec::new();
    for r in &trace.series {
        // The storm has its own mark, from run.json.
        let Some(stage) = r.stage.as_deref().filter(|s| *s != "storm") else {
            continue;
        };
        match last.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, s)) if *s == stage => continue,
            Some(slot) => slot.1 = stage,
            None => last.push((&r.group, stage)),
        }
        marks.push(Mark {
            at: r.elapsed_s - r.interval_s,
            text: format!("{}: {stage}", r.group),
        });
    }
    let whose = if runs.len() > 1 || run.traces.len() > 1 {
        let t = trace
            .name
            .as_deref()
            .map_or(String::new(), |n| format!("/{n}"));
        format!(" Phase marks are those of {}{t}.", run.label)
    } else {
        String::new()
    };
    let note = format!(
        "Shaded: ramp-up and warm-up (not in summary.csv), then the drain after publishing \
         stopped; vertical lines: phase starts, load-stage changes and storms.{whose}"
    );
    (bands, marks, note)
}

fn all_y(lines: &[Line]) -> Vec<f64> {
    lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .collect()
}

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

fn cost(runs: &[RunData], names: &Names) -> Result<Chart> {
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
