//! Client transports: how one simulated client opens a session with the
//! target and observes the next message(s). Each transport is one file
//! holding its wire session *and* its configuration (label, the group keys
//! it accepts, its profile section): the `Transport` trait. The
//! `registry!` list below is the one place that lists them; it generates
//! `TransportKind` (whose serde name is the scenario's `transport = "..."`),
//! its dispatch and the profile's `Sections`.
//!
//! A transport must not know *when* it runs (that is the load module's job)
//! nor what a payload means (the client decodes envelopes): it reports what
//! happened on the wire through a `Sink`. It never imports load, metrics or
//! report.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::fault::Fault;
use crate::net::IoCounters;

pub mod h1;
mod http;

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
    "keep_alive",
    "rate",
    "url",
    "urls",
    "method",
    "body",
    "expect_status",
    "http2",
    "message_bytes",
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

/// Expands the registry: the modules, [`TransportKind`], its dispatch and
/// the profile's [`Sections`].
macro_rules! registry {
    ($($(#[$doc:meta])* $variant:ident => $module:ident :: $ty:ident $(, section $field:ident)?;)*) => {
        $(pub mod $module;)*

        /// The transports stampede can drive (the serde name is the
        /// scenario's `transport = "..."`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum TransportKind {
            $($(#[$doc])* $variant,)*
        }

        impl TransportKind {
            /// Every kind, in report order.
            pub const ALL: [TransportKind; [$(stringify!($variant)),*].len()] =
                [$(TransportKind::$variant),*];

            /// The kind's config side.
            pub const fn info(self) -> Info {
                match self {
                    $(TransportKind::$variant => Info::of::<$module::$ty>(),)*
                }
            }

            /// Calls `v.visit::<T>()` with this kind's transport type: the
            /// single place where a kind meets its implementation.
            pub fn visit<V: KindVisitor>(self, v: V) -> V::Output {
                match self {
                    $(TransportKind::$variant => v.visit::<$module::$ty>(),)*
                }
            }

            /// The key of its `[profile.<key>]` section, if it has one.
            pub fn section_key(self) -> Option<&'static str> {
                match self {
                    $(TransportKind::$variant => registry!(@key $($field)?),)*
                }
            }

            /// True when its transport type declares a profile section.
            #[doc(hidden)]
            pub fn declares_section(self) -> bool {
                match self {
                    $(TransportKind::$variant => std::any::TypeId::of::<
                        <$module::$ty as Transport>::Section,
                    >() != std::any::TypeId::of::<NoSection>(),)*
                }
            }
        }

        /// How a server speaks each transport: one optional section per
        /// transport that has one, in registry order.
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Sections {
            $($(
                #[doc = concat!("`[profile.", stringify!($field), "]`.")]
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<<$module::$ty as Transport>::Section>,
            )?)*
        }

        impl Sections {
            /// The section keys, in registry order.
            pub const KEYS: &'static [&'static str] = &[$($(stringify!($field),)?)*];

            /// The sections of preset profile `profile`.
            pub fn preset(profile: &str) -> Sections {
                Sections {
                    $($($field: <$module::$ty as Transport>::preset(profile),)?)*
                }
            }

            /// The URL template used for `kind`, if supported.
            pub fn url_for(&self, kind: TransportKind) -> Option<&str> {
                let sections = self;
                match kind {
                    $(TransportKind::$variant => registry!(@url sections $($field)?),)*
                }
            }

            /// Checks every section given, in registry order.
            pub fn check(&self) -> Result<(), String> {
                $($(
                    if let Some(s) = &self.$field {
                        s.check(stringify!($field))?;
                    }
                )?)*
                Ok(())
            }

            /// Replaces the sections `table` names (removing their keys);
            /// on failure, the section's key and the message.
            pub fn replace_from(&mut self, table: &mut toml::Table) -> Result<(), (&'static str, String)> {
                $($(
                    if let Some(v) = table.remove(stringify!($field)) {
                        self.$field = Some(v.try_into().map_err(|e: toml::de::Error| {
                            (stringify!($field), e.message().trim().to_string())
                        })?);
                    }
                )?)*
                Ok(())
            }
        }
    };
    (@key $field:ident) => { Some(stringify!($field)) };
    (@key) => { None };
    (@url $s:ident $field:ident) => { $s.$field.as_ref().map(Section::url) };
    // Transports without a section take their URLs from their group.
    (@url $s:ident) => { Some("") };
}

// The registry: one line per transport, in report order. A transport is its
// file plus its line here.
registry! {
    /// Interval polling with a cursor.
    Poll => poll::Poll, section poll;
    /// Long polling: held until an event or the server's timeout.
    LongPoll => long_poll::LongPoll, section long_poll;
    /// Server-Sent Events.
    Sse => sse::Sse, section sse;
    /// Chunked HTTP streaming of newline-delimited JSON.
    Ndjson => ndjson::Ndjson, section ndjson;
    /// WebSocket subscription.
    Websocket => websocket::WebSocket, section websocket;
    /// Plain HTTP requests, no publisher (wrk / wrk2 style).
    Request => request::Request;
    /// WebSocket echo round trips.
    Echo => echo::Echo;
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

    /// The kinds that accept group key `key`, in registry order.
    pub fn accepting(key: &str) -> Vec<TransportKind> {
        TransportKind::ALL
            .into_iter()
            .filter(|k| k.info().keys.contains(&key))
            .collect()
    }
}

/// Generic code that runs with a concrete transport type.
pub trait KindVisitor {
    /// What the visit produces.
    type Output;
    /// Runs with transport `T`.
    fn visit<T: Transport>(self) -> Self::Output;
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
    /// Request mode: what to send.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<request::RequestPlan>,
    /// Echo mode: size of each message in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_bytes: Option<usize>,
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

/// Where and how one session connects.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// Resolved target address.
    pub addr: SocketAddr,
    /// `Host` header / authority.
    pub authority: String,
    /// Path (with the channel) for this transport.
    pub path: String,
    /// Channel name (empty for request and echo load).
    pub channel: String,
    /// How this server speaks each transport.
    pub profile: Arc<Sections>,
    /// Headers for every request and handshake, secrets expanded.
    pub headers: Arc<[(::http::HeaderName, ::http::HeaderValue)]>,
    /// Transport parameters.
    pub params: Params,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Local addresses connections come from.
    pub sources: Arc<crate::net::Sources>,
}

/// What a transport reports while it works. Implemented by the client.
pub trait Sink: Send {
    /// A TCP connection was established after `tcp` of connecting.
    fn connected(&mut self, tcp: Duration);
    /// The TLS handshake of that connection took `took`.
    fn tls_handshake(&mut self, _took: Duration) {}
    /// The subscription was confirmed `took` after TCP connect (WebSocket
    /// upgrade, or first response of an HTTP subscription).
    fn subscribed(&mut self, took: Duration);
    /// A TCP connection was closed.
    fn disconnected(&mut self);
    /// One event payload arrived at `at`.
    fn message(&mut self, payload: &[u8], at: Instant);
    /// One request (or echo round trip) completed.
    fn request(&mut self, sample: RequestSample);
    /// The server ended a held poll without an event (long-poll timeout).
    fn server_timeout(&mut self);
    /// A fault that did not end the session (e.g. a bad line that was skipped).
    fn fault(&mut self, fault: Fault);
}

/// Opens the session's TCP connection with its wire bytes counted (and
/// TLS over it for an `https://` target), reporting the connect and
/// handshake times: the first step of every transport.
async fn dial<S: Sink>(
    spec: &SessionSpec,
    io: &Arc<IoCounters>,
    sink: &mut S,
) -> Result<crate::net::Stream, Fault> {
    let (tcp, took) =
        crate::net::connect_from(spec.addr, spec.connect_timeout, &spec.sources).await?;
    sink.connected(took);
    let counted = crate::net::Counting::new(tcp, io.clone());
    let Some(tls) = &spec.params.tls else {
        return Ok(crate::net::Stream::Plain(counted));
    };
    match tls.handshake(counted, spec.params.request_timeout).await {
        Ok((stream, took)) => {
            sink.tls_handshake(took);
            Ok(stream)
        }
        Err(f) => {
            sink.disconnected();
            Err(f)
        }
    }
}

/// One completed exchange, timed both ways: from its intended start
/// (corrected for coordinated omission) and from when it was really sent.
#[derive(Debug, Clone, Copy)]
pub struct RequestSample {
    /// When the schedule meant it to start.
    pub intended: Instant,
    /// When it was written to the connection.
    pub sent: Instant,
    /// When its last byte arrived.
    pub done: Instant,
    /// HTTP status, for HTTP exchanges.
    pub status: Option<u16>,
    /// True when it carried no event (an empty poll).
    pub empty: bool,
}

/// How a call to `next` ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The session goes on.
    Continue,
    /// The server ended the session normally.
    Ended,
}

