//! Engine.IO's HTTP long-polling transport (engine.io-protocol README,
//! "HTTP long-polling"): the handshake GET without `sid`, then GETs the
//! server holds until it has packets (a ping at the latest, every
//! `pingInterval`), and POSTs for what the client sends. Packets are
//! batched with the record separator.
//!
//! One keep-alive connection carries both, one request at a time: the
//! client only sends between polls (the namespace connect, the join, pongs
//! and acks answer what a poll brought), so it never needs the browser's
//! second connection for a POST during a held GET.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Method};

use super::packet::{self, Engine, Handshake};
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;
use crate::transport::http::{read_body, Conn};
use crate::transport::{RequestSample, SessionSpec, Sink};

/// A polling session with its `sid`.
pub struct Polling {
    conn: Option<Conn>,
    /// The path with `EIO=4&transport=polling&sid=...`.
    target: String,
}

/// The Engine.IO query on `path` (`/socket.io/`): `transport` and, once
/// known, `sid`.
pub fn target(path: &str, transport: &str, sid: Option<&str>) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut t = format!("{path}{sep}EIO=4&transport={transport}");
    if let Some(sid) = sid {
        t.push_str("&sid=");
        crate::transport::http::percent_encode_into(sid, &mut t);
    }
    t
}

impl Polling {
    /// Connects and handshakes: the first GET answers the open packet
    /// (and possibly more packets after it, returned as the rest of the
    /// payload). The handshake is the session's first request.
    pub async fn handshake<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        sink: &mut S,
    ) -> Result<(Polling, Handshake, Bytes, Instant), Fault> {
        let conn = Conn::open(spec, io, sink).await?;
        let started = Instant::now();
        let mut me = Polling {
            conn: Some(conn),
            target: target(&spec.path, "polling", None),
        };
        let body = me.get(spec, spec.params.request_timeout, started, sink).await?;
        let mut records = packet::records(&body);
        let first = records.next().unwrap_or_default();
        let Engine::Open(json) = Engine::parse(first)? else {
            return Err(Fault::new(
                ErrorKind::Protocol,
                format!(
                    "the Engine.IO handshake answered {}, not an open packet",
                    crate::fault::quote_bytes(first)
                ),
            ));
        };
        let hs = Handshake::parse(json)?;
        me.target = target(&spec.path, "polling", Some(&hs.sid));
        let rest = body.slice((first.len() + 1).min(body.len())..);
        Ok((me, hs, rest, started))
    }

    /// One GET, held by the server until it has packets; `timeout`: how
    /// long it may be held (past it, the server missed a ping).
    pub async fn get<S: Sink>(
        &mut self,
        spec: &SessionSpec,
        timeout: Duration,
        intended: Instant,
        sink: &mut S,
    ) -> Result<Bytes, Fault> {
        self.exchange(spec, Method::GET, Bytes::new(), timeout, intended, sink)
            .await
    }

    /// One POST of `packets`, batched with the record separator.
    pub async fn post<S: Sink>(
        &mut self,
        spec: &SessionSpec,
        packets: &[String],
        sink: &mut S,
    ) -> Result<(), Fault> {
        let body = Bytes::from(packets.join("\u{1e}"));
        self.exchange(
            spec,
            Method::POST,
            body,
            spec.params.request_timeout,
            Instant::now(),
            sink,
        )
        .await
        .map(drop)
    }

    #[allow(clippy::too_many_arguments)]
    async fn exchange<S: Sink>(
        &mut self,
        spec: &SessionSpec,
        method: Method,
        body: Bytes,
        timeout: Duration,
        intended: Instant,
        sink: &mut S,
    ) -> Result<Bytes, Fault> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Fault::new(
                ErrorKind::Reset,
                "the Engine.IO polling connection is closed",
            ));
        };
        let what = if method == Method::GET { "GET" } else { "POST" };
        let headers = if method == Method::POST {
            vec![(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain;charset=UTF-8"),
            )]
        } else {
            Vec::new()
        };
        let sent = Instant::now();
        let result = async {
            let resp = conn
                .send(spec, method, &self.target, &headers, body, timeout)
                .await?;
            let status = resp.status().as_u16();
            let max = spec.params.limits.max_buffered_bytes;
            if status != 200 {
                let head = resp.headers().clone();
                let text = read_body(resp.into_body(), spec.params.request_timeout, max)
                    .await
                    .unwrap_or_default();
                return Err(Fault::of_status(
                    status,
                    &head,
                    format!(
                        "Engine.IO {what} answered {status}: {}",
                        String::from_utf8_lossy(&text[..text.len().min(120)])
                    ),
                ));
            }
            read_body(resp.into_body(), timeout, max).await
        }
        .await;
        match result {
            Ok(body) => {
                sink.request(RequestSample {
                    intended,
                    sent,
                    done: Instant::now(),
                    status: Some(200),
                    empty: false,
                });
                Ok(body)
            }
            Err(f) => {
                self.close(sink);
                if f.kind == ErrorKind::Timeout {
                    return Err(Fault::new(
                        ErrorKind::Timeout,
                        format!(
                            "ping timeout: no Engine.IO packet within {} ms (pingInterval + \
                             pingTimeout) on a polling {what}",
                            timeout.as_millis()
                        ),
                    ));
                }
                Err(f)
            }
        }
    }

    /// Drops the connection (reported once).
    pub fn close<S: Sink>(&mut self, sink: &mut S) {
        if self.conn.take().is_some() {
            sink.disconnected();
        }
    }

    /// Drops the connection without a sink (the session is ending).
    pub fn drop_conn(&mut self) -> bool {
        self.conn.take().is_some()
    }
}
