//! ws-rpc (request–reply over WebSocket, matched by correlation id):
//! against the reference server's `/rpc`, against scripted peers that
//! answer out of order, drop, invent and repeat replies, push, and stall a
//! reconnection, and the scenario errors of its `rpc` table.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use stampede::fault::{ErrorKind, Fault};
use stampede::net::IoCounters;
use stampede::shutdown::Shutdown;
use stampede::transport::ws_rpc::WsRpc;
use stampede::transport::{RequestSample, Sink, Step, Transport};
use support::raw::spec_for;
use support::*;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const REQUEST: &str = r#"{"jsonrpc":"2.0","id":{id},"method":"echo","params":["{client}"]}"#;

fn group(clients: u64, rate: u64, url: &str, timeout: &str) -> String {
    format!(
        "[[groups]]\ntransport = \"ws-rpc\"\nclients = {clients}\nrate = {rate}\nurl = \"{url}\"\n\
         rpc = {{ request = '{REQUEST}', id = \"/id\", error = \"/error\", timeout = \"{timeout}\" }}\n"
    )
}

/// Every sample and fault a session reports.
#[derive(Default)]
struct Record {
    samples: Vec<RequestSample>,
    faults: Vec<Fault>,
    messages: Vec<String>,
}

impl Sink for Record {
    fn connected(&mut self, _: Duration) {}
    fn subscribed(&mut self, _: Duration) {}
    fn disconnected(&mut self) {}
    fn message(&mut self, payload: &[u8], _: Instant) {
        self.messages
            .push(String::from_utf8_lossy(payload).into_owned());
    }
    fn request(&mut self, s: RequestSample) {
        self.samples.push(s);
    }
    fn server_timeout(&mut self) {}
    fn fault(&mut self, f: Fault) {
        self.faults.push(f);
    }
}

impl Record {
    fn of(&self, kind: ErrorKind) -> Vec<&str> {
        self.faults
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| f.detail.as_str())
            .collect()
    }
}

fn reply(id: u64) -> Message {
    Message::text(format!(r#"{{"jsonrpc":"2.0","id":{id},"result":"ok"}}"#))
}

/// The id of a request the peer read.
fn id_of(m: &Message) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&m.clone().into_data()).unwrap();
    v["id"].as_u64().unwrap()
}

/// A ws-rpc session aimed at `addr` with the plan's `rpc` table.
fn session_spec(addr: std::net::SocketAddr, timeout: &str) -> stampede::transport::SessionSpec {
    let p = plan(&format!(
        "name = \"x\"\nduration = \"1s\"\n{}",
        group(1, 1, "/rpc", timeout)
    ));
    let mut spec = spec_for(addr, "/rpc");
    spec.params.rpc = p.groups[0].params.rpc.clone();
    spec
}

#[tokio::test]
async fn every_request_ends_as_a_reply_a_timeout_or_an_error_exactly() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut ids = Vec::new();
        while ids.len() < 6 {
            let m = ws.next().await.unwrap().unwrap();
            if m.is_text() {
                ids.push(id_of(&m));
            }
        }
        // Out of order; 2 is an error answer; 4 and 5 never answered.
        let answers = [
            r#"{"jsonrpc":"2.0","id":3,"result":"ok","error":null}"#.to_string(),
            r#"{"jsonrpc":"2.0","id":1,"result":"ok"}"#.to_string(),
            r#"{"jsonrpc":"2.0","id":"2","error":{"code":-32000,"message":"busy"}}"#.to_string(),
        ];
        for a in answers {
            ws.send(Message::text(a)).await.unwrap();
        }
        let push = r#"{"jsonrpc":"2.0","method":"tick","params":[]}"#;
        ws.send(Message::text(push)).await.unwrap();
        // Never sent, answered already, not an id at all.
        ws.send(reply(99)).await.unwrap();
        ws.send(reply(1)).await.unwrap();
        ws.send(Message::text(r#"{"jsonrpc":"2.0","id":null,"error":{}}"#))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        ws.send(reply(6)).await.unwrap();
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
        }
        ids
    });

    let spec = session_spec(addr, "1s");
    let mut sink = Record::default();
    let io = Arc::new(IoCounters::default());
    let mut s = WsRpc::open(&spec, &io, None, &mut sink).await.unwrap();
    let t0 = Instant::now();
    for _ in 0..5 {
        s.next(t0, &mut sink).await.unwrap();
    }
    // The sixth was meant to go half a second ago (a client running late).
    let late = Instant::now() - Duration::from_millis(500);
    s.next(late, &mut sink).await.unwrap();
    let step = s
        .idle(Instant::now() + Duration::from_millis(2500), &mut sink)
        .await
        .unwrap();
    assert_eq!(step, Step::Continue);
    s.close().await;
    assert_eq!(peer.await.unwrap(), [1, 2, 3, 4, 5, 6], "ids in send order");

    // 1, 2, 3 and 6 answered, in the order the replies came: each matched
    // to its own request (sent instants grow with the id).
    let sent: Vec<Instant> = sink.samples.iter().map(|r| r.sent).collect();
    assert_eq!(sent.len(), 4, "{:?}", sink.faults);
    assert!(sent[1] < sent[2] && sent[2] < sent[0] && sent[0] < sent[3]);
    let sixth = sink.samples[3];
    assert_eq!(sixth.intended, late);
    let corrected = sixth.done - sixth.intended;
    let uncorrected = sixth.done - sixth.sent;
    assert!(corrected >= uncorrected + Duration::from_millis(500));
    assert!(uncorrected >= Duration::from_millis(300), "{uncorrected:?}");

    let timeouts = sink.of(ErrorKind::Timeout);
    assert_eq!(
        timeouts,
        [
            "no reply to request id 4 within 1s",
            "no reply to request id 5 within 1s"
        ]
    );
    let protocol = sink.of(ErrorKind::Protocol);
    assert_eq!(protocol.len(), 3, "{protocol:?}");
    assert!(protocol[0].starts_with("a reply to request id 99, which was never sent: {"));
    assert!(protocol[1].starts_with("a reply to request id 1, which was answered already"));
    assert!(protocol[2].starts_with("a reply whose id is not one stampede sent"));
    assert_eq!(
        sink.of(ErrorKind::Status),
        [
            r#"the reply to request id 2 is an error: {"jsonrpc":"2.0","id":"2","error":{"code":-32000,"message":"busy"}}"#
        ]
    );
    assert_eq!(sink.faults.len(), 6);
    assert_eq!(
        sink.messages,
        [r#"{"jsonrpc":"2.0","method":"tick","params":[]}"#]
    );
}

