//! One simulated client: opens a session, observes messages until the phase
//! ends, and reconnects by its group's policy. Every loop waits on the same
//! three things: cancellation, its schedule, the next message. A failed
//! exchange is recorded and the client goes on.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::pacer::Pacer;
use crate::clock::Clock;
use crate::envelope::Envelope;
use crate::fault::{ErrorKind, Fault};
use crate::metrics::ledger::Receipt;
use crate::metrics::{Count, GroupRecorder, Latency, Ledger};
use crate::net::IoCounters;
use crate::plan::ReconnectPlan;
use crate::transport::{SessionSpec, Sink, Step, Transport};

/// What one client needs to run.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    /// Channel index this client subscribes to.
    pub channel: u32,
    /// Where to connect.
    pub session: Arc<SessionSpec>,
    /// Interval polling period (request-paced transports only).
    pub interval: Option<Duration>,
    /// When to open the first session (ramp-up).
    pub start_at: Instant,
    /// Offset of this client's poll schedule, to spread polls.
    pub poll_offset: Duration,
    /// Reconnect policy.
    pub reconnect: ReconnectPlan,
}

/// State shared by a group's clients: the recorder and where ledgers go.
#[derive(Debug)]
pub struct GroupShared {
    /// Sharded recorder.
    pub recorder: Arc<GroupRecorder>,
    /// Ledgers of finished clients.
    pub ledgers: Mutex<Vec<Ledger>>,
    /// Run clock.
    pub clock: Clock,
}

/// The client's `Sink`: turns wire events into samples.
struct ClientSink<'a> {
    shared: &'a GroupShared,
    ledger: Ledger,
    first_attempt: Instant,
    first_event_seen: bool,
    open_conns: i64,
    io_seen: (u64, u64),
}

impl ClientSink<'_> {
    fn flush_io(&mut self, io: &IoCounters) {
        let (s, r) = io.totals();
        let (ds, dr) = (s - self.io_seen.0, r - self.io_seen.1);
        if ds > 0 || dr > 0 {
            self.io_seen = (s, r);
            self.shared.recorder.with(|i| {
                i.add(Count::BytesSent, ds);
                i.add(Count::BytesReceived, dr);
            });
        }
    }

    /// A session ended: whatever it still counted as open is closed now.
    fn settle_connections(&mut self) {
        if self.open_conns != 0 {
            self.shared.recorder.add_connections(-self.open_conns);
            self.open_conns = 0;
        }
    }
}

impl Sink for ClientSink<'_> {
    fn connected(&mut self, tcp: Duration) {
        self.open_conns += 1;
        self.shared.recorder.add_connections(1);
        self.shared
            .recorder
            .with(|i| i.record(Latency::Connect, tcp));
    }

    fn subscribed(&mut self, took: Duration) {
        self.shared
            .recorder
            .with(|i| i.record(Latency::Subscribe, took));
    }

    fn disconnected(&mut self) {
        if self.open_conns > 0 {
            self.open_conns -= 1;
            self.shared.recorder.add_connections(-1);
        }
    }

    fn message(&mut self, payload: &[u8], at: Instant) {
        let Some(env) = Envelope::decode(payload) else {
            self.shared.recorder.error(
                ErrorKind::Protocol,
                "a message that is not a stampede envelope",
            );
            return;
        };
        if env.channel != self.ledger.channel {
            self.shared
                .recorder
                .error(ErrorKind::Protocol, "an event from another channel");
            return;
        }
        let clock = self.shared.clock;
        match self.ledger.receive(env.seq) {
            Receipt::Duplicate => self.shared.recorder.with(|i| i.add(Count::Duplicates, 1)),
            Receipt::New { .. } => {
                let latency = Duration::from_nanos(clock.ns(at).saturating_sub(env.sent_ns));
                let first = (!self.first_event_seen).then(|| at - self.first_attempt);
                self.first_event_seen = true;
                self.shared.recorder.with(|i| {
                    i.record(Latency::Delivery, latency);
                    i.add(Count::Deliveries, 1);
                    if let Some(f) = first {
                        i.record(Latency::FirstEvent, f);
                    }
                });
            }
        }
    }

    fn request(&mut self, intended: Instant, done: Instant, empty: bool) {
        self.shared.recorder.with(|i| {
            i.record(Latency::Request, done.saturating_duration_since(intended));
            i.add(Count::Requests, 1);
            if empty {
                i.add(Count::EmptyResponses, 1);
            }
        });
    }

    fn server_timeout(&mut self) {
        self.shared
            .recorder
            .with(|i| i.add(Count::ServerTimeouts, 1));
    }

    fn fault(&mut self, fault: Fault) {
        self.shared.recorder.error(fault.kind, &fault.detail);
    }
}

enum Wake<T> {
    Cancelled,
    Ready(T),
}

