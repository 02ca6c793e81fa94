//! MQTT over WebSocket (MQTT 3.1.1 section 6, MQTT 5.0 section 6): binary
//! frames with the subprotocol `mqtt`, one topic per channel. A session
//! sends CONNECT and waits for CONNACK, SUBSCRIBEs at the profile's QoS (0
//! or 1) and waits for SUBACK, then reads PUBLISH packets, acknowledging
//! QoS 1 deliveries with PUBACK, and keeps the connection alive with
//! PINGREQ (a PINGRESP that does not come within one keep-alive is a
//! `timeout`). A DISCONNECT from the broker is a `closed` error with its
//! reason; a refused CONNECT or SUBSCRIBE a `protocol` error.
//!
//! With `clean_session = false` (MQTT 5.0: Clean Start off and a Session
//! Expiry Interval) each client keeps one client id for the whole run, so
//! after a reconnect the broker resumes its session and sends the QoS 1
//! messages it queued meanwhile: MQTT's resume, counted as such (nothing
//! lost where plain WebSocket loses the gap).
//!
//! A room member (`publish = { via = "same" }`) PUBLISHes its own messages
//! to its channel's topic at the profile's QoS on the same session; at QoS
//! 1 each PUBACK is reported to the sink as that message's acknowledgement.
//!
//! Packets are encoded and decoded by rumqttc's codecs ([`packet`]); the
//! publisher's side is [`Publisher`].

pub mod packet;
mod publisher;

pub use publisher::Publisher;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
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
use packet::{Hello, Incoming, Version};

/// The packet identifier of the one SUBSCRIBE a session sends.
const SUBSCRIBE_PKID: u16 = 1;

/// An MQTT session.
pub struct Mqtt {
    ws: Ws,
    version: Version,
    /// Bytes read but not yet a whole packet.
    buf: BytesMut,
    max: usize,
    /// The session is the connection's only (clean session / clean start).
    clean: bool,
    keep_alive: Option<Duration>,
    /// When the next PINGREQ is due (one sleep for the session).
    next_ping: Deadline,
    /// `last_rx + read_timeout`, armed once for the session.
    dead: Deadline,
    /// When the PINGREQ still waiting for its PINGRESP went out.
    ping_sent: Option<tokio::time::Instant>,
    read_timeout: Duration,
    last_rx: tokio::time::Instant,
    /// The channel's topic: where the client's own messages go too.
    topic: String,
    /// QoS of the client's own PUBLISHes (the profile's).
    qos: u8,
    /// Packet Identifier of the client's last own PUBLISH.
    pkid: u16,
    /// Own QoS 1 PUBLISHes awaiting their PUBACK: (Packet Identifier,
    /// ticket), oldest first.
    in_flight: std::collections::VecDeque<(u16, u64)>,
}

