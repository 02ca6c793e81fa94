//! Faults above HTTP: the middleware that rolls for each request and arms
//! the socket or builds the misbehaving answer (bad status, oversized or
//! malformed SSE, raw WebSocket frames).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::socket::{Arm, FaultHandle};
use super::{FaultKind, FaultState, Route};
use crate::rng::Rng;

/// The middleware: rolls the dice for each fault-eligible request.
pub async fn inject(
    State(state): State<Arc<FaultState>>,
    ConnectInfo(conn): ConnectInfo<FaultHandle>,
    req: Request,
    next: Next,
) -> Response {
    let Some(route) = Route::of(req.uri().path()) else {
        return next.run(req).await;
    };
    let mut rng = Rng::new();
    let Some(kind) = state.plan.roll(route, &mut rng) else {
        return next.run(req).await;
    };
    state.count(kind);
    let size = state.plan.oversize_bytes;
    let stop = state.stop.clone();
    match kind {
        FaultKind::Reset => {
            let after = if route.streams() {
                rng.between(200, 3000)
            } else {
                rng.between(0, 64)
            };
            conn.0.set(Arm::ResetAfter(after));
            next.run(req).await
        }
        FaultKind::Stall => {
            conn.0.set(Arm::Stall(state.plan.stall_for));
            next.run(req).await
        }
        FaultKind::HalfOpen => {
            conn.0.set(Arm::HalfOpen);
            next.run(req).await
        }
        FaultKind::SlowHeaders => {
            conn.0.set(Arm::SlowHead);
            next.run(req).await
        }
        FaultKind::MalformedHttp => {
            conn.0.set(Arm::Garbage);
            next.run(req).await
        }
        FaultKind::Status5xx => (StatusCode::SERVICE_UNAVAILABLE, "injected fault").into_response(),
        FaultKind::Status429 => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "injected fault",
        )
            .into_response(),
        // No `id:` lines: a fake id would move the client's resume point
        // and turn the fault into duplicates.
        FaultKind::SseNoBlankLine => sse_body(b"data: {\"seq\":1}\ndata: {\"seq\":2}\n\n".to_vec()),
        FaultKind::SseInvalidUtf8 => sse_body(b"data: \xff\xfe\xc3\x28 not utf-8\n\n".to_vec()),
        FaultKind::SseHugeLine => {
            let mut body = b"data: ".to_vec();
            body.resize(size + 6, b'x');
            body.extend_from_slice(b"\n\n");
            sse_body(body)
        }
        FaultKind::WsBadOpcode => raw_ws(req, stop, RawWs::Frame(vec![0x83, 0x00])),
        FaultKind::WsMaskedFrame => raw_ws(
            req,
            stop,
            RawWs::Frame(vec![0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]),
        ),
        FaultKind::WsOversizedFrame => {
            let mut f = vec![0x82, 127];
            f.extend_from_slice(&(1u64 << 40).to_be_bytes());
            raw_ws(req, stop, RawWs::Frame(f))
        }
        FaultKind::WsNoClose => raw_ws(req, stop, RawWs::Drop),
        FaultKind::OversizedMessage => oversized(route, req, stop, size),
    }
}

fn sse_body(body: Vec<u8>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from(body),
    )
        .into_response()
}

fn oversized(route: Route, req: Request, stop: CancellationToken, size: usize) -> Response {
    match route {
        Route::Ws | Route::Echo => raw_ws(req, stop, RawWs::Text(size)),
        Route::Sse => {
            let mut body = b"data: ".to_vec();
            body.resize(size + 6, b'x');
            body.extend_from_slice(b"\n\n");
            sse_body(body)
        }
        Route::Ndjson => {
            let mut body = br#"{"id":1,"data":""#.to_vec();
            body.resize(size + 16, b'x');
            body.extend_from_slice(b"\"}\n");
            (
                [(header::CONTENT_TYPE, "application/x-ndjson")],
                Body::from(body),
            )
                .into_response()
        }
        _ => {
            let mut body = vec![b'x'; size];
            body.push(b'\n');
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "text/plain"),
                    (header::HeaderName::from_static("x-cursor"), "1"),
                ],
                body,
            )
                .into_response()
        }
    }
}

/// What a raw WebSocket fault writes after the upgrade.
enum RawWs {
    /// These frame bytes.
    Frame(Vec<u8>),
    /// A text message of this many bytes (in one frame).
    Text(usize),
    /// Nothing: the TCP connection just ends.
    Drop,
}

/// Accepts a WebSocket upgrade by hand (axum's socket would never write a
/// broken frame) and writes `what` on the raw connection.
fn raw_ws(mut req: Request, stop: CancellationToken, what: RawWs) -> Response {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return (StatusCode::BAD_REQUEST, "not a WebSocket upgrade").into_response();
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let work = async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let mut io = TokioIo::new(upgraded);
            let written = match what {
                RawWs::Frame(bytes) => io.write_all(&bytes).await,
                RawWs::Text(size) => write_text(&mut io, size).await,
                RawWs::Drop => return,
            };
            if written.is_ok() {
                // Read until the client hangs up, so our close cannot turn
                // into an RST that overtakes the frame.
                let mut sink = [0u8; 1024];
                let _ = tokio::time::timeout(Duration::from_secs(10), async {
                    while let Ok(n) = io.read(&mut sink).await {
                        if n == 0 {
                            break;
                        }
                    }
                })
                .await;
            }
        };
        tokio::select! {
            _ = work => {}
            _ = stop.cancelled() => {}
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header("sec-websocket-accept", accept)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn write_text<W: AsyncWrite + Unpin>(io: &mut W, size: usize) -> io::Result<()> {
    let mut head = vec![0x81, 127];
    head.extend_from_slice(&(size as u64).to_be_bytes());
    io.write_all(&head).await?;
    // From one small buffer: the target's memory stays flat however big
    // the message.
    let chunk = [b'x'; 16 << 10];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        io.write_all(&chunk[..n]).await?;
        left -= n;
    }
    Ok(())
}
