//! Prometheus native histograms (sparse, exponential buckets) built from
//! stampede's HDR histograms, cumulatively, so a series is a counter-like
//! histogram that `histogram_quantile` reads and that adds across shards.
//!
//! Schema [`SCHEMA`] = 5: each power of two is split into 32 buckets, bucket
//! `i` holding observations in `(2^((i-1)/32), 2^(i/32)]` seconds, so a
//! bucket is at most `2^(1/32) − 1` ≈ 2.19% wide ([`BUCKET_WIDTH`]). A
//! quantile read back from Prometheus lies in the bucket that holds the HDR
//! quantile's value, hence within that relative error of the summary's
//! figure (HDR itself keeps 3 significant digits, 0.1%). Each HDR bin goes
//! whole into the bucket of its highest equivalent value, the value HDR
//! reports for a quantile, so both agree on which bucket a quantile is in.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::prompb;

/// Bucket schema (Prometheus allows −4 to 8).
pub const SCHEMA: i32 = 5;

/// Largest relative width of a bucket: `2^(2^−SCHEMA) − 1`.
pub const BUCKET_WIDTH: f64 = 0.021_897_148_654_116_7;

/// Observations at or below this many seconds count in the zero bucket
/// (the Go client's default; HDR's 0 µs bin lands there).
pub const ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// A cumulative native histogram of seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Native {
    zero: u64,
    buckets: BTreeMap<i32, u64>,
    count: u64,
    sum_s: f64,
}

/// The index of the bucket holding `v` seconds (`v` > 0): the smallest `i`
/// with `v ≤ 2^(i/2^SCHEMA)`.
pub fn bucket_index(v: f64) -> i32 {
    let scale = f64::from(1u32 << SCHEMA);
    let mut i = (v.log2() * scale).ceil() as i32;
    // log2 may land a hair off on a boundary: settle against the bounds.
    while upper_bound(i - 1) >= v {
        i -= 1;
    }
    while upper_bound(i) < v {
        i += 1;
    }
    i
}

/// The upper bound of bucket `i`, in seconds.
pub fn upper_bound(i: i32) -> f64 {
    (f64::from(i) / f64::from(1u32 << SCHEMA)).exp2()
}

impl Native {
    /// Adds every sample of `h`, a histogram of microseconds.
    pub fn add_hdr(&mut self, h: &Histogram<u64>) {
        for v in h.iter_recorded() {
            let n = v.count_at_value();
            let s = h.highest_equivalent(v.value_iterated_to()) as f64 / 1e6;
            self.observe(s, n);
        }
    }

    /// Adds `n` observations of `s` seconds.
    pub fn observe(&mut self, s: f64, n: u64) {
        if s <= ZERO_THRESHOLD {
            self.zero += n;
        } else {
            *self.buckets.entry(bucket_index(s)).or_default() += n;
        }
        self.count += n;
        self.sum_s += s * n as f64;
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The remote-write sample at `timestamp_ms`: spans of consecutive
    /// populated buckets, counts delta-encoded.
    pub fn to_proto(&self, timestamp_ms: i64) -> prompb::Histogram {
        let mut spans: Vec<prompb::BucketSpan> = Vec::new();
        let mut deltas = Vec::with_capacity(self.buckets.len());
        let (mut prev_count, mut next) = (0i64, None::<i32>);
        for (&i, &c) in &self.buckets {
            match (next, spans.last_mut()) {
                (Some(n), Some(span)) if n == i => span.length += 1,
                _ => spans.push(prompb::BucketSpan {
                    offset: next.map_or(i, |n| i - n),
                    length: 1,
                }),
            }
            next = Some(i + 1);
            let c = c as i64;
            deltas.push(c - prev_count);
            prev_count = c;
        }
        prompb::Histogram {
            count_int: self.count,
            sum: self.sum_s,
            schema: SCHEMA,
            zero_threshold: ZERO_THRESHOLD,
            zero_count_int: self.zero,
            positive_spans: spans,
            positive_deltas: deltas,
            reset_hint: 0,
            timestamp: timestamp_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_width_constant_is_the_schemas() {
        let w = (1.0f64 / f64::from(1u32 << SCHEMA)).exp2() - 1.0;
        assert!((w - BUCKET_WIDTH).abs() < 1e-15, "{w}");
    }

    #[test]
    fn buckets_are_upper_inclusive() {
        assert_eq!(bucket_index(1.0), 0);
        assert_eq!(bucket_index(2.0), 32);
        assert_eq!(bucket_index(0.5), -32);
        assert_eq!(bucket_index(1.0000001), 1);
        for v in [1e-6, 0.0123, 0.5, 3.7, 3600.0] {
            let i = bucket_index(v);
            assert!(upper_bound(i - 1) < v && v <= upper_bound(i), "{v} in {i}");
        }
    }

    #[test]
    fn spans_and_deltas_encode_the_buckets() {
        let mut n = Native::default();
        n.observe(1.0, 2); // bucket 0
        n.observe(1.02, 5); // bucket 1
        n.observe(2.0, 1); // bucket 32
        n.observe(0.0, 4); // zero bucket
        let p = n.to_proto(7);
        assert_eq!(p.count_int, 12);
        assert_eq!(p.zero_count_int, 4);
        let spans: Vec<(i32, u32)> = p
            .positive_spans
            .iter()
            .map(|s| (s.offset, s.length))
            .collect();
        assert_eq!(spans, [(0, 2), (30, 1)]);
        assert_eq!(p.positive_deltas, [2, 3, -4]);
        assert!((p.sum - (2.0 + 5.1 + 2.0)).abs() < 1e-9);
    }

    /// Every HDR quantile's value lies in the native bucket that the same
    /// rank falls into, so a quantile read from the native histogram is
    /// within one bucket's width of HDR's.
    #[test]
    fn hdr_quantiles_fall_in_the_bucket_of_the_same_rank() {
        let mut h = crate::metrics::recorder::new_histogram();
        for i in 1..5000u64 {
            h.record(i * i % 97_531 + 40).unwrap();
        }
        let mut n = Native::default();
        n.add_hdr(&h);
        for q in [0.5, 0.9, 0.99, 0.999] {
            let v = h.value_at_quantile(q) as f64 / 1e6;
            let rank = (q * n.count as f64).ceil() as u64;
            let mut seen = n.zero;
            let bucket = n
                .buckets
                .iter()
                .find(|(_, c)| {
                    seen += **c;
                    seen >= rank
                })
                .map(|(i, _)| *i)
                .unwrap();
            assert_eq!(bucket, bucket_index(v), "q{q}: {v}");
        }
    }
}
