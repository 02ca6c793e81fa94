//! What real servers do, each against a scripted peer on real sockets (the
//! cases of `../shared/cases/` and more inputs of the same kinds): named
//! SSE heartbeats, keep-alive lines, compressed bodies, idle keep-alive
//! closes, a subscribe that never completes, a publisher that never
//! succeeds. Each is counted right and none is silent.

mod support;

use std::io::Write;
use std::time::Duration;

use stampede::fault::ErrorKind;
use stampede::metrics::summary::SummaryRow;
use stampede::run::RunOutcome;
use stampede::shutdown::Shutdown;
use support::pubsub::{next_or_idle, scenario, stream_with_keepalive, Conn, PubSub, Req};
use support::{plan, row, run_plan, TempDir};

async fn run_against(peer: &PubSub, text: &str, tag: &str) -> (RunOutcome, TempDir) {
    peer.run(text, tag).await
}

fn exact(r: &SummaryRow) {
    assert!(r.expected.unwrap() > 0, "{r:?}");
    assert_eq!(r.delivered, r.expected, "{r:?}");
    assert_eq!(r.lost, Some(0), "{r:?}");
    assert_eq!(r.errors, 0, "{r:?}");
    assert_eq!(r.error_rate, 0.0, "{r:?}");
}

/// Fails unless a warning in `run.json` contains `needle`.
fn assert_warned(dir: &std::path::Path, needle: &str) {
    let w = warnings(dir);
    assert!(
        w.iter().any(|w| w.contains(needle)),
        "no warning with {needle:?}: {w:?}"
    );
}

