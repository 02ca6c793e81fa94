//! The validated, typed plan: the only configuration the runner and workers
//! see. Built from a `Scenario` plus command-line overrides; every check that
//! can fail names the scenario place (`file:line:column`) and the key.

use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use crate::profile::{self, Profile};
use crate::scenario::{Dur, Mode, Scenario, Source, ThresholdSpec};
use crate::shard::Shard;
use crate::transport::request::RequestPlan;
use crate::transport::{Params, TransportKind};
use crate::units::{opt_secs, secs};

/// What to run against.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TargetPlan {
    /// Start the reference server.
    Builtin,
    /// An already running server.
    Url {
        /// As given.
        url: String,
        /// `host:port`.
        authority: String,
        /// Path prefix put before every profile path (empty for the root).
        base_path: String,
    },
}

/// The publisher's stream.
#[derive(Debug, Clone, Serialize)]
pub struct PublisherPlan {
    /// Events per second over all channels.
    pub rate_per_s: f64,
    /// Payload size in bytes.
    pub payload_bytes: usize,
    /// Channels.
    pub channels: u32,
    /// Channel name prefix (None: unique per run).
    pub channel_prefix: Option<String>,
    /// Publish-rate stages from the phase start (empty: `rate` throughout).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<crate::load::rate::RateStage>,
}

impl PublisherPlan {
    /// The publish schedule: `rate`, then the stages.
    pub fn schedule(&self) -> crate::load::rate::RateSchedule {
        crate::load::rate::RateSchedule::new(self.rate_per_s, &self.stages)
    }
}

/// How a storm drops connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StormVia {
    /// Every subscribing client closes its own connection (any target).
    Client,
    /// The reference server ends every stream (`POST /control/drop`);
    /// pollers keep their connections.
    Target,
}

/// `[storm]`: all subscriber connections dropped at once, in every phase.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StormPlan {
    /// When, after the phase start.
    #[serde(rename = "at_s", with = "secs")]
    pub at: Duration,
    /// Who drops the connections.
    pub via: StormVia,
}

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
    pub stages: Vec<crate::load::shape::Stage>,
    /// Arrival rate, session lengths, churn (see [`crate::load::shape::Turnover`]).
    #[serde(skip_serializing_if = "crate::load::shape::Turnover::is_empty")]
    pub turnover: crate::load::shape::Turnover,
    /// Profile and group headers on the wire (secrets expanded; never
    /// serialized).
    #[serde(skip)]
    pub wire_headers: Arc<[(HeaderName, HeaderValue)]>,
    /// In a sharded run: the scenario's client count, of which `clients`
    /// run here (client numbers, offsets and channels are global).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_of: Option<u64>,
}

