//! STOMP 1.2 over WebSocket (subprotocol `v12.stomp`; RabbitMQ web-stomp,
//! ActiveMQ, Spring's broker relay): a session sends CONNECT (accept-version
//! 1.2, the virtual host, login and passcode) and waits for CONNECTED, then
//! SUBSCRIBEs to its channel's destination (with a receipt, the RECEIPT
//! confirms the subscription) and reads MESSAGE frames, whose body is the
//! event. Heart-beats go both ways as the STOMP 1.2 "Heart-beating" section
//! negotiates them: EOLs are sent every max(cx, sy), and a server that
//! promised heart-beats but sends nothing for twice its period is gone (a
//! `timeout`). Heart-beats and receipts are control messages; an ERROR
//! frame is a `protocol` error whose text is the server's `message` header.
//! A room member (`publish = { via = "same" }`) SENDs its own messages to
//! the same destination, each with a `receipt` (`own-<ticket>`) when the
//! profile asks for receipts: that RECEIPT is the message's
//! acknowledgement, an ERROR naming it its refusal.
//!
//! Frames are parsed by [`frame`]; the publisher's side (SEND with a
//! receipt) is [`Publisher`].

pub mod frame;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::h1::STREAM_CHUNK;
use super::script::duration_str;
use super::deadline::Deadline;
use super::websocket::{answer_close, close_politely, closed_by_server, Ws};
use super::{SessionSpec, Sink, Step, Transport};
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;
use frame::{Decoder, Frame, Parsed};

/// The `id` of the one subscription a session holds.
const SUBSCRIPTION_ID: &str = "0";
/// The receipt asked for with SUBSCRIBE.
const SUBSCRIBE_RECEIPT: &str = "subscribed";
/// The prefix of the receipts asked for with the client's own SENDs (the
/// message's ticket follows).
const OWN_RECEIPT: &str = "own-";

/// A STOMP session.
pub struct Stomp {
    ws: Ws,
    dec: Decoder,
    /// How often we send a heart-beat (negotiated), if at all.
    beat_every: Option<Duration>,
    /// When our next heart-beat is due (one sleep for the session).
    next_beat: Deadline,
    /// `last_rx` plus the allowed silence, armed once for the session.
    dead: Deadline,
    /// How long the server may stay silent before it counts as gone.
    server_silence: Option<Duration>,
    read_timeout: Duration,
    last_rx: tokio::time::Instant,
    /// The channel's destination: where the client's own SENDs go too.
    destination: String,
    /// `content-type` of its own SENDs.
    content_type: String,
    /// Its own SENDs ask for a RECEIPT.
    receipt: bool,
}

