//! Exact delivery accounting. Each client keeps a `Ledger`: the sequence
//! numbers it received (as runs, so a healthy client costs a few words) and
//! the windows during which it was subscribed. At the end the ledger is
//! settled against the publisher's `PublishLog`:
//!
//! * expected = events published in a subscribed window, inside the
//!   measured window (warm-up excluded);
//! * delivered = expected events received; lost = expected − delivered.
//!
//! An event whose publish time is after the client saw its subscription
//! confirmed must arrive (the server registered the subscriber before it
//! confirmed). Events published before that may or may not arrive; they are
//! not expected, so the boundary can never fake a loss.
//!
//! Clients that publish to their room (see [`PeerLog`]) number their
//! messages `peer_seq(sender, k)`: above every publisher sequence number,
//! one block per sender, so one `SeqSet` holds both and each sender's
//! messages are settled against that sender's own log. A receiver expects
//! every other member's messages published while it was subscribed; its
//! own are not expected.

use serde::Serialize;

/// Set of u64 as sorted, disjoint, non-adjacent half-open runs.
#[derive(Debug, Clone, Default)]
pub struct SeqSet {
    runs: Vec<(u64, u64)>,
}

impl SeqSet {
    /// Inserts `v`; false if it was already present (or is `u64::MAX`,
    /// which no publisher produces and the runs cannot hold).
    pub fn insert(&mut self, v: u64) -> bool {
        if v == u64::MAX {
            return false;
        }
        // Fast path: in-order arrival extends the last run.
        if let Some(last) = self.runs.last_mut() {
            if v == last.1 {
                last.1 += 1;
                return true;
            }
            if v > last.1 {
                self.runs.push((v, v + 1));
                return true;
            }
        } else {
            self.runs.push((v, v + 1));
            return true;
        }
        // First run whose end is >= v.
        let i = self.runs.partition_point(|r| r.1 < v);
        if i < self.runs.len() && self.runs[i].0 <= v && v < self.runs[i].1 {
            return false;
        }
        let joins_prev = i < self.runs.len() && self.runs[i].1 == v;
        let joins_next = |runs: &[(u64, u64)], j: usize| j < runs.len() && runs[j].0 == v + 1;
        if joins_prev {
            self.runs[i].1 += 1;
            if joins_next(&self.runs, i + 1) {
                self.runs[i].1 = self.runs[i + 1].1;
                self.runs.remove(i + 1);
            }
        } else if joins_next(&self.runs, i) {
            self.runs[i].0 = v;
        } else {
            self.runs.insert(i, (v, v + 1));
        }
        true
    }

    /// True if `v` is present.
    pub fn contains(&self, v: u64) -> bool {
        let i = self.runs.partition_point(|r| r.1 <= v);
        i < self.runs.len() && self.runs[i].0 <= v
    }

    /// Number of members in `[lo, hi)`.
    pub fn count_in(&self, lo: u64, hi: u64) -> u64 {
        let start = self.runs.partition_point(|r| r.1 <= lo);
        let mut n = 0;
        for &(a, b) in &self.runs[start..] {
            if a >= hi {
                break;
            }
            n += b.min(hi) - a.max(lo);
        }
        n
    }

    /// Number of members.
    pub fn len(&self) -> u64 {
        self.runs.iter().map(|(a, b)| b - a).sum()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

/// What one receipt was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// First time seen; `reordered` if a higher sequence arrived before it.
    New {
        /// Arrived after a higher sequence number.
        reordered: bool,
    },
    /// Seen before.
    Duplicate,
}

/// Bits of a room member's message counter in its sequence numbers.
pub const PEER_SHIFT: u32 = 24;

/// Most messages one member may publish in a phase.
pub const PEER_MAX_MESSAGES: u64 = (1 << PEER_SHIFT) - 1;

/// The sequence number of message `k` of member `sender` (its
/// scenario-wide client number).
pub fn peer_seq(sender: u64, k: u64) -> u64 {
    ((sender + 1) << PEER_SHIFT) | (k & PEER_MAX_MESSAGES)
}

/// The member that sent sequence number `seq`, when a member did.
pub fn peer_of(seq: u64) -> Option<u64> {
    (seq >> PEER_SHIFT).checked_sub(1)
}

/// What one room member published: message `k` is `peer_seq(sender, k)`.
#[derive(Debug, Clone, Default)]
pub struct PeerLog {
    /// The room (channel index within the phase).
    pub channel: u32,
    /// The member's scenario-wide client number.
    pub sender: u64,
    /// Publish (intended) time of each message, and the failed ones.
    pub log: ChannelLog,
}

/// One client's receipts and subscription windows.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Channel index the client subscribes to.
    pub channel: u32,
    /// The client's scenario-wide number (its own messages are not
    /// expected back).
    pub client: u64,
    /// Highest message counter seen per room member (sorted by member):
    /// reordering is per sender, as members publish independently.
    peer_max: Vec<(u64, u64)>,
    seen: SeqSet,
    max_seq: Option<u64>,
    windows: Vec<(u64, u64)>,
    open_since: Option<u64>,
    /// Receipts of an already seen event.
    pub duplicated: u64,
    /// Receipts that arrived after a higher sequence number.
    pub reordered: u64,
}

