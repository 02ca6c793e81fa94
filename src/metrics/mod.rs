//! Measurement: per-worker-thread recorders (HDR histograms and counters
//! behind one uncontended lock per shard), per-client delivery ledgers, and
//! process resource samples. Owns what is measured, never how it is shown:
//! it does not import report.

pub mod health;
pub mod ledger;
pub mod plausibility;
pub mod process;
pub mod recorder;
pub mod rooms;
pub mod summary;

pub use ledger::{Ledger, PeerLog, PublishLog, Tally};
pub use recorder::{Count, GroupRecorder, Interval, Latency};
