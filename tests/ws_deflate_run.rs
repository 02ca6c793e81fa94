//! Whole runs against a scripted pub/sub server that compresses every
//! WebSocket message (permessage-deflate, with and without context
//! takeover): exact accounting, and bytes on the wire counted compressed.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use flate2::{Compress, Compression};
use stampede::shutdown::Shutdown;
use support::ws::{deflate, frame};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

type Subs = Arc<Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Vec<u8>>>>>>;

/// Serves `POST /pub/{ch}` (fanned out to the channel's subscribers) and
/// `GET /ws/{ch}` upgrades answered with `answer` when the client offers
/// permessage-deflate; `takeover`: one compression context per connection,
/// else a fresh one per message.
async fn hub(answer: &'static str, takeover: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let subs: Subs = Arc::default();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(s, subs.clone(), answer, takeover));
        }
    });
    url
}

async fn serve(s: TcpStream, subs: Subs, answer: &'static str, takeover: bool) {
    let (rd, mut wr) = s.into_split();
    let mut rd = BufReader::new(rd);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if rd.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let path = head[0].split(' ').nth(1).unwrap_or_default().to_string();
        let channel = path.rsplit('/').next().unwrap_or_default().to_string();
        let header = |name: &str| {
            head.iter().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        if head[0].starts_with("POST") {
            let len: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
            let mut body = vec![0; len];
            rd.read_exact(&mut body).await.unwrap();
            if let Some(list) = subs.lock().unwrap().get_mut(&channel) {
                list.retain(|tx| tx.send(body.clone()).is_ok());
            }
            wr.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            continue;
        }
        let accept = derive_accept_key(header("sec-websocket-key").unwrap().as_bytes());
        let pmd =
            header("sec-websocket-extensions").is_some_and(|v| v.contains("permessage-deflate"));
        assert!(pmd, "the client offers permessage-deflate");
        let reply = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: {answer}\r\n\r\n"
        );
        wr.write_all(reply.as_bytes()).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        subs.lock().unwrap().entry(channel).or_default().push(tx);
        let wr = Arc::new(tokio::sync::Mutex::new(wr));
        tokio::spawn(push(rx, wr.clone(), takeover));
        // The client's frames: its close is answered, the rest dropped.
        let mut buf = [0u8; 256];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                return;
            }
            if buf[0] & 0x0f == 8 {
                let _ = wr.lock().await.write_all(&[0x88, 0x02, 0x03, 0xe8]).await;
                return;
            }
        }
        return;
    }
}

async fn push(
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    wr: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    takeover: bool,
) {
    let mut z = Compress::new(Compression::new(6), false);
    while let Some(m) = rx.recv().await {
        if !takeover {
            z.reset();
        }
        let f = frame(0xc1, &deflate(&mut z, &m));
        if wr.lock().await.write_all(&f).await.is_err() {
            return;
        }
    }
}

async fn run_against(url: &str, group_extra: &str, profile_extra: &str) {
    let text = format!(
        "name = \"deflate-run\"\nduration = \"3s\"\nwarmup = \"500ms\"\ntarget = \"{url}\"\n\
         [publisher]\nrate = 25\npayload_bytes = 200\nchannels = 2\n\
         [[groups]]\ntransport = \"websocket\"\nclients = 10\n{group_extra}\n\
         [profile]\n{profile_extra}\n[profile.publish]\nurl = \"/pub/{{channel}}\"\n\
         [profile.websocket]\nurl = \"/ws/{{channel}}\"\n"
    );
    let dir = TempDir::new("deflate-run");
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0);
    let r = &out.rows[0];
    assert_eq!(r.published, Some(75), "{r:?}");
    // Each client hears its channel: 75 events over 2 channels.
    assert_eq!(r.expected, Some(375), "{r:?}");
    assert_eq!(r.delivered, r.expected, "{r:?}");
    assert_eq!(
        (r.lost, r.duplicated, r.errors),
        (Some(0), Some(0), 0),
        "{r:?}"
    );
    // Counted compressed: a 200-byte envelope (mostly padding) takes far
    // less on the wire.
    let delivered = r.delivered.unwrap();
    assert!(
        r.bytes_received < delivered * 100,
        "{} bytes for {delivered} deliveries",
        r.bytes_received
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_runs_deliver_every_event_and_count_compressed_bytes() {
    let url = hub("permessage-deflate", true).await;
    run_against(&url, "compression = true", "").await;
    let url = hub(
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=12",
        false,
    )
    .await;
    run_against(
        &url,
        "",
        "headers = { Sec-WebSocket-Extensions = \"permessage-deflate; server_no_context_takeover; client_max_window_bits\" }",
    )
    .await;
}
