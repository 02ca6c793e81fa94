//! `rooms.csv` of a merged folder: each group's room-size buckets added
//! over the shards (counts summed, histograms re-read from the shards'
//! tagged `delivery-rooms` logs over the measured window and added).

use std::collections::HashMap;
use std::path::Path;

use hdrhistogram::Histogram;

use super::results::ROUNDING_S;
use super::{folder_error, logs::read_log, ShardData};
use crate::error::Result;
use crate::folder::hlog;
use crate::folder::rooms::{self as rooms_csv, RoomsRow};
use crate::metrics::recorder::new_histogram;
use crate::metrics::rooms::BucketResult;

/// Writes `out/rooms.csv` when the shards have one.
pub(super) fn merge_rooms(shards: &[ShardData], out: &Path) -> Result<()> {
    let mut merged: Vec<BucketResult> = Vec::new();
    for s in shards {
        let rows = rooms_csv::read(&s.dir)?;
        let mut hists = measured(s, &rows)?;
        for row in &rows {
            let hist = hists
                .remove(&(row.group.clone(), row.room_size.clone()))
                .unwrap_or_else(new_histogram);
            let part = BucketResult::from_row(row, hist).ok_or_else(|| {
                folder_error(
                    &s.dir.join(rooms_csv::FILE),
                    format!("{:?} is not a room-size bucket", row.room_size),
                )
            })?;
            match merged
                .iter_mut()
                .find(|m| m.group == part.group && m.plan.bucket == part.plan.bucket)
            {
                Some(m) => m.add(&part).map_err(|e| {
                    folder_error(
                        &s.dir,
                        format!("room-size histograms of {} cannot be added: {e}", row.group),
                    )
                })?,
                None => merged.push(part),
            }
        }
    }
    merged.sort_by_key(|m| {
        let group = shards
            .iter()
            .flat_map(|s| s.rows.iter())
            .position(|r| r.group == m.group);
        (group, m.plan.bucket)
    });
    let rows: Vec<RoomsRow> = merged.iter().map(BucketResult::row).collect();
    rooms_csv::write(out, &rows)
}

/// A shard's per-bucket delivery histograms over its measured windows,
/// by (group, bucket label).
fn measured(s: &ShardData, rows: &[RoomsRow]) -> Result<HashMap<(String, String), Histogram<u64>>> {
    let mut out: HashMap<(String, String), Histogram<u64>> = HashMap::new();
    let mut groups: Vec<&str> = rows.iter().map(|r| r.group.as_str()).collect();
    groups.dedup();
    for group in groups {
        let from = s
            .info
            .phases
            .iter()
            .find(|p| p.groups.iter().any(|g| g == group))
            .map_or(f64::NEG_INFINITY, |p| p.measure_from_s);
        let path = s.dir.join(rooms_csv::hlog_name(group));
        for iv in read_log(&path)?.unwrap_or_default() {
            let Some(label) = iv.tag.as_deref().and_then(rooms_csv::label_of_tag) else {
                continue;
            };
            // Deliveries count from the measured window's start through
            // the drain, as the shard's own summary did.
            if iv.start_s < from - ROUNDING_S {
                continue;
            }
            let h = hlog::decode(&iv.encoded).map_err(|e| {
                folder_error(&path, format!("not a readable interval histogram: {e}"))
            })?;
            out.entry((group.to_string(), label.to_string()))
                .or_insert_with(new_histogram)
                .add(&h)
                .map_err(|e| folder_error(&path, format!("intervals cannot be added: {e}")))?;
        }
    }
    Ok(out)
}