impl Transport for Mqtt {
    const LABEL: &'static str = "mqtt";
    const KEYS: &'static [&'static str] = &[];
    const SENDS: bool = true;
    type Section = MqttProfile;

    fn preset(_profile: &str) -> Option<MqttProfile> {
        None
    }

    /// A QoS 1 PUBLISH is acknowledged with PUBACK (MQTT 3.1.1 §3.4, 5.0
    /// §3.4, where a reason code ≥ 0x80 refuses it).
    fn acks_publish(sections: &super::Sections) -> bool {
        sections.mqtt.as_ref().is_some_and(|m| m.qos > 0)
    }

    async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        _cursor: Option<String>,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let profile = spec.profile.mqtt.as_ref().ok_or_else(|| {
            Fault::new(ErrorKind::Other, "the target profile has no mqtt section")
        })?;
        let hello = profile.hello(
            &fill_id(&profile.client_id, spec, sink.who().map_or(0, |w| w.client)),
            profile.keep_alive,
        )?;
        let (ws, started) = super::websocket::upgrade(
            spec,
            io,
            &spec.path,
            Some(&profile.subprotocol),
            STREAM_CHUNK,
            sink,
        )
        .await?;
        let keep_alive = (!profile.keep_alive.is_zero()).then_some(profile.keep_alive);
        let mut me = Mqtt {
            ws,
            version: profile.version,
            buf: BytesMut::new(),
            max: spec.params.limits.max_message_bytes,
            clean: profile.clean_session,
            keep_alive,
            next_ping: Deadline::new(keep_alive.map(|k| tokio::time::Instant::now() + k)),
            dead: Deadline::new(None),
            ping_sent: None,
            read_timeout: spec.params.limits.read_timeout,
            last_rx: tokio::time::Instant::now(),
            topic: super::fill(&profile.topic, &spec.channel),
            qos: profile.qos,
            pkid: SUBSCRIBE_PKID,
            in_flight: Default::default(),
        };
        let topic = me.topic.clone();
        let handshake = me.start(&hello, &topic, profile.qos, sink);
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
                Err(Fault::timeout("MQTT CONNECT/SUBSCRIBE"))
            }
        }
    }

    async fn next<S: Sink>(&mut self, _intended: Instant, sink: &mut S) -> Result<Step, Fault> {
        loop {
            self.dead.set(Some(self.last_rx + self.read_timeout));
            let got = tokio::select! {
                p = read_packet(&mut self.ws, &mut self.buf, self.version, self.max) => p?,
                _ = self.next_ping.passed() => {
                    self.ping().await?;
                    continue;
                }
                // Nothing at all for read_timeout: a half-open connection.
                _ = self.dead.passed() => {
                    return Err(Fault::timeout("MQTT read (no packet within read_timeout)"));
                }
            };
            self.last_rx = tokio::time::Instant::now();
            let Some(p) = got else {
                return Ok(Step::Ended);
            };
            self.on_packet(p, Instant::now(), sink).await?;
            return Ok(Step::Continue);
        }
    }

    fn cursor(&self) -> Option<String> {
        None
    }

    /// PUBLISHes the client's own message to its channel's topic at the
    /// profile's QoS; at QoS 1 its PUBACK is reported when `next` reads it.
    async fn send(&mut self, message: String, ticket: u64) -> Result<(), Fault> {
        // Identifiers in use by the SUBSCRIBE (and 0, which MQTT forbids)
        // are skipped when the counter wraps.
        self.pkid = match self.pkid.wrapping_add(1) {
            p if p <= SUBSCRIBE_PKID => SUBSCRIBE_PKID + 1,
            p => p,
        };
        let mut out = BytesMut::new();
        packet::publish(
            self.version,
            &self.topic,
            self.qos,
            self.pkid,
            bytes::Bytes::from(message),
            &mut out,
        )?;
        self.send(out).await?;
        if self.qos > 0 {
            self.in_flight.push_back((self.pkid, ticket));
        }
        Ok(())
    }

    /// A client leaving for good (the run's end, a session length, churn)
    /// ends its persistent session where MQTT 5 allows it; a storm's drop
    /// never gets here, so its session waits for the reconnect.
    async fn close(mut self) {
        let mut out = BytesMut::new();
        if packet::disconnect(self.version, !self.clean, &mut out).is_ok() {
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                self.ws.send(Message::binary(out.freeze())),
            )
            .await;
        }
        close_politely(&mut self.ws).await;
    }
}

impl Mqtt {
    /// CONNECT → CONNACK, SUBSCRIBE → SUBACK. Messages a resumed session
    /// delivers before the SUBACK are handled as in `next`.
    async fn start<S: Sink>(
        &mut self,
        hello: &Hello,
        topic: &str,
        qos: u8,
        sink: &mut S,
    ) -> Result<(), Fault> {
        let mut out = BytesMut::new();
        packet::connect(self.version, hello, &mut out)?;
        self.send(out).await?;
        match self.read_handshake().await? {
            Incoming::ConnAck { refused: None, .. } => sink.control(),
            Incoming::ConnAck {
                refused: Some(why), ..
            } => {
                return Err(Fault::new(
                    ErrorKind::Protocol,
                    format!("the broker refused CONNECT: {why}"),
                ))
            }
            other => return Err(unexpected_before("CONNACK", &other)),
        }
        let mut out = BytesMut::new();
        packet::subscribe(self.version, SUBSCRIBE_PKID, topic, qos, &mut out)?;
        self.send(out).await?;
        loop {
            match self.read_handshake().await? {
                Incoming::SubAck { refused: None, .. } => {
                    sink.control();
                    return Ok(());
                }
                Incoming::SubAck {
                    refused: Some(why), ..
                } => {
                    return Err(Fault::new(
                        ErrorKind::Protocol,
                        format!("the broker refused SUBSCRIBE to {topic}: {why}"),
                    ))
                }
                p @ (Incoming::Publish { .. } | Incoming::PingResp) => {
                    self.on_packet(p, Instant::now(), sink).await?
                }
                other => return Err(unexpected_before("SUBACK", &other)),
            }
        }
    }

    async fn read_handshake(&mut self) -> Result<Incoming, Fault> {
        let p = read_packet(&mut self.ws, &mut self.buf, self.version, self.max).await?;
        self.last_rx = tokio::time::Instant::now();
        p.ok_or_else(|| {
            Fault::new(
                ErrorKind::Closed,
                "the broker ended the connection before confirming the subscription",
            )
        })
    }

