//! The reference server's channels: a bounded backlog per channel (for
//! cursor reads and resume) and a broadcast for live fan-out. Publishing
//! never waits on a subscriber: a subscriber that falls more than the
//! broadcast capacity behind loses the oldest events, and the loss is
//! counted in `dropped`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

/// Events kept per channel for cursors and resume.
pub const BACKLOG: usize = 4096;

/// One stored event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Per-channel id, from 1.
    pub id: u64,
    /// Payload as published.
    pub data: Bytes,
}

/// One channel.
#[derive(Debug)]
pub struct Channel {
    backlog: Mutex<VecDeque<Event>>,
    live: broadcast::Sender<Event>,
    head: watch::Sender<u64>,
}

impl Channel {
    fn new() -> Self {
        Channel {
            backlog: Mutex::new(VecDeque::with_capacity(64)),
            live: broadcast::channel(BACKLOG).0,
            head: watch::channel(0).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Event>> {
        self.backlog.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends an event; returns its id.
    pub fn publish(&self, data: Bytes) -> u64 {
        let mut backlog = self.lock();
        let id = *self.head.borrow() + 1;
        self.append(&mut backlog, Event { id, data });
        id
    }

    /// Appends an event published on another worker under its id there
    /// (see [`super::cluster`]); an id already passed is a duplicate and
    /// ignored.
    pub fn publish_at(&self, id: u64, data: Bytes) {
        let mut backlog = self.lock();
        if id <= *self.head.borrow() {
            return;
        }
        self.append(&mut backlog, Event { id, data });
    }

    /// Adds `ev` to the held backlog and sends it live. Called with the
    /// backlog lock held, so `subscribe_after` sees no gap.
    fn append(&self, backlog: &mut VecDeque<Event>, ev: Event) {
        if backlog.len() == BACKLOG {
            backlog.pop_front();
        }
        backlog.push_back(ev.clone());
        let id = ev.id;
        let _ = self.live.send(ev);
        self.head.send_replace(id);
    }

    /// Id of the newest event (0 when none).
    pub fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// Events with id > `after`, and how many of those the backlog no
    /// longer holds.
    pub fn after(&self, after: u64) -> (Vec<Event>, u64) {
        let backlog = self.lock();
        let oldest = backlog.front().map_or(self.head() + 1, |e| e.id);
        let missing = oldest.saturating_sub(after + 1);
        let events = backlog.iter().filter(|e| e.id > after).cloned().collect();
        (events, missing)
    }

    /// Backlog after `after` (or nothing, if `None`: start at the newest)
    /// plus a live receiver that continues exactly where the backlog ends.
    pub fn subscribe_after(
        &self,
        after: Option<u64>,
    ) -> (Vec<Event>, u64, broadcast::Receiver<Event>) {
        let backlog = self.lock();
        let rx = self.live.subscribe();
        let (events, missing) = match after {
            None => (Vec::new(), 0),
            Some(a) => {
                let oldest = backlog.front().map_or(self.head() + 1, |e| e.id);
                (
                    backlog.iter().filter(|e| e.id > a).cloned().collect(),
                    oldest.saturating_sub(a + 1),
                )
            }
        };
        (events, missing, rx)
    }

    /// Waits until the head passes `after` or `timeout` elapses.
    pub async fn wait_after(&self, after: u64, timeout: Duration) -> bool {
        let mut rx = self.head.subscribe();
        let deadline = Instant::now() + timeout;
        loop {
            if *rx.borrow_and_update() > after {
                return true;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return false,
            }
        }
    }
}

/// Keeps one subscriber stream counted in [`Hub::open_streams`].
#[derive(Debug)]
pub struct StreamGuard(Arc<Hub>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counters the target exposes at `/stats`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Events accepted.
    pub published: AtomicU64,
    /// Events a subscriber missed because it lagged behind the buffers.
    pub dropped: AtomicU64,
    /// Events delivered to subscribers.
    pub delivered: AtomicU64,
    /// Subscriber sessions opened.
    pub subscriptions: AtomicU64,
    /// JSON-RPC replies sent on `/rpc`.
    pub rpc_replies: AtomicU64,
}

/// Snapshot of `Stats`.
#[derive(Debug, Serialize)]
pub struct StatsSnapshot {
    /// Channels.
    pub channels: usize,
    /// Events accepted.
    pub published: u64,
    /// Events subscribers missed.
    pub dropped: u64,
    /// Events delivered.
    pub delivered: u64,
    /// Subscriber sessions opened.
    pub subscriptions: u64,
    /// JSON-RPC replies sent on `/rpc`.
    pub rpc_replies: u64,
}

/// All channels plus the stall control.
#[derive(Debug, Default)]
pub struct Hub {
    channels: Mutex<HashMap<String, Arc<Channel>>>,
    /// Counters.
    pub stats: Stats,
    stall_until: Mutex<Option<Instant>>,
    delay: Duration,
    drops: watch::Sender<u64>,
    /// Other workers of `serve --processes N`, told of every publish.
    forwarder: std::sync::OnceLock<super::cluster::Forwarder>,
    cost_per_conn: Duration,
    /// Open subscriber streams (SSE, NDJSON, WebSocket).
    streams: AtomicI64,
}

impl Hub {
    /// A hub that delays every response and publish by `delay` (a
    /// deliberately slow target).
    pub fn with_delay(delay: Duration) -> Self {
        Hub {
            delay,
            ..Hub::default()
        }
    }

    /// A hub whose publishes also wait `cost` per open subscriber stream:
    /// an artificial fan-out cost that makes a capacity knee known (with
    /// `n` streams, every event is delivered at least `n × cost` late).
    pub fn with_costs(delay: Duration, cost: Duration) -> Self {
        Hub {
            delay,
            cost_per_conn: cost,
            ..Hub::default()
        }
    }

    /// Counts an open subscriber stream until the guard is dropped.
    pub fn stream_opened(self: &Arc<Self>) -> StreamGuard {
        self.streams.fetch_add(1, Ordering::Relaxed);
        StreamGuard(self.clone())
    }

    /// Open subscriber streams now.
    pub fn open_streams(&self) -> i64 {
        self.streams.load(Ordering::Relaxed)
    }

    /// Waits out the fan-out cost of one publish (`cost_per_conn` × open
    /// streams).
    pub async fn fan_out_cost(&self) {
        let n = self.open_streams().max(0) as u32;
        if !self.cost_per_conn.is_zero() && n > 0 {
            tokio::time::sleep(self.cost_per_conn.saturating_mul(n)).await;
        }
    }

    /// The channel named `name`, created on first use.
    pub fn channel(&self, name: &str) -> Arc<Channel> {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string())
            .or_insert_with(|| Arc::new(Channel::new()))
            .clone()
    }

    /// Sets the peers every accepted publish is forwarded to.
    pub fn set_forwarder(&self, f: super::cluster::Forwarder) {
        let _ = self.forwarder.set(f);
    }

    /// Tells the other workers (if any) of a publish accepted here.
    pub fn forward(&self, channel: &str, id: u64, data: &Bytes) {
        if let Some(f) = self.forwarder.get() {
            f.forward(self, channel, id, data);
        }
    }

    /// Makes every request arriving in the next `d` wait until it is over.
    pub fn stall_for(&self, d: Duration) {
        *self.stall_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + d);
    }

    /// Ends every open subscriber stream (SSE, NDJSON, WebSocket), as a
    /// restart or a load-balancer drain would.
    pub fn drop_subscribers(&self) {
        self.drops.send_modify(|n| *n += 1);
    }

    /// A receiver that changes when subscribers are dropped.
    pub fn drops(&self) -> watch::Receiver<u64> {
        self.drops.subscribe()
    }

    /// Waits out a stall, if one is on, and the configured delay.
    pub async fn stall(&self) {
        let until = *self.stall_until.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }

    /// Counts `n` events a subscriber could not get.
    pub fn dropped(&self, n: u64) {
        self.stats.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` delivered events.
    pub fn delivered(&self, n: u64) {
        self.stats.delivered.fetch_add(n, Ordering::Relaxed);
    }

    /// A snapshot of the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let s = &self.stats;
        StatsSnapshot {
            channels: self.channels.lock().map(|m| m.len()).unwrap_or(0),
            published: s.published.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            delivered: s.delivered.load(Ordering::Relaxed),
            subscriptions: s.subscriptions.load(Ordering::Relaxed),
            rpc_replies: s.rpc_replies.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_and_resume() {
        let ch = Channel::new();
        for i in 0..3 {
            assert_eq!(ch.publish(Bytes::from(format!("e{i}"))), i + 1);
        }
        let (evs, missing) = ch.after(1);
        assert_eq!(evs.iter().map(|e| e.id).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(missing, 0);
        let (evs, _, mut rx) = ch.subscribe_after(Some(2));
        assert_eq!(evs.len(), 1);
        ch.publish(Bytes::from_static(b"e3"));
        assert_eq!(rx.try_recv().map(|e| e.id).ok(), Some(4));
    }

    #[test]
    fn overflow_is_reported_as_missing() {
        let ch = Channel::new();
        for _ in 0..(BACKLOG + 10) {
            ch.publish(Bytes::from_static(b"x"));
        }
        let (evs, missing) = ch.after(0);
        assert_eq!(evs.len(), BACKLOG);
        assert_eq!(missing, 10);
    }
}