impl GroupPlan {
    /// The scenario's client count (all shards together).
    pub fn total_clients(&self) -> u64 {
        self.shard_of.unwrap_or(self.clients)
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
    pub sweep: Option<crate::sweep::SweepPlan>,
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
            g.clients = shard.client_count(total, ch);
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

/// TLS as run.json records it.
#[derive(Debug, Clone, Serialize)]
pub struct TlsPlan {
    /// Extra trusted certificates (`--ca-file`).
    pub ca_file: Option<std::path::PathBuf>,
    /// Certificates not verified (`--insecure`).
    pub insecure: bool,
}

const MAX_CLIENTS: u64 = 1_000_000;

/// Validates a scenario into a plan.
pub fn build(sc: &Scenario, src: &Source, ov: &Overrides) -> Result<Plan> {
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

    let subscribes = sc.groups.iter().any(|g| g.transport.get_ref().subscribes());
    let publisher = match &sc.publisher {
        None if subscribes => {
            return Err(Error::Scenario {
                at: src.path.clone(),
                message: "`publisher`: a [publisher] section is needed: a group subscribes to the event stream".into(),
            })
        }
        None => None,
        Some(p) => Some(publisher_plan(p.get_ref(), src)?),
    };

    if sc.groups.is_empty() {
        return Err(Error::Scenario {
            at: src.path.clone(),
            message: "`groups`: at least one [[groups]] entry is needed".into(),
        });
    }
    let mut groups = Vec::with_capacity(sc.groups.len());
    for g in &sc.groups {
        let kind = *g.transport.get_ref();
        let clients = *g.clients.get_ref();
        if clients == 0 || clients > MAX_CLIENTS {
            return Err(src.error(
                g.clients.span(),
                "clients",
                &format!("must be in 1..={MAX_CLIENTS}"),
            ));
        }
        // Keys only some transports take: each transport lists its own.
        for (key, span) in g.transport_keys() {
            let Some(span) = span else { continue };
            if !kind.info().keys.contains(&key) {
                let names: Vec<_> = TransportKind::accepting(key)
                    .into_iter()
                    .map(|k| k.label())
                    .collect();
                return Err(src.error(
                    span,
                    key,
                    &format!(
                        "applies to transport {} only, not {}",
                        names.join(" / "),
                        kind.label()
                    ),
                ));
            }
        }
        use TransportKind::Echo;
        let positive = |d: &Option<toml::Spanned<Dur>>, key: &str| -> Result<Option<Duration>> {
            match d {
                Some(s) if s.get_ref().0.is_zero() => {
                    Err(src.error(s.span(), key, "must be greater than zero"))
                }
                Some(s) => Ok(Some(s.get_ref().0)),
                None => Ok(None),
            }
        };
        let rate_per_s = match &g.rate {
            Some(r)
                if !(r.get_ref().is_finite()
                    && *r.get_ref() > 0.0
                    && *r.get_ref() <= 10_000_000.0) =>
            {
                return Err(src.error(r.span(), "rate", "must be in (0, 10000000] per second"))
            }
            Some(r) => Some(*r.get_ref()),
            None if kind == Echo => {
                return Err(src.error(
                    g.transport.span(),
                    "rate",
                    "an echo group needs `rate` (messages per second over the group)",
                ))
            }
            None => None,
        };
        let interval = match (rate_per_s, &g.rate) {
            // Each client's share of the group's rate.
            (Some(r), Some(spanned)) => Some(
                Duration::try_from_secs_f64(clients as f64 / r)
                    .ok()
                    .filter(|d| *d <= crate::scenario::MAX_DURATION)
                    .ok_or_else(|| {
                        src.error(
                            spanned.span(),
                            "rate",
                            "is so low that a client would wait more than 30 days between sends",
                        )
                    })?,
            ),
            (Some(r), None) => Some(Duration::from_secs_f64(clients as f64 / r)),
            (None, _) => positive(&g.interval, "interval")?
                .or((kind == TransportKind::Poll).then_some(Duration::from_secs(1))),
        };
        let (request, path) = request_plan(g, kind, src)?;
        let message_bytes = match &g.message_bytes {
            // One frame must fit the WebSocket write buffer (64 KiB).
            Some(b) if *b.get_ref() > 65_000 || *b.get_ref() < 48 => {
                return Err(src.error(
                    b.span(),
                    "message_bytes",
                    "must be in 48..=65000 (the envelope needs 48)",
                ))
            }
            Some(b) => Some(*b.get_ref() as usize),
            None => (kind == Echo).then_some(64),
        };
        let headers = g
            .headers
            .as_ref()
            .map(|h| h.get_ref().clone())
            .unwrap_or_default();
        let hold_timeout = positive(&g.timeout, "timeout")?.unwrap_or(Duration::from_secs(30));
        let ping_interval = positive(&g.ping_interval, "ping_interval")?;
        let reconnect = match &g.reconnect {
            None => ReconnectPlan {
                max_attempts: 10,
                backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                jitter: 0.0,
            },
            Some(r) => ReconnectPlan {
                max_attempts: r.max_attempts.as_ref().map_or(10, |m| *m.get_ref()),
                backoff: r
                    .backoff
                    .as_ref()
                    .map_or(Duration::from_millis(100), |b| b.get_ref().0),
                max_backoff: r
                    .max_backoff
                    .as_ref()
                    .map_or(Duration::from_secs(5), |b| b.get_ref().0),
                jitter: match &r.jitter {
                    Some(j) if !(0.0..=1.0).contains(j.get_ref()) => {
                        return Err(src.error(j.span(), "jitter", "must be in [0, 1]"))
                    }
                    Some(j) => *j.get_ref(),
                    None => 0.0,
                },
            },
        };
        let name = g.name.clone().unwrap_or_else(|| kind.label().to_string());
        if groups.iter().any(|o: &GroupPlan| o.name == name) {
            return Err(src.error(
                g.transport.span(),
                "name",
                &format!("two groups are named {name:?}; give each a unique `name`"),
            ));
        }
        let stages = stages_plan(g, clients, kind, src)?;
        let turnover = turnover_plan(g, clients, kind, src)?;
        groups.push(GroupPlan {
            turnover,
            stages,
            name,
            transport: kind,
            clients,
            interval,
            params: Params {
                keep_alive: g.keep_alive.as_ref().is_none_or(|k| *k.get_ref()),
                hold_timeout,
                request_timeout: Duration::from_secs(10),
                ping_interval,
                request,
                message_bytes,
                limits: crate::transport::Limits::default(),
                tls: None,
            },
            reconnect,
            rate_per_s,
            path,
            headers,
            wire_headers: Arc::new([]),
            shard_of: None,
        });
    }
    let (limits, request_timeout) = limits_plan(sc, src)?;
    for g in &mut groups {
        g.params.limits = limits;
        g.params.request_timeout = request_timeout;
    }
    let longest_interval = groups
        .iter()
        .filter(|g| g.transport == TransportKind::Poll)
        .filter_map(|g| g.interval)
        .max()
        .unwrap_or_default();
    let drain = match &sc.drain {
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
    };

    let target_text = ov
        .target
        .clone()
        .or_else(|| sc.target.as_ref().map(|t| t.get_ref().clone()));
    let target = match target_text {
        None => TargetPlan::Builtin,
        Some(url) => {
            let (authority, base_path) =
                parse_target(&url).map_err(|msg| match (&ov.target, &sc.target) {
                    (None, Some(t)) => src.error(t.span(), "target", &msg),
                    _ => Error::Usage(format!("--target {url}: {msg}")),
                })?;
            TargetPlan::Url {
                url,
                authority,
                base_path,
            }
        }
    };
    let (tls, tls_client) = tls_plan(&target, ov)?;
    for g in &mut groups {
        g.params.tls = tls_client.clone();
    }
    let profile = resolve_profile(sc, src, ov, &target)?;
    if let TargetPlan::Url { base_path, .. } = &target {
        // Request paths are on the target, under its prefix like the
        // profile's paths (echo's path is prefixed with the session's).
        for g in &mut groups {
            if let Some(r) = &mut g.params.request {
                for u in &mut r.urls {
                    *u = format!("{base_path}{u}");
                }
            }
        }
    }
    let profile_headers: Arc<[(HeaderName, HeaderValue)]> = profile::wire_headers(&profile)
        .map_err(|m| match &sc.profile {
            Some(p) => src.error(p.span(), "profile", &m),
            None => Error::Usage(m),
        })?
        .into();
    for (g, sg) in groups.iter_mut().zip(&sc.groups) {
        if profile.url_for(g.transport).is_none() {
            return Err(src.error(
                sg.transport.span(),
                "transport",
                &format!(
                    "the {} profile does not support {}",
                    profile.name,
                    g.transport.label()
                ),
            ));
        }
        let mut all = profile.headers.clone();
        all.extend(g.headers.clone());
        let wire = profile::wire_headers(&Profile {
            headers: all,
            ..(*profile).clone()
        })
        .map_err(|m| {
            let span = sg
                .headers
                .as_ref()
                .map_or(sg.transport.span(), |h| h.span());
            src.error(span, "headers", &m)
        })?;
        g.wire_headers = wire.into();
    }

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
    let builtin_delay = match (&sc.builtin_delay, &target) {
        (None, _) => Duration::ZERO,
        (Some(d), TargetPlan::Builtin) => d.get_ref().0,
        (Some(d), TargetPlan::Url { .. }) => {
            return Err(src.error(
                d.span(),
                "builtin_delay",
                "applies to the built-in target only",
            ))
        }
    };

    let faults = match (&sc.faults, &target) {
        (None, _) => None,
        (Some(f), TargetPlan::Builtin) => Some(
            crate::reference::fault::FaultPlan::from_table(f.get_ref())
                .map_err(|m| src.error(f.span(), "faults", &m))?,
        ),
        (Some(f), TargetPlan::Url { .. }) => {
            return Err(src.error(f.span(), "faults", "applies to the built-in target only"))
        }
    };
    let builtin_cost_per_conn = match (&sc.builtin_cost_per_conn, &target) {
        (None, _) => Duration::ZERO,
        (Some(d), TargetPlan::Builtin) => d.get_ref().0,
        (Some(d), TargetPlan::Url { .. }) => {
            return Err(src.error(
                d.span(),
                "builtin_cost_per_conn",
                "applies to the built-in target only",
            ))
        }
    };
    if ov.target_pid.is_some() && matches!(target, TargetPlan::Builtin) {
        return Err(Error::Usage(
            "--target-pid needs --target URL: the built-in target's own process is sampled already"
                .into(),
        ));
    }

    let storm = storm_plan(sc, src, &target, ramp_up + warmup + duration)?;
    let mut plan = Plan {
        storm,
        tls,
        tls_client,
        faults,
        sweep: None,
        shard: None,
        local_addrs: ov.local_addrs.clone(),
        builtin_cost_per_conn,
        target_pid: ov.target_pid,
        builtin_delay,
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
    plan.sweep = crate::sweep::expand(sc, src, ov)?;
    if let Some(s) = &plan.sweep {
        plan.thresholds = crate::sweep::merged_thresholds(s);
    }
    Ok(plan)
}

/// True for `https://` and `wss://` targets.
pub fn is_tls(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("wss://")
}

/// TLS for an `https://` / `wss://` target, built once; `--ca-file` and
/// `--insecure` without such a target are usage errors.
fn tls_plan(
    target: &TargetPlan,
    ov: &Overrides,
) -> Result<(Option<TlsPlan>, Option<Arc<crate::net::Tls>>)> {
    let url = match target {
        TargetPlan::Url { url, .. } if is_tls(url) => url,
        _ => {
            if ov.ca_file.is_some() || ov.insecure {
                return Err(Error::Usage(
                    "--ca-file and --insecure need an https:// or wss:// target".into(),
                ));
            }
            return Ok((None, None));
        }
    };
    let host = url
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_string))
        .ok_or_else(|| Error::Usage(format!("--target {url}: missing host")))?;
    let client =
        crate::net::Tls::new(&host, ov.ca_file.as_deref(), ov.insecure).map_err(Error::Usage)?;
    Ok((
        Some(TlsPlan {
            ca_file: ov.ca_file.clone(),
            insecure: ov.insecure,
        }),
        Some(Arc::new(client)),
    ))
}

/// The `[limits]` section: client limits and the request timeout.
fn limits_plan(sc: &Scenario, src: &Source) -> Result<(crate::transport::Limits, Duration)> {
    let mut limits = crate::transport::Limits::default();
    let mut request_timeout = Duration::from_secs(10);
    let Some(spec) = &sc.limits else {
        return Ok((limits, request_timeout));
    };
    let l = spec.get_ref();
    let time = |d: &Option<toml::Spanned<Dur>>, key: &str| -> Result<Option<Duration>> {
        match d {
            Some(s) if s.get_ref().0.is_zero() => {
                Err(src.error(s.span(), key, "must be greater than zero"))
            }
            Some(s) => Ok(Some(s.get_ref().0)),
            None => Ok(None),
        }
    };
    let size = |b: &Option<toml::Spanned<u64>>, key: &str, min: u64| -> Result<Option<usize>> {
        match b {
            Some(s) if *s.get_ref() < min || *s.get_ref() > 1 << 40 => Err(src.error(
                s.span(),
                key,
                &format!("must be in {min}..=1099511627776 bytes"),
            )),
            Some(s) => Ok(Some(*s.get_ref() as usize)),
            None => Ok(None),
        }
    };
    if let Some(d) = time(&l.read_timeout, "limits.read_timeout")? {
        limits.read_timeout = d;
    }
    if let Some(d) = time(&l.request_timeout, "limits.request_timeout")? {
        request_timeout = d;
    }
    if let Some(n) = size(&l.max_message_bytes, "limits.max_message_bytes", 64)? {
        limits.max_message_bytes = n;
    }
    // hyper's read buffer cannot be smaller.
    if let Some(n) = size(&l.max_header_bytes, "limits.max_header_bytes", 8192)? {
        limits.max_header_bytes = n;
    }
    if let Some(n) = size(&l.max_sse_line_bytes, "limits.max_sse_line_bytes", 64)? {
        limits.max_sse_line_bytes = n;
    }
    if let Some(n) = size(&l.max_buffered_bytes, "limits.max_buffered_bytes", 64)? {
        limits.max_buffered_bytes = n;
    }
    Ok((limits, request_timeout))
}

/// Checks a target URL (`http://host:port[/prefix]`) and returns its
/// authority and path prefix.
pub fn parse_target(url: &str) -> std::result::Result<(String, String), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL ({e})"))?;
    match uri.scheme_str() {
        Some("http") | Some("ws") | Some("https") | Some("wss") => {}
        Some(other) => {
            return Err(format!(
                "scheme {other}:// is not supported (use http:// or https://)"
            ))
        }
        None => return Err("missing scheme; write e.g. http://127.0.0.1:8080".into()),
    }
    let host = uri.host().ok_or("missing host")?;
    let tls = matches!(uri.scheme_str(), Some("https") | Some("wss"));
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        // It would be written to run.json as given.
        return Err(
            "credentials in the URL are not supported; send them as headers with ${ENV} in a [profile]"
                .into(),
        );
    }
    if uri.query().is_some() {
        return Err("a query string is not allowed in the target URL".into());
    }
    let base_path = uri.path().trim_end_matches('/').to_string();
    let authority = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok((authority, base_path))
}

