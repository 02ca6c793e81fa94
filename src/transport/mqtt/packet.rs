//! The MQTT packets a session sends and reads, in either protocol version,
//! through rumqttc's `mqttbytes` codecs (`v4` is MQTT 3.1.1, `v5` is MQTT
//! 5.0): this file only maps stampede's few needs onto them, so the rest of
//! the transport does not care which version the profile speaks. Packet
//! layouts: MQTT 3.1.1 section 3, MQTT 5.0 section 3.

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::{self as b4, v4};
use rumqttc::v5::mqttbytes::{self as b5, v5};
use serde::{Deserialize, Serialize};

use crate::fault::{ErrorKind, Fault};

/// The protocol version a profile speaks (CONNECT's protocol level).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    #[default]
    #[serde(rename = "3.1.1")]
    V311,
    /// MQTT 5.0 (protocol level 5).
    #[serde(rename = "5")]
    V5,
}

/// What CONNECT says about the session (MQTT 3.1.1 section 3.1, MQTT 5.0
/// section 3.1).
#[derive(Debug, Clone)]
pub struct Hello {
    /// Client Identifier: the key of a persistent session.
    pub client_id: String,
    /// Clean Session (3.1.1) / Clean Start (5.0).
    pub clean: bool,
    /// Keep Alive, seconds (0: off).
    pub keep_alive_s: u16,
    /// MQTT 5.0 Session Expiry Interval, seconds (ignored by 3.1.1, whose
    /// sessions last until a clean connect).
    pub session_expiry_s: u32,
    /// User Name and Password.
    pub login: Option<(String, String)>,
}

/// A packet from the broker, reduced to what a session acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// CONNACK; `refused` names the return / reason code when it is not
    /// success.
    ConnAck {
        /// Session Present.
        session_present: bool,
        /// Why the broker refused the connection.
        refused: Option<String>,
    },
    /// SUBACK; `refused` names the failure code when it is not granted.
    SubAck {
        /// Packet Identifier.
        pkid: u16,
        /// Why the broker refused the subscription.
        refused: Option<String>,
    },
    /// PUBLISH.
    Publish {
        /// QoS (0, 1 or 2).
        qos: u8,
        /// Packet Identifier (0 at QoS 0).
        pkid: u16,
        /// Application Message.
        payload: Bytes,
    },
    /// PUBACK (the publisher's QoS 1 confirmation).
    PubAck {
        /// Packet Identifier.
        pkid: u16,
        /// MQTT 5.0 reason other than success.
        refused: Option<String>,
    },
    /// PINGRESP.
    PingResp,
    /// DISCONNECT from the broker (MQTT 5.0 only), with its reason.
    Disconnect {
        /// The reason code's name and number, and any Reason String.
        reason: String,
    },
    /// Anything a subscriber or publisher never asked for.
    Unexpected(&'static str),
}

fn qos4(qos: u8) -> b4::QoS {
    match qos {
        0 => b4::QoS::AtMostOnce,
        1 => b4::QoS::AtLeastOnce,
        _ => b4::QoS::ExactlyOnce,
    }
}

fn qos5(qos: u8) -> b5::QoS {
    match qos {
        0 => b5::QoS::AtMostOnce,
        1 => b5::QoS::AtLeastOnce,
        _ => b5::QoS::ExactlyOnce,
    }
}

fn encode_fault(e: impl std::fmt::Display) -> Fault {
    Fault::new(ErrorKind::Other, format!("cannot encode an MQTT packet: {e}"))
}

fn write4(p: v4::Packet, out: &mut BytesMut) -> Result<(), Fault> {
    p.write(out, usize::MAX).map(|_| ()).map_err(encode_fault)
}

fn write5(p: v5::Packet, out: &mut BytesMut) -> Result<(), Fault> {
    p.write(out, None).map(|_| ()).map_err(encode_fault)
}

/// Appends CONNECT.
pub fn connect(v: Version, h: &Hello, out: &mut BytesMut) -> Result<(), Fault> {
    match v {
        Version::V311 => {
            let mut c = v4::Connect::new(h.client_id.as_str());
            c.keep_alive = h.keep_alive_s;
            c.clean_session = h.clean;
            c.login = h.login.as_ref().map(|(u, p)| v4::Login::new(u, p));
            write4(v4::Packet::Connect(c), out)
        }
        Version::V5 => {
            let mut props = v5::ConnectProperties::new();
            if !h.clean {
                props.session_expiry_interval = Some(h.session_expiry_s);
            }
            let c = v5::Connect {
                keep_alive: h.keep_alive_s,
                client_id: h.client_id.clone(),
                clean_start: h.clean,
                properties: Some(props),
            };
            let login = h.login.as_ref().map(|(u, p)| v5::Login::new(u, p));
            write5(v5::Packet::Connect(c, None, login), out)
        }
    }
}

