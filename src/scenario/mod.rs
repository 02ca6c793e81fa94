//! The scenario file as the user wrote it (serde model of `scenarios/*.toml`),
//! and command-line overrides applied to it. Nothing here is validated beyond
//! types: `plan` turns a `Scenario` into the typed, checked `Plan`. Errors
//! name `file:line:column` and the key.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::Spanned;

use crate::transport::TransportKind;

mod source;

pub use source::{load, parse, set_path, Source};

/// Longest duration a scenario may give.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// A duration written as `"250ms"`, `"30s"`, `"5m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let d = humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?} ({e}); write e.g. \"250ms\", \"30s\", \"5m\""
            ))
        })?;
        // Bounded so that instants computed from it cannot overflow.
        if d > MAX_DURATION {
            return Err(serde::de::Error::custom(format!(
                "duration {s:?} is longer than the 30 days stampede accepts"
            )));
        }
        Ok(Dur(d))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

/// How the client groups of a scenario share time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One phase per group, one after another: each group's cost to the
    /// target is attributable (the fair default for a comparison).
    #[default]
    Sequential,
    /// All groups at once, on the same channels and events.
    Concurrent,
}

/// A whole scenario file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name used for the results folder.
    pub name: String,
    /// Free text shown in reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Measured hold time of each phase.
    pub duration: Spanned<Dur>,
    /// Time after ramp-up that is recorded in the time series but excluded
    /// from the summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Spanned<Dur>>,
    /// Time over which a group's clients are started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_up: Option<Spanned<Dur>>,
    /// Time after publishing stops for in-flight events to arrive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<Spanned<Dur>>,
    /// Sequential phases (default) or concurrent groups.
    #[serde(default)]
    pub mode: Mode,
    /// Target base URL; absent means the reference server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Spanned<String>>,
    /// How the target speaks: `"builtin"`, `"nchan"`, or a table (the
    /// generic profile, optionally `base = "nchan"` to start from a preset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Spanned<toml::Value>>,
    /// Reference server only: delay added to every response and publish
    /// (a deliberately slowed target, e.g. to check a CI gate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin_delay: Option<Spanned<Dur>>,
    /// Reference server only: each publish waits this long per open
    /// subscriber stream (a known per-connection cost, for capacity tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin_cost_per_conn: Option<Spanned<Dur>>,
    /// Pass/fail conditions on summary columns: `"group.column" = "< 50"`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub thresholds: std::collections::BTreeMap<String, Spanned<ThresholdSpec>>,
    /// The event stream (needed when a group subscribes to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<Spanned<Publisher>>,
    /// Client groups, one transport each.
    pub groups: Vec<Group>,
    /// One parameter run at several values (see [`crate::plan::sweep`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Spanned<Sweep>>,
    /// Limits against hostile servers and client timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Spanned<LimitsSpec>>,
    /// Reference server only: faults it injects, `kind = rate` (see
    /// [`crate::reference::fault`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Spanned<toml::Table>>,
    /// Defaults of `stampede capacity` (ignored by `run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Spanned<CapacitySpec>>,
    /// A reconnect storm: every subscriber connection dropped at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm: Option<Spanned<StormSpec>>,
    /// Rooms of different sizes: `{ count = 200, size = "zipf", s = 1.1 }`
    /// (the publisher's channels; see [`crate::rooms`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Spanned<crate::scenario_keys::RoomsSpec>>,
    /// Data feeders: `[[data]] file = "users.csv"` (see [`crate::identity::data`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<Spanned<crate::scenario_keys::DataSpec>>,
}

/// `[storm]`: every subscriber connection is dropped at `at` after each
/// phase's start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StormSpec {
    /// When, after the phase start.
    pub at: Spanned<Dur>,
    /// `"client"` (default: clients close their own connections) or
    /// `"target"` (the reference server's `POST /control/drop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Spanned<String>>,
}

/// `[limits]`: what a client accepts from a server before it gives up on
/// the exchange (sizes in bytes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// A streaming connection silent this long is dead (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_timeout: Option<Spanned<Dur>>,
    /// One request, response head or handshake (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Spanned<Dur>>,
    /// Largest message (default 4 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_bytes: Option<Spanned<u64>>,
    /// Largest HTTP response head (default 64 KiB; at least 8192).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_header_bytes: Option<Spanned<u64>>,
    /// Largest SSE line or event block (default 4 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sse_line_bytes: Option<Spanned<u64>>,
    /// Most bytes a client buffers (default 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_buffered_bytes: Option<Spanned<u64>>,
}

