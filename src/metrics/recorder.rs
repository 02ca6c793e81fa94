//! Lock-free-in-practice recording: each group has one shard per runtime
//! worker thread (tasks pick the shard of the thread they run on), so a
//! sample takes one uncontended mutex, never a shared one. The collector
//! takes every shard once per interval and merges: one snapshot per shard
//! per interval, never a message per sample.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::fault::ErrorKind;

/// Highest latency tracked: one hour, in microseconds.
pub const MAX_US: u64 = 3_600_000_000;

pub use crate::folder::latency::Latency;

/// Counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Distinct events received (duplicates excluded).
    Deliveries,
    /// Events received again.
    Duplicates,
    /// Poll requests completed.
    Requests,
    /// Polls that returned nothing.
    EmptyResponses,
    /// Long polls the server ended without an event.
    ServerTimeouts,
    /// Sessions re-opened after the first.
    Reconnects,
    /// Wire bytes written.
    BytesSent,
    /// Wire bytes read.
    BytesReceived,
    /// Samples above the histogram range (recorded at the maximum).
    Overflows,
    /// Responses with a 1xx status.
    Status1xx,
    /// Responses with a 2xx status.
    Status2xx,
    /// Responses with a 3xx status.
    Status3xx,
    /// Responses with a 4xx status.
    Status4xx,
    /// Responses with a 5xx status.
    Status5xx,
    /// Messages that are not data: heartbeats, keep-alive lines, SSE
    /// events of a type the profile does not count as data.
    ControlMessages,
    /// Idempotent requests re-sent once on a fresh connection after the
    /// server closed the reused one under them.
    Retries,
    /// Messages with no envelope that no `control` rule of the profile
    /// names (not errors unless the profile is `strict`).
    OtherMessages,
    /// Room members' publishes the target acknowledged.
    PublishesAcked,
    /// Room members' publishes that failed (also counted by error kind).
    PublishesFailed,
}

/// Number of counters.
pub const COUNTS: usize = 19;

/// Examples of messages kept per kind (control, other) for `run.json`.
pub const MESSAGE_EXAMPLES: usize = 3;

/// Longest example kept, in bytes.
const EXAMPLE_BYTES: usize = 300;

impl Count {
    /// The status-class counter of an HTTP status.
    pub fn status_class(status: u16) -> Option<Count> {
        Some(match status / 100 {
            1 => Count::Status1xx,
            2 => Count::Status2xx,
            3 => Count::Status3xx,
            4 => Count::Status4xx,
            5 => Count::Status5xx,
            _ => return None,
        })
    }
}

/// One interval's measurements (also the accumulator of many intervals).
#[derive(Debug, Clone)]
pub struct Interval {
    /// One histogram per `Latency`, in microseconds, made on its first
    /// sample: at these bounds a histogram is 23,552 counters (188 KB), a
    /// group records 3–5 of the 10 metrics, and each group keeps about six
    /// intervals (a shard per worker thread, the collector's, the phase's
    /// whole and measured ones). Made eagerly they were ~25 MB of a 58 MB
    /// process at 1,000 clients, a baseline `--processes auto` pays again
    /// in every shard.
    hists: [Option<Histogram<u64>>; Latency::ALL.len()],
    /// One value per `Count`.
    pub counts: [u64; COUNTS],
    /// One value per `ErrorKind`.
    pub errors: [u64; ErrorKind::ALL.len()],
    /// Delivery latency per room-size bucket slot (see
    /// [`crate::rooms::PhaseRooms`]), in microseconds; empty without
    /// rooms, and grown on first use, so groups without rooms pay nothing.
    pub rooms: Vec<Histogram<u64>>,
}

/// A histogram with the run's fixed bounds (never auto-resizing, so shards
/// and runs always add).
pub fn new_histogram() -> Histogram<u64> {
    // Bounds and precision are constants known to be valid.
    Histogram::new_with_bounds(1, MAX_US, 3).unwrap_or_else(|_| unreachable!())
}

/// What an absent histogram reads as.
static EMPTY: std::sync::LazyLock<Histogram<u64>> = std::sync::LazyLock::new(new_histogram);

impl Default for Interval {
    fn default() -> Self {
        Interval {
            hists: std::array::from_fn(|_| None),
            counts: [0; COUNTS],
            errors: [0; ErrorKind::ALL.len()],
            rooms: Vec::new(),
        }
    }
}

impl Interval {
    /// An interval with every latency histogram already made.
    pub fn full() -> Interval {
        let mut iv = Interval::default();
        for h in &mut iv.hists {
            *h = Some(new_histogram());
        }
        iv
    }