/// Appends SUBSCRIBE to one topic filter.
pub fn subscribe(
    v: Version,
    pkid: u16,
    filter: &str,
    qos: u8,
    out: &mut BytesMut,
) -> Result<(), Fault> {
    match v {
        Version::V311 => {
            let mut s = v4::Subscribe::new(filter, qos4(qos));
            s.pkid = pkid;
            write4(v4::Packet::Subscribe(s), out)
        }
        Version::V5 => {
            let mut s = v5::Subscribe::new(v5::Filter::new(filter, qos5(qos)), None);
            s.pkid = pkid;
            write5(v5::Packet::Subscribe(s), out)
        }
    }
}

/// Appends PUBLISH (`pkid` is ignored at QoS 0).
pub fn publish(
    v: Version,
    topic: &str,
    qos: u8,
    pkid: u16,
    payload: Bytes,
    out: &mut BytesMut,
) -> Result<(), Fault> {
    match v {
        Version::V311 => {
            let mut p = v4::Publish::from_bytes(topic, qos4(qos), payload);
            p.pkid = if qos == 0 { 0 } else { pkid };
            write4(v4::Packet::Publish(p), out)
        }
        Version::V5 => {
            let mut p = v5::Publish::new(topic, qos5(qos), payload, None);
            p.pkid = if qos == 0 { 0 } else { pkid };
            write5(v5::Packet::Publish(p), out)
        }
    }
}

/// Appends PUBACK.
pub fn puback(v: Version, pkid: u16, out: &mut BytesMut) -> Result<(), Fault> {
    match v {
        Version::V311 => write4(v4::Packet::PubAck(v4::PubAck::new(pkid)), out),
        Version::V5 => write5(v5::Packet::PubAck(v5::PubAck::new(pkid, None)), out),
    }
}

/// Appends PINGREQ.
pub fn pingreq(v: Version, out: &mut BytesMut) -> Result<(), Fault> {
    match v {
        Version::V311 => write4(v4::Packet::PingReq, out),
        Version::V5 => write5(v5::Packet::PingReq(v5::PingReq), out),
    }
}

/// Appends a normal DISCONNECT. With `end_session`, MQTT 5 sets the
/// Session Expiry Interval to 0 so the broker drops a persistent session
/// now (MQTT 5.0 section 3.14.2.2.2); a 3.1.1 session stays on the broker.
pub fn disconnect(v: Version, end_session: bool, out: &mut BytesMut) -> Result<(), Fault> {
    match v {
        Version::V311 => write4(v4::Packet::Disconnect, out),
        Version::V5 => {
            let mut d = v5::Disconnect::new(v5::DisconnectReasonCode::NormalDisconnection);
            if end_session {
                d.properties = Some(v5::DisconnectProperties {
                    session_expiry_interval: Some(0),
                    reason_string: None,
                    user_properties: Vec::new(),
                    server_reference: None,
                });
            }
            write5(v5::Packet::Disconnect(d), out)
        }
    }
}

/// Takes one whole packet off the front of `buf`; `None` while it holds
/// only part of one. A packet over `max` bytes is a `limit` fault, a
/// malformed one a `protocol` fault.
pub fn read(v: Version, buf: &mut BytesMut, max: usize) -> Result<Option<Incoming>, Fault> {
    if buf.is_empty() {
        return Ok(None);
    }
    match v {
        Version::V311 => match v4::Packet::read(buf, max) {
            Ok(p) => Ok(Some(from4(p))),
            Err(b4::Error::InsufficientBytes(_)) => Ok(None),
            Err(e @ b4::Error::PayloadSizeLimitExceeded(_)) => Err(limit(e)),
            Err(e) => Err(malformed(e)),
        },
        // A DISCONNECT with no reason code is a normal disconnection (MQTT
        // 5.0 section 3.14.2.1), which rumqttc's reader refuses.
        Version::V5 if buf.starts_with(&[0xe0, 0x00]) => {
            let _ = buf.split_to(2);
            Ok(Some(Incoming::Disconnect {
                reason: "NormalDisconnection (0x00)".into(),
            }))
        }
        Version::V5 => match v5::Packet::read(buf, Some(max.min(u32::MAX as usize) as u32)) {
            Ok(p) => Ok(Some(from5(p))),
            Err(b5::Error::InsufficientBytes(_)) => Ok(None),
            Err(e @ b5::Error::PayloadSizeLimitExceeded { .. }) => Err(limit(e)),
            Err(e) => Err(malformed(e)),
        },
    }
}

