//! Fault injection for the reference server: a target that misbehaves on
//! purpose, at a rate per fault, so that stampede's own handling of broken
//! servers is exercised (`stampede serve --fault reset=0.05,...`, or a
//! scenario's `[faults]` table).
//!
//! Each subscriber or request route (`/poll`, `/lp`, `/sse`, `/stream`,
//! `/ws`, `/echo`, `/hello`; never `/pub` or the controls) rolls once per
//! request among the faults that apply to it (SSE faults only on `/sse`):
//! with probability `rate` that fault is enacted.
//! Faults below HTTP (reset, stall, half-open, slow headers, malformed
//! HTTP) are enacted by the connection's own socket wrapper, armed by the
//! request; the others are answers built here. Every fault maps to exactly
//! one error kind on the client ([`FaultKind::counted_as`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use http::{header, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::fault::ErrorKind;
use crate::rng::Rng;

/// The faults the target can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// RST a few hundred bytes into the response (mid-stream for streams).
    Reset,
    /// Hold the response for `stall_for` before writing it.
    Stall,
    /// Go silent and never send FIN (held for up to a minute).
    HalfOpen,
    /// Write the response head one byte every 200 ms.
    SlowHeaders,
    /// Answer bytes that are not HTTP.
    MalformedHttp,
    /// Answer `503 Service Unavailable`.
    Status5xx,
    /// Answer `429 Too Many Requests` with `Retry-After: 1`.
    Status429,
    /// SSE: two events without the blank line between them.
    SseNoBlankLine,
    /// SSE: one line of `oversize_bytes`.
    SseHugeLine,
    /// SSE: an event that is not UTF-8.
    SseInvalidUtf8,
    /// WebSocket: a frame with a reserved opcode.
    WsBadOpcode,
    /// WebSocket: a masked frame from the server (servers must not mask).
    WsMaskedFrame,
    /// WebSocket: a frame header claiming a 1 TiB payload.
    WsOversizedFrame,
    /// WebSocket: the TCP connection ends without a close frame.
    WsNoClose,
    /// One message (poll body, SSE event, NDJSON line, WebSocket message)
    /// of `oversize_bytes`.
    OversizedMessage,
}

/// A route that faults may hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Poll,
    LongPoll,
    Sse,
    Ndjson,
    Ws,
    Echo,
    Hello,
}

impl Route {
    const ALL: [Route; 7] = [
        Route::Poll,
        Route::LongPoll,
        Route::Sse,
        Route::Ndjson,
        Route::Ws,
        Route::Echo,
        Route::Hello,
    ];

    fn of(path: &str) -> Option<Route> {
        let first = path.trim_start_matches('/').split('/').next()?;
        Some(match first {
            "poll" => Route::Poll,
            "lp" => Route::LongPoll,
            "sse" => Route::Sse,
            "stream" => Route::Ndjson,
            "ws" => Route::Ws,
            "echo" => Route::Echo,
            "hello" => Route::Hello,
            _ => return None,
        })
    }

    fn streams(self) -> bool {
        matches!(self, Route::Sse | Route::Ndjson | Route::Ws | Route::Echo)
    }
}

impl FaultKind {
    /// Every fault, in documentation order.
    pub const ALL: [FaultKind; 15] = [
        FaultKind::Reset,
        FaultKind::Stall,
        FaultKind::HalfOpen,
        FaultKind::SlowHeaders,
        FaultKind::MalformedHttp,
        FaultKind::Status5xx,
        FaultKind::Status429,
        FaultKind::SseNoBlankLine,
        FaultKind::SseHugeLine,
        FaultKind::SseInvalidUtf8,
        FaultKind::WsBadOpcode,
        FaultKind::WsMaskedFrame,
        FaultKind::WsOversizedFrame,
        FaultKind::WsNoClose,
        FaultKind::OversizedMessage,
    ];

