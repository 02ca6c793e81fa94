//! `rooms.svg`, from `rooms.csv` only: delivery latency p99 (solid) and
//! p50 (dashed) against the room-size bucket, one pair of lines per group
//! (and run, when several are overlaid), so "does latency grow with room
//! size" is one chart. Buckets are powers of two, evenly spaced: the x
//! axis is logarithmic in the room size.

use super::axis::Axis;
use super::charts::{Chart, LOG_RATIO};
use super::plot::{self, Line, LineChart};
use crate::error::Result;
use crate::folder::read::RunData;
use crate::rooms::{bucket_label, bucket_of_label};

/// The chart of `runs`; none when no run has `rooms.csv`.
pub fn charts(runs: &[RunData]) -> Result<Vec<Chart>> {
    let buckets: Vec<u32> = runs
        .iter()
        .flat_map(|r| &r.rooms)
        .filter_map(|r| bucket_of_label(&r.room_size))
        .collect();
    let (Some(&lo), Some(&hi)) = (buckets.iter().min(), buckets.iter().max()) else {
        return Ok(Vec::new());
    };
    // Every bucket in between gets its place, so the spacing stays log2.
    let names: Vec<String> = (lo..=hi).map(bucket_label).collect();
    let x = Axis::categories("room size (planned members, power-of-two buckets)", &names);
    let mut lines = Vec::new();
    for run in runs {
        let mut groups: Vec<&str> = Vec::new();
        for r in &run.rooms {
            if !groups.contains(&r.group.as_str()) {
                groups.push(&r.group);
            }
        }
        for g in groups {
            let label = if runs.len() > 1 {
                format!("{}/{g}", run.label)
            } else {
                g.to_string()
            };
            let color = plot::color(lines.len() / 2);
            let points = |pick: fn(&crate::folder::rooms::RoomsRow) -> Option<f64>| {
                let mut p: Vec<(f64, Option<f64>)> = run
                    .rooms
                    .iter()
                    .filter(|r| r.group == g)
                    .filter_map(|r| {
                        let b = bucket_of_label(&r.room_size)?;
                        Some((f64::from(b - lo), pick(r)))
                    })
                    .collect();
                p.sort_by(|a, b| a.0.total_cmp(&b.0));
                p
            };
            lines.push(Line {
                label: format!("{label} p99"),
                color,
                dashed: false,
                markers: true,
                points: points(|r| r.delivery_p99_ms),
            });
            lines.push(Line {
                label: format!("{label} p50"),
                color,
                dashed: true,
                markers: true,
                points: points(|r| r.delivery_p50_ms),
            });
        }
    }
    let ys: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .collect();
    let title = "Delivery latency by room size";
    let chart = LineChart {
        title: title.into(),
        x,
        y: Axis::auto("delivery latency (ms)", &ys, LOG_RATIO),
        lines,
        bands: Vec::new(),
        marks: Vec::new(),
        empty_text: "no deliveries".into(),
    };
    Ok(vec![Chart {
        file: "rooms.svg".into(),
        title: title.into(),
        note: "From rooms.csv: delivery p99 (solid) and p50 (dashed) of each group's members, \
               by the size bucket of their room (its planned members over every shard), over \
               the measured window; a bucket without deliveries has no point."
            .into(),
        svg: plot::line_chart(&chart)?,
    }])
}