fn warnings(dir: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("run.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";

/// An SSE stream that sends `idle_frame` whenever 100 ms pass without an
/// event (a heartbeat in one of the forms real servers use).
async fn sse_with_heartbeats(c: Conn, _req: Req, idle_frame: &'static [u8]) {
    stream_with_keepalive(c, SSE_HEAD, idle_frame, |m| {
        [b"data: ", m, b"\n\n"].concat()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_heartbeats_in_every_form_are_control_messages_not_errors() {
    // (frame, counted as a control message): a browser's onmessage sees
    // none of them; a named event is dispatched (and counted), a comment
    // or an empty data block is not dispatched at all.
    for (frame, counted) in [
        (&b"event: ping\ndata: 2026-01-01T00:00:00\n\n"[..], true),
        (b"event: heartbeat\r\ndata: {}\r\n\r\n", true),
        (b": keep-alive\n\n", false),
        (b"data:\n\n", true),
        (b"data: \r\n\r\n", true),
        (b"event: ping\n\n", false),
    ] {
        let peer = PubSub::start(move |c, r| sse_with_heartbeats(c, r, frame)).await;
        let text = scenario(
            "sse",
            3,
            "2s",
            "",
            "[profile.sse]\nurl = \"/sse/{channel}\"",
        );
        let (out, _dir) = run_against(&peer, &text, "sse-hb").await;
        let r = row(&out.rows, "sse");
        assert_eq!(r.errors, 0, "{:?}: {r:?}", String::from_utf8_lossy(frame));
        exact(r);
        let control = r.control_messages.unwrap();
        assert_eq!(
            control > 0,
            counted,
            "{:?}: {r:?}",
            String::from_utf8_lossy(frame)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_names_other_sse_event_types_as_data() {
    async fn named(mut c: Conn, _req: Req) {
        let mut rx = c.subscribe();
        c.write(SSE_HEAD).await;
        while let Ok(Some(m)) = next_or_idle(&mut rx, Duration::from_secs(30)).await {
            let frame = [
                b"event: update\ndata: ",
                &m[..],
                b"\n\nevent: ping\ndata: x\n\n",
            ]
            .concat();
            if !c.write(&frame).await {
                return;
            }
        }
    }
    let peer = PubSub::start(named).await;
    let text = scenario(
        "sse",
        2,
        "2s",
        "",
        "[profile.sse]\nurl = \"/sse/{channel}\"\nevents = [\"update\"]",
    );
    let (out, _dir) = run_against(&peer, &text, "sse-named").await;
    let r = row(&out.rows, "sse");
    exact(r);
    // One ping per event received. An event published while a client's
    // subscription was being confirmed may arrive without being expected
    // (the ledger's boundary), and its ping still counts: at most one such
    // event per client.
    let (control, delivered) = (r.control_messages.unwrap(), r.delivered.unwrap());
    assert!(
        control >= delivered && control <= delivered + r.clients,
        "{r:?}"
    );
    assert_eq!(r.other_messages, Some(0), "{r:?}");
}

async fn ndjson_with_keepalives(c: Conn, _req: Req, keepalive: &'static [u8], eol: &'static [u8]) {
    let head =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n";
    stream_with_keepalive(c, head, keepalive, |m| {
        let v = serde_json::json!({ "data": String::from_utf8_lossy(m) });
        [serde_json::to_vec(&v).unwrap(), eol.to_vec()].concat()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_keepalive_lines_are_not_errors() {
    for (keepalive, eol) in [
        (&b"\r\n"[..], &b"\n"[..]),
        (b" \n", b"\r\n"),
        (b"\t \r\n", b"\n"),
        (b"\n", b"\n"),
    ] {
        let peer = PubSub::start(move |c, r| ndjson_with_keepalives(c, r, keepalive, eol)).await;
        let text = scenario(
            "ndjson",
            2,
            "2s",
            "",
            "[profile.ndjson]\nurl = \"/stream/{channel}\"",
        );
        let (out, _dir) = run_against(&peer, &text, "ndjson-ka").await;
        let r = row(&out.rows, "ndjson");
        exact(r);
        // An empty line is not even a message; whitespace is a keep-alive.
        assert_eq!(r.control_messages.unwrap() > 0, keepalive != b"\n", "{r:?}");
    }
}

/// Compresses a stream the way servers do: each event flushed on its own.
enum Coder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Zlib(flate2::write::ZlibEncoder<Vec<u8>>),
    Raw(flate2::write::DeflateEncoder<Vec<u8>>),
}

impl Coder {
    fn new(coding: &str) -> Coder {
        let level = flate2::Compression::default();
        match coding {
            "gzip" => Coder::Gzip(flate2::write::GzEncoder::new(Vec::new(), level)),
            "deflate" => Coder::Zlib(flate2::write::ZlibEncoder::new(Vec::new(), level)),
            _ => Coder::Raw(flate2::write::DeflateEncoder::new(Vec::new(), level)),
        }
    }
    fn flushed(&mut self, data: &[u8]) -> Vec<u8> {
        fn go<W: Write>(w: &mut W, data: &[u8]) {
            w.write_all(data).unwrap();
            w.flush().unwrap();
        }
        match self {
            Coder::Gzip(z) => {
                go(z, data);
                std::mem::take(z.get_mut())
            }
            Coder::Zlib(z) => {
                go(z, data);
                std::mem::take(z.get_mut())
            }
            Coder::Raw(z) => {
                go(z, data);
                std::mem::take(z.get_mut())
            }
        }
    }
}

async fn compressed_sse(mut c: Conn, req: Req, coding: &'static str) {
    let mut rx = c.subscribe();
    let header = if coding == "raw-deflate" {
        "deflate"
    } else {
        coding
    };
    c.write(
        format!("HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\nContent-Encoding: {header}\r\nX-Accept: {}\r\n\r\n",
            req.headers.get("accept-encoding").cloned().unwrap_or_default())
        .as_bytes(),
    )
    .await;
    if coding == "zstd" {
        // Bytes no one here can read: the client must say so.
        while let Ok(Some(_)) = next_or_idle(&mut rx, Duration::from_secs(30)).await {
            if !c.write(b"\x28\xb5\x2f\xfd garbage").await {
                return;
            }
        }
        return;
    }
    let mut coder = Coder::new(coding);
    while let Ok(Some(m)) = next_or_idle(&mut rx, Duration::from_secs(30)).await {
        let bytes = coder.flushed(&[b"data: ", &m[..], b"\n\n"].concat());
        if !c.write(&bytes).await {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_event_streams_are_decoded_as_they_arrive() {
    for coding in ["gzip", "deflate", "raw-deflate"] {
        let peer = PubSub::start(move |c, r| compressed_sse(c, r, coding)).await;
        let text = scenario(
            "sse",
            2,
            "2s",
            "",
            "accept_encoding = \"gzip, deflate, br\"\n[profile.sse]\nurl = \"/sse/{channel}\"",
        );
        let (out, _dir) = run_against(&peer, &text, "sse-gz").await;
        let r = row(&out.rows, "sse");
        exact(r);
        // Flushed per event, so each is delivered when it is sent.
        assert!(r.delivery_p99_ms.unwrap() < 1000.0, "{coding}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coding_stampede_cannot_decode_is_an_error_on_every_session() {
    let peer = PubSub::start(|c, r| compressed_sse(c, r, "zstd")).await;
    let text = scenario(
        "sse",
        2,
        "2s",
        "",
        "[profile.sse]\nurl = \"/sse/{channel}\"",
    );
    let (out, dir) = run_against(&peer, &text, "sse-zstd").await;
    let r = row(&out.rows, "sse");
    assert_eq!(r.delivered, Some(0), "{r:?}");
    assert_eq!(r.lost, r.expected, "{r:?}");
    assert!(
        r.errors_of(ErrorKind::Protocol) >= 2,
        "one per session at least: {r:?}"
    );
    let info = std::fs::read_to_string(dir.path().join("run.json")).unwrap();
    assert!(info.contains("Content-Encoding: zstd"), "{info}");
    assert_warned(dir.path(), "every expected event was lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_encoding_offering_what_stampede_cannot_decode_is_a_scenario_error() {
    let text = scenario(
        "sse",
        1,
        "1s",
        "",
        "accept_encoding = \"gzip, zstd\"\n[profile.sse]\nurl = \"/sse/{channel}\"",
    );
    let src = stampede::scenario::Source {
        path: "case.toml".into(),
        text: format!("target = \"http://127.0.0.1:9\"\n{text}"),
        overridden: false,
    };
    let sc = stampede::scenario::parse(&src).unwrap();
    let err = match stampede::plan::build(&sc, &src, &Default::default()) {
        Ok(_) => panic!("zstd accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("case.toml:") && err.contains("zstd"), "{err}");
}

/// A poller's server: answers polls with the lines published after the
/// `after` cursor, and closes a keep-alive connection idle for `idle`
/// (Node's default is 5 s; here it equals the poll interval, so the close
/// and the next GET cross). `announce` sends `Keep-Alive: timeout=N`.
async fn idle_closing_poll(c: Conn, first: Req, idle: Duration, gzip: bool, announce: bool) {
    poll_server(c, first, idle, gzip, announce, false).await
}

/// The poll server; `drop_second` reads every second GET on a connection
/// and closes without answering: the close and the GET crossing, made
/// certain instead of left to timing.
async fn poll_server(
    mut c: Conn,
    first: Req,
    idle: Duration,
    gzip: bool,
    announce: bool,
    drop_second: bool,
) {
    let mut gets = 0u32;
    let mut req = first;
    loop {
        if req.method == "POST" {
            c.publish(&req).await;
        } else {
            gets += 1;
            if drop_second && gets.is_multiple_of(2) {
                return;
            }
            let log = c.hub.log.lock().unwrap().clone();
            let after: Option<usize> = req.path.split("after=").nth(1).and_then(|a| a.parse().ok());
            // A zero idle time: every answer says `Connection: close` and
            // the connection closes after it.
            let ka = if idle.is_zero() {
                "Connection: close\r\n".to_string()
            } else if announce {
                format!("Keep-Alive: timeout={}\r\n", idle.as_secs())
            } else {
                String::new()
            };
            let answer = match after {
                Some(a) if a < log.len() => {
                    let mut body: Vec<u8> = log[a..]
                        .iter()
                        .flat_map(|m| [&m[..], b"\n"].concat())
                        .collect();
                    let mut coding = "";
                    if gzip {
                        let mut z =
                            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                        z.write_all(&body).unwrap();
                        body = z.finish().unwrap();
                        coding = "Content-Encoding: gzip\r\n";
                    }
                    [
                        format!(
                            "HTTP/1.1 200 OK\r\nX-Cursor: {}\r\n{ka}{coding}Content-Length: {}\r\n\r\n",
                            log.len(),
                            body.len()
                        )
                        .into_bytes(),
                        body,
                    ]
                    .concat()
                }
                _ => format!(
                    "HTTP/1.1 204 No Content\r\n{ka}X-Cursor: {}\r\n\r\n",
                    after.unwrap_or(log.len())
                )
                .into_bytes(),
            };
            if !c.write(&answer).await || idle.is_zero() {
                return;
            }
        }
        req = match tokio::time::timeout(idle, c.read_req()).await {
            Ok(Some(r)) => r,
            // Idle keep-alive timeout (or the client left): close.
            _ => return,
        };
    }
}

fn poll_scenario(clients: u32, interval: &str, duration: &str) -> String {
    scenario(
        "poll",
        clients,
        duration,
        &format!("interval = \"{interval}\""),
        "[profile.poll]\nurl = \"/poll/{channel}\"\ncursor = \"query\"\ncursor_param = \"after\"\ncursor_header = \"x-cursor\"\nstart = \"head\"\nbody = \"lines\"\nempty_status = [204]",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_that_crosses_an_idle_close_is_sent_again_not_counted_as_a_reset() {
    let peer =
        PubSub::start(|c, r| idle_closing_poll(c, r, Duration::from_secs(1), false, false)).await;
    let (out, _dir) = run_against(&peer, &poll_scenario(20, "1s", "6s"), "poll-idle").await;
    let r = row(&out.rows, "poll");
    exact(r);
    assert_eq!(r.errors_of(ErrorKind::Reset), 0, "{r:?}");
    // Where the close and the GET cross (timing decides how often), the
    // GET is retried once; its latency still runs from its intended start
    // (no poll is later than an interval and a bit).
    assert!(r.delivery_p99_ms.unwrap() < 1500.0, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_the_server_closes_on_is_sent_again_on_a_fresh_connection() {
    let peer =
        PubSub::start(|c, r| poll_server(c, r, Duration::from_secs(30), false, false, true)).await;
    let (out, _dir) = run_against(&peer, &poll_scenario(10, "300ms", "3s"), "poll-drop").await;
    let r = row(&out.rows, "poll");
    exact(r);
    assert_eq!(r.errors_of(ErrorKind::Reset), 0, "{r:?}");
    // Every second GET on a connection meets the close: about half the polls.
    assert!(r.retries.unwrap() * 3 > r.requests, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_keep_alive_timeout_is_honoured_and_gzip_poll_bodies_decoded() {
    let peer =
        PubSub::start(|c, r| idle_closing_poll(c, r, Duration::from_secs(1), true, true)).await;
    let (out, _dir) = run_against(&peer, &poll_scenario(10, "1s", "4s"), "poll-ka").await;
    let r = row(&out.rows, "poll");
    exact(r);
    // Half the announced timeout has passed before every next poll, so a
    // fresh connection goes out each time and no GET meets a close.
    assert_eq!(r.retries, Some(0), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_that_never_completes_is_a_timeout_and_its_events_are_lost() {
    let peer = PubSub::start(|c: Conn, _r| async move {
        // Holds the request forever, answering nothing.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(c);
    })
    .await;
    let text = scenario(
        "sse",
        3,
        "2s",
        "",
        "[profile.sse]\nurl = \"/sse/{channel}\"",
    );
    let (out, dir) = run_against(&peer, &text, "sse-wedged").await;
    let r = row(&out.rows, "sse");
    assert!(r.published.unwrap() > 0, "{r:?}");
    assert!(r.expected.unwrap() >= 3 * r.published.unwrap() / 2, "{r:?}");
    assert_eq!(r.lost, r.expected, "{r:?}");
    assert_eq!(r.errors_of(ErrorKind::Timeout), 3, "one per client: {r:?}");
    assert_warned(dir.path(), "every expected event was lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_that_never_succeeds_fails_the_run_even_when_short() {
    let peer = PubSub::start(|mut c: Conn, r: Req| async move {
        let mut req = Some(r);
        while let Some(r) = req {
            if r.method == "POST" {
                if !c
                    .write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    .await
                {
                    return;
                }
                req = c.read_req().await;
            } else {
                c.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
                    .await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
        }
    })
    .await;
    // Publishes go to a path the peer refuses.
    let text = scenario(
        "sse",
        2,
        "2s",
        "",
        "[profile.sse]\nurl = \"/sse/{channel}\"",
    )
    .replace("url = \"/pub/{channel}\"", "url = \"/nowhere/{channel}\"");
    let (out, dir) = run_against(&peer, &text, "pub-dead").await;
    assert_eq!(out.exit_code, stampede::exit::RUNTIME);
    let info = std::fs::read_to_string(dir.path().join("run.json")).unwrap();
    assert!(info.contains("the publisher never succeeded"), "{info}");
    assert_warned(dir.path(), "no event was published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mebibyte_ndjson_records_are_delivered() {
    let peer = PubSub::start(|c, r| ndjson_with_keepalives(c, r, b"\r\n", b"\n")).await;
    let text = scenario(
        "ndjson",
        2,
        "2s",
        "",
        "[profile.ndjson]\nurl = \"/stream/{channel}\"",
    )
    .replace("rate = 10", "rate = 2\npayload_bytes = 1048576");
    let (out, _dir) = run_against(&peer, &text, "ndjson-big").await;
    exact(row(&out.rows, "ndjson"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_subscribe_names_its_location() {
    let peer = PubSub::start(|mut c: Conn, _r| async move {
        c.write(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere/sse\r\nContent-Length: 0\r\n\r\n")
            .await;
    })
    .await;
    let text = scenario(
        "sse",
        1,
        "1s",
        "",
        "[profile.sse]\nurl = \"/sse/{channel}\"",
    );
    let (out, dir) = run_against(&peer, &text, "sse-redirect").await;
    assert!(row(&out.rows, "sse").errors_of(ErrorKind::Status) > 0);
    let info = std::fs::read_to_string(dir.path().join("run.json")).unwrap();
    assert!(
        info.contains("answered 307 (no Content-Type, Location: /elsewhere/sse)"),
        "{info}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_is_tried_at_each_of_its_addresses() {
    // `localhost` may resolve to ::1 first; the peer listens on 127.0.0.1.
    let peer = PubSub::start(|c, r| sse_with_heartbeats(c, r, b": hb\n\n")).await;
    let port = peer.url.rsplit(':').next().unwrap().to_string();
    let text = scenario(
        "sse",
        2,
        "2s",
        "",
        "[profile.sse]\nurl = \"/sse/{channel}\"",
    );
    let p = plan(&format!("target = \"http://localhost:{port}\"\n{text}"));
    let dir = TempDir::new("localhost");
    let out = run_plan(p, dir.path(), Shutdown::new()).await;
    exact(row(&out.rows, "sse"));
}

/// A JSON poll API with no cursor header: items carry ids, `?after=<id>`
/// pages. `pointer` nests the id as `{"meta":{"id":N}}`.
async fn json_items_api(mut c: Conn, first: Req, pointer: bool) {
    let mut req = Some(first);
    while let Some(r) = req {
        if r.method == "POST" {
            c.publish(&r).await;
        } else {
            let log = c.hub.log.lock().unwrap().clone();
            let after: usize = r
                .path
                .split("after=")
                .nth(1)
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            let items: Vec<serde_json::Value> = log
                .iter()
                .enumerate()
                .skip(after)
                .map(|(i, m)| {
                    let data = String::from_utf8(m.clone()).unwrap();
                    if pointer {
                        serde_json::json!({ "meta": { "id": i + 1 }, "data": data })
                    } else {
                        serde_json::json!({ "id": (i + 1).to_string(), "data": data })
                    }
                })
                .collect();
            let body = serde_json::to_vec(&items).unwrap();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            if !c.write(&[head.into_bytes(), body].concat()).await {
                return;
            }
        }
        req = c.read_req().await;
    }
}

fn json_poll(cursor: &str) -> String {
    scenario(
        "poll",
        5,
        "3s",
        "interval = \"200ms\"",
        &format!("[profile.poll]\nurl = \"/items/{{channel}}\"\nbody = \"json-array\"\ncursor_param = \"after\"\n{cursor}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_from_the_body_pages_a_json_api_without_duplicates() {
    for (pointer, cursor) in [
        (false, "cursor = \"body\""),
        (true, "cursor = \"body\"\ncursor_field = \"/meta/id\""),
    ] {
        let peer = PubSub::start(move |c, r| json_items_api(c, r, pointer)).await;
        let (out, dir) = run_against(&peer, &json_poll(cursor), "poll-body").await;
        let r = row(&out.rows, "poll");
        exact(r);
        assert_eq!(r.duplicated, Some(0), "{cursor}: {r:?}");
        // (A busy machine may add a load-generator warning; none of these.)
        let w = warnings(dir.path());
        assert!(!w.iter().any(|w| w.contains("group poll")), "{w:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_without_a_working_cursor_is_named_in_a_warning() {
    let peer = PubSub::start(|c, r| json_items_api(c, r, false)).await;
    let (out, dir) = run_against(&peer, &json_poll("cursor = \"none\""), "poll-nocursor").await;
    let r = row(&out.rows, "poll");
    assert!(r.duplicated.unwrap() > r.delivered.unwrap(), "{r:?}");
    assert_warned(dir.path(), "a poller without a working cursor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mebibyte_events_reach_every_transport_of_the_reference_server() {
    let target = support::InProcess::start().await;
    let mut groups = String::new();
    for t in ["poll", "long-poll", "sse", "ndjson", "websocket"] {
        groups.push_str(&format!("[[groups]]\ntransport = \"{t}\"\nclients = 2\n"));
        if t == "poll" {
            groups.push_str("interval = \"200ms\"\n");
        }
    }
    let text = format!(
        "name = \"big\"\nduration = \"2s\"\ndrain = \"1s\"\nmode = \"concurrent\"\n\
         [publisher]\nrate = 2\npayload_bytes = 1048576\n{groups}"
    );
    let mut p = plan(&text);
    target.aim(&mut p);
    let dir = TempDir::new("big-ref");
    let out = run_plan(p, dir.path(), Shutdown::new()).await;
    for r in &out.rows {
        exact(r);
    }
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_answered_with_connection_close_goes_on_a_fresh_connection() {
    let peer = PubSub::start(|c, r| idle_closing_poll(c, r, Duration::ZERO, false, false)).await;
    let (out, _dir) = run_against(&peer, &poll_scenario(10, "500ms", "3s"), "poll-close").await;
    let r = row(&out.rows, "poll");
    exact(r);
    assert_eq!(r.retries, Some(0), "{r:?}");
}