fn publisher_plan(p: &crate::scenario::Publisher, src: &Source) -> Result<PublisherPlan> {
    let rate = *p.rate.get_ref();
    if !(rate.is_finite() && (0.001..=1_000_000.0).contains(&rate)) {
        return Err(src.error(
            p.rate.span(),
            "publisher.rate",
            "must be in [0.001, 1000000] events/s",
        ));
    }
    let payload_bytes = match &p.payload_bytes {
        None => 256,
        Some(b) if *b.get_ref() > 1 << 20 => {
            return Err(src.error(
                b.span(),
                "publisher.payload_bytes",
                "must be at most 1048576",
            ))
        }
        Some(b) => *b.get_ref() as usize,
    };
    let channels = match &p.channels {
        None => 1,
        Some(c) if *c.get_ref() == 0 || *c.get_ref() > 100_000 => {
            return Err(src.error(c.span(), "publisher.channels", "must be in 1..=100000"))
        }
        Some(c) => *c.get_ref() as u32,
    };
    let channel_prefix = match &p.channel_prefix {
        Some(c)
            if c.get_ref().is_empty()
                || !c
                    .get_ref()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) =>
        {
            return Err(src.error(
                c.span(),
                "publisher.channel_prefix",
                "use letters, digits, `-`, `_` and `.` only (it goes into URLs)",
            ))
        }
        Some(c) => Some(c.get_ref().clone()),
        None => None,
    };
    Ok(PublisherPlan {
        rate_per_s: rate,
        payload_bytes,
        channels,
        channel_prefix,
        stages: rate_stages_plan(p, src)?,
    })
}

