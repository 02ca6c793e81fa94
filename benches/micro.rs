//! Criterion micro-benchmarks of the harness's own per-event and per-sample
//! work, so that changes to these paths show up as numbers with confidence
//! intervals (`hot_paths` stays the quick table of ratios to control cases).
//!
//!     cargo bench --bench micro                 # everything, about a minute
//!     cargo bench --bench micro -- recorder     # one group
//!
//! Each group is kept short (0.5 s warm-up, 2 s measurement, 20 samples) so
//! the whole run fits in well under two minutes on two cores; pass
//! `--measurement-time 10` for tighter intervals.

use std::hint::black_box;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sse_parse::SseParser;

use stampede::envelope::Envelope;
use stampede::metrics::ledger::Tally;
use stampede::metrics::recorder::{new_histogram, Count, GroupRecorder, Interval, Latency};
use stampede::metrics::summary::{GroupResult, Resources};
use stampede::transport::TransportKind;

/// Payload size of the published events in the SSE stream and envelope
/// benches: with nchan's `id:` line and the framing, one event is ~300 bytes.
const PAYLOAD: usize = 256;

/// The SSE transport's parser buffer limit (`MAX_EVENT_BYTES` in
/// transport/sse.rs, `Limits::default().max_sse_line_bytes` on newer main).
/// A literal rather than an import so this bench does not pin either name;
/// only overflow handling depends on it, not the speed of valid streams.
const MAX_EVENT_BYTES: usize = 4 << 20;

/// Events in the SSE stream.
const EVENTS: u64 = 10_000;

/// A small deterministic PRNG (xorshift64*), so the benches need no `rand`
/// and every run sees the same samples.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A latency shaped like a loopback run: mostly 100 us to 2 ms, with a
    /// long tail to ~500 ms (log-uniform over each band), so histograms get
    /// a realistic spread of buckets rather than one hot counter.
    fn latency(&mut self) -> Duration {
        let r = self.next();
        let (lo, hi) = match r % 1000 {
            0..=899 => (100.0f64, 2_000.0f64),
            900..=989 => (2_000.0, 50_000.0),
            _ => (50_000.0, 500_000.0),
        };
        let u = (r >> 11) as f64 / (1u64 << 53) as f64;
        Duration::from_micros((lo * (hi / lo).powf(u)) as u64)
    }
}

/// An interval filled the way a one-second interval of a busy group is:
/// `samples` deliveries and requests, a few hundred connects.
fn filled_interval(samples: u64, seed: u64) -> Interval {
    let mut rng = Rng(seed);
    let mut i = Interval::default();
    for _ in 0..samples {
        i.record(Latency::Delivery, rng.latency());
        i.record(Latency::Request, rng.latency());
        i.record(Latency::RequestUncorrected, rng.latency());
    }
    for _ in 0..samples / 100 {
        i.record(Latency::Connect, rng.latency() / 10);
        i.record(Latency::Subscribe, rng.latency());
        i.record(Latency::FirstEvent, rng.latency());
    }
    i.add(Count::Deliveries, samples);
    i.add(Count::Requests, samples);
    i.add(Count::Status2xx, samples);
    i.add(Count::BytesSent, samples * 80);
    i.add(Count::BytesReceived, samples * 300);
    i
}

fn envelope(c: &mut Criterion) {
    let mut g = c.benchmark_group("envelope");
    let e = Envelope {
        channel: 3,
        seq: 123_456,
        sent_ns: 9_876_543_210,
    };
    g.bench_function("encode 256 B", |b| {
        b.iter(|| black_box(black_box(e).encode(PAYLOAD)))
    });
    let payload = e.encode(PAYLOAD);
    g.bench_function("decode 256 B", |b| {
        b.iter(|| black_box(Envelope::decode(black_box(payload.as_bytes()))))
    });
    g.finish();
}

/// A ws-rpc reply's id: the pointer walk that skips the rest of the
/// reply, against parsing the whole reply into a `Value` (the control).
fn rpc_id(c: &mut Criterion) {
    let mut g = c.benchmark_group("rpc_id");
    let result = "x".repeat(PAYLOAD);
    let reply = format!(r#"{{"jsonrpc":"2.0","result":["{result}",{{"n":[1,2,3]}}],"id":123456}}"#);
    let pointer = stampede::transport::json_id::Pointer::parse("/id").unwrap();
    g.bench_function("Pointer::find, ~300 B reply", |b| {
        b.iter(|| black_box(pointer.find(black_box(reply.as_bytes()))))
    });
    g.bench_function("Value + pointer(\"/id\") (control)", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(black_box(reply.as_bytes())).unwrap();
            black_box(v.pointer("/id").and_then(serde_json::Value::as_u64))
        })
    });
    g.finish();
}

