//! WebSocket conformance against scripted peers on real sockets: a server's
//! Close is answered with a Close (RFC 6455 section 5.5.1); permessage-deflate
//! (RFC 7692) is negotiated and every message inflated, with and without
//! context takeover; an extension not offered, RSV bits without one, and
//! bad compressed data are `protocol` faults.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use flate2::{Compress, Compression};
use http::{header, HeaderValue};
use stampede::fault::ErrorKind;
use stampede::net::IoCounters;
use stampede::transport::websocket::WebSocket;
use stampede::transport::{SessionSpec, Step, Transport};
use support::raw::{spec_for, Collect};
use support::ws::{deflate, frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// What the peer saw: the request head and the client's bytes after it.
struct Seen {
    request: String,
    after: Vec<u8>,
}

/// A peer that answers the upgrade with `extensions` (if any), sends
/// `first` in the same write as the 101, then each of `frames` apart,
/// then reads what the client sends for up to half a second.
async fn peer(
    extensions: Option<&'static str>,
    first: Vec<u8>,
    frames: Vec<Vec<u8>>,
) -> (SessionSpec, tokio::task::JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        let end = loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "no request");
            req.extend_from_slice(&buf[..n]);
            if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let mut after = req.split_off(end);
        let request = String::from_utf8_lossy(&req).into_owned();
        let key = request
            .lines()
            .find_map(|l| l.strip_prefix("sec-websocket-key: "))
            .unwrap_or_default();
        let mut out = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
            derive_accept_key(key.trim().as_bytes())
        );
        if let Some(e) = extensions {
            out.push_str(&format!("Sec-WebSocket-Extensions: {e}\r\n"));
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        out.extend_from_slice(&first);
        s.write_all(&out).await.unwrap();
        for f in frames {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if s.write_all(&f).await.is_err() {
                break;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            after.extend_from_slice(&buf[..n]);
        }
        Seen { request, after }
    });
    (spec_for(addr, "/ws/c"), task)
}

/// Opens a WebSocket session on `spec` and reads until it ends or fails.
async fn drive(spec: &SessionSpec) -> (Collect, Option<ErrorKind>, Arc<IoCounters>) {
    let mut sink = Collect::default();
    let io = Arc::new(IoCounters::default());
    let mut s = match WebSocket::open(spec, &io, None, &mut sink).await {
        Ok(s) => s,
        Err(f) => return (sink, Some(f.kind), io),
    };
    for _ in 0..1000 {
        match s.next(Instant::now(), &mut sink).await {
            Ok(Step::Continue) => {}
            Ok(Step::Ended) => return (sink, None, io),
            Err(f) => {
                sink.faults.push(f.clone());
                return (sink, Some(f.kind), io);
            }
        }
    }
    (sink, None, io)
}

/// The opcodes of the (masked) frames a client sent.
fn client_opcodes(mut b: &[u8]) -> Vec<u8> {
    let mut ops = Vec::new();
    while b.len() >= 2 {
        assert_eq!(b[1] & 0x80, 0x80, "client frames are masked");
        let len = (b[1] & 0x7f) as usize;
        assert!(len < 126, "a control frame");
        ops.push(b[0] & 0x0f);
        b = &b[(6 + len).min(b.len())..];
    }
    ops
}

const CLOSE_1000: [u8; 4] = [0x88, 0x02, 0x03, 0xe8];

#[tokio::test]
async fn a_server_close_is_answered_with_a_masked_close() {
    let (spec, server) = peer(None, frame(0x81, b"one"), vec![CLOSE_1000.to_vec()]).await;
    let (sink, err, _) = drive(&spec).await;
    assert_eq!((sink.messages, err), (vec!["one".to_string()], None));
    let seen = server.await.unwrap();
    let b = &seen.after;
    assert!(b.len() >= 6, "no reply: {b:?}");
    assert_eq!(b[0], 0x88, "FIN + close opcode: {b:?}");
    assert_eq!(b[1] & 0x80, 0x80, "a client frame is masked: {b:?}");
    let len = (b[1] & 0x7f) as usize;
    let mask = &b[2..6];
    let payload: Vec<u8> = b[6..6 + len]
        .iter()
        .enumerate()
        .map(|(i, x)| x ^ mask[i % 4])
        .collect();
    assert_eq!(payload, [0x03, 0xe8], "the close echoes 1000");
}

