//! Server-Sent Events. Parsing follows the WHATWG event-stream rules through
//! `sse-parse` (multi-line data, `id`, `retry`, comments, CR/LF/CRLF, BOM);
//! reconnects send `Last-Event-ID`, and a `retry:` field becomes the
//! reconnect delay hint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue, ACCEPT};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use sse_parse::SseParser;

use super::http::{open_stream, Conn};
use super::{SessionSpec, Sink, Step, Transport};
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;

/// Buffered bytes of one unfinished event before it counts as garbage.
const MAX_EVENT_BYTES: usize = 4 << 20;

/// An SSE session.
pub struct Sse {
    _conn: Conn,
    body: Incoming,
    parser: SseParser,
}

impl Transport for Sse {
    async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        cursor: Option<String>,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let profile =
            spec.profile.sse.as_ref().ok_or_else(|| {
                Fault::new(ErrorKind::Other, "the target profile has no sse section")
            })?;
        let cursor = cursor.filter(|_| profile.resume);
        let mut headers = vec![(ACCEPT, HeaderValue::from_static("text/event-stream"))];
        if let Some(id) = &cursor {
            // An id the server sent that cannot be a header value is dropped:
            // the session starts fresh instead of failing forever.
            if let Ok(v) = HeaderValue::from_str(id) {
                headers.push((HeaderName::from_static("last-event-id"), v));
            }
        }
        let (conn, body) =
            open_stream(spec, io, &spec.path, &headers, "text/event-stream", sink).await?;
        let parser = match cursor {
            Some(id) => SseParser::with_last_event_id(id),
            None => SseParser::new(),
        }
        .max_buffer(MAX_EVENT_BYTES);
        Ok(Sse {
            _conn: conn,
            body,
            parser,
        })
    }

    async fn next<S: Sink>(&mut self, _intended: Instant, sink: &mut S) -> Result<Step, Fault> {
        loop {
            let Some(frame) = self.body.frame().await else {
                self.parser.finish();
                return Ok(Step::Ended);
            };
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            let at = Instant::now();
            let overflows = self.parser.overflows();
            self.parser.feed(&data);
            if self.parser.overflows() > overflows {
                sink.fault(Fault::new(
                    ErrorKind::Protocol,
                    "SSE event larger than the parser buffer",
                ));
            }
            let mut any = false;
            while let Some(event) = self.parser.next_event() {
                sink.message(event.data.as_bytes(), at);
                any = true;
            }
            if any {
                return Ok(Step::Continue);
            }
        }
    }

    fn cursor(&self) -> Option<String> {
        let id = self.parser.last_event_id();
        (!id.is_empty()).then(|| id.to_string())
    }

    fn retry_hint(&self) -> Option<Duration> {
        self.parser.retry()
    }

    async fn close(self) {}
}