fn limit(e: impl std::fmt::Display) -> Fault {
    Fault::new(ErrorKind::Limit, format!("MQTT packet over max_message_bytes: {e}"))
}

fn malformed(e: impl std::fmt::Display) -> Fault {
    Fault::new(ErrorKind::Protocol, format!("malformed MQTT packet: {e}"))
}

/// A refused CONNACK of MQTT 3.1.1 by its return code and the name
/// section 3.2.2.3 (Table 3.1) gives it.
fn connack_v4(code: v4::ConnectReturnCode) -> String {
    use v4::ConnectReturnCode as C;
    let name = match code {
        C::Success => "Connection Accepted",
        C::RefusedProtocolVersion => "unacceptable protocol version",
        C::BadClientId => "identifier rejected",
        C::ServiceUnavailable => "Server unavailable",
        C::BadUserNamePassword => "bad user name or password",
        C::NotAuthorized => "not authorized",
    };
    format!("return code {} ({name})", code as u8)
}

/// An MQTT 5.0 reason code as the specification writes it: its value and
/// its name (section 2.4, Table 2-6).
fn reason(code: u8) -> String {
    let name = match code {
        0x00 => "Normal disconnection",
        0x04 => "Disconnect with Will Message",
        0x10 => "No matching subscribers",
        0x80 => "Unspecified error",
        0x81 => "Malformed Packet",
        0x82 => "Protocol Error",
        0x83 => "Implementation specific error",
        0x84 => "Unsupported Protocol Version",
        0x85 => "Client Identifier not valid",
        0x86 => "Bad User Name or Password",
        0x87 => "Not authorized",
        0x88 => "Server unavailable",
        0x89 => "Server busy",
        0x8A => "Banned",
        0x8B => "Server shutting down",
        0x8C => "Bad authentication method",
        0x8D => "Keep Alive timeout",
        0x8E => "Session taken over",
        0x8F => "Topic Filter invalid",
        0x90 => "Topic Name invalid",
        0x91 => "Packet Identifier in use",
        0x92 => "Packet Identifier not found",
        0x93 => "Receive Maximum exceeded",
        0x94 => "Topic Alias invalid",
        0x95 => "Packet too large",
        0x96 => "Message rate too high",
        0x97 => "Quota exceeded",
        0x98 => "Administrative action",
        0x99 => "Payload format invalid",
        0x9A => "Retain not supported",
        0x9B => "QoS not supported",
        0x9C => "Use another server",
        0x9D => "Server moved",
        0x9E => "Shared Subscriptions not supported",
        0x9F => "Connection rate exceeded",
        0xA0 => "Maximum connect time",
        0xA1 => "Subscription Identifiers not supported",
        0xA2 => "Wildcard Subscriptions not supported",
        _ => "a reason code MQTT 5.0 does not define",
    };
    format!("{name} (0x{code:02x})")
}

/// The value of a CONNACK reason code (MQTT 5.0 section 3.2.2.2); the
/// 3.1.1 return codes rumqttc shares with it are mapped to their 5.0
/// equivalents.
fn connack_v5(code: v5::ConnectReturnCode) -> u8 {
    use v5::ConnectReturnCode as C;
    match code {
        C::Success => 0x00,
        C::UnspecifiedError => 0x80,
        C::MalformedPacket => 0x81,
        C::ProtocolError => 0x82,
        C::ImplementationSpecificError => 0x83,
        C::UnsupportedProtocolVersion | C::RefusedProtocolVersion => 0x84,
        C::ClientIdentifierNotValid | C::BadClientId => 0x85,
        C::BadUserNamePassword => 0x86,
        C::NotAuthorized => 0x87,
        C::ServerUnavailable | C::ServiceUnavailable => 0x88,
        C::ServerBusy => 0x89,
        C::Banned => 0x8A,
        C::BadAuthenticationMethod => 0x8C,
        C::TopicNameInvalid => 0x90,
        C::PacketTooLarge => 0x95,
        C::QuotaExceeded => 0x97,
        C::PayloadFormatInvalid => 0x99,
        C::RetainNotSupported => 0x9A,
        C::QoSNotSupported => 0x9B,
        C::UseAnotherServer => 0x9C,
        C::ServerMoved => 0x9D,
        C::ConnectionRateExceeded => 0x9F,
    }
}