#[tokio::test]
async fn requests_in_flight_when_the_connection_ends_are_errors_each() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut n = 0;
        while n < 3 {
            if ws.next().await.unwrap().unwrap().is_text() {
                n += 1;
            }
        }
        ws.send(reply(2)).await.unwrap();
        ws.close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await
        .unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    });
    let spec = session_spec(addr, "10s");
    let mut sink = Record::default();
    let io = Arc::new(IoCounters::default());
    let mut s = WsRpc::open(&spec, &io, None, &mut sink).await.unwrap();
    for _ in 0..3 {
        s.next(Instant::now(), &mut sink).await.unwrap();
    }
    let step = s
        .idle(Instant::now() + Duration::from_secs(5), &mut sink)
        .await;
    assert_eq!(step.unwrap(), Step::Ended);
    peer.await.unwrap();
    assert_eq!(sink.samples.len(), 1);
    assert_eq!(
        sink.of(ErrorKind::Reset),
        [
            "the connection ended before the reply to request id 1",
            "the connection ended before the reply to request id 3"
        ]
    );
    assert_eq!(sink.faults.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_the_reference_server_every_request_is_answered() {
    let target = InProcess::start().await;
    // Jittered replies overtake each other (sends every 20 ms per client).
    let mut p = plan(&format!(
        "name = \"rpc\"\nduration = \"2s\"\n{}",
        group(4, 200, "/rpc?jitter_ms=40", "5s")
    ));
    target.aim(&mut p);
    let dir = TempDir::new("ws-rpc");
    let out = run_plan(p, dir.path(), Shutdown::new()).await;
    let replies = target.hub.stats.rpc_replies.load(Ordering::Relaxed);
    target.stop().await;
    assert_eq!(out.exit_code, 0);

    let r = row(&out.rows, "ws-rpc");
    assert_eq!(r.transport, "ws-rpc");
    // 2 s at 200/s (fewer on a busy machine); no upper bound here: a late
    // interval sampler moves tail samples into the hold (`sampler_late`),
    // and the exact bound is the server's count below.
    assert!(r.requests >= 200, "{r:?}");
    assert_eq!(r.errors, 0, "{r:?}");
    assert!(r.request_p50_ms.is_some() && r.request_p99_ms.is_some());
    assert!(r.request_uncorrected_p50_ms.is_some());
    assert_eq!((r.other_messages, r.control_messages), (Some(0), Some(0)));
    assert_eq!((r.published, r.delivered, r.lost), (None, None, None));

    // Every reply the server sent was received and timed, the hold's and
    // those drained at the end alike.
    let logged: u64 = stampede::folder::hlog::read(&out.dir.join("ws-rpc.request.hlog"))
        .unwrap()
        .iter()
        .map(|i| i.hist.len())
        .sum();
    assert_eq!(logged, replies);
    assert!(logged >= r.requests);
}

/// A peer that answers the first connection's first 20 requests, then
/// closes it, and holds every later upgrade for `stall` before answering
/// everything.
async fn stalling_peer(listener: TcpListener, stall: Duration) {
    let upgrades = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    while let Ok((tcp, _)) = listener.accept().await {
        let upgrades = upgrades.clone();
        tokio::spawn(async move {
            // The run's reachability check connects and sends nothing.
            if let Ok(0) | Err(_) = tcp.peek(&mut [0u8; 1]).await {
                return;
            }
            let answer_only = (upgrades.fetch_add(1, Ordering::Relaxed) == 0).then_some(20);
            if answer_only.is_none() {
                tokio::time::sleep(stall).await;
            }
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            let mut answered = 0;
            while let Some(Ok(m)) = ws.next().await {
                let Message::Text(t) = m else { continue };
                if let Some(a) = stampede::reference::rpc::answer(t.as_bytes()) {
                    if ws.send(Message::text(a)).await.is_err() {
                        return;
                    }
                }
                answered += 1;
                if Some(answered) == answer_only {
                    let _ = ws.close(None).await;
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reconnection_shows_in_corrected_latency_only() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(stalling_peer(listener, Duration::from_millis(800)));
    let mut p = plan(&format!(
        "name = \"rpc-stall\"\nduration = \"3s\"\n{}",
        group(1, 50, "/rpc", "5s")
    ));
    p.target = stampede::plan::TargetPlan::Url {
        url: format!("http://{addr}"),
        authority: addr.to_string(),
        base_path: String::new(),
    };
    let dir = TempDir::new("ws-rpc-stall");
    let out = run_plan(p, dir.path(), Shutdown::new()).await;
    peer.abort();
    let r = row(&out.rows, "ws-rpc");
    assert_eq!(r.reconnects, 1, "{r:?}");
    assert_eq!(r.errors_of(ErrorKind::Timeout), 0, "{r:?}");
    // The ticks due while the client reconnected (backoff, then the 800 ms
    // the upgrade was held) went out late, timed from when they were due:
    // about a third of the hold's exchanges.
    let (corrected, uncorrected) = (
        r.request_p99_ms.unwrap(),
        r.request_uncorrected_p99_ms.unwrap(),
    );
    assert!(corrected >= 700.0, "corrected p99 {corrected} ms");
    assert!(
        uncorrected < corrected,
        "uncorrected p99 {uncorrected} ms, corrected {corrected} ms"
    );
    assert!(r.requests >= 100, "{r:?}");
}

fn plan_err(text: &str) -> String {
    let src = stampede::scenario::Source {
        path: "s.toml".into(),
        text: text.into(),
        overridden: false,
    };
    let sc = match stampede::scenario::parse(&src) {
        Ok(sc) => sc,
        Err(e) => return e.to_string(),
    };
    stampede::plan::build(&sc, &src, &Default::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

#[test]
fn rpc_table_errors_name_the_place() {
    let head = "name = \"x\"\nduration = \"1s\"\n[[groups]]\ntransport = \"ws-rpc\"\nclients = 1\nrate = 5\n";
    let e = plan_err(&format!(
        "{head}rpc = {{ request = '{{\"x\":1}}', id = \"/id\" }}\n"
    ));
    assert!(
        e.contains("s.toml:7:19") && e.contains("has no `{id}`"),
        "{e}"
    );
    let e = plan_err(&format!(
        "{head}rpc = {{ request = '{{id}}', id = \"id\" }}\n"
    ));
    assert!(
        e.contains("s.toml:7:32") && e.contains("not a JSON pointer"),
        "{e}"
    );
    let e = plan_err(&format!(
        "{head}rpc = {{ request = '{{id}}', id = \"/id\", timeout = \"soon\" }}\n"
    ));
    assert!(
        e.contains("s.toml:7:49") && e.contains("invalid duration"),
        "{e}"
    );
    let e = plan_err(&format!(
        "{head}rpc = {{ request = '[{{id}},\"{{data.user}}\"]', id = \"/0\" }}\n"
    ));
    assert!(e.contains("s.toml:7:27") && e.contains("[[data]]"), "{e}");
    let e = plan_err(&format!(
        "{head}rpc = {{ request = '{{id}}', id = \"/id\", ids = 3 }}\n"
    ));
    assert!(
        e.contains("s.toml:7:") && e.contains("unknown field `ids`"),
        "{e}"
    );
    let e = plan_err(head);
    assert!(e.contains("s.toml:4:13") && e.contains("needs `rpc"), "{e}");
    let e = plan_err(&head.replace("rate = 5\n", "rpc = { request = '{id}', id = \"\" }\n"));
    assert!(
        e.contains("s.toml:4:13") && e.contains("needs `rate`"),
        "{e}"
    );
    // `rpc` is ws-rpc's own key.
    let e = plan_err("name = \"x\"\nduration = \"1s\"\n[publisher]\nrate = 1\n[[groups]]\ntransport = \"websocket\"\nclients = 1\nrpc = { request = '{id}', id = \"/id\" }\n");
    assert!(
        e.contains("s.toml:8:7") && e.contains("applies to transport ws-rpc only"),
        "{e}"
    );
}
