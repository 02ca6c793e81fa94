//! HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3) on hyper's client:
//! request mode's `http2 = true` (one connection per client) and streaming
//! subscriptions (SSE, NDJSON) whose clients may share connections, as a
//! browser's EventSources on one origin share one HTTP/2 connection
//! (`streams_per_connection`).
//!
//! Wire bytes stay counted at the socket. A shared connection counts into
//! its own [`IoCounters`]; every stream on it moves what has accumulated
//! into its client's counters each time it reads ([`Lease::settle`]), so
//! the group's sums are the socket's bytes, each frame attributed to a
//! stream of the connection that carried it. Only what a connection writes
//! when no stream reads any more (a cancelled stream's RST_STREAM, 13
//! bytes, and the GOAWAY at its close, 17) has no stream to go to.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http2::{Builder, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

use super::{SessionSpec, Sink};
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;

/// A streaming group's HTTP/2 settings (`http2 = true` on an SSE or
/// NDJSON group).
#[derive(Debug, Clone, Serialize)]
pub struct H2Params {
    /// Clients whose streams share one connection (1: a connection each).
    pub streams_per_connection: usize,
    /// `SETTINGS_INITIAL_WINDOW_SIZE` we announce, in bytes (RFC 9113
    /// §6.5.2); hyper's default when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_window: Option<u32>,
    /// The connection's receive window in bytes (RFC 9113 §6.9.2, raised
    /// by a WINDOW_UPDATE on stream 0); hyper's default when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_window: Option<u32>,
    /// The group's open connections.
    #[serde(skip)]
    pub pool: Arc<Pool>,
}

/// The largest flow-control window HTTP/2 allows (RFC 9113 §6.9.1).
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

/// One HTTP/2 connection; its driver task ends when this is dropped.
pub struct H2Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
}

impl Drop for H2Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl H2Conn {
    /// Connects (reporting the TCP connect to `sink`, bytes counted into
    /// `io`) and exchanges the connection preface and SETTINGS within
    /// `request_timeout`.
    ///
    /// Errors: the connect's faults; a failed preface is the hyper error's
    /// kind (`reset`, `protocol`, ...), a slow one `timeout`.
    pub async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        windows: (Option<u32>, Option<u32>),
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let stream = super::dial(spec, io, sink).await?;
        let handshake = tokio::time::timeout(
            spec.params.request_timeout,
            H2Conn::handshake(stream, windows),
        )
        .await
        .map_err(|_| Fault::timeout("HTTP/2 connection preface"))
        .and_then(|r| r);
        if handshake.is_err() {
            sink.disconnected();
        }
        handshake
    }

    /// The HTTP/2 connection preface and SETTINGS on an open stream, with
    /// the receive windows `(stream, connection)` when given (RFC 9113
    /// §6.5.2, §6.9.2); the caller bounds the wait.
    pub async fn handshake(
        stream: crate::net::Stream,
        windows: (Option<u32>, Option<u32>),
    ) -> Result<Self, Fault> {
        let mut builder = Builder::new(TokioExecutor::new());
        if let Some(w) = windows.0 {
            builder.initial_stream_window_size(w);
        }
        if let Some(w) = windows.1 {
            builder.initial_connection_window_size(w);
        }
        if windows.0.is_some() || windows.1.is_some() {
            // Windows the scenario sets stay as set.
            builder.adaptive_window(false);
        }
        let (sender, conn) = builder.handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(async move {
            // Errors surface through the streams that hit them.
            let _ = conn.await;
        });
        Ok(H2Conn { sender, driver })
    }

    /// True once the server (GOAWAY) or an error closed the connection.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends one request: `path` with the session's headers and `extra`
    /// (`Host` travels as `:authority`). The caller bounds the wait.
    pub async fn send(
        &self,
        spec: &SessionSpec,
        method: &http::Method,
        path: &str,
        extra: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Response<Incoming>, Fault> {
        let mut req = Request::builder().method(method.clone());
        for (name, value) in spec.headers.iter().chain(extra) {
            if name != header::HOST {
                req = req.header(name, value);
            }
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| Fault::new(ErrorKind::Other, format!("bad request for {path}: {e}")))?;
        self.send_request(req, spec.params.tls.is_some(), &spec.authority, path)
            .await
    }

    /// Sends `req` to `path` on `authority` (HTTP/2 carries scheme and
    /// authority as pseudo-headers, RFC 9113 §8.3.1), waiting for a stream
    /// under the server's `SETTINGS_MAX_CONCURRENT_STREAMS`. The caller
    /// bounds the wait.
    pub async fn send_request(
        &self,
        mut req: Request<Full<Bytes>>,
        tls: bool,
        authority: &str,
        path: &str,
    ) -> Result<Response<Incoming>, Fault> {
        let scheme = if tls { "https" } else { "http" };
        *req.uri_mut() = format!("{scheme}://{authority}{path}")
            .parse()
            .map_err(|e| Fault::new(ErrorKind::Other, format!("bad URL path {path}: {e}")))?;
        let mut sender = self.sender.clone();
        sender.ready().await.map_err(Fault::from)?;
        sender.send_request(req).await.map_err(Fault::from)
    }
}