#[tokio::test]
async fn echo_mode_answers_a_server_close_too() {
    use stampede::transport::echo::Echo;
    let (mut spec, server) = peer(None, Vec::new(), vec![CLOSE_1000.to_vec()]).await;
    spec.params.message_bytes = Some(64);
    let mut sink = Collect::default();
    let io = Arc::new(IoCounters::default());
    let mut echo = Echo::open(&spec, &io, None, &mut sink).await.unwrap();
    let step = echo.next(Instant::now(), &mut sink).await;
    assert!(matches!(step, Ok(Step::Ended)), "{:?}", step.err());
    // The echo message went out, then the answer to the server's close.
    assert_eq!(client_opcodes(&server.await.unwrap().after), [0x1, 0x8]);
}

/// Messages whose bytes repeat across messages, so a context-takeover
/// stream refers back to earlier messages.
fn messages() -> Vec<Vec<u8>> {
    let mut m: Vec<Vec<u8>> = (0..40)
        .map(|i| format!("{{\"id\":{i},\"data\":\"the same words again and again\"}}").into_bytes())
        .collect();
    m.push(Vec::new());
    m.push("x".repeat(200_000).into_bytes());
    m
}

/// The peer's frames for `msgs`, compressed with one context (`takeover`)
/// or a fresh one per message; the fifth is fragmented in two with a ping
/// between, the sixth goes uncompressed (allowed per message).
fn compressed_frames(msgs: &[Vec<u8>], takeover: bool) -> Vec<Vec<u8>> {
    let mut z = Compress::new(Compression::new(6), false);
    let mut out = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        if !takeover {
            z.reset();
        }
        if i == 5 {
            out.push(frame(0x81, m));
            continue;
        }
        let c = deflate(&mut z, m);
        if i == 4 {
            let (a, b) = c.split_at(c.len() / 2);
            out.push(frame(0x41, a)); // text, RSV1, not final
            out.push(frame(0x89, b"p")); // a ping in between
            out.push(frame(0x80, b)); // continuation, final, RSV1 clear
        } else {
            out.push(frame(0xc1, &c));
        }
    }
    out.push(CLOSE_1000.to_vec());
    out
}

async fn inflates_every_message(answer: &'static str, takeover: bool, spec_header: Option<&str>) {
    let msgs = messages();
    let mut frames = compressed_frames(&msgs, takeover);
    // The first compressed frame arrives with the 101.
    let first = frames.remove(0);
    let (mut spec, server) = peer(Some(answer), first, frames).await;
    match spec_header {
        Some(h) => {
            spec.headers = Arc::new([(
                header::SEC_WEBSOCKET_EXTENSIONS,
                HeaderValue::from_str(h).unwrap(),
            )])
        }
        None => spec.params.compression = true,
    }
    let (sink, err, io) = drive(&spec).await;
    assert_eq!(err, None, "{:?}", sink.faults);
    assert!(sink.faults.is_empty(), "{:?}", sink.faults);
    let want: Vec<String> = msgs
        .iter()
        .map(|m| String::from_utf8(m.clone()).unwrap())
        .collect();
    assert_eq!(sink.messages.len(), want.len());
    assert!(sink.messages == want, "a message differs");
    // Counted on the wire, compressed.
    let plain: usize = msgs.iter().map(Vec::len).sum();
    let (_, received) = io.totals();
    assert!(
        received < plain as u64 / 10,
        "{received} bytes received for {plain} plain"
    );
    let seen = server.await.unwrap();
    let offered = seen
        .request
        .lines()
        .filter(|l| l.starts_with("sec-websocket-extensions:"))
        .collect::<Vec<_>>();
    let want_offer = spec_header.unwrap_or("permessage-deflate; client_max_window_bits");
    assert_eq!(
        offered,
        vec![format!("sec-websocket-extensions: {want_offer}")]
    );
    // The ping was answered with a pong, the server's close with a close.
    assert_eq!(client_opcodes(&seen.after), [0xa, 0x8]);
}

#[tokio::test]
async fn deflate_with_context_takeover_inflates_every_message() {
    inflates_every_message("permessage-deflate", true, None).await;
}

#[tokio::test]
async fn deflate_without_context_takeover_inflates_every_message() {
    inflates_every_message(
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
        false,
        None,
    )
    .await;
    // The offer a profile header makes goes out as written.
    inflates_every_message(
        "permessage-deflate; server_no_context_takeover",
        false,
        Some("permessage-deflate; server_no_context_takeover"),
    )
    .await;
}

