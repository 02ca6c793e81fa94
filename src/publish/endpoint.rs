//! The target's publish endpoint as one connection: the profile's
//! `[profile.publish]` method (HTTP POST/PUT over HTTP/1.1 or h2c, a
//! WebSocket text frame, a Socket.IO emit, a STOMP SEND, an MQTT PUBLISH)
//! to one channel, opened on first use and again after it closed. The
//! central publisher holds one per channel; a room member publishing with
//! `publish = { via = "http" }` holds its own (see `load::via_http`).
//!
//! It knows nothing of schedules or ledgers: it sends one payload and says
//! whether, and with what status, the target acknowledged it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, SinkExt, StreamExt};
use http::{header, HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::fault::{ErrorKind, Fault};
use crate::profile::{PublishMethod, PublishProfile};

/// One publish (connecting included) gives up after this long.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how publishes go: the target and its profile's publish
/// method. Shared (in an `Arc`) by every connection to it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Target address.
    pub addr: SocketAddr,
    /// `Host` header.
    pub authority: String,
    /// Target path prefix.
    pub base_path: String,
    /// How the target takes publishes.
    pub profile: PublishProfile,
    /// The profile's transport sections (a STOMP or MQTT publisher's
    /// destination, login, receipt and QoS).
    pub sections: Arc<crate::transport::Sections>,
    /// Extra headers (secrets expanded).
    pub headers: Arc<[(HeaderName, HeaderValue)]>,
    /// HTTP publishes over h2c (prior knowledge) instead of HTTP/1.1.
    pub http2: bool,
    /// TLS to an `https://` / `wss://` target.
    pub tls: Option<Arc<crate::net::Tls>>,
}

impl Endpoint {
    /// True when the target acknowledges each publish (see
    /// [`crate::profile::publish_acknowledged`]).
    pub fn acknowledges(&self) -> bool {
        crate::profile::publish_acknowledged(self.profile.method, &self.sections)
    }
}

/// How one publish ended.
#[derive(Debug)]
pub struct Published {
    /// The HTTP status, when an HTTP response arrived (accepted or not).
    pub status: Option<u16>,
    /// `Ok` when the target took it (acknowledged, or written when the
    /// method has no acknowledgement); otherwise why not.
    pub result: Result<(), Fault>,
}

/// One connection to the endpoint for one channel.
pub struct Connection {
    endpoint: Arc<Endpoint>,
    path: String,
    channel: String,
    conn: Option<Sender>,
    io: Arc<crate::net::IoCounters>,
}

impl Connection {
    /// A connection for `channel`, opened by the first publish; its wire
    /// bytes are counted in `io`.
    pub fn new(
        endpoint: Arc<Endpoint>,
        channel: &str,
        io: Arc<crate::net::IoCounters>,
    ) -> Connection {
        let path = format!(
            "{}{}",
            endpoint.base_path,
            crate::profile::fill(&endpoint.profile.url, channel)
        );
        Connection {
            endpoint,
            path,
            channel: channel.to_string(),
            conn: None,
            io,
        }
    }

    /// Publishes `payload` (an envelope) within [`PUBLISH_TIMEOUT`],
    /// connecting first if need be. After a failure the connection is
    /// dropped: the next publish opens a fresh one.
    pub async fn publish(&mut self, payload: String) -> Published {
        let mut status = None;
        let result = tokio::time::timeout(PUBLISH_TIMEOUT, self.exchange(payload, &mut status))
            .await
            .unwrap_or_else(|_| Err(Fault::timeout("publish")));
        if result.is_err() {
            self.conn = None;
        }
        Published { status, result }
    }

    /// Ends the connection politely, within two seconds: a dropped socket
    /// can lose the final publish (seen with nchan), and a broker that
    /// stopped reading must not hold the run's end.
    pub async fn close(&mut self) {
        let close = async {
            match self.conn.as_mut() {
                Some(Sender::Ws(ws) | Sender::SocketIo(ws)) => {
                    crate::transport::websocket::close_politely(ws).await
                }
                Some(Sender::Stomp(p)) => p.close().await,
                Some(Sender::Mqtt(p)) => p.close().await,
                _ => {}
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), close).await;
        self.conn = None;
    }

