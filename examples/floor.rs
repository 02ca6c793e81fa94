//! The floor: the least a subscriber can do and still receive every
//! message, for `benches/floor.sh` to hold stampede's CPU per delivery
//! against. No accounting, no timers, no envelope decoding: tokio, raw
//! sockets, one 2 KiB read buffer per connection (as stampede's), and only
//! the parsing that finds message boundaries (WebSocket frame headers, RFC
//! 6455 §5.2, answering pings so the server keeps the connection; SSE's
//! blank line between events, WHATWG HTML §9.2.6). It does not decode
//! chunked transfer coding: an SSE event's `\n\n` survives it.
//!
//!   cargo run --release --example floor -- ws|sse HOST:PORT PATH CLIENTS SECONDS
//!
//! Prints one line of JSON: clients subscribed, messages, this process's
//! CPU seconds (user + system, from getrusage) and peak RSS (VmHWM, KiB).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Ws,
    Sse,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        return Err("usage: floor ws|sse HOST:PORT PATH CLIENTS SECONDS".into());
    }
    let kind = match args[1].as_str() {
        "ws" => Kind::Ws,
        "sse" => Kind::Sse,
        other => return Err(format!("unknown kind {other}: ws or sse").into()),
    };
    let addr: SocketAddr = args[2].parse()?;
    let path = args[3].clone();
    let clients: u32 = args[4].parse()?;
    let seconds: f64 = args[5].parse()?;
    // FLOOR_THREADS=1: one thread, no cross-thread wakeups (cheaper per
    // message on a busy box); default: tokio's one worker per core.
    let rt = match std::env::var("FLOOR_THREADS").as_deref() {
        Ok("1") => tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?,
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_io()
            .enable_time()
            .build()?,
    };
    let messages = Arc::new(AtomicU64::new(0));
    let subscribed = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        for i in 0..clients {
            let (messages, subscribed, path) = (messages.clone(), subscribed.clone(), path.clone());
            // Spread over 127.0.0.0/8 sources as stampede does, past one
            // address's ephemeral ports.
            let source = std::net::Ipv4Addr::new(127, 0, 0, 1 + (i % 250) as u8);
            tokio::spawn(async move {
                let _ = subscriber(kind, addr, source, &path, &subscribed, &messages).await;
            });
        }
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    });
    // Dropping the runtime cancels every subscriber; their counts were
    // added as they went.
    let total = messages.load(Ordering::Relaxed);
    let subscribed = subscribed.load(Ordering::Relaxed);
    drop(rt);
    let (cpu, hwm) = usage();
    println!("{{\"subscribed\":{subscribed},\"messages\":{total},\"cpu_s\":{cpu:.3},\"peak_rss_kib\":{hwm}}}");
    Ok(())
}

/// One subscriber: connect, subscribe, then count message boundaries into
/// `messages` (one add per read that found any) until cancelled or closed.
async fn subscriber(
    kind: Kind,
    addr: SocketAddr,
    source: std::net::Ipv4Addr,
    path: &str,
    subscribed: &AtomicU64,
    messages: &AtomicU64,
) -> std::io::Result<()> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source.into(), 0))?;
    let mut s: TcpStream = socket.connect(addr).await?;
    s.set_nodelay(true)?;
    let request = match kind {
        Kind::Ws => format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ),
        Kind::Sse => {
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n")
        }
    };
    s.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; 2048];
    let mut have = 0;
    // The response head.
    let body_at = loop {
        let n = s.read(&mut buf[have..]).await?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        if let Some(i) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if have == buf.len() {
            return Ok(());
        }
    };
    subscribed.fetch_add(1, Ordering::Relaxed);
    buf.copy_within(body_at..have, 0);
    have -= body_at;
    match kind {
        Kind::Ws => ws_frames(&mut s, buf, have, messages).await,
        Kind::Sse => sse_events(&mut s, buf, have, messages).await,
    }
}

/// Counts data frames that end a message (FIN set, opcode text, binary or
/// continuation), answering pings with a masked pong.
async fn ws_frames(
    s: &mut TcpStream,
    mut buf: Vec<u8>,
    mut have: usize,
    messages: &AtomicU64,
) -> std::io::Result<()> {
    let mut skip: u64 = 0; // payload bytes of a frame larger than the buffer
    loop {
        let mut at = 0;
        let mut found = 0;
        loop {
            if skip > 0 {
                let k = skip.min((have - at) as u64) as usize;
                at += k;
                skip -= k as u64;
                if skip > 0 {
                    break;
                }
            }
            let rest = &buf[at..have];
            if rest.len() < 2 {
                break;
            }
            let (b0, b1) = (rest[0], rest[1] & 0x7f);
            let (head, len) = match b1 {
                126 if rest.len() >= 4 => (4, u64::from(u16::from_be_bytes([rest[2], rest[3]]))),
                127 if rest.len() >= 10 => {
                    let mut l = [0u8; 8];
                    l.copy_from_slice(&rest[2..10]);
                    (10, u64::from_be_bytes(l))
                }
                126 | 127 => break,
                n => (2, u64::from(n)),
            };
            let opcode = b0 & 0x0f;
            if opcode == 0x9 {
                // A ping's payload must be whole to echo it.
                if ((rest.len() - head) as u64) < len {
                    break;
                }
                let payload = &rest[head..head + len as usize];
                let mut pong = vec![0x8a, 0x80 | len as u8, 0, 0, 0, 0];
                pong.extend_from_slice(payload);
                s.write_all(&pong).await?;
            } else if b0 & 0x80 != 0 && opcode <= 0x2 {
                found += 1;
            } else if opcode == 0x8 {
                messages.fetch_add(found, Ordering::Relaxed);
                return Ok(());
            }
            let avail = (rest.len() - head) as u64;
            if avail >= len {
                at += head + len as usize;
            } else {
                at = have;
                skip = len - avail;
            }
        }
        if found > 0 {
            messages.fetch_add(found, Ordering::Relaxed);
        }
        buf.copy_within(at..have, 0);
        have -= at;
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = s.read(&mut buf[have..]).await?;
        if n == 0 {
            return Ok(());
        }
        have += n;
    }
}

/// Counts blank lines that end events (`\n\n`, also across reads). LF
/// line ends only, as nchan and the reference server write them: with
/// CRLF a chunk's closing CRLF would not be told from an event's end.
async fn sse_events(
    s: &mut TcpStream,
    mut buf: Vec<u8>,
    have: usize,
    messages: &AtomicU64,
) -> std::io::Result<()> {
    let mut last = 0u8;
    let mut n = have;
    loop {
        let mut found = 0;
        for &b in &buf[..n] {
            if b == b'\n' && last == b'\n' {
                found += 1;
            }
            last = b;
        }
        if found > 0 {
            messages.fetch_add(found, Ordering::Relaxed);
        }
        n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
    }
}

/// (CPU seconds of this process, user + system; peak RSS in KiB).
fn usage() -> (f64, u64) {
    // SAFETY: getrusage writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = secs(ru.ru_utime) + secs(ru.ru_stime);
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    (cpu, hwm)
}
