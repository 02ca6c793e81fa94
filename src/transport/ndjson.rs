//! Chunked HTTP streaming of newline-delimited JSON: one
//! `{"id":N,"data":"..."}` object per line. Reconnects resume with
//! `?after=<last id>`. A line that is not such an object is counted as a
//! protocol fault and skipped; the stream goes on.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Deserialize;

use super::http::{open_stream, Conn};
use super::{SessionSpec, Sink, Step, Transport};
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;

/// Longest line accepted before the stream is declared garbage.
const MAX_LINE: usize = 4 << 20;

#[derive(Deserialize)]
struct Line<'a> {
    id: u64,
    #[serde(borrow)]
    data: Cow<'a, str>,
}

/// An NDJSON streaming session.
pub struct Ndjson {
    _conn: Conn,
    body: Incoming,
    buf: BytesMut,
    last_id: Option<u64>,
}

impl Transport for Ndjson {
    async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        cursor: Option<String>,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let last_id = cursor.as_deref().and_then(|c| c.parse().ok());
        let path = match last_id {
            Some(id) => format!("{}?after={id}", spec.path),
            None => spec.path.clone(),
        };
        let (conn, body) = open_stream(spec, io, &path, &[], "application/x-ndjson", sink).await?;
        Ok(Ndjson {
            _conn: conn,
            body,
            buf: BytesMut::new(),
            last_id,
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
                match serde_json::from_slice::<Line>(line) {
                    Ok(l) => {
                        self.last_id = Some(l.id);
                        sink.message(l.data.as_bytes(), at);
                        any = true;
                    }
                    Err(e) => sink.fault(Fault::new(
                        ErrorKind::Protocol,
                        format!("bad NDJSON line: {e}"),
                    )),
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
        self.last_id.map(|id| id.to_string())
    }

    async fn close(self) {}
}