/// The value of a SUBACK reason code (MQTT 5.0 section 3.9.3).
fn suback_v5(code: v5::SubscribeReasonCode) -> u8 {
    use v5::SubscribeReasonCode as C;
    match code {
        C::Success(q) => q as u8,
        C::Failure | C::Unspecified => 0x80,
        C::ImplementationSpecific => 0x83,
        C::NotAuthorized => 0x87,
        C::TopicFilterInvalid => 0x8F,
        C::PkidInUse => 0x91,
        C::QuotaExceeded => 0x97,
        C::SharedSubscriptionsNotSupported => 0x9E,
        C::SubscriptionIdNotSupported => 0xA1,
        C::WildcardSubscriptionsNotSupported => 0xA2,
    }
}

/// The value of a PUBACK reason code (MQTT 5.0 section 3.4.2.1).
fn puback_v5(code: v5::PubAckReason) -> u8 {
    use v5::PubAckReason as C;
    match code {
        C::Success => 0x00,
        C::NoMatchingSubscribers => 0x10,
        C::UnspecifiedError => 0x80,
        C::ImplementationSpecificError => 0x83,
        C::NotAuthorized => 0x87,
        C::TopicNameInvalid => 0x90,
        C::PacketIdentifierInUse => 0x91,
        C::QuotaExceeded => 0x97,
        C::PayloadFormatInvalid => 0x99,
    }
}

fn from4(p: v4::Packet) -> Incoming {
    match p {
        v4::Packet::ConnAck(a) => Incoming::ConnAck {
            session_present: a.session_present,
            refused: (a.code != v4::ConnectReturnCode::Success)
                .then(|| connack_v4(a.code)),
        },
        v4::Packet::SubAck(a) => Incoming::SubAck {
            pkid: a.pkid,
            refused: a
                .return_codes
                .iter()
                .any(|c| matches!(c, v4::SubscribeReasonCode::Failure))
                .then(|| "return code 0x80 (failure)".to_string()),
        },
        v4::Packet::Publish(p) => Incoming::Publish {
            qos: p.qos as u8,
            pkid: p.pkid,
            payload: p.payload,
        },
        v4::Packet::PubAck(a) => Incoming::PubAck {
            pkid: a.pkid,
            refused: None,
        },
        v4::Packet::PingResp => Incoming::PingResp,
        v4::Packet::Connect(_) => Incoming::Unexpected("CONNECT"),
        v4::Packet::PubRec(_) => Incoming::Unexpected("PUBREC"),
        v4::Packet::PubRel(_) => Incoming::Unexpected("PUBREL"),
        v4::Packet::PubComp(_) => Incoming::Unexpected("PUBCOMP"),
        v4::Packet::Subscribe(_) => Incoming::Unexpected("SUBSCRIBE"),
        v4::Packet::Unsubscribe(_) => Incoming::Unexpected("UNSUBSCRIBE"),
        v4::Packet::UnsubAck(_) => Incoming::Unexpected("UNSUBACK"),
        v4::Packet::PingReq => Incoming::Unexpected("PINGREQ"),
        v4::Packet::Disconnect => Incoming::Unexpected("DISCONNECT"),
    }
}

