//! The Prometheus remote-write 1.0 wire messages, written by hand with
//! `prost`'s derive (no `protoc` step): field numbers and types as in
//! `prompb/types.proto` and `prompb/remote.proto` of prometheus/prometheus.
//! Only what stampede sends is declared; enums are sent as their `int32`
//! values (the same varint on the wire).

use prost::Message;

/// `prometheus.WriteRequest` (remote.proto): `timeseries = 1`.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// Every series of one push.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: labels (sorted by name, `__name__` among
/// them), float samples and native histograms, each in time order.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Labels, sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Float samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Native histogram samples.
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Message)]
pub struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: a float value at a time in ms since the Unix epoch.
#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Histogram`, integer flavour: counts are `count_int`,
/// `zero_count_int` and the delta-encoded `positive_deltas`.
#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    /// `count_int` (oneof `count`): observations in all buckets.
    #[prost(uint64, tag = "1")]
    pub count_int: u64,
    /// Sum of the observations.
    #[prost(double, tag = "3")]
    pub sum: f64,
    /// Bucket schema: each power of two is split into `2^schema` buckets.
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    /// Observations at or below this magnitude fall in the zero bucket.
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    /// `zero_count_int` (oneof `zero_count`).
    #[prost(uint64, tag = "6")]
    pub zero_count_int: u64,
    /// Runs of consecutive populated positive buckets.
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    /// Each positive bucket's count minus the previous one's (the first
    /// against zero).
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    /// `ResetHint`: 0 unknown, 1 yes, 2 no, 3 gauge.
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
}

/// `prometheus.BucketSpan`.
#[derive(Clone, PartialEq, Message)]
pub struct BucketSpan {
    /// Gap to the previous span's end (the first span: its start index).
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    /// Consecutive buckets in the span.
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// The body of one push: the protobuf encoding, compressed with snappy's
/// *block* format (remote write 1.0 says block, not framed).
pub fn encode(req: &WriteRequest) -> Vec<u8> {
    let raw = req.encode_to_vec();
    // A block encoder fails only for inputs over ~4 GiB, which one push
    // (a few seconds of a few hundred series) never is.
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of a small request, checked field by field against the
    /// proto's numbering (tag = field << 3 | wire type).
    #[test]
    fn fields_are_numbered_as_in_types_proto() {
        let h = Histogram {
            count_int: 3,
            schema: -1,
            positive_spans: vec![BucketSpan {
                offset: -2,
                length: 1,
            }],
            positive_deltas: vec![3],
            ..Default::default()
        };
        let bytes = h.encode_to_vec();
        // count_int = 1 (varint): 0x08 0x03; schema = 4 (sint32 zigzag -1 = 1): 0x20 0x01.
        assert_eq!(&bytes[..4], &[0x08, 3, 0x20, 1]);
        // positive_spans = 11 (length-delimited): 0x5a; offset zigzag(-2) = 3.
        assert_eq!(&bytes[4..10], &[0x5a, 4, 0x08, 3, 0x10, 1]);
        // positive_deltas = 12, packed: 0x62, len 1, zigzag(3) = 6.
        assert_eq!(&bytes[10..], &[0x62, 1, 6]);
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "x".into(),
                }],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 5,
                }],
                histograms: vec![],
            }],
        };
        let body = encode(&req);
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        assert_eq!(WriteRequest::decode(raw.as_slice()).unwrap(), req);
    }
}
