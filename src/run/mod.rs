//! One run, end to end: start (or reach) the target, create the run folder,
//! run the phases, turn every collected interval into time-series rows and
//! interval-log lines, and write the summary and `run.json` however the run
//! ends. Nothing measured is lost: an interrupted or failed run still writes
//! everything it has, marked partial.

mod info;
mod recorder;
mod target;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::folder::hlog::HlogWriter;
use crate::folder::latency::LogScope;
use crate::folder::rooms::RoomsRow;
use crate::folder::run_json::{ErrorExample, MessageExample, RunInfo};
use crate::folder::{self, summary as summary_csv, sweep_csv, timeseries};
use crate::gate::threshold::ThresholdResult;
use crate::load::runner::{self, PhaseReport, PhaseSpec};
use crate::metrics::health::{Health, LagProbe};
use crate::metrics::plausibility;
use crate::metrics::process::{self, PhaseUsage};
use crate::metrics::rooms::{planned, BucketPlan, BucketResult};
use crate::metrics::summary::{pct_ms, GroupResult, SummaryRow};
use crate::metrics::Latency;
use crate::net::Sources;
use crate::plan::Plan;
use crate::progress::{Display, Progress};
use crate::rooms::PhaseRooms;
use crate::shard::Shard;
use crate::shutdown::{Shutdown, StopReason};
use crate::telemetry::remote_write::RemoteWrite;
use crate::telemetry::scrape::Scraper;
use recorder::{GroupState, Outputs, PhaseRecorder, PhaseSlot};
use target::{start_target, Target};

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Scenario file as given (for run.json).
    pub scenario_file: String,
    /// Exact run folder (`--out`), else `results_root/<scenario>/<UTC time>`.
    pub out: Option<PathBuf>,
    /// Root of default run folders.
    pub results_root: PathBuf,
    /// The stampede binary, to start the reference server as a child.
    pub builtin_exe: Option<PathBuf>,
    /// Progress display.
    pub display: Display,
    /// Begin measuring at this wall-clock time (`--start-at`), so shards on
    /// several machines start together.
    pub start_at: Option<SystemTime>,
    /// [`Plan::digest`] of the scenario before sharding.
    pub digest: Option<String>,
    /// A reference server already running (URL, pid) to use instead of
    /// starting one.
    pub attach_builtin: Option<(String, i32)>,
    /// The live dashboard's feed (`--dashboard`).
    pub dashboard: Option<crate::dashboard::Feed>,
    /// Prometheus remote write (`--prometheus-remote-write`).
    pub remote_write: Option<crate::telemetry::remote_write::Config>,
    /// The target's own metrics endpoints (`--target-metrics`).
    pub target_metrics: Option<crate::telemetry::scrape::Config>,
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
    let env = Env {
        plan: &plan,
        opts: &opts,
        shutdown: &shutdown,
        clock,
        nofile,
        target: &target,
        late_by,
    };
    let result = run_with_target(&env, &mut progress).await;
    progress.finish();
    if let Some((done, watch)) = target.child_done.take() {
        done.cancel();
        let _ = watch.await;
    }
    result
}

/// What a started run works with.
struct Env<'a> {
    plan: &'a Plan,
    opts: &'a RunOptions,
    shutdown: &'a Shutdown,
    clock: Clock,
    nofile: u64,
    target: &'a Target,
    late_by: Option<Duration>,
}

/// One phase of one step: (step, its plan, the phase's groups, the step's
/// first group in the interval-log numbering).
type Job<'p> = (usize, &'p Plan, Vec<usize>, usize);

/// What a phase leaves behind.
struct Finished {
    states: Vec<GroupState>,
    usage: PhaseUsage,
    lag_p99_ms: Option<f64>,
    report: PhaseReport,
    rooms: Option<Arc<PhaseRooms>>,
}

/// A run's state while its phases run, one after another.
struct Phases<'a> {
    env: &'a Env<'a>,
    progress: &'a mut Progress,
    sources: Arc<Sources>,
    dir: PathBuf,
    info: RunInfo,
    out: Outputs,
    results: Vec<GroupResult>,
    /// Delivery by room size, per group and bucket (`rooms.csv`).
    room_results: Vec<BucketResult>,
    channel_prefix: String,
    shard_tag: String,
    shards: usize,
    total_phases: usize,
    /// Per phase with subscribers: what the publisher managed.
    publishing: Vec<PhasePublishing>,
    /// `--target-metrics`.
    scraper: Option<Scraper>,
}

/// One phase's publishing: published, failed, the first error.
type PhasePublishing = (u64, u64, Option<String>);

