//! The protocol presets (`scenarios/profiles/*.toml`) against scripted
//! peers that speak each protocol as its public documents describe:
//! ActionCable (actioncable-v1-json, AnyCable's broadcast API), Phoenix
//! Channels (V2 JSON serializer), Centrifugo (JSON protocol, `{}` pings,
//! server API) and Pusher Channels (protocol 7). Each run has exact
//! accounting; the protocol's pings and confirmations count as control
//! messages; a peer that never confirms shows loss and a timeout per
//! client; peers that drop clients that miss their pings or heartbeats
//! keep every client for the whole run.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use stampede::fault::ErrorKind;
use stampede::metrics::summary::SummaryRow;
use stampede::run::RunOutcome;
use stampede::shutdown::Shutdown;
use support::pubsub::{Conn, PubSub, Req};
use support::{plan, row, run_plan, TempDir};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

/// `profile`: `profile = "NAME"`, or a `[profile]` table (put last).
async fn run(peer: &PubSub, profile: &str, tag: &str) -> (RunOutcome, TempDir) {
    let (head, tail) = if profile.starts_with('[') {
        ("", profile)
    } else {
        (profile, "")
    };
    let text = format!(
        "name = \"preset\"\ntarget = \"{}\"\n{head}\nduration = \"3s\"\nwarmup = \"1s\"\n\
         ramp_up = \"500ms\"\ndrain = \"1s\"\n\
         [publisher]\nrate = 20\npayload_bytes = 80\nchannels = 2\n\
         [[groups]]\ntransport = \"websocket\"\nclients = 6\n{tail}",
        peer.url
    );
    let dir = TempDir::new(tag);
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    (out, dir)
}

fn exact(r: &SummaryRow) {
    assert!(r.expected.unwrap() > 0, "{r:?}");
    assert_eq!(r.delivered, r.expected, "{r:?}");
    assert_eq!((r.lost, r.duplicated), (Some(0), Some(0)), "{r:?}");
    assert_eq!(r.errors, 0, "{r:?}");
    assert_eq!(r.reconnects, 0, "every client stays connected: {r:?}");
    assert_eq!(r.other_messages, Some(0), "{r:?}");
}

/// Serves publishes in the protocol's HTTP API shape on a keep-alive
/// connection: `parse` gives the channel and the data as the server would
/// forward it.
async fn http_publish(mut c: Conn, first: Req, parse: fn(&Req, &Value) -> Option<(String, Value)>) {
    let mut req = first;
    loop {
        let parsed = serde_json::from_slice::<Value>(&req.body)
            .ok()
            .and_then(|v| parse(&req, &v));
        let ok = match parsed {
            Some((channel, data)) => {
                c.hub.log.lock().unwrap().push(req.body.clone());
                let _ = c.hub.tx.send(
                    json!({"channel": channel, "data": data})
                        .to_string()
                        .into_bytes(),
                );
                c.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                    .await
            }
            None => {
                c.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await
            }
        };
        if !ok {
            return;
        }
        req = match c.read_req().await {
            Some(r) => r,
            None => return,
        };
    }
}