fn from5(p: v5::Packet) -> Incoming {
    match p {
        v5::Packet::ConnAck(a) => Incoming::ConnAck {
            session_present: a.session_present,
            refused: (a.code != v5::ConnectReturnCode::Success).then(|| {
                let why = a
                    .properties
                    .and_then(|p| p.reason_string)
                    .map_or(String::new(), |s| format!(": {s}"));
                format!("{}{why}", reason(connack_v5(a.code)))
            }),
        },
        v5::Packet::SubAck(a) => Incoming::SubAck {
            pkid: a.pkid,
            refused: a
                .return_codes
                .iter()
                .find(|c| !matches!(c, v5::SubscribeReasonCode::Success(_)))
                .map(|&c| reason(suback_v5(c))),
        },
        v5::Packet::Publish(p) => Incoming::Publish {
            qos: p.qos as u8,
            pkid: p.pkid,
            payload: p.payload,
        },
        v5::Packet::PubAck(a) => Incoming::PubAck {
            pkid: a.pkid,
            refused: match a.reason {
                v5::PubAckReason::Success | v5::PubAckReason::NoMatchingSubscribers => None,
                other => Some(reason(puback_v5(other))),
            },
        },
        v5::Packet::PingResp(_) => Incoming::PingResp,
        v5::Packet::Disconnect(d) => {
            let why = d
                .properties
                .and_then(|p| p.reason_string)
                .map_or(String::new(), |s| format!(": {s}"));
            Incoming::Disconnect {
                reason: format!("{}{why}", reason(d.reason_code as u8)),
            }
        }
        v5::Packet::Auth(_) => Incoming::Unexpected("AUTH"),
        v5::Packet::Connect(..) => Incoming::Unexpected("CONNECT"),
        v5::Packet::PubRec(_) => Incoming::Unexpected("PUBREC"),
        v5::Packet::PubRel(_) => Incoming::Unexpected("PUBREL"),
        v5::Packet::PubComp(_) => Incoming::Unexpected("PUBCOMP"),
        v5::Packet::Subscribe(_) => Incoming::Unexpected("SUBSCRIBE"),
        v5::Packet::Unsubscribe(_) => Incoming::Unexpected("UNSUBSCRIBE"),
        v5::Packet::UnsubAck(_) => Incoming::Unexpected("UNSUBACK"),
        v5::Packet::PingReq(_) => Incoming::Unexpected("PINGREQ"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both versions round-trip what the broker's side of a session sends
    /// back, read in pieces as WebSocket frames may split them.
    #[test]
    fn packets_round_trip_in_pieces_in_both_versions() {
        for v in [Version::V311, Version::V5] {
            let mut wire = BytesMut::new();
            publish(v, "t/a", 1, 7, Bytes::from_static(b"env"), &mut wire).unwrap();
            publish(v, "t/a", 0, 9, Bytes::from_static(b"x"), &mut wire).unwrap();
            let bytes = wire.freeze();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for b in bytes.iter() {
                buf.extend_from_slice(&[*b]);
                while let Some(p) = read(v, &mut buf, 1 << 20).unwrap() {
                    got.push(p);
                }
            }
            assert_eq!(
                got,
                vec![
                    Incoming::Publish {
                        qos: 1,
                        pkid: 7,
                        payload: Bytes::from_static(b"env")
                    },
                    Incoming::Publish {
                        qos: 0,
                        pkid: 0,
                        payload: Bytes::from_static(b"x")
                    },
                ],
                "{v:?}"
            );
        }
    }

    #[test]
    fn an_mqtt_5_goodbye_can_end_the_session() {
        let mut out = BytesMut::new();
        disconnect(Version::V5, true, &mut out).unwrap();
        let Ok(v5::Packet::Disconnect(d)) = v5::Packet::read(&mut out, None) else {
            panic!("not a DISCONNECT");
        };
        assert_eq!(
            d.properties.and_then(|p| p.session_expiry_interval),
            Some(0)
        );
        // The bare form (no reason, no properties) reads as a normal one.
        let mut out = BytesMut::new();
        disconnect(Version::V5, false, &mut out).unwrap();
        assert_eq!(&out[..], [0xe0, 0x00]);
        assert_eq!(
            read(Version::V5, &mut out, 100).unwrap(),
            Some(Incoming::Disconnect {
                reason: "NormalDisconnection (0x00)".into()
            })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_packet_over_the_limit_is_a_limit_fault() {
        for v in [Version::V311, Version::V5] {
            let mut buf = BytesMut::new();
            publish(v, "t", 0, 0, Bytes::from(vec![b'a'; 2000]), &mut buf).unwrap();
            assert_eq!(read(v, &mut buf, 1000).unwrap_err().kind, ErrorKind::Limit);
        }
        let mut junk = BytesMut::from(&[0xf0u8, 0x00][..]);
        assert_eq!(
            read(Version::V311, &mut junk, 1000).unwrap_err().kind,
            ErrorKind::Protocol
        );
    }

    proptest::proptest! {
        /// Hostile bytes never panic either codec: a packet, a need for
        /// more bytes, or a fault.
        #[test]
        fn any_bytes_read_without_panicking(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            for v in [Version::V311, Version::V5] {
                let mut buf = BytesMut::from(&bytes[..]);
                for _ in 0..50 {
                    match read(v, &mut buf, 100) {
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
    }
}
