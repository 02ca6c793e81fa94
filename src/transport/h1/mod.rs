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

mod body;
mod head;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fault::Fault;
use crate::net::Stream;

pub(crate) use head::contains_token;

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
mod tests;
