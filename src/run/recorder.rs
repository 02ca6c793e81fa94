//! The per-phase recorder: what happens to each collected interval (a
//! [`Tick`]) while a phase runs. It merges the interval into its group's
//! state, checks `abort_on_fail` thresholds, writes the time-series row and
//! the interval-log lines, and updates the progress display. No network:
//! the unit test feeds it ticks.

use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::error::Error;
use crate::folder::hlog::HlogWriter;
use crate::folder::timeseries;
use crate::gate::threshold;
use crate::load::runner::Tick;
use crate::metrics::health::{Health, LagProbe};
use crate::metrics::process::PhaseUsage;
use crate::metrics::summary::{pct_ms, GroupResult, Resources};
use crate::metrics::{Count, Interval, Latency};
use crate::plan::Plan;
use crate::progress::{Progress, Status};
use crate::schedule::shape;
use crate::shutdown::{Shutdown, StopReason};
use crate::telemetry::scrape::{Reading, Scraper};

/// Where ticks are written: the run folder's time series and interval logs.
pub(super) struct Outputs {
    /// `timeseries.csv`.
    pub ts: timeseries::Writer,
    /// The `.hlog` files, one per group and latency metric.
    pub hlog: HlogWriter,
    /// The first write that failed: the run goes on and fails at its end.
    pub write_error: Option<Error>,
    /// The live dashboard (`--dashboard`): sent every row as written.
    pub dashboard: Option<crate::dashboard::Feed>,
    /// Prometheus remote write (`--prometheus-remote-write`): sent every
    /// row as written, with its interval.
    pub remote: Option<crate::telemetry::remote_write::RemoteWrite>,
    /// Index in `hlog` of the first group's room-size log (one per group
    /// after the latency logs; a group without rooms has no file).
    pub rooms_log_base: usize,
}

/// Per-group state kept across ticks.
pub(super) struct GroupState {
    pub measured: Interval,
    /// Seconds of measured intervals so far (for abort grace).
    pub measured_s: f64,
    /// Every interval of the phase: connects and first events happen
    /// during ramp-up, before the measured window.
    pub whole: Interval,
    pub deliveries: u64,
    pub errors: u64,
    pub last_status: Option<Status>,
}

impl GroupState {
    fn new() -> GroupState {
        GroupState {
            measured: Interval::default(),
            measured_s: 0.0,
            whole: Interval::default(),
            deliveries: 0,
            errors: 0,
            last_status: None,
        }
    }
}

/// Which phase a recorder records.
pub(super) struct PhaseSlot<'a> {
    /// The phase's groups (indexes into `plan.groups`).
    pub groups: &'a [usize],
    /// The step's first group in the interval-log numbering.
    pub group_offset: usize,
    /// The phase's expected length, for the progress display.
    pub phase_s: u64,
    /// The target's process, when known, for CPU and memory samples.
    pub pid: Option<i32>,
    /// The load generator's lag probe (none in tests).
    pub lag: Option<&'a LagProbe>,
    /// The target's own metrics endpoints (`--target-metrics`).
    pub scraper: Option<&'a Scraper>,
    /// The phase's room-size buckets (`rooms` scenarios).
    pub rooms: Option<&'a crate::rooms::PhaseRooms>,
}

/// One phase's recorder.
pub(super) struct PhaseRecorder<'a> {
    plan: &'a Plan,
    clock: Clock,
    shutdown: &'a Shutdown,
    /// The phase's groups (indexes into `plan.groups`).
    groups: &'a [usize],
    /// The step's first group in the interval-log numbering.
    group_offset: usize,
    /// The phase's expected length, for the progress display.
    phase_s: u64,
    phase_start: Instant,
    /// The target's process, when known, for CPU and memory samples.
    pid: Option<i32>,
    /// Per-group state, in `groups` order.
    pub states: Vec<GroupState>,
    /// CPU and memory over the phase.
    pub usage: PhaseUsage,
    lag: Option<&'a LagProbe>,
    scraper: Option<&'a Scraper>,
    rooms: Option<&'a crate::rooms::PhaseRooms>,
    scraped: Reading,
    cpu_now: (Option<f64>, Option<f64>, Option<u64>),
    target_sockets: Option<u64>,
    lag_ms: Option<f64>,
    out: &'a mut Outputs,
    progress: &'a mut Progress,
}

