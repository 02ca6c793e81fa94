//! A phase's windows: the interval boundaries it collects at, and the
//! measured window each group's ledgers are settled over once it ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::GroupShared;
use super::runner::{GroupPhase, PhaseSpec, INTERRUPT_DRAIN};
use crate::clock::Clock;
use crate::metrics::{PeerLog, PublishLog, Tally};
use crate::plan::Plan;
use crate::publish::PublishReport;
use std::collections::HashMap;

/// Interval boundaries: every second, plus the window edges.
pub(super) fn boundaries(
    start: Instant,
    measure_from: Instant,
    publish_until: Instant,
    drain_until: Instant,
) -> Vec<Instant> {
    let mut boundaries: Vec<Instant> = Vec::new();
    let mut t = start + Duration::from_secs(1);
    while t < drain_until {
        boundaries.push(t);
        t += Duration::from_secs(1);
    }
    boundaries.extend([measure_from, publish_until, drain_until]);
    boundaries.retain(|b| *b > start);
    boundaries.sort();
    boundaries.dedup();
    boundaries
}

/// A phase's windows, as it ran.
pub(super) struct Window {
    pub measure_from: Instant,
    pub publish_until: Instant,
    pub stopped_at: Instant,
    pub stopped_early: bool,
    pub subscribes: bool,
}

/// Settles every group's ledgers against what was published in its
/// measured window; returns the phase's window (ns) and the groups.
pub(super) fn settle(
    plan: &Plan,
    spec: &PhaseSpec,
    clock: Clock,
    w: &Window,
    shared: Vec<(usize, Arc<GroupShared>)>,
    publish: &PublishReport,
) -> (u64, u64, Vec<GroupPhase>) {
    // When cut short, publishing stopped at `w.stopped_at`; a poller may need
    // one more interval than the short drain gave it, so its window ends
    // that much earlier and the boundary cannot fake a loss.
    let window_end = |gi: usize| {
        if w.stopped_early && !plan.groups[gi].transport.subscribes() {
            // Request and echo load sends every scheduled exchange: no slack.
            w.publish_until.min(w.stopped_at)
        } else if w.stopped_early {
            let slack = plan.groups[gi]
                .interval
                .unwrap_or_default()
                .saturating_sub(plan.drain.min(INTERRUPT_DRAIN));
            w.publish_until
                .min(w.stopped_at.checked_sub(slack).unwrap_or(w.measure_from))
        } else {
            w.publish_until
        }
    };
    let from_ns = clock.ns(w.measure_from);
    // The phase's window is the subscribers' (or, without any, the
    // exchange groups').
    let to_ns = spec
        .groups
        .iter()
        .filter(|&&gi| !w.subscribes || plan.groups[gi].transport.subscribes())
        .map(|&gi| clock.ns(window_end(gi)))
        .min()
        .unwrap_or(from_ns)
        .max(from_ns);
    // Every room member's messages, from every group of the phase: any
    // subscriber of the room expects them.
    let peers: Vec<(usize, PeerLog)> = shared
        .iter()
        .flat_map(|(gi, s)| {
            std::mem::take(&mut *s.peers.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .map(move |p| (*gi, p))
        })
        .collect();
    let mut rooms: HashMap<u32, Vec<&PeerLog>> = HashMap::new();
    for (_, p) in &peers {
        rooms.entry(p.channel).or_default().push(p);
    }
    let groups = shared
        .into_iter()
        .map(|(gi, s)| {
            let to_ns = clock.ns(window_end(gi)).max(from_ns);
            let ledgers = std::mem::take(&mut *s.ledgers.lock().unwrap_or_else(|p| p.into_inner()));
            // Each client's settlement also goes to its room's size bucket.
            let slot_of = |channel: u32| {
                let rooms = spec.rooms.as_ref()?;
                plan.groups[gi].rooms.as_ref()?;
                rooms.slot(*spec.channel_ids.get(channel as usize)?)
            };
            let mut by_bucket =
                vec![Tally::default(); spec.rooms.as_ref().map_or(0, |r| r.buckets.len())];
            let accounting = plan.groups[gi].transport.subscribes().then(|| {
                let mut tally = Tally::default();
                for l in &ledgers {
                    let mut t = l.settle(&publish.log, from_ns, to_ns);
                    if let Some(room) = rooms.get(&l.channel) {
                        t += l.settle_peers(room, from_ns, to_ns);
                    }
                    if let Some(b) = slot_of(l.channel).and_then(|s| by_bucket.get_mut(s)) {
                        *b += t;
                    }
                    tally += t;
                }
                // The group's own members' messages (each client runs in
                // one shard, so shards add up).
                let own: u64 = peers
                    .iter()
                    .filter(|(g, _)| *g == gi)
                    .map(|(_, p)| {
                        PublishLog {
                            channels: vec![p.log.clone()],
                        }
                        .published_between(from_ns, to_ns)
                    })
                    .sum();
                // Channels with at least one of the scenario's clients of
                // this group, each counted by one shard only.
                let shard = plan.shard.unwrap_or(crate::shard::Shard::WHOLE);
                let g = &plan.groups[gi];
                let channels = plan.publisher.as_ref().map_or(0, |p| p.channels);
                let published = PublishLog {
                    channels: spec
                        .channel_ids
                        .iter()
                        .zip(&publish.log.channels)
                        .filter(|(&c, _)| g.uses_room(c, channels) && shard.counts_channel(c))
                        .map(|(_, log)| log.clone())
                        .collect(),
                }
                .published_between(from_ns, to_ns);
                (tally, published + own)
            });
            GroupPhase {
                group: gi,
                accounting,
                rooms: if plan.groups[gi].rooms.is_some() {
                    by_bucket
                } else {
                    Vec::new()
                },
                recorder: s.recorder.clone(),
            }
        })
        .collect();
    (from_ns, to_ns, groups)
}
