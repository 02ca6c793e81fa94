//! One simulated client: opens a session, observes messages until the phase
//! ends, and reconnects by its group's policy. Every loop waits on the same
//! three things: cancellation, its schedule, the next message. A failed
//! exchange is recorded and the client goes on.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::cancel::{ClientCancel, Wake};
use super::pacer::Pacer;
use crate::clock::Clock;
use crate::extract::{Class, Extractor};
use crate::fault::{ErrorKind, Fault};
use crate::metrics::ledger::{peer_of, peer_seq, PeerLog, Receipt, PEER_MAX_MESSAGES};
use crate::metrics::{Count, GroupRecorder, Latency, Ledger};
use crate::net::IoCounters;
use crate::plan::ReconnectPlan;
use crate::transport::{RequestSample, SessionSpec, Sink, Step, Transport};

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
    /// When the client leaves (a ramp-down stage); `None`: at the phase end.
    pub stop_at: Option<Instant>,
    /// Offset of this client's poll schedule, to spread polls.
    pub poll_offset: Duration,
    /// Reconnect policy.
    pub reconnect: ReconnectPlan,
    /// Send every scheduled exchange, late if need be (request and echo
    /// load), instead of skipping missed ones as a poller does.
    pub catch_up: bool,
    /// A reconnect storm this client takes part in.
    pub storm: Option<ClientStorm>,
    /// The client's number in its group.
    pub number: u64,
    /// Who the client is (`{client}`, `{data.*}`, ... in templates).
    pub who: crate::identity::Who,
    /// Its group's templates: personal URL, headers, token.
    pub templates: Arc<crate::transport::personal::GroupTemplates>,
    /// The client publishes to its room (`publish = { ... }`).
    pub publish: Option<ClientPublish>,
    /// Where it publishes with `via = "http"`; `None`: on its own session.
    pub publish_endpoint: Option<Arc<crate::publish::Endpoint>>,
    /// Its room's size-bucket slot (see [`crate::rooms::PhaseRooms`]):
    /// its delivery latencies are recorded there too.
    pub room_slot: Option<usize>,
}

/// One client's own messages to its room: every `every` from `first`
/// until `until` (the end of the hold), `bytes` long.
#[derive(Debug, Clone, Copy)]
pub struct ClientPublish {
    /// Its first message's intended instant.
    pub first: Instant,
    /// Time between its messages.
    pub every: Duration,
    /// No message is due at or after this.
    pub until: Instant,
    /// Message size.
    pub bytes: usize,
}

/// A publishing client's schedule.
struct Publishing {
    next_at: Instant,
    spec: ClientPublish,
}

impl Publishing {
    /// The next intended instant, if one is left.
    fn due(&self) -> Option<Instant> {
        (self.next_at < self.spec.until).then_some(self.next_at)
    }

    /// Messages due while the client had no session are not sent (a
    /// disconnected member cannot publish): the schedule moves past them.
    fn skip_missed(&mut self, now: Instant) {
        while self.next_at < now {
            self.next_at += self.spec.every;
        }
    }
}

/// One client's view of a `[storm]`.
#[derive(Debug, Clone, Copy)]
pub struct ClientStorm {
    /// The storm's intended instant: reconnect times are measured from it.
    pub at: Instant,
    /// True when the client closes its own connection then (`via =
    /// "client"`); otherwise the target ends it.
    pub close: bool,
}

/// Where a client is in a storm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StormState {
    /// Before the storm, or connected through it.
    Before,
    /// Its session ended at or after the storm; not subscribed again yet.
    Down,
    /// Subscribed again; waiting for its first event.
    Resubscribed,
    /// Receiving again (or not affected): nothing more to measure.
    Done,
}

/// State shared by a group's clients: the recorder and where ledgers go.
#[derive(Debug)]
pub struct GroupShared {
    /// Sharded recorder.
    pub recorder: Arc<GroupRecorder>,
    /// Ledgers of finished clients.
    pub ledgers: Mutex<Vec<Ledger>>,
    /// What its clients published to their rooms (publishing groups).
    pub peers: Mutex<Vec<PeerLog>>,
    /// Run clock.
    pub clock: Clock,
    /// Set with the clients' cancellation: request and echo clients check
    /// it between exchanges instead of racing every exchange against the
    /// token (whose every poll takes a lock shared by all clients).
    pub stopped: std::sync::atomic::AtomicBool,
}

