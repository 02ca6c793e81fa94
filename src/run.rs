//! One run, end to end: start (or reach) the target, create the run folder,
//! run the phases, turn every collected interval into time-series rows and
//! interval-log lines, and write the summary and `run.json` however the run
//! ends. Nothing measured is lost: an interrupted or failed run still writes
//! everything it has, marked partial.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::exit;
use crate::folder::latency::LogScope;
use crate::gate::threshold::{self, ThresholdResult};
use crate::load::runner::{self, PhaseSpec, Tick};
use crate::load::shape;
use crate::metrics::health::{Health, LagProbe};
use crate::metrics::process::{self, PhaseUsage};
use crate::metrics::summary::{pct_ms, GroupResult, Resources, SummaryRow};
use crate::metrics::{Count, Interval, Latency};
use crate::net::Sources;
use crate::plan::{Plan, TargetPlan};
use crate::progress::{Display, Progress, Status};
use crate::report::hlog::HlogWriter;
use crate::report::run_json::{
    ErrorExample, HostInfo, PhaseInfo, RunInfo, ShardRun, StormInfo, TargetInfo,
};
use crate::report::{self, summary_csv, sweep_csv, timeseries};
use crate::shard::Shard;
use crate::shutdown::{Shutdown, StopReason};
use crate::target::ChildTarget;

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Scenario file as given (for run.json).
    pub scenario_file: String,
    /// Exact run folder (`--out`), else `results_root/<scenario>/<UTC time>`.
    pub out: Option<PathBuf>,
    /// Root of default run folders.
    pub results_root: PathBuf,
    /// The stampede binary, to start the built-in target as a child.
    pub builtin_exe: Option<PathBuf>,
    /// Progress display.
    pub display: Display,
    /// Begin measuring at this wall-clock time (`--start-at`), so shards on
    /// several machines start together.
    pub start_at: Option<SystemTime>,
    /// [`Plan::digest`] of the scenario before sharding.
    pub digest: Option<String>,
    /// A built-in target already running (URL, pid) to use instead of
    /// starting one.
    pub attach_builtin: Option<(String, i32)>,
    /// The live dashboard's feed (`--dashboard`).
    pub dashboard: Option<crate::dashboard::Feed>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run folder.
    pub dir: PathBuf,
    /// Documented exit code.
    pub exit_code: i32,
    /// Summary rows.
    pub rows: Vec<SummaryRow>,
    /// Why the run stopped early, if it did.
    pub stop: Option<StopReason>,
    /// Threshold results.
    pub thresholds: Vec<ThresholdResult>,
}

