//! `summary.csv`: one row per client group, the comparative table. The
//! declaration below is the column registry's source: each column's name,
//! type, unit, the groups it applies to and its meaning (see
//! [`super::columns`]). Units are in the column names.

use std::path::Path;

use super::columns::{col, Applies::*, Info};
use super::record::csv_record;
use crate::error::{Error, Result};

csv_record! {
    /// One `summary.csv` row. Columns missing from an older file read as
    /// zero / empty, so older run folders stay comparable ([`read`] says
    /// which were missing).
    pub struct SummaryRow [Info] {
        group: String => col("", All, "group label in the scenario"),
        transport: String => col("", All, "the group's transport"),
        clients: u64 => col("count", All, "clients of the group").main("clients"),
        published: Option<u64> => col("count", Subscribers,
            "events published in the measured window on the channels this group uses"),
        expected: Option<u64> => col("count", Subscribers,
            "sum over clients of the events each should have received (see accounting)"),
        delivered: Option<u64> => col("count", Subscribers,
            "of `expected`, events received").main("delivered"),
        lost: Option<u64> => col("count", Subscribers, "`expected − delivered`").main("lost"),
        duplicated: Option<u64> => col("count", Subscribers,
            "receipts of an event already received (whole phase, warm-up included)"),
        reordered: Option<u64> => col("count", Subscribers,
            "events received after a higher sequence number (whole phase)"),
        delivery_p50_ms: Option<f64> => col("ms", Subscribers,
            "delivery latency p50 (receive time minus publish time)").main("delivery p50 (ms)"),
        delivery_p90_ms: Option<f64> => col("ms", Subscribers, "delivery latency p90").main("p90 (ms)"),
        delivery_p99_ms: Option<f64> => col("ms", Subscribers, "delivery latency p99").main("p99 (ms)"),
        delivery_p999_ms: Option<f64> => col("ms", Subscribers, "delivery latency p99.9").main("p99.9 (ms)"),
        delivery_max_ms: Option<f64> => col("ms", Subscribers, "delivery latency, largest").main("max (ms)"),
        first_event_p50_ms: Option<f64> => col("ms", Subscribers,
            "from a client's first connect attempt to its first event (whole phase)"),
        connect_p50_ms: Option<f64> => col("ms", All,
            "TCP connect time p50 (every connection, including per-request ones with \
             `keep_alive = false`; whole phase)").main("connect p50 (ms)"),
        connect_p99_ms: Option<f64> => col("ms", All, "TCP connect time p99"),
        subscribe_p50_ms: Option<f64> => col("ms", Sessions,
            "after TLS (or TCP) connect, until the subscription is confirmed: WebSocket \
             upgrade (echo's too), SSE/NDJSON response head, or the head poll of pollers whose profile \
             has `start = \"head\"`; empty for pollers without a subscription request \
             (nchan); whole phase").main("subscribe p50 (ms)"),
        subscribe_p99_ms: Option<f64> => col("ms", Sessions, "subscription time p99"),
        tls_p50_ms: Option<f64> => col("ms", All,
            "TLS handshake after TCP connect p50 (`https://` / `wss://` targets; empty otherwise)"),
        tls_p99_ms: Option<f64> => col("ms", All, "TLS handshake p99"),
        upgrade_p50_ms: Option<f64> => col("ms", Upgraders,
            "Socket.IO `engine = \"upgrade\"`: from the WebSocket's TCP connect to Engine.IO's \
             `5` (upgrade) packet, after the `2probe`/`3probe` exchange, p50; empty for the \
             other engines; whole phase").main("upgrade p50 (ms)"),
        upgrade_p99_ms: Option<f64> => col("ms", Upgraders, "Engine.IO upgrade time p99"),
        publish_ack_p50_ms: Option<f64> => col("ms", Subscribers,
            "room members' publishes (`publish = { ... }`), from each message's intended \
             instant to the target's acknowledgement, p50: the HTTP response of `via = \"http\"` \
             (with a STOMP or MQTT publish method: the RECEIPT / QoS 1 PUBACK); empty when the \
             group does not publish or nothing acknowledges (`via = \"same\"` on a plain \
             WebSocket)").main("publish ack p50 (ms)"),
        publish_ack_p99_ms: Option<f64> => col("ms", Subscribers, "publish acknowledgement latency p99"),
        publishes_acked: Option<u64> => col("count", Subscribers,
            "room members' publishes the target acknowledged (a status in the profile's \
             `ok_status`, a RECEIPT, a PUBACK), counted when the answer arrives in the measured \
             window (so it may differ from `published` by the messages in flight at its edges)"),
        publishes_failed: Option<u64> => col("count", Subscribers,
            "room members' publishes that failed (a refused status, a timeout, a dropped \
             connection; each also in its `errors_<kind>` column): their messages are expected \
             at no receiver, so they are not `lost`"),
        request_p50_ms: Option<f64> => col("ms", RequestBased,
            "one request (or echo, or ws-rpc request to its reply) from its *intended* start \
             to its last byte, i.e. corrected for coordinated omission (long polls include \
             the hold), p50").main("request p50 (ms)"),
        request_p90_ms: Option<f64> => col("ms", RequestBased, "request latency p90 (corrected)"),
        request_p99_ms: Option<f64> => col("ms", RequestBased,
            "request latency p99 (corrected)").main("request p99 (ms)"),
        request_p999_ms: Option<f64> => col("ms", RequestBased, "request latency p99.9 (corrected)"),
        request_max_ms: Option<f64> => col("ms", RequestBased, "request latency, largest"),
        request_uncorrected_p50_ms: Option<f64> => col("ms", Exchanges,
            "the same exchanges from when they were really sent, p50: what a closed-loop \
             tool like wrk reports"),
        request_uncorrected_p99_ms: Option<f64> => col("ms", Exchanges, "uncorrected request latency p99"),
        requests: u64 => col("count", All,
            "requests (polls, plain requests, echo round trips, ws-rpc replies) completed; \
             ws-rpc requests unanswered within `rpc.timeout` are `errors_timeout`"),
        requests_per_s: Option<f64> => col("per s", Exchanges,
            "`requests / measured_s` (request, echo and ws-rpc groups, which are measured \
             over the hold only)").main("requests / s"),
        status_1xx: Option<u64> => col("count", Status,
            "HTTP responses with a 1xx status: every response of a request group, and the \
             polls a poller accepted; empty for streaming and echo groups, or when no \
             response arrived"),
        status_2xx: Option<u64> => col("count", Status, "HTTP responses with a 2xx status"),
        status_3xx: Option<u64> => col("count", Status, "HTTP responses with a 3xx status"),
        status_4xx: Option<u64> => col("count", Status, "HTTP responses with a 4xx status"),
        status_5xx: Option<u64> => col("count", Status, "HTTP responses with a 5xx status"),
        empty_responses: Option<u64> => col("count", Pollers,
            "interval / long polls that returned nothing (`204`/`304` on the built-in \
             target, `304` on nchan)"),
        server_timeouts: Option<u64> => col("count", LongPollers,
            "long polls the server ended without an event (`204` on the built-in target, \
             `408` on nchan)"),
        control_messages: Option<u64> => col("count", Messages,
            "messages that are not data, never errors: SSE events of a type the profile does \
             not list in `events` (`event: ping` heartbeats), SSE events with empty data \
             (`data:` keep-alives), whitespace-only NDJSON lines; SSE comments are not \
             counted (a browser never sees them); and messages without an envelope that a \
             `control` rule of the profile names (pings, acks, confirmations)"),
        other_messages: Option<u64> => col("count", Messages,
            "messages without a stampede envelope (found anywhere in the message, or at the \
             profile's `message_path`) that no `control` rule names, and ws-rpc messages with \
             nothing at the `rpc.id` pointer (server pushes); not errors unless the profile \
             is `strict`; examples in `run.json`"),
        retries: Option<u64> => col("count", Pollers,
            "polls re-sent once on a fresh connection because the server closed the reused \
             keep-alive connection as the GET went out; the poll's latency still runs from \
             its intended start"),
        requests_per_delivery: Option<f64> => col("ratio", Subscribers,
            "`requests / delivered`; for streaming kinds, sessions opened / delivered")
            .main("requests / delivery"),
        bytes_sent: u64 => col("bytes", All,
            "wire bytes written at the socket in the measured window (headers and framing \
             included)"),
        bytes_received: u64 => col("bytes", All, "wire bytes read at the socket in the measured window"),
        bytes_per_delivery: Option<f64> => col("bytes", Subscribers,
            "`(bytes_sent + bytes_received) / delivered`").main("bytes / delivery"),
        deliveries_per_s: Option<f64> => col("per s", Subscribers,
            "`delivered / measured_s`").main("deliveries / s"),
        errors: u64 => col("count", All,
            "failed exchanges, all kinds (by kind in the `errors_<kind>` columns)").main("errors"),
        error_rate: f64 => col("fraction", All,
            "`errors / (attempts + errors)`, attempts being requests (polling kinds) or \
             sessions (streaming kinds)").main("error rate"),
    }
    errors;
    {
        reconnects: u64 => col("count", All, "sessions re-opened after the first"),
        storm_reconnected: Option<u64> => col("count", Subscribers,
            "`[storm]`: clients subscribed again after the drop (empty without a storm)"),
        storm_reconnect_p50_ms: Option<f64> => col("ms", Subscribers,
            "`[storm]`: from the storm's instant to each client's re-subscription, p50"),
        storm_reconnect_p99_ms: Option<f64> => col("ms", Subscribers,
            "`[storm]`: from the storm's instant to each client's re-subscription, p99"),
        storm_reconnect_max_ms: Option<f64> => col("ms", Subscribers,
            "`[storm]`: from the storm's instant to the slowest client's re-subscription"),
        storm_receiving: Option<u64> => col("count", Subscribers,
            "`[storm]`: of the clients subscribed again, those that received an event again"),
        storm_all_receiving_s: Option<f64> => col("s", Subscribers,
            "`[storm]`: from the storm's instant until the last client received an event again"),
        latency_overflows: u64 => col("count", All,
            "latency samples above one hour, recorded at the maximum"),
        measured_s: f64 => col("s", All,
            "length of the measured publish window (the hold; shorter if the run was cut short)"),
        client_cpu_s: f64 => col("s", All,
            "stampede's own CPU seconds during the phase (whole-run values, repeated, in \
             concurrent mode)").main("stampede CPU (s)"),
        client_rss_peak_mb: f64 => col("MB", All, "stampede's own peak RSS during the phase"),
        target_cpu_s: Option<f64> => col("s", All,
            "the target's CPU seconds during the phase: the built-in target, \
             `--target-pid`, or the `process_cpu_seconds_total` of `--target-metrics` \
             (empty for an external target without either)").main("target CPU (s)"),
        target_rss_peak_mb: Option<f64> => col("MB", All,
            "the target's peak RSS during the phase").main("target RSS peak (MB)"),
        target_connections_peak: Option<u64> => col("count", All,
            "most open sockets of the target process sampled during the phase (its listener \
             and the publisher's connections included; empty when its fd table is not \
             readable; from `--target-metrics`, its `process_open_fds`, files included)").main("target connections peak"),
        target_rss_per_1k_conn_mb: Option<f64> => col("MB", All,
            "`target_rss_peak_mb / target_connections_peak × 1000` (per client when the \
             sockets cannot be read)").main("target RSS / 1k conn (MB)"),
        target_rss_before_mb: Option<f64> => col("MB", All,
            "the target's RSS at the phase's start, before its clients connected"),
        target_rss_held_mb: Option<f64> => col("MB", All,
            "the target's RSS at the held load: its sample in the measured window with the most \
             open sockets (the latest of equals)"),
        target_connections_added: Option<u64> => col("count", All,
            "open sockets of the target at the held load minus before the phase's clients \
             connected (empty when its fd table is not readable)"),
        target_rss_marginal_per_1k_conn_mb: Option<f64> => col("MB", All,
            "what 1,000 more connections cost the target: the least-squares slope of its \
             RSS against its open sockets over the samples from the first connections until \
             the held load is first reached, × 1000 (what the first connections bring along once is the \
             line's intercept, as in `benches/hold.sh`'s difference of two loads); without \
             a ramp to measure, `(target_rss_held_mb − target_rss_before_mb) / \
             target_connections_added × 1000` (per client when the sockets cannot be \
             read). Free of the baseline RSS that dominates `target_rss_per_1k_conn_mb` \
             at small loads. Memory freed by an earlier phase of the same target process \
             is reused and reads low. Per phase: groups sharing one share it").main("target marginal RSS / 1k conn (MB)"),
        target_cpu_ms_per_1k_deliveries: Option<f64> => col("ms", Subscribers,
            "`target_cpu_s × 10⁶ / delivered`").main("target CPU ms / 1k deliveries"),
        client_cpu_pct: f64 => col("%", All,
            "stampede's CPU over the phase, % of one core").main("stampede CPU (%)"),
        loadgen_lag_p99_ms: Option<f64> => col("ms", All,
            "p99 of how late stampede's event loop woke a 250 ms ticker: its timers (polls, \
             publishes) were that late").main("stampede event-loop lag p99 (ms)"),
        publish_slip_p99_ms: Option<f64> => col("ms", Subscribers,
            "p99 of how late the publisher's timer fired when it was idle (a slow target's \
             backpressure is not counted)").main("publish slip p99 (ms)"),
        loadgen_saturated: u8 => col("flag", All,
            "1 when stampede itself may have been the limit: CPU above 80% of all cores, \
             `loadgen_lag_p99_ms` above 25, or `publish_slip_p99_ms` above 25; `run.json` \
             `warnings` says which").main("load generator saturated"),
    }
}

