//! The MQTT publisher's side (`publish.method = "mqtt"`): one session per
//! channel on the profile's topic and QoS.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::packet::{self, Hello, Incoming, Version};
use super::{read_packet, run_token, unexpected_before, MqttProfile};
use crate::fault::{ErrorKind, Fault};
use crate::transport::websocket::close_politely;

/// The publisher's side: one MQTT connection per channel (clean session,
/// no keep-alive: it sends on its own schedule). At QoS 1 a publish is
/// done when the broker's PUBACK comes back, so publish latency is the
/// broker's acceptance; at QoS 0 when the packet is written.
pub struct Publisher<S> {
    ws: WebSocketStream<S>,
    version: Version,
    topic: String,
    qos: u8,
    pkid: u16,
    buf: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Publisher<S> {
    /// CONNECT → CONNACK on an upgraded WebSocket, for `channel`.
    pub async fn start(
        mut ws: WebSocketStream<S>,
        profile: &MqttProfile,
        channel: &str,
    ) -> Result<Self, Fault> {
        let id = format!("stampede-pub-{}-{channel}", run_token());
        let hello = profile.hello(&id, Duration::ZERO)?;
        let hello = Hello {
            clean: true,
            ..hello
        };
        let mut out = BytesMut::new();
        packet::connect(profile.version, &hello, &mut out)?;
        ws.send(Message::binary(out.freeze())).await?;
        let mut buf = BytesMut::new();
        match read_packet(&mut ws, &mut buf, profile.version, 1 << 20).await? {
            Some(Incoming::ConnAck { refused: None, .. }) => {}
            Some(Incoming::ConnAck {
                refused: Some(why), ..
            }) => {
                return Err(Fault::new(
                    ErrorKind::Protocol,
                    format!("the broker refused the publisher's CONNECT: {why}"),
                ))
            }
            Some(other) => return Err(unexpected_before("CONNACK", &other)),
            None => {
                return Err(Fault::new(
                    ErrorKind::Closed,
                    "the broker ended the publisher's connection",
                ))
            }
        }
        Ok(Publisher {
            ws,
            version: profile.version,
            topic: crate::transport::fill(&profile.topic, channel),
            qos: profile.qos,
            pkid: 0,
            buf,
        })
    }

    /// Publishes `payload` (at QoS 1, waits for its PUBACK).
    pub async fn publish(&mut self, payload: Bytes) -> Result<(), Fault> {
        self.pkid = self.pkid.checked_add(1).unwrap_or(1);
        let mut out = BytesMut::new();
        packet::publish(
            self.version,
            &self.topic,
            self.qos,
            self.pkid,
            payload,
            &mut out,
        )?;
        self.ws.send(Message::binary(out.freeze())).await?;
        if self.qos == 0 {
            return Ok(());
        }
        loop {
            match read_packet(&mut self.ws, &mut self.buf, self.version, 1 << 20).await? {
                Some(Incoming::PubAck { pkid, refused }) if pkid == self.pkid => {
                    return match refused {
                        None => Ok(()),
                        Some(why) => Err(Fault::new(
                            ErrorKind::Protocol,
                            format!("the broker refused PUBLISH to {}: {why}", self.topic),
                        )),
                    }
                }
                Some(Incoming::Disconnect { reason }) => {
                    return Err(Fault::new(
                        ErrorKind::Closed,
                        format!("the broker sent DISCONNECT: {reason}"),
                    ))
                }
                Some(_) => {}
                None => {
                    return Err(Fault::new(
                        ErrorKind::Reset,
                        "the broker ended the publisher's connection",
                    ))
                }
            }
        }
    }

    /// DISCONNECT, then the WebSocket close handshake.
    pub async fn close(&mut self) {
        let mut out = BytesMut::new();
        if packet::disconnect(self.version, false, &mut out).is_ok() {
            let _ = self.ws.send(Message::binary(out.freeze())).await;
        }
        close_politely(&mut self.ws).await;
    }
}
