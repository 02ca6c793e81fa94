//! The publisher: drives the event stream at the scenario's rate, one task
//! and one HTTP connection per channel, each event carrying an envelope whose
//! timestamp is the event's *intended* publish time (so a stalled target
//! shows in delivery latency instead of shifting the schedule). Keeps the
//! `PublishLog` the ledgers are settled against, and declares the target
//! gone when publishing keeps failing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{FutureExt, SinkExt, StreamExt};
use http::{header, HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::envelope::Envelope;
use crate::fault::{ErrorKind, Fault};
use crate::metrics::ledger::{ChannelLog, PublishLog};
use crate::metrics::recorder::new_histogram;
use crate::profile::{PublishMethod, PublishProfile};
use crate::schedule::rate::RateSchedule;
use crate::shutdown::{Shutdown, StopReason};

/// The target is declared gone after this long without a successful publish
/// *and* `DEAD_FAILURES` failures in a row: longer than one publish timeout,
/// so one slow answer (a stall) is a sample, not a verdict.
const DEAD_AFTER: Duration = Duration::from_secs(12);
const DEAD_FAILURES: u32 = 3;
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// What and where to publish.
#[derive(Debug, Clone)]
pub struct PublishSpec {
    /// Target address.
    pub addr: SocketAddr,
    /// `Host` header.
    pub authority: String,
    /// Channel names.
    pub channels: Vec<String>,
    /// The scenario's number of each channel (its place in the schedule).
    pub channel_ids: Vec<u32>,
    /// The scenario's channel count (a shard may publish on fewer).
    pub total_channels: u32,
    /// Target path prefix.
    pub base_path: String,
    /// How the target takes publishes.
    pub profile: PublishProfile,
    /// The profile's transport sections (a STOMP or MQTT publisher's
    /// destination, login and QoS).
    pub sections: Arc<crate::transport::Sections>,
    /// Extra headers (secrets expanded).
    pub headers: Arc<[(HeaderName, HeaderValue)]>,
    /// When each event is due (rate and stages over all channels).
    pub schedule: RateSchedule,
    /// HTTP publishes over h2c (prior knowledge) instead of HTTP/1.1.
    pub http2: bool,
    /// Payload size.
    pub payload_bytes: usize,
    /// TLS to an `https://` / `wss://` target.
    pub tls: Option<Arc<crate::net::Tls>>,
}

/// The publisher's own measurements.
#[derive(Debug, Clone)]
pub struct PublishReport {
    /// What was published.
    pub log: PublishLog,
    /// Publish latency from intended time to response, microseconds.
    pub latency: hdrhistogram::Histogram<u64>,
    /// How late the publisher's timer fired, microseconds (load-generator
    /// health: only publishes whose turn came while the publisher was idle,
    /// so a slow target's backpressure is not counted as our slip).
    pub slip: hdrhistogram::Histogram<u64>,
    /// Failed publishes.
    pub errors: u64,
    /// First failure seen.
    pub first_error: Option<String>,
}

/// Publishes at intended times in `start..until`, or until `stop`.
pub async fn run(
    spec: PublishSpec,
    clock: Clock,
    start: Instant,
    until: Instant,
    stop: CancellationToken,
    shutdown: Shutdown,
) -> PublishReport {
    let channels = spec.channels.len();
    let spec = Arc::new(spec);
    let mut tasks = JoinSet::new();
    for ch in 0..channels {
        let spec = spec.clone();
        let stop = stop.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let r = channel_loop(&spec, ch, clock, start, until, stop, shutdown).await;
            (ch, r)
        });
    }
    let mut report = PublishReport {
        log: PublishLog {
            channels: vec![ChannelLog::default(); channels],
        },
        latency: new_histogram(),
        slip: new_histogram(),
        errors: 0,
        first_error: None,
    };
    while let Some(res) = tasks.join_next().await {
        let Ok((ch, r)) = res else { continue };
        report.log.channels[ch] = r.log;
        let _ = report.latency.add(&r.latency);
        let _ = report.slip.add(&r.slip);
        report.errors += r.errors;
        if report.first_error.is_none() {
            report.first_error = r.first_error;
        }
    }
    report
}

