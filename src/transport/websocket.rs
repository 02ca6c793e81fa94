//! WebSocket subscription: TCP connect and the upgrade are timed apart; the
//! client pings on an interval (pongs to server pings are sent by
//! tungstenite), and the session ends with a proper close handshake. There
//! is no resume: events published while a client reconnects are lost, which
//! is WebSocket's real trade-off and is counted as such.
//!
//! A close from the server is answered with a close and flushed before the
//! session ends (RFC 6455 section 5.5.1). permessage-deflate is offered
//! when the group or profile asks for `compression`, or a scenario's
//! `Sec-WebSocket-Extensions` header offers it (see [`super::pmd`]); an
//! extension the server chose but was not offered fails the upgrade.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use futures_util::{SinkExt, StreamExt};
use http::{header, HeaderName, HeaderValue, Method};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::deadline::Deadline;
use super::h1::{contains_token, serialize, StreamHead, H1, STREAM_CHUNK};
use super::pmd::{self, Agreed, Offer, Wire};
use super::script;
use super::{SessionSpec, Sink, Step, Transport};
use crate::extract::Matcher;
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;

/// Small buffers: tungstenite's 128 KiB default read buffer would cost
/// 13 GiB at 100k connections (ecosystem notes, pitfall 1), and it
/// zero-fills the buffer before each read, so all of it is resident. A
/// larger frame still arrives whole (the buffer grows to the frame's
/// length). A frame or message over `max_message_bytes` is a `limit` fault
/// before it is read.
fn config(limits: &crate::transport::Limits, read_size: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_size)
        .write_buffer_size(0)
        .max_write_buffer_size(64 << 10)
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_message_bytes))
}

/// A WebSocket session.
pub struct WebSocket {
    ws: Ws,
    ping_interval: Option<Duration>,
    ping_due: Deadline,
    read_timeout: Duration,
    /// When the last frame (any, pongs included) arrived.
    last_rx: tokio::time::Instant,
    /// `last_rx + read_timeout`, armed once for the session.
    dead: Deadline,
    /// The session script and who the client is, kept after opening when
    /// the profile has replies, a heartbeat or a goodbye (boxed: a plain
    /// relay pays one pointer per connection).
    script: Option<Box<script::Session>>,
    /// When the next heartbeat is due.
    beat_due: Deadline,
}

/// A counted WebSocket stream (inflated above the count when
/// permessage-deflate was agreed).
pub type Ws = WebSocketStream<Wire>;

/// What this session offers in `Sec-WebSocket-Extensions`: a scenario's
/// own header (checked when the plan was built, so only offers stampede
/// implements get here), else the browsers' offer when the group or
/// profile asks for compression, else nothing.
fn extension_offer(spec: &SessionSpec) -> Result<Option<(Offer, HeaderValue)>, Fault> {
    let own = spec
        .headers
        .iter()
        .find(|(name, _)| name == header::SEC_WEBSOCKET_EXTENSIONS)
        .map(|(_, v)| v.clone());
    let asked = spec.params.compression
        || spec
            .profile
            .websocket
            .as_ref()
            .is_some_and(|w| w.compression);
    let value = match own {
        Some(v) => v,
        None if asked => HeaderValue::from_static(pmd::DEFAULT_OFFER),
        None => return Ok(None),
    };
    let offer = value
        .to_str()
        .map_err(|_| "not text".to_string())
        .and_then(Offer::parse)
        .map_err(|m| Fault::new(ErrorKind::Other, m))?;
    Ok(Some((offer, value)))
}

/// Connects and upgrades to `path` with the profile's headers and
/// `subprotocol`, reporting TCP connect and upgrade times. `read_size`:
/// the most one read takes (what an idle subscriber holds; an echo client
/// sizes it to its messages).
///
/// The upgrade goes through stampede's own HTTP/1.1 client rather than
/// tungstenite's handshake: tungstenite hands its 4 KiB handshake buffer on
/// as the connection's read buffer for good, whatever `read_buffer_size`
/// says, and with the handshake's request and response maps that was a
/// quarter of an idle client's memory (`benches/hold.sh`).
pub async fn connect<S: Sink>(
    spec: &SessionSpec,
    io: &Arc<IoCounters>,
    path: &str,
    subprotocol: Option<&str>,
    read_size: usize,
    sink: &mut S,
) -> Result<Ws, Fault> {
    let (ws, started) = upgrade(spec, io, path, subprotocol, read_size, sink).await?;
    sink.subscribed(started.elapsed());
    Ok(ws)
}