/// The client's `Sink`: turns wire events into samples. It owns the
/// client's ledger and hands it to the group when dropped, so even a client
/// task aborted mid-close keeps its accounting.
struct ClientSink<'a> {
    shared: &'a GroupShared,
    io: Arc<IoCounters>,
    ledger: Ledger,
    first_attempt: Instant,
    first_event_seen: bool,
    open_conns: i64,
    io_seen: (u64, u64),
    /// When the client first meant to be subscribed (run-clock ns).
    subscribed_ns: Option<u64>,
    /// When the client leaves by its load stage (run-clock ns).
    leave_ns: Option<u64>,
    /// The storm's instant and this client's progress through it.
    storm: Option<(Instant, StormState)>,
    /// Finds envelopes in wrapped messages and classifies the rest.
    extractor: Arc<Extractor>,
    /// When the current session attempt began (run-clock ns).
    attempt_ns: u64,
    /// Who the client is.
    who: crate::identity::Who,
    /// What it published to its room, if it publishes.
    sent: Option<PeerLog>,
    /// Its room's size-bucket slot.
    room_slot: Option<usize>,
}

impl ClientSink<'_> {
    /// A session ended: at or after the storm's instant, the storm took it.
    fn storm_session_ended(&mut self, now: Instant) {
        if let Some((at, state @ StormState::Before)) = &mut self.storm {
            if now >= *at {
                *state = StormState::Down;
            }
        }
    }

    /// A session opened: the first after the storm is the re-subscription.
    fn storm_session_opened(&mut self, now: Instant) {
        if let Some((at, state @ StormState::Down)) = &mut self.storm {
            *state = StormState::Resubscribed;
            let took = now.saturating_duration_since(*at);
            self.shared
                .recorder
                .with(|i| i.record(Latency::StormReconnect, took));
        }
    }

    fn flush_io(&mut self) {
        let (s, r) = self.io.totals();
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

    /// Polls that were due while the previous one was still running are not
    /// sent late in a burst (a real poller would not), but their latency
    /// from the intended start is still recorded, so a stall stays visible.
    fn missed_polls(&mut self, pacer: &mut Pacer, now: Instant) {
        let missed = pacer.skip_missed(now);
        if missed.is_empty() {
            return;
        }
        self.shared.recorder.with(|i| {
            for at in missed {
                i.record(Latency::Request, now.saturating_duration_since(at));
            }
        });
    }
}

