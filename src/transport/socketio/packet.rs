//! Engine.IO v4 and Socket.IO v5 packets, sans I/O: what the socket.io 4.x
//! server and client put on the wire (socketio/engine.io-protocol README,
//! "Protocol" and "Transports"; socketio/socket.io-protocol README,
//! "Packet format").
//!
//! Engine.IO: one type digit (`0` open, `1` close, `2` ping, `3` pong, `4`
//! message, `5` upgrade, `6` noop) and its data. HTTP long-polling batches
//! packets with the record separator `\x1e`; a binary packet there is `b`
//! and base64. Socket.IO rides in `4` message packets:
//! `<type>[<attachments>-][<namespace>,][<ack id>][JSON]`.

use serde_json::Value;

use crate::fault::{ErrorKind, Fault};

/// The record separator between packets of one polling payload.
pub const SEPARATOR: u8 = 0x1e;

/// One Engine.IO packet, borrowed from its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine<'a> {
    /// `0`: the handshake's JSON (`sid`, `upgrades`, `pingInterval`, ...).
    Open(&'a [u8]),
    /// `1`: the server closes the session.
    Close,
    /// `2`: the server's heartbeat (or `2probe`).
    Ping(&'a [u8]),
    /// `3`: an answer to a ping (`3probe` during an upgrade).
    Pong(&'a [u8]),
    /// `4`: a message: a Socket.IO packet (text).
    Message(&'a [u8]),
    /// A binary message: a Socket.IO attachment (a WebSocket binary frame,
    /// or `b<base64>` in a polling payload, left encoded).
    Binary(&'a [u8]),
    /// `5`: the upgrade is complete.
    Upgrade,
    /// `6`: nothing (ends a pending poll during an upgrade).
    Noop,
}

impl<'a> Engine<'a> {
    /// Parses one text packet (a WebSocket text frame, or one record of a
    /// polling payload).
    pub fn parse(text: &'a [u8]) -> Result<Engine<'a>, Fault> {
        let Some((&kind, data)) = text.split_first() else {
            return Err(bad("an empty Engine.IO packet"));
        };
        Ok(match kind {
            b'0' => Engine::Open(data),
            b'1' => Engine::Close,
            b'2' => Engine::Ping(data),
            b'3' => Engine::Pong(data),
            b'4' => Engine::Message(data),
            b'5' => Engine::Upgrade,
            b'6' => Engine::Noop,
            b'b' => Engine::Binary(data),
            other => {
                return Err(bad(&format!(
                    "Engine.IO packet type {} (known: 0 to 6, and b)",
                    crate::fault::quote(&char::from(other).to_string())
                )))
            }
        })
    }
}

/// Splits a polling payload into its packets.
pub fn records(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    payload.split(|b| *b == SEPARATOR)
}

/// The handshake's fields stampede uses (engine.io-protocol, "Handshake").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// Session id, sent back as `sid=` on every later request.
    pub sid: String,
    /// Transports the session may upgrade to.
    pub upgrades: Vec<String>,
    /// The server pings this often (ms).
    pub ping_interval_ms: u64,
    /// and waits this long for the pong (ms).
    pub ping_timeout_ms: u64,
    /// Largest payload the server accepts (bytes).
    pub max_payload: u64,
}

impl Handshake {
    /// Parses an open packet's JSON.
    pub fn parse(json: &[u8]) -> Result<Handshake, Fault> {
        let v: Value = serde_json::from_slice(json)
            .map_err(|e| bad(&format!("the Engine.IO handshake is not JSON: {e}")))?;
        let num = |k: &str| v.get(k).and_then(Value::as_u64);
        let sid = v
            .get("sid")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("the Engine.IO handshake has no sid"))?;
        let (Some(ping_interval_ms), Some(ping_timeout_ms)) =
            (num("pingInterval"), num("pingTimeout"))
        else {
            return Err(bad(
                "the Engine.IO handshake lacks pingInterval or pingTimeout",
            ));
        };
        Ok(Handshake {
            sid: sid.to_string(),
            upgrades: v
                .get("upgrades")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            ping_interval_ms,
            ping_timeout_ms,
            max_payload: num("maxPayload").unwrap_or(1_000_000),
        })
    }
}

/// Socket.IO packet types (socket.io-protocol, "Packet types").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `0`: namespace connected (from the server: `{"sid":...}`).
    Connect,
    /// `1`: namespace disconnected.
    Disconnect,
    /// `2`: an event `["name", args...]`.
    Event,
    /// `3`: an acknowledgement `[args...]`.
    Ack,
    /// `4`: the server refused the namespace connection.
    ConnectError,
    /// `5`: an event with binary attachments.
    BinaryEvent,
    /// `6`: an acknowledgement with binary attachments.
    BinaryAck,
}

/// One Socket.IO packet, borrowed from its Engine.IO message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Its type.
    pub kind: Kind,
    /// Binary attachments that follow it (binary kinds only).
    pub attachments: u32,
    /// Its namespace (`/` when absent).
    pub namespace: &'a str,
    /// Its acknowledgement id, if any.
    pub ack: Option<u64>,
    /// The JSON data (may be empty).
    pub data: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Parses the data of an Engine.IO message packet.
    pub fn parse(text: &'a [u8]) -> Result<Packet<'a>, Fault> {
        let Some((&t, mut rest)) = text.split_first() else {
            return Err(bad("an empty Socket.IO packet"));
        };
        let kind = match t {
            b'0' => Kind::Connect,
            b'1' => Kind::Disconnect,
            b'2' => Kind::Event,
            b'3' => Kind::Ack,
            b'4' => Kind::ConnectError,
            b'5' => Kind::BinaryEvent,
            b'6' => Kind::BinaryAck,
            other => {
                return Err(bad(&format!(
                    "Socket.IO packet type {} (known: 0 to 6)",
                    crate::fault::quote(&char::from(other).to_string())
                )))
            }
        };
        let mut attachments = 0;
        if matches!(kind, Kind::BinaryEvent | Kind::BinaryAck) {
            let dash = rest
                .iter()
                .position(|b| *b == b'-')
                .ok_or_else(|| bad("a binary Socket.IO packet without `<n>-`"))?;
            attachments = digits(&rest[..dash])
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("a binary Socket.IO packet's attachment count"))?;
            rest = &rest[dash + 1..];
        }
        let mut namespace = "/";
        if rest.first() == Some(&b'/') {
            let comma = rest.iter().position(|b| *b == b',');
            let end = comma.unwrap_or(rest.len());
            namespace = std::str::from_utf8(&rest[..end])
                .map_err(|_| bad("a Socket.IO namespace that is not UTF-8"))?;
            rest = &rest[(end + 1).min(rest.len())..];
        }
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let ack = if n > 0 {
            Some(digits(&rest[..n]).ok_or_else(|| bad("a Socket.IO ack id out of range"))?)
        } else {
            None
        };
        Ok(Packet {
            kind,
            attachments,
            namespace,
            ack,
            data: &rest[n..],
        })
    }

    /// An event's name (the first element of its array), if it has one.
    pub fn event_name(&self) -> Option<String> {
        let v: Value = serde_json::from_slice(self.data).ok()?;
        v.as_array()?.first()?.as_str().map(str::to_string)
    }

    /// True when this event's name is `name`, checked without parsing the
    /// whole array (the envelope's padding can be long).
    pub fn is_event(&self, name: &str) -> bool {
        let d = self.data;
        if d.first() != Some(&b'[') {
            return false;
        }
        // `["name"` then `,` or `]`, as socket.io's parser writes it; any
        // other spelling (spaces, escapes) is parsed properly.
        let quoted = format!("\"{name}\"");
        if d[1..].starts_with(quoted.as_bytes()) {
            let after = d.get(1 + quoted.len());
            if matches!(after, Some(b',') | Some(b']')) {
                return true;
            }
        }
        self.event_name().as_deref() == Some(name)
    }
}

/// The Socket.IO text for a namespace prefix: empty for `/`, else `/ns,`.
pub fn namespace_prefix(namespace: &str) -> String {
    if namespace == "/" || namespace.is_empty() {
        String::new()
    } else {
        format!("{namespace},")
    }
}

/// The Engine.IO message that connects to `namespace`, with an optional
/// JSON auth payload: `40`, `40/chat,`, `40{"token":"x"}`.
pub fn connect(namespace: &str, auth: Option<&str>) -> String {
    format!("40{}{}", namespace_prefix(namespace), auth.unwrap_or(""))
}

/// The Engine.IO message that emits an event: `42<ns>[<ack>]<args JSON>`.
pub fn event(namespace: &str, ack: Option<u64>, args: &Value) -> String {
    format!(
        "42{}{}{}",
        namespace_prefix(namespace),
        ack.map_or(String::new(), |a| a.to_string()),
        args
    )
}

/// The Engine.IO message that answers an event's ack id with no arguments.
pub fn ack(namespace: &str, id: u64) -> String {
    format!("43{}{id}[]", namespace_prefix(namespace))
}

/// The Engine.IO message that leaves `namespace`.
pub fn disconnect(namespace: &str) -> String {
    format!("41{}", namespace_prefix(namespace))
}

/// A `44` packet's reason: its `message` when it has one.
pub fn connect_error_message(data: &[u8]) -> String {
    serde_json::from_slice::<Value>(data)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(data).into_owned())
}