    /// Stable name (CLI, scenario key, run.json).
    pub fn label(self) -> &'static str {
        match self {
            FaultKind::Reset => "reset",
            FaultKind::Stall => "stall",
            FaultKind::HalfOpen => "half_open",
            FaultKind::SlowHeaders => "slow_headers",
            FaultKind::MalformedHttp => "malformed_http",
            FaultKind::Status5xx => "status_5xx",
            FaultKind::Status429 => "status_429",
            FaultKind::SseNoBlankLine => "sse_no_blank_line",
            FaultKind::SseHugeLine => "sse_huge_line",
            FaultKind::SseInvalidUtf8 => "sse_invalid_utf8",
            FaultKind::WsBadOpcode => "ws_bad_opcode",
            FaultKind::WsMaskedFrame => "ws_masked_frame",
            FaultKind::WsOversizedFrame => "ws_oversized_frame",
            FaultKind::WsNoClose => "ws_no_close",
            FaultKind::OversizedMessage => "oversized_message",
        }
    }

    /// The fault named `label`.
    pub fn from_label(label: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.label() == label)
    }

    /// The error kind a stampede client counts this fault under (timeouts
    /// assume `stall_for` is longer than the client's `request_timeout` /
    /// `read_timeout`, and oversized payloads that `oversize_bytes` is over
    /// the client's limits).
    pub fn counted_as(self) -> ErrorKind {
        match self {
            FaultKind::Reset | FaultKind::WsNoClose => ErrorKind::Reset,
            FaultKind::Stall | FaultKind::HalfOpen | FaultKind::SlowHeaders => ErrorKind::Timeout,
            FaultKind::MalformedHttp
            | FaultKind::SseNoBlankLine
            | FaultKind::SseInvalidUtf8
            | FaultKind::WsBadOpcode
            | FaultKind::WsMaskedFrame => ErrorKind::Protocol,
            FaultKind::Status5xx => ErrorKind::Status,
            FaultKind::Status429 => ErrorKind::RateLimited,
            FaultKind::SseHugeLine | FaultKind::WsOversizedFrame | FaultKind::OversizedMessage => {
                ErrorKind::Limit
            }
        }
    }

    fn applies(self, route: Route) -> bool {
        match self {
            FaultKind::SseNoBlankLine | FaultKind::SseHugeLine | FaultKind::SseInvalidUtf8 => {
                route == Route::Sse
            }
            FaultKind::WsBadOpcode
            | FaultKind::WsMaskedFrame
            | FaultKind::WsOversizedFrame
            | FaultKind::WsNoClose => matches!(route, Route::Ws | Route::Echo),
            // Request mode discards bodies unread: no limit to exceed.
            FaultKind::OversizedMessage => route != Route::Hello,
            _ => true,
        }
    }
}

/// Which faults, how often, and their parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultPlan {
    /// Probability of each fault per request of a route it applies to; the
    /// rates of the faults that apply to one route sum to at most 1.
    pub rates: BTreeMap<&'static str, f64>,
    /// How long `stall` holds a response.
    #[serde(rename = "stall_for_s", with = "crate::units::secs")]
    pub stall_for: Duration,
    /// Size of `oversized_message` and `sse_huge_line` payloads.
    pub oversize_bytes: usize,
    #[serde(skip)]
    kinds: Vec<(FaultKind, f64)>,
}

/// How long a half-open connection is held before the target lets go:
/// bounded so a long soak does not pile them up.
const HALF_OPEN_HOLD: Duration = Duration::from_secs(60);
/// Pause between bytes of a slow response head.
const SLOW_HEADER_STEP: Duration = Duration::from_millis(200);