struct Target {
    addr: SocketAddr,
    authority: String,
    info: TargetInfo,
    child_done: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl Target {
    /// The built-in target at `addr`, attached to or started by this run.
    fn builtin(
        addr: SocketAddr,
        url: String,
        pid: i32,
        child_done: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
    ) -> Target {
        Target {
            addr,
            authority: addr.to_string(),
            info: TargetInfo {
                url,
                builtin: true,
                pid: Some(pid),
            },
            child_done,
        }
    }
}

/// One connect before anything runs, so an unreachable target is one clear
/// error (exit 3), not a run of connect failures.
async fn reachable(addr: SocketAddr, url: &str, plan: &Plan) -> Result<()> {
    crate::net::connect(addr, plan.connect_timeout)
        .await
        .map(|_| ())
        .map_err(|f| Error::TargetUnreachable(format!("{url}: {}", f.detail)))
}

/// The first of a name's addresses that accepts a connection, tried in
/// the resolver's order as curl does (`localhost` may give `::1` first to
/// a server listening on 127.0.0.1 only). `Err(None)`: no address at all.
async fn first_reachable(
    addrs: &[SocketAddr],
    url: &str,
    plan: &Plan,
) -> std::result::Result<SocketAddr, Option<Error>> {
    let mut failures = Vec::new();
    for &addr in addrs {
        match crate::net::connect(addr, plan.connect_timeout).await {
            Ok(_) => return Ok(addr),
            Err(f) => failures.push(f.detail),
        }
    }
    if failures.is_empty() {
        return Err(None);
    }
    Err(Some(Error::TargetUnreachable(format!(
        "{url}: {}",
        failures.join("; ")
    ))))
}

async fn start_target(plan: &Plan, opts: &RunOptions, shutdown: &Shutdown) -> Result<Target> {
    match &plan.target {
        TargetPlan::Builtin if opts.attach_builtin.is_some() => {
            let (url, pid) = opts.attach_builtin.clone().unwrap_or_default();
            let addr: SocketAddr = url
                .strip_prefix("http://")
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| {
                    Error::Usage(format!("--attach-builtin: {url:?} is not http://IP:PORT"))
                })?;
            reachable(addr, &url, plan).await?;
            Ok(Target::builtin(addr, url, pid, None))
        }
        TargetPlan::Builtin => {
            let exe = opts
                .builtin_exe
                .clone()
                .or_else(|| std::env::current_exe().ok())
                .ok_or_else(|| Error::TargetStart("cannot locate the stampede binary".into()))?;
            // The target holds every connection too: as many workers as
            // its open-file limit needs (the same hard limit as ours).
            let workers =
                crate::processes::needed(plan.peak_connections(), process::raise_nofile_limit().1);
            let child = ChildTarget::spawn_with(
                &exe,
                plan.builtin_delay,
                plan.builtin_cost_per_conn,
                plan.faults.as_ref(),
                workers,
            )
            .await?;
            let (addr, url, pid) = (child.addr, child.url.clone(), child.pid);
            let done = CancellationToken::new();
            let watch = child.watch(shutdown.clone(), done.clone());
            Ok(Target::builtin(addr, url, pid, Some((done, watch))))
        }
        TargetPlan::Url { url, authority, .. } => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(authority.as_str())
                .await
                .map_err(|e| {
                    Error::TargetUnreachable(format!("{url}: cannot resolve {authority}: {e}"))
                })?
                .collect();
            let addr = first_reachable(&addrs, url, plan)
                .await
                .map_err(|e| match e {
                    Some(e) => e,
                    None => Error::TargetUnreachable(format!("{url}: {authority} has no address")),
                })?;
            Ok(Target {
                addr,
                authority: authority.clone(),
                info: TargetInfo {
                    url: url.clone(),
                    builtin: false,
                    pid: plan.target_pid,
                },
                child_done: None,
            })
        }
    }
}

fn host_info(nofile: u64) -> HostInfo {
    HostInfo {
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        nofile_limit: nofile,
    }
}

/// Per-group state kept across ticks.
struct GroupState {
    measured: Interval,
    /// Seconds of measured intervals so far (for abort grace).
    measured_s: f64,
    /// Every interval of the phase: connects and first events happen
    /// during ramp-up, before the measured window.
    whole: Interval,
    deliveries: u64,
    errors: u64,
    last_status: Option<Status>,
}

