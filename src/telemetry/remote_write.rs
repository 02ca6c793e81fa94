//! `--prometheus-remote-write URL`: the run's series pushed to a
//! Prometheus-compatible receiver with the remote-write 1.0 protocol
//! (protobuf `WriteRequest`, snappy block compression, `POST`), every
//! `--prometheus-remote-write-interval`, and once more at the end.
//!
//! What is written, every name from a registry (never spelt here):
//! - gauges `stampede_<column>`: each numeric `timeseries.csv` column of a
//!   group's interval row (connections, deliveries_per_s, delivery_p99_ms,
//!   target_cpu_pct, the scraped target columns...), one sample per
//!   interval; the per-interval counts are counters instead;
//! - counters `stampede_<column>_total`: the interval counts (`deliveries`,
//!   `requests`, `reconnects`, `bytes_sent`, `bytes_received`, `errors`,
//!   `errors_<kind>`), cumulative, split by `measured="true"|"false"`: the
//!   `measured="true"` series end equal to `summary.csv`'s measured-window
//!   columns of the same name;
//! - native histograms `stampede_<latency>_seconds` (`delivery`, `connect`,
//!   `request`, ..., see [`super::native`] for the schema), cumulative, with
//!   the same `measured` split (delivery and request percentiles of
//!   `summary.csv` read `measured="true"`; the whole-phase ones, such as
//!   connect, both);
//! - gauges `stampede_summary_<column>`: every numeric `summary.csv`
//!   column, at each phase's end and the run's.
//!
//! Labels: `run`, `scenario`, `group`, `transport`, `shard` (sharded runs:
//! each shard pushes its own series; counters and native histograms add
//! across shards in PromQL, the summary's percentiles do not), and the
//! user's `--prometheus-label NAME=VALUE`s.
//!
//! A push that fails is dropped (never retried, so a dead receiver costs
//! one attempt per interval) and counted; the run goes on and ends with a
//! warning naming the count and the first error.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::http::{exchange, Endpoint};
use super::native::Native;
use super::prompb::{self, Label, Sample, TimeSeries, WriteRequest};
use crate::fault::ErrorKind;
use crate::folder::record::Access;
use crate::folder::summary::SummaryRow;
use crate::folder::{columns, timeseries};
use crate::metrics::{Count, Interval, Latency};

/// Prefix of every series name.
pub const PREFIX: &str = "stampede_";

/// Default push interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// How long one push may take.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// `timeseries.csv` columns that are not gauges: time bookkeeping, and the
/// per-interval counts written as counters.
const NOT_GAUGES: &[&str] = &[
    "unix_s",
    "elapsed_s",
    "interval_s",
    "deliveries",
    "errors",
    "reconnects",
];

/// The interval counters and the column each is named after (a
/// `summary.csv` or `timeseries.csv` column; checked by a test).
const COUNTERS: [(Count, &str); 5] = [
    (Count::Deliveries, "deliveries"),
    (Count::Requests, "requests"),
    (Count::Reconnects, "reconnects"),
    (Count::BytesSent, "bytes_sent"),
    (Count::BytesReceived, "bytes_received"),
];

/// What the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The receiver.
    pub endpoint: Endpoint,
    /// Push period.
    pub interval: Duration,
    /// Extra labels (`--prometheus-label`), in the order given.
    pub labels: Vec<(String, String)>,
}