/// [`connect`] without reporting the subscription: a session script
/// reports it when the server confirms. Also returns when the upgrade
/// started (after TCP connect), which `subscribe_*` counts from.
pub async fn upgrade<S: Sink>(
    spec: &SessionSpec,
    io: &Arc<IoCounters>,
    path: &str,
    subprotocol: Option<&str>,
    read_size: usize,
    sink: &mut S,
) -> Result<(Ws, Instant), Fault> {
    let key = generate_key();
    let extensions = extension_offer(spec)?;
    // The profile's subprotocol, or else the list a scenario's own
    // Sec-WebSocket-Protocol header offers.
    let offered: Option<String> = subprotocol.map(str::to_string).or_else(|| {
        spec.headers
            .iter()
            .find(|(name, _)| name == header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|(_, v)| v.to_str().ok())
            .map(str::to_string)
    });
    let mut headers: Vec<(HeaderName, HeaderValue)> = spec
        .headers
        .iter()
        .filter(|(name, _)| !UPGRADE_HEADERS.contains(name))
        .cloned()
        .collect();
    headers.extend([
        (header::UPGRADE, HeaderValue::from_static("websocket")),
        (header::CONNECTION, HeaderValue::from_static("Upgrade")),
        (
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        ),
    ]);
    headers.push((
        header::SEC_WEBSOCKET_KEY,
        HeaderValue::from_str(&key)
            .map_err(|_| Fault::new(ErrorKind::Other, "bad WebSocket key"))?,
    ));
    if let Some(p) = &offered {
        let v = HeaderValue::from_str(p)
            .map_err(|_| Fault::new(ErrorKind::Other, "bad WebSocket subprotocol"))?;
        headers.push((header::SEC_WEBSOCKET_PROTOCOL, v));
    }
    if let Some((_, v)) = &extensions {
        headers.push((header::SEC_WEBSOCKET_EXTENSIONS, v.clone()));
    }
    let request = serialize(&Method::GET, path, &spec.authority, &headers, false, b"");
    drop(headers);
    let stream = super::dial(spec, io, sink).await?;
    let started = Instant::now();
    let mut conn = H1::with_chunk(stream, spec.params.limits.max_header_bytes, STREAM_CHUNK);
    let upgrade = async {
        let head = conn.begin(&request).await?;
        check_upgrade(&head, &key, offered.as_deref())?;
        let agreed = check_extensions(&head, extensions.as_ref().map(|(o, _)| o))?;
        if conn.is_closed() {
            return Err(Fault::new(
                ErrorKind::Protocol,
                "a 101 that ends the connection (HTTP/1.0 or Connection: close)",
            ));
        }
        Ok(agreed)
    };
    let agreed = match tokio::time::timeout(spec.params.request_timeout, upgrade).await {
        Ok(Ok(agreed)) => agreed,
        Ok(Err(f)) => {
            sink.disconnected();
            return Err(f);
        }
        Err(_) => {
            sink.disconnected();
            return Err(Fault::timeout("WebSocket upgrade"));
        }
    };
    let (stream, early) = conn.into_parts();
    // Frames that came with the 101 are the inflater's to rewrite first.
    let (wire, early) = match agreed {
        Some(a) => (
            Wire::inflating(stream, a, early, spec.params.limits.max_message_bytes),
            Vec::new(),
        ),
        None => (Wire::plain(stream), early),
    };
    let ws = WebSocketStream::from_partially_read(
        wire,
        early,
        Role::Client,
        Some(config(&spec.params.limits, read_size)),
    )
    .await;
    Ok((ws, started))
}

/// Checks a scenario's `Sec-WebSocket-Extensions` header (profile or
/// group) when the plan is built: it goes out only if stampede implements
/// every extension it offers.
pub fn check_scenario_extensions(headers: &[(HeaderName, HeaderValue)]) -> Result<(), String> {
    for (_, v) in headers
        .iter()
        .filter(|(n, _)| n == header::SEC_WEBSOCKET_EXTENSIONS)
    {
        let text = v
            .to_str()
            .map_err(|_| "Sec-WebSocket-Extensions is not text".to_string())?;
        Offer::parse(text)?;
    }
    Ok(())
}

