//! HTTP/1.1 plumbing shared by the HTTP transports: one hyper client
//! connection per simulated client over a byte-counting socket, the
//! cursor-poll exchange that interval and long polling share, and the
//! opening of a streaming response (on [`H1`]).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, Bytes};
use http::{header, HeaderName, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use super::coding::Decoder;
use super::h1::{serialize, H1, STREAM_CHUNK};
use super::poll::{BodyFormat, CursorStyle, PollProfile, Start};
use super::{RequestSample, SessionSpec, Sink};
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;

/// One HTTP/1.1 connection; its driver task ends when this is dropped.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
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
        let tcp = TokioIo::new(super::dial(spec, io, sink).await?);
        let mut builder = hyper::client::conn::http1::Builder::new();
        // hyper's read buffer bounds the response head: a larger head is a
        // `limit` fault (hyper refuses a buffer under 8 KiB).
        builder.max_buf_size(spec.params.limits.max_header_bytes.max(8192));
        let (sender, conn) = builder.handshake(tcp).await?;
        let driver = tokio::spawn(async move {
            // Errors surface through the request that hit them.
            let _ = conn.await;
        });
        Ok(Conn { sender, driver })
    }

    /// True once the server or an error closed the connection.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends a GET for `path_and_query` with extra headers, waiting at most
    /// `timeout` for the response head.
    pub async fn get(
        &mut self,
        spec: &SessionSpec,
        path_and_query: &str,
        headers: &[(HeaderName, HeaderValue)],
        timeout: Duration,
    ) -> Result<Response<Incoming>, Fault> {
        self.send(
            spec,
            Method::GET,
            path_and_query,
            headers,
            Bytes::new(),
            timeout,
        )
        .await
    }

    /// Sends one request (the profile's headers included), waiting at most
    /// `timeout` for the response head.
    pub async fn send(
        &mut self,
        spec: &SessionSpec,
        method: Method,
        path_and_query: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<Response<Incoming>, Fault> {
        let mut req = Request::builder().method(method).uri(path_and_query);
        // A scenario's Host header (virtual hosting) replaces the target's
        // authority rather than going out as a second Host.
        if !spec.headers.iter().any(|(name, _)| name == header::HOST) {
            req = req.header(header::HOST, spec.authority.as_str());
        }
        if !spec.params.keep_alive {
            req = req.header(header::CONNECTION, "close");
        }
        for (name, value) in spec.headers.iter().chain(headers) {
            req = req.header(name, value);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| Fault::new(ErrorKind::Other, format!("bad request: {e}")))?;
        tokio::time::timeout(timeout, async {
            self.sender.ready().await.map_err(Fault::from)?;
            self.sender.send_request(req).await.map_err(Fault::from)
        })
        .await
        .map_err(|_| Fault::timeout("request"))?
    }
}