impl Ledger {
    /// A ledger for a client of `channel`.
    pub fn new(channel: u32) -> Self {
        Ledger {
            channel,
            ..Ledger::default()
        }
    }

    /// A ledger for client `client` (scenario-wide number) of `channel`.
    pub fn for_client(channel: u32, client: u64) -> Self {
        Ledger {
            channel,
            client,
            ..Ledger::default()
        }
    }

    /// Records a receipt.
    pub fn receive(&mut self, seq: u64) -> Receipt {
        if !self.seen.insert(seq) {
            self.duplicated += 1;
            return Receipt::Duplicate;
        }
        let reordered = match peer_of(seq) {
            Some(sender) => {
                let k = seq & PEER_MAX_MESSAGES;
                match self.peer_max.binary_search_by_key(&sender, |p| p.0) {
                    Ok(i) => {
                        let max = &mut self.peer_max[i].1;
                        let before = k < *max;
                        *max = (*max).max(k);
                        before
                    }
                    Err(i) => {
                        self.peer_max.insert(i, (sender, k));
                        false
                    }
                }
            }
            None => {
                let r = self.max_seq.is_some_and(|m| seq < m);
                self.max_seq = Some(self.max_seq.map_or(seq, |m| m.max(seq)));
                r
            }
        };
        if reordered {
            self.reordered += 1;
        }
        Receipt::New { reordered }
    }

    /// Settles the other members' messages of this client's room
    /// (`peers`: the room's logs, this client's own among them or not):
    /// expected and delivered only (duplicates and reordering are counted
    /// by [`Ledger::settle`]).
    pub fn settle_peers(&self, peers: &[&PeerLog], from_ns: u64, to_ns: u64) -> Tally {
        let mut t = Tally::default();
        for p in peers.iter().filter(|p| p.sender != self.client) {
            let (expected, delivered) =
                self.settle_log(&p.log, peer_seq(p.sender, 0), from_ns, to_ns);
            t.expected += expected;
            t.delivered += delivered;
        }
        t.lost = t.expected - t.delivered;
        t
    }

    /// (expected, delivered) of one sender's log over this client's
    /// subscription windows within `from_ns..to_ns`: the messages sent
    /// while it was subscribed, minus those whose publish failed. Message
    /// `k` of the log is sequence number `base + k` in the receipts.
    fn settle_log(&self, ch: &ChannelLog, base: u64, from_ns: u64, to_ns: u64) -> (u64, u64) {
        let (mut expected, mut delivered) = (0, 0);
        for &(ws, we) in &self.windows {
            let lo = ws.max(from_ns);
            let hi = we.min(to_ns);
            if lo >= hi {
                continue;
            }
            let a = ch.sent_ns.partition_point(|&s| s < lo) as u64;
            let b = ch.sent_ns.partition_point(|&s| s < hi) as u64;
            let failed_in: Vec<u64> = ch
                .failed
                .iter()
                .copied()
                .filter(|s| (a..b).contains(s))
                .collect();
            expected += (b - a) - failed_in.len() as u64;
            delivered += self.seen.count_in(base + a, base + b)
                - failed_in
                    .iter()
                    .filter(|k| self.seen.contains(base + **k))
                    .count() as u64;
        }
        (expected, delivered)
    }

    /// The client is subscribed from `now_ns` (no-op if already open).
    pub fn open(&mut self, now_ns: u64) {
        if self.open_since.is_none() {
            self.open_since = Some(now_ns);
        }
    }

    /// The client stopped being subscribed at `now_ns`.
    pub fn close(&mut self, now_ns: u64) {
        if let Some(start) = self.open_since.take() {
            self.windows.push((start, now_ns.max(start)));
        }
    }

    /// True while a window is open.
    pub fn is_open(&self) -> bool {
        self.open_since.is_some()
    }

    /// Settles against the publisher's log. `from_ns..to_ns` is the
    /// measured publish window.
    pub fn settle(&self, log: &PublishLog, from_ns: u64, to_ns: u64) -> Tally {
        let mut t = Tally {
            duplicated: self.duplicated,
            reordered: self.reordered,
            ..Tally::default()
        };
        let Some(ch) = log.channels.get(self.channel as usize) else {
            return t;
        };
        let (expected, delivered) = self.settle_log(ch, 0, from_ns, to_ns);
        t.expected = expected;
        t.delivered = delivered;
        t.lost = t.expected - t.delivered;
        t
    }
}