impl Drop for ClientSink<'_> {
    fn drop(&mut self) {
        let now = self.shared.clock.now_ns();
        self.ledger.close(self.leave_ns.map_or(now, |l| l.min(now)));
        self.settle_connections();
        self.flush_io();
        let ledger = std::mem::take(&mut self.ledger);
        self.shared
            .ledgers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ledger);
        if let Some(sent) = self.sent.take() {
            self.shared
                .peers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(sent);
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

    fn tls_handshake(&mut self, took: Duration) {
        self.shared.recorder.with(|i| i.record(Latency::Tls, took));
    }

    fn upgraded(&mut self, took: Duration) {
        self.shared
            .recorder
            .with(|i| i.record(Latency::Upgrade, took));
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
        let env = match self.extractor.classify(payload) {
            Class::Data(env) => env,
            Class::Control => {
                self.shared.recorder.example(true, payload);
                self.control();
                return;
            }
            Class::Other if self.extractor.strict => {
                self.shared.recorder.error(
                    ErrorKind::Protocol,
                    "a message that is not a stampede envelope",
                );
                return;
            }
            Class::Other => {
                self.shared.recorder.example(false, payload);
                self.shared
                    .recorder
                    .with(|i| i.add(Count::OtherMessages, 1));
                return;
            }
        };
        if env.channel != self.ledger.channel {
            self.shared
                .recorder
                .error(ErrorKind::Protocol, "an event from another channel");
            return;
        }
        let clock = self.shared.clock;
        // An envelope from the future, or with an absurd sequence number,
        // is garbage that merely looks like one.
        if env.sent_ns > clock.ns(at) || env.seq >= MAX_SEQ {
            self.shared.recorder.error(
                ErrorKind::Protocol,
                "an envelope with an impossible sequence number or time",
            );
            return;
        }
        if peer_of(env.seq) == Some(self.who.client) {
            // Its own message, relayed back by a server that sends a room's
            // messages to every member: not expected, not a delivery.
            return;
        }
        if self.subscribed_ns.is_none_or(|s| env.sent_ns < s) {
            // Replayed from before this client subscribed (a server that
            // starts pollers a little in the past): neither expected nor a
            // delivery latency of this client, and not in its ledger (with a
            // fixed channel prefix it may even be a previous run's event).
            return;
        }
        match self.ledger.receive(env.seq) {
            Receipt::Duplicate => self.shared.recorder.with(|i| i.add(Count::Duplicates, 1)),
            Receipt::New { .. } => {
                let latency = Duration::from_nanos(clock.ns(at).saturating_sub(env.sent_ns));
                let first = (!self.first_event_seen).then(|| at - self.first_attempt);
                self.first_event_seen = true;
                let back = match &mut self.storm {
                    Some((storm_at, state @ StormState::Resubscribed)) => {
                        *state = StormState::Done;
                        Some(at.saturating_duration_since(*storm_at))
                    }
                    _ => None,
                };
                self.shared.recorder.with(|i| {
                    i.record(Latency::Delivery, latency);
                    if let Some(slot) = self.room_slot {
                        i.record_room(slot, latency);
                    }
                    i.add(Count::Deliveries, 1);
                    if let Some(f) = first {
                        i.record(Latency::FirstEvent, f);
                    }
                    if let Some(b) = back {
                        i.record(Latency::StormReceiving, b);
                    }
                });
            }
        }
    }

    fn request(&mut self, s: RequestSample) {
        self.shared.recorder.with(|i| {
            i.record(
                Latency::Request,
                s.done.saturating_duration_since(s.intended),
            );
            i.record(
                Latency::RequestUncorrected,
                s.done.saturating_duration_since(s.sent),
            );
            i.add(Count::Requests, 1);
            if s.empty {
                i.add(Count::EmptyResponses, 1);
            }
            if let Some(c) = s.status.and_then(Count::status_class) {
                i.add(c, 1);
            }
        });
    }

    fn server_timeout(&mut self) {
        self.shared
            .recorder
            .with(|i| i.add(Count::ServerTimeouts, 1));
    }

    fn control(&mut self) {
        self.shared
            .recorder
            .with(|i| i.add(Count::ControlMessages, 1));
    }

    fn retried(&mut self) {
        self.shared.recorder.with(|i| i.add(Count::Retries, 1));
    }

    fn fault(&mut self, fault: Fault) {
        self.shared.recorder.error(fault.kind, &fault.detail);
    }

    fn unconfirmed(&mut self) {
        // As with a subscribe the server never answers: the client was
        // meant to receive from its attempt on.
        self.ledger.open(self.attempt_ns);
        self.subscribed_ns.get_or_insert(self.attempt_ns);
    }

    fn publish_acked(&mut self, ticket: u64, at: Instant) {
        let Some(sent_ns) = self
            .sent
            .as_ref()
            .and_then(|l| l.log.sent_ns.get(ticket as usize))
        else {
            return;
        };
        let took = Duration::from_nanos(self.shared.clock.ns(at).saturating_sub(*sent_ns));
        self.shared.recorder.with(|i| {
            i.record(Latency::PublishAck, took);
            i.add(Count::PublishesAcked, 1);
        });
    }

    fn publish_refused(&mut self, ticket: u64, why: Fault) {
        if let Some(log) = self.sent.as_mut() {
            if (ticket as usize) < log.log.sent_ns.len() && !log.log.failed.contains(&ticket) {
                log.log.failed.push(ticket);
            }
        }
        self.shared
            .recorder
            .with(|i| i.add(Count::PublishesFailed, 1));
        self.shared.recorder.error(why.kind, &why.detail);
    }

    fn who(&self) -> Option<&crate::identity::Who> {
        Some(&self.who)
    }
}