/// `[publisher] stages`: each one steady (`rate`, `for`), burst (`burst`,
/// `for`) or ramp (`to`, `over`); rates bounded like `publisher.rate` (a
/// rate of 0 would never reach the next event), lengths above zero.
fn rate_stages_plan(
    p: &crate::scenario::Publisher,
    src: &Source,
) -> Result<Vec<crate::load::rate::RateStage>> {
    use crate::load::rate::RateStage;
    let Some(list) = &p.stages else {
        return Ok(Vec::new());
    };
    if list.get_ref().is_empty() {
        return Err(src.error(list.span(), "publisher.stages", "give at least one stage"));
    }
    let key = "publisher.stages";
    let rate = |r: &toml::Spanned<f64>| {
        let v = *r.get_ref();
        if v.is_finite() && (0.001..=1_000_000.0).contains(&v) {
            Ok(v)
        } else {
            Err(src.error(r.span(), key, "a rate must be in [0.001, 1000000] events/s"))
        }
    };
    let len = |d: &toml::Spanned<crate::scenario::Dur>| {
        if d.get_ref().0.is_zero() {
            Err(src.error(d.span(), key, "a stage must last longer than 0s"))
        } else {
            Ok(d.get_ref().0)
        }
    };
    let mut out = Vec::new();
    for st in list.get_ref() {
        let s = st.get_ref();
        let stage = match (&s.rate, &s.burst, &s.to, &s.for_, &s.over) {
            (Some(r), None, None, Some(d), None) => RateStage::Steady {
                rate: rate(r)?,
                len: len(d)?,
            },
            (None, Some(r), None, Some(d), None) => RateStage::Burst {
                rate: rate(r)?,
                len: len(d)?,
            },
            (None, None, Some(r), None, Some(d)) => RateStage::Ramp {
                to: rate(r)?,
                len: len(d)?,
            },
            _ => {
                return Err(src.error(
                    st.span(),
                    key,
                    "write { rate = 50, for = \"10s\" }, { burst = 500, for = \"2s\" } or { to = 100, over = \"10s\" }",
                ))
            }
        };
        out.push(stage);
    }
    Ok(out)
}

