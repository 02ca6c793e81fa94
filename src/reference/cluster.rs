//! `stampede serve --processes N`: the reference server as N worker
//! processes sharing one port with `SO_REUSEPORT`, so that one target can
//! hold more connections than one process has file descriptors.
//!
//! The kernel spreads connections over the workers, so a publish reaches
//! one worker while the channel's subscribers sit on all of them. Each
//! worker therefore forwards every publish it accepts to its peers (over a
//! private loopback listener, in order, one queue per peer), keeping the
//! event's id, so cursors and `Last-Event-ID` mean the same on every worker.
//!
//! Start-up: the parent binds the port, starts the workers, collects each
//! worker's peer address from its first stdout line, hands every worker the
//! full list on stdin, closes its own listener and prints the URL. Closing
//! a worker's stdin (the parent exiting) stops it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::hub::Hub;
use crate::error::{Error, Result};

/// Publishes queued per peer before the oldest are dropped (counted as
/// `dropped` in `/stats`): a peer that cannot keep up must not grow memory.
const QUEUE: usize = 65_536;

/// One publish to pass on: channel, id, payload.
type Forward = (String, u64, Bytes);

/// Sends every accepted publish on to the other workers.
#[derive(Debug)]
pub struct Forwarder {
    peers: Vec<mpsc::Sender<Forward>>,
}

impl Forwarder {
    /// Starts one sending task per peer; they end with `stop`.
    pub fn start(peers: Vec<SocketAddr>, hub: Arc<Hub>, stop: CancellationToken) -> Forwarder {
        let peers = peers
            .into_iter()
            .map(|addr| {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(send_loop(addr, rx, hub.clone(), stop.clone()));
                tx
            })
            .collect();
        Forwarder { peers }
    }

    /// Queues a publish for every peer.
    pub fn forward(&self, hub: &Hub, channel: &str, id: u64, data: &Bytes) {
        for p in &self.peers {
            if p.try_send((channel.to_string(), id, data.clone())).is_err() {
                hub.dropped(1);
            }
        }
    }
}

/// Posts queued publishes to one peer, in order, over one keep-alive
/// connection (re-opened after a failure).
async fn send_loop(
    addr: SocketAddr,
    mut rx: mpsc::Receiver<Forward>,
    hub: Arc<Hub>,
    stop: CancellationToken,
) {
    let mut conn: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>> = None;
    loop {
        let item = tokio::select! {
            _ = stop.cancelled() => return,
            item = rx.recv() => item,
        };
        let Some((channel, id, data)) = item else {
            return;
        };
        let mut sent = false;
        for _attempt in 0..3 {
            if conn.as_ref().is_none_or(|c| c.is_closed()) {
                conn = open(addr).await;
            }
            let Some(c) = conn.as_mut() else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let req = http::Request::post(format!("/internal/pub/{channel}?id={id}"))
                .header(http::header::HOST, addr.to_string())
                .body(Full::new(data.clone()));
            let Ok(req) = req else { break };
            if c.ready().await.is_ok() {
                if let Ok(resp) = c.send_request(req).await {
                    sent = resp.status().is_success();
                    break;
                }
            }
            conn = None;
        }
        if !sent {
            hub.dropped(1);
        }
    }
}

async fn open(addr: SocketAddr) -> Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let _ = tcp.set_nodelay(true);
    let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(send)
}

/// A started worker: its process and the stdin that keeps it alive.
struct Worker {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    peer: SocketAddr,
}