    async fn exchange(&mut self, payload: String, status: &mut Option<u16>) -> Result<(), Fault> {
        let spec = &*self.endpoint;
        let payload = json_escaped(&spec.profile.content_type, payload);
        let body =
            crate::profile::fill(&spec.profile.body, &self.channel).replace("{payload}", &payload);
        if self.conn.as_ref().is_none_or(Sender::is_closed) {
            self.conn = Some(connect(spec, &self.path, &self.channel, &self.io).await?);
        }
        let path = self.path.as_str();
        match self.conn.as_mut() {
            None => Err(Fault::new(ErrorKind::Other, "no publisher connection")),
            Some(Sender::SocketIo(ws)) => {
                crate::transport::socketio::publisher_emit(ws, &body).await
            }
            Some(Sender::Ws(ws)) => {
                // Whatever the server says back (acks, greetings) is read
                // and dropped so it cannot fill the socket.
                while let Some(msg) = ws.next().now_or_never() {
                    match msg {
                        None => {
                            return Err(Fault::new(ErrorKind::Reset, "publisher WebSocket closed"))
                        }
                        Some(Err(e)) => return Err(e.into()),
                        Some(Ok(_)) => {}
                    }
                }
                ws.send(Message::text(body)).await?;
                Ok(())
            }
            Some(Sender::Stomp(p)) => p.publish(body).await,
            Some(Sender::Mqtt(p)) => p.publish(Bytes::from(body)).await,
            Some(Sender::Http(sender, _)) => {
                let mut req = Request::builder().uri(path);
                // A profile's Host replaces the authority, not a second Host.
                if !spec.headers.iter().any(|(name, _)| name == header::HOST) {
                    req = req.header(header::HOST, spec.authority.as_str());
                }
                let req = http_request(spec, req, body)?;
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                answered(spec, path, resp, status).await
            }
            Some(Sender::Http2(conn)) => {
                let req = http_request(spec, Request::builder(), body)?;
                let resp = conn
                    .send_request(req, spec.tls.is_some(), &spec.authority, path)
                    .await?;
                answered(spec, path, resp, status).await
            }
        }
    }
}

/// A publisher connection; an HTTP connection's driver task ends when this
/// is dropped.
enum Sender {
    Http(SendRequest<Full<Bytes>>, tokio::task::JoinHandle<()>),
    Http2(Box<crate::transport::h2::H2Conn>),
    Ws(Box<WebSocketStream<crate::net::Stream>>),
    Stomp(Box<crate::transport::stomp::Publisher<crate::net::Stream>>),
    Mqtt(Box<crate::transport::mqtt::Publisher<crate::net::Stream>>),
    SocketIo(Box<WebSocketStream<crate::net::Stream>>),
}

impl Drop for Sender {
    fn drop(&mut self) {
        if let Sender::Http(_, driver) = self {
            driver.abort();
        }
    }
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::Http(s, _) => s.is_closed(),
            Sender::Http2(c) => c.is_closed(),
            Sender::Ws(_) | Sender::SocketIo(_) | Sender::Stomp(_) | Sender::Mqtt(_) => false,
        }
    }
}