/// Headers the upgrade sets itself; a scenario's copies are dropped.
const UPGRADE_HEADERS: [HeaderName; 6] = [
    header::UPGRADE,
    header::CONNECTION,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::SEC_WEBSOCKET_EXTENSIONS,
];

/// Checks the server's `Sec-WebSocket-Extensions` against what was offered
/// (RFC 6455 section 4.1: a client fails the connection on an extension it
/// did not ask for). Several header lines are one list.
fn check_extensions(head: &StreamHead, offer: Option<&Offer>) -> Result<Option<Agreed>, Fault> {
    let lines: Vec<&[u8]> = head
        .headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let joined = lines.join(&b", "[..]);
    let answer = (!lines.is_empty()).then_some(&joined[..]);
    match offer {
        None => pmd::check_unoffered(answer).map(|()| None),
        Some(o) => o.check_answer(answer),
    }
    .map_err(|m| Fault::new(ErrorKind::Protocol, m))
}

/// Checks an upgrade's answer as RFC 6455 section 4.1 asks of a client:
/// 101, `Upgrade: websocket`, `Connection: upgrade`, the accept key derived
/// from ours, and no subprotocol but one of those offered (`offered`: a
/// comma-separated list).
fn check_upgrade(head: &StreamHead, key: &str, offered: Option<&str>) -> Result<(), Fault> {
    let status = head.answer.status;
    if status != 101 {
        return Err(Fault::of_status(
            status,
            &head.headers,
            format!("the WebSocket upgrade was answered {status}"),
        ));
    }
    let has = |name: HeaderName, token: &[u8]| {
        head.headers
            .get_all(name)
            .iter()
            .any(|v| contains_token(v.as_bytes(), token))
    };
    let fail = |what: String| Err(Fault::new(ErrorKind::Protocol, what));
    if !has(header::UPGRADE, b"websocket") {
        return fail("the upgrade's answer has no `Upgrade: websocket`".into());
    }
    if !has(header::CONNECTION, b"upgrade") {
        return fail("the upgrade's answer has no `Connection: upgrade`".into());
    }
    let accept = derive_accept_key(key.as_bytes());
    if head
        .headers
        .get(header::SEC_WEBSOCKET_ACCEPT)
        .map(|v| v.as_bytes())
        != Some(accept.as_bytes())
    {
        return fail("the upgrade's Sec-WebSocket-Accept does not match the key".into());
    }
    let chosen = head.headers.get(header::SEC_WEBSOCKET_PROTOCOL);
    match (offered, chosen) {
        (None, None) => Ok(()),
        (Some(list), Some(got))
            if list
                .split(',')
                .any(|p| p.trim().as_bytes() == got.as_bytes()) =>
        {
            Ok(())
        }
        (want, got) => fail(format!(
            "subprotocol {} asked for, the server chose {}",
            want.map_or("none".to_string(), |w| format!("`{w}`")),
            got.map_or("none".to_string(), |g| format!(
                "`{}`",
                String::from_utf8_lossy(g.as_bytes())
            ))
        )),
    }
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
    const LABEL: &'static str = "websocket";
    const KEYS: &'static [&'static str] = &["ping_interval", "compression"];
    const SENDS: bool = true;
    type Section = WebSocketProfile;

    fn preset(profile: &str) -> Option<WebSocketProfile> {
        match profile {
            "builtin" | "nchan" => Some(WebSocketProfile {
                url: "/ws/{channel}".into(),
                ..WebSocketProfile::default()
            }),
            _ => None,
        }
    }

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
        let (ws, started) = upgrade(
            spec,
            io,
            &spec.path,
            profile.subprotocol.as_deref(),
            STREAM_CHUNK,
            sink,
        )
        .await?;
        let ping_interval = spec.params.ping_interval;
        // Compiled with the plan; a hand-built session compiles its own.
        let compiled = match &spec.script {
            Some(c) => c.clone(),
            None => Arc::new(
                script::Compiled::new(
                    profile,
                    &crate::identity::template::Names {
                        columns: &[],
                        token: true,
                    },
                )
                .map_err(|(key, u)| {
                    script_fault(format!("websocket.{key}: {}", u.message))
                })?,
            ),
        };
        let who = sink.who().cloned().unwrap_or_default();
        let mut me = WebSocket {
            ws,
            ping_interval,
            ping_due: Deadline::new(ping_interval.map(|d| tokio::time::Instant::now() + d)),
            read_timeout: spec.params.limits.read_timeout,
            last_rx: tokio::time::Instant::now(),
            dead: Deadline::new(Some(
                tokio::time::Instant::now() + spec.params.limits.read_timeout,
            )),
            beat_due: Deadline::new(
                compiled
                    .heartbeat
                    .as_ref()
                    .map(|(every, _)| tokio::time::Instant::now() + *every),
            ),
            script: Some(Box::new(script::Session {
                channel: spec.channel.as_str().into(),
                who,
                n: 0,
                replies: compiled
                    .replies
                    .iter()
                    .map(|(when, t)| (Matcher::new(when), t.clone()))
                    .collect(),
                script: compiled,
            })),
        };
        if let Err(f) = me.start(profile, started, sink).await {
            sink.disconnected();
            return Err(f);
        }
        if !me
            .script
            .as_ref()
            .is_some_and(|s| s.script.has_session_part())
        {
            me.script = None;
        }
        Ok(me)
    }

    async fn next<S: Sink>(&mut self, _intended: Instant, sink: &mut S) -> Result<Step, Fault> {
        loop {
            self.dead.set(Some(self.last_rx + self.read_timeout));
            // Heartbeats and pings first: a backlog of frames (always
            // ready) must not starve them, or a server that wants them
            // drops the client exactly when it is loaded.
            let msg = tokio::select! {
                biased;
                _ = self.beat_due.passed() => {
                    self.beat().await?;
                    continue;
                }
                _ = self.ping_due.passed() => {
                    self.ws.send(Message::Ping(Default::default())).await?;
                    self.ping_due
                        .set(self.ping_interval.map(|d| tokio::time::Instant::now() + d));
                    continue;
                }
                msg = self.ws.next() => msg,
                // Nothing, not even a pong, for read_timeout: the peer is
                // gone without a FIN (a half-open connection).
                _ = self.dead.passed() => {
                    return Err(Fault::timeout("WebSocket read (no frame within read_timeout)"));
                }
            };
            let at = Instant::now();
            self.last_rx = at.into();
            match msg {
                None => return Ok(Step::Ended),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(t))) => self.on_message(t.as_bytes(), at, sink).await?,
                Some(Ok(Message::Binary(b))) => self.on_message(&b, at, sink).await?,
                Some(Ok(Message::Close(f))) => {
                    answer_close(&mut self.ws).await;
                    return closed_by_server(f.as_ref());
                }
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

    async fn send(&mut self, message: String, _ticket: u64) -> Result<(), Fault> {
        self.ws.send(Message::text(message)).await?;
        Ok(())
    }

    async fn close(mut self) {
        if let Some(s) = &mut self.script {
            if let Some(text) = s.script.goodbye.clone().and_then(|g| s.fill(&g).ok()) {
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), self.ws.send(Message::text(text)))
                        .await;
            }
        }
        close_politely(&mut self.ws).await;
    }
}