/// File name in the run folder.
pub const FILE: &str = "summary.csv";

/// Writes the rows to `dir/summary.csv`.
pub fn write(dir: &Path, rows: &[SummaryRow]) -> Result<()> {
    super::write_rows(&dir.join(FILE), rows)
}

/// Reads `dir/summary.csv`.
pub fn read(dir: &Path) -> Result<Vec<SummaryRow>> {
    read_checked(dir).map(|(rows, _)| rows)
}

/// Reads `dir/summary.csv` and names the registry's columns its header
/// lacks (an older file, or a renamed column): those cells read as empty,
/// and a comparison must say so instead of comparing nothing.
pub fn read_checked(dir: &Path) -> Result<(Vec<SummaryRow>, Vec<&'static str>)> {
    let path = dir.join(FILE);
    let err = |e: csv::Error| Error::RunFolder {
        path: path.clone(),
        message: e.to_string(),
    };
    let mut r = csv::Reader::from_path(&path).map_err(err)?;
    let header = r.headers().map_err(err)?.clone();
    let missing = super::columns::all()
        .iter()
        .map(|c| c.name())
        .filter(|n| !header.iter().any(|h| h == *n))
        .collect();
    let rows = r
        .deserialize()
        .collect::<std::result::Result<Vec<SummaryRow>, _>>()
        .map_err(err)?;
    Ok((rows, missing))
}