    /// Records one latency.
    pub fn record(&mut self, metric: Latency, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        if us > MAX_US {
            self.counts[Count::Overflows as usize] += 1;
        }
        self.hists[metric as usize]
            .get_or_insert_with(new_histogram)
            .saturating_record(us.min(MAX_US));
    }

    /// An interval holding `hists` (one per `Latency`, in
    /// `Latency::ALL` order; empty ones are not kept).
    pub fn with_hists(hists: Vec<Histogram<u64>>) -> Interval {
        let mut iv = Interval::default();
        for (slot, h) in iv.hists.iter_mut().zip(hists) {
            if !h.is_empty() {
                *slot = Some(h);
            }
        }
        iv
    }

    /// Makes `m`'s histogram a copy of `other`'s.
    pub fn copy_hist(&mut self, m: Latency, other: &Interval) {
        self.hists[m as usize] = other.hists[m as usize].clone();
    }

    /// Adds `other`'s histograms into this one's (counters untouched).
    pub fn merge_hists(&mut self, other: &Interval) {
        for (a, b) in self.hists.iter_mut().zip(&other.hists) {
            match (a.as_mut(), b) {
                (_, None) => {}
                // Same bounds everywhere, so this cannot fail.
                (Some(a), Some(b)) => {
                    let _ = a.add(b);
                }
                (None, Some(b)) => *a = Some(b.clone()),
            }
        }
    }

    /// Records one delivery latency in room-size bucket slot `slot` too
    /// (its overflow, if any, was counted by [`Interval::record`]).
    pub fn record_room(&mut self, slot: usize, d: Duration) {
        if self.rooms.len() <= slot {
            self.rooms.resize_with(slot + 1, new_histogram);
        }
        let us = d.as_micros().min(u128::from(MAX_US)) as u64;
        self.rooms[slot].saturating_record(us);
    }

    /// Adds to a counter.
    pub fn add(&mut self, c: Count, n: u64) {
        self.counts[c as usize] += n;
    }

    /// Counts one error.
    pub fn error(&mut self, kind: ErrorKind) {
        self.errors[kind.index()] += 1;
    }

    /// A counter's value.
    pub fn count(&self, c: Count) -> u64 {
        self.counts[c as usize]
    }

    /// A latency histogram.
    pub fn hist(&self, m: Latency) -> &Histogram<u64> {
        self.hists[m as usize].as_ref().unwrap_or(&EMPTY)
    }

    /// All errors.
    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Adds another interval into this one.
    pub fn merge(&mut self, other: &Interval) {
        self.merge_hists(other);
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(&other.errors) {
            *a += b;
        }
        if self.rooms.len() < other.rooms.len() {
            self.rooms.resize_with(other.rooms.len(), new_histogram);
        }
        for (a, b) in self.rooms.iter_mut().zip(&other.rooms) {
            let _ = a.add(b);
        }
    }

    fn reset(&mut self) {
        // Kept allocated: a recorder shard that recorded a metric once
        // will again.
        for h in self.hists.iter_mut().flatten().chain(&mut self.rooms) {
            h.reset();
        }
        self.counts = [0; COUNTS];
        self.errors = [0; ErrorKind::ALL.len()];
    }
}

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn thread_slot() -> usize {
    THREAD_SLOT.with(|s| {
        if s.get() == usize::MAX {
            s.set(NEXT_THREAD.fetch_add(1, Ordering::Relaxed));
        }
        s.get()
    })
}

/// Sharded recorder of one client group.
#[derive(Debug)]
pub struct GroupRecorder {
    shards: Box<[Mutex<Interval>]>,
    connections: AtomicI64,
    /// Set once the first error of a kind was kept, so an error storm does
    /// not funnel every client through `first_errors`' lock.
    error_seen: [AtomicBool; ErrorKind::ALL.len()],
    first_errors: Mutex<Vec<Option<String>>>,
    /// Examples kept so far per kind (0 control, 1 other): checked before
    /// taking the lock, so only the first few messages pay for it.
    examples_kept: [AtomicUsize; 2],
    examples: Mutex<Vec<(bool, String)>>,
}