/// An event stream as nchan sends it: `id: <unix s>:<tag>` and one `data:`
/// line carrying an envelope, then a blank line.
fn sse_stream() -> Vec<u8> {
    let mut out = Vec::new();
    for seq in 0..EVENTS {
        let data = Envelope {
            channel: 7,
            seq,
            sent_ns: 1_000_000_000 + seq * 1_000_000,
        }
        .encode(PAYLOAD);
        let id = format!("1795286308:{seq}");
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(data.as_bytes());
        out.extend_from_slice(b"\n\n");
    }
    out
}

/// The SSE transport's loop (`transport::sse::Sse::next`): feed each body
/// chunk, then drain the completed events and hand their data on.
fn parse_chunks<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> u64 {
    let mut parser = SseParser::new().max_buffer(MAX_EVENT_BYTES);
    let mut events = 0;
    for chunk in chunks {
        parser.feed(chunk);
        while let Some(event) = parser.next_event() {
            black_box(event.data.as_bytes());
            events += 1;
        }
    }
    events
}

fn sse(c: &mut Criterion) {
    let stream = sse_stream();
    // The stream's own event boundaries, for the one-event-per-read case.
    let mut bounds = vec![0];
    bounds.extend(
        stream
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w == b"\n\n")
            .map(|(i, _)| i + 2),
    );
    assert_eq!(parse_chunks(std::iter::once(&stream[..])), EVENTS);

    let mut g = c.benchmark_group("sse parse");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    // A busy stream: the socket read returns many events at once.
    g.bench_function("10k events of ~300 B, 16 KiB reads", |b| {
        b.iter(|| parse_chunks(stream.chunks(16 * 1024)))
    });
    // A quiet stream: nchan writes each message separately, so at low
    // rates every read holds exactly one event.
    g.bench_function("10k events of ~300 B, one event per read", |b| {
        b.iter(|| parse_chunks(bounds.windows(2).map(|w| &stream[w[0]..w[1]])))
    });
    g.finish();
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Two threads each run `f` `iters` times at the same moment; returns the
/// mean *thread CPU time* per thread. Not wall time: on a 2-core machine
/// shared with other work, two threads' wall time measures how often the
/// scheduler runs them, not what recording costs (it varied 2x between
/// runs). CPU time still counts lock hand-offs (futex calls, spinning,
/// cache-line transfers), though not the time a thread sleeps waiting for a
/// shared lock, so the shared-lock control's cost is if anything understated.
fn two_threads(iters: u64, f: impl Fn(u64) + Sync) -> Duration {
    let start = Barrier::new(2);
    thread::scope(|s| {
        let run = || {
            start.wait();
            let t = thread_cpu();
            for i in 0..iters {
                f(i);
            }
            thread_cpu() - t
        };
        let a = s.spawn(run);
        let b = s.spawn(run);
        (a.join().unwrap() + b.join().unwrap()) / 2
    })
}

/// One delivery sample the way clients record it.
fn record_delivery(s: &mut Interval, i: u64) {
    s.record(Latency::Delivery, Duration::from_micros(100 + (i & 1023)));
    s.add(Count::Deliveries, 1);
}

