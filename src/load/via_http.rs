//! A room member that publishes to the target's publish endpoint (`publish
//! = { via = "http" }`): the "SSE down, POST up" chat client. It runs
//! beside the member's subscribing session, not inside it, because a POST
//! must not cancel a long poll or a stream read half-way, and because a
//! real client keeps posting while its stream reconnects.
//!
//! Each member holds its own keep-alive connection to the endpoint (opened
//! by its first message, again after a failure) rather than borrowing from
//! a pool shared by the group: N publishing members are N connections, as
//! N browsers would be, and no member waits on a lock another holds — the
//! cost is one idle socket per member between messages.
//!
//! Messages are numbered and stamped as `via = "same"` messages are (so the
//! ledger expects each at every other member of the room), sent at their
//! intended instants — late if the previous one is still answered, never
//! skipped — and timed from those instants to the acknowledgement
//! (`publish_ack`). A message the target refused, or whose answer never
//! came, is marked failed: no receiver expects it.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::client::{ClientPublish, GroupShared};
use crate::metrics::ledger::{peer_seq, PeerLog, PEER_MAX_MESSAGES};
use crate::metrics::{Count, Latency};
use crate::publish::{Connection, Endpoint};

/// Who publishes what, where.
pub struct Member {
    /// The endpoint (shared by the group).
    pub endpoint: Arc<Endpoint>,
    /// The room's channel name (the endpoint URL's `{channel}`).
    pub channel_name: String,
    /// The room (channel index within the phase: the envelope's channel).
    pub room: u32,
    /// The member's scenario-wide client number.
    pub sender: u64,
    /// Its schedule and message size.
    pub publish: ClientPublish,
}

/// Hands the member's log to its group however its task ends (an aborted
/// task included), as the client's ledger is.
struct Handover {
    shared: Arc<GroupShared>,
    sent: PeerLog,
}

impl Drop for Handover {
    fn drop(&mut self) {
        let sent = std::mem::take(&mut self.sent);
        self.shared
            .peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(sent);
    }
}

/// Publishes `m`'s messages until its schedule ends or `cancel`.
pub async fn run(m: Member, shared: Arc<GroupShared>, cancel: CancellationToken) {
    let clock = shared.clock;
    let acks = m.endpoint.acknowledges();
    // Its bytes are the group's, as a browser's POSTs are its user's.
    let io = Arc::new(crate::net::IoCounters::default());
    let mut seen = (0, 0);
    let mut conn = Connection::new(m.endpoint, &m.channel_name, io.clone());
    let mut out = Handover {
        shared,
        sent: PeerLog {
            channel: m.room,
            sender: m.sender,
            log: Default::default(),
        },
    };
    let p = m.publish;
    let mut next_at = p.first;
    while next_at < p.until {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(next_at.into()) => {}
        }
        let intended = next_at;
        next_at += p.every;
        let k = out.sent.log.sent_ns.len() as u64;
        if k >= PEER_MAX_MESSAGES {
            break;
        }
        let sent_ns = clock.ns(intended);
        let text = crate::envelope::Envelope {
            channel: m.room,
            seq: peer_seq(m.sender, k),
            sent_ns,
        }
        .encode(p.bytes);
        out.sent.log.sent_ns.push(sent_ns);
        let published = tokio::select! {
            biased;
            _ = cancel.cancelled() => None,
            p = conn.publish(text) => Some(p),
        };
        let recorder = &out.shared.recorder;
        let (s, r) = io.totals();
        recorder.with(|i| {
            i.add(Count::BytesSent, s - seen.0);
            i.add(Count::BytesReceived, r - seen.1);
        });
        seen = (s, r);
        match published.map(|p| p.result) {
            Some(Ok(())) => recorder.with(|i| {
                i.add(Count::PublishesAcked, u64::from(acks));
                if acks {
                    i.record(
                        Latency::PublishAck,
                        Instant::now().saturating_duration_since(intended),
                    );
                }
            }),
            Some(Err(f)) => {
                out.sent.log.failed.push(k);
                recorder.with(|i| i.add(Count::PublishesFailed, 1));
                recorder.error(f.kind, &f.detail);
            }
            // Stopped with its answer outstanding: whether the target took
            // it is unknown, so no receiver is held to it.
            None => {
                out.sent.log.failed.push(k);
                break;
            }
        }
    }
    conn.close().await;
}
