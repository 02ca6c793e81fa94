//! WebSocket subscription: TCP connect and the upgrade are timed apart; the
//! client pings on an interval (pongs to server pings are sent by
//! tungstenite), and the session ends with a proper close handshake. There
//! is no resume: events published while a client reconnects are lost, which
//! is WebSocket's real trade-off and is counted as such.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http::HeaderValue;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{SessionSpec, Sink, Step, Transport};
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;

/// Small buffers: tungstenite's 128 KiB default read buffer would cost
/// 13 GiB at 100k connections (ecosystem notes, pitfall 1). A frame or
/// message over `max_message_bytes` is a `limit` fault before it is read.
fn config(limits: &crate::transport::Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(64 << 10)
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_message_bytes))
}

/// A WebSocket session.
pub struct WebSocket {
    ws: Ws,
    ping_interval: Option<Duration>,
    next_ping: Option<tokio::time::Instant>,
    read_timeout: Duration,
    /// When the last frame (any, pongs included) arrived.
    last_rx: tokio::time::Instant,
}

/// A counted WebSocket stream.
pub type Ws = WebSocketStream<crate::net::Stream>;

/// Connects and upgrades to `path` with the profile's headers and
/// `subprotocol`, reporting TCP connect and upgrade times.
pub async fn connect<S: Sink>(
    spec: &SessionSpec,
    io: &Arc<IoCounters>,
    path: &str,
    subprotocol: Option<&str>,
    sink: &mut S,
) -> Result<Ws, Fault> {
    let url = format!("ws://{}{}", spec.authority, path);
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| Fault::new(ErrorKind::Other, format!("bad WebSocket URL {url}: {e}")))?;
    for (name, value) in spec.headers.iter() {
        req.headers_mut().insert(name.clone(), value.clone());
    }
    if let Some(p) = subprotocol {
        let v = HeaderValue::from_str(p)
            .map_err(|_| Fault::new(ErrorKind::Other, "bad WebSocket subprotocol"))?;
        req.headers_mut().insert("sec-websocket-protocol", v);
    }
    let stream = super::dial(spec, io, sink).await?;
    let started = Instant::now();
    let upgrade =
        tokio_tungstenite::client_async_with_config(req, stream, Some(config(&spec.params.limits)));
    let (ws, _resp) = match tokio::time::timeout(spec.params.request_timeout, upgrade).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            sink.disconnected();
            return Err(e.into());
        }
        Err(_) => {
            sink.disconnected();
            return Err(Fault::timeout("WebSocket upgrade"));
        }
    };
    sink.subscribed(started.elapsed());
    Ok(ws)
}

/// What a close frame from the server means: a normal end, or a fault
/// (nchan closes with `1001 410 Gone` when a channel is deleted).
pub fn closed_by_server(frame: Option<&CloseFrame>) -> Result<Step, Fault> {
    match frame {
        None => Ok(Step::Ended),
        Some(f) if f.code == CloseCode::Normal => Ok(Step::Ended),
        Some(f) => Err(Fault::new(
            ErrorKind::Closed,
            format!(
                "the server closed the WebSocket: {} {}",
                u16::from(f.code),
                f.reason
            ),
        )),
    }
}

impl Transport for WebSocket {
    async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        _cursor: Option<String>,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let profile = spec.profile.websocket.as_ref().ok_or_else(|| {
            Fault::new(
                ErrorKind::Other,
                "the target profile has no websocket section",
            )
        })?;
        let mut ws = connect(spec, io, &spec.path, profile.subprotocol.as_deref(), sink).await?;
        if let Some(m) = &profile.subscribe_message {
            let text = crate::profile::fill(m, &spec.channel);
            if let Err(e) = ws.send(Message::text(text)).await {
                sink.disconnected();
                return Err(e.into());
            }
        }
        let ping_interval = spec.params.ping_interval;
        Ok(WebSocket {
            ws,
            ping_interval,
            next_ping: ping_interval.map(|d| tokio::time::Instant::now() + d),
            read_timeout: spec.params.limits.read_timeout,
            last_rx: tokio::time::Instant::now(),
        })
    }

    async fn next<S: Sink>(&mut self, _intended: Instant, sink: &mut S) -> Result<Step, Fault> {
        loop {
            let ping_at = self.next_ping;
            let dead_at = self.last_rx + self.read_timeout;
            let msg = tokio::select! {
                msg = self.ws.next() => msg,
                _ = sleep_until_opt(ping_at) => {
                    self.ws.send(Message::Ping(Default::default())).await?;
                    self.next_ping = self.ping_interval.map(|d| tokio::time::Instant::now() + d);
                    continue;
                }
                // Nothing, not even a pong, for read_timeout: the peer is
                // gone without a FIN (a half-open connection).
                _ = tokio::time::sleep_until(dead_at) => {
                    return Err(Fault::timeout("WebSocket read (no frame within read_timeout)"));
                }
            };
            self.last_rx = tokio::time::Instant::now();
            let at = Instant::now();
            match msg {
                None => return Ok(Step::Ended),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(t))) => sink.message(t.as_bytes(), at),
                Some(Ok(Message::Binary(b))) => sink.message(&b, at),
                Some(Ok(Message::Close(f))) => return closed_by_server(f.as_ref()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Frame(_))) => {
                    return Err(Fault::new(ErrorKind::Protocol, "raw frame"))
                }
            }
            return Ok(Step::Continue);
        }
    }

    fn cursor(&self) -> Option<String> {
        None
    }

    async fn close(mut self) {
        close_politely(&mut self.ws).await;
    }
}

/// A bounded, polite close: send our close frame and wait briefly for the
/// server's.
pub async fn close_politely<S>(ws: &mut WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        if ws.close(None).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
