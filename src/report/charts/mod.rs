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

mod cost;

use std::collections::HashMap;

use hdrhistogram::Histogram;
use plotters::style::RGBColor;

use super::axis::{self, Axis, Scale};
use super::plot::{self, Band, Line, LineChart, Mark};
use crate::error::Result;
use crate::folder::read::{GroupHistograms, RunData, Trace};

use cost::cost;
pub use cost::{shares_phase, Cost};

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
    // Only when the target's CPU was seen (its pid, or --target-metrics).
    charts.extend(target_cpu_over_time(runs)?);
    // A sweep's curves (only when a run has sweep.csv).
    charts.extend(super::sweep_chart::charts(runs)?);
    // Latency by room size (only when a run has rooms.csv).
    charts.extend(super::rooms_chart::charts(runs)?);
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

/// The target's CPU over time: its process (the built-in target,
/// `--target-pid`, or `--target-metrics`' `process_*`) and its host
/// (`--target-metrics` from node_exporter). One target per run, read from
/// the rows of whichever group ticked first each second.
fn target_cpu_over_time(runs: &[RunData]) -> Result<Option<Chart>> {
    type Pick = fn(&crate::folder::timeseries::Row) -> Option<f64>;
    let picks: [(&str, bool, Pick); 2] = [
        ("target process", false, |r| r.target_cpu_pct),
        ("target host", true, |r| r.target_host_cpu_pct),
    ];
    let mut lines = Vec::new();
    let mut n = 0;
    for run in runs {
        for trace in &run.traces {
            let color = plot::color(n);
            n += 1;
            let mut rows: Vec<&crate::folder::timeseries::Row> = trace.series.iter().collect();
            rows.sort_by(|a, b| a.elapsed_s.total_cmp(&b.elapsed_s));
            // Groups tick within the same second: one reading per second.
            rows.dedup_by_key(|r| (r.phase, r.elapsed_s.round() as i64));
            for (what, dashed, pick) in picks {
                if !rows.iter().any(|r| pick(r).is_some()) {
                    continue;
                }
                let mut parts: Vec<&str> = Vec::new();
                if runs.len() > 1 {
                    parts.push(&run.label);
                }
                if let Some(t) = trace.name.as_deref() {
                    parts.push(t);
                }
                parts.push(what);
                lines.push(Line {
                    label: parts.join("/"),
                    color,
                    dashed,
                    markers: false,
                    points: rows.iter().map(|r| (r.elapsed_s, pick(r))).collect(),
                });
            }
        }
    }
    if lines.is_empty() {
        return Ok(None);
    }
    let ys = all_y(&lines);
    let (bands, marks, note) = phase_marks(runs);
    let title = "Target CPU over time";
    let chart = LineChart {
        title: title.into(),
        x: time_axis(runs),
        y: Axis::new(
            "CPU (% of one core)",
            Scale::Linear,
            ys.into_iter().chain([0.0]),
        ),
        lines,
        bands,
        marks,
        empty_text: "no target readings".into(),
    };
    Ok(Some(Chart {
        file: "target-cpu-over-time.svg".into(),
        title: title.into(),
        note: format!(
            "The target process's CPU (solid: the built-in target, --target-pid, or the \
             process_cpu_seconds_total of --target-metrics) and its host's busy CPU (dashed: \
             node_exporter's node_cpu_seconds_total, every mode but idle and iowait), each \
             second, from timeseries.csv. {note}"
        ),
        svg: plot::line_chart(&chart)?,
    }))
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
