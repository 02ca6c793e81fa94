//! The SSE transport against a raw TCP server sending awkward but valid
//! event streams (and garbage), through the real HTTP client path. Checks the
//! WHATWG rules: multi-line data, ids, retry, comments, CR / LF / CRLF line
//! ends, a BOM, events split across chunks.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use stampede::net::IoCounters;
use stampede::transport::sse::Sse;
use stampede::transport::{SessionSpec, Step, Transport};
use support::raw::{one_shot, Collect};

const HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";

async fn drain(
    spec: &SessionSpec,
    cursor: Option<String>,
) -> (Collect, Option<String>, Option<Duration>) {
    let mut sink = Collect::default();
    let io = Arc::new(IoCounters::default());
    let mut s = Sse::open(spec, &io, cursor, &mut sink).await.expect("open");
    loop {
        match s.next(Instant::now(), &mut sink).await {
            Ok(Step::Continue) => {}
            Ok(Step::Ended) => break,
            Err(f) => {
                sink.faults.push(f);
                break;
            }
        }
    }
    (sink, s.cursor(), s.retry_hint())
}

#[tokio::test]
async fn whatwg_line_endings_fields_and_chunking() {
    let (spec, server) = one_shot(
        "/sse/x",
        HEAD,
        vec![
            b"\xEF\xBB\xBF: comment first\n",
            b"data: one\n\n",
            b"id: 7\r\ndata: two\r\ndata: lines\r\n\r\n",
            b"data: three\r\rdata:four-no-space\n\n",
            b"retry: 1500\nevent: custom\nda",
            b"ta: split\n",
            b"\ndata: x\nid: 9\n\n",
            b"retry: +100\nid: has\0nul\ndata: y\n\n",
            b"data: unterminated at close",
        ],
    )
    .await;
    let (sink, cursor, retry) = drain(&spec, Some("5".into())).await;
    let req = server.await.unwrap();
    assert!(
        req.to_ascii_lowercase().contains("last-event-id: 5"),
        "{req}"
    );
    assert!(req
        .to_ascii_lowercase()
        .contains("accept: text/event-stream"));
    assert_eq!(
        sink.messages,
        vec!["one", "two\nlines", "three", "four-no-space", "x", "y"]
    );
    // `event: custom` is not what a browser's onmessage sees: a control
    // message, not data (a profile's `events` may name it as data).
    assert_eq!(sink.controls, 1);
    assert!(sink.faults.is_empty(), "{:?}", sink.faults);
    // An id containing NUL is ignored; "retry: +100" is not a number.
    assert_eq!(cursor.as_deref(), Some("9"));
    assert_eq!(retry, Some(Duration::from_millis(1500)));
}

#[tokio::test]
async fn wrong_content_type_is_a_protocol_fault() {
    let (spec, _server) = one_shot(
        "/sse/x",
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\n",
        vec![b"hi"],
    )
    .await;
    let mut sink = Collect::default();
    let io = Arc::new(IoCounters::default());
    let err = Sse::open(&spec, &io, None, &mut sink)
        .await
        .err()
        .expect("must fail");
    assert_eq!(err.kind, stampede::fault::ErrorKind::Protocol);
}

#[tokio::test]
async fn garbage_bytes_never_panic() {
    let (spec, _server) = one_shot(
        "/sse/x",
        HEAD,
        vec![
            b"\xff\xfe\x00garbage\r\n\r\n:\n\n\n",
            b"data\n\ndata:\xc3\x28\n\n",
        ],
    )
    .await;
    let (sink, _, _) = drain(&spec, None).await;
    // "data" alone is an empty data line: an empty event is not dispatched
    // twice; invalid UTF-8 becomes U+FFFD.
    assert!(
        sink.messages.iter().any(|m| m.contains('\u{FFFD}')),
        "{:?}",
        sink.messages
    );
}
