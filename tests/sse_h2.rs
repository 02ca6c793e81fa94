//! SSE and NDJSON over HTTP/2 (h2c): exact delivery on the reference
//! server, connections shared by `streams_per_connection` clients (counted
//! by a proxy in front of the server, which sees every TCP connection), and
//! a shared connection's wire bytes attributed to its streams exactly.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stampede::shutdown::Shutdown;
use stampede::transport::h2::{H2Params, Pool};
use stampede::transport::sse::Sse;
use stampede::transport::Transport;
use support::raw::{spec_for, Collect};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A TCP proxy in front of `upstream` that counts the HTTP/2 connections
/// (those that open with the connection preface) and their bytes.
#[derive(Default)]
struct Counts {
    h2_connections: AtomicU64,
    /// Bytes client → server, server → client on HTTP/2 connections.
    h2_up: AtomicU64,
    h2_down: AtomicU64,
    /// Proxied connections not yet closed.
    open: AtomicU64,
}

async fn proxy(upstream: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let c = c.clone();
            c.open.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(server) = TcpStream::connect(upstream).await {
                    relay(client, server, &c).await;
                }
                c.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, counts)
}

async fn relay(mut client: TcpStream, mut server: TcpStream, c: &Counts) {
    let mut first = vec![0u8; PREFACE.len()];
    if client.read_exact(&mut first).await.is_err() {
        return;
    }
    let h2 = first == PREFACE;
    if h2 {
        c.h2_connections.fetch_add(1, Ordering::SeqCst);
        c.h2_up.fetch_add(first.len() as u64, Ordering::SeqCst);
    }
    if server.write_all(&first).await.is_err() {
        return;
    }
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let up = async {
        let mut buf = vec![0u8; 16384];
        while let Ok(n) = cr.read(&mut buf).await {
            if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
            if h2 {
                c.h2_up.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
        let _ = sw.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 16384];
        while let Ok(n) = sr.read(&mut buf).await {
            if n == 0 || cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
            if h2 {
                c.h2_down.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}

async fn wait_closed(c: &Counts) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_groups_deliver_exactly_over_shared_http2_connections() {
    let target = InProcess::start().await;
    let upstream = target.url.trim_start_matches("http://").parse().unwrap();
    let (addr, counts) = proxy(upstream).await;
    let text = "name = \"h2\"\nduration = \"3s\"\nwarmup = \"500ms\"\nmode = \"concurrent\"\n\
         [publisher]\nrate = 20\npayload_bytes = 200\nchannels = 3\n\
         [[groups]]\nname = \"sse-h2\"\ntransport = \"sse\"\nclients = 12\nhttp2 = true\n\
         [[groups]]\nname = \"sse-mux\"\ntransport = \"sse\"\nclients = 12\nhttp2 = true\n\
         streams_per_connection = 4\nstream_window = 16384\nconnection_window = 131072\n\
         [[groups]]\nname = \"ndjson-mux\"\ntransport = \"ndjson\"\nclients = 6\nhttp2 = true\n\
         streams_per_connection = 3\n";
    let mut p = plan(text);
    p.target = stampede::plan::TargetPlan::Url {
        url: format!("http://{addr}"),
        authority: addr.to_string(),
        base_path: String::new(),
    };
    let dir = TempDir::new("sse-h2");
    let out = run_plan(p, dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0, "{:?}", out.stop);
    for r in &out.rows {
        assert_eq!(r.published, Some(60), "{}", r.group);
        // 60 events over 3 channels: 20 for each client.
        assert_eq!(r.expected, Some(20 * r.clients), "{}", r.group);
        assert_eq!(r.delivered, r.expected, "{}: delivered", r.group);
        assert_eq!(
            (r.lost, r.duplicated, r.errors, r.reconnects),
            (Some(0), Some(0), 0, 0),
            "{}: {r:?}",
            r.group
        );
        assert!(r.bytes_received > 0, "{}", r.group);
    }
    wait_closed(&counts).await;
    // 12 connections of one stream, 12 streams on 3, 6 streams on 2.
    assert_eq!(counts.h2_connections.load(Ordering::SeqCst), 12 + 3 + 2);
    target.stop().await;
}

/// Two clients on one connection: the bytes the proxy relayed on it are the
/// sum of the two clients' counters, to the byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_connections_bytes_go_to_its_streams_exactly() {
    let target = InProcess::start().await;
    let upstream = target.url.trim_start_matches("http://").parse().unwrap();
    let (addr, counts) = proxy(upstream).await;
    let mut spec = spec_for(addr, "/sse/shared");
    spec.params.h2 = Some(H2Params {
        streams_per_connection: 2,
        stream_window: None,
        connection_window: None,
        pool: Arc::new(Pool::default()),
    });
    let io = [
        Arc::new(stampede::net::IoCounters::default()),
        Arc::new(stampede::net::IoCounters::default()),
    ];
    let mut sinks = [Collect::default(), Collect::default()];
    let [s0, s1] = &mut sinks;
    let mut a = Sse::open(&spec, &io[0], None, s0).await.expect("open a");
    let mut b = Sse::open(&spec, &io[1], None, s1).await.expect("open b");
    for i in 0..5 {
        target
            .hub
            .channel("shared")
            .publish(bytes::Bytes::from(format!("event {i}")));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while (sinks[0].messages.len() < 5 || sinks[1].messages.len() < 5) && Instant::now() < deadline
    {
        let [s0, s1] = &mut sinks;
        if s0.messages.len() < 5 {
            a.next(Instant::now(), s0).await.expect("a");
        }
        if s1.messages.len() < 5 {
            b.next(Instant::now(), s1).await.expect("b");
        }
    }
    assert_eq!(sinks[0].messages.len(), 5, "{:?}", sinks[0].messages);
    assert_eq!(sinks[1].messages, sinks[0].messages);
    drop(a);
    drop(b);
    wait_closed(&counts).await;
    assert_eq!(counts.h2_connections.load(Ordering::SeqCst), 1);
    let (s0, r0) = io[0].totals();
    let (s1, r1) = io[1].totals();
    assert!(
        r0 > 0 && r1 > 0,
        "each stream is attributed bytes: {r0} {r1}"
    );
    assert_eq!(r0 + r1, counts.h2_down.load(Ordering::SeqCst), "received");
    // What the connection writes after the streams stopped reading (each
    // one's RST_STREAM, 13 bytes, when no other stream reads after it, and
    // the GOAWAY, 17) has no stream left to go to.
    let up = counts.h2_up.load(Ordering::SeqCst);
    assert!(
        s0 + s1 <= up && up - (s0 + s1) <= 2 * 13 + 17,
        "sent {s0} + {s1} of {up}"
    );
    target.stop().await;
}

#[test]
fn http2_keys_are_checked_at_their_place() {
    let src = |text: &str| stampede::scenario::Source {
        path: "h2.toml".into(),
        text: text.into(),
        overridden: false,
    };
    let err = |text: &str| {
        let s = src(text);
        let sc = stampede::scenario::parse(&s).unwrap();
        match stampede::plan::build(&sc, &s, &Default::default()) {
            Ok(_) => panic!("no error for {text}"),
            Err(e) => e.to_string(),
        }
    };
    let base = "name = \"x\"\nduration = \"1s\"\n[publisher]\nrate = 1\n[[groups]]\n";
    let e = err(&format!(
        "{base}transport = \"sse\"\nclients = 2\nstreams_per_connection = 2\n"
    ));
    assert!(
        e.contains("h2.toml:8:") && e.contains("http2 = true"),
        "{e}"
    );
    let e = err(&format!(
        "{base}transport = \"ndjson\"\nclients = 2\nhttp2 = true\nstream_window = 0\n"
    ));
    assert!(
        e.contains("h2.toml:9:") && e.contains("1..=2147483647"),
        "{e}"
    );
    let e = err(&format!(
        "{base}transport = \"websocket\"\nclients = 2\nstreams_per_connection = 2\n"
    ));
    assert!(e.contains("sse") && e.contains("ndjson"), "{e}");
    // h2c only: over https:// the key is refused where it is written.
    let e = err(&format!(
        "target = \"https://127.0.0.1:1\"\n{base}transport = \"sse\"\nclients = 2\nhttp2 = true\n"
    ));
    assert!(e.contains("h2.toml:9:") && e.contains("h2c"), "{e}");
}
