//! The validated, typed plan: the only configuration the runner and workers
//! see. Built from a `Scenario` plus command-line overrides; every check that
//! can fail names the scenario place (`file:line:column`) and the key.

use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use crate::profile::Profile;
use crate::scenario::{Mode, Scenario, Source, ThresholdSpec};
use crate::shard::Shard;
use crate::transport::{Params, TransportKind};
use crate::units::{opt_secs, secs};

mod group;
mod identity;
mod publisher;
mod shape;
pub mod sweep;
mod target;

pub use publisher::PublisherPlan;
pub use shape::{StormPlan, StormVia};
pub use target::{is_tls, parse_target, TargetPlan, TlsPlan};

/// Reconnect policy.
#[derive(Debug, Clone, Serialize)]
pub struct ReconnectPlan {
    /// Failed attempts in a row before the client gives up.
    pub max_attempts: u32,
    /// First backoff.
    #[serde(with = "secs")]
    pub backoff: Duration,
    /// Largest backoff.
    #[serde(with = "secs")]
    pub max_backoff: Duration,
    /// Fraction of each backoff drawn at random (0: none; 0.5: the wait is
    /// 50–100% of the backoff).
    pub jitter: f64,
}

/// One client group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupPlan {
    /// Unique label.
    pub name: String,
    /// Transport.
    pub transport: TransportKind,
    /// Clients.
    pub clients: u64,
    /// Interval polling: period of intended poll starts.
    #[serde(with = "opt_secs")]
    pub interval: Option<Duration>,
    /// Transport parameters.
    pub params: Params,
    /// Reconnect policy.
    pub reconnect: ReconnectPlan,
    /// Request / echo: exchanges per second over the group (None: closed model).
    pub rate_per_s: Option<f64>,
    /// Request / echo: the path, and for requests every path.
    pub path: Option<String>,
    /// Extra headers of this group as written (templates, never values).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Connected clients over time (empty: all `clients` spread over
    /// `ramp_up`). Each stage's `to` is a client count a shard divides.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<crate::schedule::shape::Stage>,
    /// Arrival rate, session lengths, churn (see [`crate::schedule::shape::Turnover`]).
    #[serde(skip_serializing_if = "crate::schedule::shape::Turnover::is_empty")]
    pub turnover: crate::schedule::shape::Turnover,
    /// Profile and group headers on the wire (secrets expanded; never
    /// serialized).
    #[serde(skip)]
    pub wire_headers: Arc<[(HeaderName, HeaderValue)]>,
    /// In a sharded run: the scenario's client count, of which `clients`
    /// run here (client numbers, offsets and channels are global).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_of: Option<u64>,
    /// Scenario-wide number of the group's first client (`{client}` is
    /// this plus the client's number in its group).
    #[serde(skip_serializing_if = "is_zero")]
    pub first_client: u64,
    /// The group's signed token, as written (never the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Arc<crate::identity::token::TokenPlan>>,
    /// The room of each client (by its number in the group) when
    /// `rooms` sizes them; round-robin (`k mod channels`) otherwise.
    #[serde(skip)]
    pub rooms: Option<Arc<GroupRooms>>,
    /// Clients publish to their rooms (`publish = { ... }`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<ClientPublishPlan>,
    /// Compiled templates (see [`crate::identity`]).
    #[serde(skip)]
    pub templates: Arc<crate::transport::personal::GroupTemplates>,
}

/// A group whose clients publish to their own rooms.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ClientPublishPlan {
    /// Messages per second per client.
    pub rate_per_s: f64,
    /// Message size in bytes.
    pub payload_bytes: usize,
    /// Where each client's messages go.
    pub via: PublishVia,
}

/// `publish.via`: how a room member sends its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishVia {
    /// On the client's own session (`Transport::send`).
    Same,
    /// To the target's publish endpoint (`[profile.publish]`), on a
    /// connection of the client's own.
    Http,
}

impl GroupPlan {
    /// True when the group's clients publish and the target acknowledges
    /// each publish, so the `publish-ack` latency has samples: `via =
    /// "http"` with a method that answers (HTTP, STOMP with `receipt`,
    /// MQTT QoS 1), or `via = "same"` on a transport whose protocol does.
    pub fn publish_acks(&self, profile: &crate::profile::Profile) -> bool {
        self.publish.is_some_and(|p| match p.via {
            PublishVia::Same => self.transport.acks_publish(&profile.sections),
            PublishVia::Http => profile.publish_acknowledged(),
        })
    }
}

