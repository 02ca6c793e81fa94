//! STOMP and MQTT sessions against scripted peers, for what the real
//! brokers in `tests/rabbitmq.rs` and `tests/mqtt.rs` do not do on
//! demand: a STOMP server that promised heart-beats and goes silent, an
//! ERROR frame mid-session, and an MQTT 5 DISCONNECT with a reason.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use stampede::fault::{ErrorKind, Fault};
use stampede::net::IoCounters;
use stampede::transport::mqtt::Mqtt;
use stampede::transport::stomp::Stomp;
use stampede::transport::{SessionSpec, Step, Transport};
use support::raw::{spec_for, Collect};
use support::ws::frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// A peer that upgrades one connection with `subprotocol`, writes
/// `frames`, then reads (and drops) whatever comes until the client
/// leaves, so the connection stays open.
async fn peer(subprotocol: &'static str, frames: Vec<Vec<u8>>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                return;
            }
            req.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&req).into_owned();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("sec-websocket-key: "))
            .unwrap_or_default();
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n",
            derive_accept_key(key.trim().as_bytes())
        );
        s.write_all(head.as_bytes()).await.unwrap();
        for f in frames {
            s.write_all(&f).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
    addr
}

fn spec(addr: std::net::SocketAddr, section: &str) -> SessionSpec {
    let mut spec = spec_for(addr, "/ws");
    let mut sections = (*spec.profile).clone();
    let mut table: toml::Table = toml::from_str(section).unwrap();
    sections.replace_from(&mut table).unwrap();
    spec.profile = Arc::new(sections);
    spec.params.limits.read_timeout = Duration::from_secs(5);
    spec
}

/// Opens `T` and reads until the session fails (or 20 steps).
async fn run<T: Transport>(spec: &SessionSpec) -> (Collect, Option<Fault>) {
    let mut sink = Collect::default();
    let io = Arc::new(IoCounters::default());
    let mut s = match T::open(spec, &io, None, &mut sink).await {
        Ok(s) => s,
        Err(f) => return (sink, Some(f)),
    };
    for _ in 0..20 {
        match s.next(Instant::now(), &mut sink).await {
            Ok(Step::Continue) => {}
            Ok(Step::Ended) => return (sink, None),
            Err(f) => return (sink, Some(f)),
        }
    }
    (sink, None)
}

const STOMP: &str = "[stomp]\nurl = \"/ws\"\nheartbeat = \"100ms\"\n";

#[tokio::test]
async fn a_stomp_server_that_misses_its_heart_beats_is_a_timeout() {
    let addr = peer(
        "v12.stomp",
        vec![
            frame(0x81, b"CONNECTED\nversion:1.2\nheart-beat:100,100\n\n\0"),
            frame(0x81, b"RECEIPT\nreceipt-id:subscribed\n\n\0"),
            frame(
                0x81,
                b"MESSAGE\nsubscription:0\nmessage-id:1\ncontent-length:5\n\nhello\0",
            ),
            frame(0x81, b"\n"),
        ],
    )
    .await;
    let (sink, fault) = run::<Stomp>(&spec(addr, STOMP)).await;
    assert_eq!(sink.messages, ["hello"]);
    // CONNECTED, RECEIPT, the heart-beat.
    assert_eq!(sink.controls, 3);
    let f = fault.expect("a fault");
    assert_eq!(f.kind, ErrorKind::Timeout, "{f}");
    assert!(
        f.detail
            .contains("no STOMP heart-beat from the server within 200ms"),
        "{f}"
    );
}

#[tokio::test]
async fn a_stomp_error_frame_is_a_protocol_error_with_the_servers_message() {
    let addr = peer(
        "v12.stomp",
        vec![
            frame(0x81, b"CONNECTED\nversion:1.2\n\n\0"),
            frame(0x81, b"RECEIPT\nreceipt-id:subscribed\n\n\0"),
            frame(
                0x81,
                b"ERROR\nmessage:queue deleted\ncontent-length:8\n\nby admin\0",
            ),
        ],
    )
    .await;
    let (sink, fault) = run::<Stomp>(&spec(addr, STOMP)).await;
    assert!(sink.messages.is_empty());
    let f = fault.expect("a fault");
    assert_eq!(f.kind, ErrorKind::Protocol);
    assert_eq!(f.detail, "the server sent ERROR: queue deleted (by admin)");
}

#[tokio::test]
async fn an_mqtt_5_disconnect_is_closed_with_its_reason() {
    let addr = peer(
        "mqtt",
        vec![
            // CONNACK: no session, success, no properties.
            frame(0x82, &[0x20, 0x03, 0x00, 0x00, 0x00]),
            // SUBACK for packet 1, no properties, QoS 0 granted.
            frame(0x82, &[0x90, 0x04, 0x00, 0x01, 0x00, 0x00]),
            // PUBLISH QoS 0 to "t" with "hi", split over two frames.
            frame(0x82, &[0x30, 0x06, 0x00, 0x01]),
            frame(0x82, &[b't', 0x00, b'h', b'i']),
            // DISCONNECT 0x8e (Session taken over), no properties.
            frame(0x82, &[0xe0, 0x02, 0x8e, 0x00]),
        ],
    )
    .await;
    let (sink, fault) = run::<Mqtt>(&spec(
        addr,
        "[mqtt]\nurl = \"/ws\"\nversion = \"5\"\ntopic = \"t\"\n",
    ))
    .await;
    assert_eq!(sink.messages, ["hi"]);
    let f = fault.expect("a fault");
    assert_eq!(f.kind, ErrorKind::Closed, "{f}");
    assert_eq!(
        f.detail,
        "the broker sent DISCONNECT: Session taken over (0x8e)"
    );
}