async fn run_with_target(env: &Env<'_>, progress: &mut Progress) -> Result<RunOutcome> {
    let (plan, opts, clock) = (env.plan, env.opts, env.clock);
    // Here, not before the target starts: an early return still stops a
    // reference server, and no run folder is left empty.
    let sources = Arc::new(Sources::for_target(env.target.addr, &plan.local_addrs));
    check_ports(plan, &sources)?;
    let started = SystemTime::now();
    let dir = opts
        .out
        .clone()
        .unwrap_or_else(|| folder::default_run_dir(&opts.results_root, &plan.name, started));
    std::fs::create_dir_all(&dir).map_err(|e| Error::output(&dir, e))?;
    let info = info::start(env, started);
    info.write(&dir)?;

    // A sweep runs one plan per value, one after another; their groups
    // (renamed per value) share one numbering for the interval logs.
    let steps = plan.steps();
    // Only the logs of metrics a group can record are written.
    let mut hlog_paths = Vec::new();
    for (s, g) in steps
        .iter()
        .flat_map(|s| s.groups.iter().map(move |g| (s, g)))
    {
        let scope = LogScope {
            transport: g.transport,
            tls: s.tls.is_some(),
            storm: s.storm.is_some(),
            publish_acks: g.publish_acks(&s.profile),
        };
        for m in Latency::ALL {
            hlog_paths.push(
                m.recorded_by(scope)
                    .then(|| dir.join(folder::hlog_name(&g.name, m.label()))),
            );
        }
    }
    // Then each group's room-size log, in the same numbering.
    let rooms_log_base = hlog_paths.len();
    for (s, g) in steps
        .iter()
        .flat_map(|s| s.groups.iter().map(move |g| (s, g)))
    {
        hlog_paths.push(
            (s.rooms.is_some() && g.rooms.is_some())
                .then(|| dir.join(folder::rooms::hlog_name(&g.name))),
        );
    }
    let hlog =
        HlogWriter::create(hlog_paths, clock.wall_epoch()).map_err(|e| Error::output(&dir, e))?;
    let ts = timeseries::Writer::create(&dir)?;
    let remote = opts.remote_write.as_ref().map(|c| {
        let mut labels = vec![
            (
                "run".to_string(),
                dir.file_name()
                    .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
            ),
            ("scenario".to_string(), plan.name.clone()),
        ];
        if let Some(s) = plan.shard {
            labels.push(("shard".to_string(), s.index.to_string()));
        }
        RemoteWrite::start(c, labels)
    });
    let scraper = opts
        .target_metrics
        .as_ref()
        .map(|c| Scraper::start(c, Some(&dir)));
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
    let jobs = jobs(&steps);
    let phase_starts = phase_starts(plan, &jobs);
    let mut run = Phases {
        env,
        progress,
        sources,
        dir,
        info,
        out: Outputs {
            ts,
            hlog,
            write_error: None,
            dashboard: opts.dashboard.clone(),
            remote,
            rooms_log_base,
        },
        results: Vec::new(),
        room_results: Vec::new(),
        publishing: Vec::new(),
        scraper,
        channel_prefix,
        // Every shard of a run shares `channel_prefix` (it comes from the
        // shared start time or the scenario), so shards tag their channels.
        shard_tag: match plan.shard {
            Some(s) => format!("-s{}", s.index),
            None => String::new(),
        },
        shards: std::thread::available_parallelism().map_or(2, |n| n.get()) * 2,
        total_phases: jobs.len(),
    };
    for (pi, job) in jobs.into_iter().enumerate() {
        if env.shutdown.is_stopped() {
            break;
        }
        if let Some(at) = phase_starts.get(pi) {
            // Shards keep in step phase by phase, so a sequential scenario
            // never has two groups running at once across shards.
            let at = clock.epoch() + *at;
            tokio::select! {
                _ = env.shutdown.token().cancelled() => break,
                _ = tokio::time::sleep_until(at.into()) => {}
            }
        }
        run.phase(pi, job).await?;
    }
    run.finish(started).await
}

/// Every phase of every step: a sweep runs one plan per value.
fn jobs<'p>(steps: &[&'p Plan]) -> Vec<Job<'p>> {
    let mut jobs = Vec::new();
    let mut group_offset = 0;
    for (si, step) in steps.iter().enumerate() {
        for groups in step.phases() {
            jobs.push((si, *step, groups, group_offset));
        }
        group_offset += step.groups.len();
    }
    jobs
}

