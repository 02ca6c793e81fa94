//! Conformance: every transport kind against the reference server (started as
//! a child process, as `stampede run` does), on one event stream, with exact
//! accounting. A new subscribing transport kind is covered here
//! automatically; request and echo load have their own tests.

mod support;

use stampede::shutdown::Shutdown;
use stampede::transport::TransportKind;
use support::*;

const CLIENTS: u64 = 20;
const RATE: u64 = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_delivers_every_event_exactly_once() {
    let mut text = format!(
        "name = \"conformance\"\nduration = \"3s\"\nwarmup = \"500ms\"\nmode = \"concurrent\"\n\
         [publisher]\nrate = {RATE}\npayload_bytes = 200\n"
    );
    // Broker protocols (STOMP, MQTT) are not the reference server's: their
    // conformance runs are against real brokers (tests/rabbitmq.rs,
    // tests/mqtt.rs).
    let builtin = stampede::transport::Sections::preset("builtin");
    for kind in TransportKind::ALL
        .into_iter()
        .filter(|k| k.subscribes() && builtin.url_for(*k).is_some())
    {
        text.push_str(&format!(
            "[[groups]]\ntransport = \"{}\"\nclients = {CLIENTS}\n",
            kind.label()
        ));
        if kind == TransportKind::Poll {
            text.push_str("interval = \"200ms\"\n");
        }
    }
    // Polling without keep-alive: a new TCP connection per request.
    text.push_str("[[groups]]\nname = \"poll-close\"\ntransport = \"poll\"\nclients = 5\ninterval = \"250ms\"\nkeep_alive = false\n");

    let dir = TempDir::new("conformance");
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0);
    let rows = stampede::report::summary_csv::read(&out.dir).unwrap();
    assert_eq!(rows, out.rows, "summary.csv round-trips");

    for r in &rows {
        let clients = r.clients;
        // 3 s at 25 events/s, measured window [0.5 s, 3.5 s).
        assert_eq!(r.published.unwrap_or(0), 3 * RATE, "{}: published", r.group);
        assert_eq!(
            r.expected.unwrap_or(0),
            r.published.unwrap_or(0) * clients,
            "{}: every client subscribed for the whole window",
            r.group
        );
        assert_eq!(
            r.delivered.unwrap_or(0),
            r.expected.unwrap_or(0),
            "{}: delivered",
            r.group
        );
        assert_eq!(
            (
                r.lost.unwrap_or(0),
                r.duplicated.unwrap_or(0),
                r.reordered.unwrap_or(0)
            ),
            (0, 0, 0),
            "{}",
            r.group
        );
        assert_eq!(r.errors, 0, "{}: errors", r.group);
        assert!(r.bytes_received > 0, "{}: wire bytes", r.group);
        assert!(
            r.connect_p50_ms.is_some() && r.subscribe_p50_ms.is_some(),
            "{}",
            r.group
        );
        assert!(r.first_event_p50_ms.is_some(), "{}", r.group);
        // Wire bytes include framing: never less than the payloads (less
        // 5%: bytes count by measured second, deliveries by publish time,
        // and the two windows differ by an event or two at the edges).
        assert!(
            r.bytes_received >= r.delivered.unwrap_or(0) * 190,
            "{}: bytes_received {} for {:?} deliveries",
            r.group,
            r.bytes_received,
            r.delivered
        );
        let p50 = r.delivery_p50_ms.unwrap();
        let max = r.delivery_max_ms.unwrap();
        if r.transport == "poll" {
            // Interval polling waits on average half an interval.
            assert!((40.0..250.0).contains(&p50), "{}: p50 {p50}", r.group);
            assert!(r.requests_per_delivery.unwrap() > 0.1);
            assert!(r.requests > 0 && r.bytes_sent > 0);
        } else {
            assert!(p50 < 100.0, "{}: p50 {p50}", r.group);
        }
        assert!(max < 2_000.0, "{}: max {max}", r.group);
        assert!(r.target_cpu_s.is_some() && r.target_rss_peak_mb.unwrap() > 0.0);
        assert!(r.client_rss_peak_mb > 0.0);
    }
    let close = row(&rows, "poll-close");
    let keep = row(&rows, "poll");
    // Per-request connections show up as connect samples and more bytes per request.
    assert!(close.connect_p50_ms.is_some());
    let per_req =
        |r: &stampede::metrics::summary::SummaryRow| r.bytes_sent as f64 / r.requests as f64;
    assert!(
        per_req(close) > per_req(keep),
        "Connection: close costs bytes"
    );
    let sse = row(&rows, "sse");
    let ws = row(&rows, "websocket");
    assert!(ws.bytes_per_delivery.unwrap() < sse.bytes_per_delivery.unwrap());
    assert!(keep.requests_per_delivery.unwrap() > sse.requests_per_delivery.unwrap());
}