/// `[storm]`: inside the phase's hold; `via = "target"` needs the built-in
/// target (only it has `POST /control/drop`).
fn storm_plan(
    sc: &Scenario,
    src: &Source,
    target: &TargetPlan,
    phase: Duration,
) -> Result<Option<StormPlan>> {
    let Some(spec) = &sc.storm else {
        return Ok(None);
    };
    let st = spec.get_ref();
    let at = st.at.get_ref().0;
    if at.is_zero() || at >= phase {
        return Err(src.error(
            st.at.span(),
            "storm.at",
            &format!(
                "must be after the phase start and before publishing stops ({} = ramp_up + warmup + duration)",
                humantime::format_duration(phase)
            ),
        ));
    }
    let via = match st.via.as_ref().map(|v| (v.get_ref().as_str(), v.span())) {
        None | Some(("client", _)) => StormVia::Client,
        Some(("target", span)) => {
            if !matches!(target, TargetPlan::Builtin) {
                return Err(src.error(
                    span,
                    "storm.via",
                    "\"target\" needs the built-in target (POST /control/drop); use \"client\" for any target",
                ));
            }
            StormVia::Target
        }
        Some((_, span)) => {
            return Err(src.error(span, "storm.via", "must be \"client\" or \"target\""))
        }
    };
    if !sc.groups.iter().any(|g| g.transport.get_ref().subscribes()) {
        return Err(src.error(
            spec.span(),
            "storm",
            "needs a subscribing group (request and echo load has no subscription to drop)",
        ));
    }
    Ok(Some(StormPlan { at, via }))
}