/// A shard's phase start times from the shared epoch (empty unsharded).
fn phase_starts(plan: &Plan, jobs: &[Job<'_>]) -> Vec<Duration> {
    if plan.shard.is_some() {
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
    }
}

impl Phases<'_> {
    /// Runs one phase, recording every tick, then its results.
    async fn phase(&mut self, pi: usize, (si, plan, groups, group_offset): Job<'_>) -> Result<()> {
        let (top, clock, shutdown, target) = (
            self.env.plan,
            self.env.clock,
            self.env.shutdown,
            self.env.target,
        );
        let shard = top.shard.unwrap_or(Shard::WHOLE);
        let (channel_prefix, shard_tag, sources, total_phases) = (
            &self.channel_prefix,
            &self.shard_tag,
            &self.sources,
            self.total_phases,
        );
        let progress = &mut *self.progress;
        let channel_ids = shard.channels(plan.publisher.as_ref().map_or(0, |p| p.channels));
        let spec = PhaseSpec {
            index: pi,
            groups: groups.clone(),
            channels: channel_ids
                .iter()
                .map(|c| format!("{channel_prefix}{shard_tag}-p{pi}-c{c}"))
                .collect(),
            channel_ids: channel_ids.clone(),
            rooms: plan.rooms.map(|_| {
                Arc::new(PhaseRooms::new(groups.iter().filter_map(|&g| {
                    plan.groups[g].rooms.as_ref().map(|r| &r.sizes[..])
                })))
            }),
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
        let lag = LagProbe::start();
        let slot = PhaseSlot {
            groups: &groups,
            group_offset,
            phase_s,
            pid: target.info.pid,
            lag: Some(&lag),
            scraper: self.scraper.as_ref(),
            rooms: spec.rooms.as_deref(),
        };
        let mut recorder = PhaseRecorder::new(plan, clock, shutdown, slot, &mut self.out, progress);
        let report = runner::run_phase(plan, &spec, clock, shutdown, self.shards, |tick| {
            recorder.tick(tick)
        })
        .await;
        let done = Finished {
            states: recorder.states,
            usage: recorder.usage,
            lag_p99_ms: lag.finish().await,
            report,
            rooms: spec.rooms.clone(),
        };
        self.record(pi, si, plan, &groups, done)
    }

    /// A finished phase into results, `run.json`, the summary and sweep.
    fn record(
        &mut self,
        pi: usize,
        si: usize,
        plan: &Plan,
        groups: &[usize],
        done: Finished,
    ) -> Result<()> {
        let Finished {
            states,
            usage,
            lag_p99_ms,
            report,
            rooms,
        } = done;
        let report = &report;
        let (info, results, dir) = (&mut self.info, &mut self.results, &self.dir);
        let cpus = info.host.cpus as f64;
        let (client, target_use) = usage.resources();
        let wall = (report.end_ns - report.start_ns) as f64 / 1e9;
        let health = Health {
            cpu_pct: if wall > 0.0 {
                client.cpu_s / wall * 100.0
            } else {
                0.0
            },
            cores: cpus,
            lag_p99_ms,
            slip_p99_ms: pct_ms(&report.publish.slip, 0.99),
        };
        if report.sampler_late > SAMPLER_LATE {
            info.warnings.push(format!(
                "phase {pi}: the interval sampler ran up to {:.1} s late, so samples may sit in a later interval (and window) than when they were taken: the load generator was overloaded",
                report.sampler_late.as_secs_f64()
            ));
        }
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
                st.measured.copy_hist(m, &st.whole);
            }
            for (control, message) in gp.recorder.examples() {
                info.message_examples.push(MessageExample {
                    group: g.name.clone(),
                    kind: if control { "control" } else { "other" }.to_string(),
                    message,
                });
            }
            for (kind, detail) in gp.recorder.first_errors() {
                info.errors.push(ErrorExample {
                    group: g.name.clone(),
                    kind: kind.label().to_string(),
                    detail,
                });
            }
            if let (Some(rooms), Some(own)) = (&rooms, &g.rooms) {
                let planned = room_buckets(plan, gp.group, &own.sizes, rooms);
                self.room_results.extend(BucketResult::of_group(
                    &g.name,
                    g.transport,
                    planned,
                    &gp.rooms,
                    &st.measured.rooms,
                ));
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
        let sweep_value = self
            .env
            .plan
            .sweep
            .as_ref()
            .map(|s| s.values[si].value.clone());
        info.phases
            .push(info::phase(pi, plan, groups, report, sweep_value, results));
        let published = info.phases.last().map_or(0, |p| p.published_total);
        if groups
            .iter()
            .any(|&g| plan.groups[g].transport.subscribes())
        {
            let (errors, first) = (report.publish.errors, &report.publish.first_error);
            self.publishing.push((published, errors, first.clone()));
            let publishing = plausibility::Publishing {
                published,
                errors,
                first_error: first.as_deref(),
            };
            let this_phase = &results[results.len() - report.groups.len()..];
            for w in plausibility::phase_warnings(pi, publishing, this_phase) {
                eprintln!("stampede: warning: {w}");
                info.warnings.push(w);
            }
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
        summary_csv::write(dir, &rows)?;
        write_sweep(dir, info, &rows)?;
        let room_rows: Vec<RoomsRow> = self.room_results.iter().map(BucketResult::row).collect();
        folder::rooms::write(dir, &room_rows)?;
        if let Some(feed) = &self.out.dashboard {
            feed.phase(&rows);
        }
        if let Some(r) = &self.out.remote {
            r.summary(&rows);
        }
        Ok(())
    }

    /// Ends the run: interval logs, summary, sweep and `run.json`.
    async fn finish(self, started: SystemTime) -> Result<RunOutcome> {
        let Phases {
            env,
            dir,
            mut info,
            out,
            results,
            room_results,
            publishing,
            scraper,
            ..
        } = self;
        let Outputs {
            ts,
            hlog,
            write_error,
            dashboard,
            remote,
            ..
        } = out;
        let hlog_result = hlog.finish();
        let rows: Vec<SummaryRow> = results.iter().map(GroupResult::row).collect();
        summary_csv::write(&dir, &rows)?;
        write_sweep(&dir, &info, &rows)?;
        let room_rows: Vec<RoomsRow> = room_results.iter().map(BucketResult::row).collect();
        folder::rooms::write(&dir, &room_rows)?;
        if let Some(s) = scraper {
            for w in s.finish().await {
                eprintln!("stampede: warning: {w}");
                info.warnings.push(w);
            }
        }
        if let Some(r) = remote {
            let url = r.url().to_string();
            if let Some(w) = r.finish().await.warning(&url) {
                eprintln!("stampede: warning: {w}");
                info.warnings.push(w);
            }
        }
        let stop = env.shutdown.reason();
        let never = plausibility::publisher_never_succeeded(
            &publishing
                .iter()
                .map(|(p, e, f)| plausibility::Publishing {
                    published: *p,
                    errors: *e,
                    first_error: f.as_deref(),
                })
                .collect::<Vec<_>>(),
        );
        let (code, thresholds) = info::finish(&mut info, env.plan, &stop, never, &rows, started);
        info.write(&dir)?;
        if let Some(feed) = &dashboard {
            feed.end(&info.status);
        }
        drop(ts);
        if let Some(e) = write_error {
            return Err(e);
        }
        hlog_result.map_err(|e| Error::output(&dir, e))?;
        Ok(RunOutcome {
            dir,
            exit_code: code,
            rows,
            stop,
            thresholds,
        })
    }
}

/// Group `gi`'s room-size buckets in this process: its members per room
/// (`own`, scenario-wide) and the rooms of the clients this shard runs.
fn room_buckets(
    plan: &Plan,
    gi: usize,
    own: &[u64],
    rooms: &PhaseRooms,
) -> Vec<Option<BucketPlan>> {
    let g = &plan.groups[gi];
    let shard = plan.shard.unwrap_or(Shard::WHOLE);
    let channels = plan.publisher.as_ref().map_or(0, |p| p.channels);
    let mine = (0..g.total_clients())
        .map(|k| (k, g.room_of(k, channels)))
        .filter(|&(k, room)| shard.owner_in(k, room, channels) == shard.index)
        .map(|(_, room)| room);
    planned(own, mine, rooms, shard)
}

/// Refuses, before connecting, a plan that needs more open files than
/// this process may have: one error, not thousands of failed connects.
fn check_capacity(plan: &Plan, nofile: u64) -> Result<()> {
    let peak = plan.peak_connections();
    if nofile == 0 || peak + process::FD_RESERVE <= nofile {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "this plan holds up to {peak} connections at once, but one process may open {nofile} files here (the hard limit); run it as {} processes: --processes {} (or --processes auto), or with --shard on several machines",
        process::needed(peak, nofile),
        process::needed(peak, nofile),
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

/// Sampler lateness past which a phase is flagged: at half the 1-s
/// interval, samples start to land in the next interval.
const SAMPLER_LATE: Duration = Duration::from_millis(500);