fn script_fault(m: String) -> Fault {
    Fault::new(ErrorKind::Other, m)
}

impl WebSocket {
    /// Runs the opening script: `subscribe_message`, then `messages` in
    /// order (waiting where a step says), then waits for
    /// `subscribed_when`. The subscription is reported when confirmed; a
    /// confirmation that does not come within `subscribe_timeout` is a
    /// `timeout` error and the session goes on, the client still expected
    /// to receive.
    async fn start<S: Sink>(
        &mut self,
        profile: &WebSocketProfile,
        started: Instant,
        sink: &mut S,
    ) -> Result<(), Fault> {
        let Some(compiled) = self.script.as_ref().map(|s| s.script.clone()) else {
            return Ok(());
        };
        if let Some(m) = &compiled.subscribe_message {
            // Not a counted message: `{n}` starts with `messages`.
            let text = match &self.script {
                Some(s) => m
                    .render_once(&crate::identity::template::Vars {
                        channel: &s.channel,
                        who: &s.who,
                    })
                    .map_err(script_fault)?,
                None => String::new(),
            };
            self.ws.send(Message::text(text)).await?;
        }
        let deadline = tokio::time::Instant::now() + profile.subscribe_timeout;
        for (message, wait) in &compiled.messages {
            let text = self.fill(message)?;
            self.ws.send(Message::text(text)).await?;
            if let Some(w) = wait {
                if !self.wait_rule(w, deadline, sink).await? {
                    unconfirmed(sink, profile.subscribe_timeout, &self.rule_text(w));
                    return Ok(());
                }
            }
        }
        if let Some(w) = &compiled.subscribed_when {
            if !self.wait_rule(w, deadline, sink).await? {
                unconfirmed(sink, profile.subscribe_timeout, &self.rule_text(w));
                return Ok(());
            }
        }
        sink.subscribed(started.elapsed());
        Ok(())
    }