struct ChannelResult {
    log: ChannelLog,
    latency: hdrhistogram::Histogram<u64>,
    slip: hdrhistogram::Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

async fn channel_loop(
    spec: &PublishSpec,
    ch: usize,
    clock: Clock,
    start: Instant,
    until: Instant,
    stop: CancellationToken,
    shutdown: Shutdown,
) -> ChannelResult {
    let path = format!(
        "{}{}",
        spec.base_path,
        crate::profile::fill(&spec.profile.url, &spec.channels[ch])
    );
    // Channels take turns (event k goes to channel k mod channels) so the
    // aggregate stream follows the rate evenly; a shard keeps each
    // channel's place in the scenario's schedule by its global id.
    let id = spec.channel_ids.get(ch).copied().unwrap_or(ch as u32);
    let mut due = spec.schedule.events_of(id, spec.total_channels);
    let mut out = ChannelResult {
        log: ChannelLog::default(),
        latency: new_histogram(),
        slip: new_histogram(),
        errors: 0,
        first_error: None,
    };
    let mut conn: Option<Sender> = None;
    let mut last_ok = Instant::now();
    let mut failures_in_row = 0u32;
    while let Some(intended) = due.next().map(|d| start + d) {
        if intended >= until {
            break;
        }
        let idle = Instant::now() < intended;
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(intended.into()) => {}
        }
        if idle {
            let late = Instant::now().saturating_duration_since(intended);
            out.slip.saturating_record(late.as_micros() as u64);
        }
        let seq = out.log.sent_ns.len() as u64;
        let sent_ns = clock.ns(intended);
        let payload = Envelope {
            channel: ch as u32,
            seq,
            sent_ns,
        }
        .encode(spec.payload_bytes);
        out.log.sent_ns.push(sent_ns);
        let result = tokio::select! {
            biased;
            _ = stop.cancelled() => Err(Fault::new(ErrorKind::Other, "publisher stopped")),
            r = publish_one(spec, &mut conn, &path, &spec.channels[ch], payload) => r,
        };
        match result {
            Ok(()) => {
                failures_in_row = 0;
                last_ok = Instant::now();
                let us = last_ok.saturating_duration_since(intended).as_micros() as u64;
                out.latency.saturating_record(us);
            }
            Err(f) => {
                conn = None;
                out.log.failed.push(seq);
                out.errors += 1;
                if out.first_error.is_none() {
                    out.first_error = Some(f.to_string());
                }
                if stop.is_cancelled() {
                    break;
                }
                failures_in_row += 1;
                if failures_in_row >= DEAD_FAILURES && last_ok.elapsed() > DEAD_AFTER {
                    shutdown.stop(StopReason::Fatal(format!(
                        "publishing to {} has failed {failures_in_row} times in {:.1} s: {f}",
                        spec.authority,
                        last_ok.elapsed().as_secs_f64()
                    )));
                    break;
                }
            }
        }
    }
    // Closing politely lets the server take the last frames; a dropped
    // socket can lose the final publish (seen with nchan).
    // Bounded: a broker that stopped reading must not hold the run's end.
    let close = async {
        match conn.as_mut() {
            Some(Sender::Ws(ws) | Sender::SocketIo(ws)) => {
                crate::transport::websocket::close_politely(ws).await
            }
            Some(Sender::Stomp(p)) => p.close().await,
            Some(Sender::Mqtt(p)) => p.close().await,
            _ => {}
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), close).await;
    out
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

async fn connect(spec: &PublishSpec, path: &str, channel: &str) -> Result<Sender, Fault> {
    let (tcp, _) = crate::net::connect(spec.addr, PUBLISH_TIMEOUT).await?;
    // Publishes are not counted in any group's bytes: a private counter.
    let counted = crate::net::Counting::new(tcp, Arc::default());
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

async fn publish_one(
    spec: &PublishSpec,
    conn: &mut Option<Sender>,
    path: &str,
    channel: &str,
    payload: String,
) -> Result<(), Fault> {
    let payload = json_escaped(&spec.profile.content_type, payload);
    let body = crate::profile::fill(&spec.profile.body, channel).replace("{payload}", &payload);
    tokio::time::timeout(PUBLISH_TIMEOUT, async {
        if conn.as_ref().is_none_or(Sender::is_closed) {
            *conn = Some(connect(spec, path, channel).await?);
        }
        match conn.as_mut() {
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
                answered(spec, path, resp).await
            }
            Some(Sender::Http2(conn)) => {
                let req = http_request(spec, Request::builder(), body)?;
                let resp = conn
                    .send_request(req, spec.tls.is_some(), &spec.authority, path)
                    .await?;
                answered(spec, path, resp).await
            }
        }
    })
    .await
    .map_err(|_| Fault::timeout("publish"))?
}

/// A publish request: method, content type, the profile's headers, body.
fn http_request(
    spec: &PublishSpec,
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
    spec: &PublishSpec,
    path: &str,
    resp: http::Response<hyper::body::Incoming>,
) -> Result<(), Fault> {
    let status = resp.status();
    let _ = resp.into_body().collect().await?;
    if spec.profile.ok_status.contains(&status.as_u16()) {
        Ok(())
    } else {
        Err(Fault::new(
            ErrorKind::Status,
            format!("publish to {path} answered {status}"),
        ))
    }
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
