//! `rooms.csv`: delivery by room size, one row per subscribing group and
//! room-size bucket (see [`crate::rooms::bucket`]), written when the
//! scenario has `rooms`. The declaration below is the file's column
//! registry, as [`super::summary`]'s is for `summary.csv`; the README's
//! table of its columns is generated from it.
//!
//! Each bucket's delivery histograms are kept in one interval log per
//! group, `<group>.delivery-rooms.hlog`, one tagged interval
//! (`Tag=room-size-<bucket>`) per bucket and second: `merge` re-reads them
//! so a sharded run's percentiles are those of the added histograms.

use std::path::Path;

use super::columns::{col, Applies::Subscribers, Info};
use super::record::{csv_record, Field};
use crate::error::Result;

csv_record! {
    /// One `rooms.csv` row. Missing columns read as zero / empty.
    pub struct RoomsRow [Info] {
        group: String => col("", Subscribers, "group label in the scenario"),
        transport: String => col("", Subscribers, "the group's transport"),
        room_size: String => col("", Subscribers,
            "the bucket of the rooms' planned member counts (every group of the phase, every \
             shard): powers of two, `1`, `2-3`, `4-7`, `8-15`, …"),
        room_size_min: u64 => col("count", Subscribers,
            "the smallest planned room of the bucket that has members of this group"),
        room_size_max: u64 => col("count", Subscribers,
            "the largest planned room of the bucket that has members of this group"),
        rooms: u64 => col("count", Subscribers,
            "rooms of the bucket with members of this group"),
        members: u64 => col("count", Subscribers,
            "the group's clients in those rooms"),
        expected: u64 => col("count", Subscribers,
            "as `summary.csv`'s `expected`, for the members of these rooms; the buckets add \
             up to the group's"),
        delivered: u64 => col("count", Subscribers, "of `expected`, events received"),
        lost: u64 => col("count", Subscribers, "`expected − delivered`"),
        duplicated: u64 => col("count", Subscribers,
            "receipts of an event already received (whole phase)"),
        delivery_p50_ms: Option<f64> => col("ms", Subscribers,
            "delivery latency p50 of these members (receive time minus publish time, \
             measured window and drain, as `summary.csv`'s)"),
        delivery_p90_ms: Option<f64> => col("ms", Subscribers, "delivery latency p90"),
        delivery_p99_ms: Option<f64> => col("ms", Subscribers, "delivery latency p99"),
        delivery_max_ms: Option<f64> => col("ms", Subscribers, "delivery latency, largest"),
    }
}

/// File name in the run folder.
pub const FILE: &str = "rooms.csv";

/// The interval log of a group's per-bucket delivery histograms.
pub fn hlog_name(group: &str) -> String {
    super::hlog_name(group, "delivery-rooms")
}

/// The interval tag of bucket `label` in that log.
pub fn hlog_tag(label: &str) -> String {
    format!("room-size-{label}")
}

/// The bucket label of an interval tag (`None`: not a bucket's tag).
pub fn label_of_tag(tag: &str) -> Option<&str> {
    tag.strip_prefix("room-size-")
}

/// Every column in file order.
pub fn columns() -> &'static [Field<RoomsRow, Info>] {
    static ALL: std::sync::OnceLock<Vec<Field<RoomsRow, Info>>> = std::sync::OnceLock::new();
    ALL.get_or_init(RoomsRow::fields)
}

/// Writes `dir/rooms.csv` (nothing when there are no rows: no rooms).
pub fn write(dir: &Path, rows: &[RoomsRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    super::write_rows(&dir.join(FILE), rows)
}

/// Reads `dir/rooms.csv`; an empty list when the run had no rooms.
pub fn read(dir: &Path) -> Result<Vec<RoomsRow>> {
    super::read_rows_if_present(&dir.join(FILE))
}

/// The README's `rooms.csv` column table, generated.
pub fn markdown_table() -> String {
    let mut s = String::from("| column | unit | meaning |\n|---|---|---|\n");
    for c in columns() {
        let info = c.info.unwrap_or(col("", Subscribers, ""));
        let unit = if info.unit.is_empty() {
            "text"
        } else {
            info.unit
        };
        s.push_str(&format!("| `{}` | {unit} | {} |\n", c.name, info.meaning));
    }
    s
}