impl ClientPublishPlan {
    /// Time between one client's messages.
    pub fn every(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate_per_s)
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where a group's clients sit when `rooms` sizes the rooms.
#[derive(Debug, Clone)]
pub struct GroupRooms {
    /// Room of each client, by its number in the group.
    pub of: Vec<u32>,
    /// Members of the group per room.
    pub sizes: Vec<u64>,
}

impl GroupPlan {
    /// The scenario's client count (all shards together).
    pub fn total_clients(&self) -> u64 {
        self.shard_of.unwrap_or(self.clients)
    }

    /// The room (scenario channel number) of client `k` (its number in
    /// the group) of `channels`.
    pub fn room_of(&self, k: u64, channels: u32) -> u32 {
        match &self.rooms {
            Some(r) => r.of.get(k as usize).copied().unwrap_or(0),
            None => (k % u64::from(channels.max(1))) as u32,
        }
    }

    /// True when at least one of the group's clients is in room `c`.
    pub fn uses_room(&self, c: u32, channels: u32) -> bool {
        match &self.rooms {
            Some(r) => r.sizes.get(c as usize).is_some_and(|&n| n > 0),
            None => u64::from(c) < self.total_clients() && c < channels,
        }
    }
}

/// A validated run plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Scenario name.
    pub name: String,
    /// Scenario description.
    pub description: Option<String>,
    /// Measured hold per phase.
    #[serde(rename = "duration_s", with = "secs")]
    pub duration: Duration,
    /// Excluded from the summary, kept in the time series.
    #[serde(rename = "warmup_s", with = "secs")]
    pub warmup: Duration,
    /// Time to start a group's clients.
    #[serde(rename = "ramp_up_s", with = "secs")]
    pub ramp_up: Duration,
    /// Time for in-flight events after publishing stops.
    #[serde(rename = "drain_s", with = "secs")]
    pub drain: Duration,
    /// Sequential phases or concurrent groups.
    pub mode: Mode,
    /// Target.
    pub target: TargetPlan,
    /// How the target speaks each transport.
    pub profile: Arc<Profile>,
    /// The profile's headers on the wire, for the publisher (never
    /// serialized).
    #[serde(skip)]
    pub profile_headers: Arc<[(HeaderName, HeaderValue)]>,
    /// Publisher (absent when no group subscribes).
    pub publisher: Option<PublisherPlan>,
    /// Groups.
    pub groups: Vec<GroupPlan>,
    /// TCP connect timeout.
    #[serde(rename = "connect_timeout_s", with = "secs")]
    pub connect_timeout: Duration,
    /// Reference server: delay added to every response and publish.
    #[serde(rename = "builtin_delay_s", with = "secs")]
    pub builtin_delay: Duration,
    /// Pass/fail conditions (for a sweep: those of every value, groups
    /// renamed).
    pub thresholds: Vec<crate::gate::threshold::Threshold>,
    /// Reference server: each publish waits this long per open subscriber
    /// stream (an artificial fan-out cost, so a capacity knee is known).
    #[serde(rename = "builtin_cost_per_conn_s", with = "secs")]
    pub builtin_cost_per_conn: Duration,
    /// `--target-pid`: a process on this machine whose CPU, memory and
    /// sockets are sampled as the target's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_pid: Option<i32>,
    /// `[sweep]`: one plan per value; absent for a plain scenario.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<sweep::SweepPlan>,
    /// The slice of the scenario this process runs (`--shard I/N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Local addresses client connections come from (`--local-addr`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub local_addrs: Vec<std::net::IpAddr>,
    /// Reference server: the faults it injects (`[faults]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faults: Option<crate::reference::fault::FaultPlan>,
    /// TLS settings of an `https://` / `wss://` target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsPlan>,
    /// The TLS client setup shared by clients and publisher (not serialized).
    #[serde(skip)]
    pub tls_client: Option<Arc<crate::net::Tls>>,
    /// A reconnect storm in every phase (`[storm]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storm: Option<StormPlan>,
    /// Rooms of different sizes (`rooms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<crate::rooms::RoomsPlan>,
    /// Data feeders (`[[data]]`).
    #[serde(skip_serializing_if = "crate::identity::Identity::is_empty")]
    pub identity: Arc<crate::identity::Identity>,
}

