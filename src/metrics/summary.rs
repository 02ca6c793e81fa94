//! The comparative summary: one row per client group, built from the
//! measured intervals, the settled ledgers and resource samples. Units are in
//! the column names.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::folder::cost::{self, round3};

use super::ledger::Tally;
use super::recorder::{Count, Interval, Latency};
use crate::fault::ErrorKind;
use crate::transport::TransportKind;

/// CPU and peak memory of a process over a span of time.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Resources {
    /// CPU seconds used in the span.
    pub cpu_s: f64,
    /// Highest sampled RSS in the span, bytes.
    pub rss_peak_bytes: u64,
    /// Most open sockets sampled in the span (None: not readable).
    #[serde(default)]
    pub sockets_peak: Option<u64>,
    /// What the held load added (the target only; `None` when no sample
    /// fell in the measured window).
    #[serde(default)]
    pub marginal: Option<Marginal>,
}

/// The target's memory before the phase's clients connected and at the
/// held load: the marginal cost of the connections.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Marginal {
    /// RSS at the phase's start, before any client connected, bytes.
    pub rss_before_bytes: u64,
    /// RSS at the last sample of the measured window, bytes.
    pub rss_held_bytes: u64,
    /// Open sockets added between the two (`None`: not readable).
    pub sockets_added: Option<u64>,
    /// RSS per 1,000 connections from the slope over the ramp (see
    /// [`super::process::rss_slope`]), MB; `None` without a ramp to
    /// measure.
    #[serde(default)]
    pub per_1k_mb: Option<f64>,
}

/// Everything measured for one group.
#[derive(Debug, Clone)]
pub struct GroupResult {
    /// Group label.
    pub name: String,
    /// Transport.
    pub transport: TransportKind,
    /// Clients.
    pub clients: u64,
    /// Settled accounting and the events published in the measured window
    /// on the group's channels (None: the group does not subscribe).
    pub accounting: Option<(Tally, u64)>,
    /// Sum of the measured intervals.
    pub measured: Interval,
    /// Length of the measured publish window (the hold) in seconds.
    pub measured_s: f64,
    /// stampede's own cost while the group ran.
    pub client: Resources,
    /// The target's cost, when its process could be watched.
    pub target: Option<Resources>,
    /// Whether stampede itself was the limit while the group ran.
    pub health: super::health::Health,
}

pub use crate::folder::summary::SummaryRow;

impl SummaryRow {
    /// A row of zeros and empty cells, for tests and examples.
    pub fn example() -> SummaryRow {
        GroupResult {
            name: "example".into(),
            transport: TransportKind::Sse,
            clients: 0,
            accounting: Some((Tally::default(), 0)),
            measured: Interval::default(),
            measured_s: 0.0,
            client: Resources::default(),
            target: Some(Resources::default()),
            health: super::health::Health::default(),
        }
        .row()
    }
}

impl GroupResult {
    /// The inverse of [`GroupResult::row`]: a group's result from its
    /// summary row and its measured histograms (as read back from a run
    /// folder's `.hlog` files), so that results of several processes can
    /// be added up and summarized again by the same code. `cores`: the CPUs
    /// of the machine that ran it (run.json's host).
    pub fn from_row(
        row: &SummaryRow,
        transport: TransportKind,
        hists: Vec<Histogram<u64>>,
        cores: f64,
    ) -> Self {
        let mut measured = Interval::with_hists(hists);
        for (c, v) in [
            (Count::Deliveries, row.delivered.unwrap_or(0)),
            (Count::Requests, row.requests),
            (Count::EmptyResponses, row.empty_responses.unwrap_or(0)),
            (Count::ServerTimeouts, row.server_timeouts.unwrap_or(0)),
            (Count::ControlMessages, row.control_messages.unwrap_or(0)),
            (Count::OtherMessages, row.other_messages.unwrap_or(0)),
            (Count::Retries, row.retries.unwrap_or(0)),
            (Count::Reconnects, row.reconnects),
            (Count::BytesSent, row.bytes_sent),
            (Count::BytesReceived, row.bytes_received),
            (Count::Overflows, row.latency_overflows),
            (Count::Status1xx, row.status_1xx.unwrap_or(0)),
            (Count::Status2xx, row.status_2xx.unwrap_or(0)),
            (Count::Status3xx, row.status_3xx.unwrap_or(0)),
            (Count::Status4xx, row.status_4xx.unwrap_or(0)),
            (Count::Status5xx, row.status_5xx.unwrap_or(0)),
        ] {
            measured.add(c, v);
        }
        measured.errors = row.errors_by_kind;
        let tally = |published| {
            (
                Tally {
                    expected: row.expected.unwrap_or(0),
                    delivered: row.delivered.unwrap_or(0),
                    lost: row.lost.unwrap_or(0),
                    duplicated: row.duplicated.unwrap_or(0),
                    reordered: row.reordered.unwrap_or(0),
                },
                published,
            )
        };
        let bytes = |mb: f64| (mb * 1024.0 * 1024.0).round() as u64;
        GroupResult {
            name: row.group.clone(),
            transport,
            clients: row.clients,
            accounting: row.published.map(tally),
            measured,
            measured_s: row.measured_s,
            client: Resources {
                cpu_s: row.client_cpu_s,
                rss_peak_bytes: bytes(row.client_rss_peak_mb),
                sockets_peak: None,
                marginal: None,
            },
            target: row.target_cpu_s.map(|cpu_s| Resources {
                cpu_s,
                rss_peak_bytes: bytes(row.target_rss_peak_mb.unwrap_or(0.0)),
                sockets_peak: row.target_connections_peak,
                marginal: match (row.target_rss_before_mb, row.target_rss_held_mb) {
                    (Some(before), Some(held)) => Some(Marginal {
                        rss_before_bytes: bytes(before),
                        rss_held_bytes: bytes(held),
                        sockets_added: row.target_connections_added,
                        per_1k_mb: row.target_rss_marginal_per_1k_conn_mb,
                    }),
                    _ => None,
                },
            }),
            health: super::health::Health {
                cpu_pct: row.client_cpu_pct,
                cores,
                lag_p99_ms: row.loadgen_lag_p99_ms,
                slip_p99_ms: row.publish_slip_p99_ms,
            },
        }
    }
}