#[tokio::test]
async fn a_refused_mqtt_subscription_is_a_protocol_error() {
    let addr = peer(
        "mqtt",
        vec![
            frame(0x82, &[0x20, 0x02, 0x00, 0x00]),
            // SUBACK 0x80: failure (MQTT 3.1.1 section 3.9.3).
            frame(0x82, &[0x90, 0x03, 0x00, 0x01, 0x80]),
        ],
    )
    .await;
    let (_, fault) = run::<Mqtt>(&spec(addr, "[mqtt]\nurl = \"/ws\"\ntopic = \"t\"\n")).await;
    let f = fault.expect("a fault");
    assert_eq!(f.kind, ErrorKind::Protocol, "{f}");
    assert!(f.detail.contains("refused SUBSCRIBE to t"), "{f}");
}

/// Opens `T`, sends two own messages (tickets 10 and 11), then reads
/// until the session fails (or 20 steps).
async fn send_two<T: Transport>(spec: &SessionSpec) -> (Collect, Option<Fault>) {
    let mut sink = Collect::default();
    let io = Arc::new(IoCounters::default());
    let mut s = T::open(spec, &io, None, &mut sink).await.expect("open");
    s.send("ten".into(), 10).await.expect("send 10");
    s.send("eleven".into(), 11).await.expect("send 11");
    for _ in 0..20 {
        match s.next(Instant::now(), &mut sink).await {
            Ok(Step::Continue) if sink.acked.len() + sink.refused.len() < 2 => {}
            Ok(Step::Continue) => return (sink, None),
            Ok(Step::Ended) => return (sink, None),
            Err(f) => return (sink, Some(f)),
        }
    }
    (sink, None)
}

/// A room member's own MQTT 5 PUBLISHes at QoS 1: the PUBACK of the first
/// acknowledges it, the second's reason code 0x87 refuses it, named as
/// the specification names it.
#[tokio::test]
async fn mqtt_5_pubacks_acknowledge_or_refuse_a_members_own_messages() {
    let addr = peer(
        "mqtt",
        vec![
            frame(0x82, &[0x20, 0x03, 0x00, 0x00, 0x00]),
            frame(0x82, &[0x90, 0x04, 0x00, 0x01, 0x00, 0x01]),
            // PUBACK for packet 2 (success), then packet 3: 0x87.
            frame(0x82, &[0x40, 0x02, 0x00, 0x02]),
            frame(0x82, &[0x40, 0x04, 0x00, 0x03, 0x87, 0x00]),
        ],
    )
    .await;
    let (sink, fault) = send_two::<Mqtt>(&spec(
        addr,
        "[mqtt]\nurl = \"/ws\"\nversion = \"5\"\ntopic = \"t\"\nqos = 1\n",
    ))
    .await;
    assert!(fault.is_none(), "{fault:?}");
    assert_eq!(sink.acked, [10]);
    assert_eq!(sink.refused.len(), 1);
    let (ticket, why) = &sink.refused[0];
    assert_eq!(*ticket, 11);
    assert_eq!(why.kind, ErrorKind::Protocol);
    assert_eq!(
        why.detail,
        "the broker refused PUBLISH to t: Not authorized (0x87)"
    );
}

/// A room member's own STOMP SENDs with receipts: a RECEIPT acknowledges
/// the first, an ERROR naming the second refuses it (and ends the
/// session, as STOMP 1.2 has the server close after an ERROR).
#[tokio::test]
async fn stomp_receipts_acknowledge_and_errors_refuse_a_members_own_sends() {
    let addr = peer(
        "v12.stomp",
        vec![
            frame(0x81, b"CONNECTED\nversion:1.2\n\n\0"),
            frame(0x81, b"RECEIPT\nreceipt-id:subscribed\n\n\0"),
            frame(0x81, b"RECEIPT\nreceipt-id:own-10\n\n\0"),
            frame(
                0x81,
                b"ERROR\nreceipt-id:own-11\nmessage:access refused\n\n\0",
            ),
        ],
    )
    .await;
    let (sink, fault) = send_two::<Stomp>(&spec(addr, "[stomp]\nurl = \"/ws\"\n")).await;
    assert_eq!(sink.acked, [10]);
    assert_eq!(sink.refused.len(), 1, "{:?}", sink.refused);
    assert_eq!(sink.refused[0].0, 11);
    let f = fault.expect("the ERROR ends the session");
    assert_eq!(f.kind, ErrorKind::Protocol);
    assert_eq!(f.detail, "the server sent ERROR: access refused");
}
