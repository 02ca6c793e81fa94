//! The publisher: drives the event stream at the scenario's rate, one task
//! and one HTTP connection per channel, each event carrying an envelope whose
//! timestamp is the event's *intended* publish time (so a stalled target
//! shows in delivery latency instead of shifting the schedule). Keeps the
//! `PublishLog` the ledgers are settled against, and declares the target
//! gone when publishing keeps failing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::envelope::Envelope;
use crate::fault::{ErrorKind, Fault};
use crate::load::pacer::Pacer;
use crate::metrics::ledger::{ChannelLog, PublishLog};
use crate::metrics::recorder::new_histogram;
use crate::shutdown::{Shutdown, StopReason};

/// The target is declared gone after this long without a successful publish
/// *and* `DEAD_FAILURES` failures in a row: longer than one publish timeout,
/// so one slow answer (a stall) is a sample, not a verdict.
const DEAD_AFTER: Duration = Duration::from_secs(12);
const DEAD_FAILURES: u32 = 3;
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// What and where to publish.
#[derive(Debug, Clone)]
pub struct PublishSpec {
    /// Target address.
    pub addr: SocketAddr,
    /// `Host` header.
    pub authority: String,
    /// Publish path per channel.
    pub paths: Vec<String>,
    /// Events per second over all channels.
    pub rate_per_s: f64,
    /// Payload size.
    pub payload_bytes: usize,
}

/// The publisher's own measurements.
#[derive(Debug, Clone)]
pub struct PublishReport {
    /// What was published.
    pub log: PublishLog,
    /// Publish latency from intended time to response, microseconds.
    pub latency: hdrhistogram::Histogram<u64>,
    /// Failed publishes.
    pub errors: u64,
    /// First failure seen.
    pub first_error: Option<String>,
}

/// Publishes at intended times in `start..until`, or until `stop`.
pub async fn run(
    spec: PublishSpec,
    clock: Clock,
    start: Instant,
    until: Instant,
    stop: CancellationToken,
    shutdown: Shutdown,
) -> PublishReport {
    let channels = spec.paths.len();
    let spec = Arc::new(spec);
    let mut tasks = JoinSet::new();
    for ch in 0..channels {
        let spec = spec.clone();
        let stop = stop.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let r = channel_loop(&spec, ch, clock, start, until, stop, shutdown).await;
            (ch, r)
        });
    }
    let mut report = PublishReport {
        log: PublishLog {
            channels: vec![ChannelLog::default(); channels],
        },
        latency: new_histogram(),
        errors: 0,
        first_error: None,
    };
    while let Some(res) = tasks.join_next().await {
        let Ok((ch, r)) = res else { continue };
        report.log.channels[ch] = r.log;
        let _ = report.latency.add(&r.latency);
        report.errors += r.errors;
        if report.first_error.is_none() {
            report.first_error = r.first_error;
        }
    }
    report
}

struct ChannelResult {
    log: ChannelLog,
    latency: hdrhistogram::Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

async fn channel_loop(
    spec: &PublishSpec,
    ch: usize,
    clock: Clock,
    start: Instant,
    until: Instant,
    stop: CancellationToken,
    shutdown: Shutdown,
) -> ChannelResult {
    let channels = spec.paths.len() as f64;
    let period = Duration::from_secs_f64(channels / spec.rate_per_s);
    // Channels are staggered so the aggregate stream is evenly spaced.
    let offset = Duration::from_secs_f64(ch as f64 / spec.rate_per_s);
    let mut pacer = Pacer::new(start + offset, period);
    let mut out = ChannelResult {
        log: ChannelLog::default(),
        latency: new_histogram(),
        errors: 0,
        first_error: None,
    };
    let mut conn: Option<Sender> = None;
    let mut last_ok = Instant::now();
    let mut failures_in_row = 0u32;
    loop {
        let intended = pacer.next_at();
        if intended >= until {
            break;
        }
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(intended.into()) => {}
        }
        let seq = out.log.sent_ns.len() as u64;
        let sent_ns = clock.ns(intended);
        let payload = Envelope {
            channel: ch as u32,
            seq,
            sent_ns,
        }
        .encode(spec.payload_bytes);
        out.log.sent_ns.push(sent_ns);
        let result = tokio::select! {
            biased;
            _ = stop.cancelled() => Err(Fault::new(ErrorKind::Other, "publisher stopped")),
            r = publish_one(spec, &mut conn, &spec.paths[ch], payload) => r,
        };
        match result {
            Ok(()) => {
                failures_in_row = 0;
                last_ok = Instant::now();
                let us = last_ok.saturating_duration_since(intended).as_micros() as u64;
                out.latency.saturating_record(us);
            }
            Err(f) => {
                conn = None;
                out.log.failed.push(seq);
                out.errors += 1;
                if out.first_error.is_none() {
                    out.first_error = Some(f.to_string());
                }
                if stop.is_cancelled() {
                    break;
                }
                failures_in_row += 1;
                if failures_in_row >= DEAD_FAILURES && last_ok.elapsed() > DEAD_AFTER {
                    shutdown.stop(StopReason::Fatal(format!(
                        "publishing to {} has failed {failures_in_row} times in {:.0?}: {f}",
                        spec.authority,
                        last_ok.elapsed()
                    )));
                    break;
                }
            }
        }
    }
    out
}

/// A publisher connection; its driver task ends when this is dropped.
struct Sender(SendRequest<Full<Bytes>>, tokio::task::JoinHandle<()>);

impl Drop for Sender {
    fn drop(&mut self) {
        self.1.abort();
    }
}

async fn publish_one(
    spec: &PublishSpec,
    conn: &mut Option<Sender>,
    path: &str,
    payload: String,
) -> Result<(), Fault> {
    tokio::time::timeout(PUBLISH_TIMEOUT, async {
        if conn.as_ref().is_none_or(|c| c.0.is_closed()) {
            let (tcp, _) = crate::net::connect(spec.addr, PUBLISH_TIMEOUT).await?;
            let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            let handle = tokio::spawn(async move {
                let _ = driver.await;
            });
            *conn = Some(Sender(sender, handle));
        }
        let Sender(sender, _) = conn
            .as_mut()
            .ok_or_else(|| Fault::new(ErrorKind::Other, "no publisher connection"))?;
        let req = Request::post(path)
            .header(header::HOST, spec.authority.as_str())
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| Fault::new(ErrorKind::Other, e.to_string()))?;
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        // Drain the body so the connection can be reused.
        let _ = resp.into_body().collect().await?;
        if status.is_success() || status == StatusCode::ACCEPTED {
            Ok(())
        } else {
            Err(Fault::new(
                ErrorKind::Status,
                format!("publish answered {status}"),
            ))
        }
    })
    .await
    .map_err(|_| Fault::timeout("publish"))?
}
