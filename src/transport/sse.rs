//! Server-Sent Events. Parsing follows the WHATWG event-stream rules through
//! `sse-parse` (multi-line data, `id`, `retry`, comments, CR/LF/CRLF, BOM);
//! reconnects send `Last-Event-ID`, and a `retry:` field becomes the
//! reconnect delay hint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use http::header::{HeaderName, HeaderValue, ACCEPT};
use sse_parse::SseParser;

use super::http::{open_stream, StreamBody};
use super::{SessionSpec, Sink, Step, Transport};
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;

/// An SSE session.
pub struct Sse {
    conn: StreamBody,
    parser: SseParser,
    limits: crate::transport::Limits,
    /// Event types that carry data (the profile's `events`).
    data_events: Arc<[String]>,
}

impl Transport for Sse {
    const LABEL: &'static str = "sse";
    const KEYS: &'static [&'static str] = &[
        "http2",
        "streams_per_connection",
        "stream_window",
        "connection_window",
    ];
    type Section = SseProfile;

    fn preset(profile: &str) -> Option<SseProfile> {
        match profile {
            "builtin" | "nchan" => Some(SseProfile {
                url: "/sse/{channel}".into(),
                resume: true,
                events: message_events(),
            }),
            _ => None,
        }
    }

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
        let conn = open_stream(spec, io, &spec.path, &headers, "text/event-stream", sink).await?;
        let parser = match cursor {
            Some(id) => SseParser::with_last_event_id(id),
            None => SseParser::new(),
        }
        // A line or event block over the limit is dropped by the parser
        // (and counted below), so memory stays bounded.
        .max_buffer(spec.params.limits.max_sse_line_bytes);
        Ok(Sse {
            conn,
            parser,
            limits: spec.params.limits,
            data_events: profile.events.iter().cloned().collect(),
        })
    }

    async fn next<S: Sink>(&mut self, _intended: Instant, sink: &mut S) -> Result<Step, Fault> {
        loop {
            // A stream that goes silent (no event, no keep-alive comment)
            // for read_timeout is a dead connection.
            let Some((data, at)) = self.conn.data("SSE read").await? else {
                self.parser.finish();
                return Ok(Step::Ended);
            };
            let overflows = self.parser.overflows();
            self.parser.feed(data);
            if self.parser.overflows() > overflows {
                sink.fault(Fault::new(
                    ErrorKind::Limit,
                    format!(
                        "an SSE line or event over max_sse_line_bytes ({})",
                        self.limits.max_sse_line_bytes
                    ),
                ));
            }
            let mut any = false;
            while let Some(event) = self.parser.next_event() {
                // Heartbeats as named events (`event: ping`) are what a
                // browser's onmessage never sees: not data, not errors.
                // So is an empty `data:` keep-alive, which a browser does
                // dispatch, with empty data.
                if !self.data_events.contains(&event.event)
                    || event.data.bytes().all(|b| b.is_ascii_whitespace())
                {
                    sink.control();
                    any = true;
                    continue;
                }
                if event.data.len() > self.limits.max_message_bytes {
                    sink.fault(Fault::new(
                        ErrorKind::Limit,
                        format!(
                            "a {} byte SSE event (max_message_bytes is {})",
                            event.data.len(),
                            self.limits.max_message_bytes
                        ),
                    ));
                    continue;
                }
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

/// Server-Sent Events.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SseProfile {
    /// Path template.
    pub url: String,
    /// Send `Last-Event-ID` when reconnecting.
    #[serde(default = "yes")]
    pub resume: bool,
    /// Event types that carry data. A browser's `onmessage` sees only
    /// `message` (an event with no `event:` field); every other type, such
    /// as `event: ping` heartbeats, is a control message, counted apart.
    #[serde(default = "message_events")]
    pub events: Vec<String>,
}

impl super::Section for SseProfile {
    fn url(&self) -> &str {
        &self.url
    }

    fn check(&self, what: &str) -> Result<(), String> {
        super::path_ok(&self.url, what)
    }
}

fn message_events() -> Vec<String> {
    vec!["message".into()]
}
fn yes() -> bool {
    true
}
