//! Rooms of different sizes (`rooms = { count, size, s, seed }`): which
//! room (channel) each client of a group joins, as a pure function of the
//! group's client count, so every shard places every client where the
//! one-process run does. Sizes:
//!
//! * `fixed`: round-robin, rooms differ by at most one member (what a
//!   scenario without `rooms` does);
//! * `uniform`: each client draws its room uniformly (seeded);
//! * `zipf`: room `i` (from 0) gets a share ∝ `1 / (i + 1)^s` of the
//!   clients (largest remainders round it to whole members), and the
//!   clients are dealt to the rooms in a seeded shuffle, so a ramp-up
//!   fills all rooms together.
//!
//! Delivery latency is also kept per *room-size bucket* ([`bucket`]):
//! powers of two of a room's planned member count over the phase's groups
//! and all shards (1, 2–3, 4–7, 8–15, …), the same in every shard, so
//! `rooms.csv` can say whether latency grows with the room.

use serde::Serialize;

/// How room sizes are distributed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "size", rename_all = "lowercase")]
pub enum Size {
    /// Round-robin.
    Fixed,
    /// A uniform draw per client.
    Uniform,
    /// Zipf with exponent `s`.
    Zipf {
        /// The exponent (> 0).
        s: f64,
    },
}

/// The rooms of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RoomsPlan {
    /// Number of rooms (the publisher's channels).
    pub count: u32,
    /// Size distribution.
    #[serde(flatten)]
    pub size: Size,
    /// Seed of `uniform` and `zipf`.
    pub seed: u64,
}

impl RoomsPlan {
    /// The room of each of `clients` clients (index = the client's number
    /// in its group).
    pub fn assign(&self, clients: u64) -> Vec<u32> {
        let count = self.count.max(1);
        match self.size {
            Size::Fixed => (0..clients)
                .map(|k| (k % u64::from(count)) as u32)
                .collect(),
            Size::Uniform => (0..clients)
                .map(|k| {
                    let mut r =
                        crate::rng::Rng::seeded(self.seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    (r.next_u64() % u64::from(count)) as u32
                })
                .collect(),
            Size::Zipf { s } => {
                let sizes = zipf_sizes(clients, count, s);
                let mut deck: Vec<u32> = sizes
                    .iter()
                    .enumerate()
                    .flat_map(|(room, &n)| std::iter::repeat_n(room as u32, n as usize))
                    .collect();
                // Fisher–Yates with the scenario's seed.
                let mut rng = crate::rng::Rng::seeded(self.seed);
                for i in (1..deck.len()).rev() {
                    let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                    deck.swap(i, j);
                }
                deck
            }
        }
    }
}

/// Members per room of a Zipf(`s`) split of `clients` over `count` rooms:
/// floors of the exact shares, then one more for the largest remainders
/// (ties to the larger room), so the sizes add up to `clients`.
pub fn zipf_sizes(clients: u64, count: u32, s: f64) -> Vec<u64> {
    let weights: Vec<f64> = (1..=count).map(|i| 1.0 / f64::from(i).powf(s)).collect();
    let total: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| clients as f64 * w / total).collect();
    let mut sizes: Vec<u64> = exact.iter().map(|e| e.floor() as u64).collect();
    let mut left = clients - sizes.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for i in order {
        if left == 0 {
            break;
        }
        sizes[i] += 1;
        left -= 1;
    }
    sizes
}

/// Members per room of an assignment.
pub fn sizes_of(assignment: &[u32], count: u32) -> Vec<u64> {
    let mut sizes = vec![0u64; count as usize];
    for &r in assignment {
        if let Some(s) = sizes.get_mut(r as usize) {
            *s += 1;
        }
    }
    sizes
}

/// The room-size bucket of a room of `members` planned members: `b` such
/// that `2^b <= members < 2^(b+1)` (`None` for an empty room).
pub fn bucket(members: u64) -> Option<u32> {
    (members > 0).then(|| 63 - members.leading_zeros())
}

/// Smallest and largest room size of bucket `b` (inclusive).
pub fn bucket_bounds(b: u32) -> (u64, u64) {
    let lo = 1u64 << b.min(62);
    (lo, lo * 2 - 1)
}

/// How bucket `b` reads in tables: `1`, `2-3`, `4-7`, …
pub fn bucket_label(b: u32) -> String {
    match bucket_bounds(b) {
        (lo, hi) if lo == hi => lo.to_string(),
        (lo, hi) => format!("{lo}-{hi}"),
    }
}