impl<'a> PhaseRecorder<'a> {
    /// A recorder for `phase` of `plan`, writing to `out`.
    pub fn new(
        plan: &'a Plan,
        clock: Clock,
        shutdown: &'a Shutdown,
        phase: PhaseSlot<'a>,
        out: &'a mut Outputs,
        progress: &'a mut Progress,
    ) -> PhaseRecorder<'a> {
        let PhaseSlot {
            groups,
            group_offset,
            phase_s,
            pid,
            lag,
            scraper,
            rooms,
        } = phase;
        let mut usage = PhaseUsage::default();
        let scraped = scraper.map(Scraper::latest).unwrap_or_default();
        usage.sample(clock.now_ns(), pid, scraped.process);
        PhaseRecorder {
            plan,
            clock,
            shutdown,
            groups,
            group_offset,
            phase_s,
            phase_start: Instant::now(),
            pid,
            states: groups.iter().map(|_| GroupState::new()).collect(),
            usage,
            lag,
            scraper,
            rooms,
            scraped,
            cpu_now: (None, None, None),
            target_sockets: None,
            lag_ms: None,
            out,
            progress,
        }
    }

    /// Records one collected interval of one group.
    pub fn tick(&mut self, tick: &Tick<'_>) {
        let plan = self.plan;
        if tick.group == self.groups[0] {
            self.scraped = self.scraper.map(Scraper::latest).unwrap_or_default();
            self.cpu_now = self
                .usage
                .sample(tick.end_ns, self.pid, self.scraped.process);
            if tick.measured {
                self.usage.mark_held();
            }
            self.target_sockets = self.usage.target_sockets();
            self.lag_ms = self.lag.map(LagProbe::take_max_ms);
        }
        let slot = self
            .groups
            .iter()
            .position(|g| *g == tick.group)
            .unwrap_or(0);
        let g = &plan.groups[tick.group];
        let iv = tick.interval;
        let secs = (tick.end_ns.saturating_sub(tick.start_ns)) as f64 / 1e9;
        let st = &mut self.states[slot];
        st.whole.merge(iv);
        if tick.measured {
            st.measured.merge(iv);
            st.measured_s += secs;
            if let Some(why) = breached_early(plan, g, st) {
                self.shutdown.stop(StopReason::Threshold(why));
            }
        }
        st.deliveries += iv.count(Count::Deliveries);
        st.errors += iv.error_total();
        let row = self.row(tick, secs);
        if let Some(feed) = &self.out.dashboard {
            feed.row(&row);
        }
        if let Some(r) = &self.out.remote {
            r.tick(&row, iv);
        }
        if let Err(e) = self.out.ts.row(&row) {
            self.out.write_error.get_or_insert(e);
        }
        let start = Duration::from_nanos(tick.start_ns);
        let dur = Duration::from_nanos(tick.end_ns.saturating_sub(tick.start_ns));
        for (mi, m) in Latency::ALL.iter().enumerate() {
            self.out.hlog.write(
                (self.group_offset + tick.group) * Latency::ALL.len() + mi,
                iv.hist(*m),
                start,
                dur,
            );
        }
        if let Some(rooms) = self.rooms {
            let file = self.out.rooms_log_base + self.group_offset + tick.group;
            for (&b, h) in rooms.buckets.iter().zip(&iv.rooms) {
                let tag = crate::folder::rooms::hlog_tag(&crate::rooms::bucket_label(b));
                self.out.hlog.write_tagged(file, h, start, dur, Some(&tag));
            }
        }
        let st = &mut self.states[slot];
        st.last_status = Some(Status {
            name: g.name.clone(),
            elapsed_s: self.phase_start.elapsed().as_secs(),
            phase_s: self.phase_s,
            connections: tick.connections,
            clients: g.clients,
            deliveries: st.deliveries,
            rate: row.deliveries_per_s,
            p99_ms: row.delivery_p99_ms,
            errors: st.errors,
        });
        if Some(&tick.group) == self.groups.last() {
            let statuses: Vec<Status> = self
                .states
                .iter()
                .filter_map(|s| s.last_status.clone())
                .collect();
            self.progress.update(&statuses);
        }
    }

    /// The tick's `timeseries.csv` row.
    fn row(&self, tick: &Tick<'_>, secs: f64) -> timeseries::Row {
        let plan = self.plan;
        let g = &plan.groups[tick.group];
        let iv = tick.interval;
        let per_s = |n: u64| {
            if secs > 0.0 {
                (n as f64 / secs * 10.0).round() / 10.0
            } else {
                0.0
            }
        };
        let d = iv.hist(Latency::Delivery);
        let cpu_now = self.cpu_now;
        timeseries::Row {
            unix_s: (self.clock.unix_s(tick.end_ns) * 1000.0).round() / 1000.0,
            elapsed_s: (tick.end_ns as f64 / 1e6).round() / 1e3,
            interval_s: (secs * 1000.0).round() / 1000.0,
            phase: tick.phase,
            group: g.name.clone(),
            transport: g.transport.label().to_string(),
            measured: tick.measured,
            connections: tick.connections,
            deliveries: iv.count(Count::Deliveries),
            deliveries_per_s: per_s(iv.count(Count::Deliveries)),
            requests_per_s: per_s(iv.count(Count::Requests)),
            delivery_p50_ms: pct_ms(d, 0.5),
            delivery_p99_ms: pct_ms(d, 0.99),
            delivery_max_ms: pct_ms(d, 1.0),
            errors: iv.error_total(),
            reconnects: iv.count(Count::Reconnects),
            bytes_sent_per_s: per_s(iv.count(Count::BytesSent)),
            bytes_received_per_s: per_s(iv.count(Count::BytesReceived)),
            client_cpu_pct: cpu_now.0,
            target_cpu_pct: cpu_now.1,
            target_rss_mb: cpu_now
                .2
                .map(|b| (b as f64 / 1048576.0 * 10.0).round() / 10.0),
            target_connections: self.target_sockets,
            loadgen_lag_ms: self.lag_ms,
            stage: stage_label(plan, g, tick, self.clock.ns(self.phase_start)),
            target_host_cpu_pct: self.scraped.host_cpu_pct,
            target_host_memory_used_mb: self.scraped.host_memory_used_mb,
            target_host_network_received_bytes_per_s: self
                .scraped
                .host_network_received_bytes_per_s,
            target_host_network_sent_bytes_per_s: self.scraped.host_network_sent_bytes_per_s,
            errors_by_kind: iv.errors,
        }
    }
}