/// `[capacity]`: how `stampede capacity` searches (flags override each key).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacitySpec {
    /// The SLO, e.g. `"delivery_p99_ms<100,lost==0"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Spanned<String>>,
    /// `"clients"` (default) or `"rate"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vary: Option<Spanned<String>>,
    /// First step (default: the group's clients or the publisher's rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Spanned<f64>>,
    /// Growth per step (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<Spanned<f64>>,
    /// Largest step (default 100000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Spanned<f64>>,
    /// Explicit steps instead of start × factorⁿ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Spanned<Vec<f64>>>,
    /// Bisection rounds after the first failing step (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refine: Option<Spanned<u32>>,
}

/// `[sweep]`: the scenario's phases run once per value of one parameter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// A `--set` style key path, e.g. `groups.poll.interval`.
    pub parameter: Spanned<String>,
    /// The values, in run order; each as it would be written in the file.
    pub values: Spanned<Vec<Spanned<toml::Value>>>,
}

/// A threshold: `"< 50"`, or a table with `limit`, `abort_on_fail`, `grace`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ThresholdSpec {
    /// Just the condition.
    Limit(String),
    /// The condition and early-abort settings.
    Full {
        /// The condition, e.g. `"< 50"`.
        limit: String,
        /// Stop the run once breached.
        #[serde(default)]
        abort_on_fail: bool,
        /// Measured time before an abort may happen (default 10s).
        #[serde(default)]
        grace: Option<Dur>,
    },
}

/// The event stream the publisher drives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publisher {
    /// Events per second, over all channels.
    pub rate: Spanned<f64>,
    /// Size of each event's payload in bytes (the envelope is padded to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_bytes: Option<Spanned<u64>>,
    /// Number of channels; clients are spread over them round-robin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Spanned<u64>>,
    /// Channel names are `<prefix>-p<phase>-c<index>`; the default prefix
    /// is unique per run, so no run sees another's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_prefix: Option<Spanned<String>>,
    /// Publish over HTTP/2 with prior knowledge (h2c), for a target that
    /// speaks only HTTP/2 on its port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2: Option<Spanned<bool>>,
    /// Publish-rate stages from the phase start: `{ rate = 50, for = "10s" }`,
    /// `{ burst = 500, for = "2s" }`, `{ to = 100, over = "10s" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Spanned<Vec<Spanned<RateStageSpec>>>>,
}

/// One publish-rate stage as written: steady `{ rate = R, for = D }`, burst
/// `{ burst = R, for = D }` or ramp `{ to = R, over = D }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateStageSpec {
    /// A steady rate (events/s) that stays after the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Spanned<f64>>,
    /// A burst rate (events/s); the rate before it resumes afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<Spanned<f64>>,
    /// The rate (events/s) a ramp ends at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Spanned<f64>>,
    /// Length of a steady or burst stage.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Spanned<Dur>>,
    /// Length of a ramp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over: Option<Spanned<Dur>>,
}