/// Runs `fut` unless the storm instant (if any) comes first: `None` then.
async fn or_storm<T>(
    storm: Option<Instant>,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    match storm {
        None => Some(fut.await),
        // Boxed: a `Sleep` in place would be reserved in every client's
        // task (it is 128-byte aligned and padded), storm or not.
        Some(at) => tokio::select! {
            biased;
            _ = Box::pin(tokio::time::sleep_until(at.into())) => None,
            v = fut => Some(v),
        },
    }
}

/// Runs `fut` unless `due` (if any) comes first: `None` then.
async fn or_due<T>(due: Option<Instant>, fut: impl std::future::Future<Output = T>) -> Option<T> {
    match due {
        None => Some(fut.await),
        // Boxed: the sleep would otherwise be reserved in every client's
        // task, publishing or not.
        Some(at) => tokio::select! {
            biased;
            _ = Box::pin(tokio::time::sleep_until(at.into())) => None,
            v = fut => Some(v),
        },
    }
}

/// Sends the client's next message to its room on its own session: an
/// envelope numbered `peer_seq(client, k)` and stamped with its intended
/// instant (so a late send shows in the receivers' latency).
async fn publish_own<T: Transport>(
    session: &mut T,
    sink: &mut ClientSink<'_>,
    p: &mut Publishing,
) -> Result<(), Fault> {
    let intended = p.next_at;
    p.next_at += p.spec.every;
    let Some(log) = sink.sent.as_mut() else {
        return Ok(());
    };
    let k = log.log.sent_ns.len() as u64;
    if k >= PEER_MAX_MESSAGES {
        return Ok(());
    }
    let sent_ns = sink.shared.clock.ns(intended);
    let text = crate::envelope::Envelope {
        channel: log.channel,
        seq: peer_seq(log.sender, k),
        sent_ns,
    }
    .encode(p.spec.bytes);
    log.log.sent_ns.push(sent_ns);
    let r = session.send(text, k).await;
    if r.is_err() {
        if let Some(log) = sink.sent.as_mut() {
            log.log.failed.push(k);
        }
        sink.shared
            .recorder
            .with(|i| i.add(Count::PublishesFailed, 1));
    }
    r
}

/// A leaving client expects nothing published after it left, but keeps
/// its connection this much longer so events already in flight arrive
/// instead of counting as lost.
const LEAVE_GRACE: Duration = Duration::from_millis(500);

/// At the phase end, how long a client waits for answers to exchanges
/// still in flight before closing: within the runner's close grace, with
/// a second left for the close handshake.
const EXCHANGE_DRAIN: Duration = Duration::from_millis(1500);

/// Sequence numbers at or above this cannot come from our publisher.
const MAX_SEQ: u64 = 1 << 48;

