//! Socket.IO v4 clients (Socket.IO protocol v5 over Engine.IO v4), as a
//! browser's `socket.io-client` runs them, over the group's `engine`:
//!
//! - `polling`: Engine.IO HTTP long-polling only ([`polling`]);
//! - `websocket`: Engine.IO over a WebSocket from the start;
//! - `upgrade` (the browser's default): the handshake by polling, then a
//!   WebSocket probed with `2probe`/`3probe` and switched to with `5`; the
//!   switch's time is the `upgrade_*` latency. A server whose handshake
//!   offers no `websocket` upgrade is polled, as the browser client does.
//!
//! After the handshake the client connects to the profile's namespace
//! (`40`, with the `auth` payload), emits the `join` event (with an ack id
//! when `join_ack`: its ack confirms the subscription), then counts every
//! `42["<event>", ...]` of the profile's event name as a message (its JSON
//! array goes to the client, which finds the envelope in it). It answers
//! the server's pings `2` with pongs `3` and acks events that ask for one.
//! Other events, acks, pings and the namespace's confirmation are control
//! messages; binary events and their attachments are counted as control
//! messages and skipped.
//!
//! How a session ends is counted by kind: the server's namespace
//! disconnect `41` and Engine.IO close `1` are `closed` errors, a
//! transport that ends without either is `reset`, and no ping within
//! `pingInterval + pingTimeout` is a `timeout` (Engine.IO's ping timeout).

mod packet;
mod polling;
mod profile;
mod publisher;

pub use self::profile::SocketIoProfile;
pub use self::publisher::{publisher_emit, publisher_handshake, publisher_path};

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use self::packet::{Engine, Handshake, Kind, Packet};
use self::polling::Polling;
use super::deadline::Deadline;
use super::h1::STREAM_CHUNK;
use super::websocket::{self, close_politely, Ws};
use super::{RequestSample, SessionSpec, Sink, Step, Transport};
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;

/// How the client reaches the server (the group's `engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineMode {
    /// Engine.IO HTTP long-polling.
    Polling,
    /// Engine.IO over WebSocket, no polling.
    Websocket,
    /// Polling handshake, then the WebSocket upgrade (the browser default).
    #[default]
    Upgrade,
}

/// The Engine.IO link in use.
enum Link {
    Polling(Polling),
    Ws(Box<Ws>),
}

/// A Socket.IO client session.
pub struct SocketIo {
    link: Link,
    spec: SessionSpec,
    namespace: String,
    event: String,
    /// Binary attachments still to come for the last binary packet.
    attachments: u32,
    /// `pingInterval + pingTimeout`: the longest wait for a ping.
    ping_window: Duration,
    /// When the server's next ping is overdue.
    ping_due: tokio::time::Instant,
    /// `ping_due` as a timer armed once per session: a sleep made for
    /// every WebSocket frame cost two trips through the timer driver's
    /// lock per delivery (see `deadline`).
    ping_timer: Deadline,
    /// Packets to send after the ones received were handled.
    outbox: Vec<String>,
    /// The namespace confirmed the connection.
    connected: bool,
    /// The join's ack arrived.
    joined: bool,
}

/// What a session must wait for.
#[derive(Clone, Copy)]
enum Until {
    Connected,
    Joined,
}

