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

pub mod coding;
mod config;
pub mod deadline;
pub mod h1;
pub mod h2;
mod http;
pub mod json_id;
pub mod personal;
pub mod pmd;
pub mod script;

pub use config::{fill, path_ok, status_ok, Info, Limits, NoSection, Params, Section, GROUP_KEYS};

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
    /// STOMP 1.2 over WebSocket.
    Stomp => stomp::Stomp, section stomp;
    /// MQTT 3.1.1 / 5 over WebSocket.
    Mqtt => mqtt::Mqtt, section mqtt;
    /// Socket.IO v4 (Engine.IO polling, WebSocket, or the upgrade).
    Socketio => socketio::SocketIo, section socketio;
    /// Request–reply over a WebSocket, matched by correlation id (JSON-RPC).
    WsRpc => ws_rpc::WsRpc;
}

/// Generic code that runs with a concrete transport type.
pub trait KindVisitor {
    /// What the visit produces.
    type Output;
    /// Runs with transport `T`.
    fn visit<T: Transport>(self) -> Self::Output;
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
    /// The client group's name (`{group}` in protocol client ids).
    pub group: Arc<str>,
    /// How this server speaks each transport.
    pub profile: Arc<Sections>,
    /// How the client finds the envelope in a message (the profile's
    /// `message_path`, `control` and `strict`).
    pub extractor: Arc<crate::extract::Extractor>,
    /// Headers for every request and handshake, secrets expanded.
    pub headers: Arc<[(::http::HeaderName, ::http::HeaderValue)]>,
    /// Transport parameters.
    pub params: Params,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Local addresses connections come from.
    pub sources: Arc<crate::net::Sources>,
    /// The WebSocket session script, compiled with the plan (None: the
    /// transport compiles the profile's own, as for a hand-built spec).
    pub script: Option<Arc<script::Compiled>>,
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
    /// A message that is not data arrived: a heartbeat, a keep-alive line,
    /// an SSE event of a type the profile does not count as data. Counted
    /// apart; never an error.
    fn control(&mut self) {}
    /// An idempotent request was re-sent on a fresh connection because the
    /// server closed the reused one as it went out.
    fn retried(&mut self) {}
    /// A session moved from HTTP polling to a WebSocket (Engine.IO's
    /// upgrade), taking `took` from the WebSocket's connect to the switch.
    fn upgraded(&mut self, _took: Duration) {}
    /// A fault that did not end the session (e.g. a bad line that was skipped).
    fn fault(&mut self, fault: Fault);
    /// The server did not confirm the subscription in time: the session
    /// goes on, and the client counts as subscribed since it first tried
    /// (so a server that never confirms shows loss, not silence).
    fn unconfirmed(&mut self) {}
    /// Who the client is (its templates' values), if the sink knows.
    fn who(&self) -> Option<&crate::identity::Who> {
        None
    }
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
    /// A session is confirmed after connecting (a subscription, or echo's
    /// WebSocket upgrade); plain requests have none.
    const CONFIRMS_SESSIONS: bool = true;
    /// Can send a client's own message on its session (`send`).
    const SENDS: bool = false;
    /// Its sessions may upgrade from polling to a WebSocket (`upgrade_*`).
    const UPGRADES: bool = false;
    /// Counts messages that are not data (`control_messages`,
    /// `other_messages`): subscribers, and exchanges whose connection may
    /// carry server pushes besides the answers.
    const COUNTS_MESSAGES: bool = Self::SUBSCRIBES;
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

    /// Request-based kinds, between scheduled exchanges: observes the
    /// session until `until` (the next exchange's intended instant), for
    /// kinds with exchanges in flight meanwhile (answers, server pushes,
    /// their timeouts). Kinds with one exchange at a time just wait.
    fn idle<S: Sink>(
        &mut self,
        until: Instant,
        _sink: &mut S,
    ) -> impl Future<Output = Result<Step, Fault>> + Send {
        async move {
            tokio::time::sleep_until(until.into()).await;
            Ok(Step::Continue)
        }
    }

    /// At the phase end, before `close`: waits, at most until `until`, for
    /// the answers to exchanges still in flight, reporting them. Kinds with
    /// one exchange at a time have none in flight here.
    fn drain<S: Sink>(
        &mut self,
        _until: Instant,
        _sink: &mut S,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Cursor to resume from, if this transport can resume.
    fn cursor(&self) -> Option<String>;

    /// A reconnect delay the server asked for (SSE `retry:`).
    fn retry_hint(&self) -> Option<Duration> {
        None
    }

    /// Sends one message of the client's own on the session (a room
    /// member publishing): only transports with `SENDS`.
    fn send(&mut self, _message: String) -> impl Future<Output = Result<(), Fault>> + Send {
        async {
            Err(Fault::new(
                crate::fault::ErrorKind::Other,
                "this transport cannot send on its session",
            ))
        }
    }

    /// Ends the session politely (close frame and the like).
    fn close(self) -> impl Future<Output = ()> + Send;
}