/// Settled accounting, summable over clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Events the clients should have received.
    pub expected: u64,
    /// Of those, received.
    pub delivered: u64,
    /// Of those, never received.
    pub lost: u64,
    /// Duplicate receipts.
    pub duplicated: u64,
    /// Out-of-order receipts.
    pub reordered: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.expected += o.expected;
        self.delivered += o.delivered;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
    }
}

/// One channel's publish history: sequence number = index.
#[derive(Debug, Clone, Default)]
pub struct ChannelLog {
    /// Publish (intended) time of each sequence number, non-decreasing.
    pub sent_ns: Vec<u64>,
    /// Sequence numbers whose publish failed.
    pub failed: Vec<u64>,
}

/// What the publisher published in one phase.
#[derive(Debug, Clone, Default)]
pub struct PublishLog {
    /// Per channel.
    pub channels: Vec<ChannelLog>,
}

impl PublishLog {
    /// Successfully published events with publish time in `from..to`.
    pub fn published_between(&self, from_ns: u64, to_ns: u64) -> u64 {
        self.channels
            .iter()
            .map(|ch| {
                let a = ch.sent_ns.partition_point(|&s| s < from_ns) as u64;
                let b = (ch.sent_ns.partition_point(|&s| s < to_ns) as u64).max(a);
                (b - a) - ch.failed.iter().filter(|s| (a..b).contains(*s)).count() as u64
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_members_expect_each_others_messages_not_their_own() {
        let log = |sender: u64, times: &[u64], failed: &[u64]| PeerLog {
            channel: 0,
            sender,
            log: ChannelLog {
                sent_ns: times.to_vec(),
                failed: failed.to_vec(),
            },
        };
        let a = log(3, &[100, 200, 300, 400], &[2]);
        let b = log(9, &[150, 250], &[]);
        let mut me = Ledger::for_client(0, 9);
        me.open(120);
        // From 3: k=1, k=3 (k=0 before the window, k=2 failed); b's own ignored.
        assert_eq!(
            me.receive(peer_seq(3, 3)),
            Receipt::New { reordered: false }
        );
        assert_eq!(me.receive(peer_seq(3, 1)), Receipt::New { reordered: true });
        assert_eq!(
            me.receive(peer_seq(9, 0)),
            Receipt::New { reordered: false }
        );
        me.close(1000);
        let t = me.settle_peers(&[&a, &b], 0, 1000);
        assert_eq!((t.expected, t.delivered, t.lost), (2, 2, 0));
        let mut other = Ledger::for_client(0, 4);
        other.open(0);
        other.receive(peer_seq(9, 1));
        other.close(1000);
        let t = other.settle_peers(&[&a, &b], 0, 1000);
        assert_eq!((t.expected, t.delivered, t.lost), (3 + 2, 1, 4));
        assert_eq!(peer_of(peer_seq(41, 7)), Some(41));
        assert_eq!(peer_of(12), None);
    }

    #[test]
    fn seqset_any_order() {
        let mut s = SeqSet::default();
        for v in [5, 3, 4, 10, 1, 2, 0, 11, 9] {
            assert!(s.insert(v), "{v}");
        }
        assert!(!s.insert(4));
        assert_eq!(s.runs, vec![(0, 6), (9, 12)]);
        assert_eq!(s.count_in(2, 10), 5);
        assert_eq!(s.len(), 9);
        assert!(s.contains(0) && s.contains(11) && !s.contains(6));
    }

    #[test]
    fn settle_counts_losses_only_inside_windows() {
        let log = PublishLog {
            channels: vec![ChannelLog {
                sent_ns: (0..10).map(|i| i * 100).collect(),
                failed: vec![7],
            }],
        };
        let mut l = Ledger::new(0);
        l.open(150); // seq 0,1 before the window: optional
        for s in [1, 2, 3, 5, 3] {
            l.receive(s);
        }
        l.close(550); // window covers seqs 2..=5
        l.open(750); // seqs 8,9 (7 failed)
        l.receive(8);
        l.close(10_000);
        let t = l.settle(&log, 0, 901);
        assert_eq!(t.expected, 4 + 2);
        assert_eq!(t.delivered, 3 + 1);
        assert_eq!(t.lost, 2);
        assert_eq!(t.duplicated, 1);
        assert_eq!(log.published_between(0, 901), 9);
        assert_eq!(log.published_between(0, 900), 8);
    }
}