    async fn on_packet<S: Sink>(
        &mut self,
        p: Incoming,
        at: Instant,
        sink: &mut S,
    ) -> Result<(), Fault> {
        match p {
            Incoming::Publish { qos, pkid, payload } => {
                sink.message(&payload, at);
                match qos {
                    0 => {}
                    1 => {
                        let mut out = BytesMut::new();
                        packet::puback(self.version, pkid, &mut out)?;
                        self.send(out).await?;
                    }
                    // The session never subscribes at QoS 2.
                    _ => {
                        return Err(Fault::new(
                            ErrorKind::Protocol,
                            "a QoS 2 PUBLISH on a subscription granted at most QoS 1",
                        ))
                    }
                }
            }
            Incoming::PingResp => {
                self.ping_sent = None;
                sink.control();
            }
            Incoming::Disconnect { reason } => {
                return Err(Fault::new(
                    ErrorKind::Closed,
                    format!("the broker sent DISCONNECT: {reason}"),
                ))
            }
            Incoming::PubAck { pkid, refused } => {
                match self.in_flight.iter().position(|&(p, _)| p == pkid) {
                    Some(i) => {
                        let (_, ticket) = self.in_flight.remove(i).unwrap_or((pkid, 0));
                        match refused {
                            None => sink.publish_acked(ticket, at),
                            Some(why) => sink.publish_refused(
                                ticket,
                                Fault::new(
                                    ErrorKind::Protocol,
                                    format!("the broker refused PUBLISH to {}: {why}", self.topic),
                                ),
                            ),
                        }
                    }
                    // A late acknowledgement is part of the protocol.
                    None => sink.control(),
                }
            }
            // Late acknowledgements are part of the protocol.
            Incoming::SubAck { .. } | Incoming::ConnAck { .. } => sink.control(),
            Incoming::Unexpected(name) => {
                return Err(Fault::new(
                    ErrorKind::Protocol,
                    format!("the broker sent {name}, which a subscriber never expects"),
                ))
            }
        }
        Ok(())
    }

    /// Sends PINGREQ, or fails when the last one is still unanswered a
    /// keep-alive later (MQTT 3.1.1 section 3.1.2.10: the client should
    /// close the connection).
    async fn ping(&mut self) -> Result<(), Fault> {
        let Some(every) = self.keep_alive else {
            self.next_ping.set(None);
            return Ok(());
        };
        if self.ping_sent.is_some() {
            return Err(Fault::new(
                ErrorKind::Timeout,
                format!(
                    "no PINGRESP within the keep-alive ({})",
                    humantime::format_duration(every)
                ),
            ));
        }
        let mut out = BytesMut::new();
        packet::pingreq(self.version, &mut out)?;
        self.send(out).await?;
        let now = tokio::time::Instant::now();
        self.ping_sent = Some(now);
        self.next_ping.set(Some(now + every));
        Ok(())
    }

    async fn send(&mut self, out: BytesMut) -> Result<(), Fault> {
        self.ws.send(Message::binary(out.freeze())).await?;
        Ok(())
    }
}

pub(super) fn unexpected_before(want: &str, got: &Incoming) -> Fault {
    let what = match got {
        Incoming::ConnAck { .. } => "CONNACK",
        Incoming::SubAck { .. } => "SUBACK",
        Incoming::Publish { .. } => "PUBLISH",
        Incoming::PubAck { .. } => "PUBACK",
        Incoming::PingResp => "PINGRESP",
        Incoming::Disconnect { reason } => {
            return Fault::new(
                ErrorKind::Closed,
                format!("the broker sent DISCONNECT before {want}: {reason}"),
            )
        }
        Incoming::Unexpected(name) => name,
    };
    Fault::new(
        ErrorKind::Protocol,
        format!("the broker sent {what} where {want} was due"),
    )
}

/// Reads until one whole packet is buffered; `None` when the broker ended
/// the WebSocket (normally: a close other than 1000 is a `closed` fault).
/// MQTT over WebSocket uses binary frames only, and one packet may span
/// frames or share one (MQTT 5.0 section 6).
pub(super) async fn read_packet<S>(
    ws: &mut WebSocketStream<S>,
    buf: &mut BytesMut,
    v: Version,
    max: usize,
) -> Result<Option<Incoming>, Fault>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        if let Some(p) = packet::read(v, buf, max)? {
            return Ok(Some(p));
        }
        match ws.next().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Binary(b))) => {
                // A header (at most 5 bytes) beyond the largest packet.
                if buf.len() + b.len() > max.saturating_add(5) {
                    return Err(Fault::new(
                        ErrorKind::Limit,
                        format!("an MQTT packet over max_message_bytes ({max})"),
                    ));
                }
                buf.extend_from_slice(&b);
            }
            Some(Ok(Message::Text(_))) => {
                return Err(Fault::new(
                    ErrorKind::Protocol,
                    "a text frame: MQTT over WebSocket is sent in binary frames",
                ))
            }
            Some(Ok(Message::Close(f))) => {
                answer_close(ws).await;
                closed_by_server(f.as_ref())?;
                return Ok(None);
            }
            Some(Ok(_)) => {}
        }
    }
}

