//! The reference server's HTTP routes (axum): publish, the four subscriber
//! transports plus NDJSON, a WebSocket echo, and controls for tests.
//!
//! | route | what |
//! |---|---|
//! | `POST /pub/{ch}` | publish the body; answers the event id |
//! | `GET /poll/{ch}?after=ID` | `200` one payload per line + `X-Cursor`, or `204` (no body) |
//! | `GET /lp/{ch}?after=ID&timeout_ms=T` | as `/poll`, but held until an event or T (`204`) |
//! | `GET /sse/{ch}` | `text/event-stream`, `id:` on every event, resume with `Last-Event-ID` |
//! | `GET /stream/{ch}?after=ID` | chunked NDJSON `{"id":N,"data":"..."}` |
//! | `GET /ws/{ch}?last_event_id=ID` | WebSocket member of a room: one text frame per event; each message it sends is published on `{ch}` |
//! | `GET /echo` | WebSocket echo |
//! | `GET /rpc?delay_ms=D&jitter_ms=J` | WebSocket JSON-RPC 2.0 peer (see [`super::rpc`]) |
//! | `/socket.io/` | Socket.IO v4 (see [`super::socketio`]): `subscribe` joins a channel's room, `message` carries each event |
//! | `POST /control/stall?ms=N` | every request arriving in the next N ms waits until then |
//! | `POST /control/drop` | ends every open SSE, NDJSON and WebSocket subscription |
//! | `GET /stats`, `GET /healthz` | counters, liveness |
//! | `GET /metrics` | Prometheus text format: process CPU, RSS, open fds and sockets, open streams, counters |
//!
//! Without a cursor a subscription starts at the newest event.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::broadcast;

use super::hub::{Event, Hub};

const MAX_HOLD: Duration = Duration::from_secs(300);

/// The router over a hub.
pub fn router(hub: Arc<Hub>) -> Router {
    let socketio = super::socketio::layer(&hub);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        // Plain request load (same answer as nginx's `return 200 "ok"`).
        .route("/hello", get(|| async { "ok" }))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .route("/control/stall", post(stall))
        .route("/control/drop", post(drop_subscribers))
        .route("/pub/{ch}", post(publish))
        .route("/internal/pub/{ch}", post(publish_forwarded))
        .route("/poll/{ch}", get(poll))
        .route("/lp/{ch}", get(long_poll))
        .route("/sse/{ch}", get(sse))
        .route("/stream/{ch}", get(ndjson))
        .route("/ws/{ch}", get(ws))
        .route("/echo", get(echo))
        .route("/rpc", get(super::rpc::rpc))
        .with_state(hub)
        .layer(socketio)
}

#[derive(Deserialize)]
struct Cursor {
    after: Option<u64>,
    timeout_ms: Option<u64>,
    last_event_id: Option<u64>,
    ms: Option<u64>,
    id: Option<u64>,
}

async fn stats(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
    Json(hub.snapshot())
}

async fn metrics(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        super::metrics::render(&hub),
    )
}

async fn stall(State(hub): State<Arc<Hub>>, Query(q): Query<Cursor>) -> impl IntoResponse {
    let ms = q.ms.unwrap_or(1000).min(600_000);
    hub.stall_for(Duration::from_millis(ms));
    StatusCode::NO_CONTENT
}

async fn drop_subscribers(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
    hub.drop_subscribers();
    StatusCode::NO_CONTENT
}

async fn publish(
    State(hub): State<Arc<Hub>>,
    Path(ch): Path<String>,
    body: Bytes,
) -> impl IntoResponse {
    hub.stall().await;
    hub.fan_out_cost().await;
    let id = hub.channel(&ch).publish(body.clone());
    hub.forward(&ch, id, &body);
    hub.stats.published.fetch_add(1, Ordering::Relaxed);
    id.to_string()
}

