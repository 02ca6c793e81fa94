//! The publisher: drives the event stream at the scenario's rate, one task
//! and one HTTP connection per channel, each event carrying an envelope whose
//! timestamp is the event's *intended* publish time (so a stalled target
//! shows in delivery latency instead of shifting the schedule). Keeps the
//! `PublishLog` the ledgers are settled against, and declares the target
//! gone when publishing keeps failing.

pub mod endpoint;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::envelope::Envelope;
use crate::fault::{ErrorKind, Fault};
use crate::metrics::ledger::{ChannelLog, PublishLog};
use crate::metrics::recorder::new_histogram;
use crate::schedule::rate::RateSchedule;
use crate::shutdown::{Shutdown, StopReason};

/// The target is declared gone after this long without a successful publish
/// *and* `DEAD_FAILURES` failures in a row: longer than one publish timeout,
/// so one slow answer (a stall) is a sample, not a verdict.
const DEAD_AFTER: Duration = Duration::from_secs(12);
const DEAD_FAILURES: u32 = 3;

pub use endpoint::{Connection, Endpoint, Published};

/// What and where to publish.
#[derive(Debug, Clone)]
pub struct PublishSpec {
    /// The target's publish endpoint.
    pub endpoint: Arc<Endpoint>,
    /// Channel names.
    pub channels: Vec<String>,
    /// The scenario's number of each channel (its place in the schedule).
    pub channel_ids: Vec<u32>,
    /// The scenario's channel count (a shard may publish on fewer).
    pub total_channels: u32,
    /// When each event is due (rate and stages over all channels).
    pub schedule: RateSchedule,
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
    /// How late the publisher's timer fired, microseconds (load-generator
    /// health: only publishes whose turn came while the publisher was idle,
    /// so a slow target's backpressure is not counted as our slip).
    pub slip: hdrhistogram::Histogram<u64>,
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
    let channels = spec.channels.len();
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
        slip: new_histogram(),
        errors: 0,
        first_error: None,
    };
    while let Some(res) = tasks.join_next().await {
        let Ok((ch, r)) = res else { continue };
        report.log.channels[ch] = r.log;
        let _ = report.latency.add(&r.latency);
        let _ = report.slip.add(&r.slip);
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
    slip: hdrhistogram::Histogram<u64>,
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
    // Channels take turns (event k goes to channel k mod channels) so the
    // aggregate stream follows the rate evenly; a shard keeps each
    // channel's place in the scenario's schedule by its global id.
    let id = spec.channel_ids.get(ch).copied().unwrap_or(ch as u32);
    let mut due = spec.schedule.events_of(id, spec.total_channels);
    let mut out = ChannelResult {
        log: ChannelLog::default(),
        latency: new_histogram(),
        slip: new_histogram(),
        errors: 0,
        first_error: None,
    };
    // Publishes are not counted in any group's bytes: a private counter.
    let mut conn = Connection::new(spec.endpoint.clone(), &spec.channels[ch], Arc::default());
    let mut last_ok = Instant::now();
    let mut failures_in_row = 0u32;
    while let Some(intended) = due.next().map(|d| start + d) {
        if intended >= until {
            break;
        }
        let idle = Instant::now() < intended;
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(intended.into()) => {}
        }
        if idle {
            let late = Instant::now().saturating_duration_since(intended);
            out.slip.saturating_record(late.as_micros() as u64);
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
            p = conn.publish(payload) => p.result,
        };
        match result {
            Ok(()) => {
                failures_in_row = 0;
                last_ok = Instant::now();
                let us = last_ok.saturating_duration_since(intended).as_micros() as u64;
                out.latency.saturating_record(us);
            }
            Err(f) => {
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
                        "publishing to {} has failed {failures_in_row} times in {:.1} s: {f}",
                        spec.endpoint.authority,
                        last_ok.elapsed().as_secs_f64()
                    )));
                    break;
                }
            }
        }
    }
    conn.close().await;
    out
}