/// Runs one client until `cancel`; its ledger goes to the group when it ends.
pub async fn run<T: Transport>(
    spec: ClientSpec,
    shared: Arc<GroupShared>,
    cancel: CancellationToken,
) {
    let clock = shared.clock;
    // A client that leaves early stops on its own token; the timer ends
    // with the phase at the latest.
    let cancel = match spec.stop_at {
        None => cancel,
        Some(at) => {
            let own = cancel.child_token();
            let timer = own.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = timer.cancelled() => {}
                    _ = tokio::time::sleep_until((at + LEAVE_GRACE).into()) => timer.cancel(),
                }
            });
            own
        }
    };
    let token = cancel.clone();
    let mut cancel = ClientCancel::new(cancel);
    if let Wake::Cancelled = cancel
        .or_cancel(tokio::time::sleep_until(spec.start_at.into()))
        .await
    {
        return;
    }
    let io = Arc::new(IoCounters::default());
    let own_session = spec.publish_endpoint.is_none();
    // Publishing over HTTP runs beside the session (see `via_http`); the
    // client waits for it at the end so its log is in before settling.
    let via_http = spec
        .publish
        .zip(spec.publish_endpoint.clone())
        .map(|(publish, endpoint)| {
            tokio::spawn(super::via_http::run(
                super::via_http::Member {
                    endpoint,
                    channel_name: spec.session.channel.clone(),
                    room: spec.channel,
                    sender: spec.who.client,
                    publish,
                },
                shared.clone(),
                token.clone(),
            ))
        });
    let mut sink = ClientSink {
        shared: &shared,
        io: io.clone(),
        ledger: Ledger::for_client(spec.channel, spec.who.client),
        first_attempt: Instant::now(),
        first_event_seen: false,
        open_conns: 0,
        io_seen: (0, 0),
        subscribed_ns: None,
        leave_ns: spec.stop_at.map(|at| clock.ns(at)),
        // A client joining after the storm has nothing to reconnect from.
        storm: spec
            .storm
            .filter(|s| s.at > spec.start_at)
            .map(|s| (s.at, StormState::Before)),
        extractor: spec.session.extractor.clone(),
        attempt_ns: 0,
        who: spec.who.clone(),
        sent: spec.publish.filter(|_| own_session).map(|_| PeerLog {
            channel: spec.channel,
            sender: spec.who.client,
            log: Default::default(),
        }),
        room_slot: spec.room_slot,
    };
    let mut publishing = spec.publish.filter(|_| own_session).map(|p| Publishing {
        next_at: p.first,
        spec: p,
    });
    if let Some(token) = &spec.templates.token {
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let vars = crate::identity::template::Vars {
            channel: &spec.session.channel,
            who: &sink.who,
        };
        match token.sign(&vars, now_s) {
            Ok(t) => {
                crate::secrets::register_as("{token}", &t);
                sink.who.token = Some(t.into());
            }
            Err(m) => {
                // The plan signed one already: only a secret unset since
                // can get here, and no attempt could succeed without it.
                sink.fault(Fault::new(ErrorKind::Other, m));
                sink.ledger.open(clock.now_ns());
                sink.subscribed_ns = Some(clock.now_ns());
                cancel.or_cancel(std::future::pending::<()>()).await;
                drop(sink);
                if let Some(h) = via_http {
                    let _ = h.await;
                }
                return;
            }
        }
    }
    let personal = spec.templates.personal();
    // Closing its own connection at the storm is due once.
    let mut storm_close = spec
        .storm
        .filter(|s| s.close && s.at > spec.start_at)
        .map(|s| s.at);
    let mut pacer = spec
        .interval
        .map(|p| Pacer::new(spec.start_at + spec.poll_offset, p));
    let mut cursor: Option<String> = None;
    // A poll that was due when the storm closed the connection: sent first
    // on the new one, so the storm does not also cost a poll interval.
    let mut due: Option<Instant> = None;
    let mut rng = crate::rng::Rng::new();
    let mut failures: u32 = 0;
    let mut sessions: u64 = 0;
    let mut attempts: u64 = 0;
    let gave_up = 'client: loop {
        let attempt_ns = clock.now_ns();
        sink.attempt_ns = attempt_ns;
        sink.who.session = attempts;
        attempts += 1;
        let session_spec = if personal {
            match spec.templates.session_for(&spec.session, &sink.who) {
                Ok(s) => Arc::new(s),
                Err(m) => {
                    sink.fault(Fault::new(ErrorKind::Other, m));
                    sink.ledger.open(attempt_ns);
                    sink.subscribed_ns.get_or_insert(attempt_ns);
                    break 'client true;
                }
            }
        } else {
            spec.session.clone()
        };
        let opened = cancel
            .or_cancel(
                // Boxed: opening (connect, TLS, handshake) is the largest state
                // of a session, and in place it would be reserved inside every
                // client's task for the whole run (measured: ~5 KiB per SSE
                // client, ~7 KiB per WebSocket client).
                Box::pin(T::open(&session_spec, &io, cursor.clone(), &mut sink)),
            )
            .await;
        sink.flush_io();
        let mut session = match opened {
            Wake::Cancelled => {
                if sink.subscribed_ns.is_none() {
                    // A subscribe the server never answered (a wedged
                    // handler) is not silence: the client was meant to
                    // receive from its first attempt on, and the wait is a
                    // timeout.
                    let waited = clock.now_ns().saturating_sub(attempt_ns) as f64 / 1e9;
                    sink.fault(Fault::new(
                        ErrorKind::Timeout,
                        format!(
                            "the subscription was not confirmed before the phase ended \
                             (waited {waited:.1} s)"
                        ),
                    ));
                    sink.ledger.open(attempt_ns);
                    sink.subscribed_ns = Some(attempt_ns);
                }
                break 'client false;
            }
            Wake::Ready(Ok(s)) => s,
            Wake::Ready(Err(f)) => {
                let asked = f.retry_after;
                sink.fault(f);
                sink.settle_connections();
                // The client meant to be subscribed from here on: what it
                // misses while it cannot connect is lost, not unexpected.
                sink.ledger.open(attempt_ns);
                sink.subscribed_ns.get_or_insert(attempt_ns);
                failures += 1;
                if failures > spec.reconnect.max_attempts {
                    break 'client true;
                }
                let wait = honor(backoff(&spec.reconnect, failures, None, &mut rng), asked);
                if let Wake::Cancelled = cancel.or_cancel(tokio::time::sleep(wait)).await {
                    break 'client false;
                }
                continue;
            }
        };
        failures = 0;
        if let Some(p) = publishing.as_mut() {
            p.skip_missed(Instant::now());
        }
        sink.storm_session_opened(Instant::now());
        if sessions > 0 {
            shared.recorder.with(|i| i.add(Count::Reconnects, 1));
        }
        sessions += 1;
        // Opens once: the window stays open across reconnects, so events
        // published during a gap the transport cannot resume are lost.
        let now_ns = clock.now_ns();
        sink.ledger.open(now_ns);
        sink.subscribed_ns.get_or_insert(now_ns);
        let mut asked: Option<Duration> = None;
        let ended_by_server = loop {
            let intended = match pacer.as_mut() {
                Some(p) => {
                    if !spec.catch_up {
                        sink.missed_polls(p, Instant::now());
                    }
                    let at = due.take().unwrap_or_else(|| p.next_at());
                    // Until the tick, the session observes exchanges still
                    // in flight (ws-rpc) or just waits.
                    match cancel
                        .or_cancel(or_storm(storm_close, session.idle(at, &mut sink)))
                        .await
                    {
                        Wake::Cancelled => {
                            session
                                .drain(Instant::now() + EXCHANGE_DRAIN, &mut sink)
                                .await;
                            session.close().await;
                            break 'client false;
                        }
                        Wake::Ready(None) => {
                            storm_close = None;
                            due = Some(at);
                            break true;
                        }
                        Wake::Ready(Some(Ok(Step::Continue))) => {}
                        // The tick is sent on the next session, late, and
                        // timed from its intended instant.
                        Wake::Ready(Some(Ok(Step::Ended))) => {
                            due = Some(at);
                            break true;
                        }
                        Wake::Ready(Some(Err(f))) => {
                            due = Some(at);
                            asked = f.retry_after;
                            sink.fault(f);
                            break false;
                        }
                    }
                    at
                }
                None => Instant::now(),
            };
            // Request and echo exchanges end by themselves (each is bounded
            // by request_timeout), so they need not race the token; storms
            // drop subscribers only.
            let step = if spec.catch_up && spec.stop_at.is_none() {
                if shared.stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    Wake::Cancelled
                } else {
                    Wake::Ready(Some(session.next(intended, &mut sink).await))
                }
            } else {
                let due = publishing.as_ref().and_then(Publishing::due);
                let raced = {
                    // Pinned here, once: the wrappers below then hold a
                    // pointer to it. Passed by value, each wrapper's state
                    // kept its own copy of the session's `next` future
                    // (measured with size_of_val: a client's task was 5.6
                    // KiB for WebSocket and 6.0 for SSE, now 3.6 and 3.3).
                    let next = std::pin::pin!(session.next(intended, &mut sink));
                    cancel
                        .or_cancel(or_storm(storm_close, or_due(due, next)))
                        .await
                };
                match raced {
                    Wake::Ready(Some(None)) => {
                        // One of its own messages is due.
                        if let Some(p) = publishing.as_mut() {
                            if let Err(f) = Box::pin(publish_own(&mut session, &mut sink, p)).await
                            {
                                sink.fault(f);
                                break false;
                            }
                        }
                        continue;
                    }
                    Wake::Ready(Some(Some(r))) => Wake::Ready(Some(r)),
                    Wake::Ready(None) => Wake::Ready(None),
                    Wake::Cancelled => Wake::Cancelled,
                }
            };
            sink.flush_io();
            match step {
                Wake::Cancelled => {
                    session
                        .drain(Instant::now() + EXCHANGE_DRAIN, &mut sink)
                        .await;
                    session.close().await;
                    sink.flush_io();
                    break 'client false;
                }
                // The storm: this client drops its connection, as if the
                // server had, and reconnects by its policy.
                Wake::Ready(None) => {
                    storm_close = None;
                    break true;
                }
                Wake::Ready(Some(Ok(Step::Continue))) => {}
                Wake::Ready(Some(Ok(Step::Ended))) => break true,
                Wake::Ready(Some(Err(f))) => {
                    asked = f.retry_after;
                    sink.fault(f);
                    break false;
                }
            }
        };
        cursor = session.cursor();
        let hint = session.retry_hint();
        drop(session);
        sink.settle_connections();
        sink.storm_session_ended(Instant::now());
        if !ended_by_server {
            failures += 1;
            if failures > spec.reconnect.max_attempts {
                break 'client true;
            }
        }
        let wait = honor(backoff(&spec.reconnect, failures, hint, &mut rng), asked);
        if let Wake::Cancelled = cancel.or_cancel(tokio::time::sleep(wait)).await {
            break 'client false;
        }
    };
    if gave_up {
        // A client that gave up still counts as subscribed until the phase
        // ends: everything published meanwhile is lost to it.
        cancel.or_cancel(std::future::pending::<()>()).await;
    }
    drop(sink);
    if let Some(h) = via_http {
        let _ = h.await;
    }
}

