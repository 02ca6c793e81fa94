//! A minimal HTTP/1.1 client for request mode's hot path and for streaming
//! responses (SSE, NDJSON): one request at a time on one connection, the
//! request's bytes serialized once per session, the response head parsed in
//! place with `httparse` (hyper's own parser) and the body skipped or handed
//! out as it arrives (Content-Length, chunked, or until close).
//!
//! Written by hand because hyper's per-connection client costs a second
//! task, a channel hop and a `HeaderMap` per request: against nginx's
//! `return 200`, stampede used 1.9× wrk's CPU per request through hyper
//! (`benches/vs-wrk.sh`; the README's Performance section has the numbers
//! with this client). A held stream through hyper also cost about 19 KiB
//! per idle connection (its driver task, an 8 KiB write buffer kept for
//! the connection's life, the body channel), against the 12 KiB budget
//! `benches/hold.sh` measures. Polling transports keep hyper.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fault::{ErrorKind, Fault};
use crate::net::Stream;

/// Read size in request mode; a response head may grow the buffer up to
/// `max_head`.
const READ_CHUNK: usize = 8192;
/// Read size of a streaming response: it is held for the stream's whole
/// life, so it is most of an idle stream's memory.
pub const STREAM_CHUNK: usize = 2048;
/// Headers parsed per response; more is a protocol error.
const MAX_HEADERS: usize = 64;

/// A response as request mode needs it.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// `Retry-After` in seconds, when the server sent one.
    pub retry_after: Option<Duration>,
}

/// One HTTP/1.1 connection.
pub struct H1 {
    stream: Stream,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    start: usize,
    closed: bool,
    max_head: usize,
    /// Bytes asked of each read.
    chunk: usize,
    /// Where `body_data` is in the current response's body.
    body: BodyState,
}

/// How the body of a response ends.
#[derive(Clone, Copy)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Progress through a body handed out by `body_data`.
#[derive(Clone, Copy)]
enum BodyState {
    Done,
    Length(u64),
    /// Before a chunk-size line.
    ChunkSize,
    /// Inside a chunk's data, with this many bytes left (0: its CRLF next).
    ChunkData(u64),
    UntilClose,
}

/// The head of a streaming response (or of a WebSocket upgrade).
#[derive(Debug, Clone)]
pub struct StreamHead {
    /// Status and `Retry-After`.
    pub answer: Answer,
    /// Every header (once per session, so a `HeaderMap` is affordable).
    pub headers: http::HeaderMap,
}

impl H1 {
    /// Wraps a connected stream; `max_head`: largest response head.
    pub fn new(stream: Stream, max_head: usize) -> H1 {
        H1::with_chunk(stream, max_head, READ_CHUNK)
    }

    /// As [`H1::new`], reading `chunk` bytes at a time.
    pub fn with_chunk(stream: Stream, max_head: usize, chunk: usize) -> H1 {
        H1 {
            stream,
            buf: Vec::with_capacity(chunk),
            start: 0,
            closed: false,
            max_head: max_head.max(1024),
            chunk: chunk.max(512),
            body: BodyState::Done,
        }
    }

    /// True once the server closed the connection (or asked to).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sends `request` (a whole serialized request) and reads the response
    /// to its end. `head_only`: a HEAD request (no body follows).
    pub async fn exchange(&mut self, request: &[u8], head_only: bool) -> Result<Answer, Fault> {
        self.stream.write_all(request).await?;
        let (answer, framing, _) = self.final_head(head_only, false).await?;
        self.skip_body(framing).await?;
        Ok(answer)
    }

    /// Sends `request` and reads the response head; the body then comes
    /// from [`H1::body_data`].
    pub async fn begin(&mut self, request: &[u8]) -> Result<StreamHead, Fault> {
        self.stream.write_all(request).await?;
        let (answer, framing, headers) = self.final_head(false, true).await?;
        self.body = match framing {
            Framing::None => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::ChunkSize,
            Framing::UntilClose => BodyState::UntilClose,
        };
        // A long head may have grown the buffer: the stream that follows
        // keeps only its read size.
        if self.buf.capacity() > 2 * self.chunk && self.buf.len() - self.start <= self.chunk {
            self.buf.drain(..self.start);
            self.start = 0;
            self.buf.shrink_to(self.chunk);
        }
        Ok(StreamHead { answer, headers })
    }