/// A group's `arrival`, `session` and `churn`: subscribers only, not with
/// `stages`; churn and session lengths are two ways to turn sessions over,
/// so one of them.
fn turnover_plan(
    g: &crate::scenario::Group,
    clients: u64,
    kind: TransportKind,
    src: &Source,
) -> Result<crate::load::shape::Turnover> {
    use crate::load::shape::{Arrival, Churn, Distribution, Session, Turnover};
    let spans = [
        g.arrival.as_ref().map(|a| ("arrival", a.span())),
        g.session.as_ref().map(|a| ("session", a.span())),
        g.churn.as_ref().map(|a| ("churn", a.span())),
    ];
    for (key, span) in spans.iter().flatten() {
        if !kind.subscribes() {
            return Err(src.error(
                span.clone(),
                key,
                "applies to subscribing transports only (request and echo load is paced by `rate`)",
            ));
        }
        if g.stages.is_some() {
            return Err(src.error(
                span.clone(),
                key,
                "give either `stages` or arrival / session / churn, not both",
            ));
        }
    }
    let rate_ok = |r: f64| r.is_finite() && (0.001..=1_000_000.0).contains(&r);
    let arrival = match &g.arrival {
        None => None,
        Some(a) => {
            let bad = |m: &str| src.error(a.span(), "arrival", m);
            let spec = a.get_ref();
            if !rate_ok(spec.rate) {
                return Err(bad("`rate` must be in [0.001, 1000000] new connections/s"));
            }
            if spec.until.is_some_and(|u| u.0.is_zero()) {
                return Err(bad("`until` must be greater than zero"));
            }
            Some(Arrival {
                rate_per_s: spec.rate,
                until: spec.until.map(|u| u.0),
            })
        }
    };
    let session = match &g.session {
        None => None,
        Some(sp) => {
            let bad = |m: &str| src.error(sp.span(), "session", m);
            let spec = sp.get_ref();
            let (mean, min, max) = (
                spec.mean.map(|d| d.0),
                spec.min.map(|d| d.0),
                spec.max.map(|d| d.0),
            );
            let distribution = match spec.distribution.as_deref() {
                None | Some("fixed") => Distribution::Fixed,
                Some("uniform") => Distribution::Uniform,
                Some("exponential") => Distribution::Exponential,
                Some(other) => {
                    return Err(bad(&format!(
                        "distribution {other:?}: use \"fixed\", \"uniform\" or \"exponential\""
                    )))
                }
            };
            let s = match distribution {
                Distribution::Fixed => match (mean, min, max) {
                    (Some(m), None, None) if !m.is_zero() => Session {
                        distribution,
                        mean: m,
                        min: Duration::ZERO,
                        max: None,
                    },
                    _ => {
                        return Err(bad(
                            "a fixed session needs `mean` > 0 only (no `min` / `max`)",
                        ))
                    }
                },
                Distribution::Uniform => match (mean, min, max) {
                    (None, Some(lo), Some(hi)) if hi > lo => Session {
                        distribution,
                        mean: (lo + hi) / 2,
                        min: lo,
                        max: Some(hi),
                    },
                    _ => return Err(bad(
                        "a uniform session needs `min` < `max` (and no `mean`: it is their middle)",
                    )),
                },
                Distribution::Exponential => match mean {
                    Some(m) if !m.is_zero() => {
                        let lo = min.unwrap_or_default();
                        if max.is_some_and(|hi| hi <= lo) {
                            return Err(bad("`max` must be greater than `min`"));
                        }
                        Session {
                            distribution,
                            mean: m,
                            min: lo,
                            max,
                        }
                    }
                    _ => return Err(bad("an exponential session needs `mean` > 0")),
                },
            };
            Some(s)
        }
    };
    let churn = match &g.churn {
        None => None,
        Some(c) => {
            let bad = |m: &str| src.error(c.span(), "churn", m);
            let spec = c.get_ref();
            if !rate_ok(spec.rate) {
                return Err(bad("`rate` must be in [0.001, 1000000] leaves/s"));
            }
            if session.is_some() {
                return Err(bad(
                    "give either `churn` or `session`: both turn sessions over",
                ));
            }
            let gap = spec.gap.map_or(Duration::ZERO, |d| d.0);
            // A client must be back before its next turn to leave.
            let round = Duration::from_secs_f64(clients as f64 / spec.rate);
            if gap >= round {
                return Err(bad(&format!(
                    "`gap` must be shorter than clients / rate ({}), or a client would be due to leave while away",
                    humantime::format_duration(round)
                )));
            }
            Some(Churn {
                rate_per_s: spec.rate,
                gap,
            })
        }
    };
    Ok(Turnover {
        arrival,
        session,
        churn,
    })
}