impl Transport for SocketIo {
    const LABEL: &'static str = "socketio";
    const KEYS: &'static [&'static str] = &["engine"];
    const REQUEST_BASED: bool = true;
    const UPGRADES: bool = true;
    type Section = SocketIoProfile;

    fn preset(profile: &str) -> Option<SocketIoProfile> {
        match profile {
            "builtin" => Some(SocketIoProfile::default()),
            _ => None,
        }
    }

    async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        _cursor: Option<String>,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let profile = spec.profile.socketio.as_ref().ok_or_else(|| {
            Fault::new(
                ErrorKind::Other,
                "the target profile has no socketio section",
            )
        })?;
        let engine = spec.params.engine.unwrap_or_default();
        let (link, hs, early, started) = match engine {
            EngineMode::Websocket => {
                let path = polling::target(&spec.path, "websocket", None);
                let (mut ws, started) =
                    websocket::upgrade(spec, io, &path, None, STREAM_CHUNK, sink).await?;
                handshake_sample(started, sink);
                let open = tokio::time::timeout(spec.params.request_timeout, ws.next()).await;
                let hs = match open {
                    Ok(Some(Ok(Message::Text(t)))) => match Engine::parse(t.as_bytes()) {
                        Ok(Engine::Open(json)) => Handshake::parse(json),
                        Ok(_) => Err(Fault::new(
                            ErrorKind::Protocol,
                            "the first WebSocket frame is not an Engine.IO open packet",
                        )),
                        Err(f) => Err(f),
                    },
                    Ok(Some(Err(e))) => Err(e.into()),
                    Ok(_) => Err(Fault::new(
                        ErrorKind::Protocol,
                        "the WebSocket ended before the Engine.IO open packet",
                    )),
                    Err(_) => Err(Fault::timeout("Engine.IO open packet")),
                };
                let hs = match hs {
                    Ok(hs) => hs,
                    Err(f) => {
                        sink.disconnected();
                        return Err(f);
                    }
                };
                (Link::Ws(Box::new(ws)), hs, bytes::Bytes::new(), started)
            }
            EngineMode::Polling | EngineMode::Upgrade => {
                let (p, hs, rest, started) = Polling::handshake(spec, io, sink).await?;
                (Link::Polling(p), hs, rest, started)
            }
        };
        // The server's numbers: a hostile sum must not overflow, and a
        // window past an hour is no ping check at all.
        let ping_window = Duration::from_millis(
            hs.ping_interval_ms
                .saturating_add(hs.ping_timeout_ms)
                .min(3_600_000),
        );
        let mut me = SocketIo {
            link,
            spec: spec.clone(),
            namespace: profile.namespace.clone(),
            event: profile.event.clone(),
            attachments: 0,
            ping_window,
            ping_due: tokio::time::Instant::now() + ping_window,
            ping_timer: Deadline::new(Some(tokio::time::Instant::now() + ping_window)),
            outbox: Vec::new(),
            connected: false,
            joined: false,
        };
        // Polling: sessions use the server's ping window as their poll
        // timeout, so a GET past it is a ping timeout.
        let result = me
            .start(spec, profile, engine, &hs, early, started, io, sink)
            .await;
        if let Err(f) = result {
            me.drop_links(sink);
            return Err(f);
        }
        Ok(me)
    }

    async fn next<S: Sink>(&mut self, intended: Instant, sink: &mut S) -> Result<Step, Fault> {
        let result = self.pump(intended, None, sink).await;
        if result.is_err() {
            self.drop_links(sink);
        }
        result.map(|_| Step::Continue)
    }

    fn cursor(&self) -> Option<String> {
        None
    }

    async fn close(mut self) {
        let bye = [packet::disconnect(&self.namespace), "1".to_string()];
        match &mut self.link {
            Link::Ws(ws) => {
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    ws.send(Message::text(bye[0].clone())),
                )
                .await;
                close_politely(ws).await;
            }
            Link::Polling(p) => {
                let mut quiet = Quiet;
                let _ = tokio::time::timeout(Duration::from_secs(1), p.post(&self.spec, &bye, &mut quiet))
                    .await;
                p.drop_conn();
            }
        }
    }
}

/// A sink for the goodbye POST, whose request is not a sample of the run.
struct Quiet;

impl Sink for Quiet {
    fn connected(&mut self, _: Duration) {}
    fn subscribed(&mut self, _: Duration) {}
    fn disconnected(&mut self) {}
    fn message(&mut self, _: &[u8], _: Instant) {}
    fn request(&mut self, _: RequestSample) {}
    fn server_timeout(&mut self) {}
    fn fault(&mut self, _: Fault) {}
}