impl Transport for Stomp {
    const LABEL: &'static str = "stomp";
    const KEYS: &'static [&'static str] = &[];
    const SENDS: bool = true;
    type Section = StompProfile;

    fn preset(_profile: &str) -> Option<StompProfile> {
        None
    }

    /// A SEND with a `receipt` header is acknowledged with a RECEIPT
    /// (STOMP 1.2 §"RECEIPT"), or refused with an ERROR naming it.
    fn acks_publish(sections: &super::Sections) -> bool {
        sections.stomp.as_ref().is_some_and(|s| s.receipt)
    }

    async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        _cursor: Option<String>,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let profile = spec.profile.stomp.as_ref().ok_or_else(|| {
            Fault::new(ErrorKind::Other, "the target profile has no stomp section")
        })?;
        let connect = profile.connect_frame(profile.heartbeat)?;
        let (ws, started) = super::websocket::upgrade(
            spec,
            io,
            &spec.path,
            Some(&profile.subprotocol),
            STREAM_CHUNK,
            sink,
        )
        .await?;
        let mut me = Stomp {
            ws,
            dec: Decoder::new(spec.params.limits.max_message_bytes),
            beat_every: None,
            next_beat: Deadline::new(None),
            dead: Deadline::new(None),
            server_silence: None,
            read_timeout: spec.params.limits.read_timeout,
            last_rx: tokio::time::Instant::now(),
            destination: super::fill(&profile.destination, &spec.channel),
            content_type: profile.content_type.clone(),
            receipt: profile.receipt,
        };
        let destination = me.destination.clone();
        let handshake = me.start(connect, profile, &destination, sink);
        match tokio::time::timeout(spec.params.request_timeout, handshake).await {
            Ok(Ok(())) => {
                sink.subscribed(started.elapsed());
                Ok(me)
            }
            Ok(Err(f)) => {
                sink.disconnected();
                Err(f)
            }
            Err(_) => {
                sink.disconnected();
                Err(Fault::timeout("STOMP CONNECT/SUBSCRIBE"))
            }
        }
    }

    async fn next<S: Sink>(&mut self, _intended: Instant, sink: &mut S) -> Result<Step, Fault> {
        loop {
            let silence = self.server_silence.unwrap_or(self.read_timeout);
            self.dead
                .set(Some(self.last_rx + silence.min(self.read_timeout)));
            let got = tokio::select! {
                p = read_frame(&mut self.ws, &mut self.dec) => p?,
                _ = self.next_beat.passed() => {
                    self.ws.send(Message::text("\n")).await?;
                    self.next_beat
                        .set(self.beat_every.map(|d| tokio::time::Instant::now() + d));
                    continue;
                }
                _ = self.dead.passed() => {
                    return Err(match self.server_silence {
                        Some(d) if d <= self.read_timeout => Fault::new(
                            ErrorKind::Timeout,
                            format!(
                                "no STOMP heart-beat from the server within {}",
                                humantime::format_duration(d)
                            ),
                        ),
                        _ => Fault::timeout("STOMP read (nothing within read_timeout)"),
                    });
                }
            };
            self.last_rx = tokio::time::Instant::now();
            let Some(p) = got else {
                return Ok(Step::Ended);
            };
            on_parsed(p, Instant::now(), sink)?;
            return Ok(Step::Continue);
        }
    }

    fn cursor(&self) -> Option<String> {
        None
    }

    /// SENDs the client's own message to its channel's destination, asking
    /// for a RECEIPT when the profile does (reported when `next` reads it).
    async fn send(&mut self, message: String, ticket: u64) -> Result<(), Fault> {
        let receipt = own_receipt(ticket);
        let mut headers = vec![
            ("destination", self.destination.as_str()),
            ("content-type", self.content_type.as_str()),
        ];
        if self.receipt {
            headers.push(("receipt", &receipt));
        }
        let f = frame::encode("SEND", &headers, message.as_bytes());
        self.ws.send(text(f)).await?;
        Ok(())
    }

    async fn close(mut self) {
        let bye = frame::encode("DISCONNECT", &[], b"");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.send(text(bye))).await;
        close_politely(&mut self.ws).await;
    }
}

impl Stomp {
    /// CONNECT → CONNECTED (heart-beats negotiated), SUBSCRIBE → RECEIPT
    /// when the profile asks for one.
    async fn start<S: Sink>(
        &mut self,
        connect: Vec<u8>,
        profile: &StompProfile,
        destination: &str,
        sink: &mut S,
    ) -> Result<(), Fault> {
        self.ws.send(text(connect)).await?;
        let connected = await_connected(&mut self.ws, &mut self.dec).await?;
        sink.control();
        let (sx, sy) = heart_beat(connected.header("heart-beat"))?;
        let ms = profile.heartbeat.as_millis() as u64;
        // STOMP 1.2 "Heart-beating": each side's period is the larger of
        // what one offers and the other wants, and 0 on either side is none.
        let period = |a: u64, b: u64| (a > 0 && b > 0).then(|| Duration::from_millis(a.max(b)));
        self.beat_every = period(ms, sy);
        self.next_beat
            .set(self.beat_every.map(|d| tokio::time::Instant::now() + d));
        // Twice the period: the spec asks receivers to allow for timing.
        self.server_silence = period(ms, sx).map(|d| d * 2);
        self.last_rx = tokio::time::Instant::now();

        let mut headers = vec![
            ("id", SUBSCRIPTION_ID),
            ("destination", destination),
            ("ack", "auto"),
        ];
        if profile.receipt {
            headers.push(("receipt", SUBSCRIBE_RECEIPT));
        }
        self.ws
            .send(text(frame::encode("SUBSCRIBE", &headers, b"")))
            .await?;
        if !profile.receipt {
            return Ok(());
        }
        loop {
            let p = read_frame(&mut self.ws, &mut self.dec)
                .await?
                .ok_or_else(ended_early)?;
            self.last_rx = tokio::time::Instant::now();
            match p {
                Parsed::Frame(f)
                    if f.command == "RECEIPT" && f.header("receipt-id") == Some(SUBSCRIBE_RECEIPT) =>
                {
                    sink.control();
                    return Ok(());
                }
                p => on_parsed(p, Instant::now(), sink)?,
            }
        }
    }
}