impl Plan {
    /// The target's path prefix (empty for the reference server).
    pub fn base_path(&self) -> &str {
        match &self.target {
            TargetPlan::Builtin => "",
            TargetPlan::Url { base_path, .. } => base_path,
        }
    }

    /// The plans to run one after another: the plan itself, or one plan
    /// per sweep value (each with its own groups and [`Plan::phases`]).
    pub fn steps(&self) -> Vec<&Plan> {
        match &self.sweep {
            Some(s) => s.values.iter().map(|v| &v.plan).collect(),
            None => vec![self],
        }
    }

    /// Cuts the plan down to one shard's clients (see [`crate::shard`]):
    /// client counts and request rates become this shard's share; the
    /// publisher's schedule stays the scenario's.
    pub fn apply_shard(&mut self, shard: Shard) {
        let channels = self.publisher.as_ref().map_or(0, |p| p.channels);
        for g in &mut self.groups {
            let total = g.total_clients();
            let ch = if g.transport.subscribes() {
                channels
            } else {
                0
            };
            g.clients = if ch == 0 {
                shard.client_count(total, 0)
            } else {
                (0..total)
                    .filter(|&k| shard.owner_in(k, g.room_of(k, ch), ch) == shard.index)
                    .count() as u64
            };
            g.shard_of = Some(total);
            // An open-model group's rate is the sum of its clients' rates.
            g.rate_per_s = g.rate_per_s.map(|r| r * g.clients as f64 / total as f64);
        }
        self.shard = Some(shard);
        if let Some(s) = &mut self.sweep {
            for v in &mut s.values {
                v.plan.apply_shard(shard);
            }
        }
    }