/// The WebSocket handshake counts as the session's one request.
fn handshake_sample<S: Sink>(started: Instant, sink: &mut S) {
    sink.request(RequestSample {
        intended: started,
        sent: started,
        done: Instant::now(),
        status: Some(101),
        empty: false,
    });
}

impl SocketIo {
    /// Namespace connect, the upgrade (`upgrade` engine), then the join.
    #[allow(clippy::too_many_arguments)]
    async fn start<S: Sink>(
        &mut self,
        spec: &SessionSpec,
        profile: &SocketIoProfile,
        engine: EngineMode,
        hs: &Handshake,
        early: bytes::Bytes,
        started: Instant,
        io: &Arc<IoCounters>,
        sink: &mut S,
    ) -> Result<(), Fault> {
        let at = Instant::now();
        for record in packet::records(&early).filter(|r| !r.is_empty()) {
            self.on_packet(Engine::parse(record)?, at, sink)?;
        }
        let deadline = tokio::time::Instant::now() + profile.subscribe_timeout;
        // `${VAR}` in the auth payload comes from the environment, as in
        // headers: only the template is ever written to results.
        let auth = match &profile.auth {
            Some(a) => Some(crate::secrets::expand_env(a).map_err(|e| {
                Fault::new(ErrorKind::Other, format!("socketio.auth: {e}"))
            })?),
            None => None,
        };
        self.outbox
            .push(packet::connect(&self.namespace, auth.as_deref()));
        self.wait(Until::Connected, deadline, sink).await?;
        if engine == EngineMode::Upgrade && hs.upgrades.iter().any(|u| u == "websocket") {
            self.upgrade(spec, io, &hs.sid, sink).await?;
        }
        if let Some(join) = (!profile.join.is_empty()).then_some(&profile.join) {
            let args = join_args(join, &spec.channel);
            let ack = profile.join_ack.then_some(0);
            self.outbox
                .push(packet::event(&self.namespace, ack, &args));
            if profile.join_ack {
                self.wait(Until::Joined, deadline, sink).await?;
                if !self.joined {
                    sink.fault(Fault::new(
                        ErrorKind::Timeout,
                        format!(
                            "the server did not ack the join event {:?} within {}",
                            join.first().map_or("", String::as_str),
                            humantime::format_duration(profile.subscribe_timeout)
                        ),
                    ));
                    sink.unconfirmed();
                    return Ok(());
                }
            } else {
                self.flush(sink).await?;
            }
        }
        sink.subscribed(started.elapsed());
        Ok(())
    }

    /// Receives until `until` holds or `deadline` passes (the namespace
    /// connect must happen in time; a join may go unconfirmed).
    async fn wait<S: Sink>(
        &mut self,
        until: Until,
        deadline: tokio::time::Instant,
        sink: &mut S,
    ) -> Result<(), Fault> {
        loop {
            let done = match until {
                Until::Connected => self.connected,
                Until::Joined => self.joined,
            };
            if done {
                return self.flush(sink).await;
            }
            if !self.pump(Instant::now(), Some(deadline), sink).await? {
                return match until {
                    Until::Connected => Err(Fault::timeout("Socket.IO namespace connect")),
                    Until::Joined => Ok(()),
                };
            }
        }
    }

