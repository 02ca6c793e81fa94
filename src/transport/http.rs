//! HTTP/1.1 plumbing shared by the HTTP transports: one hyper client
//! connection per simulated client over a byte-counting socket, and the
//! cursor-poll exchange that interval and long polling share.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use super::{SessionSpec, Sink};
use crate::fault::{ErrorKind, Fault};
use crate::net::{self, Counting, IoCounters};

/// Largest poll body accepted; more is a protocol fault, not an OOM.
const MAX_BODY: usize = 64 << 20;

/// One HTTP/1.1 connection; its driver task ends when this is dropped.
pub struct Conn {
    sender: SendRequest<Empty<Bytes>>,
    driver: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Conn {
    /// Connects (reporting TCP connect time to the sink) and handshakes.
    pub async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let (tcp, took) = net::connect(spec.addr, spec.connect_timeout).await?;
        sink.connected(took);
        let stream = TokioIo::new(Counting::new(tcp, io.clone()));
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(stream)
            .await?;
        let driver = tokio::spawn(async move {
            // Errors surface through the request that hit them.
            let _ = conn.await;
        });
        Ok(Conn { sender, driver })
    }

    /// Sends a GET for `path_and_query` with extra headers, waiting at most
    /// `timeout` for the response head.
    pub async fn get(
        &mut self,
        spec: &SessionSpec,
        path_and_query: &str,
        headers: &[(header::HeaderName, String)],
        timeout: Duration,
    ) -> Result<Response<Incoming>, Fault> {
        let mut req = Request::get(path_and_query).header(header::HOST, spec.authority.as_str());
        if !spec.params.keep_alive {
            req = req.header(header::CONNECTION, "close");
        }
        for (name, value) in headers {
            req = req.header(name, value.as_str());
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| Fault::new(ErrorKind::Other, format!("bad request: {e}")))?;
        tokio::time::timeout(timeout, async {
            self.sender.ready().await.map_err(Fault::from)?;
            self.sender.send_request(req).await.map_err(Fault::from)
        })
        .await
        .map_err(|_| Fault::timeout("request"))?
    }
}

