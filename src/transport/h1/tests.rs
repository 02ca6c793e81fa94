//! The client against scripted responses: every framing, bad heads and
//! bodies as faults of their kind, buffer growth, and the header checks.

use super::head::content_length;
use super::*;
use crate::fault::ErrorKind;

#[test]
fn serializes_a_request() {
    let r = serialize(
        &http::Method::POST,
        "/a?b=1",
        "h:1",
        &[(
            http::HeaderName::from_static("x-k"),
            http::HeaderValue::from_static("v"),
        )],
        true,
        b"hi",
    );
    assert_eq!(
        String::from_utf8(r).unwrap(),
        "POST /a?b=1 HTTP/1.1\r\nhost: h:1\r\nx-k: v\r\nconnection: close\r\ncontent-length: 2\r\n\r\nhi"
    );
    let g = serialize(&http::Method::GET, "/", "h", &[], false, b"");
    assert_eq!(
        String::from_utf8(g).unwrap(),
        "GET / HTTP/1.1\r\nhost: h\r\n\r\n"
    );
    // A scenario's Host replaces the authority, once.
    let v = serialize(
        &http::Method::GET,
        "/",
        "127.0.0.1:1",
        &[(
            http::header::HOST,
            http::HeaderValue::from_static("example.com"),
        )],
        false,
        b"",
    );
    assert_eq!(
        String::from_utf8(v).unwrap(),
        "GET / HTTP/1.1\r\nhost: example.com\r\n\r\n"
    );
}

/// A real server on a loopback socket answering each request with the
/// next scripted response; returns the client side.
async fn scripted(responses: Vec<&'static [u8]>) -> H1 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        for r in responses {
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    return;
                }
                got.extend_from_slice(&buf[..n]);
            }
            // Written in two parts, so the client parses across reads.
            let (a, b) = r.split_at(r.len() / 2);
            s.write_all(a).await.unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            s.write_all(b).await.unwrap();
        }
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let counted = crate::net::Counting::new(tcp, Default::default());
    H1::new(Stream::Plain(counted), 65536)
}

#[tokio::test]
async fn reads_every_framing_on_one_connection() {
    let mut c = scripted(vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nT: 1\r\n\r\n",
        b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    ])
    .await;
    let req = serialize(&http::Method::GET, "/", "h", &[], false, b"");
    let a = c.exchange(&req, false).await.unwrap();
    assert_eq!(a.status, 200);
    let a = c.exchange(&req, false).await.unwrap();
    assert_eq!(a.status, 201);
    let a = c.exchange(&req, false).await.unwrap();
    assert_eq!(
        (a.status, a.retry_after),
        (429, Some(Duration::from_secs(7)))
    );
    assert_eq!(c.exchange(&req, false).await.unwrap().status, 204);
    assert!(!c.is_closed());
    assert_eq!(c.exchange(&req, false).await.unwrap().status, 200);
    assert!(c.is_closed());
}

#[tokio::test]
async fn bad_responses_are_faults_of_their_kind() {
    let req = serialize(&http::Method::GET, "/", "h", &[], false, b"");
    let mut c = scripted(vec![b"NOT HTTP AT ALL\r\n\r\n"]).await;
    assert_eq!(
        c.exchange(&req, false).await.unwrap_err().kind,
        ErrorKind::Protocol
    );
    let mut c = scripted(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"]).await;
    assert_eq!(
        c.exchange(&req, false).await.unwrap_err().kind,
        ErrorKind::Reset
    );
    let mut c = scripted(vec![
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ])
    .await;
    assert_eq!(
        c.exchange(&req, false).await.unwrap_err().kind,
        ErrorKind::Protocol
    );
    // A chunk size that would overflow, and signed numbers.
    for bad in [
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc",
    ] {
        let mut c = scripted(vec![bad]).await;
        assert_eq!(
            c.exchange(&req, false).await.unwrap_err().kind,
            ErrorKind::Protocol
        );
    }
}

/// Reads a streaming body to its end, or to its fault.
async fn body_of(c: &mut H1) -> Result<Vec<u8>, Fault> {
    let mut got = Vec::new();
    while let Some(d) = c.body_data().await? {
        got.extend_from_slice(d);
    }
    Ok(got)
}

#[tokio::test]
async fn streams_every_framing() {
    let req = serialize(&http::Method::GET, "/", "h", &[], false, b"");
    let mut c = scripted(vec![
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ndata:\r\n4;e=1\r\n x\n\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end",
    ])
    .await;
    let head = c.begin(&req).await.unwrap();
    assert_eq!(head.answer.status, 200);
    assert_eq!(
        head.headers.get(http::header::CONTENT_TYPE).unwrap(),
        "text/event-stream"
    );
    assert_eq!(body_of(&mut c).await.unwrap(), b"data: x\n\n");
    let head = c.begin(&req).await.unwrap();
    assert_eq!(head.headers.len(), 1);
    assert_eq!(body_of(&mut c).await.unwrap(), b"abcdef");
    c.begin(&req).await.unwrap();
    assert_eq!(body_of(&mut c).await.unwrap(), b"to the end");
    assert!(c.is_closed());
    // Chunked but not last: the body runs to the close, and
    // Transfer-Encoding wins over Content-Length.
    let mut c = scripted(vec![
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\nContent-Length: 3\r\n\r\n3\r\nraw",
    ])
    .await;
    c.begin(&req).await.unwrap();
    assert_eq!(body_of(&mut c).await.unwrap(), b"3\r\nraw");
}

#[tokio::test]
async fn a_stream_cut_short_is_a_reset_and_bad_chunks_a_protocol_fault() {
    let req = serialize(&http::Method::GET, "/", "h", &[], false, b"");
    let mut c = scripted(vec![
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    ])
    .await;
    c.begin(&req).await.unwrap();
    assert_eq!(body_of(&mut c).await.unwrap_err().kind, ErrorKind::Reset);
    let mut c = scripted(vec![
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
    ])
    .await;
    c.begin(&req).await.unwrap();
    assert_eq!(body_of(&mut c).await.unwrap_err().kind, ErrorKind::Protocol);
}

#[tokio::test]
async fn a_long_head_grows_the_stream_buffer_then_it_shrinks() {
    let req = serialize(&http::Method::GET, "/", "h", &[], false, b"");
    let long: &'static [u8] = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\nX-Pad: {}\r\nContent-Length: 2\r\n\r\nok",
            "p".repeat(20_000)
        )
        .into_bytes()
        .into_boxed_slice(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = s.read(&mut buf).await.unwrap();
        s.write_all(long).await.unwrap();
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let counted = crate::net::Counting::new(tcp, Default::default());
    let mut c = H1::with_chunk(Stream::Plain(counted), 65536, STREAM_CHUNK);
    c.begin(&req).await.unwrap();
    assert!(c.buf.capacity() <= 2 * STREAM_CHUNK, "{}", c.buf.capacity());
    assert_eq!(body_of(&mut c).await.unwrap(), b"ok");
}

#[test]
fn tokens() {
    assert!(contains_token(b"gzip, Chunked", b"chunked"));
    assert!(!contains_token(b"keep-alive", b"close"));
}

#[test]
fn content_length_lists_of_one_value_are_one_length() {
    assert_eq!(content_length(b"42").ok(), Some(42));
    assert_eq!(content_length(b" 42 , 42,42 ").ok(), Some(42));
    for bad in [&b"42, 43"[..], b"", b"4 2", b"+42", b"-1", b"42,", b"0x10"] {
        let f = content_length(bad).err();
        assert!(f.is_some_and(|f| f.kind == ErrorKind::Protocol), "{bad:?}");
    }
}