async fn fault_of(
    compression: bool,
    extensions: Option<&'static str>,
    frames: Vec<Vec<u8>>,
) -> Option<ErrorKind> {
    let (mut spec, _server) = peer(extensions, Vec::new(), frames).await;
    spec.params.compression = compression;
    spec.params.limits.max_message_bytes = 100_000;
    drive(&spec).await.1
}

#[tokio::test]
async fn extensions_not_offered_or_not_agreed_are_protocol_faults() {
    let p = Some(ErrorKind::Protocol);
    // An extension chosen but not offered fails the upgrade.
    assert_eq!(fault_of(false, Some("permessage-deflate"), vec![]).await, p);
    assert_eq!(
        fault_of(true, Some("x-webkit-deflate-frame"), vec![]).await,
        p
    );
    // An answer the offer does not allow (a value stampede did not offer).
    assert_eq!(
        fault_of(
            true,
            Some("permessage-deflate; server_max_window_bits"),
            vec![]
        )
        .await,
        p
    );
    let mut z = Compress::new(Compression::new(6), false);
    let hello = deflate(&mut z, b"hello");
    // RSV1 without a negotiated extension.
    assert_eq!(fault_of(false, None, vec![frame(0xc1, &hello)]).await, p);
    // Offered, declined by the server, then RSV1 anyway.
    assert_eq!(fault_of(true, None, vec![frame(0xc1, &hello)]).await, p);
    // Negotiated, but RSV1 on a control frame or a continuation, or RSV2.
    let pmd = Some("permessage-deflate");
    assert_eq!(fault_of(true, pmd, vec![frame(0xc9, b"")]).await, p);
    assert_eq!(
        fault_of(true, pmd, vec![frame(0x41, &hello), frame(0xc0, b"")]).await,
        p
    );
    assert_eq!(fault_of(true, pmd, vec![frame(0xe1, &hello)]).await, p);
    // Data that does not inflate.
    assert_eq!(
        fault_of(true, pmd, vec![frame(0xc1, &[0xff, 0xff, 0xff, 0xff])]).await,
        p
    );
    // A message that inflates past max_message_bytes is a limit fault.
    let bomb = deflate(
        &mut Compress::new(Compression::new(9), false),
        &[0u8; 1 << 20],
    );
    assert!(bomb.len() < 10_000);
    assert_eq!(
        fault_of(true, pmd, vec![frame(0xc1, &bomb)]).await,
        Some(ErrorKind::Limit)
    );
    // Without compression asked for, nothing is offered and plain frames
    // still arrive.
    let (spec, server) = peer(None, frame(0x81, b"plain"), vec![CLOSE_1000.to_vec()]).await;
    let (sink, err, _) = drive(&spec).await;
    assert_eq!((sink.messages, err), (vec!["plain".to_string()], None));
    let seen = server.await.unwrap();
    assert!(!seen.request.contains("sec-websocket-extensions"));
}

#[tokio::test]
async fn frames_split_across_reads_are_reassembled_before_inflating() {
    // Incompressible bytes (a 20 KB message spans many reads) between
    // small messages, the whole stream cut into 997-byte pieces and the
    // first piece sent with the 101.
    let mut x: u32 = 1;
    let noisy: String = (0..20_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from(b'!' + ((x >> 16) % 90) as u8)
        })
        .collect();
    let msgs = vec![b"a".to_vec(), noisy.into_bytes(), b"b".to_vec()];
    let mut z = Compress::new(Compression::new(6), false);
    let mut stream: Vec<u8> = msgs
        .iter()
        .flat_map(|m| frame(0xc1, &deflate(&mut z, m)))
        .collect();
    stream.extend_from_slice(&CLOSE_1000);
    let mut pieces: Vec<Vec<u8>> = stream.chunks(997).map(<[u8]>::to_vec).collect();
    let first = pieces.remove(0);
    let (mut spec, _server) = peer(Some("permessage-deflate"), first, pieces).await;
    spec.params.compression = true;
    let (sink, err, _) = drive(&spec).await;
    assert_eq!(err, None, "{:?}", sink.faults);
    let want: Vec<String> = msgs
        .into_iter()
        .map(|m| String::from_utf8(m).unwrap())
        .collect();
    assert!(sink.messages == want, "{} messages", sink.messages.len());
}
