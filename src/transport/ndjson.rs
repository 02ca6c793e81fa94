//! Chunked HTTP streaming of newline-delimited JSON: one object per line
//! whose `data_field` is the message (the reference server sends
//! `{"id":N,"data":"..."}`), or a bare JSON string. Reconnects resume with
//! `?<resume_param>=<last id>` when the profile names one. A line that is
//! neither is counted as a protocol fault and skipped; the stream goes on.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::http::{json_message, open_stream, percent_encode_into, StreamBody};
use super::{SessionSpec, Sink, Step, Transport};
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;
use bytes::{Buf, BytesMut};

/// An NDJSON streaming session.
pub struct Ndjson {
    conn: StreamBody,
    buf: BytesMut,
    /// Bytes of `buf` already searched for a newline: a long line arriving
    /// in many reads is scanned once, not once per read.
    scanned: usize,
    last_id: Option<String>,
    data_field: String,
    id_field: Option<String>,
    limits: crate::transport::Limits,
    /// A strict profile: a line without a string data field is a fault,
    /// not a wrapped message.
    strict: bool,
}

impl Transport for Ndjson {
    const LABEL: &'static str = "ndjson";
    const KEYS: &'static [&'static str] = &[
        "http2",
        "streams_per_connection",
        "stream_window",
        "connection_window",
    ];
    type Section = NdjsonProfile;

    fn preset(profile: &str) -> Option<NdjsonProfile> {
        match profile {
            "builtin" => Some(NdjsonProfile {
                url: "/stream/{channel}".into(),
                data_field: data(),
                id_field: Some("id".into()),
                resume_param: Some("after".into()),
            }),
            // nchan has no NDJSON.
            _ => None,
        }
    }

    async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        cursor: Option<String>,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let profile = spec.profile.ndjson.as_ref().ok_or_else(|| {
            Fault::new(ErrorKind::Other, "the target profile has no ndjson section")
        })?;
        let last_id = cursor.filter(|c| !c.is_empty());
        let path = match (&last_id, &profile.resume_param) {
            (Some(id), Some(param)) => {
                let sep = if spec.path.contains('?') { '&' } else { '?' };
                let mut p = format!("{}{sep}{param}=", spec.path);
                percent_encode_into(id, &mut p);
                p
            }
            _ => spec.path.clone(),
        };
        let conn = open_stream(spec, io, &path, &[], "application/x-ndjson", sink).await?;
        Ok(Ndjson {
            conn,
            buf: BytesMut::new(),
            scanned: 0,
            last_id,
            // With a `message_path` the pointer starts at the whole line.
            data_field: if spec.extractor.has_path() {
                String::new()
            } else {
                profile.data_field.clone()
            },
            id_field: profile.id_field.clone(),
            strict: spec.extractor.strict,
            limits: spec.params.limits,
        })
    }

    async fn next<S: Sink>(&mut self, _intended: Instant, sink: &mut S) -> Result<Step, Fault> {
        loop {
            // A silent stream for read_timeout is a dead connection.
            let Some((data, at)) = self.conn.data("NDJSON read").await? else {
                return Ok(Step::Ended);
            };
            self.buf.extend_from_slice(data);
            let mut any = false;
            while let Some(nl) =
                memchr::memchr(b'\n', &self.buf[self.scanned..]).map(|i| i + self.scanned)
            {
                self.scanned = 0;
                let line = self.buf.split_to(nl + 1);
                let line = &line[..nl];
                // Blank and whitespace-only lines (`\r\n`, ` \n`) are
                // keep-alives that servers send to hold the stream open.
                if line.iter().all(u8::is_ascii_whitespace) {
                    if !line.is_empty() {
                        sink.control();
                        any = true;
                    }
                    continue;
                }
                if line.len() > self.limits.max_message_bytes {
                    sink.fault(Fault::new(
                        ErrorKind::Limit,
                        format!(
                            "a {} byte NDJSON line (max_message_bytes is {})",
                            line.len(),
                            self.limits.max_message_bytes
                        ),
                    ));
                    continue;
                }
                let parsed = serde_json::from_slice::<serde_json::Value>(line)
                    .map_err(|e| format!("bad NDJSON line: {e}"))
                    .and_then(|v| {
                        // A line whose data is not a string is a wrapped
                        // message: the line itself, as the server wrote it.
                        match json_message(&v, &self.data_field) {
                            std::borrow::Cow::Borrowed(data) => sink.message(data.as_bytes(), at),
                            std::borrow::Cow::Owned(_) if self.strict => {
                                return Err(format!(
                                    "an object without a string `{}` field",
                                    self.data_field
                                ))
                            }
                            std::borrow::Cow::Owned(_) => sink.message(line, at),
                        }
                        Ok(self.id_field.as_ref().and_then(|f| match v.get(f) {
                            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                            Some(serde_json::Value::String(s)) => Some(s.clone()),
                            _ => None,
                        }))
                    });
                match parsed {
                    Ok(id) => {
                        if id.is_some() {
                            self.last_id = id;
                        }
                        any = true;
                    }
                    Err(e) => sink.fault(Fault::new(ErrorKind::Protocol, e)),
                }
            }
            self.scanned = self.buf.len();
            // An unfinished line is held whole: past either limit the
            // stream is given up rather than buffered without bound.
            let cap = self
                .limits
                .max_message_bytes
                .min(self.limits.max_buffered_bytes);
            if self.buf.len() > cap {
                let held = self.buf.len();
                self.buf.advance(held);
                self.scanned = 0;
                return Err(Fault::new(
                    ErrorKind::Limit,
                    format!("an unfinished NDJSON line of {held} bytes (limit {cap})"),
                ));
            }
            if any {
                return Ok(Step::Continue);
            }
        }
    }

    fn cursor(&self) -> Option<String> {
        self.last_id.clone()
    }

    async fn close(self) {}
}

/// Newline-delimited JSON streaming.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NdjsonProfile {
    /// Path template.
    pub url: String,
    /// The field of each line's object that holds the message (a line may
    /// also be a bare JSON string).
    #[serde(default = "data")]
    pub data_field: String,
    /// The field with the event id, used to resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_field: Option<String>,
    /// Query parameter that resumes after an id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_param: Option<String>,
}

impl super::Section for NdjsonProfile {
    fn url(&self) -> &str {
        &self.url
    }

    fn check(&self, what: &str) -> Result<(), String> {
        super::path_ok(&self.url, what)
    }
}

fn data() -> String {
    "data".into()
}
