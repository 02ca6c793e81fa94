//! The envelope inside wrapped messages, on every transport, against
//! scripted peers that wrap each published event the way real protocols do
//! (GraphQL `next`, Centrifugo pushes, Pusher's JSON-string `data`, JSON
//! poll items), and send pings and other frames between them. Found with
//! and without `message_path`; the rest is counted as `control_messages`
//! (a profile rule names them) or `other_messages`, with examples in
//! `run.json`, and is a protocol error only under `strict = true`.

mod support;

use std::time::Duration;

use futures_util::SinkExt;
use stampede::fault::ErrorKind;
use stampede::metrics::summary::SummaryRow;
use stampede::run::RunOutcome;
use support::pubsub::{next_or_idle, scenario, Conn, PubSub, Req};
use support::{row, TempDir};
use tokio_tungstenite::tungstenite::Message;

async fn run_against(peer: &PubSub, text: &str, tag: &str) -> (RunOutcome, TempDir) {
    peer.run(text, tag).await
}

fn exact(r: &SummaryRow) {
    assert!(r.expected.unwrap() > 0, "{r:?}");
    assert_eq!(r.delivered, r.expected, "{r:?}");
    assert_eq!(r.lost, Some(0), "{r:?}");
    assert_eq!(r.duplicated, Some(0), "{r:?}");
    assert_eq!(r.errors, 0, "{r:?}");
}