/// The `stage` cell of a tick: `storm` for the interval holding a storm's
/// instant, else the group's load stage in the interval's middle (one
/// ending on a stage edge belongs to the stage it covered), else the
/// publisher's rate stage.
fn stage_label(
    plan: &Plan,
    g: &crate::plan::GroupPlan,
    tick: &Tick<'_>,
    phase_start_ns: u64,
) -> Option<String> {
    let since = |ns: u64| Duration::from_nanos(ns.saturating_sub(phase_start_ns));
    if let Some(st) = plan.storm.filter(|_| g.transport.subscribes()) {
        if since(tick.start_ns) <= st.at && st.at < since(tick.end_ns) {
            return Some("storm".into());
        }
    }
    let mid = since(tick.start_ns / 2 + tick.end_ns / 2);
    if g.stages.is_empty() {
        // A group with no shape of its own shows the publisher's stage, the
        // load that is changing under it.
        return g
            .turnover
            .label(g.total_clients(), plan.ramp_up, mid)
            .or_else(|| {
                let p = plan
                    .publisher
                    .as_ref()
                    .filter(|_| g.transport.subscribes())?;
                if p.stages.is_empty() {
                    return None;
                }
                p.schedule().label(mid)
            });
    }
    Some(shape::stage_label(&g.stages, mid))
}

