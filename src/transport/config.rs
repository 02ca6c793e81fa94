//! The configuration side of transports: what each transport file
//! declares beside its session (label, group keys, flags, profile section
//! and presets), the checks sections share, and the typed parameters a
//! group gives its sessions.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Transport, TransportKind};

/// A transport's config side, walked by `registry!`: what its scenario
/// and profile say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// The scenario / CSV label.
    pub label: &'static str,
    /// The transport-specific group keys it accepts (see
    /// [`GROUP_KEYS`]).
    pub keys: &'static [&'static str],
    /// Subscribes to the publisher's event stream.
    pub subscribes: bool,
    /// Issues one request per exchange.
    pub request_based: bool,
    /// Counts empty responses (`empty_responses`).
    pub empty_responses: bool,
    /// Counts polls the server ended without an event (`server_timeouts`).
    pub server_timeouts: bool,
    /// An unexpected status is both a completed request and an error.
    pub status_is_response: bool,
    /// A session is confirmed after connecting (`subscribe_*` columns).
    pub confirms_sessions: bool,
    /// Can send a message on its own connection (`publish.via = "same"`).
    pub sends: bool,
    /// Sessions may upgrade from polling to a WebSocket (`upgrade_*`).
    pub upgrades: bool,
    /// Counts messages that are not data (`control_messages`,
    /// `other_messages`).
    pub counts_messages: bool,
}

impl Info {
    /// The config side of transport `T`.
    pub const fn of<T: Transport>() -> Info {
        Info {
            label: T::LABEL,
            keys: T::KEYS,
            subscribes: T::SUBSCRIBES,
            request_based: T::REQUEST_BASED,
            empty_responses: T::EMPTY_RESPONSES,
            server_timeouts: T::SERVER_TIMEOUTS,
            status_is_response: T::STATUS_IS_RESPONSE,
            confirms_sessions: T::CONFIRMS_SESSIONS,
            sends: T::SENDS,
            upgrades: T::UPGRADES,
            counts_messages: T::COUNTS_MESSAGES,
        }
    }
}

/// Group keys that only some transports accept, in the order they are
/// checked; each transport lists the ones it takes in `Transport::KEYS`
/// (the registry test checks every listed key is one of these).
pub const GROUP_KEYS: &[&str] = &[
    "interval",
    "timeout",
    "ping_interval",
    "compression",
    "keep_alive",
    "rate",
    "url",
    "urls",
    "method",
    "body",
    "expect_status",
    "http2",
    "message_bytes",
    "streams_per_connection",
    "stream_window",
    "connection_window",
    "engine",
    "rpc",
];

/// A transport's `[profile.<name>]` section.
pub trait Section:
    std::fmt::Debug + Clone + Serialize + serde::de::DeserializeOwned + Send + Sync + 'static
{
    /// The path template (`{channel}` is replaced).
    fn url(&self) -> &str;
    /// Checks what serde cannot; `key` names the section in messages.
    fn check(&self, key: &str) -> Result<(), String>;
}

/// The section type of a transport without one (it does not subscribe:
/// its URLs come from its group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoSection {}

impl Section for NoSection {
    fn url(&self) -> &str {
        match *self {}
    }
    fn check(&self, _: &str) -> Result<(), String> {
        match *self {}
    }
}

/// Checks that a section's `url` is a path, as every profile path must be.
pub fn path_ok(url: &str, what: &str) -> Result<(), String> {
    if !url.starts_with('/') {
        return Err(format!(
            "{what}.url {url:?} must be a path starting with `/` (the target URL gives host and port)"
        ));
    }
    Ok(())
}

/// Fills `{channel}` into a template.
pub fn fill(template: &str, channel: &str) -> String {
    template.replace("{channel}", channel)
}

/// Checks a list of statuses a section accepts.
pub fn status_ok(list: &[u16], what: &str) -> Result<(), String> {
    if list.is_empty() || list.iter().any(|s| !(100..=599).contains(s)) {
        Err(format!("{what}: give HTTP statuses between 100 and 599"))
    } else {
        Ok(())
    }
}

