//! The CI gate: thresholds on summary columns (evaluated at the end of a run,
//! optionally while it runs), comparison of a run with a baseline, and the
//! formats CI systems read (JUnit XML, Markdown, CSV). Reads summaries only;
//! never runs anything.

pub mod baseline;
pub mod compare;
pub mod output;
pub mod threshold;

use crate::metrics::summary::SummaryRow;

/// Numeric `summary.csv` columns a threshold or comparison may name.
pub const COLUMNS: &[&str] = &[
    "clients",
    "published",
    "expected",
    "delivered",
    "lost",
    "duplicated",
    "reordered",
    "delivery_p50_ms",
    "delivery_p90_ms",
    "delivery_p99_ms",
    "delivery_p999_ms",
    "delivery_max_ms",
    "first_event_p50_ms",
    "connect_p50_ms",
    "connect_p99_ms",
    "subscribe_p50_ms",
    "subscribe_p99_ms",
    "tls_p50_ms",
    "tls_p99_ms",
    "request_p50_ms",
    "request_p90_ms",
    "request_p99_ms",
    "request_p999_ms",
    "request_max_ms",
    "request_uncorrected_p50_ms",
    "request_uncorrected_p99_ms",
    "requests",
    "requests_per_s",
    "status_1xx",
    "status_2xx",
    "status_3xx",
    "status_4xx",
    "status_5xx",
    "empty_responses",
    "server_timeouts",
    "control_messages",
    "retries",
    "requests_per_delivery",
    "bytes_sent",
    "bytes_received",
    "bytes_per_delivery",
    "deliveries_per_s",
    "errors",
    "error_rate",
    "errors_refused",
    "errors_reset",
    "errors_timeout",
    "errors_status",
    "errors_protocol",
    "errors_closed",
    "errors_limit",
    "errors_rate_limited",
    "errors_tls",
    "errors_other",
    "reconnects",
    "latency_overflows",
    "measured_s",
    "client_cpu_s",
    "client_rss_peak_mb",
    "target_cpu_s",
    "target_rss_peak_mb",
    "target_connections_peak",
    "target_rss_per_1k_conn_mb",
    "target_cpu_ms_per_1k_deliveries",
    "client_cpu_pct",
    "loadgen_lag_p99_ms",
    "publish_slip_p99_ms",
    "loadgen_saturated",
];

/// False when `column` can never have a value for a group of `transport`
/// (e.g. `lost` for request load): a `*` threshold skips such groups.
pub fn applies(column: &str, transport: &str) -> bool {
    let subscriber_only = [
        "published",
        "expected",
        "delivered",
        "lost",
        "duplicated",
        "reordered",
        "first_event_p50_ms",
        "requests_per_delivery",
        "bytes_per_delivery",
        "deliveries_per_s",
        "target_cpu_ms_per_1k_deliveries",
        "publish_slip_p99_ms",
    ];
    let exchange_only = [
        "requests_per_s",
        "request_uncorrected_p50_ms",
        "request_uncorrected_p99_ms",
    ];
    let subscribes = !matches!(transport, "request" | "echo");
    if subscriber_only.contains(&column) || column.starts_with("delivery_") {
        return subscribes;
    }
    if exchange_only.contains(&column) || column.starts_with("status_") {
        return !subscribes || (column.starts_with("status_") && transport.contains("poll"));
    }
    true
}

/// The value of a numeric column in a row (`None`: empty cell or unknown).
pub fn column_value(row: &SummaryRow, column: &str) -> Option<f64> {
    // Going through serde keeps this in step with the row's fields.
    let v = serde_json::to_value(row).ok()?;
    v.get(column)?.as_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_column_is_a_numeric_row_field() {
        // Optional columns serialize as null when empty.
        let v = serde_json::to_value(crate::metrics::summary::SummaryRow::example()).unwrap();
        for c in COLUMNS {
            assert!(
                v.get(*c).is_some_and(|x| x.is_number() || x.is_null()),
                "{c}"
            );
        }
    }
}