    /// Renders a message of the script (moving `{n}` on).
    fn fill(&mut self, t: &crate::identity::template::Template) -> Result<String, Fault> {
        match &mut self.script {
            Some(s) => s.fill(t).map_err(script_fault),
            None => Err(script_fault("the session script is gone".into())),
        }
    }

    /// A rule rendered for this session (without moving `{n}` on).
    fn rule_text(&self, t: &crate::identity::template::Template) -> String {
        self.script
            .as_ref()
            .and_then(|s| {
                t.render_once(&crate::identity::template::Vars {
                    channel: &s.channel,
                    who: &s.who,
                })
                .ok()
            })
            .unwrap_or_default()
    }

    /// Waits for the message rule `t` names (see [`Self::wait_for`]).
    async fn wait_rule<S: Sink>(
        &mut self,
        t: &crate::identity::template::Template,
        deadline: tokio::time::Instant,
        sink: &mut S,
    ) -> Result<bool, Fault> {
        let rule = Matcher::new(&self.rule_text(t));
        self.wait_for(&rule, deadline, sink).await
    }

    /// Reads until a message matches `m` (true; it counts as a control
    /// message) or `deadline` passes (false). Messages before it are
    /// handled as in `next`.
    async fn wait_for<S: Sink>(
        &mut self,
        m: &Matcher,
        deadline: tokio::time::Instant,
        sink: &mut S,
    ) -> Result<bool, Fault> {
        loop {
            let msg = tokio::select! {
                msg = self.ws.next() => msg,
                _ = tokio::time::sleep_until(deadline) => return Ok(false),
            };
            let at = Instant::now();
            self.last_rx = at.into();
            let msg = match msg {
                None => {
                    return Err(Fault::new(
                        ErrorKind::Closed,
                        "the server ended the WebSocket before confirming the subscription",
                    ))
                }
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(m)) => m,
            };
            match &msg {
                Message::Text(_) | Message::Binary(_) => {}
                Message::Close(f) => {
                    let f = f.clone();
                    answer_close(&mut self.ws).await;
                    closed_by_server(f.as_ref())?;
                    return Err(Fault::new(
                        ErrorKind::Closed,
                        "the server closed the WebSocket before confirming the subscription",
                    ));
                }
                _ => continue,
            }
            let data = msg.into_data();
            if m.matches(&data) {
                sink.control();
                return Ok(true);
            }
            self.on_message(&data, at, sink).await?;
        }
    }

    /// One data-frame message: answered when a reply rule names it (and
    /// counted as a control message), else handed to the client.
    async fn on_message<S: Sink>(
        &mut self,
        bytes: &[u8],
        at: Instant,
        sink: &mut S,
    ) -> Result<(), Fault> {
        if let Some(s) = &mut self.script {
            if let Some(t) = s.reply_to(bytes).cloned() {
                let text = s.fill(&t).map_err(script_fault)?;
                self.ws.send(Message::text(text)).await?;
                sink.control();
                return Ok(());
            }
        }
        sink.message(bytes, at);
        Ok(())
    }

    /// Sends the heartbeat and schedules the next.
    async fn beat(&mut self) -> Result<(), Fault> {
        let Some(s) = &mut self.script else {
            self.beat_due.set(None);
            return Ok(());
        };
        let Some((every, send)) = s.script.heartbeat.clone() else {
            self.beat_due.set(None);
            return Ok(());
        };
        let text = s.fill(&send).map_err(script_fault)?;
        self.ws.send(Message::text(text)).await?;
        self.beat_due
            .set(Some(tokio::time::Instant::now() + every));
        Ok(())
    }
}

