//! Runs one phase: starts the publisher and the phase's client groups (ramped
//! over `ramp_up`), collects every group's interval once per second (and at
//! the warm-up, hold and drain boundaries, so no interval straddles one),
//! then stops clients, settles ledgers and reports. The caller turns ticks
//! into files; this module writes nothing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::client::{self, ClientSpec, ClientStorm, GroupShared};
use super::shape::{self, Stay};
use super::window::{boundaries, settle, Window};
use crate::clock::Clock;
use crate::metrics::{GroupRecorder, Interval, PublishLog, Tally};
use crate::plan::{GroupPlan, Plan, StormVia};
use crate::publish::{self, PublishReport, PublishSpec};
use crate::shutdown::{Shutdown, StopReason};
use crate::transport::{KindVisitor, SessionSpec, Transport};

/// How long clients get to close politely when a phase ends.
const CLOSE_GRACE: Duration = Duration::from_secs(3);
/// Longest drain after Ctrl-C (a second Ctrl-C exits at once anyway).
pub(super) const INTERRUPT_DRAIN: Duration = Duration::from_secs(2);

/// One phase to run.
#[derive(Debug, Clone)]
pub struct PhaseSpec {
    /// Phase number (0-based).
    pub index: usize,
    /// Indices into `plan.groups`.
    pub groups: Vec<usize>,
    /// Channel names (one per channel this process publishes on), fresh
    /// per phase.
    pub channels: Vec<String>,
    /// The scenario's number of each of `channels` (all of them, unless
    /// sharded: see [`crate::shard`]).
    pub channel_ids: Vec<u32>,
    /// Resolved target address.
    pub addr: SocketAddr,
    /// `Host` header.
    pub authority: String,
    /// Target path prefix.
    pub base_path: String,
    /// Local addresses client connections come from.
    pub sources: Arc<crate::net::Sources>,
    /// The phase's rooms and their size buckets (`rooms` scenarios only).
    pub rooms: Option<Arc<crate::rooms::PhaseRooms>>,
}

/// One collected interval of one group.
#[derive(Debug)]
pub struct Tick<'a> {
    /// Phase number.
    pub phase: usize,
    /// Index into `plan.groups`.
    pub group: usize,
    /// Interval start, run-clock ns.
    pub start_ns: u64,
    /// Interval end, run-clock ns.
    pub end_ns: u64,
    /// True when the interval belongs to the measured window.
    pub measured: bool,
    /// Open connections at the end of the interval.
    pub connections: i64,
    /// The interval's samples.
    pub interval: &'a Interval,
}

/// Per-group outcome of a phase.
#[derive(Debug)]
pub struct GroupPhase {
    /// Index into `plan.groups`.
    pub group: usize,
    /// Settled accounting and the events published in the measured window
    /// on this group's channels (None for groups that do not subscribe).
    pub accounting: Option<(Tally, u64)>,
    /// The same accounting per room-size bucket slot (empty without rooms).
    pub rooms: Vec<Tally>,
    /// The recorder (for first-error details).
    pub recorder: Arc<GroupRecorder>,
}

/// Outcome of a phase.
#[derive(Debug)]
pub struct PhaseReport {
    /// Per group.
    pub groups: Vec<GroupPhase>,
    /// Publisher measurements.
    pub publish: PublishReport,
    /// Phase start, run-clock ns.
    pub start_ns: u64,
    /// Measured window start (after ramp-up and warm-up).
    pub measure_from_ns: u64,
    /// Publish window end used for accounting.
    pub measure_to_ns: u64,
    /// Phase end.
    pub end_ns: u64,
    /// True when the phase was cut short.
    pub stopped_early: bool,
    /// `[storm]` via the target: why `POST /control/drop` failed, if it did.
    pub storm_error: Option<String>,
    /// How late the interval sampler took its latest sample: intervals are
    /// labelled by their planned boundaries, so a sampler this late put
    /// samples in the wrong interval (and possibly the wrong window).
    pub sampler_late: Duration,
}

struct Spawner<'a> {
    group: &'a GroupPlan,
    spec: &'a PhaseSpec,
    plan: &'a Plan,
    shared: Arc<GroupShared>,
    cancel: tokio_util::sync::CancellationToken,
    start: Instant,
    tasks: &'a mut JoinSet<()>,
}

