//! Sweep charts, from `sweep.csv` only: the swept parameter on x, one line
//! per group (and run, when several are overlaid). `sweep.svg` holds
//! delivery latency p50 and p99, `sweep-cost.svg` the cost per delivery.
//! Drawing is [`super::plot`]'s job.

use super::axis::{Axis, Scale};
use super::charts::{Chart, LOG_RATIO};
use super::plot::{self, Line, LineChart, LinePanels};
use crate::error::Result;
use crate::folder::read::RunData;
use crate::folder::sweep_csv::SweepRow;

/// The x axis turns logarithmic when the values span more than this factor.
const LOG_X_RATIO: f64 = 10.0;

/// The sweep charts of `runs`; none when no run is a sweep.
pub fn charts(runs: &[RunData]) -> Result<Vec<Chart>> {
    if runs.iter().all(|r| r.sweep.is_empty()) {
        return Ok(Vec::new());
    }
    let x = XAxis::new(runs);
    let series = series(runs, &x);
    Ok(vec![latency(&x, &series)?, cost(&x, &series)?])
}

/// Where each sweep value sits on the x axis.
struct XAxis {
    axis: Axis,
    /// Value label → x (data units; an index for values that are not numbers).
    at: Vec<(String, f64)>,
}

impl XAxis {
    fn new(runs: &[RunData]) -> XAxis {
        let mut values: Vec<(String, Option<f64>)> = Vec::new();
        let mut params: Vec<&str> = Vec::new();
        for row in runs.iter().flat_map(|r| &r.sweep) {
            if !values.iter().any(|(v, _)| *v == row.value) {
                values.push((row.value.clone(), row.value_num));
            }
            if !params.contains(&row.parameter.as_str()) {
                params.push(&row.parameter);
            }
        }
        let param = params.join(" / ");
        let nums: Option<Vec<f64>> = values.iter().map(|(_, n)| *n).collect();
        match nums {
            Some(nums) if nums.iter().all(|n| *n > 0.0) => {
                let lo = nums.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = nums.iter().copied().fold(0.0, f64::max);
                let (scale, desc) = if hi / lo > LOG_X_RATIO {
                    (Scale::Log, format!("{param}, log scale"))
                } else {
                    (Scale::Linear, param)
                };
                let ticks: Vec<(f64, String)> = values
                    .iter()
                    .zip(&nums)
                    .map(|((label, _), n)| (*n, label.clone()))
                    .collect();
                let axis = Axis::new(desc, scale, nums.iter().copied()).with_ticks(ticks);
                let at = values.into_iter().zip(nums).map(|((l, _), n)| (l, n));
                XAxis {
                    axis,
                    at: at.collect(),
                }
            }
            // Words (or zero / negative numbers): evenly spaced, in run order.
            _ => {
                let names: Vec<String> = values.into_iter().map(|(v, _)| v).collect();
                XAxis {
                    axis: Axis::categories(param, &names),
                    at: names
                        .into_iter()
                        .enumerate()
                        .map(|(i, n)| (n, i as f64))
                        .collect(),
                }
            }
        }
    }

    fn of(&self, value: &str) -> Option<f64> {
        self.at.iter().find(|(v, _)| v == value).map(|(_, x)| *x)
    }
}

/// One group of one run across the sweep, rows in x order.
struct Series<'a> {
    label: String,
    color: plotters::style::RGBColor,
    rows: Vec<(f64, &'a SweepRow)>,
}

fn series<'a>(runs: &'a [RunData], x: &XAxis) -> Vec<Series<'a>> {
    let mut out: Vec<Series<'a>> = Vec::new();
    for run in runs {
        for row in &run.sweep {
            let label = if runs.len() > 1 {
                format!("{}/{}", run.label, row.group)
            } else {
                row.group.clone()
            };
            let Some(at) = x.of(&row.value) else { continue };
            match out.iter_mut().find(|s| s.label == label) {
                Some(s) => s.rows.push((at, row)),
                None => {
                    let color = plot::color(out.len());
                    out.push(Series {
                        label,
                        color,
                        rows: vec![(at, row)],
                    });
                }
            }
        }
    }
    for s in &mut out {
        s.rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

fn line(s: &Series<'_>, suffix: &str, dashed: bool, f: fn(&SweepRow) -> Option<f64>) -> Line {
    Line {
        label: format!("{}{suffix}", s.label),
        color: s.color,
        dashed,
        markers: true,
        points: s.rows.iter().map(|(x, r)| (*x, f(r))).collect(),
    }
}

fn ys(lines: &[Line]) -> Vec<f64> {
    lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .collect()
}

fn latency(x: &XAxis, series: &[Series<'_>]) -> Result<Chart> {
    let mut lines = Vec::new();
    for s in series {
        if s.rows.iter().any(|(_, r)| r.delivery_p99_ms.is_some()) {
            lines.push(line(s, " p99", false, |r| r.delivery_p99_ms));
            lines.push(line(s, " p50", true, |r| r.delivery_p50_ms));
        }
    }
    let title = "Delivery latency across the sweep";
    let chart = LineChart {
        title: title.into(),
        x: x.axis.clone(),
        y: Axis::auto("delivery latency (ms)", &ys(&lines), LOG_RATIO),
        lines,
        bands: Vec::new(),
        marks: Vec::new(),
        empty_text: "no deliveries".into(),
    };
    Ok(Chart {
        file: "sweep.svg".into(),
        title: title.into(),
        note: "From sweep.csv: delivery p99 (solid) and p50 (dashed) of each group at each \
               value of the swept parameter, over each value's measured window."
            .into(),
        svg: plot::line_chart(&chart)?,
    })
}

fn cost(x: &XAxis, series: &[Series<'_>]) -> Result<Chart> {
    type Pick = fn(&SweepRow) -> Option<f64>;
    let panels: [(&str, &str, Pick); 4] = [
        ("Requests per delivery", "requests", |r| {
            r.requests_per_delivery
        }),
        ("Bytes per delivery", "bytes (sent + received)", |r| {
            r.bytes_per_delivery
        }),
        ("Target CPU per 1,000 deliveries", "CPU ms", |r| {
            r.target_cpu_ms_per_1k_deliveries
        }),
        ("Lost events", "events", |r| r.lost.map(|v| v as f64)),
    ];
    let panels = panels
        .iter()
        .map(|(title, y_desc, pick)| {
            let lines: Vec<Line> = series
                .iter()
                .filter(|s| s.rows.iter().any(|(_, r)| pick(r).is_some()))
                .map(|s| line(s, "", false, *pick))
                .collect();
            let y = if *title == "Lost events" {
                Axis::new(*y_desc, Scale::Linear, ys(&lines).into_iter())
            } else {
                Axis::auto(y_desc, &ys(&lines), LOG_RATIO)
            };
            LineChart {
                title: (*title).into(),
                x: x.axis.clone(),
                y,
                lines,
                bands: Vec::new(),
                marks: Vec::new(),
                empty_text: "n/a".into(),
            }
        })
        .collect();
    let title = "Cost per delivery across the sweep";
    Ok(Chart {
        file: "sweep-cost.svg".into(),
        title: title.into(),
        note: "From sweep.csv: requests_per_delivery, bytes_per_delivery, target CPU ms per \
               1,000 deliveries (target_cpu_s × 1,000,000 / delivered; n/a for groups that \
               shared a phase or an external target) and lost events, per group at each value."
            .into(),
        svg: plot::line_panels(&LinePanels {
            title: title.into(),
            panels,
        })?,
    })
}
