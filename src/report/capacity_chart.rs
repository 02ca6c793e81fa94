//! `charts/capacity.svg`, from a capacity search's steps: load on x (clients
//! or events per second), one line per group; the left panel is delivery
//! p99 with the SLO's latency limit drawn as a dashed line, the right panel
//! the target's CPU. Steps where stampede itself was saturated get a second,
//! marker-only series, so nobody reads a capacity off a saturated client.

use super::axis::{Axis, Scale};
use super::charts::LOG_RATIO;
use super::plot::{self, Line, LineChart, LinePanels};
use crate::error::Result;
use crate::folder::capacity::StepRow;
use crate::gate::threshold::{Op, Threshold};

/// The x axis turns logarithmic when the steps span more than this factor.
const LOG_X_RATIO: f64 = 10.0;

/// The SVG text of the capacity chart.
pub fn svg(steps: &[StepRow], slo: &[Threshold]) -> Result<String> {
    let mut groups: Vec<&str> = Vec::new();
    for s in steps {
        if !groups.contains(&s.group.as_str()) {
            groups.push(&s.group);
        }
    }
    let xs: Vec<f64> = steps.iter().map(|s| s.value).collect();
    let vary = steps.first().map_or("clients", |s| s.vary.as_str());
    let x_desc = if vary == "rate" {
        "published events per second"
    } else {
        "clients"
    };
    let x = Axis::auto(x_desc, &xs, LOG_X_RATIO);
    type Pick = fn(&StepRow) -> Option<f64>;
    let series = |pick: Pick| -> Vec<Line> {
        let mut lines = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            let mut rows: Vec<&StepRow> = steps.iter().filter(|s| s.group == *g).collect();
            rows.sort_by(|a, b| a.value.total_cmp(&b.value));
            lines.push(Line {
                label: (*g).to_string(),
                color: plot::color(i),
                dashed: false,
                markers: true,
                points: rows.iter().map(|r| (r.value, pick(r))).collect(),
            });
            if rows.iter().any(|r| r.loadgen_saturated) {
                lines.push(Line {
                    label: format!("{g}: stampede saturated"),
                    color: plotters::style::RGBColor(0, 0, 0),
                    dashed: true,
                    markers: true,
                    points: rows
                        .iter()
                        .map(|r| (r.value, pick(r).filter(|_| r.loadgen_saturated)))
                        .collect(),
                });
            }
        }
        lines
    };
    let mut latency = series(|r| r.delivery_p99_ms);
    let limit = slo
        .iter()
        .find(|t| t.column == "delivery_p99_ms" && matches!(t.op, Op::Lt | Op::Le))
        .map(|t| t.limit);
    let mut ys: Vec<f64> = latency
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .collect();
    if let (Some(limit), Some(lo), Some(hi)) = (
        limit,
        xs.iter().copied().reduce(f64::min),
        xs.iter().copied().reduce(f64::max),
    ) {
        ys.push(limit);
        latency.push(Line {
            label: format!("SLO: delivery_p99_ms < {limit}"),
            color: plotters::style::RGBColor(0xc0, 0x00, 0x00),
            dashed: true,
            markers: false,
            points: vec![(lo, Some(limit)), (hi, Some(limit))],
        });
    }
    let cpu = series(|r| r.target_cpu_pct);
    let cpu_ys: Vec<f64> = cpu
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .collect();
    let panels = vec![
        LineChart {
            title: "Delivery p99 per step".into(),
            x: x.clone(),
            y: Axis::auto("delivery p99 (ms)", &ys, LOG_RATIO),
            lines: latency,
            bands: Vec::new(),
            marks: Vec::new(),
            empty_text: "no deliveries".into(),
        },
        LineChart {
            title: "Target CPU per step".into(),
            x,
            y: Axis::new("CPU % (100 = one core)", Scale::Linear, cpu_ys.into_iter()),
            lines: cpu,
            bands: Vec::new(),
            marks: Vec::new(),
            empty_text: "target not sampled".into(),
        },
    ];
    plot::line_panels(&LinePanels {
        title: "Capacity: delivery p99 and target CPU against load".into(),
        panels,
    })
}
