//! The cost columns, defined once: `summary.csv`, `sweep.csv`, the capacity
//! search and the cost chart all call these, from the rounded columns of a
//! row, so a row read back from a file derives the same value.

/// Rounds to three decimals, as every fractional column is written.
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// `target_cpu_ms_per_1k_deliveries`: `target_cpu_s × 10⁶ / delivered`
/// (`None` without a watched target or without deliveries).
pub fn target_cpu_ms_per_1k_deliveries(
    target_cpu_s: Option<f64>,
    delivered: Option<u64>,
) -> Option<f64> {
    let d = delivered.filter(|d| *d > 0)?;
    Some(round3(target_cpu_s? * 1e6 / d as f64))
}

/// `target_rss_per_1k_conn_mb`: `target_rss_peak_mb / connections × 1000`,
/// per connection the target really held when its sockets could be read
/// (they include the listener and the publisher's few), else per client.
pub fn target_rss_per_1k_conn_mb(
    target_rss_peak_mb: Option<f64>,
    target_connections_peak: Option<u64>,
    clients: u64,
) -> Option<f64> {
    let mb = target_rss_peak_mb?;
    let conns = target_connections_peak
        .filter(|n| *n > 0)
        .unwrap_or(clients);
    (conns > 0).then(|| round3(mb / conns as f64 * 1000.0))
}

/// `target_rss_marginal_per_1k_conn_mb`: `(held − before) / connections ×
/// 1000`, per connection the held load added to the target when its
/// sockets could be read, else per client; `None` without both samples.
/// RSS that shrank (a freed cache) reads as 0.
pub fn target_rss_marginal_per_1k_conn_mb(
    target_rss_before_mb: Option<f64>,
    target_rss_held_mb: Option<f64>,
    target_connections_added: Option<u64>,
    clients: u64,
) -> Option<f64> {
    let grown = (target_rss_held_mb? - target_rss_before_mb?).max(0.0);
    let conns = target_connections_added
        .filter(|n| *n > 0)
        .unwrap_or(clients);
    (conns > 0).then(|| round3(grown / conns as f64 * 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_1k() {
        assert_eq!(
            target_cpu_ms_per_1k_deliveries(Some(2.0), Some(10_000)),
            Some(200.0)
        );
        assert_eq!(target_cpu_ms_per_1k_deliveries(Some(2.0), Some(0)), None);
        assert_eq!(target_cpu_ms_per_1k_deliveries(None, Some(5)), None);
        assert_eq!(
            target_rss_per_1k_conn_mb(Some(25.0), None, 250),
            Some(100.0)
        );
        assert_eq!(
            target_rss_per_1k_conn_mb(Some(25.0), Some(500), 250),
            Some(50.0)
        );
        assert_eq!(target_rss_per_1k_conn_mb(Some(25.0), Some(0), 0), None);
        assert_eq!(
            target_rss_marginal_per_1k_conn_mb(Some(20.0), Some(26.5), Some(1000), 250),
            Some(6.5)
        );
        assert_eq!(
            target_rss_marginal_per_1k_conn_mb(Some(20.0), Some(21.0), None, 250),
            Some(4.0)
        );
        assert_eq!(
            target_rss_marginal_per_1k_conn_mb(Some(20.0), Some(19.0), None, 250),
            Some(0.0)
        );
        assert_eq!(
            target_rss_marginal_per_1k_conn_mb(None, Some(19.0), None, 250),
            None
        );
    }
}
