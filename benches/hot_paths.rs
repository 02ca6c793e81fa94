//! Hot paths of the harness, each beside a control case, as a table of
//! medians (ns per operation) and ratios to the control. Ratios, not
//! absolutes, are what to compare across machines.
//!
//!     cargo bench --bench hot_paths

use std::hint::black_box;
use std::time::{Duration, Instant};

use stampede::envelope::Envelope;
use stampede::metrics::ledger::SeqSet;
use stampede::metrics::recorder::{new_histogram, Count, GroupRecorder, Latency};

const REPEATS: usize = 9;

/// Median ns per op of `f` run `ops` times, over REPEATS batches.
fn median_ns(ops: u64, mut f: impl FnMut(u64)) -> f64 {
    let mut samples: Vec<f64> = (0..REPEATS)
        .map(|_| {
            let t = Instant::now();
            for i in 0..ops {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / ops as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[REPEATS / 2]
}

fn row(name: &str, control: &str, ns: f64, control_ns: f64) {
    println!(
        "| {name:<38} | {ns:>8.1} | {control:<30} | {control_ns:>8.1} | {:>6.2} |",
        ns / control_ns
    );
}

fn main() {
    println!("| hot path | ns/op | control | ns/op | ratio |");
    println!("|---|---:|---|---:|---:|");

    // Recording a delivery: shard lock + histogram + counter, against a bare
    // histogram record with no lock.
    let rec = GroupRecorder::new(4);
    let mut bare = new_histogram();
    let n = 2_000_000;
    let ns = median_ns(n, |i| {
        rec.with(|s| {
            s.record(Latency::Delivery, Duration::from_micros(100 + (i & 1023)));
            s.add(Count::Deliveries, 1);
        })
    });
    let control = median_ns(n, |i| {
        let _ = bare.record(black_box(100 + (i & 1023)));
    });
    row(
        "recorder: delivery sample",
        "bare Histogram::record",
        ns,
        control,
    );

    // Decoding an envelope from a 256-byte payload, against parsing one u64.
    let payload = Envelope {
        channel: 3,
        seq: 123_456,
        sent_ns: 9_876_543_210,
    }
    .encode(256);
    let number = "9876543210";
    let ns = median_ns(n, |_| {
        black_box(Envelope::decode(black_box(payload.as_bytes())));
    });
    let control = median_ns(n, |_| {
        black_box(black_box(number).parse::<u64>().ok());
    });
    row(
        "envelope: decode 256 B payload",
        "str::parse::<u64>",
        ns,
        control,
    );

    // Classifying a plain relay's message (the envelope is the whole
    // message), and a wrapped one found with and without a path, against
    // the bare decode today's client does.
    let plain = stampede::profile::builtin().extractor();
    let control = median_ns(n, |_| {
        black_box(Envelope::decode(black_box(payload.as_bytes())));
    });
    let ns = median_ns(n, |_| {
        black_box(plain.classify(black_box(payload.as_bytes())));
    });
    row(
        "extract: plain relay message",
        "Envelope::decode",
        ns,
        control,
    );
    let wrapped = format!(
        r#"{{"id":"1","type":"next","payload":{{"data":{{"onEvent":{{"text":"{payload}"}}}}}}}}"#
    );
    let ns = median_ns(n / 10, |_| {
        black_box(plain.classify(black_box(wrapped.as_bytes())));
    });
    row(
        "extract: GraphQL frame, anywhere",
        "Envelope::decode",
        ns,
        control,
    );
    let mut with_path = stampede::profile::builtin();
    with_path.message_path = Some("/payload/data/onEvent/text".into());
    let pathed = with_path.extractor();
    let ns = median_ns(n / 10, |_| {
        black_box(pathed.classify(black_box(wrapped.as_bytes())));
    });
    row(
        "extract: GraphQL frame, message_path",
        "Envelope::decode",
        ns,
        control,
    );

    // Ledger receipts in order, against pushing onto a Vec.
    let ns = {
        let mut set = SeqSet::default();
        let t = Instant::now();
        for i in 0..n {
            black_box(set.insert(i));
        }
        t.elapsed().as_nanos() as f64 / n as f64
    };
    let control = {
        let mut v = Vec::new();
        let t = Instant::now();
        for i in 0..n {
            v.push(black_box(i));
        }
        t.elapsed().as_nanos() as f64 / n as f64
    };
    row("ledger: in-order receipt", "Vec::push", ns, control);

    // Collecting an interval: take (merge + reset) of 4 shards, against
    // cloning one histogram.
    let h = new_histogram();
    let ns = median_ns(200, |i| {
        rec.with(|s| s.record(Latency::Delivery, Duration::from_micros(i)));
        black_box(rec.take());
    });
    let control = median_ns(200, |_| {
        black_box(h.clone());
    });
    row(
        "collector: take 4 shards x 5 metrics",
        "clone one histogram",
        ns,
        control,
    );
}
