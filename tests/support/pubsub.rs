//! A small HTTP/1.1 pub/sub peer on 127.0.0.1:0 that behaves like the
//! servers in `../shared/cases/`: `POST /pub/{channel}` fans the body out to
//! every subscriber and keeps it in a log; each test gives the subscriber
//! side as a handler that writes whatever odd-but-real bytes it wants.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// What every connection shares: the fan-out and the publish log.
pub struct Hub {
    pub tx: broadcast::Sender<Vec<u8>>,
    pub log: Mutex<Vec<Vec<u8>>>,
}

/// One accepted connection, with its read buffer.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    pub hub: Arc<Hub>,
}

impl Conn {
    /// The next request; `None` at EOF.
    pub async fn read_req(&mut self) -> Option<Req> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while self.buf.len() < len {
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = self.buf.drain(..len).collect();
        Some(Req {
            method,
            path,
            headers,
            body,
        })
    }

    /// Answers a publish: fans it out, logs it, replies 200.
    pub async fn publish(&mut self, req: &Req) -> bool {
        self.hub.log.lock().unwrap().push(req.body.clone());
        let _ = self.hub.tx.send(req.body.clone());
        self.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .await
    }

    /// Writes and flushes; false once the peer is gone.
    pub async fn write(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok() && self.stream.flush().await.is_ok()
    }

    /// Answers a WebSocket upgrade request and speaks WebSocket on this
    /// connection from then on (bytes the client sent after its request
    /// are kept).
    #[allow(dead_code)]
    pub async fn upgrade(
        mut self,
        req: &Req,
        subprotocol: Option<&str>,
    ) -> Option<tokio_tungstenite::WebSocketStream<TcpStream>> {
        let key = req.headers.get("sec-websocket-key")?;
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let proto = subprotocol
            .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
            .unwrap_or_default();
        let reply = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{proto}\r\n"
        );
        if !self.write(reply.as_bytes()).await {
            return None;
        }
        let rest = std::mem::take(&mut self.buf);
        Some(
            tokio_tungstenite::WebSocketStream::from_partially_read(
                self.stream,
                rest,
                tokio_tungstenite::tungstenite::protocol::Role::Server,
                None,
            )
            .await,
        )
    }

    /// A subscription to everything published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Vec<u8>> {
        self.hub.tx.subscribe()
    }

    /// Serves publishes on this connection until it closes; returns the
    /// first request that is not a publish.
    pub async fn publishes_until_other(&mut self) -> Option<Req> {
        loop {
            let req = self.read_req().await?;
            if req.method == "POST" && req.path.starts_with("/pub/") {
                if !self.publish(&req).await {
                    return None;
                }
            } else {
                return Some(req);
            }
        }
    }
}

type Handler = Arc<dyn Fn(Conn, Req) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The peer: publishes are handled here; any other request goes, with its
/// connection, to the test's handler.
pub struct PubSub {
    pub url: String,
    pub hub: Arc<Hub>,
    stop: CancellationToken,
}

impl PubSub {
    pub async fn start<F, Fut>(handler: F) -> PubSub
    where
        F: Fn(Conn, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |c, r| Box::pin(handler(c, r)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hub = Arc::new(Hub {
            tx: broadcast::channel(1 << 14).0,
            log: Mutex::new(Vec::new()),
        });
        let stop = CancellationToken::new();
        let (h, s) = (hub.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = s.cancelled() => break,
                    a = listener.accept() => match a { Ok((st, _)) => st, Err(_) => continue },
                };
                let _ = stream.set_nodelay(true);
                let mut conn = Conn {
                    stream,
                    buf: Vec::new(),
                    hub: h.clone(),
                };
                let (handler, s2) = (handler.clone(), s.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = s2.cancelled() => {}
                        _ = async move {
                            if let Some(req) = conn.publishes_until_other().await {
                                handler(conn, req).await;
                            }
                        } => {}
                    }
                });
            }
        });
        PubSub { url, hub, stop }
    }

    /// Runs scenario `text` (no `target` line) against this peer, quietly,
    /// into a fresh folder tagged `tag`.
    pub async fn run(&self, text: &str, tag: &str) -> (stampede::run::RunOutcome, super::TempDir) {
        let p = super::plan(&format!("target = \"{}\"\n{text}", self.url));
        let dir = super::TempDir::new(tag);
        let out = super::run_plan(p, dir.path(), stampede::shutdown::Shutdown::new()).await;
        (out, dir)
    }

    /// Events published so far.
    pub fn published(&self) -> usize {
        self.hub.log.lock().unwrap().len()
    }
}

impl Drop for PubSub {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Streams to one subscriber: `head`, then `frame(event)` for each
/// published event and `idle_frame` after every 100 ms without one, until
/// the client leaves.
pub async fn stream_with_keepalive(
    mut c: Conn,
    head: &[u8],
    idle_frame: &[u8],
    frame: impl Fn(&[u8]) -> Vec<u8>,
) {
    let mut rx = c.subscribe();
    if !c.write(head).await {
        return;
    }
    loop {
        let bytes = match next_or_idle(&mut rx, Duration::from_millis(100)).await {
            Ok(Some(m)) => frame(&m),
            Ok(None) => idle_frame.to_vec(),
            Err(()) => return,
        };
        if !c.write(&bytes).await {
            return;
        }
    }
}

/// Waits for the next published event, or `None` after `idle` without one
/// (the handler then sends its keep-alive).
pub async fn next_or_idle(
    rx: &mut broadcast::Receiver<Vec<u8>>,
    idle: Duration,
) -> Result<Option<Vec<u8>>, ()> {
    match tokio::time::timeout(idle, rx.recv()).await {
        Ok(Ok(m)) => Ok(Some(m)),
        Ok(Err(broadcast::error::RecvError::Lagged(_))) => Err(()),
        Ok(Err(broadcast::error::RecvError::Closed)) => Err(()),
        Err(_) => Ok(None),
    }
}

/// A scenario against `url` with one group; `group` and `profile` are TOML
/// lines added to the group table and the `[profile]` table.
pub fn scenario(
    transport: &str,
    clients: u32,
    duration: &str,
    group: &str,
    profile: &str,
) -> String {
    format!(
        r#"name = "case"
duration = "{duration}"
drain = "1s"
[publisher]
rate = 10
[[groups]]
transport = "{transport}"
clients = {clients}
{group}
[profile]
{profile}
[profile.publish]
url = "/pub/{{channel}}"
"#
    )
}