/// Checks `abort_on_fail` thresholds against what a group has measured so
/// far; only columns that are known mid-run are meaningful (latencies,
/// errors, requests), accounting columns settle at the end.
fn breached_early(plan: &Plan, g: &crate::plan::GroupPlan, st: &GroupState) -> Option<String> {
    let live: Vec<_> = plan
        .thresholds
        .iter()
        .filter(|t| t.abort_on_fail && t.group.as_ref().is_none_or(|n| *n == g.name))
        .filter(|t| st.measured_s >= t.grace.as_secs_f64())
        .cloned()
        .collect();
    if live.is_empty() {
        return None;
    }
    let provisional = GroupResult {
        name: g.name.clone(),
        transport: g.transport,
        clients: g.clients,
        accounting: None,
        measured: st.measured.clone(),
        measured_s: st.measured_s,
        client: Resources::default(),
        target: None,
        health: Health::default(),
    }
    .row();
    threshold::evaluate(&live, &[provisional])
        .into_iter()
        .find(|r| !r.passed && r.value.is_some())
        .map(|r| {
            format!(
                "threshold {} breached after {:.0} s: {} = {}",
                r.threshold,
                st.measured_s,
                r.column,
                r.value.unwrap_or_default()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Source;

    fn plan() -> Plan {
        let src = Source {
            path: "s.toml".into(),
            text: "name = \"rec\"\nduration = \"2s\"\n[publisher]\nrate = 10\n\
                   [[groups]]\nname = \"a\"\ntransport = \"sse\"\nclients = 3\n\
                   [[groups]]\nname = \"b\"\ntransport = \"websocket\"\nclients = 2\n\
                   [thresholds]\n\"b.delivery_p99_ms\" = { limit = \"< 5\", abort_on_fail = true, grace = \"1s\" }\n"
                .into(),
            overridden: false,
        };
        let sc = crate::scenario::parse(&src).unwrap();
        crate::plan::build(&sc, &src, &Default::default()).unwrap()
    }

    fn interval(deliveries: u64, latency: Duration) -> Interval {
        let mut iv = Interval::default();
        for _ in 0..deliveries {
            iv.record(Latency::Delivery, latency);
        }
        iv.add(Count::Deliveries, deliveries);
        iv
    }

    /// Ticks in, without a network: group state, time-series rows, interval
    /// logs and an early abort out.
    #[test]
    fn ticks_become_rows_state_and_an_early_abort() {
        let plan = plan();
        let dir = std::env::temp_dir().join(format!(
            "stampede-recorder-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let clock = Clock::start();
        let hlogs = (0..plan.groups.len() * Latency::ALL.len())
            .map(|i| dir.join(format!("{i}.hlog")))
            .collect();
        let mut out = Outputs {
            ts: timeseries::Writer::create(&dir).unwrap(),
            hlog: HlogWriter::create(hlogs, clock.wall_epoch()).unwrap(),
            write_error: None,
            dashboard: None,
            remote: None,
            rooms_log_base: plan.groups.len() * Latency::ALL.len(),
        };
        let mut progress = Progress::new(crate::progress::Display::Quiet);
        let shutdown = Shutdown::new();
        let groups = [0, 1];
        let slot = PhaseSlot {
            groups: &groups,
            group_offset: 0,
            phase_s: 2,
            pid: None,
            lag: None,
            scraper: None,
            rooms: None,
        };
        let mut rec = PhaseRecorder::new(&plan, clock, &shutdown, slot, &mut out, &mut progress);
        let fast = interval(4, Duration::from_millis(2));
        let slow = interval(2, Duration::from_millis(50));
        let tick = |group, start_s: u64, measured, interval| Tick {
            phase: 0,
            group,
            start_ns: start_s * 1_000_000_000,
            end_ns: (start_s + 1) * 1_000_000_000,
            measured,
            connections: 3,
            interval,
        };
        // Ramp-up: counted in the whole phase, not measured.
        rec.tick(&tick(0, 0, false, &fast));
        rec.tick(&tick(1, 0, false, &slow));
        assert_eq!(rec.states[0].whole.count(Count::Deliveries), 4);
        assert_eq!(rec.states[0].measured.count(Count::Deliveries), 0);
        assert!(!shutdown.is_stopped(), "unmeasured ticks never abort");
        // Measured: group b breaches its threshold once past the grace.
        rec.tick(&tick(0, 1, true, &fast));
        rec.tick(&tick(1, 1, true, &slow));
        assert_eq!(rec.states[0].measured.count(Count::Deliveries), 4);
        assert_eq!(rec.states[1].deliveries, 4);
        assert!((rec.states[1].measured_s - 1.0).abs() < 1e-9);
        let status = rec.states[1].last_status.clone().unwrap();
        assert_eq!((status.name.as_str(), status.deliveries), ("b", 4));
        match shutdown.reason() {
            Some(StopReason::Threshold(why)) => assert!(why.contains("delivery_p99_ms"), "{why}"),
            other => panic!("expected a threshold stop, got {other:?}"),
        }
        drop(rec);
        assert!(out.write_error.is_none());
        let Outputs { ts, hlog, .. } = out;
        drop(ts);
        hlog.finish().unwrap();
        let text = std::fs::read_to_string(dir.join("timeseries.csv")).unwrap();
        let rows: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(rows.len(), 4, "{text}");
        assert!(
            rows[0].contains(",a,sse,") && rows[1].contains(",b,websocket,"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