/// No confirmation within the timeout: a `timeout` error, and the client
/// counts as subscribed from its attempt on.
fn unconfirmed<S: Sink>(sink: &mut S, timeout: Duration, what: &str) {
    sink.fault(Fault::new(
        ErrorKind::Timeout,
        format!(
            "the server did not confirm the subscription ({what}) within {}",
            humantime::format_duration(timeout)
        ),
    ));
    sink.unconfirmed();
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

/// Sends the close tungstenite queued in answer to the server's (RFC 6455
/// section 5.5.1) before the session is dropped; bounded, as a peer that
/// does not read must not hold the client.
pub async fn answer_close<S>(ws: &mut WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.flush()).await;
}

/// WebSocket subscription.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketProfile {
    /// Path template.
    pub url: String,
    /// `Sec-WebSocket-Protocol` to ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprotocol: Option<String>,
    /// A message to send after the upgrade to subscribe (`{channel}` is
    /// replaced), for servers that subscribe in-band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe_message: Option<String>,
    /// Offer permessage-deflate (RFC 7692), as browsers do.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compression: bool,
    /// Messages sent after the upgrade (after `subscribe_message`), in
    /// order: a template, or `{ send, wait_for }` to wait for the server's
    /// answer before the next (see [`script`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<script::ScriptStep>,
    /// The server's confirmation (a JSON subset or a substring) before a
    /// client counts as subscribed; the time to it is `subscribe_*`.
    /// Without it, a client is subscribed once its messages are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribed_when: Option<String>,
    /// How long the script's waits and `subscribed_when` may take: then a
    /// `timeout` error, and the client is still expected to receive.
    #[serde(
        default = "script::default_subscribe_timeout",
        with = "script::duration_str",
        skip_serializing_if = "script::is_default_subscribe_timeout"
    )]
    pub subscribe_timeout: Duration,
    /// Answers to server messages (application-level pings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reply: Vec<script::ReplyRule>,
    /// A message sent on an interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<script::Heartbeat>,
    /// A message sent before closing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodbye: Option<String>,
}

impl super::Section for WebSocketProfile {
    fn url(&self) -> &str {
        &self.url
    }

    fn check(&self, what: &str) -> Result<(), String> {
        super::path_ok(&self.url, what)?;
        if let Some(p) = &self.subprotocol {
            http::HeaderValue::from_str(p)
                .map_err(|_| format!("{what}.subprotocol is not a valid header value"))?;
        }
        script::check(&self.messages, &self.reply, self.heartbeat.as_ref())
            .map_err(|m| format!("{what}: {m}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::h1::Answer;

    fn head(status: u16, headers: &[(&'static str, &str)]) -> StreamHead {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        StreamHead {
            answer: Answer {
                status,
                retry_after: None,
            },
            headers: map,
        }
    }

    #[test]
    fn an_upgrade_answer_is_checked_as_rfc_6455_asks() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        // The RFC's own example key and answer.
        let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
        let good = [
            ("upgrade", "WebSocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-accept", accept),
        ];
        assert!(check_upgrade(&head(101, &good), key, None).is_ok());
        let kind = |h: StreamHead, sub: Option<&str>| check_upgrade(&h, key, sub).unwrap_err().kind;
        assert_eq!(kind(head(503, &good), None), ErrorKind::Status);
        assert_eq!(kind(head(429, &good), None), ErrorKind::RateLimited);
        assert_eq!(kind(head(101, &good[1..]), None), ErrorKind::Protocol);
        assert_eq!(
            kind(head(101, &[good[0], good[2]]), None),
            ErrorKind::Protocol
        );
        let wrong_key = [good[0], good[1], ("sec-websocket-accept", "bogus")];
        assert_eq!(kind(head(101, &wrong_key), None), ErrorKind::Protocol);
        // Subprotocols: only the one asked for, and none unasked.
        let chose = |p: &'static str| {
            let mut h = head(101, &good);
            h.headers
                .insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
            h
        };
        assert!(check_upgrade(&chose("mqtt"), key, Some("mqtt")).is_ok());
        assert!(check_upgrade(&chose("mqtt"), key, Some("wamp, mqtt")).is_ok());
        assert_eq!(kind(chose("other"), Some("mqtt")), ErrorKind::Protocol);
        assert_eq!(kind(chose("mqtt"), None), ErrorKind::Protocol);
        assert_eq!(kind(head(101, &good), Some("mqtt")), ErrorKind::Protocol);
    }
}