fn recorder(c: &mut Criterion) {
    let mut g = c.benchmark_group("recorder record");
    let rec = GroupRecorder::new(2);
    let mut i = 0u64;
    g.bench_function("sharded, 1 thread", |b| {
        b.iter(|| {
            i += 1;
            rec.with(|s| record_delivery(s, black_box(i)))
        })
    });
    // A room member's delivery: the same, plus its room-size bucket's
    // histogram (`rooms` scenarios; the slot is fixed per client).
    let rooms = GroupRecorder::new(2);
    g.bench_function("sharded, 1 thread, with its room-size bucket", |b| {
        b.iter(|| {
            i += 1;
            rooms.with(|s| {
                record_delivery(s, black_box(i));
                s.record_room(black_box(3), Duration::from_micros(100 + (i & 1023)));
            })
        })
    });
    // Lower bound: the histogram alone, no lock, no counter.
    let mut bare = new_histogram();
    g.bench_function("bare Histogram::saturating_record (lower bound)", |b| {
        b.iter(|| {
            i += 1;
            bare.saturating_record(black_box(100 + (i & 1023)))
        })
    });
    // Two threads recording at once, as two runtime workers do. Shards are
    // handed out per thread in turn, so the two fresh threads of each
    // measurement land on different shards of a 2-shard recorder.
    g.bench_function("sharded, 2 threads at once (thread CPU per sample)", |b| {
        b.iter_custom(|iters| {
            let rec = GroupRecorder::new(2);
            two_threads(iters, |i| rec.with(|s| record_delivery(s, black_box(i))))
        })
    });
    // Control: the design the sharding replaces, one lock shared by all.
    g.bench_function(
        "control: one Arc<Mutex<Interval>>, 2 threads at once (thread CPU per sample)",
        |b| {
            b.iter_custom(|iters| {
                let shared = Arc::new(Mutex::new(Interval::default()));
                two_threads(iters, |i| {
                    record_delivery(&mut shared.lock().unwrap(), black_box(i))
                })
            })
        },
    );
    g.finish();

    let mut g = c.benchmark_group("recorder interval");
    let filled = filled_interval(100_000, 1);
    // What the collector does once per second: take (merge + reset) both
    // shards of a group, each holding a busy second's samples.
    g.bench_function("take, 2 shards x 100k samples", |b| {
        b.iter_batched(
            || {
                let rec = GroupRecorder::new(2);
                // Fill from two fresh threads so both shards hold samples.
                thread::scope(|s| {
                    for _ in 0..2 {
                        s.spawn(|| rec.with(|shard| shard.merge(&filled)));
                    }
                });
                rec
            },
            |rec| rec.take(),
            BatchSize::PerIteration,
        )
    });
    // Adding a filled interval into a non-empty total: merge of shard runs
    // and of run folders.
    let mut total = filled_interval(100_000, 2);
    g.bench_function("merge filled into filled", |b| {
        b.iter(|| total.merge(black_box(&filled)))
    });
    g.finish();
}

fn summary(c: &mut Criterion) {
    let mut g = c.benchmark_group("summary");
    let sse = GroupResult {
        name: "sse".into(),
        transport: TransportKind::Sse,
        clients: 1000,
        accounting: Some((
            Tally {
                expected: 1_000_000,
                delivered: 999_990,
                lost: 10,
                duplicated: 0,
                reordered: 3,
            },
            1000,
        )),
        measured: filled_interval(1_000_000, 3),
        measured_s: 60.0,
        health: Default::default(),
        client: Resources {
            cpu_s: 12.5,
            rss_peak_bytes: 200 << 20,
            sockets_peak: None,
            marginal: None,
        },
        target: Some(Resources {
            cpu_s: 30.0,
            rss_peak_bytes: 100 << 20,
            sockets_peak: Some(1000),
            marginal: None,
        }),
    };
    g.bench_function("GroupResult::row, sse, 1M samples", |b| {
        b.iter(|| black_box(&sse).row())
    });
    let request = GroupResult {
        name: "hello".into(),
        transport: TransportKind::Request,
        accounting: None,
        ..sse.clone()
    };
    g.bench_function("GroupResult::row, request, 1M samples", |b| {
        b.iter(|| black_box(&request).row())
    });
    g.finish();
}

/// Prometheus remote write's per-interval work: a group's delivery
/// histogram (one busy second) into the cumulative native histogram, and
/// the histogram's protobuf + snappy body. Printed with its size, the
/// bytes one histogram series adds to a push.
fn telemetry(c: &mut Criterion) {
    use stampede::telemetry::{native::Native, prompb};
    let iv = filled_interval(10_000, 7);
    let h = iv.hist(Latency::Delivery);
    let mut g = c.benchmark_group("telemetry");
    g.bench_function("Native::add_hdr, 1 s of 10k deliveries", |b| {
        b.iter(|| {
            let mut n = Native::default();
            n.add_hdr(black_box(h));
            n
        })
    });
    let mut n = Native::default();
    n.add_hdr(h);
    let req = prompb::WriteRequest {
        timeseries: vec![prompb::TimeSeries {
            labels: Vec::new(),
            samples: Vec::new(),
            histograms: vec![n.to_proto(0)],
        }],
    };
    println!(
        "telemetry: one delivery histogram of 10k samples: {} bytes snappy-compressed protobuf",
        prompb::encode(&req).len()
    );
    g.bench_function("to_proto + encode, one histogram", |b| {
        b.iter(|| {
            let req = prompb::WriteRequest {
                timeseries: vec![prompb::TimeSeries {
                    labels: Vec::new(),
                    samples: Vec::new(),
                    histograms: vec![black_box(&n).to_proto(0)],
                }],
            };
            prompb::encode(&req)
        })
    });
    g.finish();
}

criterion_group! {
    name = micro;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .without_plots();
    targets = envelope, rpc_id, sse, recorder, summary, telemetry
}
criterion_main!(micro);
