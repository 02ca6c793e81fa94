//! Sharded runs (`--shard I/N`): which of a scenario's clients and channels
//! one shard runs. A shard is a *subset* of the single-process run, not a
//! scaled copy: shard I runs exactly the clients the single process would
//! have run under the same global numbers, with the same start offsets,
//! poll offsets and per-channel publish schedules. So the shards' clients
//! add up to the scenario's, and their accounting adds up to what one
//! process would have measured.
//!
//! Channels: with at least as many channels as shards, every channel (its
//! publisher and all its subscribers) belongs to one shard. With fewer
//! channels than shards, clients are striped over the shards and each shard
//! publishes its own replica of every channel's stream (its subscribers
//! need the whole stream, timed on its own clock); one shard per channel
//! counts that channel's published events, so `published` still adds up.

use serde::{Deserialize, Serialize};

/// Shard `index` (0-based, as Kubernetes' completion index) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

/// Most shards a run may be cut into.
pub const MAX_SHARDS: u32 = 10_000;

impl Shard {
    /// The whole run as one shard.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `I/N`.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: write I/N, e.g. 0/4 (I counts from 0)"))?;
        let num = |v: &str, what: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("{s:?}: {what} {v:?} is not a whole number"))
        };
        let (index, count) = (num(i, "I")?, num(n, "N")?);
        if count == 0 || count > MAX_SHARDS {
            return Err(format!("{s:?}: N must be in 1..={MAX_SHARDS}"));
        }
        if index >= count {
            return Err(format!(
                "{s:?}: I counts from 0, so it must be below N (0..={})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// The shard that runs global client `k` of a group whose clients are
    /// spread round-robin over `channels` channels (0: the group does not
    /// subscribe).
    pub fn owner(self, k: u64, channels: u32) -> u32 {
        let n = u64::from(self.count);
        let c = u64::from(channels);
        if c >= n {
            ((k % c) % n) as u32
        } else {
            (k % n) as u32
        }
    }

    /// The shard that runs global client `k` of room `room` (of
    /// `channels` rooms): with at least as many rooms as shards, a whole
    /// room runs in one shard, whatever its size.
    pub fn owner_in(self, k: u64, room: u32, channels: u32) -> u32 {
        if channels >= self.count {
            room % self.count
        } else {
            (k % u64::from(self.count)) as u32
        }
    }

    /// Global numbers of the clients this shard runs, ascending.
    pub fn clients(self, total: u64, channels: u32) -> impl Iterator<Item = u64> {
        (0..total).filter(move |&k| self.owner(k, channels) == self.index)
    }

    /// How many of `total` clients this shard runs.
    pub fn client_count(self, total: u64, channels: u32) -> u64 {
        if self.count == 1 {
            return total;
        }
        self.clients(total, channels).count() as u64
    }

    /// Global numbers of the channels this shard publishes on.
    pub fn channels(self, channels: u32) -> Vec<u32> {
        if channels >= self.count {
            (0..channels)
                .filter(|c| c % self.count == self.index)
                .collect()
        } else {
            (0..channels).collect()
        }
    }

    /// True when this shard counts channel `c`'s published events (each
    /// channel is counted by exactly one shard, replica or not).
    pub fn counts_channel(self, c: u32) -> bool {
        c % self.count == self.index
    }

    /// `I/N` as written on the command line.
    pub fn label(self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

/// Splits `total` into `n` shares that differ by at most one and add up
/// exactly: share `i` of `total` (for rates and counts without channels).
pub fn share(total: u64, i: u32, n: u32) -> u64 {
    let (i, n) = (u64::from(i), u64::from(n.max(1)));
    total / n + u64::from(i < total % n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(Shard::parse("1/4").unwrap(), Shard { index: 1, count: 4 });
        assert_eq!(Shard::parse("0/1").unwrap(), Shard::WHOLE);
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2", "1/99999"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fewer_channels_than_shards_replicates_streams() {
        // The main scenario: one channel, two processes.
        let a = Shard { index: 0, count: 2 };
        let b = Shard { index: 1, count: 2 };
        assert_eq!(a.channels(1), vec![0]);
        assert_eq!(b.channels(1), vec![0]);
        assert_eq!(a.client_count(250, 1), 125);
        assert_eq!(b.client_count(250, 1), 125);
        // Only one of them counts the channel's published events.
        assert!(a.counts_channel(0) && !b.counts_channel(0));
    }

    proptest! {
        /// Every client runs in exactly one shard, on a channel that shard
        /// publishes; counts add up; each channel is counted once.
        #[test]
        fn shards_partition_clients_and_channels(
            total in 0u64..600,
            channels in 0u32..40,
            n in 1u32..24,
        ) {
            let shards: Vec<Shard> = (0..n).map(|index| Shard { index, count: n }).collect();
            let mut seen = vec![0u32; total as usize];
            let mut sum = 0;
            for s in &shards {
                let carried = s.channels(channels);
                for k in s.clients(total, channels) {
                    seen[k as usize] += 1;
                    if channels > 0 {
                        prop_assert!(carried.contains(&((k % u64::from(channels)) as u32)));
                    }
                }
                sum += s.client_count(total, channels);
            }
            prop_assert_eq!(sum, total);
            prop_assert!(seen.iter().all(|&c| c == 1));
            for c in 0..channels {
                let counted = shards
                    .iter()
                    .filter(|s| s.counts_channel(c) && s.channels(channels).contains(&c))
                    .count();
                prop_assert_eq!(counted, 1);
            }
            // Shares of plain counts add up too.
            prop_assert_eq!((0..n).map(|i| share(total, i, n)).sum::<u64>(), total);
        }
    }
}