fn ended_early() -> Fault {
    Fault::new(
        ErrorKind::Closed,
        "the server ended the connection before confirming the subscription",
    )
}

/// The `receipt` header of the client's own SEND `ticket`.
fn own_receipt(ticket: u64) -> String {
    format!("{OWN_RECEIPT}{ticket}")
}

/// The ticket of a `receipt-id` naming one of the client's own SENDs.
fn own_ticket(f: &Frame) -> Option<u64> {
    f.header("receipt-id")?.strip_prefix(OWN_RECEIPT)?.parse().ok()
}

/// A heart-beat or a frame in an established session.
fn on_parsed<S: Sink>(p: Parsed, at: Instant, sink: &mut S) -> Result<(), Fault> {
    match p {
        Parsed::HeartBeat => sink.control(),
        Parsed::Frame(f) => match f.command.as_str() {
            "MESSAGE" => sink.message(&f.body, at),
            "RECEIPT" => match own_ticket(&f) {
                Some(ticket) => sink.publish_acked(ticket, at),
                None => sink.control(),
            },
            // The server closes the connection after an ERROR (STOMP 1.2
            // §"ERROR"); one naming an own SEND also refused that message.
            "ERROR" => {
                if let Some(ticket) = own_ticket(&f) {
                    sink.publish_refused(ticket, error_frame(&f));
                }
                return Err(error_frame(&f));
            }
            other => {
                return Err(Fault::new(
                    ErrorKind::Protocol,
                    format!("the server sent a {other} frame in an established session"),
                ))
            }
        },
    }
    Ok(())
}

/// An ERROR frame as a `protocol` fault: the server's `message` header,
/// and the start of its body.
fn error_frame(f: &Frame) -> Fault {
    let message = f.header("message").unwrap_or("(no message header)");
    let body = String::from_utf8_lossy(&f.body[..f.body.len().min(200)]);
    let body = body.trim();
    let detail = if body.is_empty() {
        format!("the server sent ERROR: {message}")
    } else {
        format!("the server sent ERROR: {message} ({body})")
    };
    Fault::new(ErrorKind::Protocol, detail)
}

/// Reads CONNECTED (an ERROR instead is the server refusing the CONNECT).
async fn await_connected<S>(ws: &mut WebSocketStream<S>, dec: &mut Decoder) -> Result<Frame, Fault>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match read_frame(ws, dec).await?.ok_or_else(ended_early)? {
            Parsed::HeartBeat => {}
            Parsed::Frame(f) if f.command == "CONNECTED" => return Ok(f),
            Parsed::Frame(f) if f.command == "ERROR" => return Err(error_frame(&f)),
            Parsed::Frame(f) => {
                return Err(Fault::new(
                    ErrorKind::Protocol,
                    format!("the server sent {} where CONNECTED was due", f.command),
                ))
            }
        }
    }
}

/// `heart-beat: sx,sy` of CONNECTED (absent: `0,0`).
fn heart_beat(v: Option<&str>) -> Result<(u64, u64), Fault> {
    let Some(v) = v else { return Ok((0, 0)) };
    let bad = || Fault::new(ErrorKind::Protocol, format!("bad heart-beat header {}", crate::fault::quote(v)));
    let (a, b) = v.split_once(',').ok_or_else(bad)?;
    Ok((
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    ))
}