    /// The response's head after any informational ones (e.g. 100
    /// Continue; 101 is final), noting whether the connection ends.
    async fn final_head(
        &mut self,
        head_only: bool,
        want_headers: bool,
    ) -> Result<(Answer, Framing, http::HeaderMap), Fault> {
        loop {
            let (answer, framing, close, headers) = self.read_head(head_only, want_headers).await?;
            if (100..200).contains(&answer.status) && answer.status != 101 {
                continue;
            }
            if close {
                self.closed = true;
            }
            return Ok((answer, framing, headers));
        }
    }

    /// The next bytes of the body [`H1::begin`] started, as they arrive;
    /// `None` at its end. A connection that ends early is a `reset` fault.
    pub async fn body_data(&mut self) -> Result<Option<&[u8]>, Fault> {
        loop {
            match self.body {
                BodyState::Done => return Ok(None),
                BodyState::Length(left) | BodyState::ChunkData(left) if left > 0 => {
                    if self.start == self.buf.len() && !self.fill().await? {
                        self.body = BodyState::Done;
                        return Err(Fault::new(
                            ErrorKind::Reset,
                            "the connection closed in the middle of a response body",
                        ));
                    }
                    let at = self.start;
                    let k = self.take(left);
                    self.body = match self.body {
                        BodyState::Length(_) => BodyState::Length(left - k),
                        _ => BodyState::ChunkData(left - k),
                    };
                    return Ok(Some(&self.buf[at..at + k as usize]));
                }
                BodyState::Length(_) => self.body = BodyState::Done,
                BodyState::ChunkData(_) => {
                    let (_, len) = self.line().await?;
                    if len != 0 {
                        self.closed = true;
                        self.body = BodyState::Done;
                        return Err(Fault::new(
                            ErrorKind::Protocol,
                            "chunk data longer than its size line",
                        ));
                    }
                    self.body = BodyState::ChunkSize;
                }
                BodyState::ChunkSize => {
                    let size = self.chunk_size().await?;
                    if size == 0 {
                        // Trailers, then an empty line.
                        loop {
                            let (_, len) = self.line().await?;
                            if len == 0 {
                                break;
                            }
                        }
                        self.body = BodyState::Done;
                    } else {
                        self.body = BodyState::ChunkData(size);
                    }
                }
                BodyState::UntilClose => {
                    if self.start == self.buf.len() && !self.fill().await? {
                        self.body = BodyState::Done;
                        return Ok(None);
                    }
                    let at = self.start;
                    let k = self.take(u64::MAX);
                    return Ok(Some(&self.buf[at..at + k as usize]));
                }
            }
        }
    }

    /// The connection and the bytes read past the last response head (a
    /// WebSocket's first frames may come with its upgrade).
    pub fn into_parts(self) -> (Stream, Vec<u8>) {
        let rest = if self.start < self.buf.len() {
            self.buf[self.start..].to_vec()
        } else {
            Vec::new()
        };
        (self.stream, rest)
    }

