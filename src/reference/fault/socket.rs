//! Faults below HTTP: the listener whose sockets can be armed by a request
//! to reset, stall, go half-open, trickle the response head or answer with
//! bytes that are not HTTP.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// How long a half-open connection is held before the target lets go:
/// bounded so a long soak does not pile them up.
const HALF_OPEN_HOLD: Duration = Duration::from_secs(60);
/// Pause between bytes of a slow response head.
const SLOW_HEADER_STEP: Duration = Duration::from_millis(200);

/// What a request arms on its connection's socket.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arm {
    ResetAfter(u64),
    Stall(Duration),
    HalfOpen,
    SlowHead,
    Garbage,
}

/// A connection's fault switch, shared by its socket and its requests.
#[derive(Debug, Default)]
pub struct ConnFault {
    armed: AtomicBool,
    arm: Mutex<Option<Arm>>,
}

impl ConnFault {
    pub(super) fn set(&self, arm: Arm) {
        *self.arm.lock().unwrap_or_else(|p| p.into_inner()) = Some(arm);
        self.armed.store(true, Ordering::Release);
    }

    fn take(&self) -> Option<Arm> {
        if !self.armed.swap(false, Ordering::Acquire) {
            return None;
        }
        self.arm.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// The connection handle requests see (axum connect info).
#[derive(Debug, Clone)]
pub struct FaultHandle(pub(super) Arc<ConnFault>);

impl Connected<IncomingStream<'_, FaultListener>> for FaultHandle {
    fn connect_info(stream: IncomingStream<'_, FaultListener>) -> Self {
        FaultHandle(stream.io().conn.clone())
    }
}

/// A listener whose sockets can be told to misbehave.
pub struct FaultListener {
    /// The real listener.
    pub inner: TcpListener,
}

impl axum::serve::Listener for FaultListener {
    type Io = FaultyIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((tcp, addr)) => {
                    let _ = tcp.set_nodelay(true);
                    let io = FaultyIo {
                        tcp,
                        conn: Arc::default(),
                        state: IoState::Normal,
                    };
                    return (io, addr);
                }
                // Out of descriptors and the like: wait, as axum does.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

enum IoState {
    Normal,
    ResetAfter(u64),
    Stalling(Pin<Box<tokio::time::Sleep>>),
    HalfOpen(Pin<Box<tokio::time::Sleep>>),
    SlowHead {
        tail: u32,
        pause: Option<Pin<Box<tokio::time::Sleep>>>,
    },
    Garbage(usize),
    Dead,
}

/// Not HTTP: a status code of letters (a complete head, so the client
/// fails on parsing, not on a short read).
const GARBAGE: &[u8] = b"HTTP/1.1 2OO 0K\r\nContent-Length: banana\r\n\r\n\x00\xff not http";

/// A server socket that enacts the fault its current request armed.
pub struct FaultyIo {
    tcp: TcpStream,
    conn: Arc<ConnFault>,
    state: IoState,
}

impl AsyncRead for FaultyIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultyIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        if let Some(arm) = me.conn.take() {
            me.state = match arm {
                Arm::ResetAfter(n) => IoState::ResetAfter(n),
                Arm::Stall(d) => IoState::Stalling(Box::pin(tokio::time::sleep(d))),
                Arm::HalfOpen => IoState::HalfOpen(Box::pin(tokio::time::sleep(HALF_OPEN_HOLD))),
                Arm::SlowHead => IoState::SlowHead {
                    tail: 0,
                    pause: None,
                },
                Arm::Garbage => IoState::Garbage(0),
            };
        }
        loop {
            match &mut me.state {
                IoState::Normal => return Pin::new(&mut me.tcp).poll_write(cx, buf),
                IoState::ResetAfter(0) => {
                    // Zero linger: closing sends RST instead of FIN.
                    let _ = me.tcp.set_zero_linger();
                    me.state = IoState::Dead;
                    return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
                }
                IoState::ResetAfter(left) => {
                    let n = buf.len().min(*left as usize);
                    let r = ready!(Pin::new(&mut me.tcp).poll_write(cx, &buf[..n]));
                    if let Ok(w) = &r {
                        *left -= *w as u64;
                    }
                    return Poll::Ready(r);
                }
                IoState::Stalling(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    me.state = IoState::Normal;
                }
                IoState::HalfOpen(sleep) => {
                    // Nothing is written, nothing is closed: the client
                    // must notice on its own.
                    ready!(sleep.as_mut().poll(cx));
                    let _ = me.tcp.set_zero_linger();
                    me.state = IoState::Dead;
                }
                IoState::SlowHead { tail, pause } => {
                    if let Some(p) = pause {
                        ready!(p.as_mut().poll(cx));
                        *pause = None;
                    }
                    if buf.is_empty() {
                        return Poll::Ready(Ok(0));
                    }
                    let r = ready!(Pin::new(&mut me.tcp).poll_write(cx, &buf[..1]));
                    if let Ok(1) = r {
                        *tail = (*tail << 8) | u32::from(buf[0]);
                        if *tail == u32::from_be_bytes(*b"\r\n\r\n") {
                            me.state = IoState::Normal;
                        } else {
                            *pause = Some(Box::pin(tokio::time::sleep(SLOW_HEADER_STEP)));
                        }
                    }
                    return Poll::Ready(r);
                }
                IoState::Garbage(at) => {
                    if *at >= GARBAGE.len() {
                        me.state = IoState::Dead;
                        continue;
                    }
                    let w = ready!(Pin::new(&mut me.tcp).poll_write(cx, &GARBAGE[*at..]))?;
                    *at += w;
                }
                IoState::Dead => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let IoState::HalfOpen(_) = self.state {
            // Never a FIN while half-open.
            return Poll::Pending;
        }
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