/// Runs a validated plan.
pub async fn run(plan: Plan, opts: RunOptions, shutdown: Shutdown) -> Result<RunOutcome> {
    let (nofile, _) = process::raise_nofile_limit();
    check_capacity(&plan, nofile)?;
    let mut progress = Progress::new(opts.display);
    let mut target = start_target(&plan, &opts, &shutdown).await?;
    let late_by = match opts.start_at {
        Some(at) => wait_until(at, &shutdown).await,
        None => None,
    };
    let clock = Clock::start();
    let result = run_with_target(
        &plan,
        &opts,
        &shutdown,
        clock,
        nofile,
        &target,
        &mut progress,
        late_by,
    )
    .await;
    progress.finish();
    if let Some((done, watch)) = target.child_done.take() {
        done.cancel();
        let _ = watch.await;
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn run_with_target(
    plan: &Plan,
    opts: &RunOptions,
    shutdown: &Shutdown,
    clock: Clock,
    nofile: u64,
    target: &Target,
    progress: &mut Progress,
    late_by: Option<Duration>,
) -> Result<RunOutcome> {
    // Here, not before the target starts: an early return still stops a
    // built-in target, and no run folder is left empty.
    let sources = Arc::new(Sources::for_target(target.addr, &plan.local_addrs));
    check_ports(plan, &sources)?;
    let started = SystemTime::now();
    let dir = opts
        .out
        .clone()
        .unwrap_or_else(|| report::default_run_dir(&opts.results_root, &plan.name, started));
    std::fs::create_dir_all(&dir).map_err(|e| Error::output(&dir, e))?;

    let mut info = RunInfo {
        stampede_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario_file: opts.scenario_file.clone(),
        plan: serde_json::to_value(plan).unwrap_or(serde_json::Value::Null),
        host: host_info(nofile),
        target: target.info.clone(),
        started_at: report::rfc3339(started),
        ended_at: None,
        duration_s: None,
        status: "running".into(),
        exit_code: None,
        partial: true,
        partial_reason: Some("the run has not finished".into()),
        phases: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        thresholds: Vec::new(),
        repeats: None,
        sweep: plan.sweep.as_ref().map(|s| s.info()),
        epoch_unix_s: Some(clock.unix_s(0)),
        scenario_digest: opts.digest.clone(),
        shard: plan.shard.map(|s| ShardRun {
            index: s.index,
            count: s.count,
            start_at: opts.start_at.map(report::rfc3339),
            late_by_s: late_by.map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
        }),
        merged_from: Vec::new(),
    };
    if let Some(late) = late_by.filter(|d| *d > LATE_WARNING) {
        info.warnings.push(format!(
            "started {:.3} s after --start-at: its first phase overlaps less with the other shards'",
            late.as_secs_f64()
        ));
    }
    if plan.tls.as_ref().is_some_and(|t| t.insecure) {
        info.warnings
            .push("--insecure: the target's TLS certificate was not verified".into());
    }
    info.write(&dir)?;

    // A sweep runs one plan per value, one after another; their groups
    // (renamed per value) share one numbering for the interval logs.
    let steps = plan.steps();
    // Only the logs of metrics a group can record are written.
    let mut hlog_paths = Vec::new();
    for g in steps.iter().flat_map(|s| &s.groups) {
        let scope = LogScope {
            transport: g.transport,
            tls: plan.tls.is_some(),
            storm: plan.storm.is_some(),
        };
        for m in Latency::ALL {
            hlog_paths.push(
                m.recorded_by(scope)
                    .then(|| dir.join(report::hlog_name(&g.name, m.label()))),
            );
        }
    }
    let hlog =
        HlogWriter::create(hlog_paths, clock.wall_epoch()).map_err(|e| Error::output(&dir, e))?;
    let mut ts = timeseries::Writer::create(&dir)?;
    let mut write_error: Option<Error> = None;

    let run_tag = format!(
        "{:x}",
        clock
            .wall_epoch()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    let channel_prefix = plan
        .publisher
        .as_ref()
        .and_then(|p| p.channel_prefix.clone())
        .unwrap_or_else(|| format!("st{run_tag}"));
    let shards = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    let mut results: Vec<GroupResult> = Vec::new();
    // Per phase with subscribers: published, failed, first error.
    let mut publishers: Vec<(u64, u64, Option<String>)> = Vec::new();
    let pid = target.info.pid;
    let cpus = info.host.cpus as f64;

    // Every phase of every step: (step, its plan, the phase's groups, the
    // step's first group in the interval-log numbering).
    let mut jobs = Vec::new();
    let mut group_offset = 0;
    for (si, step) in steps.iter().enumerate() {
        for groups in step.phases() {
            jobs.push((si, *step, groups, group_offset));
        }
        group_offset += step.groups.len();
    }
    let total_phases = jobs.len();
    let shard = plan.shard.unwrap_or(Shard::WHOLE);
    // Every shard of a run shares `channel_prefix` (it comes from the
    // shared start time or the scenario), so shards tag their channels.
    let shard_tag = match plan.shard {
        Some(s) => format!("-s{}", s.index),
        None => String::new(),
    };
    let phase_starts: Vec<Duration> = if plan.shard.is_some() {
        let mut at = Duration::ZERO;
        jobs.iter()
            .map(|(_, step, _, _)| {
                let this = at;
                // The phase's own length, the clients' close grace and a
                // second of slack, on whole seconds.
                let len = step.ramp_up + step.warmup + step.duration + step.drain;
                at += Duration::from_secs(len.as_secs_f64().ceil() as u64 + 4);
                this
            })
            .collect()
    } else {
        Vec::new()
    };
    let top = plan;
    for (pi, (si, plan, groups, group_offset)) in jobs.into_iter().enumerate() {
        if shutdown.is_stopped() {
            break;
        }
        // From here `plan` is this step's plan: groups, publisher, timing.
        let channel_ids = shard.channels(plan.publisher.as_ref().map_or(0, |p| p.channels));
        if let Some(at) = phase_starts.get(pi) {
            // Shards keep in step phase by phase, so a sequential scenario
            // never has two groups running at once across shards.
            let at = clock.epoch() + *at;
            tokio::select! {
                _ = shutdown.token().cancelled() => break,
                _ = tokio::time::sleep_until(at.into()) => {}
            }
        }
        let sweep_value = top.sweep.as_ref().map(|s| s.values[si].value.clone());
        let spec = PhaseSpec {
            index: pi,
            groups: groups.clone(),
            channels: channel_ids
                .iter()
                .map(|c| format!("{channel_prefix}{shard_tag}-p{pi}-c{c}"))
                .collect(),
            channel_ids: channel_ids.clone(),
            addr: target.addr,
            authority: target.authority.clone(),
            base_path: plan.base_path().to_string(),
            sources: sources.clone(),
        };
        let phase_s = plan.expected_duration().as_secs() / plan.phases().len().max(1) as u64;
        let names: Vec<(String, u64)> = groups
            .iter()
            .map(|&g| (plan.groups[g].name.clone(), phase_s))
            .collect();
        progress.phase(
            &format!(
                "phase {}/{}: {}",
                pi + 1,
                total_phases,
                names
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            &names,
        );
        let mut states: Vec<GroupState> = groups
            .iter()
            .map(|_| GroupState {
                measured: Interval::default(),
                measured_s: 0.0,
                whole: Interval::default(),
                deliveries: 0,
                errors: 0,
                last_status: None,
            })
            .collect();
        let mut usage = PhaseUsage::default();
        usage.sample(clock.now_ns(), pid);
        let phase_start = Instant::now();
        let first_group = groups[0];
        let last_group = groups[groups.len() - 1];
        let mut cpu_now = (None, None, None);
        let mut target_sockets = None;
        let mut lag_ms = None;
        let lag = LagProbe::start();

        let report = runner::run_phase(plan, &spec, clock, shutdown, shards, |tick: &Tick<'_>| {
            if tick.group == first_group {
                cpu_now = usage.sample(tick.end_ns, pid);
                if tick.measured {
                    usage.mark_held();
                }
                target_sockets = usage.target_sockets();
                lag_ms = Some(lag.take_max_ms());
            }
            let slot = groups.iter().position(|g| *g == tick.group).unwrap_or(0);
            let g = &plan.groups[tick.group];
            let st = &mut states[slot];
            let iv = tick.interval;
            let secs = (tick.end_ns.saturating_sub(tick.start_ns)) as f64 / 1e9;
            st.whole.merge(iv);
            if tick.measured {
                st.measured.merge(iv);
                st.measured_s += secs;
                if let Some(why) = breached_early(plan, g, st) {
                    shutdown.stop(StopReason::Threshold(why));
                }
            }
            st.deliveries += iv.count(Count::Deliveries);
            st.errors += iv.error_total();
            let per_s = |n: u64| {
                if secs > 0.0 {
                    (n as f64 / secs * 10.0).round() / 10.0
                } else {
                    0.0
                }
            };
            let d = iv.hist(Latency::Delivery);
            let row = timeseries::Row {
                unix_s: (clock.unix_s(tick.end_ns) * 1000.0).round() / 1000.0,
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
                target_connections: target_sockets,
                loadgen_lag_ms: lag_ms,
                stage: stage_label(plan, g, tick, clock.ns(phase_start)),
                errors_by_kind: iv.errors,
            };
            if let Some(feed) = &opts.dashboard {
                feed.row(&row);
            }
            if let Err(e) = ts.row(&row) {
                write_error.get_or_insert(e);
            }
            let start = Duration::from_nanos(tick.start_ns);
            let dur = Duration::from_nanos(tick.end_ns.saturating_sub(tick.start_ns));
            for (mi, m) in Latency::ALL.iter().enumerate() {
                hlog.write(
                    (group_offset + tick.group) * Latency::ALL.len() + mi,
                    iv.hist(*m),
                    start,
                    dur,
                );
            }
            st.last_status = Some(Status {
                name: g.name.clone(),
                elapsed_s: phase_start.elapsed().as_secs(),
                phase_s,
                connections: tick.connections,
                clients: g.clients,
                deliveries: st.deliveries,
                rate: row.deliveries_per_s,
                p99_ms: row.delivery_p99_ms,
                errors: st.errors,
            });
            if tick.group == last_group {
                let statuses: Vec<Status> = states
                    .iter()
                    .filter_map(|s| s.last_status.clone())
                    .collect();
                progress.update(&statuses);
            }
        })
        .await;

        let (client, target_use) = usage.resources();
        let wall = (report.end_ns - report.start_ns) as f64 / 1e9;
        let health = Health {
            cpu_pct: if wall > 0.0 {
                client.cpu_s / wall * 100.0
            } else {
                0.0
            },
            cores: cpus,
            lag_p99_ms: lag.finish().await,
            slip_p99_ms: pct_ms(&report.publish.slip, 0.99),
        };
        let saturation = health.saturation();
        if !saturation.is_empty() {
            info.warnings.push(format!(
                "phase {pi}: the load generator may have been the bottleneck ({})",
                saturation.join(", ")
            ));
        }
        for (gp, mut st) in report.groups.iter().zip(states) {
            let g = &plan.groups[gp.group];
            for m in Latency::ALL.into_iter().filter(|m| m.whole_phase()) {
                st.measured.hists[m as usize] = st.whole.hists[m as usize].clone();
            }
            for (kind, detail) in gp.recorder.first_errors() {
                info.errors.push(ErrorExample {
                    group: g.name.clone(),
                    kind: kind.label().to_string(),
                    detail,
                });
            }
            results.push(GroupResult {
                name: g.name.clone(),
                transport: g.transport,
                clients: g.clients,
                accounting: gp.accounting,
                measured: st.measured,
                measured_s: (report.measure_to_ns - report.measure_from_ns) as f64 / 1e9,
                client,
                target: target_use,
                health,
            });
        }
        let s = |ns: u64| (ns as f64 / 1e6).round() / 1e3;
        info.phases.push(PhaseInfo {
            index: pi,
            groups: groups
                .iter()
                .map(|&g| plan.groups[g].name.clone())
                .collect(),
            start_s: s(report.start_ns),
            measure_from_s: s(report.measure_from_ns),
            measure_to_s: s(report.measure_to_ns),
            end_s: s(report.end_ns),
            stopped_early: report.stopped_early,
            published_total: report
                .publish
                .log
                .channels
                .iter()
                .map(|c| c.sent_ns.len() as u64)
                .sum::<u64>()
                - report.publish.errors,
            publish_errors: report.publish.errors,
            publish_p99_ms: pct_ms(&report.publish.latency, 0.99),
            publish_first_error: report.publish.first_error.clone(),
            sweep_value,
            storm: plan.storm.map(|st| {
                let mut info = StormInfo {
                    at_s: s(report.start_ns + st.at.as_nanos() as u64),
                    via: match st.via {
                        crate::plan::StormVia::Client => "client".into(),
                        crate::plan::StormVia::Target => "target".into(),
                    },
                    error: report.storm_error.clone(),
                    groups: Vec::new(),
                };
                let names: Vec<String> = groups
                    .iter()
                    .map(|&g| plan.groups[g].name.clone())
                    .collect();
                let rows: Vec<SummaryRow> = results.iter().map(GroupResult::row).collect();
                info.fill(&names, &rows);
                info
            }),
        });
        let published = info.phases.last().map_or(0, |p| p.published_total);
        let publishing = crate::metrics::plausibility::Publishing {
            published,
            errors: report.publish.errors,
            first_error: report.publish.first_error.as_deref(),
        };
        if subscribes_any(plan, &groups) {
            publishers.push((
                published,
                report.publish.errors,
                report.publish.first_error.clone(),
            ));
        }
        let this_phase = &results[results.len() - report.groups.len()..];
        for w in crate::metrics::plausibility::phase_warnings(pi, publishing, this_phase) {
            eprintln!("stampede: warning: {w}");
            info.warnings.push(w);
        }
        if let Some(why) = &report.storm_error {
            info.warnings.push(format!(
                "phase {pi}: the storm's POST /control/drop failed: {why}"
            ));
        }
        if let Some(sw) = &mut info.sweep {
            sw.values[si].phases.push(pi);
        }
        let rows: Vec<SummaryRow> = results.iter().map(GroupResult::row).collect();
        // The summary grows phase by phase, so a later crash keeps earlier phases.
        summary_csv::write(&dir, &rows)?;
        write_sweep(&dir, &info, &rows)?;
        if let Some(feed) = &opts.dashboard {
            feed.phase(&rows);
        }
    }

    let hlog_result = hlog.finish();
    let rows: Vec<SummaryRow> = results.iter().map(GroupResult::row).collect();
    summary_csv::write(&dir, &rows)?;
    write_sweep(&dir, &info, &rows)?;

    let stop = shutdown.reason();
    let threshold_results = threshold::evaluate(&plan.thresholds, &rows);
    let thresholds_failed = threshold_results.iter().any(|t| !t.passed);
    info.thresholds = threshold_results.clone();
    let lost: u64 = rows.iter().filter_map(|r| r.lost).sum();
    if lost > 0 {
        info.warnings
            .push(format!("{lost} events were lost (see the `lost` column)"));
    }
    let never = crate::metrics::plausibility::publisher_never_succeeded(
        &publishers
            .iter()
            .map(|(p, e, f)| crate::metrics::plausibility::Publishing {
                published: *p,
                errors: *e,
                first_error: f.as_deref(),
            })
            .collect::<Vec<_>>(),
    );
    let (status, code, reason) = match &stop {
        None if never.is_some() => ("failed", exit::RUNTIME, never.clone()),
        None if thresholds_failed => ("completed", exit::THRESHOLD, None),
        None => ("completed", exit::OK, None),
        Some(StopReason::Threshold(why)) => ("aborted", exit::THRESHOLD, Some(why.clone())),
        Some(StopReason::Interrupted) => (
            "interrupted",
            exit::INTERRUPTED,
            Some("interrupted (Ctrl-C)".to_string()),
        ),
        Some(StopReason::Fatal(why)) => ("failed", exit::RUNTIME, Some(why.clone())),
    };
    let ended = SystemTime::now();
    info.ended_at = Some(report::rfc3339(ended));
    info.duration_s = ended.duration_since(started).ok().map(|d| d.as_secs_f64());
    info.status = status.into();
    info.exit_code = Some(code);
    info.partial = stop.is_some();
    info.partial_reason = reason;
    info.write(&dir)?;
    if let Some(feed) = &opts.dashboard {
        feed.end(status);
    }
    if let Some(e) = write_error {
        return Err(e);
    }
    hlog_result.map_err(|e| Error::output(&dir, e))?;
    Ok(RunOutcome {
        dir,
        exit_code: code,
        rows,
        stop,
        thresholds: threshold_results,
    })
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

/// Refuses, before connecting, a plan that needs more open files than
/// this process may have: one error, not thousands of failed connects.
fn check_capacity(plan: &Plan, nofile: u64) -> Result<()> {
    let peak = plan.peak_connections();
    if nofile == 0 || peak + crate::processes::FD_RESERVE <= nofile {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "this plan holds up to {peak} connections at once, but one process may open {nofile} files here (the hard limit); run it as {} processes: --processes {} (or --processes auto), or with --shard on several machines",
        crate::processes::needed(peak, nofile),
        crate::processes::needed(peak, nofile),
    )))
}

/// Refuses a plan whose connections to one target port cannot all get a
/// local port: the kernel's ephemeral range per source address.
fn check_ports(plan: &Plan, sources: &Sources) -> Result<()> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut it = t.split_whitespace().filter_map(|v| v.parse::<u64>().ok());
            Some(it.next_back()?.saturating_sub(it.next()?) + 1)
        });
    let Some(range) = range else { return Ok(()) };
    let peak = plan.peak_connections();
    let capacity = range * sources.len().max(1) as u64;
    if peak <= capacity {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "this plan holds up to {peak} connections to one target port, but {} source address(es) give only {capacity} local ports ({range} each); add addresses with --local-addr A,B,...",
        sources.len().max(1)
    )))
}

/// True when a phase runs a group that subscribes to the publisher.
fn subscribes_any(plan: &Plan, groups: &[usize]) -> bool {
    groups
        .iter()
        .any(|&g| plan.groups[g].transport.subscribes())
}

/// Lateness against `--start-at` worth a warning in run.json.
const LATE_WARNING: Duration = Duration::from_millis(250);

/// Sleeps until the wall-clock time `at` (or a stop); returns how late the
/// run starts against it (zero when it was reached on time).
async fn wait_until(at: SystemTime, shutdown: &Shutdown) -> Option<Duration> {
    if let Ok(wait) = at.duration_since(SystemTime::now()) {
        tokio::select! {
            _ = shutdown.token().cancelled() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    Some(SystemTime::now().duration_since(at).unwrap_or_default())
}

/// Writes `sweep.csv` for a sweep (from the rows so far).
pub fn write_sweep(dir: &std::path::Path, info: &RunInfo, rows: &[SummaryRow]) -> Result<()> {
    match &info.sweep {
        Some(sw) => sweep_csv::write(dir, &sweep_csv::rows(sw, &info.phases, rows)),
        None => Ok(()),
    }
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