    /// A stable digest of the plan: shards of one scenario (same file,
    /// same overrides, same version) have the same digest before
    /// [`Plan::apply_shard`], which is how `merge` tells them apart from
    /// other runs.
    pub fn digest(&self) -> String {
        // FNV-1a: stable across builds, unlike std's hasher; no crate needed.
        let text = serde_json::to_string(self).unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes().chain(env!("CARGO_PKG_VERSION").bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// The phases of this plan (not of its sweep values: see
    /// [`Plan::steps`]): one per group (sequential) or one with all.
    pub fn phases(&self) -> Vec<Vec<usize>> {
        match self.mode {
            Mode::Sequential => (0..self.groups.len()).map(|i| vec![i]).collect(),
            Mode::Concurrent => vec![(0..self.groups.len()).collect()],
        }
    }

    /// Most connections open at once (clients of the busiest phase, plus
    /// the publisher's), over every sweep value: what sizes file
    /// descriptors on both sides.
    pub fn peak_connections(&self) -> u64 {
        self.steps()
            .iter()
            .flat_map(|step| {
                let publisher = step.publisher.as_ref().map_or(0, |p| u64::from(p.channels));
                step.phases().into_iter().map(move |groups| {
                    publisher + groups.iter().map(|&g| step.groups[g].clients).sum::<u64>()
                })
            })
            .max()
            .unwrap_or(0)
    }

    /// Wall time the plan needs, roughly, for progress display.
    pub fn expected_duration(&self) -> Duration {
        if let Some(s) = &self.sweep {
            return s.values.iter().map(|v| v.plan.expected_duration()).sum();
        }
        let phase = self.ramp_up + self.warmup + self.duration + self.drain;
        phase * self.phases().len() as u32
    }
}

/// Command-line overrides that are not `--set` paths.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--duration`.
    pub duration: Option<Duration>,
    /// `--target URL`.
    pub target: Option<String>,
    /// `--profile NAME`.
    pub profile: Option<String>,
    /// `--local-addr A,B,...`.
    pub local_addrs: Vec<std::net::IpAddr>,
    /// `--ca-file`: PEM certificates trusted besides the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// `--insecure`: no certificate verification.
    pub insecure: bool,
    /// `--target-pid PID`.
    pub target_pid: Option<i32>,
}

/// Validates a scenario into a plan: each piece converts itself, in the
/// order their errors are reported.
pub fn build(sc: &Scenario, src: &Source, ov: &Overrides) -> Result<Plan> {
    let (duration, warmup, ramp_up) = phase_lengths(sc, src, ov)?;
    let mut publisher = PublisherPlan::from_scenario(sc, src)?;
    let mut groups = group::groups_plan(sc, src)?;
    let rooms = rooms_plan(sc, src, publisher.as_mut(), &mut groups)?;
    let drain = drain_plan(sc, src, &groups)?;
    let target = TargetPlan::from_scenario(sc, src, ov)?;
    let (tls, tls_client) = target::tls_plan(&target, ov)?;
    if tls_client.is_some() {
        h2_needs_h2c(sc, src)?;
    }
    for g in &mut groups {
        g.params.tls = tls_client.clone();
    }
    let profile = target::resolve_profile(sc, src, ov, &target)?;
    target.prefix_request_paths(&mut groups);
    let profile_headers = group::wire_headers(sc, src, &profile, &mut groups)?;
    let all_clients = groups.iter().map(GroupPlan::total_clients).sum();
    let identity = identity::identity(sc, src, all_clients)?;
    let base_path = match &target {
        TargetPlan::Builtin => "",
        TargetPlan::Url { base_path, .. } => base_path.as_str(),
    };
    identity::compile_groups(sc, src, &profile, &identity, base_path, &mut groups)?;
    let thresholds = thresholds_plan(sc, src, &groups)?;
    let builtin = target::BuiltinOptions::from_scenario(sc, src, ov, &target)?;
    let storm = shape::storm_plan(sc, src, &target, ramp_up + warmup + duration)?;
    let mut plan = Plan {
        identity: Arc::new(identity),
        rooms,
        storm,
        tls,
        tls_client,
        faults: builtin.faults,
        sweep: None,
        shard: None,
        local_addrs: ov.local_addrs.clone(),
        builtin_cost_per_conn: builtin.cost_per_conn,
        target_pid: ov.target_pid,
        builtin_delay: builtin.delay,
        thresholds,
        name: sc.name.clone(),
        description: sc.description.clone(),
        duration,
        warmup,
        ramp_up,
        drain,
        mode: sc.mode,
        target,
        profile,
        profile_headers,
        publisher,
        groups,
        connect_timeout: Duration::from_secs(5),
    };
    // The scenario as written must plan on its own first: its errors keep
    // their own places. Then every sweep value is planned.
    plan.sweep = sweep::expand(sc, src, ov)?;
    if let Some(s) = &plan.sweep {
        plan.thresholds = sweep::merged_thresholds(s);
    }
    Ok(plan)
}

/// `rooms = { count, size, s, seed }`: the publisher's channel count, and
/// each subscribing group's room per client.
fn rooms_plan(
    sc: &Scenario,
    src: &Source,
    publisher: Option<&mut PublisherPlan>,
    groups: &mut [GroupPlan],
) -> Result<Option<crate::rooms::RoomsPlan>> {
    use crate::rooms::{RoomsPlan, Size};
    let Some(spec) = &sc.rooms else {
        return Ok(None);
    };
    let (r, span) = (spec.get_ref(), spec.span());
    let Some(publisher) = publisher else {
        return Err(src.error(
            span,
            "rooms",
            "rooms are channels: a [publisher] section is needed",
        ));
    };
    if r.count == 0 || r.count > 100_000 {
        return Err(src.error(span, "rooms.count", "must be in 1..=100000"));
    }
    if let Some(c) = sc
        .publisher
        .as_ref()
        .and_then(|p| p.get_ref().channels.as_ref())
    {
        if *c.get_ref() != r.count {
            return Err(src.error(
                c.span(),
                "publisher.channels",
                &format!(
                    "rooms.count ({}) sets the channels: leave `channels` out",
                    r.count
                ),
            ));
        }
    }
    let size = match r.size.as_deref().unwrap_or("fixed") {
        "fixed" => Size::Fixed,
        "uniform" => Size::Uniform,
        "zipf" => match r.s.unwrap_or(1.0) {
            s if s.is_finite() && s > 0.0 && s <= 10.0 => Size::Zipf { s },
            _ => return Err(src.error(span, "rooms.s", "must be in (0, 10]")),
        },
        other => {
            return Err(src.error(
                span,
                "rooms.size",
                &format!("{other:?}: write \"fixed\", \"uniform\" or \"zipf\""),
            ))
        }
    };
    if r.s.is_some() && !matches!(size, Size::Zipf { .. }) {
        return Err(src.error(span, "rooms.s", "only `size = \"zipf\"` takes `s`"));
    }
    let plan = RoomsPlan {
        count: r.count as u32,
        size,
        seed: r.seed.unwrap_or(0),
    };
    publisher.channels = plan.count;
    for g in groups.iter_mut().filter(|g| g.transport.subscribes()) {
        let of = plan.assign(g.clients);
        let sizes = crate::rooms::sizes_of(&of, plan.count);
        g.rooms = Some(Arc::new(GroupRooms { of, sizes }));
    }
    Ok(Some(plan))
}

/// `duration` (or `--duration`), `warmup` and `ramp_up`.
fn phase_lengths(
    sc: &Scenario,
    src: &Source,
    ov: &Overrides,
) -> Result<(Duration, Duration, Duration)> {
    let duration = ov.duration.unwrap_or(sc.duration.get_ref().0);
    if duration > crate::scenario::MAX_DURATION {
        return Err(Error::Usage("--duration is longer than 30 days".into()));
    }
    if duration.is_zero() {
        return Err(src.error(sc.duration.span(), "duration", "must be greater than zero"));
    }
    let warmup = sc.warmup.as_ref().map_or(Duration::ZERO, |d| d.get_ref().0);
    let ramp_up = sc
        .ramp_up
        .as_ref()
        .map_or(Duration::ZERO, |d| d.get_ref().0);
    Ok((duration, warmup, ramp_up))
}

/// `drain`: at least the longest poll interval.
fn drain_plan(sc: &Scenario, src: &Source, groups: &[GroupPlan]) -> Result<Duration> {
    let longest_interval = groups
        .iter()
        .filter(|g| g.transport == TransportKind::Poll)
        .filter_map(|g| g.interval)
        .max()
        .unwrap_or_default();
    Ok(match &sc.drain {
        Some(d) if d.get_ref().0 < longest_interval => {
            return Err(src.error(
                d.span(),
                "drain",
                &format!(
                    "must be at least the longest poll interval ({}), or the last events published could not arrive",
                    humantime::format_duration(longest_interval)
                ),
            ))
        }
        Some(d) => d.get_ref().0,
        None => (longest_interval * 2).max(Duration::from_secs(2)),
    })
}

/// `[thresholds]`, each naming a column and maybe a group.
fn thresholds_plan(
    sc: &Scenario,
    src: &Source,
    groups: &[GroupPlan],
) -> Result<Vec<crate::gate::threshold::Threshold>> {
    let names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    let mut thresholds = Vec::new();
    for (key, spec) in &sc.thresholds {
        let (limit, abort_on_fail, grace) = match spec.get_ref() {
            ThresholdSpec::Limit(l) => (l.as_str(), false, None),
            ThresholdSpec::Full {
                limit,
                abort_on_fail,
                grace,
            } => (limit.as_str(), *abort_on_fail, grace.map(|g| g.0)),
        };
        let mut t = crate::gate::threshold::parse(key, limit, &names)
            .map_err(|m| src.error(spec.span(), &format!("thresholds.\"{key}\""), &m))?;
        t.abort_on_fail = abort_on_fail;
        t.grace = grace.unwrap_or(Duration::from_secs(10));
        thresholds.push(t);
    }
    Ok(thresholds)
}

/// `http2 = true` (a group's or the publisher's) is h2c, prior knowledge:
/// stampede's TLS offers no ALPN `h2`, so over `https://` it is an error at
/// the key rather than a handshake every server refuses.
fn h2_needs_h2c(sc: &Scenario, src: &Source) -> Result<()> {
    let publisher = sc
        .publisher
        .as_ref()
        .and_then(|p| p.get_ref().http2.as_ref());
    let keys = sc
        .groups
        .iter()
        .filter_map(|g| g.http2.as_ref())
        .chain(publisher);
    for key in keys {
        if *key.get_ref() {
            return Err(src.error(
                key.span(),
                "http2",
                "HTTP/2 here is h2c (prior knowledge) and needs an http:// target: \
                 over https:// stampede does not offer ALPN h2",
            ));
        }
    }
    Ok(())
}