impl KindVisitor for Spawner<'_> {
    type Output = ();

    fn visit<T: Transport>(self) {
        let g = self.group;
        let profile = &self.plan.profile;
        let sections = Arc::new(profile.sections.clone());
        let extractor = Arc::new(profile.extractor());
        let session = |channel: &str, path: String| {
            Arc::new(SessionSpec {
                addr: self.spec.addr,
                authority: self.spec.authority.clone(),
                path: format!("{}{path}", self.spec.base_path),
                channel: channel.to_string(),
                group: g.name.as_str().into(),
                profile: sections.clone(),
                extractor: extractor.clone(),
                headers: g.wire_headers.clone(),
                params: g.params.clone(),
                connect_timeout: self.plan.connect_timeout,
                sources: self.spec.sources.clone(),
                script: g.templates.script.clone(),
            })
        };
        let sessions: Vec<Arc<SessionSpec>> = if g.transport.subscribes() {
            let template = profile.url_for(g.transport).unwrap_or_default();
            self.spec
                .channels
                .iter()
                .map(|ch| session(ch, crate::profile::fill(template, ch)))
                .collect()
        } else {
            vec![session("", g.path.clone().unwrap_or_default())]
        };
        // Clients keep their scenario-wide numbers in a shard, so start
        // and poll offsets and channels are those of the single-process run.
        let shard = self.plan.shard.unwrap_or(crate::shard::Shard::WHOLE);
        let total = g.total_clients();
        let scenario_channels = if g.transport.subscribes() {
            self.plan.publisher.as_ref().map_or(0, |p| p.channels)
        } else {
            0
        };
        let mine = |i: u64| {
            let room = g.room_of(i, scenario_channels);
            shard.owner_in(i, room, scenario_channels) == shard.index
        };
        let group_name: Arc<str> = g.name.as_str().into();
        // One endpoint description for the group's members that publish
        // over HTTP; each member opens its own connection to it.
        let via_http = g
            .publish
            .filter(|p| p.via == crate::plan::PublishVia::Http)
            .map(|_| {
                let http2 = self.plan.publisher.as_ref().is_some_and(|p| p.http2);
                Arc::new(endpoint(self.plan, self.spec, http2))
            });
        let identity = &self.plan.identity;
        // Without stages, every client stays from its ramp-up slot on (or
        // its arrival, for its sessions: see `Turnover::stays_of`).
        let stays: Vec<Stay> = if g.stages.is_empty() {
            let horizon = self.plan.ramp_up + self.plan.warmup + self.plan.duration;
            (0..total)
                .filter(|&i| mine(i))
                .flat_map(|i| g.turnover.stays_of(i, total, self.plan.ramp_up, horizon))
                .collect()
        } else {
            shape::stays(&g.stages)
        };
        for stay in stays.into_iter().filter(|s| mine(s.index)) {
            let k = stay.index;
            let frac = k as f64 / total as f64;
            let channel = if scenario_channels == 0 {
                0
            } else {
                let id = g.room_of(k, scenario_channels);
                self.spec
                    .channel_ids
                    .iter()
                    .position(|&c| c == id)
                    .unwrap_or(0)
            };
            let who = crate::identity::Who {
                client: g.first_client + k,
                group: group_name.clone(),
                shard: shard.index,
                session: 0,
                data: identity.row(g.first_client + k),
                token: None,
            };
            let publish = g.publish.filter(|_| g.transport.subscribes()).map(|p| {
                let every = p.every();
                client::ClientPublish {
                    // Spread over the interval by client number, as poll
                    // offsets are: the same instants in every shard.
                    first: self.start + stay.join + every.mul_f64(frac),
                    every,
                    until: self.start + self.plan.ramp_up + self.plan.warmup + self.plan.duration,
                    bytes: p.payload_bytes,
                }
            });
            let room_slot = match (&self.spec.rooms, &g.rooms) {
                (Some(r), Some(_)) => r.slot(g.room_of(k, scenario_channels)),
                _ => None,
            };
            let spec = ClientSpec {
                room_slot,
                publish,
                publish_endpoint: publish.and(via_http.clone()),
                who,
                templates: g.templates.clone(),
                number: k,
                channel: channel as u32,
                session: sessions[channel].clone(),
                interval: g.interval,
                start_at: self.start + stay.join,
                stop_at: stay.leave.map(|l| self.start + l),
                poll_offset: g.interval.map_or(Duration::ZERO, |p| p.mul_f64(frac)),
                reconnect: g.reconnect.clone(),
                catch_up: g.transport.catches_up(),
                // Request and echo load has no subscription to drop.
                storm: self
                    .plan
                    .storm
                    .filter(|_| g.transport.subscribes())
                    .map(|st| ClientStorm {
                        at: self.start + st.at,
                        close: st.via == StormVia::Client,
                    }),
            };
            self.tasks.spawn(client::run::<T>(
                spec,
                self.shared.clone(),
                self.cancel.clone(),
            ));
        }
    }
}