fn is_upgrade(req: &Req) -> bool {
    req.headers
        .get("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn send(ws: &mut Ws, v: Value) -> bool {
    ws.send(Message::text(v.to_string())).await.is_ok()
}

/// The next text message as JSON; `None` when the client is gone.
async fn recv(ws: &mut Ws) -> Option<Value> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Published events of `channel`, as the peer's hub carries them.
fn event_of(m: &[u8], channel: &str) -> Option<Value> {
    let v: Value = serde_json::from_slice(m).ok()?;
    (v["channel"] == channel).then(|| v["data"].clone())
}

// ---------------------------------------------------------------- ActionCable

#[derive(Default)]
struct Seen {
    goodbyes: AtomicUsize,
    dropped: AtomicUsize,
}

async fn actioncable(c: Conn, req: Req, confirm: bool, seen: Arc<Seen>) {
    if !is_upgrade(&req) {
        return http_publish(c, req, |r, v| {
            (r.path == "/_broadcast").then_some(())?;
            let room = v["stream"].as_str()?.strip_prefix("room_")?.to_string();
            // AnyCable's `data` is a JSON string: the broadcast is its value.
            let data = serde_json::from_str(v["data"].as_str()?).ok()?;
            Some((room, data))
        })
        .await;
    }
    assert_eq!(
        req.headers
            .get("sec-websocket-protocol")
            .map(String::as_str),
        Some("actioncable-v1-json")
    );
    let mut rx = c.subscribe();
    let Some(mut ws) = c.upgrade(&req, Some("actioncable-v1-json")).await else {
        return;
    };
    if !send(&mut ws, json!({"type": "welcome"})).await {
        return;
    }
    let mut sub: Option<(String, String)> = None; // (identifier, room)
    let mut ping = tokio::time::interval(Duration::from_millis(300));
    loop {
        tokio::select! {
            m = recv(&mut ws) => {
                let Some(m) = m else { return };
                let id = m["identifier"].as_str().unwrap_or_default().to_string();
                match m["command"].as_str() {
                    Some("subscribe") => {
                        let ident: Value = serde_json::from_str(&id).unwrap();
                        assert_eq!(ident["channel"], "RoomChannel");
                        let room = ident["room"].as_str().unwrap().to_string();
                        if confirm
                            && !send(&mut ws, json!({"identifier": id, "type": "confirm_subscription"})).await
                        {
                            return;
                        }
                        sub = Some((id, room));
                    }
                    Some("unsubscribe") => {
                        seen.goodbyes.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => panic!("unexpected ActionCable command {m}"),
                }
            }
            e = rx.recv() => {
                let Ok(e) = e else { return };
                if let Some((id, room)) = sub.as_ref().filter(|_| confirm) {
                    if let Some(data) = event_of(&e, room) {
                        if !send(&mut ws, json!({"identifier": id, "message": data})).await {
                            return;
                        }
                    }
                }
            }
            _ = ping.tick() => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                if !send(&mut ws, json!({"type": "ping", "message": now})).await {
                    return;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actioncable_preset_has_exact_accounting() {
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let peer = PubSub::start(move |c, r| actioncable(c, r, true, s.clone())).await;
    let (out, _dir) = run(&peer, "profile = \"actioncable\"", "cable").await;
    let r = row(&out.rows, "websocket");
    exact(r);
    // Pings every 300 ms to 6 clients over the 3 s window.
    assert!(r.control_messages.unwrap() >= 6 * 8, "{r:?}");
    assert!(r.subscribe_p50_ms.is_some(), "{r:?}");
    // Every client said goodbye (unsubscribe) before closing.
    assert_eq!(seen.goodbyes.load(Ordering::Relaxed), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_confirms_shows_loss_and_a_timeout_per_client() {
    let peer = PubSub::start(|c, r| actioncable(c, r, false, Arc::default())).await;
    // The preset with a 2 s subscribe_timeout (the timeouts then fall in
    // the measured window, after the ramp-up and warm-up).
    let profile = "[profile]\nbase = \"actioncable\"\n[profile.websocket]\nurl = \"/cable\"\n\
        subprotocol = \"actioncable-v1-json\"\n\
        messages = ['{\"command\":\"subscribe\",\"identifier\":\"{\\\"channel\\\":\\\"RoomChannel\\\",\\\"room\\\":\\\"{channel}\\\"}\"}']\n\
        subscribed_when = '{\"type\":\"confirm_subscription\"}'\nsubscribe_timeout = \"2s\"\n";
    let (out, dir) = run(&peer, profile, "cable-never").await;
    let r = row(&out.rows, "websocket");
    assert!(r.expected.unwrap() > 0, "{r:?}");
    assert_eq!(r.delivered, Some(0), "{r:?}");
    assert_eq!(r.lost, r.expected, "{r:?}");
    assert_eq!(r.errors_of(ErrorKind::Timeout), 6, "{r:?}");
    let info = std::fs::read_to_string(dir.path().join("run.json")).unwrap();
    assert!(info.contains("did not confirm the subscription"), "{info}");
}

// ------------------------------------------------------------------- Phoenix

async fn phoenix(c: Conn, req: Req, heartbeat_within: Duration, seen: Arc<Seen>) {
    if !is_upgrade(&req) {
        return http_publish(c, req, |r, v| {
            let room = r.path.strip_prefix("/api/broadcast/")?.to_string();
            Some((room, v.clone()))
        })
        .await;
    }
    assert!(
        req.path.starts_with("/socket/websocket?vsn=2.0.0"),
        "{}",
        req.path
    );
    let mut rx = c.subscribe();
    let Some(mut ws) = c.upgrade(&req, None).await else {
        return;
    };
    let mut topic: Option<String> = None;
    let mut last_beat = tokio::time::Instant::now();
    let mut check = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            m = recv(&mut ws) => {
                let Some(m) = m else { return };
                // [join_ref, ref, topic, event, payload]
                let (join_ref, mref, t, event) = (&m[0], &m[1], m[2].as_str().unwrap(), m[3].as_str().unwrap());
                let ok = json!({"status": "ok", "response": {}});
                match (t, event) {
                    ("phoenix", "heartbeat") => {
                        last_beat = tokio::time::Instant::now();
                        if !send(&mut ws, json!([null, mref, "phoenix", "phx_reply", ok])).await {
                            return;
                        }
                    }
                    (_, "phx_join") => {
                        topic = Some(t.to_string());
                        if !send(&mut ws, json!([join_ref, mref, t, "phx_reply", ok])).await {
                            return;
                        }
                    }
                    (_, "phx_leave") => {
                        seen.goodbyes.fetch_add(1, Ordering::Relaxed);
                        let _ = send(&mut ws, json!([join_ref, mref, t, "phx_reply", ok])).await;
                    }
                    _ => panic!("unexpected Phoenix message {m}"),
                }
            }
            e = rx.recv() => {
                let Ok(e) = e else { return };
                let Some(t) = &topic else { continue };
                if let Some(data) = event_of(&e, t.strip_prefix("room:").unwrap()) {
                    if !send(&mut ws, json!([null, null, t, "new_msg", data])).await {
                        return;
                    }
                }
            }
            _ = check.tick() => {
                if last_beat.elapsed() > heartbeat_within {
                    // The server drops a client without heartbeats.
                    seen.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phoenix_preset_has_exact_accounting_and_heartbeats_keep_clients() {
    // The preset beats every 30 s, as Phoenix's client does; this peer
    // drops a client after 1 s without one, so the test beats every 300 ms.
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let peer = PubSub::start(move |c, r| phoenix(c, r, Duration::from_secs(1), s.clone())).await;
    let preset: toml::Value =
        toml::from_str(include_str!("../scenarios/profiles/phoenix.toml")).unwrap();
    let mut ws = preset["websocket"].clone();
    ws["heartbeat"]["every"] = toml::Value::String("300ms".into());
    let mut table = toml::map::Map::new();
    table.insert("base".into(), toml::Value::String("phoenix".into()));
    table.insert("websocket".into(), ws);
    let mut doc = toml::map::Map::new();
    doc.insert("profile".into(), toml::Value::Table(table));
    let profile = toml::to_string(&toml::Value::Table(doc)).unwrap();
    let (out, _dir) = run(&peer, &profile, "phoenix").await;
    let r = row(&out.rows, "websocket");
    exact(r);
    assert_eq!(seen.dropped.load(Ordering::Relaxed), 0);
    // The heartbeats' replies.
    assert!(r.control_messages.unwrap() >= 6 * 8, "{r:?}");
    assert_eq!(seen.goodbyes.load(Ordering::Relaxed), 6);
}

// ---------------------------------------------------------------- Centrifugo

async fn centrifugo(c: Conn, req: Req, seen: Arc<Seen>) {
    if !is_upgrade(&req) {
        return http_publish(c, req, |r, v| {
            (r.path == "/api/publish").then_some(())?;
            (r.headers.get("x-api-key").map(String::as_str) == Some("key-1")).then_some(())?;
            Some((v["channel"].as_str()?.to_string(), v["data"].clone()))
        })
        .await;
    }
    let mut rx = c.subscribe();
    let Some(mut ws) = c.upgrade(&req, None).await else {
        return;
    };
    // connect, then subscribe, each answered by id.
    let Some(m) = recv(&mut ws).await else { return };
    assert_eq!(m["id"], 1, "{m}");
    assert_eq!(m["connect"]["token"], "token-1", "{m}");
    if !send(
        &mut ws,
        json!({"id": 1, "connect": {"client": "c-1", "version": "5.4.0", "ping": 1, "pong": true}}),
    )
    .await
    {
        return;
    }
    let Some(m) = recv(&mut ws).await else { return };
    assert_eq!(m["id"], 2, "{m}");
    let channel = m["subscribe"]["channel"].as_str().unwrap().to_string();
    if !send(&mut ws, json!({"id": 2, "subscribe": {}})).await {
        return;
    }
    // `{}` every 300 ms; a client that has not answered the last one by
    // the next is dropped.
    let mut ping = tokio::time::interval(Duration::from_millis(300));
    let mut answered = true;
    loop {
        tokio::select! {
            m = recv(&mut ws) => {
                let Some(m) = m else { return };
                assert_eq!(m, json!({}), "only pongs after subscribing");
                answered = true;
            }
            e = rx.recv() => {
                let Ok(e) = e else { return };
                if let Some(data) = event_of(&e, &channel) {
                    let push = json!({"push": {"channel": channel, "pub": {"data": data}}});
                    if !send(&mut ws, push).await {
                        return;
                    }
                }
            }
            _ = ping.tick() => {
                if !answered {
                    seen.dropped.fetch_add(1, Ordering::Relaxed);
                    let _ = ws.close(None).await;
                    return;
                }
                answered = false;
                if ws.send(Message::text("{}")).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn centrifugo_preset_answers_pings_and_keeps_every_client() {
    std::env::set_var("CENTRIFUGO_TOKEN", "token-1");
    std::env::set_var("CENTRIFUGO_API_KEY", "key-1");
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let peer = PubSub::start(move |c, r| centrifugo(c, r, s.clone())).await;
    let (out, _dir) = run(&peer, "profile = \"centrifugo\"", "centrifugo").await;
    let r = row(&out.rows, "websocket");
    exact(r);
    assert_eq!(seen.dropped.load(Ordering::Relaxed), 0);
    assert!(r.control_messages.unwrap() >= 6 * 8, "{r:?}");
}

// -------------------------------------------------------------------- Pusher

async fn pusher(c: Conn, req: Req, seen: Arc<Seen>) {
    if !is_upgrade(&req) {
        return http_publish(c, req, |r, v| {
            (r.path == "/apps/app-id/events" && v["name"] == "msg").then_some(())?;
            // `data` stays a JSON string on the wire.
            Some((v["channel"].as_str()?.to_string(), v["data"].clone()))
        })
        .await;
    }
    assert!(
        req.path.starts_with("/app/app-key?protocol=7"),
        "{}",
        req.path
    );
    let mut rx = c.subscribe();
    let Some(mut ws) = c.upgrade(&req, None).await else {
        return;
    };
    let hello = json!({"event": "pusher:connection_established",
        "data": json!({"socket_id": "1.1", "activity_timeout": 120}).to_string()});
    if !send(&mut ws, hello).await {
        return;
    }
    let mut channel: Option<String> = None;
    let mut ping = tokio::time::interval(Duration::from_millis(300));
    let mut answered = true;
    loop {
        tokio::select! {
            m = recv(&mut ws) => {
                let Some(m) = m else { return };
                match m["event"].as_str() {
                    Some("pusher:subscribe") => {
                        let ch = m["data"]["channel"].as_str().unwrap().to_string();
                        let ok = json!({"event": "pusher_internal:subscription_succeeded",
                            "channel": ch, "data": "{}"});
                        if !send(&mut ws, ok).await {
                            return;
                        }
                        channel = Some(ch);
                    }
                    Some("pusher:pong") => answered = true,
                    Some("pusher:ping") => {
                        if !send(&mut ws, json!({"event": "pusher:pong", "data": {}})).await {
                            return;
                        }
                    }
                    Some("pusher:unsubscribe") => {
                        seen.goodbyes.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => panic!("unexpected Pusher event {m}"),
                }
            }
            e = rx.recv() => {
                let Ok(e) = e else { return };
                let Some(ch) = &channel else { continue };
                if let Some(data) = event_of(&e, ch) {
                    if !send(&mut ws, json!({"event": "msg", "channel": ch, "data": data})).await {
                        return;
                    }
                }
            }
            _ = ping.tick() => {
                if !answered {
                    seen.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                answered = false;
                if !send(&mut ws, json!({"event": "pusher:ping", "data": {}})).await {
                    return;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pusher_preset_follows_json_string_data_and_answers_pings() {
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let peer = PubSub::start(move |c, r| pusher(c, r, s.clone())).await;
    let (out, _dir) = run(&peer, "profile = \"pusher\"", "pusher").await;
    let r = row(&out.rows, "websocket");
    exact(r);
    assert_eq!(seen.dropped.load(Ordering::Relaxed), 0);
    assert!(r.control_messages.unwrap() >= 6 * 8, "{r:?}");
    assert_eq!(seen.goodbyes.load(Ordering::Relaxed), 6);
}