/// A group's `stages`: ramps to at most `clients`, holds; subscribers only
/// (request and echo load is paced by `rate`).
fn stages_plan(
    g: &crate::scenario::Group,
    clients: u64,
    kind: TransportKind,
    src: &Source,
) -> Result<Vec<crate::load::shape::Stage>> {
    use crate::load::shape::Stage;
    let Some(list) = &g.stages else {
        return Ok(Vec::new());
    };
    if !kind.subscribes() {
        return Err(src.error(
            list.span(),
            "stages",
            "applies to subscribing transports only (request and echo load is paced by `rate`)",
        ));
    }
    if list.get_ref().is_empty() {
        return Err(src.error(list.span(), "stages", "give at least one stage"));
    }
    let mut out = Vec::new();
    for st in list.get_ref() {
        let bad = |m: &str| src.error(st.span(), "stages", m);
        let stage = match (st.get_ref().to, st.get_ref().over, st.get_ref().hold) {
            (Some(to), Some(over), None) if to <= clients => Stage::Ramp { to, over: over.0 },
            (Some(to), Some(_), None) => {
                return Err(bad(&format!(
                    "`to = {to}` passes the group's `clients = {clients}` (the ceiling)"
                )))
            }
            (None, None, Some(hold)) => Stage::Hold(hold.0),
            _ => return Err(bad("write { to = N, over = \"60s\" } or { hold = \"2m\" }")),
        };
        out.push(stage);
    }
    Ok(out)
}

/// The request plan and path of a request or echo group.
fn request_plan(
    g: &crate::scenario::Group,
    kind: TransportKind,
    src: &Source,
) -> Result<(Option<RequestPlan>, Option<String>)> {
    let check_path = |p: &str, span: std::ops::Range<usize>, key: &str| {
        if p.starts_with('/') && p.parse::<http::uri::PathAndQuery>().is_ok() {
            Ok(p.to_string())
        } else {
            Err(src.error(
                span,
                key,
                &format!("{p:?} must be a path on the target, like \"/hello\" (the target URL gives host and port)"),
            ))
        }
    };
    match kind {
        TransportKind::Echo => {
            let path = match &g.url {
                Some(u) => check_path(u.get_ref(), u.span(), "url")?,
                None => "/echo".to_string(),
            };
            Ok((None, Some(path)))
        }
        TransportKind::Request => {
            let mut urls = Vec::new();
            if let Some(u) = &g.url {
                urls.push(check_path(u.get_ref(), u.span(), "url")?);
            }
            if let Some(list) = &g.urls {
                for u in list.get_ref() {
                    urls.push(check_path(u, list.span(), "urls")?);
                }
            }
            if urls.is_empty() {
                return Err(src.error(
                    g.transport.span(),
                    "url",
                    "a request group needs `url` (or `urls`)",
                ));
            }
            let method = match &g.method {
                None => http::Method::GET,
                Some(m) => http::Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes())
                    .map_err(|_| src.error(m.span(), "method", "not an HTTP method"))?,
            };
            let (body, wire_body) = match &g.body {
                None => (None, bytes::Bytes::new()),
                Some(b) => {
                    let wire = profile::expand_env(b.get_ref())
                        .map_err(|m| src.error(b.span(), "body", &m))?;
                    (Some(b.get_ref().clone()), bytes::Bytes::from(wire))
                }
            };
            let expect_status = match &g.expect_status {
                None => Vec::new(),
                Some(s)
                    if s.get_ref().is_empty()
                        || s.get_ref().iter().any(|c| !(100..=599).contains(c)) =>
                {
                    return Err(src.error(
                        s.span(),
                        "expect_status",
                        "give HTTP statuses between 100 and 599",
                    ))
                }
                Some(s) => s.get_ref().clone(),
            };
            let first = urls[0].clone();
            Ok((
                Some(RequestPlan {
                    method,
                    urls,
                    body,
                    wire_body,
                    expect_status,
                    http2: g.http2.as_ref().is_some_and(|h| *h.get_ref()),
                }),
                Some(first),
            ))
        }
        _ => Ok((None, None)),
    }
}

