//! Delivery by room size: one result per subscribing group and room-size
//! bucket of a phase (see [`crate::rooms::PhaseRooms`]), its `rooms.csv`
//! row, and the inverse ([`BucketResult::from_row`]) that `merge` adds
//! shards with. Counts add over shards: each room is counted by the one
//! shard that counts its channel, each member by the shard that runs it.

use hdrhistogram::Histogram;

use super::ledger::Tally;
use super::recorder::new_histogram;
use crate::folder::rooms::RoomsRow;
use crate::rooms::{bucket_bounds, bucket_label, bucket_of_label, PhaseRooms};
use crate::shard::Shard;
use crate::transport::TransportKind;
use crate::units::pct_ms;

/// What the plan puts in one bucket for one group, in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketPlan {
    /// The bucket.
    pub bucket: u32,
    /// Smallest and largest planned room of the bucket with the group's
    /// members (scenario-wide, the same in every shard).
    pub size_min: u64,
    /// See `size_min`.
    pub size_max: u64,
    /// Rooms with the group's members that this process counts.
    pub rooms: u64,
    /// The group's clients in them that this process runs.
    pub members: u64,
}

/// The buckets of a group in a phase's `rooms`, by slot (`None` for a
/// bucket without the group's members): `own` is the group's members per
/// room (scenario-wide), `mine` the room of each client this process runs.
pub fn planned(
    own: &[u64],
    mine: impl Iterator<Item = u32>,
    rooms: &PhaseRooms,
    shard: Shard,
) -> Vec<Option<BucketPlan>> {
    let mut out: Vec<Option<BucketPlan>> = vec![None; rooms.buckets.len()];
    for (room, &mine) in own.iter().enumerate() {
        let Some(slot) = rooms.slot(room as u32).filter(|_| mine > 0) else {
            continue;
        };
        let size = rooms.members[room];
        let b = out[slot].get_or_insert(BucketPlan {
            bucket: rooms.buckets[slot],
            size_min: size,
            size_max: size,
            rooms: 0,
            members: 0,
        });
        b.size_min = b.size_min.min(size);
        b.size_max = b.size_max.max(size);
        b.rooms += u64::from(shard.counts_channel(room as u32));
    }
    for room in mine {
        if let Some(b) = rooms.slot(room).and_then(|s| out[s].as_mut()) {
            b.members += 1;
        }
    }
    out
}

/// One group's delivery in one room-size bucket.
#[derive(Debug, Clone)]
pub struct BucketResult {
    /// Group label.
    pub group: String,
    /// Its transport.
    pub transport: String,
    /// Rooms and members.
    pub plan: BucketPlan,
    /// Settled accounting of the bucket's members.
    pub tally: Tally,
    /// Their delivery latencies over the measured window (µs).
    pub hist: Histogram<u64>,
}

impl BucketResult {
    /// The results of group `group` (of `transport`) per slot: its plan,
    /// the settled tallies and the measured histograms (either may be
    /// shorter than the plan: an empty bucket).
    pub fn of_group(
        group: &str,
        transport: TransportKind,
        planned: Vec<Option<BucketPlan>>,
        tallies: &[Tally],
        hists: &[Histogram<u64>],
    ) -> Vec<BucketResult> {
        planned
            .into_iter()
            .enumerate()
            .filter_map(|(slot, plan)| {
                Some(BucketResult {
                    group: group.to_string(),
                    transport: transport.label().to_string(),
                    plan: plan?,
                    tally: tallies.get(slot).copied().unwrap_or_default(),
                    hist: hists.get(slot).cloned().unwrap_or_else(new_histogram),
                })
            })
            .collect()
    }

    /// The `rooms.csv` row.
    pub fn row(&self) -> RoomsRow {
        let h = &self.hist;
        RoomsRow {
            group: self.group.clone(),
            transport: self.transport.clone(),
            room_size: bucket_label(self.plan.bucket),
            room_size_min: self.plan.size_min,
            room_size_max: self.plan.size_max,
            rooms: self.plan.rooms,
            members: self.plan.members,
            expected: self.tally.expected,
            delivered: self.tally.delivered,
            lost: self.tally.lost,
            duplicated: self.tally.duplicated,
            delivery_p50_ms: pct_ms(h, 0.5),
            delivery_p90_ms: pct_ms(h, 0.9),
            delivery_p99_ms: pct_ms(h, 0.99),
            delivery_max_ms: pct_ms(h, 1.0),
        }
    }