impl GroupRecorder {
    /// A recorder with `shards` shards (one per worker thread is enough).
    pub fn new(shards: usize) -> Self {
        GroupRecorder {
            // A client's shard holds every histogram from the start: made
            // on a first sample, the 188 KB allocation landed in a client's
            // path (under its shard's lock) at its first connect or
            // delivery, and shifted when early events arrive against the
            // subscription boundary. Only the collector's and the phase's
            // accumulators are made lazily.
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(Interval::full()))
                .collect(),
            connections: AtomicI64::new(0),
            error_seen: std::array::from_fn(|_| AtomicBool::new(false)),
            first_errors: Mutex::new(vec![None; ErrorKind::ALL.len()]),
            examples_kept: [AtomicUsize::new(0), AtomicUsize::new(0)],
            examples: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on this thread's shard.
    pub fn with<R>(&self, f: impl FnOnce(&mut Interval) -> R) -> R {
        let shard = &self.shards[thread_slot() % self.shards.len()];
        // A poisoned shard still holds valid counts: keep recording.
        let mut guard = shard.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Counts an error and keeps the first detail of each kind.
    pub fn error(&self, kind: ErrorKind, detail: &str) {
        self.with(|s| s.error(kind));
        if self.error_seen[kind.index()].swap(true, Ordering::Relaxed) {
            return;
        }
        let mut first = self.first_errors.lock().unwrap_or_else(|p| p.into_inner());
        first[kind.index()] = Some(detail.to_string());
    }

    /// Keeps `message` as an example of a control (`control`) or other
    /// message, up to `MESSAGE_EXAMPLES` of each.
    pub fn example(&self, control: bool, message: &[u8]) {
        let slot = &self.examples_kept[usize::from(!control)];
        if slot.load(Ordering::Relaxed) >= MESSAGE_EXAMPLES
            || slot.fetch_add(1, Ordering::Relaxed) >= MESSAGE_EXAMPLES
        {
            return;
        }
        let cut = &message[..message.len().min(EXAMPLE_BYTES)];
        let mut text = String::from_utf8_lossy(cut).into_owned();
        if message.len() > EXAMPLE_BYTES {
            text.push('…');
        }
        let text = crate::secrets::redact(&text);
        self.examples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((control, text));
    }

    /// The examples kept: (true for control, text).
    pub fn examples(&self) -> Vec<(bool, String)> {
        self.examples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// First error detail seen per kind.
    pub fn first_errors(&self) -> Vec<(ErrorKind, String)> {
        let first = self.first_errors.lock().unwrap_or_else(|p| p.into_inner());
        ErrorKind::ALL
            .iter()
            .filter_map(|k| first[k.index()].clone().map(|d| (*k, d)))
            .collect()
    }

    /// Takes and resets every shard, returning their sum.
    pub fn take(&self) -> Interval {
        let mut acc = Interval::default();
        for shard in self.shards.iter() {
            let mut guard = shard.lock().unwrap_or_else(|p| p.into_inner());
            acc.merge(&guard);
            guard.reset();
        }
        acc
    }

    /// Open connections now.
    pub fn connections(&self) -> i64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Adjusts the open-connection gauge (changes are per connect, not per
    /// sample).
    pub fn add_connections(&self, delta: i64) {
        self.connections.fetch_add(delta, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_merges_and_resets() {
        let r = GroupRecorder::new(4);
        r.with(|s| {
            s.record(Latency::Delivery, Duration::from_millis(5));
            s.add(Count::Deliveries, 1);
        });
        r.with(|s| s.record(Latency::Delivery, Duration::from_secs(7200)));
        let i = r.take();
        assert_eq!(i.hist(Latency::Delivery).len(), 2);
        assert_eq!(i.count(Count::Deliveries), 1);
        assert_eq!(i.count(Count::Overflows), 1);
        assert_eq!(
            i.hist(Latency::Delivery).max(),
            i.hist(Latency::Delivery).highest_equivalent(MAX_US)
        );
        assert_eq!(r.take().hist(Latency::Delivery).len(), 0);
    }

    #[test]
    fn room_buckets_grow_on_use_and_merge() {
        let r = GroupRecorder::new(2);
        assert!(r.take().rooms.is_empty(), "no rooms, no histograms");
        r.with(|s| s.record_room(2, Duration::from_millis(3)));
        r.with(|s| s.record_room(0, Duration::from_secs(7200)));
        let i = r.take();
        assert_eq!(i.rooms.len(), 3);
        assert_eq!(
            i.rooms.iter().map(|h| h.len()).collect::<Vec<_>>(),
            [1, 0, 1]
        );
        assert_eq!(i.rooms[0].max(), i.rooms[0].highest_equivalent(MAX_US));
        assert!(r.take().rooms.iter().all(|h| h.is_empty()));
    }
}