pub use crate::units::pct_ms;

fn mb(bytes: u64) -> f64 {
    round3(bytes as f64 / (1024.0 * 1024.0))
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| round3(a as f64 / b as f64))
}

impl GroupResult {
    /// The summary row.
    pub fn row(&self) -> SummaryRow {
        let m = &self.measured;
        let d = m.hist(Latency::Delivery);
        let err = |k: ErrorKind| m.errors[k.index()];
        let requests = m.count(Count::Requests);
        let (sent, recv) = (m.count(Count::BytesSent), m.count(Count::BytesReceived));
        let subscribes = self.transport.subscribes();
        let counts_messages = self.transport.info().counts_messages;
        let tally = self.accounting.map(|(t, _)| t);
        let delivered = tally.map(|t| t.delivered);
        let marginal = self.target.and_then(|t| t.marginal);
        let statuses = m.count(Count::Status1xx)
            + m.count(Count::Status2xx)
            + m.count(Count::Status3xx)
            + m.count(Count::Status4xx)
            + m.count(Count::Status5xx);
        // Status columns apply to HTTP exchanges only.
        let status = |c: Count| (statuses > 0).then(|| m.count(c));
        let rq = m.hist(Latency::Request);
        let rqu = m.hist(Latency::RequestUncorrected);
        // From the rounded `measured_s` column, as `from_row` reads it back.
        let secs = round3(self.measured_s);
        let per_s = |n: u64| (secs > 0.0).then(|| round3(n as f64 / secs));
        SummaryRow {
            group: self.name.clone(),
            transport: self.transport.label().to_string(),
            clients: self.clients,
            published: self.accounting.map(|(_, p)| p),
            expected: tally.map(|t| t.expected),
            delivered,
            lost: tally.map(|t| t.lost),
            duplicated: tally.map(|t| t.duplicated),
            reordered: tally.map(|t| t.reordered),
            delivery_p50_ms: pct_ms(d, 0.5),
            delivery_p90_ms: pct_ms(d, 0.9),
            delivery_p99_ms: pct_ms(d, 0.99),
            delivery_p999_ms: pct_ms(d, 0.999),
            delivery_max_ms: pct_ms(d, 1.0),
            first_event_p50_ms: pct_ms(m.hist(Latency::FirstEvent), 0.5),
            connect_p50_ms: pct_ms(m.hist(Latency::Connect), 0.5),
            connect_p99_ms: pct_ms(m.hist(Latency::Connect), 0.99),
            subscribe_p50_ms: pct_ms(m.hist(Latency::Subscribe), 0.5),
            subscribe_p99_ms: pct_ms(m.hist(Latency::Subscribe), 0.99),
            tls_p50_ms: pct_ms(m.hist(Latency::Tls), 0.5),
            tls_p99_ms: pct_ms(m.hist(Latency::Tls), 0.99),
            upgrade_p50_ms: pct_ms(m.hist(Latency::Upgrade), 0.5),
            upgrade_p99_ms: pct_ms(m.hist(Latency::Upgrade), 0.99),
            request_p50_ms: pct_ms(rq, 0.5),
            request_p90_ms: pct_ms(rq, 0.9),
            request_p99_ms: pct_ms(rq, 0.99),
            request_p999_ms: pct_ms(rq, 0.999),
            request_max_ms: pct_ms(rq, 1.0),
            request_uncorrected_p50_ms: pct_ms(rqu, 0.5),
            request_uncorrected_p99_ms: pct_ms(rqu, 0.99),
            requests,
            // Request and echo load is measured over the hold only, so the
            // rate is exact; pollers' requests also run through the drain.
            requests_per_s: if !subscribes { per_s(requests) } else { None },
            status_1xx: status(Count::Status1xx),
            status_2xx: status(Count::Status2xx),
            status_3xx: status(Count::Status3xx),
            status_4xx: status(Count::Status4xx),
            status_5xx: status(Count::Status5xx),
            empty_responses: self
                .transport
                .is_poller()
                .then(|| m.count(Count::EmptyResponses)),
            server_timeouts: self
                .transport
                .is_long_poller()
                .then(|| m.count(Count::ServerTimeouts)),
            control_messages: counts_messages.then(|| m.count(Count::ControlMessages)),
            other_messages: counts_messages.then(|| m.count(Count::OtherMessages)),
            retries: self.transport.is_poller().then(|| m.count(Count::Retries)),
            requests_per_delivery: delivered.and_then(|d| {
                if self.transport.is_request_based() {
                    ratio(requests, d)
                } else {
                    // Streaming kinds make one request per session.
                    ratio(m.count(Count::Reconnects) + self.clients, d)
                }
            }),
            bytes_sent: sent,
            bytes_received: recv,
            bytes_per_delivery: delivered.and_then(|d| ratio(sent + recv, d)),
            deliveries_per_s: if subscribes {
                delivered.and_then(per_s)
            } else {
                None
            },
            errors: m.error_total(),
            error_rate: {
                // Failed exchanges over all attempted exchanges: requests
                // for polling kinds, sessions for streaming kinds.
                let attempts = if self.transport.is_request_based() {
                    requests
                } else {
                    self.clients + m.count(Count::Reconnects)
                };
                let errors = m.error_total();
                // A request answered with an unexpected status is both a
                // completed request and an error: count the attempt once.
                let counted_twice = if self.transport.info().status_is_response {
                    err(ErrorKind::Status) + err(ErrorKind::RateLimited)
                } else {
                    0
                };
                let attempts = (attempts + errors).saturating_sub(counted_twice);
                if errors == 0 || attempts == 0 {
                    0.0
                } else {
                    (errors as f64 / attempts as f64 * 1e6).round() / 1e6
                }
            },
            errors_by_kind: m.errors,
            reconnects: m.count(Count::Reconnects),
            // From the storm histograms alone (empty without a storm), so
            // `from_row` needs nothing more than the `.hlog` files.
            storm_reconnected: {
                let h = m.hist(Latency::StormReconnect);
                (!h.is_empty()).then(|| h.len())
            },
            storm_reconnect_p50_ms: pct_ms(m.hist(Latency::StormReconnect), 0.5),
            storm_reconnect_p99_ms: pct_ms(m.hist(Latency::StormReconnect), 0.99),
            storm_reconnect_max_ms: pct_ms(m.hist(Latency::StormReconnect), 1.0),
            storm_receiving: {
                let h = m.hist(Latency::StormReceiving);
                (!h.is_empty()).then(|| h.len())
            },
            // The last client to receive again.
            storm_all_receiving_s: pct_ms(m.hist(Latency::StormReceiving), 1.0)
                .map(|ms| round3(ms / 1000.0)),
            latency_overflows: m.count(Count::Overflows),
            measured_s: round3(self.measured_s),
            client_cpu_s: round3(self.client.cpu_s),
            client_rss_peak_mb: mb(self.client.rss_peak_bytes),
            target_cpu_s: self.target.map(|t| round3(t.cpu_s)),
            target_rss_peak_mb: self.target.map(|t| mb(t.rss_peak_bytes)),
            target_connections_peak: self.target.and_then(|t| t.sockets_peak),
            // From the rounded columns, so that a row read back from
            // summary.csv (see `from_row`) derives the same value.
            target_rss_per_1k_conn_mb: cost::target_rss_per_1k_conn_mb(
                self.target.map(|t| mb(t.rss_peak_bytes)),
                self.target.and_then(|t| t.sockets_peak),
                self.clients,
            ),
            target_rss_before_mb: marginal.map(|m| mb(m.rss_before_bytes)),
            target_rss_held_mb: marginal.map(|m| mb(m.rss_held_bytes)),
            target_connections_added: marginal.and_then(|m| m.sockets_added),
            // The ramp's slope; without one, the difference over the
            // connections (both from columns a merge reads back).
            target_rss_marginal_per_1k_conn_mb: marginal
                .and_then(|m| m.per_1k_mb.map(round3))
                .or_else(|| {
                    cost::target_rss_marginal_per_1k_conn_mb(
                        marginal.map(|m| mb(m.rss_before_bytes)),
                        marginal.map(|m| mb(m.rss_held_bytes)),
                        marginal.and_then(|m| m.sockets_added),
                        self.clients,
                    )
                }),
            target_cpu_ms_per_1k_deliveries: cost::target_cpu_ms_per_1k_deliveries(
                self.target.map(|t| round3(t.cpu_s)),
                delivered,
            ),
            client_cpu_pct: (self.health.cpu_pct * 10.0).round() / 10.0,
            loadgen_lag_p99_ms: self.health.lag_p99_ms,
            publish_slip_p99_ms: self.health.slip_p99_ms,
            loadgen_saturated: u8::from(self.health.saturated()),
        }
    }
}