async fn connect(
    spec: &Endpoint,
    path: &str,
    channel: &str,
    io: &Arc<crate::net::IoCounters>,
) -> Result<Sender, Fault> {
    let (tcp, _) = crate::net::connect(spec.addr, PUBLISH_TIMEOUT).await?;
    let counted = crate::net::Counting::new(tcp, io.clone());
    let tcp = match &spec.tls {
        Some(tls) => tls.handshake(counted, PUBLISH_TIMEOUT).await?.0,
        None => crate::net::Stream::Plain(counted),
    };
    if !spec.profile.method.is_http() {
        let socketio = spec.profile.method == PublishMethod::SocketIo;
        let path = if socketio {
            crate::transport::socketio::publisher_path(path)
        } else {
            path.to_string()
        };
        let url = format!("ws://{}{path}", spec.authority);
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| Fault::new(ErrorKind::Other, format!("bad URL {url}: {e}")))?;
        // The publisher's tungstenite cannot inflate: it offers no
        // extension, whatever the profile's subscribers offer.
        for (name, value) in spec.headers.iter() {
            if name == header::SEC_WEBSOCKET_EXTENSIONS {
                continue;
            }
            req.headers_mut().insert(name.clone(), value.clone());
        }
        let sections = &spec.sections;
        let subprotocol = match spec.profile.method {
            PublishMethod::Stomp => sections.stomp.as_ref().map(|s| s.subprotocol.as_str()),
            PublishMethod::Mqtt => sections.mqtt.as_ref().map(|s| s.subprotocol.as_str()),
            _ => None,
        };
        if let Some(p) = subprotocol {
            let v = HeaderValue::from_str(p)
                .map_err(|_| Fault::new(ErrorKind::Other, "bad WebSocket subprotocol"))?;
            req.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, v);
        }
        let (mut ws, _) = tokio_tungstenite::client_async(req, tcp).await?;
        if socketio {
            crate::transport::socketio::publisher_handshake(&mut ws).await?;
            return Ok(Sender::SocketIo(Box::new(ws)));
        }
        let missing = |what: &str| Fault::new(ErrorKind::Other, format!("no [profile.{what}]"));
        return match spec.profile.method {
            PublishMethod::Stomp => {
                let s = sections.stomp.as_ref().ok_or_else(|| missing("stomp"))?;
                let p = crate::transport::stomp::Publisher::start(ws, s, channel).await?;
                Ok(Sender::Stomp(Box::new(p)))
            }
            PublishMethod::Mqtt => {
                let s = sections.mqtt.as_ref().ok_or_else(|| missing("mqtt"))?;
                let p = crate::transport::mqtt::Publisher::start(ws, s, channel).await?;
                Ok(Sender::Mqtt(Box::new(p)))
            }
            _ => Ok(Sender::Ws(Box::new(ws))),
        };
    }
    if spec.http2 {
        let conn = crate::transport::h2::H2Conn::handshake(tcp, (None, None)).await?;
        return Ok(Sender::Http2(Box::new(conn)));
    }
    let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    let handle = tokio::spawn(async move {
        let _ = driver.await;
    });
    Ok(Sender::Http(sender, handle))
}

/// In a JSON body the envelope sits inside a JSON string: escaped as one
/// (the envelope is printable ASCII without `"` or `\`, so this only ever
/// scans it; a body template of any shape stays valid JSON).
fn json_escaped(content_type: &str, payload: String) -> String {
    let json = content_type
        .as_bytes()
        .windows(4)
        .any(|w| w.eq_ignore_ascii_case(b"json"));
    if !json || !payload.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return payload;
    }
    let quoted = serde_json::Value::String(payload).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

/// A publish request: method, content type, the profile's headers, body.
fn http_request(
    spec: &Endpoint,
    req: http::request::Builder,
    body: String,
) -> Result<Request<Full<Bytes>>, Fault> {
    let method = match spec.profile.method {
        PublishMethod::Put => Method::PUT,
        _ => Method::POST,
    };
    let mut req = req
        .method(method)
        .header(header::CONTENT_TYPE, spec.profile.content_type.as_str());
    for (name, value) in spec.headers.iter() {
        req = req.header(name, value);
    }
    req.body(Full::new(Bytes::from(body)))
        .map_err(|e| Fault::new(ErrorKind::Other, e.to_string()))
}

/// Reads a publish's answer to its end (so the connection can be reused)
/// and checks its status.
async fn answered(
    spec: &Endpoint,
    path: &str,
    resp: http::Response<hyper::body::Incoming>,
    seen: &mut Option<u16>,
) -> Result<(), Fault> {
    let status = resp.status();
    *seen = Some(status.as_u16());
    let refused = (!spec.profile.ok_status.contains(&status.as_u16())).then(|| {
        Fault::of_status(
            status.as_u16(),
            resp.headers(),
            format!("publish to {path} answered {status}"),
        )
    });
    let _ = resp.into_body().collect().await?;
    refused.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_json_escaped_only_in_json_bodies() {
        let env = crate::envelope::Envelope {
            channel: 1,
            seq: 2,
            sent_ns: 3,
        }
        .encode(40);
        assert_eq!(json_escaped("application/json", env.clone()), env);
        assert_eq!(
            json_escaped("Application/JSON", "a\"b\\c".into()),
            "a\\\"b\\\\c"
        );
        assert_eq!(json_escaped("text/plain", "a\"b".into()), "a\"b");
    }
}