/// Exponential backoff after `failures` failures in a row; a server hint
/// (SSE `retry:`) replaces the base. With `jitter` j the wait is drawn from
/// `[(1 − j) × backoff, backoff]`, so clients dropped together do not all
/// come back in the same millisecond.
fn backoff(
    policy: &ReconnectPlan,
    failures: u32,
    hint: Option<Duration>,
    rng: &mut crate::rng::Rng,
) -> Duration {
    let base = hint.unwrap_or(policy.backoff);
    let wait = if failures == 0 {
        base.min(policy.max_backoff)
    } else {
        let factor = 1u32 << (failures - 1).min(16);
        base.saturating_mul(factor).min(policy.max_backoff)
    };
    if policy.jitter > 0.0 {
        wait.mul_f64(1.0 - policy.jitter.min(1.0) * rng.unit())
    } else {
        wait
    }
}

/// A server's `Retry-After` is a floor under the backoff.
fn honor(wait: Duration, asked: Option<Duration>) -> Duration {
    asked.map_or(wait, |a| wait.max(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let mut p = ReconnectPlan {
            max_attempts: 5,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            jitter: 0.0,
        };
        let rng = &mut crate::rng::Rng::seeded(7);
        assert_eq!(backoff(&p, 0, None, rng), Duration::from_millis(100));
        assert_eq!(backoff(&p, 1, None, rng), Duration::from_millis(100));
        assert_eq!(backoff(&p, 3, None, rng), Duration::from_millis(400));
        assert_eq!(backoff(&p, 30, None, rng), Duration::from_secs(1));
        assert_eq!(
            backoff(&p, 1, Some(Duration::from_millis(10)), rng),
            Duration::from_millis(10)
        );
        p.jitter = 0.5;
        let waits: Vec<Duration> = (0..100).map(|_| backoff(&p, 3, None, rng)).collect();
        assert!(waits
            .iter()
            .all(|w| *w >= Duration::from_millis(200) && *w <= Duration::from_millis(400)));
        assert!(waits.iter().any(|w| *w != waits[0]), "jitter varies");
    }

    #[test]
    fn retry_after_is_a_floor() {
        let s = Duration::from_secs;
        assert_eq!(honor(s(1), Some(s(3))), s(3));
        assert_eq!(honor(s(5), Some(s(3))), s(5));
        assert_eq!(honor(s(1), None), s(1));
    }
}