fn text(bytes: Vec<u8>) -> Message {
    // Frames stampede encodes are UTF-8 (its own headers, the envelope).
    match String::from_utf8(bytes) {
        Ok(s) => Message::text(s),
        Err(e) => Message::binary(e.into_bytes()),
    }
}

/// The next heart-beat or frame; `None` when the server ended the
/// WebSocket (normally: a close other than 1000 is a `closed` fault).
/// Frames come in text or binary messages, whole, split or several to one.
async fn read_frame<S>(ws: &mut WebSocketStream<S>, dec: &mut Decoder) -> Result<Option<Parsed>, Fault>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        if let Some(p) = dec.take()? {
            return Ok(Some(p));
        }
        match ws.next().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(t))) => dec.push(t.as_bytes()),
            Some(Ok(Message::Binary(b))) => dec.push(&b),
            Some(Ok(Message::Close(f))) => {
                answer_close(ws).await;
                closed_by_server(f.as_ref())?;
                return Ok(None);
            }
            Some(Ok(_)) => {}
        }
    }
}

/// The publisher's side: one STOMP session per channel, without
/// heart-beats (it sends on its own schedule). Each SEND asks for a
/// receipt when the profile does, and is done when the RECEIPT arrives (the
/// broker took it); otherwise when it is written.
pub struct Publisher<S> {
    ws: WebSocketStream<S>,
    dec: Decoder,
    destination: String,
    content_type: String,
    receipt: bool,
    n: u64,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Publisher<S> {
    /// CONNECT → CONNECTED on an upgraded WebSocket, for `channel`.
    pub async fn start(
        mut ws: WebSocketStream<S>,
        profile: &StompProfile,
        channel: &str,
    ) -> Result<Self, Fault> {
        ws.send(text(profile.connect_frame(Duration::ZERO)?)).await?;
        let mut dec = Decoder::new(1 << 20);
        await_connected(&mut ws, &mut dec).await?;
        Ok(Publisher {
            ws,
            dec,
            destination: super::fill(&profile.destination, channel),
            content_type: profile.content_type.clone(),
            receipt: profile.receipt,
            n: 0,
        })
    }

    /// SENDs `body` to the channel's destination.
    pub async fn publish(&mut self, body: String) -> Result<(), Fault> {
        self.n += 1;
        let id = self.n.to_string();
        let mut headers = vec![
            ("destination", self.destination.as_str()),
            ("content-type", self.content_type.as_str()),
        ];
        if self.receipt {
            headers.push(("receipt", &id));
        }
        let f = frame::encode("SEND", &headers, body.as_bytes());
        self.ws.send(text(f)).await?;
        if !self.receipt {
            return Ok(());
        }
        loop {
            match read_frame(&mut self.ws, &mut self.dec).await? {
                None => {
                    return Err(Fault::new(
                        ErrorKind::Reset,
                        "the server ended the publisher's connection",
                    ))
                }
                Some(Parsed::Frame(f)) if f.command == "ERROR" => return Err(error_frame(&f)),
                Some(Parsed::Frame(f))
                    if f.command == "RECEIPT" && f.header("receipt-id") == Some(&id) =>
                {
                    return Ok(())
                }
                Some(_) => {}
            }
        }
    }

    /// DISCONNECT, then the WebSocket close handshake.
    pub async fn close(&mut self) {
        let _ = self
            .ws
            .send(text(frame::encode("DISCONNECT", &[], b"")))
            .await;
        close_politely(&mut self.ws).await;
    }
}

/// `[profile.stomp]`: how a broker speaks STOMP over WebSocket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StompProfile {
    /// WebSocket path (RabbitMQ web-stomp: `/ws`).
    pub url: String,
    /// `Sec-WebSocket-Protocol` (`v12.stomp`).
    #[serde(default = "default_subprotocol")]
    pub subprotocol: String,
    /// CONNECT's `host`: the virtual host (RabbitMQ: `/`).
    #[serde(default = "default_host")]
    pub host: String,
    /// CONNECT's `login` (`${ENV_VAR}` is expanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// CONNECT's `passcode` (`${ENV_VAR}` is expanded; only the template
    /// is written to results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passcode: Option<String>,
    /// Destination per channel (`{channel}` is replaced): subscribed to,
    /// and SENT to by a STOMP publisher (RabbitMQ: `/topic/{channel}`,
    /// `/exchange/amq.topic/{channel}`).
    #[serde(default = "default_destination")]
    pub destination: String,
    /// Heart-beats offered and asked for, both ways ("0s": none).
    #[serde(default = "default_heartbeat", with = "duration_str")]
    pub heartbeat: Duration,
    /// Ask for a RECEIPT to SUBSCRIBE (the subscription is confirmed by
    /// it) and to each SEND (a publish is done when the broker took it).
    #[serde(default = "yes")]
    pub receipt: bool,
    /// `content-type` of SEND frames.
    #[serde(default = "default_content_type")]
    pub content_type: String,
}