    /// The inverse of [`BucketResult::row`], with the bucket's histogram
    /// read back from the run folder (`None`: not a bucket label).
    pub fn from_row(row: &RoomsRow, hist: Histogram<u64>) -> Option<BucketResult> {
        let bucket = bucket_of_label(&row.room_size)?;
        let (lo, hi) = bucket_bounds(bucket);
        let within = |s: u64| s.clamp(lo, hi);
        Some(BucketResult {
            group: row.group.clone(),
            transport: row.transport.clone(),
            plan: BucketPlan {
                bucket,
                size_min: within(row.room_size_min),
                size_max: within(row.room_size_max),
                rooms: row.rooms,
                members: row.members,
            },
            tally: Tally {
                expected: row.expected,
                delivered: row.delivered,
                lost: row.lost,
                duplicated: row.duplicated,
                reordered: 0,
            },
            hist,
        })
    }

    /// Adds another process's result of the same group and bucket.
    pub fn add(&mut self, o: &BucketResult) -> Result<(), hdrhistogram::AdditionError> {
        self.plan.size_min = self.plan.size_min.min(o.plan.size_min);
        self.plan.size_max = self.plan.size_max.max(o.plan.size_max);
        self.plan.rooms += o.plan.rooms;
        self.plan.members += o.plan.members;
        self.tally += o.tally;
        self.hist.add(&o.hist)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::{sizes_of, RoomsPlan, Size};

    /// Shards' buckets add up to the whole run's: every room counted once,
    /// every member by the shard that runs it; the row reads back.
    #[test]
    fn shards_add_up_to_one_process_and_rows_read_back() {
        let plan = RoomsPlan {
            count: 12,
            size: Size::Zipf { s: 1.2 },
            seed: 5,
        };
        let of = plan.assign(100);
        let own = sizes_of(&of, 12);
        let rooms = PhaseRooms::new([&own[..]]);
        let whole = planned(&own, of.iter().copied(), &rooms, Shard::WHOLE);
        assert_eq!(whole.iter().flatten().map(|b| b.members).sum::<u64>(), 100);
        assert_eq!(whole.iter().flatten().map(|b| b.rooms).sum::<u64>(), 12);
        for b in whole.iter().flatten() {
            let (lo, hi) = bucket_bounds(b.bucket);
            assert!(lo <= b.size_min && b.size_min <= b.size_max && b.size_max <= hi);
        }
        let mut added: Vec<Option<BucketPlan>> = vec![None; whole.len()];
        for index in 0..3 {
            let shard = Shard { index, count: 3 };
            let mine = (0..100u64)
                .filter(|&k| shard.owner_in(k, of[k as usize], 12) == index)
                .map(|k| of[k as usize]);
            for (a, b) in added.iter_mut().zip(planned(&own, mine, &rooms, shard)) {
                match (a.as_mut(), b) {
                    (Some(a), Some(b)) => {
                        a.rooms += b.rooms;
                        a.members += b.members;
                    }
                    (None, b) => *a = b,
                    (Some(_), None) => panic!("a bucket missing in one shard"),
                }
            }
        }
        assert_eq!(added, whole);

        let mut hist = new_histogram();
        hist.record(2_500).unwrap();
        let result = BucketResult {
            group: "g".into(),
            transport: "websocket".into(),
            plan: whole.iter().flatten().next().copied().unwrap(),
            tally: Tally {
                expected: 7,
                delivered: 6,
                lost: 1,
                duplicated: 2,
                reordered: 0,
            },
            hist: hist.clone(),
        };
        let row = result.row();
        assert_eq!(
            row.delivery_p50_ms,
            Some(2.501),
            "HDR: highest equivalent value"
        );
        let back = BucketResult::from_row(&row, hist).unwrap();
        assert_eq!(back.row(), row);
        let mut twice = back.clone();
        twice.add(&back).unwrap();
        assert_eq!(twice.row().delivered, 12);
        assert_eq!(twice.hist.len(), 2);
    }
}