/// One client's session with the target, and its configuration.
pub trait Transport: Sized + Send + 'static {
    /// The scenario / CSV label (its `TransportKind`'s serde name).
    const LABEL: &'static str;
    /// The group keys of [`GROUP_KEYS`] it accepts.
    const KEYS: &'static [&'static str];
    /// Subscribes to the publisher's event stream.
    const SUBSCRIBES: bool = true;
    /// Issues one request per exchange.
    const REQUEST_BASED: bool = false;
    /// Counts empty responses.
    const EMPTY_RESPONSES: bool = false;
    /// Counts polls the server ended without an event.
    const SERVER_TIMEOUTS: bool = false;
    /// An unexpected status is both a completed request and an error.
    const STATUS_IS_RESPONSE: bool = false;
    /// Its profile section ([`NoSection`] when it has none).
    type Section: Section;

    /// Its section in the preset profile `profile` (`builtin`, `nchan`),
    /// if that server speaks it.
    fn preset(profile: &str) -> Option<Self::Section>;

    /// Connects and subscribes. `cursor` resumes after the last event a
    /// previous session of this client saw.
    fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        cursor: Option<String>,
        sink: &mut S,
    ) -> impl Future<Output = Result<Self, Fault>> + Send;

    /// Runs one exchange (request-based kinds, intended to start at
    /// `intended`) or waits for the next message(s) (streaming kinds).
    fn next<S: Sink>(
        &mut self,
        intended: Instant,
        sink: &mut S,
    ) -> impl Future<Output = Result<Step, Fault>> + Send;

    /// Cursor to resume from, if this transport can resume.
    fn cursor(&self) -> Option<String>;

    /// A reconnect delay the server asked for (SSE `retry:`).
    fn retry_hint(&self) -> Option<Duration> {
        None
    }

    /// Ends the session politely (close frame and the like).
    fn close(self) -> impl Future<Output = ()> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

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