/// Reads a whole body, bounded in size and time.
pub async fn read_body(body: Incoming, timeout: Duration) -> Result<Bytes, Fault> {
    let collected = tokio::time::timeout(timeout, async {
        let mut body = body;
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if let Ok(mut data) = frame.into_data() {
                if buf.len() + data.remaining() > MAX_BODY {
                    return Err(Fault::new(ErrorKind::Protocol, "response body too large"));
                }
                while data.has_remaining() {
                    let chunk = data.chunk();
                    buf.extend_from_slice(chunk);
                    let n = chunk.len();
                    data.advance(n);
                }
            }
        }
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(|_| Fault::timeout("response body"))?;
    collected
}

/// Result of one cursor poll.
pub enum PollOutcome {
    /// Events arrived.
    Events,
    /// Nothing new (interval poll) or the hold expired (long poll).
    Empty,
}

/// A subscriber that pulls events with `GET path?after=CURSOR`: the built-in
/// target answers `200` with one event payload per line and the new cursor in
/// `X-Cursor`, or `204` (no body) when nothing is newer. Without a cursor the
/// first request returns the current head cursor: that is the subscription.
pub struct CursorPoller {
    conn: Option<Conn>,
    cursor: Option<String>,
}

impl CursorPoller {
    /// Subscribes: obtains a cursor unless resuming with one.
    pub async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        cursor: Option<String>,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let mut me = CursorPoller {
            conn: Some(Conn::open(spec, io, sink).await?),
            cursor,
        };
        let connected = Instant::now();
        if me.cursor.is_none() {
            // The head request is the subscription handshake.
            me.exchange(spec, io, "", connected, sink, false).await?;
        }
        sink.subscribed(connected.elapsed());
        Ok(me)
    }

    /// The resume cursor.
    pub fn cursor(&self) -> Option<String> {
        self.cursor.clone()
    }

    /// One poll. `extra_query` is appended to the query string; `report`
    /// says whether to report the exchange as a request sample.
    pub async fn exchange<S: Sink>(
        &mut self,
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        extra_query: &str,
        intended: Instant,
        sink: &mut S,
        report: bool,
    ) -> Result<PollOutcome, Fault> {
        let result = self
            .exchange_inner(spec, io, extra_query, intended, sink, report)
            .await;
        if result.is_err() || !spec.params.keep_alive {
            // A failed or one-shot connection is not reused.
            if self.conn.take().is_some() {
                sink.disconnected();
            }
        }
        result
    }

    async fn exchange_inner<S: Sink>(
        &mut self,
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        extra_query: &str,
        intended: Instant,
        sink: &mut S,
        report: bool,
    ) -> Result<PollOutcome, Fault> {
        if self.conn.is_none() {
            self.conn = Some(Conn::open(spec, io, sink).await?);
        }
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Fault::new(ErrorKind::Other, "no connection"))?;
        let mut uri = spec.path.clone();
        let mut sep = '?';
        if let Some(c) = &self.cursor {
            uri.push(sep);
            uri.push_str("after=");
            uri.push_str(c);
            sep = '&';
        }
        if !extra_query.is_empty() {
            uri.push(sep);
            uri.push_str(extra_query);
        }
        let timeout = spec.params.request_timeout;
        let resp = conn.get(spec, &uri, &[], timeout).await?;
        let status = resp.status();
        let next_cursor = resp
            .headers()
            .get("x-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_body(resp.into_body(), timeout).await?;
        let done = Instant::now();
        let outcome = match status {
            StatusCode::OK => {
                let mut any = false;
                for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    sink.message(line, done);
                    any = true;
                }
                if any {
                    PollOutcome::Events
                } else {
                    PollOutcome::Empty
                }
            }
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED => PollOutcome::Empty,
            other => {
                return Err(Fault::new(
                    ErrorKind::Status,
                    format!("GET {} answered {other}", spec.path),
                ))
            }
        };
        match next_cursor {
            Some(c)
                if c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'-') =>
            {
                self.cursor = Some(c)
            }
            Some(_) => return Err(Fault::new(ErrorKind::Protocol, "malformed X-Cursor header")),
            None if self.cursor.is_none() => {
                return Err(Fault::new(
                    ErrorKind::Protocol,
                    "poll response without X-Cursor",
                ))
            }
            None => {}
        }
        if report {
            sink.request(intended, done, matches!(outcome, PollOutcome::Empty));
        }
        Ok(outcome)
    }

    /// Drops the connection (the client settles its connection count when
    /// a session ends).
    pub fn close(&mut self) {
        self.conn = None;
    }
}

/// Opens a streaming GET (SSE or NDJSON): connects, sends the request and
/// checks the status and content type. Returns the connection (keep it alive
/// for as long as the body is read) and the body.
pub async fn open_stream<S: Sink>(
    spec: &SessionSpec,
    io: &Arc<IoCounters>,
    path_and_query: &str,
    headers: &[(header::HeaderName, String)],
    content_type: &str,
    sink: &mut S,
) -> Result<(Conn, Incoming), Fault> {
    let mut conn = Conn::open(spec, io, sink).await?;
    let connected = Instant::now();
    let resp = match conn
        .get(spec, path_and_query, headers, spec.params.request_timeout)
        .await
    {
        Ok(r) => r,
        Err(f) => {
            sink.disconnected();
            return Err(f);
        }
    };
    let ok_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(content_type));
    if resp.status() != StatusCode::OK || !ok_type {
        sink.disconnected();
        let kind = if resp.status() != StatusCode::OK {
            ErrorKind::Status
        } else {
            ErrorKind::Protocol
        };
        return Err(Fault::new(
            kind,
            format!(
                "GET {} answered {} ({:?}), expected 200 {content_type}",
                spec.path,
                resp.status(),
                resp.headers().get(header::CONTENT_TYPE)
            ),
        ));
    }
    sink.subscribed(connected.elapsed());
    Ok((conn, resp.into_body()))
}
