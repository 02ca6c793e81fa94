//! `GET /rpc`: a JSON-RPC 2.0 peer over WebSocket
//! (<https://www.jsonrpc.org/specification>), the default target of ws-rpc
//! load. Method `echo` answers `{"jsonrpc":"2.0","id":<same>,"result":<params>}`;
//! any other method is error -32601, a message that is not JSON -32700, one
//! that is not a request object -32600 (section 5.1); a notification (no
//! `id`) gets no answer (section 4.1).
//!
//! Each reply waits `delay_ms` plus a uniform random share of `jitter_ms`
//! (query parameters, default 0) and the hub's stall, while the session
//! goes on reading: with jitter, replies overtake each other, which is
//! what out-of-order correlation is tested with.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::hub::Hub;

/// Query parameters of `/rpc`.
#[derive(Debug, Default, Deserialize)]
pub struct RpcQuery {
    /// Every reply waits this long (ms).
    delay_ms: Option<u64>,
    /// Plus a uniform random wait up to this long (ms).
    jitter_ms: Option<u64>,
}

/// Upgrades and answers JSON-RPC requests until the client leaves.
pub async fn rpc(
    State(hub): State<Arc<Hub>>,
    Query(q): Query<RpcQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    hub.stall().await;
    let ms = |v: Option<u64>| Duration::from_millis(v.unwrap_or(0).min(600_000));
    let (delay, jitter) = (ms(q.delay_ms), ms(q.jitter_ms));
    super::server::small_buffers(upgrade)
        .on_upgrade(move |socket| session(socket, hub, delay, jitter))
}

async fn session(mut socket: WebSocket, hub: Arc<Hub>, delay: Duration, jitter: Duration) {
    let mut rng = crate::rng::Rng::new();
    let mut pending = FuturesUnordered::new();
    loop {
        tokio::select! {
            Some(reply) = pending.next(), if !pending.is_empty() => {
                if socket.send(Message::Text(reply)).await.is_err() {
                    break;
                }
                hub.stats.rpc_replies.fetch_add(1, Ordering::Relaxed);
            }
            msg = socket.recv() => {
                let reply = match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(Message::Text(t))) => answer(t.as_bytes()),
                    Some(Ok(Message::Binary(b))) => answer(&b),
                    // Pings are answered by tungstenite.
                    Some(Ok(_)) => None,
                };
                if let Some(reply) = reply {
                    let wait = delay + jitter.mul_f64(rng.unit());
                    let hub = hub.clone();
                    pending.push(async move {
                        hub.stall().await;
                        if !wait.is_zero() {
                            tokio::time::sleep(wait).await;
                        }
                        reply.into()
                    });
                }
            }
        }
    }
}

/// The answer to one message, if it gets one.
pub fn answer(message: &[u8]) -> Option<String> {
    let error = |id: &Value, code: i64, message: &str| json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    let request: Value = match serde_json::from_slice(message) {
        Ok(v) => v,
        Err(_) => return Some(error(&Value::Null, -32700, "Parse error").to_string()),
    };
    let Some(obj) = request.as_object() else {
        return Some(error(&Value::Null, -32600, "Invalid Request").to_string());
    };
    let id = obj.get("id");
    let valid = obj.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
        && obj.get("method").is_some_and(Value::is_string)
        && id.is_none_or(|i| i.is_string() || i.is_number() || i.is_null());
    if !valid {
        return Some(error(id.unwrap_or(&Value::Null), -32600, "Invalid Request").to_string());
    }
    let id = id?;
    let reply = match obj.get("method").and_then(Value::as_str) {
        Some("echo") => json!({
            "jsonrpc": "2.0",
            "id": id,
            "result": obj.get("params").unwrap_or(&Value::Null),
        }),
        _ => error(id, -32601, "Method not found"),
    };
    Some(reply.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(m: &str) -> Option<Value> {
        answer(m.as_bytes()).map(|r| serde_json::from_str(&r).unwrap())
    }

    #[test]
    fn requests_are_answered_as_json_rpc_2_0_says() {
        assert_eq!(
            reply(r#"{"jsonrpc":"2.0","id":7,"method":"echo","params":["a",1]}"#),
            Some(json!({"jsonrpc":"2.0","id":7,"result":["a",1]}))
        );
        assert_eq!(
            reply(r#"{"jsonrpc":"2.0","id":"x","method":"nope"}"#).unwrap()["error"]["code"],
            -32601
        );
        assert_eq!(reply("not json").unwrap()["error"]["code"], -32700);
        assert_eq!(
            reply(r#"{"id":1,"method":"echo"}"#).unwrap()["error"]["code"],
            -32600
        );
        assert_eq!(reply("[1]").unwrap()["id"], Value::Null);
        // A notification gets no answer.
        assert_eq!(
            reply(r#"{"jsonrpc":"2.0","method":"echo","params":[]}"#),
            None
        );
    }
}