/// The profile from `--profile`, the scenario's `profile`, or the target
/// (reference server: `builtin`; a URL: `generic`, which needs a table).
fn resolve_profile(
    sc: &Scenario,
    src: &Source,
    ov: &Overrides,
    target: &TargetPlan,
) -> Result<Arc<Profile>> {
    let table = sc.profile.as_ref().and_then(|p| match p.get_ref() {
        toml::Value::Table(_) => Some(p),
        _ => None,
    });
    let scenario_name = sc.profile.as_ref().and_then(|p| match p.get_ref() {
        toml::Value::String(s) => Some((s.clone(), p.span())),
        _ => None,
    });
    if let Some(p) = &sc.profile {
        if !matches!(p.get_ref(), toml::Value::String(_) | toml::Value::Table(_)) {
            return Err(src.error(
                p.span(),
                "profile",
                "give a name (\"builtin\", \"nchan\") or a [profile] table",
            ));
        }
    }
    let name = match (&ov.profile, &scenario_name) {
        (Some(n), _) => Some(n.clone()),
        (None, Some((n, _))) => Some(n.clone()),
        (None, None) => None,
    };
    let bad_name = |n: &str| {
        let msg = format!(
            "unknown profile {n:?}; use one of {}",
            crate::profile::PRESETS.join(", ")
        );
        match (&ov.profile, &scenario_name) {
            (Some(_), _) => Error::Usage(format!("--profile: {msg}")),
            (None, Some((_, span))) => src.error(span.clone(), "profile", &msg),
            _ => Error::Usage(msg),
        }
    };
    let profile = match (name.as_deref(), table) {
        (None, None) => Profile::preset("builtin").ok_or_else(|| bad_name("builtin"))?,
        (Some(n), None) => Profile::preset(n).ok_or_else(|| {
            if n == "generic" {
                Error::Usage("the generic profile needs a [profile] table in the scenario (see README, \"Target profiles\")".into())
            } else {
                bad_name(n)
            }
        })?,
        (Some(n), Some(_)) if n != "generic" => {
            // --profile NAME replaces the scenario's table.
            Profile::preset(n).ok_or_else(|| bad_name(n))?
        }
        (_, Some(t)) => profile_table(t, src)?,
    };
    if matches!(target, TargetPlan::Builtin) && profile.name != "builtin" {
        return Err(Error::Usage(format!(
            "the {} profile needs --target URL (or `target` in the scenario): the built-in target speaks only the builtin profile",
            profile.name
        )));
    }
    Ok(Arc::new(profile))
}

/// A `[profile]` table: sections given replace those of `base` (a preset);
/// without `base` the profile is generic and needs `[profile.publish]` plus
/// a section per transport used.
fn profile_table(t: &toml::Spanned<toml::Value>, src: &Source) -> Result<Profile> {
    let toml::Value::Table(table) = t.get_ref() else {
        return Err(src.error(t.span(), "profile", "expected a table"));
    };
    let err = |m: String| src.error(t.span(), "profile", &m);
    let mut table = table.clone();
    let base = match table.remove("base") {
        None => None,
        Some(toml::Value::String(b)) => Some(
            Profile::preset(&b)
                .ok_or_else(|| err(format!("base {b:?} is not builtin or nchan")))?,
        ),
        Some(_) => return Err(err("base must be a preset name".into())),
    };
    let mut profile = match base {
        Some(mut b) => {
            b.sections
                .replace_from(&mut table)
                .map_err(|(key, m)| err(format!("[profile.{key}]: {m}")))?;
            if let Some(v) = table.remove("publish") {
                b.publish = v.try_into().map_err(|e: toml::de::Error| {
                    err(format!("[profile.publish]: {}", e.message().trim()))
                })?;
            }
            if let Some(v) = table.remove("headers") {
                b.headers = v.try_into().map_err(|e: toml::de::Error| {
                    err(format!("headers: {}", e.message().trim()))
                })?;
            }
            if let Some(v) = table.remove("name") {
                b.name = v
                    .try_into()
                    .map_err(|e: toml::de::Error| err(format!("name: {}", e.message().trim())))?;
            } else {
                b.name = format!("{}+custom", b.name);
            }
            if let Some(k) = table.keys().next() {
                return Err(err(format!("unknown key `{k}`")));
            }
            b
        }
        None => {
            // As serde words it for a struct that denies unknown fields
            // (the flattened sections cannot).
            let keys = profile::keys();
            if let Some(k) = table.keys().find(|k| !keys.contains(&k.as_str())) {
                let expected: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
                return Err(err(format!(
                    "unknown field `{k}`, expected one of {}",
                    expected.join(", ")
                )));
            }
            toml::Value::Table(table).try_into::<Profile>()
        }
        .map_err(|e| err(e.message().trim().to_string()))?,
    };
    if profile.name.is_empty() {
        profile.name = "generic".into();
    }
    profile.check().map_err(err)?;
    Ok(profile)
}