fn examples(dir: &std::path::Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir.join("run.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["message_examples"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["kind"].as_str().unwrap().to_string(),
                        e["message"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn s(m: &[u8]) -> &str {
    std::str::from_utf8(m).unwrap()
}

const PING: &str = r#"{"type":"ping"}"#;
const HELLO: &str = r#"{"type":"hello","server":"scripted"}"#;

/// Serves every transport, wrapping each event: after the first event of
/// a connection a `hello` (no rule names it), after every event a `ping`.
async fn wrapping_peer(mut c: Conn, req: Req) {
    let path = req.path.clone();
    if path.starts_with("/ws/") {
        let mut rx = c.subscribe();
        let Some(mut ws) = c.upgrade(&req, None).await else {
            return;
        };
        let mut n = 0u64;
        while let Ok(Some(m)) = next_or_idle(&mut rx, Duration::from_secs(30)).await {
            let frame = format!(
                r#"{{"id":"1","type":"next","payload":{{"data":{{"onEvent":{{"text":"{}"}}}}}}}}"#,
                s(&m)
            );
            // Text and binary frames alternate.
            let msg = if n.is_multiple_of(2) {
                Message::text(frame)
            } else {
                Message::binary(frame.into_bytes())
            };
            if ws.send(msg).await.is_err() || ws.send(Message::text(PING)).await.is_err() {
                return;
            }
            if n == 0 && ws.send(Message::text(HELLO)).await.is_err() {
                return;
            }
            n += 1;
        }
        return;
    }
    let mut rx = c.subscribe();
    if path.starts_with("/sse/") {
        if !c
            .write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
            .await
        {
            return;
        }
        let mut first = true;
        while let Ok(Some(m)) = next_or_idle(&mut rx, Duration::from_secs(30)).await {
            let mut frame = format!(
                "data: {{\"push\":{{\"channel\":\"a\",\"pub\":{{\"data\":{{\"body\":\"{}\"}}}}}}}}\n\ndata: {PING}\n\n",
                s(&m)
            );
            if first {
                frame.push_str(&format!("data: {HELLO}\n\n"));
                first = false;
            }
            if !c.write(frame.as_bytes()).await {
                return;
            }
        }
    } else if path.starts_with("/stream/") {
        if !c
            .write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n")
            .await
        {
            return;
        }
        let mut first = true;
        while let Ok(Some(m)) = next_or_idle(&mut rx, Duration::from_secs(30)).await {
            // Pusher: `data` is a JSON string holding JSON.
            let mut frame = format!(
                "{{\"event\":\"msg\",\"channel\":\"a\",\"data\":\"{{\\\"body\\\":\\\"{}\\\"}}\"}}\n{PING}\n",
                s(&m)
            );
            if first {
                frame.push_str(HELLO);
                frame.push('\n');
                first = false;
            }
            if !c.write(frame.as_bytes()).await {
                return;
            }
        }
    } else if path.starts_with("/poll/") {
        drop(rx);
        wrapped_poll(c, req).await;
    }
}

/// A JSON poll API: `?after=N` answers the items from N on, each an
/// object whose `data` is an object (a wrapped message), plus a ping item.
async fn wrapped_poll(mut c: Conn, first: Req) {
    let mut req = first;
    loop {
        if req.method == "POST" {
            c.publish(&req).await;
        } else {
            let log = c.hub.log.lock().unwrap().clone();
            let after: Option<usize> = req.path.split("after=").nth(1).and_then(|a| a.parse().ok());
            let answer = match after {
                Some(a) if a < log.len() => {
                    let mut items: Vec<String> = log[a..]
                        .iter()
                        .enumerate()
                        .map(|(i, m)| format!(r#"{{"id":{},"data":{{"body":"{}"}}}}"#, a + i, s(m)))
                        .collect();
                    items.push(PING.to_string());
                    let body = format!("[{}]", items.join(","));
                    format!(
                        "HTTP/1.1 200 OK\r\nX-Cursor: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        log.len(),
                        body.len()
                    )
                }
                _ => format!(
                    "HTTP/1.1 204 No Content\r\nX-Cursor: {}\r\n\r\n",
                    after.unwrap_or(log.len())
                ),
            };
            if !c.write(answer.as_bytes()).await {
                return;
            }
        }
        req = match c.read_req().await {
            Some(r) => r,
            None => return,
        };
    }
}

/// Each transport's profile section, its group line, and the
/// `message_path` that names where its envelope sits.
fn cases() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    vec![
        (
            "websocket",
            "",
            "[profile.websocket]\nurl = \"/ws/{channel}\"",
            "/payload/data/onEvent/text",
        ),
        (
            "sse",
            "",
            "[profile.sse]\nurl = \"/sse/{channel}\"",
            "/push/pub/data/body",
        ),
        (
            "ndjson",
            "",
            "[profile.ndjson]\nurl = \"/stream/{channel}\"",
            "/data/body",
        ),
        (
            "poll",
            "interval = \"200ms\"",
            "[profile.poll]\nurl = \"/poll/{channel}\"\ncursor = \"query\"\ncursor_param = \"after\"\ncursor_header = \"x-cursor\"\nstart = \"head\"\nbody = \"json-array\"\nempty_status = [204]",
            "/data/body",
        ),
    ]
}

async fn start_peer() -> PubSub {
    PubSub::start(wrapping_peer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrapped_envelopes_are_found_on_every_transport_with_and_without_a_path() {
    let peer = start_peer().await;
    for (transport, group, section, path) in cases() {
        for with_path in [false, true] {
            let rules = format!(
                "control = ['{PING}']\n{}",
                if with_path {
                    format!("message_path = \"{path}\"\n")
                } else {
                    String::new()
                }
            );
            let text = scenario(transport, 3, "2s", group, &format!("{rules}{section}"));
            let (out, dir) = run_against(&peer, &text, "wrapped").await;
            let r = row(&out.rows, transport);
            let what = format!("{transport} path={with_path}: {r:?}");
            exact(r);
            // One ping per event (poll: per non-empty response).
            let control = r.control_messages.unwrap();
            assert!(control > 0, "{what}");
            if transport != "poll" {
                assert!(control >= r.delivered.unwrap(), "{what}");
                // One hello per connection.
                assert_eq!(r.other_messages, Some(3), "{what}");
            } else {
                assert_eq!(r.other_messages, Some(0), "{what}");
            }
            let ex = examples(dir.path());
            assert!(
                ex.iter().any(|(k, m)| k == "control" && m == PING),
                "{what} {ex:?}"
            );
            if transport != "poll" {
                assert!(
                    ex.iter().any(|(k, m)| k == "other" && m == HELLO),
                    "{what} {ex:?}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_profiles_make_unknown_messages_protocol_errors() {
    let peer = start_peer().await;
    let text = scenario(
        "sse",
        2,
        "2s",
        "",
        &format!("strict = true\ncontrol = ['{PING}']\n[profile.sse]\nurl = \"/sse/{{channel}}\""),
    );
    let (out, _dir) = run_against(&peer, &text, "strict").await;
    let r = row(&out.rows, "sse");
    // Every event still arrives; each client's one hello is an error.
    assert_eq!(r.delivered, r.expected, "{r:?}");
    assert_eq!(r.errors_of(ErrorKind::Protocol), 2, "{r:?}");
    assert_eq!(r.other_messages, Some(0), "{r:?}");
    // Without a rule for the pings, they are errors too.
    let text = scenario(
        "sse",
        2,
        "2s",
        "",
        "strict = true\n[profile.sse]\nurl = \"/sse/{channel}\"",
    );
    let (out, _dir) = run_against(&peer, &text, "strict2").await;
    let r = row(&out.rows, "sse");
    assert_eq!(r.delivered, r.expected, "{r:?}");
    assert!(
        r.errors_of(ErrorKind::Protocol) > r.delivered.unwrap(),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_path_loses_events_visibly_as_other_messages() {
    let peer = start_peer().await;
    let text = scenario(
        "sse",
        2,
        "2s",
        "",
        "message_path = \"/push/nope\"\n[profile.sse]\nurl = \"/sse/{channel}\"",
    );
    let (out, dir) = run_against(&peer, &text, "wrongpath").await;
    let r = row(&out.rows, "sse");
    assert_eq!(r.delivered, Some(0), "{r:?}");
    assert_eq!(r.lost, r.expected, "{r:?}");
    assert!(r.other_messages.unwrap() >= r.expected.unwrap(), "{r:?}");
    assert!(examples(dir.path()).iter().any(|(k, _)| k == "other"));
}