    /// Sends what is queued, then receives one batch (a poll's packets, or
    /// one WebSocket frame) and handles it. False when `deadline` passed
    /// first.
    async fn pump<S: Sink>(
        &mut self,
        intended: Instant,
        deadline: Option<tokio::time::Instant>,
        sink: &mut S,
    ) -> Result<bool, Fault> {
        self.flush(sink).await?;
        let ping_due = self.ping_due;
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Ok(false);
        }
        let stop = deadline.map_or(ping_due, |d| d.min(ping_due));
        let timed_out = || {
            Fault::new(
                ErrorKind::Timeout,
                format!(
                    "ping timeout: no Engine.IO ping within {} ms (pingInterval + pingTimeout)",
                    self.ping_window.as_millis()
                ),
            )
        };
        match &mut self.link {
            Link::Polling(p) => {
                // The server answers a held GET with its ping at the
                // latest, so a deadline is checked between polls.
                let wait = ping_due.saturating_duration_since(tokio::time::Instant::now());
                let body = p
                    .get(&self.spec, wait.max(Duration::from_millis(1)), intended, sink)
                    .await?;
                let at = Instant::now();
                for record in packet::records(&body).filter(|r| !r.is_empty()) {
                    self.on_packet(Engine::parse(record)?, at, sink)?;
                }
                Ok(true)
            }
            Link::Ws(ws) => {
                let msg = match deadline {
                    // The handshake's bounded waits: few, a plain sleep.
                    Some(_) => tokio::select! {
                        m = ws.next() => m,
                        _ = tokio::time::sleep_until(stop) => {
                            if stop < ping_due {
                                return Ok(false);
                            }
                            return Err(timed_out());
                        }
                    },
                    None => tokio::select! {
                        m = ws.next() => m,
                        _ = self.ping_timer.passed() => return Err(timed_out()),
                    },
                };
                let at = Instant::now();
                match msg {
                    None => Err(Fault::new(
                        ErrorKind::Reset,
                        "the WebSocket ended without an Engine.IO close",
                    )),
                    Some(Err(e)) => Err(e.into()),
                    Some(Ok(Message::Text(t))) => {
                        self.on_packet(Engine::parse(t.as_bytes())?, at, sink)?;
                        Ok(true)
                    }
                    Some(Ok(Message::Binary(b))) => {
                        self.on_packet(Engine::Binary(&b), at, sink)?;
                        Ok(true)
                    }
                    Some(Ok(Message::Close(f))) => {
                        websocket::answer_close(ws).await;
                        Err(Fault::new(
                            ErrorKind::Reset,
                            format!(
                                "the WebSocket closed without an Engine.IO close ({})",
                                f.map_or("no close code".to_string(), |f| format!(
                                    "{} {}",
                                    u16::from(f.code),
                                    f.reason
                                ))
                            ),
                        ))
                    }
                    Some(Ok(_)) => Ok(true),
                }
            }
        }
    }

    /// Handles one Engine.IO packet: pings are answered, messages parsed.
    fn on_packet<S: Sink>(&mut self, p: Engine<'_>, at: Instant, sink: &mut S) -> Result<(), Fault> {
        match p {
            Engine::Ping(data) => {
                self.ping_due = tokio::time::Instant::now() + self.ping_window;
                self.ping_timer.set(Some(self.ping_due));
                let mut pong = String::from("3");
                pong.push_str(&String::from_utf8_lossy(data));
                self.outbox.push(pong);
                sink.control();
            }
            Engine::Close => {
                return Err(Fault::new(
                    ErrorKind::Closed,
                    "the server closed the Engine.IO session (close packet 1)",
                ))
            }
            Engine::Binary(_) => {
                if self.attachments == 0 {
                    return Err(Fault::new(
                        ErrorKind::Protocol,
                        "a binary Engine.IO message that no binary Socket.IO packet announced",
                    ));
                }
                self.attachments -= 1;
            }
            Engine::Noop | Engine::Pong(_) | Engine::Upgrade => sink.control(),
            Engine::Open(_) => {
                return Err(Fault::new(
                    ErrorKind::Protocol,
                    "a second Engine.IO open packet",
                ))
            }
            Engine::Message(m) => self.on_message(m, at, sink)?,
        }
        Ok(())
    }

    /// Handles one Socket.IO packet.
    fn on_message<S: Sink>(&mut self, m: &[u8], at: Instant, sink: &mut S) -> Result<(), Fault> {
        if self.attachments > 0 {
            return Err(Fault::new(
                ErrorKind::Protocol,
                "a Socket.IO packet where a binary attachment was due",
            ));
        }
        let p = Packet::parse(m)?;
        self.attachments = p.attachments;
        if p.namespace != self.namespace {
            sink.control();
            return Ok(());
        }
        match p.kind {
            Kind::Connect => {
                self.connected = true;
                sink.control();
            }
            Kind::Disconnect => {
                return Err(Fault::new(
                    ErrorKind::Closed,
                    format!(
                        "the server disconnected the socket (Socket.IO disconnect 41 on {})",
                        self.namespace
                    ),
                ))
            }
            Kind::ConnectError => {
                return Err(Fault::new(
                    ErrorKind::Protocol,
                    format!(
                        "the server refused namespace {}: {}",
                        self.namespace,
                        packet::connect_error_message(p.data)
                    ),
                ))
            }
            Kind::Ack | Kind::BinaryAck => {
                if p.ack == Some(0) {
                    self.joined = true;
                }
                sink.control();
            }
            Kind::Event if p.is_event(&self.event) => {
                if let Some(id) = p.ack {
                    self.outbox.push(packet::ack(&self.namespace, id));
                }
                sink.message(p.data, at);
            }
            Kind::Event | Kind::BinaryEvent => {
                if let Some(id) = p.ack {
                    self.outbox.push(packet::ack(&self.namespace, id));
                }
                sink.control();
            }
        }
        Ok(())
    }

    /// Sends the queued packets: one POST (polling), or one frame each.
    async fn flush<S: Sink>(&mut self, sink: &mut S) -> Result<(), Fault> {
        if self.outbox.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.outbox);
        match &mut self.link {
            Link::Polling(p) => {
                p.post(&self.spec, &out, sink).await
            }
            Link::Ws(ws) => {
                for text in out {
                    ws.feed(Message::text(text)).await?;
                }
                ws.flush().await.map_err(Fault::from)
            }
        }
    }

    /// The browser's upgrade: a WebSocket with the `sid`, `2probe` answered
    /// by `3probe`, then `5`; polling stops. Reports the time from the
    /// WebSocket's connect to the `5` as the upgrade latency.
    async fn upgrade<S: Sink>(
        &mut self,
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        sid: &str,
        sink: &mut S,
    ) -> Result<(), Fault> {
        let began = Instant::now();
        let path = polling::target(&spec.path, "websocket", Some(sid));
        let (mut ws, started) =
            websocket::upgrade(spec, io, &path, None, STREAM_CHUNK, sink).await?;
        handshake_sample(started, sink);
        let probe = async {
            ws.send(Message::text("2probe")).await?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) if t.as_str() == "3probe" => break,
                    Some(Ok(Message::Text(t))) => {
                        return Err(Fault::new(
                            ErrorKind::Protocol,
                            format!("the upgrade probe was answered {:?}, not 3probe", t.as_str()),
                        ))
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Err(e)) => return Err(e.into()),
                    _ => {
                        return Err(Fault::new(
                            ErrorKind::Reset,
                            "the WebSocket ended during the Engine.IO upgrade probe",
                        ))
                    }
                }
            }
            ws.send(Message::text("5")).await.map_err(Fault::from)
        };
        match tokio::time::timeout(spec.params.request_timeout, probe).await {
            Ok(Ok(())) => {}
            Ok(Err(f)) => {
                sink.disconnected();
                return Err(f);
            }
            Err(_) => {
                sink.disconnected();
                return Err(Fault::timeout("Engine.IO upgrade probe"));
            }
        }
        sink.upgraded(began.elapsed());
        if let Link::Polling(p) = &mut self.link {
            p.close(sink);
        }
        self.link = Link::Ws(Box::new(ws));
        Ok(())
    }

    /// Reports the session's open connection closed (after a failure).
    fn drop_links<S: Sink>(&mut self, sink: &mut S) {
        match &mut self.link {
            Link::Polling(p) => p.close(sink),
            Link::Ws(_) => sink.disconnected(),
        }
    }
}

/// The join event's arguments, `{channel}` filled: `["subscribe", "ch"]`.
fn join_args(join: &[String], channel: &str) -> Value {
    Value::Array(
        join.iter()
            .map(|a| Value::String(super::fill(a, channel)))
            .collect(),
    )
}