async fn or_cancel<T>(
    cancel: &CancellationToken,
    fut: impl std::future::Future<Output = T>,
) -> Wake<T> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Wake::Cancelled,
        v = fut => Wake::Ready(v),
    }
}

/// Runs one client until `cancel`, then hands its ledger to the group.
pub async fn run<T: Transport>(
    spec: ClientSpec,
    shared: Arc<GroupShared>,
    cancel: CancellationToken,
) {
    let clock = shared.clock;
    if let Wake::Cancelled =
        or_cancel(&cancel, tokio::time::sleep_until(spec.start_at.into())).await
    {
        return;
    }
    let io = Arc::new(IoCounters::default());
    let mut sink = ClientSink {
        shared: &shared,
        ledger: Ledger::new(spec.channel),
        first_attempt: Instant::now(),
        first_event_seen: false,
        open_conns: 0,
        io_seen: (0, 0),
    };
    let mut pacer = spec
        .interval
        .map(|p| Pacer::new(spec.start_at + spec.poll_offset, p));
    let mut cursor: Option<String> = None;
    let mut failures: u32 = 0;
    let mut sessions: u64 = 0;
    'client: loop {
        let opened = or_cancel(
            &cancel,
            T::open(&spec.session, &io, cursor.clone(), &mut sink),
        )
        .await;
        sink.flush_io(&io);
        let mut session = match opened {
            Wake::Cancelled => break 'client,
            Wake::Ready(Ok(s)) => s,
            Wake::Ready(Err(f)) => {
                sink.fault(f);
                sink.settle_connections();
                failures += 1;
                if failures > spec.reconnect.max_attempts {
                    break 'client;
                }
                if let Wake::Cancelled = or_cancel(
                    &cancel,
                    tokio::time::sleep(backoff(&spec.reconnect, failures, None)),
                )
                .await
                {
                    break 'client;
                }
                continue;
            }
        };
        failures = 0;
        if sessions > 0 {
            shared.recorder.with(|i| i.add(Count::Reconnects, 1));
        }
        sessions += 1;
        sink.ledger.open(clock.now_ns());
        let ended_by_server = loop {
            let intended = match pacer.as_mut() {
                Some(p) => {
                    let at = p.next_at();
                    if let Wake::Cancelled =
                        or_cancel(&cancel, tokio::time::sleep_until(at.into())).await
                    {
                        session.close().await;
                        break 'client;
                    }
                    at
                }
                None => Instant::now(),
            };
            let step = or_cancel(&cancel, session.next(intended, &mut sink)).await;
            sink.flush_io(&io);
            match step {
                Wake::Cancelled => {
                    session.close().await;
                    sink.flush_io(&io);
                    break 'client;
                }
                Wake::Ready(Ok(Step::Continue)) => {}
                Wake::Ready(Ok(Step::Ended)) => break true,
                Wake::Ready(Err(f)) => {
                    sink.fault(f);
                    break false;
                }
            }
        };
        cursor = session.cursor();
        let hint = session.retry_hint();
        drop(session);
        sink.settle_connections();
        if cursor.is_none() {
            // Without a cursor the next session cannot resume: events
            // published in the gap are not expected to arrive.
            sink.ledger.close(clock.now_ns());
        }
        if !ended_by_server {
            failures += 1;
            if failures > spec.reconnect.max_attempts {
                break 'client;
            }
        }
        let wait = backoff(&spec.reconnect, failures, hint);
        if let Wake::Cancelled = or_cancel(&cancel, tokio::time::sleep(wait)).await {
            break 'client;
        }
    }
    sink.ledger.close(clock.now_ns());
    sink.settle_connections();
    sink.flush_io(&io);
    let ledger = std::mem::take(&mut sink.ledger);
    shared
        .ledgers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(ledger);
}

/// Exponential backoff after `failures` failures in a row; a server hint
/// (SSE `retry:`) replaces the base.
fn backoff(policy: &ReconnectPlan, failures: u32, hint: Option<Duration>) -> Duration {
    let base = hint.unwrap_or(policy.backoff);
    if failures == 0 {
        return base.min(policy.max_backoff);
    }
    let factor = 1u32 << (failures - 1).min(16);
    base.saturating_mul(factor).min(policy.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = ReconnectPlan {
            max_attempts: 5,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        assert_eq!(backoff(&p, 0, None), Duration::from_millis(100));
        assert_eq!(backoff(&p, 1, None), Duration::from_millis(100));
        assert_eq!(backoff(&p, 3, None), Duration::from_millis(400));
        assert_eq!(backoff(&p, 30, None), Duration::from_secs(1));
        assert_eq!(
            backoff(&p, 1, Some(Duration::from_millis(10))),
            Duration::from_millis(10)
        );
    }
}