    /// Reads more bytes; `false` at end of stream.
    async fn fill(&mut self) -> Result<bool, Fault> {
        if self.start > 0 {
            // What is left is a partial head or line: short, cheap to move.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        // Into spare capacity: no zero-filling of the buffer per read.
        if self.buf.capacity() - self.buf.len() < self.chunk / 2 {
            self.buf.reserve(self.chunk);
        }
        let n = match self.stream.read_buf(&mut self.buf).await {
            Ok(n) => n,
            Err(e) => {
                self.closed = true;
                return Err(e.into());
            }
        };
        if n == 0 {
            self.closed = true;
        }
        Ok(n > 0)
    }

    /// Parses the next response head; `want_headers`: also return all its
    /// headers (request mode's hot path does not).
    async fn read_head(
        &mut self,
        head_only: bool,
        want_headers: bool,
    ) -> Result<(Answer, Framing, bool, http::HeaderMap), Fault> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.buf[self.start..]) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = resp.code.unwrap_or(0);
                    let mut length = None;
                    // Some(true): chunked is the last transfer coding.
                    let mut chunked = None;
                    let mut close = resp.version == Some(0);
                    let mut retry_after = None;
                    let mut date = None;
                    let mut all = http::HeaderMap::new();
                    for h in resp.headers.iter() {
                        if want_headers {
                            // httparse checked the name's and value's bytes.
                            if let (Ok(name), Ok(value)) = (
                                http::HeaderName::from_bytes(h.name.as_bytes()),
                                http::HeaderValue::from_bytes(h.value),
                            ) {
                                all.append(name, value);
                            }
                        }
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let len = content_length(h.value)?;
                            // Repeated fields must agree (RFC 9110 §8.6).
                            if length.is_some_and(|l| l != len) {
                                return Err(Fault::new(
                                    ErrorKind::Protocol,
                                    "conflicting Content-Length fields",
                                ));
                            }
                            length = Some(len);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            let last = h.value.rsplit(|b| *b == b',').next().unwrap_or_default();
                            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            close |= contains_token(h.value, b"close");
                        } else if h.name.eq_ignore_ascii_case("retry-after") {
                            retry_after = std::str::from_utf8(h.value).ok();
                        } else if h.name.eq_ignore_ascii_case("date") {
                            date = std::str::from_utf8(h.value).ok();
                        }
                    }
                    // Transfer-Encoding overrides Content-Length, and a
                    // body whose last coding is not chunked runs to the
                    // close (RFC 9112 6.3).
                    let mut framing = match (chunked, length) {
                        (Some(true), _) => Framing::Chunked,
                        (Some(false), _) | (None, None) => Framing::UntilClose,
                        (None, Some(len)) => Framing::Length(len),
                    };
                    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
                        framing = Framing::None;
                    }
                    if matches!(framing, Framing::UntilClose) {
                        close = true;
                    }
                    let retry_after =
                        retry_after.and_then(|v| crate::fault::retry_after_value(v, date));
                    self.start += n;
                    return Ok((
                        Answer {
                            status,
                            retry_after,
                        },
                        framing,
                        close,
                        all,
                    ));
                }
                Ok(httparse::Status::Partial) => {
                    if self.buf.len() - self.start > self.max_head {
                        self.closed = true;
                        return Err(Fault::new(
                            ErrorKind::Limit,
                            format!("a response head over max_header_bytes ({})", self.max_head),
                        ));
                    }
                }
                Err(e) => {
                    self.closed = true;
                    return Err(Fault::new(
                        ErrorKind::Protocol,
                        format!("a malformed HTTP response head: {e}"),
                    ));
                }
            }
            if !self.fill().await? {
                return Err(Fault::new(
                    ErrorKind::Reset,
                    "the connection closed before a complete response head",
                ));
            }
        }
    }

    /// Consumes up to `n` buffered bytes; returns how many it took.
    fn take(&mut self, n: u64) -> u64 {
        let have = (self.buf.len() - self.start) as u64;
        let k = have.min(n);
        self.start += k as usize;
        k
    }

    async fn skip_body(&mut self, framing: Framing) -> Result<(), Fault> {
        match framing {
            Framing::None => Ok(()),
            Framing::Length(mut left) => {
                while left > 0 {
                    left -= self.take(left);
                    if left > 0 && !self.fill().await? {
                        return Err(Fault::new(
                            ErrorKind::Reset,
                            "the connection closed in the middle of a response body",
                        ));
                    }
                }
                Ok(())
            }
            Framing::UntilClose => {
                let _ = self.take(u64::MAX);
                while self.fill().await? {
                    let _ = self.take(u64::MAX);
                }
                Ok(())
            }
            Framing::Chunked => loop {
                let size = self.chunk_size().await?;
                // The chunk's data and its CRLF (the last chunk: trailers
                // then an empty line).
                if size == 0 {
                    loop {
                        let (_, len) = self.line().await?;
                        if len == 0 {
                            return Ok(());
                        }
                    }
                }
                let mut left = size + 2;
                while left > 0 {
                    left -= self.take(left);
                    if left > 0 && !self.fill().await? {
                        return Err(Fault::new(
                            ErrorKind::Reset,
                            "the connection closed in the middle of a chunk",
                        ));
                    }
                }
            },
        }
    }

    /// Consumes one LF-terminated line; returns where it starts in `buf`
    /// and its length without the line end.
    async fn line(&mut self) -> Result<(usize, usize), Fault> {
        loop {
            if let Some(i) = self.buf[self.start..].iter().position(|b| *b == b'\n') {
                let at = self.start;
                let len = if i > 0 && self.buf[at + i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                self.start += i + 1;
                return Ok((at, len));
            }
            if self.buf.len() - self.start > self.max_head {
                self.closed = true;
                return Err(Fault::new(
                    ErrorKind::Limit,
                    "a chunk line over max_header_bytes",
                ));
            }
            if !self.fill().await? {
                return Err(Fault::new(
                    ErrorKind::Reset,
                    "the connection closed in the middle of a chunked body",
                ));
            }
        }
    }

    async fn chunk_size(&mut self) -> Result<u64, Fault> {
        let (at, len) = self.line().await?;
        let line = &self.buf[at..at + len];
        let hex = line.split(|b| *b == b';').next().unwrap_or_default();
        // Digits only (the parser would take a sign), and room for the
        // CRLF after the data.
        let size = std::str::from_utf8(hex)
            .ok()
            .map(str::trim)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .filter(|n| *n < u64::MAX / 2);
        size.ok_or_else(|| {
            self.closed = true;
            Fault::new(ErrorKind::Protocol, "a bad chunk size line")
        })
    }
}

