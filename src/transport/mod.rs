//! Client transports: how one simulated client opens a session with the
//! target and observes the next message(s). Each transport is one file behind
//! the `Transport` trait; `TransportKind` is the one place that lists them
//! (its serde name is the scenario's `transport = "..."`).
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
use crate::profile::Profile;

pub mod echo;
pub mod h1;
mod http;
pub mod long_poll;
pub mod ndjson;
pub mod poll;
pub mod request;
pub mod sse;
pub mod websocket;

/// The transports stampede can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    /// Interval polling with a cursor.
    Poll,
    /// Long polling: held until an event or the server's timeout.
    LongPoll,
    /// Server-Sent Events.
    Sse,
    /// Chunked HTTP streaming of newline-delimited JSON.
    Ndjson,
    /// WebSocket subscription.
    Websocket,
    /// Plain HTTP requests, no publisher (wrk / wrk2 style).
    Request,
    /// WebSocket echo round trips.
    Echo,
}

impl TransportKind {
    /// Every kind, in report order.
    pub const ALL: [TransportKind; 7] = [
        TransportKind::Poll,
        TransportKind::LongPoll,
        TransportKind::Sse,
        TransportKind::Ndjson,
        TransportKind::Websocket,
        TransportKind::Request,
        TransportKind::Echo,
    ];

    /// The scenario / CSV label.
    pub fn label(self) -> &'static str {
        match self {
            TransportKind::Poll => "poll",
            TransportKind::LongPoll => "long-poll",
            TransportKind::Sse => "sse",
            TransportKind::Ndjson => "ndjson",
            TransportKind::Websocket => "websocket",
            TransportKind::Request => "request",
            TransportKind::Echo => "echo",
        }
    }

    /// True for transports that issue one request per exchange.
    pub fn is_request_based(self) -> bool {
        matches!(
            self,
            TransportKind::Poll
                | TransportKind::LongPoll
                | TransportKind::Request
                | TransportKind::Echo
        )
    }

    /// True for subscribers of the publisher's event stream (false for
    /// request and echo load, which need no publisher).
    pub fn subscribes(self) -> bool {
        !matches!(self, TransportKind::Request | TransportKind::Echo)
    }

    /// True when intended sends are never skipped: a late send goes out at
    /// once and its latency counts from the intended instant (wrk2's open
    /// model). Pollers skip missed polls instead, as real pollers do.
    pub fn catches_up(self) -> bool {
        !self.subscribes()
    }

    /// Calls `v.visit::<T>()` with this kind's transport type: the single
    /// place where a kind meets its implementation.
    pub fn visit<V: KindVisitor>(self, v: V) -> V::Output {
        match self {
            TransportKind::Poll => v.visit::<poll::Poll>(),
            TransportKind::LongPoll => v.visit::<long_poll::LongPoll>(),
            TransportKind::Sse => v.visit::<sse::Sse>(),
            TransportKind::Ndjson => v.visit::<ndjson::Ndjson>(),
            TransportKind::Websocket => v.visit::<websocket::WebSocket>(),
            TransportKind::Request => v.visit::<request::Request>(),
            TransportKind::Echo => v.visit::<echo::Echo>(),
        }
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
    pub profile: Arc<Profile>,
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

/// One client's session with the target.
pub trait Transport: Sized + Send + 'static {
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
