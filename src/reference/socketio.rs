//! Socket.IO on the reference server, through socketioxide (a tower layer
//! on the same axum router, path `/socket.io/`): a socket joins the room
//! of a channel by emitting `subscribe` with the channel's name (acked
//! once joined), and every event published on that channel (`POST
//! /pub/{ch}`, the same hub as the other transports) is emitted to the
//! room as `message` with the envelope as its one argument. A socket may
//! also emit `publish` (channel, payload) to publish from a Socket.IO
//! session. `POST /control/drop` disconnects every socket.
//!
//! One forwarding task per channel with members moves the hub's events
//! into the room; it holds only the channel's broadcast receiver, so it
//! ends when the hub (and so the channel) is dropped.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::SocketIo;
use tokio::sync::broadcast::error::RecvError;

use super::hub::Hub;

/// The event a client emits to join a channel's room, with the channel.
pub const JOIN: &str = "subscribe";
/// The event that carries each published envelope.
pub const EVENT: &str = "message";

/// The layer to put on the router, and the tasks it needs started.
pub fn layer(hub: &Arc<Hub>) -> SocketIoLayer {
    let (layer, io) = SocketIo::builder()
        // Small reads, as the other WebSocket routes (ecosystem notes,
        // pitfall 1); a deep per-socket queue, as publishes come in
        // bursts at high rates.
        .ws_read_buffer_size(4096)
        .max_buffer_size(4096)
        .build_layer();
    let forwarded = Arc::new(Mutex::new(HashSet::<String>::new()));
    let hub_w = Arc::downgrade(hub);
    let io_c = io.clone();
    // The handlers are set in a connect middleware: socketioxide sends the
    // namespace's CONNECT before it calls the connect handler (a spawned
    // task), so a client that emits its join at once could beat handlers
    // set there, and the join would be dropped unanswered.
    let register = move |s: SocketRef| {
        let (hub_j, io_j, forwarded) = (hub_w.clone(), io_c.clone(), forwarded.clone());
        s.on(
            JOIN,
            async move |s: SocketRef, Data(ch): Data<String>, ack: AckSender| {
                let Some(hub) = hub_j.upgrade() else { return };
                s.join(ch.clone());
                forward(&hub, &io_j, &forwarded, &ch);
                // Joined and forwarded before the ack: a client that has
                // it is guaranteed every later event.
                let _ = ack.send("ok");
            },
        );
        let hub_p = hub_w.clone();
        s.on(
            "publish",
            async move |Data((ch, payload)): Data<(String, String)>, ack: AckSender| {
                let Some(hub) = hub_p.upgrade() else { return };
                let body = Bytes::from(payload);
                let id = hub.channel(&ch).publish(body.clone());
                hub.forward(&ch, id, &body);
                hub.stats
                    .published
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = ack.send(&id);
            },
        );
        async { Ok::<(), std::convert::Infallible>(()) }
    };
    io.ns("/", (async || {}).with(register));
    // `POST /control/drop`: every socket is disconnected (`41`), as the
    // other subscriptions are ended.
    let mut drops = hub.drops();
    tokio::spawn(async move {
        while drops.changed().await.is_ok() {
            let _ = io.disconnect().await;
        }
    });
    layer
}

/// Starts the forwarding task of channel `ch`, once.
fn forward(hub: &Arc<Hub>, io: &SocketIo, forwarded: &Mutex<HashSet<String>>, ch: &str) {
    if !forwarded
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(ch.to_string())
    {
        return;
    }
    let (_, _, mut rx) = hub.channel(ch).subscribe_after(None);
    let room = io.to(ch.to_string());
    let hub = Arc::downgrade(hub);
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    let text = String::from_utf8_lossy(&ev.data);
                    let _ = room.clone().emit(EVENT, &*text).await;
                }
                Err(RecvError::Lagged(n)) => {
                    if let Some(h) = hub.upgrade() {
                        h.dropped(n);
                    }
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
}