/// The bucket a [`bucket_label`] names.
pub fn bucket_of_label(label: &str) -> Option<u32> {
    let lo: u64 = label.split('-').next()?.parse().ok()?;
    bucket(lo).filter(|&b| bucket_label(b) == label)
}

/// One phase's rooms: each room's planned members over the phase's
/// groups (every shard's clients), and the buckets they fall in. A
/// client's delivery latencies go to the histogram of its room's
/// bucket's *slot* (its index in [`PhaseRooms::buckets`]), looked up once
/// when the client is spawned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhaseRooms {
    /// Planned members per scenario room (index: room number).
    pub members: Vec<u64>,
    /// The buckets of the non-empty rooms, ascending.
    pub buckets: Vec<u32>,
}

impl PhaseRooms {
    /// The rooms of groups whose members per room are `groups` (each
    /// indexed by room number, as [`sizes_of`] gives them).
    pub fn new<'a>(groups: impl IntoIterator<Item = &'a [u64]>) -> PhaseRooms {
        let mut members: Vec<u64> = Vec::new();
        for sizes in groups {
            if members.len() < sizes.len() {
                members.resize(sizes.len(), 0);
            }
            for (m, s) in members.iter_mut().zip(sizes) {
                *m += s;
            }
        }
        let mut buckets: Vec<u32> = members.iter().filter_map(|&m| bucket(m)).collect();
        buckets.sort_unstable();
        buckets.dedup();
        PhaseRooms { members, buckets }
    }

    /// The slot of room `room`'s bucket (`None`: an empty or unknown room).
    pub fn slot(&self, room: u32) -> Option<usize> {
        let b = bucket(*self.members.get(room as usize)?)?;
        self.buckets.binary_search(&b).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_rooms_add_up_shrink_and_repeat() {
        let plan = RoomsPlan {
            count: 200,
            size: Size::Zipf { s: 1.1 },
            seed: 7,
        };
        let a = plan.assign(2000);
        assert_eq!(a, plan.assign(2000), "deterministic");
        let sizes = sizes_of(&a, 200);
        assert_eq!(sizes.iter().sum::<u64>(), 2000);
        assert_eq!(sizes, zipf_sizes(2000, 200, 1.1));
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
        assert!(
            sizes[0] > 300 && sizes[199] <= 2,
            "{} {}",
            sizes[0],
            sizes[199]
        );
        // Dealt in a shuffle: the first clients are not all in room 0.
        assert!(a[..50].iter().any(|&r| r != 0));
        let fixed = RoomsPlan {
            size: Size::Fixed,
            ..plan
        };
        assert_eq!(&fixed.assign(5)[..], &[0, 1, 2, 3, 4]);
        let uniform = RoomsPlan {
            size: Size::Uniform,
            ..plan
        };
        let u = uniform.assign(4000);
        assert!(u.iter().all(|&r| r < 200));
        assert_eq!(u, uniform.assign(4000));
    }

    #[test]
    fn buckets_are_powers_of_two() {
        assert_eq!(bucket(0), None);
        let got: Vec<(u64, u32)> = [1, 2, 3, 4, 7, 8, 15, 16, 400, 511, 512]
            .into_iter()
            .map(|m| (m, bucket(m).unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                (1, 0),
                (2, 1),
                (3, 1),
                (4, 2),
                (7, 2),
                (8, 3),
                (15, 3),
                (16, 4),
                (400, 8),
                (511, 8),
                (512, 9)
            ]
        );
        assert_eq!(bucket(u64::MAX), Some(63));
        for b in 0..20 {
            let (lo, hi) = bucket_bounds(b);
            assert_eq!((bucket(lo), bucket(hi)), (Some(b), Some(b)));
            assert_eq!(bucket_of_label(&bucket_label(b)), Some(b));
        }
        assert_eq!(bucket_label(0), "1");
        assert_eq!(bucket_label(2), "4-7");
        assert_eq!(bucket_of_label("4-8"), None);
        assert_eq!(bucket_of_label("x"), None);
    }

    #[test]
    fn a_phase_adds_its_groups_members_per_room() {
        let a = [3u64, 0, 1, 8];
        let b = [1u64, 0, 1];
        let r = PhaseRooms::new([&a[..], &b[..]]);
        assert_eq!(r.members, [4, 0, 2, 8]);
        assert_eq!(r.buckets, [1, 2, 3]);
        assert_eq!(
            (0..5).map(|room| r.slot(room)).collect::<Vec<_>>(),
            [Some(1), None, Some(0), Some(2), None]
        );
    }
}