impl TransportKind {
    /// The scenario / CSV label.
    pub fn label(self) -> &'static str {
        self.info().label
    }

    /// True for transports that issue one request per exchange.
    pub fn is_request_based(self) -> bool {
        self.info().request_based
    }

    /// True for subscribers of the publisher's event stream (false for
    /// request and echo load, which need no publisher).
    pub fn subscribes(self) -> bool {
        self.info().subscribes
    }

    /// True when intended sends are never skipped: a late send goes out at
    /// once and its latency counts from the intended instant (wrk2's open
    /// model). Pollers skip missed polls instead, as real pollers do.
    pub fn catches_up(self) -> bool {
        !self.subscribes()
    }

    /// True for interval and long pollers (empty responses, statuses).
    pub fn is_poller(self) -> bool {
        self.info().empty_responses
    }

    /// True for long pollers (server-ended polls).
    pub fn is_long_poller(self) -> bool {
        self.info().server_timeouts
    }

    /// True when a session is confirmed after connecting (a subscription,
    /// or echo's WebSocket upgrade): plain requests have none.
    pub fn confirms_sessions(self) -> bool {
        self.info().confirms_sessions
    }

    /// The transport of `label` (the scenario / CSV label).
    pub fn from_label(label: &str) -> Option<TransportKind> {
        TransportKind::ALL.into_iter().find(|k| k.label() == label)
    }

    /// The kinds that accept group key `key`, in registry order.
    pub fn accepting(key: &str) -> Vec<TransportKind> {
        TransportKind::ALL
            .into_iter()
            .filter(|k| k.info().keys.contains(&key))
            .collect()
    }
}

/// Per-group transport parameters, already validated.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Polling kinds: reuse one connection.
    pub keep_alive: bool,
    /// Long polling: how long the server may hold a poll.
    #[serde(with = "crate::units::secs")]
    pub hold_timeout: Duration,
    /// Client-side limit for one request or handshake.
    #[serde(with = "crate::units::secs")]
    pub request_timeout: Duration,
    /// WebSocket: client ping interval.
    #[serde(with = "crate::units::opt_secs")]
    pub ping_interval: Option<Duration>,
    /// WebSocket / echo: offer permessage-deflate (group `compression`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub compression: bool,
    /// Request mode: what to send.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<super::request::RequestPlan>,
    /// Echo mode: size of each message in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_bytes: Option<usize>,
    /// SSE / NDJSON over HTTP/2 (`http2 = true` on a streaming group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub h2: Option<super::h2::H2Params>,
    /// Socket.IO: Engine.IO polling, WebSocket, or the upgrade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<super::socketio::EngineMode>,
    /// ws-rpc: the request template, the reply's id pointer, the timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc: Option<Arc<super::ws_rpc::RpcPlan>>,
    /// Limits against hostile servers.
    pub limits: Limits,
    /// TLS to the target (`https://` / `wss://`), set up once per run.
    #[serde(skip)]
    pub tls: Option<Arc<crate::net::Tls>>,
}

/// Limits against hostile servers: exceeding one is a `limit` fault (or a
/// `timeout` for `read_timeout`), never unbounded memory or a hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Largest single message: an event, a poll body's message, a WebSocket
    /// message, an NDJSON line.
    pub max_message_bytes: usize,
    /// Largest HTTP response head (status line and headers).
    pub max_header_bytes: usize,
    /// Largest SSE line, and SSE event block being assembled.
    pub max_sse_line_bytes: usize,
    /// Most bytes one client holds unconsumed (a whole poll body, a partial
    /// stream line).
    pub max_buffered_bytes: usize,
    /// A streaming connection that delivers no byte for this long is dead
    /// (WebSocket: pongs count, so with `ping_interval` this is the ping
    /// timeout).
    #[serde(rename = "read_timeout_s", with = "crate::units::secs")]
    pub read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 4 << 20,
            max_header_bytes: 64 << 10,
            max_sse_line_bytes: 4 << 20,
            max_buffered_bytes: 64 << 20,
            read_timeout: Duration::from_secs(60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Sections;

    /// Walks the registry: what each transport file declares agrees with
    /// its line there and with the scenario's group keys.
    #[test]
    fn registry_is_consistent() {
        for kind in TransportKind::ALL {
            let info = kind.info();
            let serde_name = serde_json::to_value(kind).unwrap();
            assert_eq!(serde_name, info.label, "{kind:?}: LABEL is its serde name");
            for key in info.keys {
                assert!(
                    GROUP_KEYS.contains(key),
                    "{kind:?}: unknown group key {key}"
                );
            }
            assert_eq!(
                kind.section_key().is_some(),
                kind.declares_section(),
                "{kind:?}: a Section type needs `section <key>` on its registry line, and back"
            );
            assert_eq!(
                Sections::default().url_for(kind).is_none(),
                kind.section_key().is_some(),
                "{kind:?}: without a section its URLs come from the group"
            );
            if !info.subscribes {
                assert!(
                    kind.section_key().is_none(),
                    "{kind:?}: a non-subscriber has no section"
                );
            }
        }
        for key in GROUP_KEYS {
            assert!(
                !TransportKind::accepting(key).is_empty(),
                "group key {key} is accepted by no transport"
            );
        }
        let labels: std::collections::HashSet<_> =
            TransportKind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(labels.len(), TransportKind::ALL.len(), "labels are unique");
    }
}
