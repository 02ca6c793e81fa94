//! A raw TCP peer that answers one connection with exactly the bytes given,
//! and a sink that collects what a transport reports.

use std::time::{Duration, Instant};

use stampede::fault::Fault;
use stampede::transport::{Params, SessionSpec, Sink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

#[derive(Default)]
pub struct Collect {
    pub messages: Vec<String>,
    pub faults: Vec<Fault>,
    /// Heartbeats and other messages that are not data.
    pub controls: usize,
}

impl Sink for Collect {
    fn connected(&mut self, _: Duration) {}
    fn subscribed(&mut self, _: Duration) {}
    fn disconnected(&mut self) {}
    fn message(&mut self, payload: &[u8], _: Instant) {
        self.messages
            .push(String::from_utf8_lossy(payload).into_owned());
    }
    fn request(&mut self, _: stampede::transport::RequestSample) {}
    fn server_timeout(&mut self) {}
    fn control(&mut self) {
        self.controls += 1;
    }
    fn fault(&mut self, f: Fault) {
        self.faults.push(f);
    }
}

/// Serves one connection: reads the request head, answers with `head` and
/// then writes `chunks` with short pauses so they arrive separately.
/// `{accept}` in `head` becomes the WebSocket accept key for the request's
/// key, and bytes after the head go out in the same write.
pub async fn one_shot<H: AsRef<[u8]> + Send + 'static>(
    path: &str,
    head: H,
    chunks: Vec<&'static [u8]>,
) -> (SessionSpec, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&req).into_owned();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("sec-websocket-key: "))
            .unwrap_or_default();
        let accept = derive_accept_key(key.trim().as_bytes());
        let head = head.as_ref();
        let mut out = Vec::new();
        match head.windows(8).position(|w| w == b"{accept}") {
            Some(i) => {
                out.extend_from_slice(&head[..i]);
                out.extend_from_slice(accept.as_bytes());
                out.extend_from_slice(&head[i + 8..]);
            }
            None => out.extend_from_slice(head),
        }
        s.write_all(&out).await.unwrap();
        for c in chunks {
            s.write_all(c).await.unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        String::from_utf8_lossy(&req).into_owned()
    });
    (spec_for(addr, path), task)
}

/// A session aimed at `addr` with the built-in profile and default limits.
pub fn spec_for(addr: std::net::SocketAddr, path: &str) -> SessionSpec {
    SessionSpec {
        addr,
        authority: addr.to_string(),
        path: path.into(),
        channel: "c".into(),
        group: "g".into(),
        profile: std::sync::Arc::new(stampede::profile::builtin().sections),
        extractor: std::sync::Arc::new(stampede::profile::builtin().extractor()),
        headers: std::sync::Arc::new([]),
        params: Params {
            keep_alive: true,
            hold_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            ping_interval: None,
            compression: false,
            request: None,
            message_bytes: None,
            h2: None,
            engine: None,
            rpc: None,
            limits: Default::default(),
            tls: None,
        },
        connect_timeout: Duration::from_secs(2),
        sources: Default::default(),
        script: None,
    }
}
