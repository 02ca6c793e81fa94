//! The validated, typed plan: the only configuration the runner and workers
//! see. Built from a `Scenario` plus command-line overrides; every check that
//! can fail names the scenario place (`file:line:column`) and the key.

use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::scenario::{Dur, Mode, Scenario, Source, ThresholdSpec};
use crate::transport::{Params, TransportKind};

/// Serde helpers writing durations as seconds (`*_s` fields).
pub mod secs {
    use serde::Serializer;
    use std::time::Duration;

    /// Serializes a duration as fractional seconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    /// Reads fractional seconds.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = <f64 as serde::Deserialize>::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

/// Serde helper for optional durations as seconds.
pub mod opt_secs {
    use serde::Serializer;
    use std::time::Duration;

    /// Serializes an optional duration as fractional seconds or null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

/// What to run against.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TargetPlan {
    /// Start the built-in reference target.
    Builtin,
    /// An already running server.
    Url {
        /// As given.
        url: String,
        /// `host:port`.
        authority: String,
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
    /// Publisher.
    pub publisher: PublisherPlan,
    /// Groups.
    pub groups: Vec<GroupPlan>,
    /// TCP connect timeout.
    #[serde(rename = "connect_timeout_s", with = "secs")]
    pub connect_timeout: Duration,
    /// Built-in target: delay added to every response and publish.
    #[serde(rename = "builtin_delay_s", with = "secs")]
    pub builtin_delay: Duration,
    /// Pass/fail conditions.
    pub thresholds: Vec<crate::gate::threshold::Threshold>,
}

impl Plan {
    /// The phases to run: one per group (sequential) or one with all.
    pub fn phases(&self) -> Vec<Vec<usize>> {
        match self.mode {
            Mode::Sequential => (0..self.groups.len()).map(|i| vec![i]).collect(),
            Mode::Concurrent => vec![(0..self.groups.len()).collect()],
        }
    }

    /// Wall time the plan needs, roughly, for progress display.
    pub fn expected_duration(&self) -> Duration {
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

    let p = &sc.publisher;
    let rate = *p.rate.get_ref();
    if !(rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0) {
        return Err(src.error(
            p.rate.span(),
            "publisher.rate",
            "must be in (0, 1000000] events/s",
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
        let only =
            |present: bool, span: std::ops::Range<usize>, key: &str, kinds: &[TransportKind]| {
                if present && !kinds.contains(&kind) {
                    let names: Vec<_> = kinds.iter().map(|k| k.label()).collect();
                    Err(src.error(
                        span,
                        key,
                        &format!(
                            "applies to transport {} only, not {}",
                            names.join(" / "),
                            kind.label()
                        ),
                    ))
                } else {
                    Ok(())
                }
            };
        let span_of = |d: &Option<toml::Spanned<Dur>>| d.as_ref().map_or(0..0, |d| d.span());
        only(
            g.interval.is_some(),
            span_of(&g.interval),
            "interval",
            &[TransportKind::Poll],
        )?;
        only(
            g.timeout.is_some(),
            span_of(&g.timeout),
            "timeout",
            &[TransportKind::LongPoll],
        )?;
        only(
            g.ping_interval.is_some(),
            span_of(&g.ping_interval),
            "ping_interval",
            &[TransportKind::Websocket],
        )?;
        only(
            g.keep_alive.is_some(),
            g.keep_alive.as_ref().map_or(0..0, |k| k.span()),
            "keep_alive",
            &[TransportKind::Poll, TransportKind::LongPoll],
        )?;
        let positive = |d: &Option<toml::Spanned<Dur>>, key: &str| -> Result<Option<Duration>> {
            match d {
                Some(s) if s.get_ref().0.is_zero() => {
                    Err(src.error(s.span(), key, "must be greater than zero"))
                }
                Some(s) => Ok(Some(s.get_ref().0)),
                None => Ok(None),
            }
        };
        let interval = positive(&g.interval, "interval")?
            .or((kind == TransportKind::Poll).then_some(Duration::from_secs(1)));
        let hold_timeout = positive(&g.timeout, "timeout")?.unwrap_or(Duration::from_secs(30));
        let ping_interval = positive(&g.ping_interval, "ping_interval")?;
        let reconnect = match &g.reconnect {
            None => ReconnectPlan {
                max_attempts: 10,
                backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
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
        groups.push(GroupPlan {
            name,
            transport: kind,
            clients,
            interval,
            params: Params {
                keep_alive: g.keep_alive.as_ref().is_none_or(|k| *k.get_ref()),
                hold_timeout,
                request_timeout: Duration::from_secs(10),
                ping_interval,
            },
            reconnect,
        });
    }
    let longest_interval = groups
        .iter()
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
            let authority = parse_target(&url).map_err(|msg| match (&ov.target, &sc.target) {
                (None, Some(t)) => src.error(t.span(), "target", &msg),
                _ => Error::Usage(format!("--target {url}: {msg}")),
            })?;
            TargetPlan::Url { url, authority }
        }
    };

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

    Ok(Plan {
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
        publisher: PublisherPlan {
            rate_per_s: rate,
            payload_bytes,
            channels,
        },
        groups,
        connect_timeout: Duration::from_secs(5),
    })
}

/// Checks a target URL (`http://host:port`) and returns its authority.
pub fn parse_target(url: &str) -> std::result::Result<String, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL ({e})"))?;
    match uri.scheme_str() {
        Some("http") | Some("ws") => {}
        Some(other) => return Err(format!("scheme {other}:// is not supported (use http://)")),
        None => return Err("missing scheme; write e.g. http://127.0.0.1:8080".into()),
    }
    let host = uri.host().ok_or("missing host")?;
    let port = uri.port_u16().unwrap_or(80);
    if !matches!(uri.path(), "" | "/") {
        return Err("a path prefix is not supported yet; give the server root".into());
    }
    Ok(if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}