/// Parses one `--prometheus-label NAME=VALUE`: a Prometheus label name
/// (`[a-zA-Z_][a-zA-Z0-9_]*`, not `__` reserved) and any value.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected NAME=VALUE"))?;
    let valid = !k.is_empty()
        && !k.starts_with("__")
        && k.chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if !valid {
        return Err(format!(
            "{k:?} is not a label name (letters, digits and _, not starting with a digit or __)"
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

/// The histogram series name of a latency metric.
pub fn histogram_name(m: Latency) -> String {
    format!("{PREFIX}{}_seconds", m.label().replace('-', "_"))
}

/// The counter series name of a column.
pub fn counter_name(column: &str) -> String {
    format!("{PREFIX}{column}_total")
}

/// The `timeseries.csv` columns written as gauges.
pub fn gauge_columns() -> Vec<&'static str> {
    timeseries::Row::fields()
        .into_iter()
        .filter(|f| f.is_numeric() && !matches!(f.access, Access::Error(_)))
        .map(|f| f.name)
        .filter(|n| !NOT_GAUGES.contains(n))
        .collect()
}

/// The counter columns: [`COUNTERS`]'s, `errors` and `errors_<kind>`.
pub fn counter_columns() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = COUNTERS.iter().map(|(_, c)| *c).collect();
    v.push("errors");
    v.extend(ErrorKind::ALL.iter().map(|k| k.column()));
    v
}

/// Every series name this module can write, for checks of dashboards and
/// queries against it.
pub fn written_names() -> Vec<String> {
    let mut v: Vec<String> = gauge_columns()
        .into_iter()
        .map(|c| format!("{PREFIX}{c}"))
        .collect();
    v.extend(counter_columns().into_iter().map(counter_name));
    v.extend(Latency::ALL.into_iter().map(histogram_name));
    v.extend(columns::numeric().map(|c| format!("{PREFIX}summary_{}", c.name())));
    v
}

/// A group's cumulative series.
#[derive(Default)]
struct GroupSeries {
    counters: BTreeMap<(&'static str, bool), u64>,
    hists: BTreeMap<(usize, bool), Native>,
}

#[derive(Default)]
struct State {
    pending: BTreeMap<Vec<Label>, TimeSeries>,
    groups: BTreeMap<String, GroupSeries>,
    pushes: u64,
    dropped: u64,
    first_error: Option<String>,
}

struct Shared {
    base: Vec<(String, String)>,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sorted label set of series `name` with the run's labels and
    /// `more`.
    fn labels(&self, name: &str, more: &[(&str, &str)]) -> Vec<Label> {
        let mut v: Vec<Label> = std::iter::once(("__name__", name))
            .chain(self.base.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .chain(more.iter().copied())
            .map(|(k, v)| Label {
                name: k.to_string(),
                value: v.to_string(),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        // A user label named like one of ours: ours (later in `more`) wins.
        v.dedup_by(|later, earlier| {
            let same = later.name == earlier.name;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        v
    }
}

fn series(state: &mut State, labels: Vec<Label>) -> &mut TimeSeries {
    state
        .pending
        .entry(labels)
        .or_insert_with_key(|l| TimeSeries {
            labels: l.clone(),
            ..Default::default()
        })
}

/// Pushes for one run; [`RemoteWrite::finish`] sends the rest and says how
/// it went.
pub struct RemoteWrite {
    shared: Arc<Shared>,
    endpoint: Endpoint,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// A run that ends early (an error between start and `finish`) must not
/// leave the loop pushing.
impl Drop for RemoteWrite {
    fn drop(&mut self) {
        self.stop.cancel();
        self.task.abort();
    }
}

impl std::fmt::Debug for RemoteWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteWrite({})", self.endpoint.url)
    }
}

/// How the pushes went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Pushes the receiver accepted (2xx).
    pub pushes: u64,
    /// Pushes that failed and were dropped.
    pub dropped: u64,
    /// The first failure.
    pub first_error: Option<String>,
}

impl Outcome {
    /// The run's warning, when pushes were dropped.
    pub fn warning(&self, url: &str) -> Option<String> {
        (self.dropped > 0).then(|| {
            format!(
                "Prometheus remote write to {url}: {} of {} pushes dropped (first error: {})",
                self.dropped,
                self.dropped + self.pushes,
                self.first_error.as_deref().unwrap_or("unknown")
            )
        })
    }
}

impl RemoteWrite {
    /// Starts pushing to `config`'s receiver with the run's labels
    /// (`run`, `scenario`, `shard` ...) before the user's.
    pub fn start(config: &Config, run_labels: Vec<(String, String)>) -> RemoteWrite {
        let mut base = run_labels;
        for (k, v) in &config.labels {
            base.retain(|(b, _)| b != k);
            base.push((k.clone(), v.clone()));
        }
        let shared = Arc::new(Shared {
            base,
            state: Mutex::new(State::default()),
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(push_loop(
            shared.clone(),
            config.endpoint.clone(),
            config.interval,
            stop.clone(),
        ));
        RemoteWrite {
            shared,
            endpoint: config.endpoint.clone(),
            stop,
            task,
        }
    }

    /// One group's interval: its `timeseries.csv` row (gauges) and its
    /// collected interval (counters, histograms).
    pub fn tick(&self, row: &timeseries::Row, iv: &Interval) {
        let ts = (row.unix_s * 1000.0).round() as i64;
        let group = [
            ("group", row.group.as_str()),
            ("transport", row.transport.as_str()),
        ];
        let mut st = self.shared.lock();
        for f in timeseries::Row::fields() {
            if NOT_GAUGES.contains(&f.name) || matches!(f.access, Access::Error(_)) {
                continue;
            }
            if let Some(v) = f.number(row) {
                let l = self.shared.labels(&format!("{PREFIX}{}", f.name), &group);
                series(&mut st, l).samples.push(Sample {
                    value: v,
                    timestamp: ts,
                });
            }
        }
        let m = row.measured;
        let g = st.groups.entry(row.group.clone()).or_default();
        for (c, name) in COUNTERS {
            *g.counters.entry((name, m)).or_default() += iv.count(c);
        }
        *g.counters.entry(("errors", m)).or_default() += iv.error_total();
        for k in ErrorKind::ALL {
            *g.counters.entry((k.column(), m)).or_default() += iv.errors[k.index()];
        }
        for (i, lat) in Latency::ALL.into_iter().enumerate() {
            let h = iv.hist(lat);
            if !h.is_empty() || g.hists.contains_key(&(i, m)) {
                g.hists.entry((i, m)).or_default().add_hdr(h);
            }
        }
        let measured = |m: bool| if m { "true" } else { "false" };
        let mut out: Vec<(Vec<Label>, Sample)> = Vec::new();
        for ((name, m), v) in &g.counters {
            let more = [group[0], group[1], ("measured", measured(*m))];
            out.push((
                self.shared.labels(&counter_name(name), &more),
                Sample {
                    value: *v as f64,
                    timestamp: ts,
                },
            ));
        }
        let mut hists = Vec::new();
        for ((i, m), h) in &g.hists {
            let more = [group[0], group[1], ("measured", measured(*m))];
            hists.push((
                self.shared.labels(&histogram_name(Latency::ALL[*i]), &more),
                h.to_proto(ts),
            ));
        }
        for (l, s) in out {
            series(&mut st, l).samples.push(s);
        }
        for (l, h) in hists {
            series(&mut st, l).histograms.push(h);
        }
    }

    /// The summary rows so far (at a phase's end and the run's), at the
    /// current time.
    pub fn summary(&self, rows: &[SummaryRow]) {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut st = self.shared.lock();
        for r in rows {
            let group = [
                ("group", r.group.as_str()),
                ("transport", r.transport.as_str()),
            ];
            for c in columns::numeric() {
                if let Some(v) = c.value(r) {
                    let l = self
                        .shared
                        .labels(&format!("{PREFIX}summary_{}", c.name()), &group);
                    series(&mut st, l).samples.push(Sample {
                        value: v,
                        timestamp: ts,
                    });
                }
            }
        }
    }

    /// Stops the timer, pushes what is pending and returns how the pushes
    /// went.
    pub async fn finish(mut self) -> Outcome {
        self.stop.cancel();
        let _ = (&mut self.task).await;
        push_pending(&self.shared, &self.endpoint).await;
        let st = self.shared.lock();
        Outcome {
            pushes: st.pushes,
            dropped: st.dropped,
            first_error: st.first_error.clone(),
        }
    }

    /// The receiver's URL.
    pub fn url(&self) -> &str {
        &self.endpoint.url
    }
}

async fn push_loop(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    every: Duration,
    stop: CancellationToken,
) {
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = timer.tick() => push_pending(&shared, &endpoint).await,
        }
    }
}

/// Sends every pending sample in one request; a failure drops them.
async fn push_pending(shared: &Shared, endpoint: &Endpoint) {
    let req = {
        let mut st = shared.lock();
        let pending = std::mem::take(&mut st.pending);
        WriteRequest {
            timeseries: pending.into_values().collect(),
        }
    };
    if req.timeseries.is_empty() {
        return;
    }
    let body = prompb::encode(&req);
    let headers = [
        ("content-encoding", "snappy"),
        ("content-type", "application/x-protobuf"),
        ("x-prometheus-remote-write-version", "0.1.0"),
    ];
    let result = exchange(endpoint, Some(body), &headers, PUSH_TIMEOUT).await;
    let failure = match result {
        Ok(r) if (200..300).contains(&r.status) => None,
        Ok(r) => {
            let text = String::from_utf8_lossy(&r.body[..r.body.len().min(200)]).into_owned();
            Some(format!("HTTP {}: {}", r.status, text.trim()))
        }
        Err(e) => Some(e),
    };
    let mut st = shared.lock();
    match failure {
        None => st.pushes += 1,
        Some(e) => {
            st.dropped += 1;
            st.first_error.get_or_insert(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_after_registry_columns() {
        let ts: Vec<&str> = timeseries::Row::fields().iter().map(|f| f.name).collect();
        for c in counter_columns() {
            assert!(
                columns::find(c).is_some() || ts.contains(&c),
                "{c} is no column"
            );
        }
        let names = written_names();
        for n in [
            "stampede_connections",
            "stampede_delivery_p99_ms",
            "stampede_requests_total",
            "stampede_errors_timeout_total",
            "stampede_delivery_seconds",
            "stampede_summary_delivered",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        assert!(!names
            .iter()
            .any(|x| x == "stampede_unix_s" || x == "stampede_group"));
    }

    #[test]
    fn labels_are_checked() {
        assert_eq!(
            parse_label("run=a=b").unwrap(),
            ("run".into(), "a=b".into())
        );
        assert!(parse_label("9x=1").is_err());
        assert!(parse_label("__name__=1").is_err());
        assert!(parse_label("nolabel").is_err());
    }

    #[test]
    fn series_labels_are_sorted_and_ours_win() {
        let s = Shared {
            base: vec![
                ("scenario".into(), "s".into()),
                ("group".into(), "user".into()),
            ],
            state: Mutex::new(State::default()),
        };
        let l = s.labels("stampede_x", &[("group", "g")]);
        let pairs: Vec<(&str, &str)> = l
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("__name__", "stampede_x"),
                ("group", "g"),
                ("scenario", "s")
            ]
        );
    }
}