fn digits(d: &[u8]) -> Option<u64> {
    if d.is_empty() || d.len() > 19 || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(d).ok()?.parse().ok()
}

fn bad(what: &str) -> Fault {
    Fault::new(ErrorKind::Protocol, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_packets_and_polling_payloads() {
        let payload = b"2\x1e42[\"message\",\"st1 0 1 2 \"]\x1e6\x1ebAQID";
        let got: Vec<_> = records(payload)
            .map(|r| Engine::parse(r).unwrap())
            .collect();
        assert_eq!(
            got,
            [
                Engine::Ping(b""),
                Engine::Message(b"2[\"message\",\"st1 0 1 2 \"]"),
                Engine::Noop,
                Engine::Binary(b"AQID"),
            ]
        );
        assert_eq!(Engine::parse(b"3probe").unwrap(), Engine::Pong(b"probe"));
        assert_eq!(Engine::parse(b"1").unwrap(), Engine::Close);
        assert_eq!(Engine::parse(b"").unwrap_err().kind, ErrorKind::Protocol);
        assert_eq!(Engine::parse(b"9x").unwrap_err().kind, ErrorKind::Protocol);
    }

    #[test]
    fn the_handshake_of_engine_io_v4() {
        let h = Handshake::parse(
            br#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        )
        .unwrap();
        assert_eq!(h.sid, "lv_VI97HAXpY6yYWAAAC");
        assert_eq!(h.upgrades, ["websocket"]);
        assert_eq!((h.ping_interval_ms, h.ping_timeout_ms), (25000, 20000));
        assert!(Handshake::parse(br#"{"upgrades":[]}"#).is_err());
        assert!(Handshake::parse(br#"{"sid":"x"}"#).is_err());
        assert!(Handshake::parse(b"not json").is_err());
    }

    #[test]
    fn socket_io_packets_as_the_protocol_readme_writes_them() {
        let p = Packet::parse(b"0{\"sid\":\"abc\"}").unwrap();
        assert_eq!((p.kind, p.namespace, p.ack), (Kind::Connect, "/", None));
        assert_eq!(p.data, b"{\"sid\":\"abc\"}");
        let p = Packet::parse(b"2/admin,456[\"project:delete\",123]").unwrap();
        assert_eq!(
            (p.kind, p.namespace, p.ack),
            (Kind::Event, "/admin", Some(456))
        );
        assert_eq!(p.event_name().as_deref(), Some("project:delete"));
        assert!(p.is_event("project:delete") && !p.is_event("project"));
        let p = Packet::parse(b"51-[\"hello\",{\"_placeholder\":true,\"num\":0}]").unwrap();
        assert_eq!((p.kind, p.attachments), (Kind::BinaryEvent, 1));
        assert!(p.is_event("hello"));
        let p = Packet::parse(b"61-/admin,456[{\"_placeholder\":true,\"num\":0}]").unwrap();
        assert_eq!(
            (p.kind, p.attachments, p.namespace, p.ack),
            (Kind::BinaryAck, 1, "/admin", Some(456))
        );
        assert_eq!(Packet::parse(b"1/admin,").unwrap().namespace, "/admin");
        assert_eq!(Packet::parse(b"1").unwrap().kind, Kind::Disconnect);
        let p = Packet::parse(b"4{\"message\":\"Not authorized\"}").unwrap();
        assert_eq!(connect_error_message(p.data), "Not authorized");
        // A spaced name is still found by parsing.
        assert!(Packet::parse(b"2[ \"a\" ,1]").unwrap().is_event("a"));
        for bad in [&b""[..], b"7", b"5[\"x\"]", b"5x-[]", b"299999999999999999999[]"] {
            assert!(Packet::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn client_packets() {
        assert_eq!(connect("/", None), "40");
        assert_eq!(connect("/admin", Some("{\"t\":1}")), "40/admin,{\"t\":1}");
        let args = serde_json::json!(["subscribe", "ch-1"]);
        assert_eq!(event("/", Some(0), &args), "420[\"subscribe\",\"ch-1\"]");
        assert_eq!(event("/x", None, &args), "42/x,[\"subscribe\",\"ch-1\"]");
        assert_eq!(ack("/", 7), "437[]");
        assert_eq!(disconnect("/x"), "41/x,");
    }
}