/// Reads a whole body, bounded in size (`max_bytes`: more is a `limit`
/// fault, not an OOM) and time.
pub async fn read_body(
    body: Incoming,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Bytes, Fault> {
    let collected = tokio::time::timeout(timeout, async {
        let mut body = body;
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if let Ok(mut data) = frame.into_data() {
                if buf.len() + data.remaining() > max_bytes {
                    return Err(Fault::new(
                        ErrorKind::Limit,
                        format!("response body larger than {max_bytes} bytes"),
                    ));
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollOutcome {
    /// Events arrived.
    Events,
    /// Nothing new (interval poll) or the hold expired (long poll).
    Empty,
}

/// A subscriber that pulls events with repeated GETs carrying a cursor, as
/// its profile section describes: the cursor in a query parameter (the
/// reference server: `?after=` in, `X-Cursor` out) or in HTTP cache headers
/// (`If-Modified-Since`/`If-None-Match` from `Last-Modified`/`Etag`, nchan).
pub struct CursorPoller {
    conn: Option<Conn>,
    cursor: Option<String>,
    profile: PollProfile,
    /// Extra query appended to every poll (long-poll hold).
    extra_query: String,
    /// When the server's announced idle timeout makes the connection unsafe
    /// to reuse.
    idle_until: Option<Instant>,
}

impl CursorPoller {
    /// Subscribes as the profile says: a head request, a cursor pointing a
    /// little into the past, or nothing.
    pub async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        profile: &PollProfile,
        extra_query: String,
        cursor: Option<String>,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let mut me = CursorPoller {
            conn: Some(Conn::open(spec, io, sink).await?),
            cursor,
            profile: whole_items(profile, spec.extractor.has_path()),
            extra_query: String::new(),
            idle_until: None,
        };
        let connected = Instant::now();
        if me.cursor.is_none() {
            match profile.start {
                Start::Head => {
                    // The head request is the subscription handshake.
                    me.exchange(spec, io, connected, sink, false).await?;
                    if me.cursor.is_none() {
                        return Err(Fault::new(
                            ErrorKind::Protocol,
                            format!(
                                "the head request to {} returned no cursor ({})",
                                spec.path, profile.cursor_header
                            ),
                        ));
                    }
                    sink.subscribed(connected.elapsed());
                }
                Start::Recent => {
                    let since = SystemTime::now()
                        .checked_sub(profile.start_lookback)
                        .unwrap_or(SystemTime::UNIX_EPOCH);
                    me.cursor = Some(format!("{}|0", httpdate::fmt_http_date(since)));
                }
                Start::None => {}
            }
        }
        me.extra_query = extra_query;
        Ok(me)
    }

    /// The resume cursor.
    pub fn cursor(&self) -> Option<String> {
        self.cursor.clone()
    }

    /// One poll; `report` says whether to report it as a request sample.
    pub async fn exchange<S: Sink>(
        &mut self,
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        intended: Instant,
        sink: &mut S,
        report: bool,
    ) -> Result<PollOutcome, Fault> {
        let result = self.exchange_inner(spec, io, intended, sink, report).await;
        if result.is_err() || !spec.params.keep_alive {
            // A failed or one-shot connection is not reused.
            if self.conn.take().is_some() {
                sink.disconnected();
            }
        }
        result
    }

    fn request_target(&self, spec: &SessionSpec) -> (String, Vec<(HeaderName, HeaderValue)>) {
        let mut uri = spec.path.clone();
        let mut sep = if uri.contains('?') { '&' } else { '?' };
        let mut headers = Vec::new();
        match (self.profile.cursor, &self.cursor) {
            (CursorStyle::Query | CursorStyle::Body, Some(c)) => {
                uri.push(sep);
                uri.push_str(&self.profile.cursor_param);
                uri.push('=');
                percent_encode_into(c, &mut uri);
                sep = '&';
            }
            (CursorStyle::Etag, Some(c)) => {
                if let Some((modified, tag)) = c.split_once('|') {
                    // Both came from (or were checked like) header values.
                    if let (Ok(m), Ok(t)) =
                        (HeaderValue::from_str(modified), HeaderValue::from_str(tag))
                    {
                        headers.push((header::IF_MODIFIED_SINCE, m));
                        headers.push((header::IF_NONE_MATCH, t));
                    }
                }
            }
            _ => {}
        }
        if !self.extra_query.is_empty() {
            uri.push(sep);
            uri.push_str(&self.extra_query);
        }
        (uri, headers)
    }

    /// The cursor a response carries, if any; `Err` for a malformed one.
    fn cursor_of(&self, headers: &http::HeaderMap) -> Result<Option<String>, Fault> {
        match self.profile.cursor {
            CursorStyle::None | CursorStyle::Body => Ok(None),
            CursorStyle::Query => {
                let Some(v) = headers.get(self.profile.cursor_header.as_str()) else {
                    return Ok(None);
                };
                // Kept as sent; percent-encoded when it goes into a query.
                match v.to_str() {
                    Ok(c) if !c.is_empty() => Ok(Some(c.to_string())),
                    _ => Err(Fault::new(
                        ErrorKind::Protocol,
                        format!("malformed {} header", self.profile.cursor_header),
                    )),
                }
            }
            CursorStyle::Etag => {
                let get = |h: header::HeaderName| {
                    headers
                        .get(h)
                        .and_then(|v| v.to_str().ok())
                        .filter(|s| !s.is_empty() && !s.contains('|'))
                };
                Ok(match (get(header::LAST_MODIFIED), get(header::ETAG)) {
                    (Some(m), Some(t)) => Some(format!("{m}|{t}")),
                    _ => None,
                })
            }
        }
    }

    async fn exchange_inner<S: Sink>(
        &mut self,
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        intended: Instant,
        sink: &mut S,
        report: bool,
    ) -> Result<PollOutcome, Fault> {
        // A keep-alive connection the server closed while we waited for
        // the next interval is replaced, not counted as an error.
        if self.conn.as_ref().is_some_and(Conn::is_closed) {
            self.conn = None;
            sink.disconnected();
        }
        // A connection past the idle time the server announced
        // (`Keep-Alive: timeout=N`) is about to be closed by it: a fresh one
        // avoids the race instead of losing a request to it.
        if self.idle_until.is_some_and(|t| Instant::now() >= t) && self.conn.take().is_some() {
            sink.disconnected();
        }
        self.idle_until = None;
        let mut fresh = false;
        if self.conn.is_none() {
            self.conn = Some(Conn::open(spec, io, sink).await?);
            fresh = true;
        }
        let (uri, headers) = self.request_target(spec);
        let timeout = spec.params.request_timeout;
        let mut sent = Instant::now();
        let resp = match self.conn_mut()?.get(spec, &uri, &headers, timeout).await {
            Ok(resp) => resp,
            // The server closed the reused connection as the GET went out
            // (its idle timeout met our interval). A GET is idempotent, so
            // it is sent once more on a fresh connection, as browsers do
            // (RFC 9110 §9.2.2); its latency still runs from `intended`.
            Err(f) if !fresh && f.kind == ErrorKind::Reset => {
                self.conn = None;
                sink.disconnected();
                self.conn = Some(Conn::open(spec, io, sink).await?);
                sink.retried();
                sent = Instant::now();
                self.conn_mut()?.get(spec, &uri, &headers, timeout).await?
            }
            Err(f) => return Err(f),
        };
        let status = resp.status();
        // Kept for a refusal's backoff (a header lookup, no copy).
        let wait = crate::fault::retry_after(resp.headers());
        let mut next_cursor = self.cursor_of(resp.headers())?;
        let idle = keep_alive_timeout(resp.headers());
        // Only a refusal needs them (its Location); a header map clone is
        // cheap next to the request.
        let refusal_headers = if status.is_redirection() {
            resp.headers().clone()
        } else {
            http::HeaderMap::new()
        };
        let mut decoder = Decoder::for_headers(resp.headers())
            .map_err(|f| f.context(&format!("GET {}", spec.path)))?;
        let limits = spec.params.limits;
        let max = limits.max_buffered_bytes.max(limits.max_message_bytes);
        let body = read_body(resp.into_body(), timeout, max).await?;
        let body = if decoder.is_identity() {
            body
        } else {
            let mut out = Vec::new();
            decoder.decode(&body, &mut out, max)?;
            Bytes::from(out)
        };
        let done = Instant::now();
        // Half the announced idle time: the next request must reach the
        // server well before it gives up on the connection.
        self.idle_until = idle.map(|t| done + t / 2);
        let code = status.as_u16();
        let outcome = if self.profile.ok_status.contains(&code) {
            // Everything is checked before anything is delivered: a bad
            // response leaves the cursor where it was, and the retry must
            // not look like duplicates.
            let mut messages: Vec<Bytes> = Vec::new();
            let whole = body.as_ptr_range();
            let mut last_id: Option<String> = None;
            let by_body = self.profile.cursor == CursorStyle::Body;
            for_each_message(&self.profile, &body, |m, item| {
                if by_body {
                    last_id = item.and_then(|i| item_id(i, &self.profile.cursor_field));
                }
                // Lines and single bodies are views of the body; JSON
                // strings are decoded copies.
                let r = m.as_ptr_range();
                messages.push(if whole.start <= r.start && r.end <= whole.end {
                    body.slice_ref(m)
                } else {
                    Bytes::copy_from_slice(m)
                });
            })
            .map_err(|e| Fault::new(ErrorKind::Protocol, format!("GET {}: {e}", spec.path)))?;
            if let Some(big) = messages.iter().find(|m| m.len() > limits.max_message_bytes) {
                return Err(Fault::new(
                    ErrorKind::Limit,
                    format!(
                        "GET {}: a {} byte message (max_message_bytes is {})",
                        spec.path,
                        big.len(),
                        limits.max_message_bytes
                    ),
                ));
            }
            if by_body && !messages.is_empty() {
                next_cursor = last_id;
            }
            if next_cursor.is_none()
                && self.profile.cursor != CursorStyle::None
                && !messages.is_empty()
            {
                return Err(Fault::new(
                    ErrorKind::Protocol,
                    format!("GET {} answered {status} without a cursor", spec.path),
                ));
            }
            for m in &messages {
                sink.message(m, done);
            }
            if messages.is_empty() {
                PollOutcome::Empty
            } else {
                PollOutcome::Events
            }
        } else if self.profile.empty_status.contains(&code) {
            PollOutcome::Empty
        } else {
            return Err(Fault::of_status(
                code,
                &http::HeaderMap::new(),
                format!(
                    "GET {} answered {status}{}",
                    spec.path,
                    location(&refusal_headers)
                ),
            )
            .with_retry_after(wait));
        };
        // An empty answer may echo the old cursor (nchan) or move it on
        // (the built-in head); either way a present cursor is the newest.
        if let Some(c) = next_cursor {
            if outcome == PollOutcome::Events || self.profile.cursor == CursorStyle::Query {
                self.cursor = Some(c);
            }
        }
        if report {
            sink.request(RequestSample {
                intended,
                sent,
                done,
                status: Some(code),
                empty: outcome == PollOutcome::Empty,
            });
        }
        Ok(outcome)
    }

    /// Drops the connection (the client settles its connection count when
    /// a session ends).
    pub fn close(&mut self) {
        self.conn = None;
    }

    fn conn_mut(&mut self) -> Result<&mut Conn, Fault> {
        self.conn
            .as_mut()
            .ok_or_else(|| Fault::new(ErrorKind::Other, "no connection"))
    }
}

/// The `timeout` parameter of a `Keep-Alive` response header
/// (`Keep-Alive: timeout=5, max=1000`; RFC 2068 §19.7.1.1, as servers still
/// send it): how long the server keeps an idle connection open.
pub fn keep_alive_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get_all("keep-alive")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("timeout"))
        .and_then(|(_, v)| v.trim().trim_matches('"').parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(3600)))
}

/// Appends `s` to a URL query, percent-encoding all but unreserved bytes.
pub fn percent_encode_into(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Calls `f` with every message in a poll body; `Err` for a body that is
/// not in the profile's format.
pub fn for_each_message(
    profile: &PollProfile,
    body: &[u8],
    mut f: impl FnMut(&[u8], Option<&serde_json::Value>),
) -> Result<(), String> {
    match profile.body {
        BodyFormat::Single => {
            if !body.is_empty() {
                f(body, None);
            }
        }
        BodyFormat::Lines => {
            for line in body.split(|b| *b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.is_empty() {
                    f(line, None);
                }
            }
        }
        BodyFormat::JsonArray => {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            let items: Vec<serde_json::Value> =
                serde_json::from_slice(body).map_err(|e| format!("not a JSON array: {e}"))?;
            for item in &items {
                f(
                    json_message(item, &profile.data_field).as_bytes(),
                    Some(item),
                );
            }
        }
        BodyFormat::Ndjson => {
            for line in body.split(|b| *b == b'\n') {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let item: serde_json::Value =
                    serde_json::from_slice(line).map_err(|e| format!("bad NDJSON line: {e}"))?;
                f(
                    json_message(&item, &profile.data_field).as_bytes(),
                    Some(&item),
                );
            }
        }
    }
    Ok(())
}

/// The id of a poll body's item for `cursor = "body"`: `field` names an
/// object member, or is a JSON pointer (RFC 6901) when it starts with `/`.
/// Numbers and strings are ids; anything else is none.
pub fn item_id(item: &serde_json::Value, field: &str) -> Option<String> {
    let v = if field.starts_with('/') {
        item.pointer(field)
    } else {
        item.get(field)
    }?;
    match v {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The poll section as a poller uses it: with a `message_path` the
/// pointer starts at each whole item, so `data_field` is not looked at.
fn whole_items(poll: &PollProfile, has_path: bool) -> PollProfile {
    let mut p = poll.clone();
    if has_path {
        p.data_field.clear();
    }
    p
}

/// A message in a JSON value: a string, an object's `field` string, or
/// else the item itself as JSON text (a wrapped message: the client finds
/// the envelope inside it). An empty `field` means the whole item (the
/// profile's `message_path` then starts there).
pub fn json_message<'a>(item: &'a serde_json::Value, field: &str) -> Cow<'a, str> {
    match item {
        serde_json::Value::String(s) => Cow::Borrowed(s),
        _ if field.is_empty() => Cow::Owned(item.to_string()),
        serde_json::Value::Object(o) => match o.get(field) {
            Some(serde_json::Value::String(s)) => Cow::Borrowed(s),
            _ => Cow::Owned(item.to_string()),
        },
        _ => Cow::Owned(item.to_string()),
    }
}

/// Opens a streaming GET (SSE or NDJSON): on stampede's own HTTP/1.1
/// client, or as a stream of an HTTP/2 connection when the group says
/// `http2 = true` ([`super::h2`]). Checks the status and content type
/// within `request_timeout`; the body then comes from [`StreamBody::data`].
pub async fn open_stream<S: Sink>(
    spec: &SessionSpec,
    io: &Arc<IoCounters>,
    path_and_query: &str,
    headers: &[(HeaderName, HeaderValue)],
    content_type: &str,
    sink: &mut S,
) -> Result<StreamBody, Fault> {
    if let Some(h2) = &spec.params.h2 {
        return open_stream_h2(spec, h2, io, path_and_query, headers, content_type, sink).await;
    }
    let stream = super::dial(spec, io, sink).await?;
    let mut conn = H1::with_chunk(stream, spec.params.limits.max_header_bytes, STREAM_CHUNK);
    let connected = Instant::now();
    let all: Vec<(HeaderName, HeaderValue)> = spec.headers.iter().chain(headers).cloned().collect();
    let request = serialize(
        &Method::GET,
        path_and_query,
        &spec.authority,
        &all,
        !spec.params.keep_alive,
        b"",
    );
    let head = match tokio::time::timeout(spec.params.request_timeout, conn.begin(&request)).await {
        Ok(Ok(head)) => head,
        Ok(Err(f)) => {
            sink.disconnected();
            return Err(f);
        }
        Err(_) => {
            sink.disconnected();
            return Err(Fault::timeout("request"));
        }
    };
    let decoder = match stream_head(spec, head.answer.status, &head.headers, content_type) {
        Ok(d) => d,
        Err(f) => {
            sink.disconnected();
            return Err(f);
        }
    };
    sink.subscribed(connected.elapsed());
    Ok(StreamBody::new(spec, Source::H1(conn), decoder))
}

/// The HTTP/2 side of [`open_stream`]: a place on one of the group's
/// connections, then the request as a new stream on it. The subscribe
/// time counts from the place being had (connection open, or shared).
async fn open_stream_h2<S: Sink>(
    spec: &SessionSpec,
    params: &super::h2::H2Params,
    io: &Arc<IoCounters>,
    path_and_query: &str,
    headers: &[(HeaderName, HeaderValue)],
    content_type: &str,
    sink: &mut S,
) -> Result<StreamBody, Fault> {
    let lease = params.pool.lease(spec, params, io, sink).await?;
    let started = Instant::now();
    let opened = lease.opened;
    let answer = async {
        let conn = lease.conn()?;
        let resp = tokio::time::timeout(
            spec.params.request_timeout,
            conn.send(spec, &Method::GET, path_and_query, headers, Bytes::new()),
        )
        .await
        .map_err(|_| Fault::timeout("request"))??;
        let decoder = stream_head(spec, resp.status().as_u16(), resp.headers(), content_type)?;
        Ok::<_, Fault>((resp.into_body(), decoder))
    }
    .await;
    lease.settle();
    match answer {
        Ok((body, decoder)) => {
            sink.subscribed(started.elapsed());
            let source = Source::H2 {
                body,
                lease,
                frame: Bytes::new(),
            };
            Ok(StreamBody::new(spec, source, decoder))
        }
        Err(f) => {
            if opened {
                sink.disconnected();
            }
            Err(f)
        }
    }
}

/// Checks a streaming response's head: 200 with `content_type`, and a
/// content coding stampede decodes.
fn stream_head(
    spec: &SessionSpec,
    status: u16,
    headers: &http::HeaderMap,
    content_type: &str,
) -> Result<Decoder, Fault> {
    let got_type = headers.get(header::CONTENT_TYPE);
    let ok_type = got_type
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| media_type_is(v, content_type));
    if status != 200 || !ok_type {
        let got = match got_type {
            Some(v) => format!("Content-Type: {}", String::from_utf8_lossy(v.as_bytes())),
            None => "no Content-Type".to_string(),
        };
        let detail = format!(
            "GET {} answered {status} ({got}{}), expected 200 {content_type}",
            spec.path,
            location(headers)
        );
        return Err(if status != 200 {
            Fault::of_status(status, headers, detail)
        } else {
            Fault::new(ErrorKind::Protocol, detail)
        });
    }
    Decoder::for_headers(headers).map_err(|f| f.context(&format!("GET {}", spec.path)))
}

/// `, Location: <url>` for a redirect (stampede does not follow redirects
/// of subscribe URLs: the error shows where the server points instead).
fn location(headers: &http::HeaderMap) -> String {
    headers
        .get(header::LOCATION)
        .map(|l| format!(", Location: {}", String::from_utf8_lossy(l.as_bytes())))
        .unwrap_or_default()
}

/// True when a `Content-Type` value names `media_type` (RFC 9110 §8.3.1:
/// type and subtype are case-insensitive, parameters and whitespace around
/// `;` may follow).
pub fn media_type_is(value: &str, media_type: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case(media_type)
}

/// A streaming response body, decoded from its content coding (if any) as
/// it arrives.
pub struct StreamBody {
    source: Source,
    decoder: Decoder,
    out: Vec<u8>,
    max_out: usize,
    /// When the last piece arrived.
    last_read: Instant,
    read_timeout: Duration,
    /// `last_read + read_timeout`, armed once for the stream.
    silence: super::deadline::Deadline,
}

/// Where a streaming body's bytes come from.
enum Source {
    /// The rest of an HTTP/1.1 response on its own connection.
    H1(H1),
    /// One HTTP/2 stream; `frame` is the DATA last handed out.
    H2 {
        body: Incoming,
        lease: super::h2::Lease,
        frame: Bytes,
    },
}

impl Source {
    async fn data(&mut self) -> Result<Option<&[u8]>, Fault> {
        match self {
            Source::H1(conn) => conn.body_data().await,
            Source::H2 { body, lease, frame } => {
                let next = loop {
                    match body.frame().await {
                        None => break None,
                        Some(Err(e)) => {
                            lease.settle();
                            return Err(Fault::from(e));
                        }
                        // Trailers (and empty DATA) carry no body bytes.
                        Some(Ok(f)) => match f.into_data() {
                            Ok(d) if !d.is_empty() => break Some(d),
                            _ => continue,
                        },
                    }
                };
                lease.settle();
                Ok(next.map(|d| {
                    *frame = d;
                    &frame[..]
                }))
            }
        }
    }
}

impl StreamBody {
    fn new(spec: &SessionSpec, source: Source, decoder: Decoder) -> StreamBody {
        let read_timeout = spec.params.limits.read_timeout;
        let now = Instant::now();
        StreamBody {
            source,
            decoder,
            out: Vec::new(),
            max_out: spec
                .params
                .limits
                .max_buffered_bytes
                .max(spec.params.limits.max_message_bytes),
            last_read: now,
            read_timeout,
            silence: super::deadline::Deadline::new(Some((now + read_timeout).into())),
        }
    }

    /// The next piece of the decoded body; `None` at its end. A piece that
    /// decodes to nothing (a partial compressed block) is not returned:
    /// the call reads on. A stream that sends no byte (not even a
    /// keep-alive) for `read_timeout` is dead: a `timeout` fault naming
    /// `what`. With the piece comes the instant it arrived.
    pub async fn data(&mut self, what: &str) -> Result<Option<(&[u8], Instant)>, Fault> {
        let StreamBody {
            source,
            decoder,
            out,
            max_out,
            last_read,
            read_timeout,
            silence,
        } = self;
        silence.set(Some((*last_read + *read_timeout).into()));
        let got = tokio::select! {
            biased;
            got = decoded(source, decoder, out, *max_out) => got,
            _ = silence.passed() => {
                return Err(Fault::timeout(&format!("{what} (no byte within read_timeout)")));
            }
        };
        let at = Instant::now();
        *last_read = at;
        Ok(got?.map(|d| (d, at)))
    }
}

/// The next decoded piece of `source` (see [`StreamBody::data`]).
async fn decoded<'a>(
    source: &'a mut Source,
    decoder: &mut Decoder,
    out: &'a mut Vec<u8>,
    max_out: usize,
) -> Result<Option<&'a [u8]>, Fault> {
    if decoder.is_identity() {
        return source.data().await;
    }
    out.clear();
    while out.is_empty() {
        let Some(data) = source.data().await? else {
            return Ok(None);
        };
        decoder.decode(data, out, max_out)?;
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::builtin;

    fn messages(body: BodyFormat, text: &str) -> Result<Vec<String>, String> {
        let mut p = builtin().sections.poll.unwrap_or_else(|| unreachable!());
        p.body = body;
        let mut out = Vec::new();
        for_each_message(&p, text.as_bytes(), |m, _| {
            out.push(String::from_utf8_lossy(m).into_owned())
        })?;
        Ok(out)
    }

    #[test]
    fn every_body_format() {
        assert_eq!(
            messages(BodyFormat::Lines, "a\r\n\nb\n").unwrap(),
            ["a", "b"]
        );
        assert_eq!(messages(BodyFormat::Single, "a b\nc").unwrap(), ["a b\nc"]);
        assert!(messages(BodyFormat::Single, "").unwrap().is_empty());
        assert_eq!(
            messages(BodyFormat::JsonArray, r#"["a", {"data": "b", "id": 3}]"#).unwrap(),
            ["a", "b"]
        );
        assert!(messages(BodyFormat::JsonArray, "  ").unwrap().is_empty());
        assert_eq!(
            messages(BodyFormat::Ndjson, "\"a\"\n{\"data\":\"b\"}\n\n").unwrap(),
            ["a", "b"]
        );
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        assert!(messages(BodyFormat::JsonArray, "{").is_err());
        assert!(messages(BodyFormat::Ndjson, "nope\n").is_err());
    }

    #[test]
    fn wrapped_items_are_whole_messages() {
        assert_eq!(
            messages(
                BodyFormat::JsonArray,
                r#"[1, {"other": "x"}, {"data": {"body": "st1 1 2 3 "}}]"#
            )
            .unwrap(),
            ["1", r#"{"other":"x"}"#, r#"{"data":{"body":"st1 1 2 3 "}}"#]
        );
        assert!(messages(BodyFormat::Ndjson, "nope\n").is_err());
    }
}