/// A streaming group's shared HTTP/2 connections. A connection lives while
/// it carries a stream: when its last stream ends it is closed, so a
/// client's reconnect is a new connection (or a place on another one), as
/// with HTTP/1.1.
#[derive(Default)]
pub struct Pool {
    slots: Mutex<Vec<Arc<Slot>>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.slots.lock().map(|s| s.len()).unwrap_or(0);
        write!(f, "Pool({n} connections)")
    }
}

/// One connection of a pool, opened by the first stream that takes a place
/// on it (the others wait for that open).
struct Slot {
    conn: OnceCell<H2Conn>,
    /// Streams holding a place (changed only under the pool's lock).
    streams: AtomicUsize,
    /// Bytes of the connection not yet attributed to a stream.
    io: Arc<IoCounters>,
}

/// A stream's place on a pooled connection; giving it back (drop) closes
/// the connection when it was the last.
pub struct Lease {
    pool: Arc<Pool>,
    slot: Arc<Slot>,
    client_io: Arc<IoCounters>,
    /// This client opened the connection (and reported it to its sink).
    pub opened: bool,
}

impl Pool {
    /// A place on a connection with fewer than `per_connection` streams,
    /// opening one when none has room (the open's time and faults are
    /// reported to `sink` of the client that opens it).
    ///
    /// Errors: the open's faults ([`H2Conn::open`]).
    pub async fn lease<S: Sink>(
        self: &Arc<Self>,
        spec: &SessionSpec,
        params: &H2Params,
        client_io: &Arc<IoCounters>,
        sink: &mut S,
    ) -> Result<Lease, Fault> {
        let slot = {
            let mut slots = self.slots.lock().map_err(|_| poisoned())?;
            slots.retain(|s| s.conn.get().is_none_or(|c| !c.is_closed()));
            let free = slots
                .iter()
                .find(|s| s.streams.load(Ordering::Relaxed) < params.streams_per_connection.max(1));
            let slot = match free {
                Some(s) => s.clone(),
                None => {
                    let s = Arc::new(Slot {
                        conn: OnceCell::new(),
                        streams: AtomicUsize::new(0),
                        io: Arc::new(IoCounters::default()),
                    });
                    slots.push(s.clone());
                    s
                }
            };
            slot.streams.fetch_add(1, Ordering::Relaxed);
            slot
        };
        let mut lease = Lease {
            pool: self.clone(),
            slot,
            client_io: client_io.clone(),
            opened: false,
        };
        let windows = (params.stream_window, params.connection_window);
        let io = lease.slot.io.clone();
        let opened = std::sync::atomic::AtomicBool::new(false);
        let opened_ref = &opened;
        lease
            .slot
            .conn
            .get_or_try_init(move || {
                opened_ref.store(true, Ordering::Relaxed);
                async move { H2Conn::open(spec, &io, windows, sink).await }
            })
            .await?;
        lease.opened = opened.load(Ordering::Relaxed);
        lease.settle();
        Ok(lease)
    }
}

fn poisoned() -> Fault {
    Fault::new(
        ErrorKind::Other,
        "the HTTP/2 connection pool's lock was poisoned",
    )
}

impl Lease {
    /// The connection this place is on.
    pub fn conn(&self) -> Result<&H2Conn, Fault> {
        self.slot
            .conn
            .get()
            .ok_or_else(|| Fault::new(ErrorKind::Other, "HTTP/2 connection not open"))
    }

    /// Moves the connection's unattributed bytes to this stream's client.
    pub fn settle(&self) {
        let (sent, received) = self.slot.io.take();
        if sent != 0 || received != 0 {
            self.client_io.add(sent, received);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.settle();
        let Ok(mut slots) = self.pool.slots.lock() else {
            return;
        };
        if self.slot.streams.fetch_sub(1, Ordering::Relaxed) == 1 {
            // The last stream: the connection goes with it (its driver is
            // aborted when the slot's last Arc drops).
            slots.retain(|s| !Arc::ptr_eq(s, &self.slot));
        }
    }
}