/// One client group: N clients of one transport.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Label in reports; defaults to the transport name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Which transport the clients use.
    pub transport: Spanned<TransportKind>,
    /// Number of simulated clients.
    pub clients: Spanned<u64>,
    /// Interval polling: time between intended poll starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Spanned<Dur>>,
    /// Long polling: how long the server may hold a poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Spanned<Dur>>,
    /// Polling kinds: reuse one connection (default) or connect per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Spanned<bool>>,
    /// WebSocket: interval between client pings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_interval: Option<Spanned<Dur>>,
    /// WebSocket / echo: offer permessage-deflate, as browsers do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Spanned<bool>>,
    /// What a client does when its session fails or ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect: Option<Reconnect>,
    /// Request / echo: requests (messages) per second over the whole group,
    /// sent from intended instants (open model); absent = as fast as each
    /// connection goes (closed model, request only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Spanned<f64>>,
    /// Request / echo: path on the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Spanned<String>>,
    /// Request: several paths, used round-robin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Spanned<Vec<String>>>,
    /// Request: HTTP method (default GET).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Spanned<String>>,
    /// Request: body (`${VAR}` expanded from the environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Spanned<String>>,
    /// Request: extra headers (`${VAR}` expanded; never written to results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    /// Request: statuses that count as success (default any 2xx or 3xx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<Spanned<Vec<u16>>>,
    /// Request: HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2: Option<Spanned<bool>>,
    /// Echo: size of each message in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_bytes: Option<Spanned<u64>>,
    /// SSE / NDJSON over HTTP/2: clients whose streams share one connection
    /// (default 1), as a browser page's EventSources share one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams_per_connection: Option<Spanned<u64>>,
    /// SSE / NDJSON over HTTP/2: the stream flow-control window we announce
    /// (bytes, `SETTINGS_INITIAL_WINDOW_SIZE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_window: Option<Spanned<u64>>,
    /// SSE / NDJSON over HTTP/2: the connection's receive window (bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_window: Option<Spanned<u64>>,
    /// Socket.IO: `polling`, `websocket` or `upgrade` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Spanned<crate::transport::socketio::EngineMode>>,
    /// ws-rpc: `{ request = '...{id}...', id = "/id", timeout = "5s" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc: Option<Spanned<crate::transport::ws_rpc::RpcSpec>>,
    /// Connected clients over time instead of `ramp_up`:
    /// `[{ to = 5000, over = "60s" }, { hold = "2m" }, { to = 0, over = "10s" }]`
    /// (`clients` is then the ceiling no stage may pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Spanned<Vec<Spanned<StageSpec>>>>,
    /// Open arrival rate of new connections instead of `ramp_up`:
    /// `{ rate = 200, until = "60s" }` (`clients` is the most that arrive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival: Option<Spanned<ArrivalSpec>>,
    /// Session lengths: `{ distribution = "exponential", mean = "30s" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Spanned<SessionLengthSpec>>,
    /// Leaves and rejoins per second over the group: `{ rate = 5, gap = "1s" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn: Option<Spanned<ChurnSpec>>,
    /// A signed token per client, `{token}` in templates (see
    /// [`crate::identity::token`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Spanned<crate::scenario_keys::TokenSpec>>,
    /// Every client publishes to its room: `{ rate = 0.2, via = "same" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<Spanned<crate::scenario_keys::ClientPublishSpec>>,
}

impl Group {
    /// The keys only some transports accept ([`crate::transport::GROUP_KEYS`],
    /// same order), with their places when given.
    pub fn transport_keys(&self) -> [(&'static str, Option<std::ops::Range<usize>>); 18] {
        fn at<T>(v: &Option<Spanned<T>>) -> Option<std::ops::Range<usize>> {
            v.as_ref().map(|v| v.span())
        }
        [
            ("interval", at(&self.interval)),
            ("timeout", at(&self.timeout)),
            ("ping_interval", at(&self.ping_interval)),
            ("compression", at(&self.compression)),
            ("keep_alive", at(&self.keep_alive)),
            ("rate", at(&self.rate)),
            ("url", at(&self.url)),
            ("urls", at(&self.urls)),
            ("method", at(&self.method)),
            ("body", at(&self.body)),
            ("expect_status", at(&self.expect_status)),
            ("http2", at(&self.http2)),
            ("message_bytes", at(&self.message_bytes)),
            ("streams_per_connection", at(&self.streams_per_connection)),
            ("stream_window", at(&self.stream_window)),
            ("connection_window", at(&self.connection_window)),
            ("engine", at(&self.engine)),
            ("rpc", at(&self.rpc)),
        ]
    }
}

/// `arrival = { rate = 200, until = "60s" }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalSpec {
    /// New connections per second over the group.
    pub rate: f64,
    /// No arrivals after this (from the phase start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Dur>,
}

/// `session = { distribution = "fixed" | "uniform" | "exponential", ... }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionLengthSpec {
    /// `fixed` (default), `uniform` or `exponential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    /// Mean length (fixed, exponential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<Dur>,
    /// Shortest session (uniform: required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Dur>,
    /// Longest session (uniform: required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Dur>,
}

/// `churn = { rate = 5, gap = "1s" }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnSpec {
    /// Leaves per second over the group.
    pub rate: f64,
    /// Time away before rejoining (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<Dur>,
}

/// One load stage as written: `{ to = N, over = "60s" }` or `{ hold = "2m" }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// Clients connected at the stage's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u64>,
    /// Length of a ramp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over: Option<Dur>,
    /// Length of a hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Dur>,
}

/// Reconnect policy of a group.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reconnect {
    /// Attempts in a row before the client gives up (0 = never reconnect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<Spanned<u32>>,
    /// First backoff; doubles per failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Spanned<Dur>>,
    /// Upper bound of the backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff: Option<Spanned<Dur>>,
    /// Fraction of each backoff drawn at random, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Spanned<f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_keys_are_the_registry_group_keys() {
        let g: Group = toml::from_str("transport = \"poll\"\nclients = 1\n").unwrap();
        let names: Vec<_> = g.transport_keys().iter().map(|(k, _)| *k).collect();
        assert_eq!(names, crate::transport::GROUP_KEYS);
    }
}