/// Runs one phase, calling `on_tick` for every collected interval.
pub async fn run_phase(
    plan: &Plan,
    spec: &PhaseSpec,
    clock: Clock,
    shutdown: &Shutdown,
    shards: usize,
    mut on_tick: impl FnMut(&Tick<'_>),
) -> PhaseReport {
    let start = Instant::now();
    let measure_from = start + plan.ramp_up + plan.warmup;
    let publish_until = measure_from + plan.duration;
    let subscribes = spec
        .groups
        .iter()
        .any(|&g| plan.groups[g].transport.subscribes());
    // Only published events need time to arrive.
    let drain_until = publish_until
        + if subscribes {
            plan.drain
        } else {
            Duration::ZERO
        };

    // Independent of the run's shutdown token: on Ctrl-C clients keep
    // receiving for a short drain while publishing stops at once.
    let clients_token = tokio_util::sync::CancellationToken::new();
    let publish_stop = shutdown.token().child_token();
    let publisher = if subscribes {
        spawn_publisher(
            plan,
            spec,
            clock,
            (start, publish_until),
            &publish_stop,
            shutdown,
        )
    } else {
        None
    };

    let storm_drop = spawn_storm_drop(plan, spec, start, shutdown, subscribes);

    let (mut tasks, shared) = spawn_groups(plan, spec, clock, start, shards, &clients_token);

    let boundaries = boundaries(start, measure_from, publish_until, drain_until);

    // `hold_end`: the end of the hold, or when the run was cut short.
    let collect =
        |from: Instant, to: Instant, hold_end: Instant, on_tick: &mut dyn FnMut(&Tick<'_>)| {
            for (gi, s) in &shared {
                // Request and echo load is measured over the hold only; the
                // drain is for subscribers' in-flight events.
                let measured = from >= measure_from
                    && (plan.groups[*gi].transport.subscribes() || to <= hold_end);
                let interval = s.recorder.take();
                on_tick(&Tick {
                    phase: spec.index,
                    group: *gi,
                    start_ns: clock.ns(from),
                    end_ns: clock.ns(to),
                    measured,
                    connections: s.recorder.connections(),
                    interval: &interval,
                });
            }
        };

    let mut last = start;
    let mut stopped_early = false;
    let mut sampler_late = Duration::ZERO;
    for b in boundaries {
        tokio::select! {
            _ = shutdown.token().cancelled() => { stopped_early = true; break; }
            _ = tokio::time::sleep_until(b.into()) => {}
        }
        sampler_late = sampler_late.max(Instant::now().saturating_duration_since(b));
        collect(last, b, publish_until, &mut on_tick);
        last = b;
    }
    let stopped_at = Instant::now();

    // Stop publishing (if still going), then the clients.
    publish_stop.cancel();
    if stopped_early && subscribes && !matches!(shutdown.reason(), Some(StopReason::Fatal(_))) {
        // Let events already published arrive before the clients stop.
        tokio::time::sleep(plan.drain.min(INTERRUPT_DRAIN)).await;
    }
    let (publish, storm_error) = finish_publishing(publisher, storm_drop).await;
    stop_clients(&shared, &clients_token, &mut tasks).await;
    let end = Instant::now();
    // Samples taken while closing belong to the last interval.
    if end > last {
        let hold_end = if stopped_early {
            stopped_at
        } else {
            publish_until
        };
        collect(last, end, hold_end, &mut on_tick);
    }

    let window = Window {
        measure_from,
        publish_until,
        stopped_at,
        stopped_early,
        subscribes,
    };
    let (from_ns, to_ns, groups) = settle(plan, spec, clock, &window, shared, &publish);
    PhaseReport {
        groups,
        publish,
        start_ns: clock.ns(start),
        measure_from_ns: from_ns,
        measure_to_ns: to_ns,
        end_ns: clock.ns(end),
        stopped_early,
        storm_error,
        sampler_late,
    }
}

/// Stops every client of the phase: marks the groups stopped, cancels the
/// clients, gives them [`CLOSE_GRACE`] to close, then aborts the rest.
async fn stop_clients(
    shared: &[(usize, Arc<GroupShared>)],
    clients_token: &tokio_util::sync::CancellationToken,
    tasks: &mut JoinSet<()>,
) {
    for (_, s) in shared {
        s.stopped.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    clients_token.cancel();
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// One task per client of every group of the phase, with each group's
/// shared recorder and ledgers.
fn spawn_groups(
    plan: &Plan,
    spec: &PhaseSpec,
    clock: Clock,
    start: Instant,
    shards: usize,
    cancel: &tokio_util::sync::CancellationToken,
) -> (JoinSet<()>, Vec<(usize, Arc<GroupShared>)>) {
    let mut tasks = JoinSet::new();
    let mut shared = Vec::new();
    for &gi in &spec.groups {
        let s = Arc::new(GroupShared {
            recorder: Arc::new(GroupRecorder::new(shards)),
            ledgers: Mutex::new(Vec::new()),
            peers: Mutex::new(Vec::new()),
            clock,
            stopped: Default::default(),
        });
        let g = &plan.groups[gi];
        g.transport.visit(Spawner {
            group: g,
            spec,
            plan,
            shared: s.clone(),
            cancel: cancel.clone(),
            start,
            tasks: &mut tasks,
        });
        shared.push((gi, s));
    }
    (tasks, shared)
}

/// Waits for the publisher's report and the storm request's outcome.
async fn finish_publishing(
    publisher: Option<tokio::task::JoinHandle<PublishReport>>,
    storm_drop: Option<tokio::task::JoinHandle<Result<(), String>>>,
) -> (PublishReport, Option<String>) {
    let no_report = |why: Option<&str>| PublishReport {
        log: PublishLog::default(),
        latency: crate::metrics::recorder::new_histogram(),
        slip: crate::metrics::recorder::new_histogram(),
        errors: 0,
        first_error: why.map(str::to_string),
    };
    let storm_error = match storm_drop {
        None => None,
        Some(t) => match t.await {
            Ok(r) => r.err(),
            Err(_) => Some("the storm task failed".into()),
        },
    };
    let publish = match publisher {
        None => no_report(None),
        Some(p) => p
            .await
            .unwrap_or_else(|_| no_report(Some("publisher task failed"))),
    };
    (publish, storm_error)
}

/// Starts the publisher for a phase with subscribers, publishing from
/// `start` until `publish_until`.
fn spawn_publisher(
    plan: &Plan,
    spec: &PhaseSpec,
    clock: Clock,
    (start, publish_until): (Instant, Instant),
    publish_stop: &tokio_util::sync::CancellationToken,
    shutdown: &Shutdown,
) -> Option<tokio::task::JoinHandle<PublishReport>> {
    // Only the clients publish (`rate = 0` with a group that publishes).
    plan.publisher
        .as_ref()
        .filter(|p| p.rate_per_s > 0.0 || !p.stages.is_empty())
        .map(|p| {
            tokio::spawn(publish::run(
                PublishSpec {
                    endpoint: Arc::new(endpoint(plan, spec, p.http2)),
                    channels: spec.channels.clone(),
                    channel_ids: spec.channel_ids.clone(),
                    total_channels: p.channels,
                    schedule: p.schedule(),
                    payload_bytes: p.payload_bytes,
                },
                clock,
                start,
                publish_until,
                publish_stop.clone(),
                shutdown.clone(),
            ))
        })
}

/// The target's publish endpoint, as the profile's `[profile.publish]`
/// names it: the central publisher's, and room members' with `publish =
/// { via = "http" }`.
pub fn endpoint(plan: &Plan, spec: &PhaseSpec, http2: bool) -> publish::Endpoint {
    publish::Endpoint {
        addr: spec.addr,
        authority: spec.authority.clone(),
        base_path: spec.base_path.clone(),
        profile: plan.profile.publish.clone(),
        sections: Arc::new(plan.profile.sections.clone()),
        headers: plan.profile_headers.clone(),
        http2,
        tls: plan.tls_client.clone(),
    }
}

/// `[storm] via = "target"`: the reference server ends every stream at
/// the storm's instant (clients measure from that instant, not from when
/// the request landed).
fn spawn_storm_drop(
    plan: &Plan,
    spec: &PhaseSpec,
    start: Instant,
    shutdown: &Shutdown,
    subscribes: bool,
) -> Option<tokio::task::JoinHandle<Result<(), String>>> {
    plan.storm
        .filter(|st| st.via == StormVia::Target && subscribes)
        .map(|st| {
            let (addr, authority) = (spec.addr, spec.authority.clone());
            let stop = shutdown.token().child_token();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => Ok(()),
                    _ = tokio::time::sleep_until((start + st.at).into()) => {
                        drop_subscribers(addr, &authority).await
                    }
                }
            })
        })
}

/// Asks the reference server to end every open subscriber stream.
async fn drop_subscribers(addr: SocketAddr, authority: &str) -> Result<(), String> {
    use http_body_util::{BodyExt, Empty};
    let timeout = Duration::from_secs(5);
    let exchange = async {
        let (tcp, _) = crate::net::connect(addr, timeout)
            .await
            .map_err(|f| f.detail)?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .map_err(|e| e.to_string())?;
        let driver = tokio::spawn(conn);
        let req = http::Request::post("/control/drop")
            .header(http::header::HOST, authority)
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let _ = resp.into_body().collect().await;
        driver.abort();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("POST /control/drop answered {status}"))
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| "POST /control/drop timed out".to_string())?
}