impl FaultPlan {
    /// Parses `kind=rate,...,stall_for=5s,oversize_bytes=N` (several
    /// strings are joined).
    pub fn parse(specs: &[String]) -> Result<FaultPlan, String> {
        let mut plan = FaultPlan {
            rates: BTreeMap::new(),
            stall_for: Duration::from_secs(15),
            oversize_bytes: 5 << 20,
            kinds: Vec::new(),
        };
        for item in specs.iter().flat_map(|s| s.split(',')) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: expected name=value"))?;
            let (key, value) = (key.trim(), value.trim().trim_matches('"'));
            match key {
                "stall_for" => {
                    plan.stall_for = humantime::parse_duration(value)
                        .map_err(|e| format!("stall_for {value:?}: {e}"))?;
                    if plan.stall_for > Duration::from_secs(3600) {
                        return Err("stall_for: at most 1h".into());
                    }
                }
                "oversize_bytes" => {
                    plan.oversize_bytes = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=(256 << 20)).contains(n))
                        .ok_or_else(|| format!("oversize_bytes {value:?}: 1..=268435456"))?;
                }
                _ => {
                    let kind = FaultKind::from_label(key).ok_or_else(|| {
                        let names: Vec<_> = FaultKind::ALL.iter().map(|k| k.label()).collect();
                        format!(
                            "unknown fault {key:?}; use {}, stall_for or oversize_bytes",
                            names.join(", ")
                        )
                    })?;
                    let rate: f64 = value
                        .parse()
                        .ok()
                        .filter(|r: &f64| (0.0..=1.0).contains(r))
                        .ok_or_else(|| format!("{key}: rate {value:?} is not in [0, 1]"))?;
                    plan.rates.insert(kind.label(), rate);
                }
            }
        }
        plan.kinds = FaultKind::ALL
            .into_iter()
            .filter_map(|k| plan.rates.get(k.label()).map(|r| (k, *r)))
            .filter(|(_, r)| *r > 0.0)
            .collect();
        for route in Route::ALL {
            let total: f64 = plan
                .kinds
                .iter()
                .filter(|(k, _)| k.applies(route))
                .map(|(_, r)| r)
                .sum();
            if total > 1.0 + 1e-9 {
                return Err(format!(
                    "the rates of the faults that apply to {route:?} requests add up to {total}, more than 1"
                ));
            }
        }
        Ok(plan)
    }

    /// A scenario's `[faults]` table: the same keys as `--fault`.
    pub fn from_table(table: &toml::Table) -> Result<FaultPlan, String> {
        let items: Vec<String> = table
            .iter()
            .map(|(k, v)| match v {
                toml::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        FaultPlan::parse(&items)
    }

    /// The `--fault` argument that recreates this plan.
    pub fn to_spec(&self) -> String {
        let mut parts: Vec<String> = self.rates.iter().map(|(k, r)| format!("{k}={r}")).collect();
        parts.push(format!("stall_for={}ms", self.stall_for.as_millis()));
        parts.push(format!("oversize_bytes={}", self.oversize_bytes));
        parts.join(",")
    }

    /// True when no fault has a rate above zero.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    fn roll(&self, route: Route, rng: &mut Rng) -> Option<FaultKind> {
        let r = rng.unit();
        let mut cumulative = 0.0;
        for (kind, rate) in self.kinds.iter().filter(|(k, _)| k.applies(route)) {
            cumulative += rate;
            if r < cumulative {
                return Some(*kind);
            }
        }
        None
    }
}

/// Faults injected so far, by kind (for `/stats/faults` and tests).
#[derive(Debug)]
pub struct FaultState {
    plan: FaultPlan,
    injected: [AtomicU64; FaultKind::ALL.len()],
    stop: CancellationToken,
}

impl FaultState {
    /// State for `plan`; raw tasks it spawns end at `stop`.
    pub fn new(plan: FaultPlan, stop: CancellationToken) -> Self {
        FaultState {
            plan,
            injected: Default::default(),
            stop,
        }
    }

