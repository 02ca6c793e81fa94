//! Hostile peers: garbage lines, garbage frames, broken HTTP. Each transport
//! must report a fault (or skip the bad part) and never panic.

mod support;

use std::sync::Arc;
use std::time::Instant;

use stampede::fault::ErrorKind;
use stampede::net::IoCounters;
use stampede::transport::long_poll::LongPoll;
use stampede::transport::ndjson::Ndjson;
use stampede::transport::poll::Poll;
use stampede::transport::sse::Sse;
use stampede::transport::websocket::WebSocket;
use stampede::transport::{Step, Transport};
use support::raw::{one_shot, Collect};

/// Opens `T` and reads until the session ends or fails; returns what the
/// sink saw plus the open error, if any.
async fn exercise<T: Transport>(
    path: &str,
    head: impl AsRef<[u8]> + Send + 'static,
    chunks: Vec<&'static [u8]>,
) -> (Collect, Option<ErrorKind>) {
    let (spec, _server) = one_shot(path, head, chunks).await;
    let mut sink = Collect::default();
    let io = Arc::new(IoCounters::default());
    let mut s = match T::open(&spec, &io, None, &mut sink).await {
        Ok(s) => s,
        Err(f) => return (sink, Some(f.kind)),
    };
    for _ in 0..20 {
        match s.next(Instant::now(), &mut sink).await {
            Ok(Step::Continue) => {}
            Ok(Step::Ended) => return (sink, None),
            Err(f) => return (sink, Some(f.kind)),
        }
    }
    (sink, None)
}

const NDJSON: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn ndjson_skips_bad_lines_and_keeps_good_ones() {
    let (sink, err) = exercise::<Ndjson>(
        "/stream/x",
        NDJSON,
        vec![
            b"{\"id\":1,\"data\":\"one\"}\nnot json\n",
            b"{\"id\":\"x\"}\n\xff\xfe\n{\"id\":2,\"da",
            b"ta\":\"two\"}\n",
        ],
    )
    .await;
    assert_eq!(err, None);
    assert_eq!(sink.messages, vec!["one", "two"]);
    assert_eq!(sink.faults.len(), 3, "{:?}", sink.faults);
    assert!(sink.faults.iter().all(|f| f.kind == ErrorKind::Protocol));
}

#[tokio::test]
async fn websocket_rejects_a_bad_handshake_and_bad_frames() {
    // Not a 101: a status fault.
    let (_, err) = exercise::<WebSocket>(
        "/ws/x",
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        vec![],
    )
    .await;
    assert_eq!(err, Some(ErrorKind::Status));
    // A 101 without a valid accept key: a protocol fault.
    let (_, err) = exercise::<WebSocket>(
        "/ws/x",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bogus\r\n\r\n",
        vec![],
    )
    .await;
    assert_eq!(err, Some(ErrorKind::Protocol));
    // A good upgrade whose first frame comes in the same packet as the
    // 101: the frame is not lost; a normal close ends the session.
    let (sink, err) = exercise::<WebSocket>(
        "/ws/x",
        &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n\x81\x02hi"[..],
        vec![b"\x88\x02\x03\xe8"],
    )
    .await;
    assert_eq!((sink.messages, err), (vec!["hi".to_string()], None));
    // A 101 in HTTP/1.0 (which cannot upgrade): a protocol fault.
    let (_, err) = exercise::<WebSocket>(
        "/ws/x",
        "HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n",
        vec![],
    )
    .await;
    assert_eq!(err, Some(ErrorKind::Protocol));
}

#[tokio::test]
async fn polling_reports_bad_status_and_bad_http() {
    let (_, err) = exercise::<Poll>(
        "/poll/x",
        "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
        vec![],
    )
    .await;
    assert_eq!(err, Some(ErrorKind::Status));
    let (_, err) = exercise::<LongPoll>("/lp/x", "NOT HTTP AT ALL\r\n\r\n", vec![]).await;
    assert_eq!(err, Some(ErrorKind::Protocol));
    // A head response without a cursor cannot start a subscription.
    let (_, err) = exercise::<Poll>("/poll/x", "HTTP/1.1 204 No Content\r\n\r\n", vec![]).await;
    assert_eq!(err, Some(ErrorKind::Protocol));
    // Connection closed mid-body.
    let (_, err) = exercise::<Poll>(
        "/poll/x",
        "HTTP/1.1 200 OK\r\nX-Cursor: 1\r\nContent-Length: 100\r\n\r\nshort",
        vec![],
    )
    .await;
    assert_eq!(err, Some(ErrorKind::Reset));
}

/// The request a transport sends with a profile `Host` header.
async fn request_with_host<T: Transport>(path: &str) -> String {
    let (mut spec, server) = one_shot(
        path,
        "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
        vec![],
    )
    .await;
    spec.headers = Arc::new([(
        http::header::HOST,
        http::HeaderValue::from_static("example.com"),
    )]);
    let mut sink = Collect::default();
    let io = Arc::new(IoCounters::default());
    let _ = T::open(&spec, &io, None, &mut sink).await;
    server.await.unwrap()
}

#[tokio::test]
async fn a_host_header_replaces_the_authority_once() {
    for request in [
        request_with_host::<Poll>("/poll/x").await,
        request_with_host::<Sse>("/sse/x").await,
        request_with_host::<WebSocket>("/ws/x").await,
    ] {
        let hosts: Vec<&str> = request
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("host:"))
            .collect();
        assert_eq!(hosts.len(), 1, "{request}");
        assert!(hosts[0].ends_with("example.com"), "{request}");
    }
}