fn default_subprotocol() -> String {
    "v12.stomp".into()
}
fn default_host() -> String {
    "/".into()
}
fn default_destination() -> String {
    "/topic/{channel}".into()
}
fn default_heartbeat() -> Duration {
    Duration::from_secs(10)
}
fn default_content_type() -> String {
    "text/plain".into()
}
fn yes() -> bool {
    true
}

impl StompProfile {
    /// The CONNECT frame offering heart-beats every `beat` both ways.
    fn connect_frame(&self, beat: Duration) -> Result<Vec<u8>, Fault> {
        let secret = |t: &Option<String>, what: &str| -> Result<Option<String>, Fault> {
            t.as_deref()
                .map(crate::secrets::expand_env)
                .transpose()
                .map_err(|e| Fault::new(ErrorKind::Other, format!("stomp.{what}: {e}")))
        };
        let login = secret(&self.login, "login")?;
        let passcode = secret(&self.passcode, "passcode")?;
        let ms = beat.as_millis().to_string();
        let hb = format!("{ms},{ms}");
        let mut headers = vec![
            ("accept-version", "1.2"),
            ("host", self.host.as_str()),
            ("heart-beat", hb.as_str()),
        ];
        if let Some(l) = &login {
            headers.push(("login", l));
        }
        if let Some(p) = &passcode {
            headers.push(("passcode", p));
        }
        Ok(frame::encode("CONNECT", &headers, b""))
    }
}

impl super::Section for StompProfile {
    fn url(&self) -> &str {
        &self.url
    }

    fn check(&self, what: &str) -> Result<(), String> {
        super::path_ok(&self.url, what)?;
        http::HeaderValue::from_str(&self.subprotocol)
            .map_err(|_| format!("{what}.subprotocol is not a valid header value"))?;
        if self.destination.is_empty() {
            return Err(format!("{what}.destination is empty"));
        }
        // CONNECT headers are not escaped: a line break would end them.
        let raw = [Some(&self.host), self.login.as_ref(), self.passcode.as_ref()];
        if raw.iter().flatten().any(|v| v.contains(['\n', '\r'])) {
            return Err(format!(
                "{what}: host, login and passcode cannot hold line breaks"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connected_heart_beats_are_read_or_refused() {
        assert_eq!(heart_beat(None).unwrap(), (0, 0));
        assert_eq!(heart_beat(Some("10000, 0")).unwrap(), (10000, 0));
        assert_eq!(
            heart_beat(Some("x,1")).unwrap_err().kind,
            ErrorKind::Protocol
        );
    }

    #[test]
    fn an_error_frame_names_the_servers_message() {
        let f = Frame {
            command: "ERROR".into(),
            headers: vec![("message".into(), "not_found".into())],
            body: bytes::Bytes::from_static(b"NOT_FOUND - no exchange 'x'\n"),
        };
        let e = error_frame(&f);
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert_eq!(
            e.detail,
            "the server sent ERROR: not_found (NOT_FOUND - no exchange 'x')"
        );
    }
}
