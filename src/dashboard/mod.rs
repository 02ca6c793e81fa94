//! The live dashboard (`stampede run --dashboard [ADDR]`): a page served by
//! stampede itself during the run, fed every interval over Server-Sent
//! Events. It owns the HTTP server and the feed; it never measures: the run
//! loop hands it the rows it writes to `timeseries.csv` (so the page and the
//! file cannot disagree) and, per phase, the summary rows (the settled
//! `lost` count). The page ([`page`]) is one self-contained file with the
//! report's look: no CDN, no external script.
//!
//! Events on `/events`, each one JSON object:
//! `{"type":"row", ...}` (a `timeseries.csv` row, its columns as keys),
//! `{"type":"phase", "rows":[...]}` (summary rows at a phase's end) and
//! `{"type":"end", "status":...}`. A browser that connects late is sent the
//! whole history first.

mod page;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::folder::summary::SummaryRow;
use crate::folder::timeseries;

/// Where the dashboard listens unless told otherwise: loopback, any free
/// port.
pub const DEFAULT_ADDR: &str = "127.0.0.1:0";

/// The run's side of the dashboard: cheap to clone, never blocks (a slow
/// browser misses live events, not the run; it gets them again on reload).
#[derive(Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

struct Inner {
    /// Every event so far, for browsers that connect late.
    history: Mutex<Vec<Arc<str>>>,
    live: broadcast::Sender<Arc<str>>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Feed")
    }
}

impl Feed {
    fn new() -> Feed {
        let (live, _) = broadcast::channel(1024);
        Feed {
            inner: Arc::new(Inner {
                history: Mutex::new(Vec::new()),
                live,
            }),
        }
    }

    fn send(&self, v: Value) {
        let text: Arc<str> = v.to_string().into();
        // The lock covers the history and the broadcast together, so a
        // browser that subscribes sees each event once, in order.
        let mut h = self.inner.history.lock().unwrap_or_else(|e| e.into_inner());
        h.push(text.clone());
        let _ = self.inner.live.send(text);
    }

    /// One `timeseries.csv` row, as written.
    pub fn row(&self, row: &timeseries::Row) {
        let mut v = serde_json::to_value(row).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("type".into(), "row".into());
        }
        self.send(v);
    }

    /// The summary rows at a phase's end (all groups so far).
    pub fn phase(&self, rows: &[SummaryRow]) {
        self.send(json!({ "type": "phase", "rows": rows }));
    }

    /// The run's end and its status.
    pub fn end(&self, status: &str) {
        self.send(json!({ "type": "end", "status": status }));
    }

    fn subscribe(&self) -> (Vec<Arc<str>>, broadcast::Receiver<Arc<str>>) {
        let h = self.inner.history.lock().unwrap_or_else(|e| e.into_inner());
        (h.clone(), self.inner.live.subscribe())
    }
}

/// A running dashboard server; stopped on drop.
pub struct Dashboard {
    feed: Feed,
    url: String,
    stop: CancellationToken,
}

impl Dashboard {
    /// Binds `addr` and serves the page and its events until dropped.
    pub async fn start(addr: SocketAddr, title: &str) -> Result<Dashboard> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Usage(format!("--dashboard {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::Usage(format!("--dashboard {addr}: {e}")))?;
        let feed = Feed::new();
        let html: Arc<str> = page::html(title).into();
        let events_feed = feed.clone();
        let app = Router::new()
            .route("/", get(move || async move { Html(html.to_string()) }))
            .route(
                "/events",
                get(move || {
                    let feed = events_feed.clone();
                    async move { events(feed) }
                }),
            );
        let stop = CancellationToken::new();
        let done = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { done.cancelled().await })
                .await;
        });
        Ok(Dashboard {
            feed,
            url: format!("http://{local}/"),
            stop,
        })
    }

    /// The page's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The feed the run writes to.
    pub fn feed(&self) -> Feed {
        self.feed.clone()
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The SSE stream: the history, then live events. A browser that falls
/// more than the channel's capacity behind is sent the gap's end and goes
/// on (it reloads to see everything).
fn events(feed: Feed) -> impl IntoResponse {
    let (past, rx) = feed.subscribe();
    let past = futures_util::stream::iter(past);
    let live = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(t) => return Some((t, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let stream = futures_util::StreamExt::map(futures_util::StreamExt::chain(past, live), |t| {
        Ok::<_, Infallible>(Event::default().data(&*t))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

/// Parses `--dashboard`'s value: `PORT`, `HOST:PORT` or nothing (loopback,
/// a free port).
pub fn parse_addr(s: &str) -> std::result::Result<SocketAddr, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(DEFAULT_ADDR.parse().expect("default address"));
    }
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("{s:?}: expected PORT or HOST:PORT, e.g. 127.0.0.1:8089"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(parse_addr("").unwrap().to_string(), "127.0.0.1:0");
        assert_eq!(parse_addr("8089").unwrap().to_string(), "127.0.0.1:8089");
        assert_eq!(parse_addr("0.0.0.0:80").unwrap().to_string(), "0.0.0.0:80");
        assert!(parse_addr("localhost:x").is_err());
    }

    #[test]
    fn late_subscribers_get_the_history_in_order() {
        let f = Feed::new();
        f.end("a");
        let (past, mut rx) = f.subscribe();
        f.end("b");
        assert_eq!(past.len(), 1);
        assert!(past[0].contains("\"a\""));
        assert!(rx.try_recv().unwrap().contains("\"b\""));
    }
}
