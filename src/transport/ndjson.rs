//! Chunked HTTP streaming of newline-delimited JSON: one object per line
//! whose `data_field` is the message (the built-in target sends
//! `{"id":N,"data":"..."}`), or a bare JSON string. Reconnects resume with
//! `?<resume_param>=<last id>` when the profile names one. A line that is
//! neither is counted as a protocol fault and skipped; the stream goes on.

use std::sync::Arc;
use std::time::Instant;

use super::http::{json_message, open_stream, percent_encode_into, Conn};
use super::{SessionSpec, Sink, Step, Transport};
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;
use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// Longest line accepted before the stream is declared garbage.
const MAX_LINE: usize = 4 << 20;

/// An NDJSON streaming session.
pub struct Ndjson {
    _conn: Conn,
    body: Incoming,
    buf: BytesMut,
    last_id: Option<String>,
    data_field: String,
    id_field: Option<String>,
}

impl Transport for Ndjson {
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
        let (conn, body) = open_stream(spec, io, &path, &[], "application/x-ndjson", sink).await?;
        Ok(Ndjson {
            _conn: conn,
            body,
            buf: BytesMut::new(),
            last_id,
            data_field: profile.data_field.clone(),
            id_field: profile.id_field.clone(),
        })
    }

    async fn next<S: Sink>(&mut self, _intended: Instant, sink: &mut S) -> Result<Step, Fault> {
        loop {
            let Some(frame) = self.body.frame().await else {
                return Ok(Step::Ended);
            };
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            let at = Instant::now();
            self.buf.extend_from_slice(&data);
            let mut any = false;
            while let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let line = self.buf.split_to(nl + 1);
                let line = &line[..nl];
                if line.is_empty() {
                    continue;
                }
                let parsed = serde_json::from_slice::<serde_json::Value>(line)
                    .map_err(|e| format!("bad NDJSON line: {e}"))
                    .and_then(|v| {
                        let data = json_message(&v, &self.data_field)?;
                        sink.message(data.as_bytes(), at);
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
            if self.buf.len() > MAX_LINE {
                self.buf.advance(self.buf.len());
                return Err(Fault::new(ErrorKind::Protocol, "NDJSON line too long"));
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