/// Runs `processes` workers of `exe` on `listen` until `stop`; prints the
/// URL on stdout once every worker serves.
pub async fn serve(
    exe: &Path,
    listen: SocketAddr,
    processes: u32,
    delay: Duration,
    faults: &[String],
    stop: CancellationToken,
) -> Result<()> {
    // Held until the workers have bound, so port 0 resolves once.
    let reserve = super::bind_reuseport(listen)
        .map_err(|e| Error::Usage(format!("cannot listen on {listen}: {e}")))?;
    let addr = reserve
        .local_addr()
        .map_err(|e| Error::Usage(format!("cannot read the bound address: {e}")))?;
    let mut workers = Vec::with_capacity(processes as usize);
    for _ in 0..processes {
        workers.push(start_worker(exe, addr, delay, faults).await?);
    }
    let list = workers
        .iter()
        .map(|w| w.peer.to_string())
        .collect::<Vec<_>>()
        .join(",");
    for w in &mut workers {
        w.stdin
            .write_all(format!("{list}\n").as_bytes())
            .await
            .map_err(|e| Error::TargetStart(format!("a worker stopped at start: {e}")))?;
        let _ = w.stdin.flush().await;
    }
    // Never accepted on: the kernel must not route connections here.
    drop(reserve);
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "http://{addr}");
        let _ = out.flush();
    }
    stop.cancelled().await;
    // Dropping the workers closes their stdin (they stop) and kills them.
    drop(workers);
    Ok(())
}

async fn start_worker(
    exe: &Path,
    addr: SocketAddr,
    delay: Duration,
    faults: &[String],
) -> Result<Worker> {
    let mut child = tokio::process::Command::new(exe)
        .args(["serve", "--worker", "--listen"])
        .arg(addr.to_string())
        .arg(format!("--delay={}us", delay.as_micros()))
        .args(faults.iter().map(|f| format!("--fault={f}")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::TargetStart(format!("{}: {e}", exe.display())))?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| Error::TargetStart("worker without stdin".into()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::TargetStart("worker without stdout".into()))?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
        .await
        .map_err(|_| Error::TargetStart("a worker printed nothing within 15 s".into()))?
        .map_err(|e| Error::TargetStart(e.to_string()))?
        .ok_or_else(|| Error::TargetStart("a worker exited at start".into()))?;
    let peer = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("peer="))
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| Error::TargetStart(format!("unexpected worker line {line:?}")))?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Worker {
        _child: child,
        stdin,
        peer,
    })
}

/// The worker side: serves `listen` (shared) and a private peer listener,
/// learns the peers from stdin, forwards publishes, and stops when stdin
/// closes.
pub async fn worker(
    listen: SocketAddr,
    delay: Duration,
    faults: Option<super::fault::FaultPlan>,
) -> Result<()> {
    let public = super::bind_reuseport(listen)
        .map_err(|e| Error::Usage(format!("cannot listen on {listen}: {e}")))?;
    let private = super::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .map_err(|e| Error::Usage(format!("cannot open the peer listener: {e}")))?;
    let me = private
        .local_addr()
        .map_err(|e| Error::Usage(format!("cannot read the peer address: {e}")))?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "http://{listen} peer={me}");
        let _ = out.flush();
    }
    let stop = CancellationToken::new();
    let (peers_tx, peers_rx) = tokio::sync::oneshot::channel::<Vec<SocketAddr>>();
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut stdin = std::io::stdin().lock();
            let mut first = String::new();
            if stdin.read_line(&mut first).unwrap_or(0) > 0 {
                let peers = first
                    .trim()
                    .split(',')
                    .filter_map(|p| p.parse().ok())
                    .filter(|p| *p != me)
                    .collect();
                let _ = peers_tx.send(peers);
                let _ = std::io::copy(&mut stdin, &mut std::io::sink());
            }
            stop.cancel();
        });
    }
    let peers = tokio::select! {
        p = peers_rx => p.unwrap_or_default(),
        _ = stop.cancelled() => return Ok(()),
    };
    let hub = Arc::new(Hub::with_delay(delay));
    hub.set_forwarder(Forwarder::start(peers, hub.clone(), stop.clone()));
    // Faults are injected on the public port only: peers forward cleanly.
    let faults = faults.map(|p| Arc::new(super::fault::FaultState::new(p, stop.clone())));
    let a = tokio::spawn(super::serve_with_faults(
        public,
        hub.clone(),
        faults,
        stop.clone(),
    ));
    let b = tokio::spawn(super::serve(private, hub, stop.clone()));
    let _ = a.await;
    let _ = b.await;
    Ok(())
}