/// A token unique to this process (48 random bits from the clock-seeded
/// generator), so that client ids of two runs, or of two shards on two
/// machines, never take over each other's sessions.
pub(super) fn run_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| format!("{:012x}", crate::rng::Rng::new().next_u64() >> 16))
}

/// Fills a client id template: `{run}`, `{group}`, `{client}`, `{channel}`.
fn fill_id(template: &str, spec: &SessionSpec, client: u64) -> String {
    template
        .replace("{run}", run_token())
        .replace("{group}", &spec.group)
        .replace("{client}", &client.to_string())
        .replace("{channel}", &spec.channel)
}

/// `[profile.mqtt]`: how a broker speaks MQTT over WebSocket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttProfile {
    /// WebSocket path (Mosquitto: any; RabbitMQ web-mqtt: `/ws`; EMQX
    /// and HiveMQ: `/mqtt`).
    pub url: String,
    /// `Sec-WebSocket-Protocol` (MQTT 3.1.1 section 6: `mqtt`).
    #[serde(default = "default_subprotocol")]
    pub subprotocol: String,
    /// `"3.1.1"` (default) or `"5"`.
    #[serde(default)]
    pub version: Version,
    /// Topic per channel (`{channel}` is replaced); subscribers subscribe
    /// to it and the publisher publishes to it.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// QoS of subscriptions and publishes: 0 or 1.
    #[serde(default)]
    pub qos: u8,
    /// Clean Session (3.1.1) / Clean Start (5.0); `false` keeps each
    /// client's session on the broker across reconnects.
    #[serde(default = "yes")]
    pub clean_session: bool,
    /// MQTT 5.0 Session Expiry Interval of a persistent session.
    #[serde(default = "default_expiry", with = "duration_str")]
    pub session_expiry: Duration,
    /// Keep Alive: a PINGREQ this often ("0s": none).
    #[serde(default = "default_keep_alive", with = "duration_str")]
    pub keep_alive: Duration,
    /// Client Identifier template: `{run}` (unique to this stampede
    /// process), `{group}`, `{client}` (the client's number in its group),
    /// `{channel}`.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// User Name (`${ENV_VAR}` is expanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password (`${ENV_VAR}` is expanded; only the template is written
    /// to results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

fn default_subprotocol() -> String {
    "mqtt".into()
}
fn default_topic() -> String {
    "stampede/{channel}".into()
}
fn yes() -> bool {
    true
}
fn default_expiry() -> Duration {
    Duration::from_secs(300)
}
fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}
fn default_client_id() -> String {
    "stampede-{run}-{group}-{client}".into()
}

impl MqttProfile {
    /// CONNECT's fields for `client_id`, the secrets expanded.
    pub(super) fn hello(&self, client_id: &str, keep_alive: Duration) -> Result<Hello, Fault> {
        let secret = |t: &Option<String>, what: &str| -> Result<Option<String>, Fault> {
            t.as_deref()
                .map(crate::secrets::expand_env)
                .transpose()
                .map_err(|e| Fault::new(ErrorKind::Other, format!("mqtt.{what}: {e}")))
        };
        let login = match (
            secret(&self.username, "username")?,
            secret(&self.password, "password")?,
        ) {
            (None, None) => None,
            (u, p) => Some((u.unwrap_or_default(), p.unwrap_or_default())),
        };
        Ok(Hello {
            client_id: client_id.to_string(),
            clean: self.clean_session,
            keep_alive_s: keep_alive.as_secs().min(u64::from(u16::MAX)) as u16,
            session_expiry_s: self.session_expiry.as_secs().min(u64::from(u32::MAX)) as u32,
            login,
        })
    }
}

impl super::Section for MqttProfile {
    fn url(&self) -> &str {
        &self.url
    }

    fn check(&self, what: &str) -> Result<(), String> {
        super::path_ok(&self.url, what)?;
        http::HeaderValue::from_str(&self.subprotocol)
            .map_err(|_| format!("{what}.subprotocol is not a valid header value"))?;
        if self.qos > 1 {
            return Err(format!("{what}.qos must be 0 or 1, not {}", self.qos));
        }
        if self.topic.is_empty() || self.topic.contains(['#', '+']) {
            return Err(format!(
                "{what}.topic {:?} must be a topic name without wildcards (it is also published to)",
                self.topic
            ));
        }
        if self.keep_alive.as_secs() > u64::from(u16::MAX) {
            return Err(format!("{what}.keep_alive is over 65535 s"));
        }
        if self.client_id.is_empty() {
            return Err(format!("{what}.client_id is empty"));
        }
        if !self.clean_session && !self.client_id.contains("{client}") {
            return Err(format!(
                "{what}.client_id {:?} needs {{client}} with clean_session = false: \
                 each client keeps its own session",
                self.client_id
            ));
        }
        Ok(())
    }
}