/// A room member's message, published as an HTTP publish is (without the
/// stall and fan-out cost, which model the publish endpoint).
fn member_publish(hub: &Hub, ch: &str, data: Bytes) {
    let id = hub.channel(ch).publish(data.clone());
    hub.forward(ch, id, &data);
    hub.stats.published.fetch_add(1, Ordering::Relaxed);
}

/// A publish another worker accepted (see `reference::cluster`).
async fn publish_forwarded(
    State(hub): State<Arc<Hub>>,
    Path(ch): Path<String>,
    Query(q): Query<Cursor>,
    body: Bytes,
) -> StatusCode {
    match q.id {
        Some(id) => {
            hub.channel(&ch).publish_at(id, body);
            StatusCode::NO_CONTENT
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn no_content(cursor: u64) -> Response {
    (StatusCode::NO_CONTENT, [("x-cursor", cursor.to_string())]).into_response()
}

fn events_response(hub: &Hub, events: Vec<Event>) -> Response {
    let cursor = events.last().map_or(0, |e| e.id);
    let mut body = Vec::with_capacity(events.iter().map(|e| e.data.len() + 1).sum());
    for e in &events {
        body.extend_from_slice(&e.data);
        body.push(b'\n');
    }
    hub.delivered(events.len() as u64);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain".to_string()),
            (
                header::HeaderName::from_static("x-cursor"),
                cursor.to_string(),
            ),
        ],
        body,
    )
        .into_response()
}

async fn poll(
    State(hub): State<Arc<Hub>>,
    Path(ch): Path<String>,
    Query(q): Query<Cursor>,
) -> Response {
    cursor_read(&hub, &ch, q.after, None).await
}

async fn long_poll(
    State(hub): State<Arc<Hub>>,
    Path(ch): Path<String>,
    Query(q): Query<Cursor>,
) -> Response {
    let hold = Duration::from_millis(q.timeout_ms.unwrap_or(30_000)).min(MAX_HOLD);
    cursor_read(&hub, &ch, q.after, Some(hold)).await
}

/// Both polling kinds: no cursor subscribes (answers the head cursor);
/// with one, answers what is newer, waiting up to `hold` for it if given.
async fn cursor_read(hub: &Hub, ch: &str, after: Option<u64>, hold: Option<Duration>) -> Response {
    hub.stall().await;
    let channel = hub.channel(ch);
    let Some(after) = after else {
        hub.stats.subscriptions.fetch_add(1, Ordering::Relaxed);
        return no_content(channel.head());
    };
    if let Some(hold) = hold {
        if channel.head() <= after && !channel.wait_after(after, hold).await {
            return no_content(after);
        }
    }
    let (events, missing) = channel.after(after);
    hub.dropped(missing);
    if events.is_empty() {
        return no_content(after);
    }
    events_response(hub, events)
}

/// Backlog first, then live events; lagging counts as dropped. Ends when
/// the hub drops its subscribers.
fn live_stream(
    hub: Arc<Hub>,
    backlog: Vec<Event>,
    rx: broadcast::Receiver<Event>,
) -> impl Stream<Item = Event> + Send {
    let last = backlog.last().map(|e| e.id);
    let mut drops = hub.drops();
    drops.mark_unchanged();
    // Counted open for as long as the stream lives.
    let guard = hub.stream_opened();
    stream::unfold(
        (hub, VecDeque::from(backlog), rx, last, drops, guard),
        |(hub, mut backlog, mut rx, mut last, mut drops, guard)| async move {
            if let Some(ev) = backlog.pop_front() {
                hub.delivered(1);
                return Some((ev, (hub, backlog, rx, last, drops, guard)));
            }
            loop {
                let received = tokio::select! {
                    r = rx.recv() => r,
                    _ = drops.changed() => return None,
                };
                match received {
                    Ok(ev) if last.is_some_and(|l| ev.id <= l) => continue,
                    Ok(ev) => {
                        last = Some(ev.id);
                        hub.delivered(1);
                        return Some((ev, (hub, backlog, rx, last, drops, guard)));
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => hub.dropped(n),
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    )
}

fn subscribe(hub: &Arc<Hub>, ch: &str, after: Option<u64>) -> impl Stream<Item = Event> + Send {
    hub.stats.subscriptions.fetch_add(1, Ordering::Relaxed);
    let (backlog, missing, rx) = hub.channel(ch).subscribe_after(after);
    hub.dropped(missing);
    live_stream(hub.clone(), backlog, rx)
}

async fn sse(
    State(hub): State<Arc<Hub>>,
    Path(ch): Path<String>,
    Query(q): Query<Cursor>,
    headers: HeaderMap,
) -> impl IntoResponse {
    hub.stall().await;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(q.last_event_id);
    // Subscribed before the response head goes out: a client that has the
    // head is guaranteed every later event.
    let events = subscribe(&hub, &ch, last);
    let events = futures_util::StreamExt::map(events, |ev| {
        Ok::<_, Infallible>(
            SseEvent::default()
                .id(ev.id.to_string())
                .data(String::from_utf8_lossy(&ev.data)),
        )
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn ndjson(
    State(hub): State<Arc<Hub>>,
    Path(ch): Path<String>,
    Query(q): Query<Cursor>,
) -> Response {
    hub.stall().await;
    let events = subscribe(&hub, &ch, q.after);
    let lines = futures_util::StreamExt::map(events, |ev| {
        let line = serde_json::json!({ "id": ev.id, "data": String::from_utf8_lossy(&ev.data) });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(bytes))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

pub(super) fn small_buffers(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    // tungstenite's 128 KiB default read buffer per connection would make
    // the target's memory per connection meaningless.
    upgrade
        .read_buffer_size(4096)
        .write_buffer_size(0)
        // A bound, not an allocation; it must hold one whole frame, and
        // the publisher's largest payload is 1 MiB (a frame of 1 MiB and
        // its header overflowed a 1 MiB bound: every such event was lost).
        .max_write_buffer_size(2 << 20)
        .max_message_size(16 << 20)
}

async fn ws(
    State(hub): State<Arc<Hub>>,
    Path(ch): Path<String>,
    Query(q): Query<Cursor>,
    upgrade: WebSocketUpgrade,
) -> Response {
    hub.stall().await;
    let events = subscribe(&hub, &ch, q.last_event_id);
    small_buffers(upgrade).on_upgrade(move |socket| ws_session(socket, Box::pin(events), hub, ch))
}

/// A WebSocket member of channel `ch` (a room): it receives the channel's
/// events, and every text or binary message it sends is published on the
/// channel, as `POST /pub/{ch}` would (its sender receives it too; clients
/// skip their own).
async fn ws_session(
    mut socket: WebSocket,
    mut events: std::pin::Pin<Box<dyn Stream<Item = Event> + Send>>,
    hub: Arc<Hub>,
    ch: String,
) {
    use futures_util::StreamExt;
    loop {
        tokio::select! {
            ev = events.next() => {
                let Some(ev) = ev else {
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                };
                let msg = match Utf8Bytes::try_from(ev.data.clone()) {
                    Ok(text) => Message::Text(text),
                    Err(_) => Message::Binary(ev.data),
                };
                if socket.send(msg).await.is_err() {
                    break;
                }
            }
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Text(t))) => member_publish(&hub, &ch, Bytes::from(t)),
                Some(Ok(Message::Binary(b))) => member_publish(&hub, &ch, b),
                // Pings are answered by tungstenite.
                Some(Ok(_)) => {}
            }
        }
    }
}

async fn echo(State(hub): State<Arc<Hub>>, upgrade: WebSocketUpgrade) -> Response {
    hub.stall().await;
    small_buffers(upgrade).on_upgrade(|mut socket| async move {
        while let Some(Ok(msg)) = socket.recv().await {
            let reply = match msg {
                Message::Text(_) | Message::Binary(_) => msg,
                Message::Close(_) => break,
                _ => continue,
            };
            if socket.send(reply).await.is_err() {
                break;
            }
        }
    })
}