/// A `Content-Length` value: decimal digits, or a list of identical ones
/// (`42, 42`, which RFC 9110 §8.6 lets a recipient take as one); anything
/// else is a `protocol` fault.
fn content_length(value: &[u8]) -> Result<u64, Fault> {
    let bad = || Fault::new(ErrorKind::Protocol, "a bad Content-Length");
    let mut len = None;
    for item in value.split(|b| *b == b',') {
        let item = item.trim_ascii();
        if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let n: u64 = std::str::from_utf8(item)
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        if len.is_some_and(|l| l != n) {
            return Err(Fault::new(
                ErrorKind::Protocol,
                "a Content-Length list of different values",
            ));
        }
        len = Some(n);
    }
    len.ok_or_else(bad)
}

/// True when the comma-separated header value holds `token` (any case).
pub(crate) fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Serializes a request: request line, `Host` (the extra headers' own, for
/// virtual hosting, or else `authority`), the extra headers, and the body
/// with its length.
pub fn serialize(
    method: &http::Method,
    path: &str,
    authority: &str,
    headers: &[(http::HeaderName, http::HeaderValue)],
    close: bool,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    let host = headers
        .iter()
        .find(|(name, _)| name == http::header::HOST)
        .map_or(authority.as_bytes(), |(_, value)| value.as_bytes());
    out.extend_from_slice(host);
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name == http::header::HOST {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if !body.is_empty() || !matches!(*method, http::Method::GET | http::Method::HEAD) {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_a_request() {
        let r = serialize(
            &http::Method::POST,
            "/a?b=1",
            "h:1",
            &[(
                http::HeaderName::from_static("x-k"),
                http::HeaderValue::from_static("v"),
            )],
            true,
            b"hi",
        );
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "POST /a?b=1 HTTP/1.1\r\nhost: h:1\r\nx-k: v\r\nconnection: close\r\ncontent-length: 2\r\n\r\nhi"
        );
        let g = serialize(&http::Method::GET, "/", "h", &[], false, b"");
        assert_eq!(
            String::from_utf8(g).unwrap(),
            "GET / HTTP/1.1\r\nhost: h\r\n\r\n"
        );
        // A scenario's Host replaces the authority, once.
        let v = serialize(
            &http::Method::GET,
            "/",
            "127.0.0.1:1",
            &[(
                http::header::HOST,
                http::HeaderValue::from_static("example.com"),
            )],
            false,
            b"",
        );
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "GET / HTTP/1.1\r\nhost: example.com\r\n\r\n"
        );
    }

    /// A real server on a loopback socket answering each request with the
    /// next scripted response; returns the client side.
    async fn scripted(responses: Vec<&'static [u8]>) -> H1 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            for r in responses {
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                // Written in two parts, so the client parses across reads.
                let (a, b) = r.split_at(r.len() / 2);
                s.write_all(a).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                s.write_all(b).await.unwrap();
            }
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let counted = crate::net::Counting::new(tcp, Default::default());
        H1::new(Stream::Plain(counted), 65536)
    }

    #[tokio::test]
    async fn reads_every_framing_on_one_connection() {
        let mut c = scripted(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
        ])
        .await;
        let req = serialize(&http::Method::GET, "/", "h", &[], false, b"");
        let a = c.exchange(&req, false).await.unwrap();
        assert_eq!(a.status, 200);
        let a = c.exchange(&req, false).await.unwrap();
        assert_eq!(a.status, 201);
        let a = c.exchange(&req, false).await.unwrap();
        assert_eq!(
            (a.status, a.retry_after),
            (429, Some(Duration::from_secs(7)))
        );
        assert_eq!(c.exchange(&req, false).await.unwrap().status, 204);
        assert!(!c.is_closed());
        assert_eq!(c.exchange(&req, false).await.unwrap().status, 200);
        assert!(c.is_closed());
    }

    #[tokio::test]
    async fn bad_responses_are_faults_of_their_kind() {
        let req = serialize(&http::Method::GET, "/", "h", &[], false, b"");
        let mut c = scripted(vec![b"NOT HTTP AT ALL\r\n\r\n"]).await;
        assert_eq!(
            c.exchange(&req, false).await.unwrap_err().kind,
            ErrorKind::Protocol
        );
        let mut c = scripted(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"]).await;
        assert_eq!(
            c.exchange(&req, false).await.unwrap_err().kind,
            ErrorKind::Reset
        );
        let mut c = scripted(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ])
        .await;
        assert_eq!(
            c.exchange(&req, false).await.unwrap_err().kind,
            ErrorKind::Protocol
        );
        // A chunk size that would overflow, and signed numbers.
        for bad in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc",
        ] {
            let mut c = scripted(vec![bad]).await;
            assert_eq!(
                c.exchange(&req, false).await.unwrap_err().kind,
                ErrorKind::Protocol
            );
        }
    }

    /// Reads a streaming body to its end, or to its fault.
    async fn body_of(c: &mut H1) -> Result<Vec<u8>, Fault> {
        let mut got = Vec::new();
        while let Some(d) = c.body_data().await? {
            got.extend_from_slice(d);
        }
        Ok(got)
    }

    #[tokio::test]
    async fn streams_every_framing() {
        let req = serialize(&http::Method::GET, "/", "h", &[], false, b"");
        let mut c = scripted(vec![
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ndata:\r\n4;e=1\r\n x\n\n\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end",
        ])
        .await;
        let head = c.begin(&req).await.unwrap();
        assert_eq!(head.answer.status, 200);
        assert_eq!(
            head.headers.get(http::header::CONTENT_TYPE).unwrap(),
            "text/event-stream"
        );
        assert_eq!(body_of(&mut c).await.unwrap(), b"data: x\n\n");
        let head = c.begin(&req).await.unwrap();
        assert_eq!(head.headers.len(), 1);
        assert_eq!(body_of(&mut c).await.unwrap(), b"abcdef");
        c.begin(&req).await.unwrap();
        assert_eq!(body_of(&mut c).await.unwrap(), b"to the end");
        assert!(c.is_closed());
        // Chunked but not last: the body runs to the close, and
        // Transfer-Encoding wins over Content-Length.
        let mut c = scripted(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\nContent-Length: 3\r\n\r\n3\r\nraw",
        ])
        .await;
        c.begin(&req).await.unwrap();
        assert_eq!(body_of(&mut c).await.unwrap(), b"3\r\nraw");
    }

    #[tokio::test]
    async fn a_stream_cut_short_is_a_reset_and_bad_chunks_a_protocol_fault() {
        let req = serialize(&http::Method::GET, "/", "h", &[], false, b"");
        let mut c = scripted(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        ])
        .await;
        c.begin(&req).await.unwrap();
        assert_eq!(body_of(&mut c).await.unwrap_err().kind, ErrorKind::Reset);
        let mut c = scripted(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        ])
        .await;
        c.begin(&req).await.unwrap();
        assert_eq!(body_of(&mut c).await.unwrap_err().kind, ErrorKind::Protocol);
    }

    #[tokio::test]
    async fn a_long_head_grows_the_stream_buffer_then_it_shrinks() {
        let req = serialize(&http::Method::GET, "/", "h", &[], false, b"");
        let long: &'static [u8] = Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\nX-Pad: {}\r\nContent-Length: 2\r\n\r\nok",
                "p".repeat(20_000)
            )
            .into_bytes()
            .into_boxed_slice(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(long).await.unwrap();
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let counted = crate::net::Counting::new(tcp, Default::default());
        let mut c = H1::with_chunk(Stream::Plain(counted), 65536, STREAM_CHUNK);
        c.begin(&req).await.unwrap();
        assert!(c.buf.capacity() <= 2 * STREAM_CHUNK, "{}", c.buf.capacity());
        assert_eq!(body_of(&mut c).await.unwrap(), b"ok");
    }

    #[test]
    fn tokens() {
        assert!(contains_token(b"gzip, Chunked", b"chunked"));
        assert!(!contains_token(b"keep-alive", b"close"));
    }

    #[test]
    fn content_length_lists_of_one_value_are_one_length() {
        assert_eq!(content_length(b"42").ok(), Some(42));
        assert_eq!(content_length(b" 42 , 42,42 ").ok(), Some(42));
        for bad in [&b"42, 43"[..], b"", b"4 2", b"+42", b"-1", b"42,", b"0x10"] {
            let f = content_length(bad).err();
            assert!(f.is_some_and(|f| f.kind == ErrorKind::Protocol), "{bad:?}");
        }
    }
}
