//! Echo mode: each client sends timestamped messages on a WebSocket and
//! times the echo. One message is in flight per client; the load module
//! schedules sends from intended instants and never skips one, so the
//! round trip counts from when the message *should* have gone (the open
//! model). The echo must be byte-identical to what was sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::h1::STREAM_CHUNK;
use super::websocket::{self, closed_by_server, Ws};
use super::{RequestSample, SessionSpec, Sink, Step, Transport};
use crate::envelope::Envelope;
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;

/// An echo session.
pub struct Echo {
    ws: Ws,
    seq: u64,
    size: usize,
    opened: Instant,
    timeout: Duration,
}

impl Transport for Echo {
    const LABEL: &'static str = "echo";
    const KEYS: &'static [&'static str] = &["rate", "url", "message_bytes", "compression"];
    const SUBSCRIBES: bool = false;
    const REQUEST_BASED: bool = true;
    type Section = super::NoSection;

    fn preset(_: &str) -> Option<super::NoSection> {
        None
    }

    async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        _cursor: Option<String>,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let size = spec.params.message_bytes.unwrap_or(64);
        // One read per echo where it fits (a frame header is at most 14
        // bytes); bounded, as a subscriber's is, for memory.
        let read_size = (size + 14).clamp(STREAM_CHUNK, 64 << 10);
        let ws = websocket::connect(spec, io, &spec.path, None, read_size, sink).await?;
        Ok(Echo {
            ws,
            seq: 0,
            size,
            opened: Instant::now(),
            timeout: spec.params.request_timeout,
        })
    }

    async fn next<S: Sink>(&mut self, intended: Instant, sink: &mut S) -> Result<Step, Fault> {
        let payload = Envelope {
            channel: 0,
            seq: self.seq,
            sent_ns: intended.saturating_duration_since(self.opened).as_nanos() as u64,
        }
        .encode(self.size);
        self.seq += 1;
        let sent = Instant::now();
        self.ws.send(Message::text(payload.clone())).await?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| Fault::timeout("echo"))?;
            let done = Instant::now();
            let echoed = match msg {
                None => return Ok(Step::Ended),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(t))) => t.as_bytes() == payload.as_bytes(),
                Some(Ok(Message::Binary(b))) => &b[..] == payload.as_bytes(),
                Some(Ok(Message::Close(f))) => {
                    websocket::answer_close(&mut self.ws).await;
                    return closed_by_server(f.as_ref());
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Frame(_))) => {
                    return Err(Fault::new(ErrorKind::Protocol, "raw frame"))
                }
            };
            if !echoed {
                // A greeting or another server message: count it, keep
                // waiting for the echo.
                sink.fault(Fault::new(
                    ErrorKind::Protocol,
                    "a message that is not the echo of the one sent",
                ));
                continue;
            }
            sink.request(RequestSample {
                intended,
                sent,
                done,
                status: None,
                empty: false,
            });
            return Ok(Step::Continue);
        }
    }

    fn cursor(&self) -> Option<String> {
        None
    }

    async fn close(mut self) {
        websocket::close_politely(&mut self.ws).await;
    }
}