    /// Injections so far, by fault label.
    pub fn injected(&self) -> BTreeMap<&'static str, u64> {
        FaultKind::ALL
            .iter()
            .enumerate()
            .map(|(i, k)| (k.label(), self.injected[i].load(Ordering::Relaxed)))
            .collect()
    }

    fn count(&self, kind: FaultKind) {
        if let Some(i) = FaultKind::ALL.iter().position(|k| *k == kind) {
            self.injected[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What a request arms on its connection's socket.
#[derive(Debug, Clone, Copy)]
enum Arm {
    ResetAfter(u64),
    Stall(Duration),
    HalfOpen,
    SlowHead,
    Garbage,
}

/// A connection's fault switch, shared by its socket and its requests.
#[derive(Debug, Default)]
pub struct ConnFault {
    armed: AtomicBool,
    arm: Mutex<Option<Arm>>,
}

impl ConnFault {
    fn set(&self, arm: Arm) {
        *self.arm.lock().unwrap_or_else(|p| p.into_inner()) = Some(arm);
        self.armed.store(true, Ordering::Release);
    }

    fn take(&self) -> Option<Arm> {
        if !self.armed.swap(false, Ordering::Acquire) {
            return None;
        }
        self.arm.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// The connection handle requests see (axum connect info).
#[derive(Debug, Clone)]
pub struct FaultHandle(Arc<ConnFault>);

impl Connected<IncomingStream<'_, FaultListener>> for FaultHandle {
    fn connect_info(stream: IncomingStream<'_, FaultListener>) -> Self {
        FaultHandle(stream.io().conn.clone())
    }
}

/// A listener whose sockets can be told to misbehave.
pub struct FaultListener {
    /// The real listener.
    pub inner: TcpListener,
}

impl axum::serve::Listener for FaultListener {
    type Io = FaultyIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((tcp, addr)) => {
                    let _ = tcp.set_nodelay(true);
                    let io = FaultyIo {
                        tcp,
                        conn: Arc::default(),
                        state: IoState::Normal,
                    };
                    return (io, addr);
                }
                // Out of descriptors and the like: wait, as axum does.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

enum IoState {
    Normal,
    ResetAfter(u64),
    Stalling(Pin<Box<tokio::time::Sleep>>),
    HalfOpen(Pin<Box<tokio::time::Sleep>>),
    SlowHead {
        tail: u32,
        pause: Option<Pin<Box<tokio::time::Sleep>>>,
    },
    Garbage(usize),
    Dead,
}

/// Not HTTP: a status code of letters (a complete head, so the client
/// fails on parsing, not on a short read).
const GARBAGE: &[u8] = b"HTTP/1.1 2OO 0K\r\nContent-Length: banana\r\n\r\n\x00\xff not http";

/// A server socket that enacts the fault its current request armed.
pub struct FaultyIo {
    tcp: TcpStream,
    conn: Arc<ConnFault>,
    state: IoState,
}

impl AsyncRead for FaultyIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultyIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        if let Some(arm) = me.conn.take() {
            me.state = match arm {
                Arm::ResetAfter(n) => IoState::ResetAfter(n),
                Arm::Stall(d) => IoState::Stalling(Box::pin(tokio::time::sleep(d))),
                Arm::HalfOpen => IoState::HalfOpen(Box::pin(tokio::time::sleep(HALF_OPEN_HOLD))),
                Arm::SlowHead => IoState::SlowHead {
                    tail: 0,
                    pause: None,
                },
                Arm::Garbage => IoState::Garbage(0),
            };
        }
        loop {
            match &mut me.state {
                IoState::Normal => return Pin::new(&mut me.tcp).poll_write(cx, buf),
                IoState::ResetAfter(0) => {
                    // Zero linger: closing sends RST instead of FIN.
                    let _ = me.tcp.set_zero_linger();
                    me.state = IoState::Dead;
                    return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
                }
                IoState::ResetAfter(left) => {
                    let n = buf.len().min(*left as usize);
                    let r = ready!(Pin::new(&mut me.tcp).poll_write(cx, &buf[..n]));
                    if let Ok(w) = &r {
                        *left -= *w as u64;
                    }
                    return Poll::Ready(r);
                }
                IoState::Stalling(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    me.state = IoState::Normal;
                }
                IoState::HalfOpen(sleep) => {
                    // Nothing is written, nothing is closed: the client
                    // must notice on its own.
                    ready!(sleep.as_mut().poll(cx));
                    let _ = me.tcp.set_zero_linger();
                    me.state = IoState::Dead;
                }
                IoState::SlowHead { tail, pause } => {
                    if let Some(p) = pause {
                        ready!(p.as_mut().poll(cx));
                        *pause = None;
                    }
                    if buf.is_empty() {
                        return Poll::Ready(Ok(0));
                    }
                    let r = ready!(Pin::new(&mut me.tcp).poll_write(cx, &buf[..1]));
                    if let Ok(1) = r {
                        *tail = (*tail << 8) | u32::from(buf[0]);
                        if *tail == u32::from_be_bytes(*b"\r\n\r\n") {
                            me.state = IoState::Normal;
                        } else {
                            *pause = Some(Box::pin(tokio::time::sleep(SLOW_HEADER_STEP)));
                        }
                    }
                    return Poll::Ready(r);
                }
                IoState::Garbage(at) => {
                    if *at >= GARBAGE.len() {
                        me.state = IoState::Dead;
                        continue;
                    }
                    let w = ready!(Pin::new(&mut me.tcp).poll_write(cx, &GARBAGE[*at..]))?;
                    *at += w;
                }
                IoState::Dead => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let IoState::HalfOpen(_) = self.state {
            // Never a FIN while half-open.
            return Poll::Pending;
        }
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The middleware: rolls the dice for each fault-eligible request.
pub async fn inject(
    State(state): State<Arc<FaultState>>,
    ConnectInfo(conn): ConnectInfo<FaultHandle>,
    req: Request,
    next: Next,
) -> Response {
    let Some(route) = Route::of(req.uri().path()) else {
        return next.run(req).await;
    };
    let mut rng = Rng::new();
    let Some(kind) = state.plan.roll(route, &mut rng) else {
        return next.run(req).await;
    };
    state.count(kind);
    let size = state.plan.oversize_bytes;
    let stop = state.stop.clone();
    match kind {
        FaultKind::Reset => {
            let after = if route.streams() {
                rng.between(200, 3000)
            } else {
                rng.between(0, 64)
            };
            conn.0.set(Arm::ResetAfter(after));
            next.run(req).await
        }
        FaultKind::Stall => {
            conn.0.set(Arm::Stall(state.plan.stall_for));
            next.run(req).await
        }
        FaultKind::HalfOpen => {
            conn.0.set(Arm::HalfOpen);
            next.run(req).await
        }
        FaultKind::SlowHeaders => {
            conn.0.set(Arm::SlowHead);
            next.run(req).await
        }
        FaultKind::MalformedHttp => {
            conn.0.set(Arm::Garbage);
            next.run(req).await
        }
        FaultKind::Status5xx => (StatusCode::SERVICE_UNAVAILABLE, "injected fault").into_response(),
        FaultKind::Status429 => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "injected fault",
        )
            .into_response(),
        // No `id:` lines: a fake id would move the client's resume point
        // and turn the fault into duplicates.
        FaultKind::SseNoBlankLine => sse_body(b"data: {\"seq\":1}\ndata: {\"seq\":2}\n\n".to_vec()),
        FaultKind::SseInvalidUtf8 => sse_body(b"data: \xff\xfe\xc3\x28 not utf-8\n\n".to_vec()),
        FaultKind::SseHugeLine => {
            let mut body = b"data: ".to_vec();
            body.resize(size + 6, b'x');
            body.extend_from_slice(b"\n\n");
            sse_body(body)
        }
        FaultKind::WsBadOpcode => raw_ws(req, stop, RawWs::Frame(vec![0x83, 0x00])),
        FaultKind::WsMaskedFrame => raw_ws(
            req,
            stop,
            RawWs::Frame(vec![0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]),
        ),
        FaultKind::WsOversizedFrame => {
            let mut f = vec![0x82, 127];
            f.extend_from_slice(&(1u64 << 40).to_be_bytes());
            raw_ws(req, stop, RawWs::Frame(f))
        }
        FaultKind::WsNoClose => raw_ws(req, stop, RawWs::Drop),
        FaultKind::OversizedMessage => oversized(route, req, stop, size),
    }
}

fn sse_body(body: Vec<u8>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from(body),
    )
        .into_response()
}

fn oversized(route: Route, req: Request, stop: CancellationToken, size: usize) -> Response {
    match route {
        Route::Ws | Route::Echo => raw_ws(req, stop, RawWs::Text(size)),
        Route::Sse => {
            let mut body = b"data: ".to_vec();
            body.resize(size + 6, b'x');
            body.extend_from_slice(b"\n\n");
            sse_body(body)
        }
        Route::Ndjson => {
            let mut body = br#"{"id":1,"data":""#.to_vec();
            body.resize(size + 16, b'x');
            body.extend_from_slice(b"\"}\n");
            (
                [(header::CONTENT_TYPE, "application/x-ndjson")],
                Body::from(body),
            )
                .into_response()
        }
        _ => {
            let mut body = vec![b'x'; size];
            body.push(b'\n');
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "text/plain"),
                    (header::HeaderName::from_static("x-cursor"), "1"),
                ],
                body,
            )
                .into_response()
        }
    }
}

/// What a raw WebSocket fault writes after the upgrade.
enum RawWs {
    /// These frame bytes.
    Frame(Vec<u8>),
    /// A text message of this many bytes (in one frame).
    Text(usize),
    /// Nothing: the TCP connection just ends.
    Drop,
}

/// Accepts a WebSocket upgrade by hand (axum's socket would never write a
/// broken frame) and writes `what` on the raw connection.
fn raw_ws(mut req: Request, stop: CancellationToken, what: RawWs) -> Response {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return (StatusCode::BAD_REQUEST, "not a WebSocket upgrade").into_response();
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let work = async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let mut io = TokioIo::new(upgraded);
            let written = match what {
                RawWs::Frame(bytes) => io.write_all(&bytes).await,
                RawWs::Text(size) => write_text(&mut io, size).await,
                RawWs::Drop => return,
            };
            if written.is_ok() {
                // Read until the client hangs up, so our close cannot turn
                // into an RST that overtakes the frame.
                let mut sink = [0u8; 1024];
                let _ = tokio::time::timeout(Duration::from_secs(10), async {
                    while let Ok(n) = io.read(&mut sink).await {
                        if n == 0 {
                            break;
                        }
                    }
                })
                .await;
            }
        };
        tokio::select! {
            _ = work => {}
            _ = stop.cancelled() => {}
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header("sec-websocket-accept", accept)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn write_text<W: AsyncWrite + Unpin>(io: &mut W, size: usize) -> io::Result<()> {
    let mut head = vec![0x81, 127];
    head.extend_from_slice(&(size as u64).to_be_bytes());
    io.write_all(&head).await?;
    // From one small buffer: the target's memory stays flat however big
    // the message.
    let chunk = [b'x'; 16 << 10];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        io.write_all(&chunk[..n]).await?;
        left -= n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_round_trip() {
        let p = FaultPlan::parse(&["reset=0.1, stall=0.05".into(), "stall_for=2s".into()]).unwrap();
        assert_eq!(p.rates["reset"], 0.1);
        assert_eq!(p.stall_for, Duration::from_secs(2));
        assert_eq!(FaultPlan::parse(&[p.to_spec()]).unwrap(), p);
        assert!(FaultPlan::parse(&["nope=0.1".into()]).is_err());
        assert!(FaultPlan::parse(&["reset=2".into()]).is_err());
        assert!(FaultPlan::parse(&["reset=0.6,stall=0.6".into()]).is_err());
        // Rates add up per route: SSE and WebSocket faults never meet.
        assert!(FaultPlan::parse(&["sse_huge_line=0.6,ws_no_close=0.6".into()]).is_ok());
        assert!(FaultPlan::parse(&["reset".into()]).is_err());
    }

    #[test]
    fn every_fault_has_a_label_and_a_kind() {
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::from_label(k.label()), Some(k));
            let _ = k.counted_as();
        }
    }

    #[test]
    fn rolls_follow_the_rates() {
        let p = FaultPlan::parse(&["reset=0.25,status_5xx=0.25".into()]).unwrap();
        let mut rng = Rng::seeded(1);
        let hits = (0..10_000)
            .filter(|_| p.roll(Route::Poll, &mut rng).is_some())
            .count();
        assert!((4_500..5_500).contains(&hits), "{hits}");
    }
}
