//! The reference server: a real HTTP server (axum) that offers every
//! transport on the same channels. `stampede serve` runs it alone; `run`
//! starts it as a child process of the same binary, so its CPU and memory are
//! measured apart from the load generator's.

pub mod cluster;
pub mod fault;
pub mod hub;
pub mod metrics;
pub mod rpc;
pub mod server;
pub mod socketio;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::io::AsyncBufReadExt;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// Accept backlog: tokio's default of 128 overflows under connection ramps
/// and turns into 1 s SYN retransmits counted as connect time.
const BACKLOG: u32 = 4096;

/// Binds a listener with a deep accept backlog.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Binds a listener that shares its port with other processes
/// (`SO_REUSEPORT`): the workers of `serve --processes N`.
pub fn bind_reuseport(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves the reference server on `listener` until `stop`.
pub async fn serve(listener: TcpListener, hub: Arc<hub::Hub>, stop: CancellationToken) {
    serve_with_faults(listener, hub, None, stop).await
}

/// Serves the reference server, injecting `faults` when given (see
/// [`fault`]), until `stop`.
pub async fn serve_with_faults(
    listener: TcpListener,
    hub: Arc<hub::Hub>,
    faults: Option<Arc<fault::FaultState>>,
    stop: CancellationToken,
) {
    let shutdown = stop.clone().cancelled_owned();
    let task = match faults {
        // The plain path stays as it was: no wrapper on the socket.
        None => {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let server =
                axum::serve(listener, server::router(hub)).with_graceful_shutdown(shutdown);
            tokio::spawn(async move {
                let _ = server.await;
            })
        }
        Some(state) => {
            let counts = state.clone();
            let app = server::router(hub)
                .layer(axum::middleware::from_fn_with_state(state, fault::inject))
                .route(
                    "/stats/faults",
                    axum::routing::get(move || async move { axum::Json(counts.injected()) }),
                );
            let server = axum::serve(
                fault::FaultListener { inner: listener },
                app.into_make_service_with_connect_info::<fault::FaultHandle>(),
            )
            .with_graceful_shutdown(shutdown);
            tokio::spawn(async move {
                let _ = server.await;
            })
        }
    };
    stop.cancelled().await;
    // Streams never end by themselves: give graceful shutdown a moment,
    // then cut the rest.
    let abort = task.abort_handle();
    if tokio::time::timeout(Duration::from_millis(500), task)
        .await
        .is_err()
    {
        abort.abort();
    }
}

/// The reference server running as a child process.
#[derive(Debug)]
pub struct ReferenceChild {
    child: tokio::process::Child,
    /// Its stdin: the child exits when this closes, even if we are killed.
    _stdin: Option<tokio::process::ChildStdin>,
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// Bound address.
    pub addr: SocketAddr,
    /// Process id.
    pub pid: i32,
}

impl ReferenceChild {
    /// Starts `exe serve` on 127.0.0.1:0 (responses delayed by `delay`) and
    /// reads the URL it prints.
    pub async fn spawn(exe: &Path, delay: Duration) -> Result<ReferenceChild> {
        Self::spawn_with(exe, delay, Duration::ZERO, None, 1).await
    }

    /// As [`ReferenceChild::spawn`], with publishes delayed by `cost_per_conn`
    /// per open stream, injecting `faults` when given, as `processes`
    /// workers sharing one port.
    pub async fn spawn_with(
        exe: &Path,
        delay: Duration,
        cost_per_conn: Duration,
        faults: Option<&fault::FaultPlan>,
        processes: u32,
    ) -> Result<ReferenceChild> {
        let mut command = tokio::process::Command::new(exe);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--exit-with-stdin"])
            .arg(format!("--delay={}us", delay.as_micros()))
            .arg(format!("--cost-per-conn={}us", cost_per_conn.as_micros()))
            .arg(format!("--processes={}", processes.max(1)));
        if let Some(f) = faults.filter(|f| !f.is_empty()) {
            command.arg(format!("--fault={}", f.to_spec()));
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Own process group: a terminal Ctrl-C reaches only us, and we
            // stop the target after the results are written.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::TargetStart(format!("{}: {e}", exe.display())))?;
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::TargetStart("no stdout".into()))?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
            .await
            .map_err(|_| Error::TargetStart("it printed no URL within 15 s".into()))?
            .map_err(|e| Error::TargetStart(e.to_string()))?
            .ok_or_else(|| Error::TargetStart("it exited before printing its URL".into()))?;
        let url = line.trim().to_string();
        let addr = url
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| Error::TargetStart(format!("unexpected first line {url:?}")))?;
        // Keep reading stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ReferenceChild {
            _stdin: child.stdin.take(),
            child,
            url,
            addr,
            pid,
        })
    }

    /// Watches the child: if it exits before `done`, the run stops with a
    /// fatal reason; at `done` it is stopped. The task ends either way.
    pub fn watch(
        mut self,
        shutdown: crate::shutdown::Shutdown,
        done: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            // Held for the task's life: closing it tells the child to exit.
            let _stdin = self._stdin.take();
            tokio::select! {
                status = self.child.wait() => {
                    let how = match status {
                        Ok(s) => s.to_string(),
                        Err(e) => e.to_string(),
                    };
                    shutdown.stop(crate::shutdown::StopReason::Fatal(format!(
                        "the built-in target (pid {}) exited mid-run: {how}",
                        self.pid
                    )));
                }
                _ = done.cancelled() => {
                    let _ = self.child.start_kill();
                    let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
                }
            }
        })
    }
}
