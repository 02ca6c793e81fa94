//! Units as run folders write them: serde helpers for durations in
//! seconds (`*_s` fields), percentiles in milliseconds. A leaf: it imports nothing from the crate, so
//! every module that writes a duration can use it without a cycle.

/// Serde helpers writing durations as seconds (`*_s` fields).
pub mod secs {
    use serde::Serializer;
    use std::time::Duration;

    /// Serializes a duration as fractional seconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    /// Reads fractional seconds.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = <f64 as serde::Deserialize>::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

/// Serde helper for optional durations as seconds.
pub mod opt_secs {
    use serde::Serializer;
    use std::time::Duration;

    /// Serializes an optional duration as fractional seconds or null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

/// A percentile of a microsecond histogram in milliseconds (3 decimals),
/// `None` without samples.
pub fn pct_ms(h: &hdrhistogram::Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| (h.value_at_quantile(q) as f64 / 1000.0 * 1000.0).round() / 1000.0)
}
