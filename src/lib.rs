//! stampede: a load-testing and benchmarking harness for real-time web
//! transports.
//!
//! Data flow: scenario file + CLI flags → [`plan::Plan`] → [`run::run`]
//! starts the target and runs phases ([`load::runner`]) → one task per
//! simulated client ([`load::client`]) drives a [`transport::Transport`] and
//! records into its group's sharded [`metrics::GroupRecorder`] → the runner
//! collects intervals once per second and writes `timeseries.csv`, `.hlog`
//! files, `summary.csv` and `run.json`, whose schema, writers and readers
//! (and the one column registry) are [`folder`]'s. `stampede report` (also run
//! at the end of `stampede run`) only reads finished folders back
//! ([`report::generate`]) to draw `charts/*.svg` and `report.html`.
//!
//! Architecture map, lowest layer first: a module imports only from lower
//! layers (checked by `tests/architecture.rs`, which runs
//! `scripts/modgraph.py` and fails on any import cycle).
//!
//! 1. Leaves, importing nothing of the crate but each other: [`clock`],
//!    [`envelope`], [`rng`], [`secrets`], [`shard`], [`shutdown`],
//!    [`progress`], [`units`] (seconds and percentile helpers for
//!    run-folder fields), [`error`] (with [`exit`]).
//! 2. The wire: [`fault`] (error kinds; → secrets), [`net`] (TCP, TLS, byte
//!    counting; → fault).
//! 3. [`transport`]: one file per transport holding its session *and* its
//!    configuration (label, group keys, profile section, presets), listed
//!    once in its `registry!`, plus the HTTP/1.1 client, content codings
//!    and permessage-deflate (→ envelope, fault, net, units).
//!    [`reference`](mod@reference): the reference server, ours, that `run`
//!    starts when no target (the server under test) is given (→ error,
//!    fault, rng, shutdown, units).
//! 4. [`folder`]: the run folder's schema, writers and readers, and the one
//!    column registry every output reads (→ error, fault, secrets,
//!    transport). [`scenario`] (the file as written; → transport),
//!    [`profile`] (how a server speaks each transport; → transport,
//!    secrets), [`schedule`] (client stages, turnover, publish-rate
//!    stages; → scenario, units).
//! 5. [`metrics`] (recorders, summaries, health, process usage, and the
//!    plausibility warnings; → folder, fault, transport, units), [`gate`]
//!    (thresholds, baselines, compare; → folder, scenario, units).
//! 6. [`plan`] (the validated plan, each piece converting itself, sweeps
//!    included; → scenario, profile, schedule, transport, reference, net,
//!    folder, gate), [`publish`] (the publisher; → profile, schedule,
//!    transport, metrics, net), [`load`] (pacer, client loop, phase runner;
//!    → plan, publish, schedule, transport, metrics), [`report`] (charts
//!    and HTML from finished folders; → folder, gate, metrics).
//!    [`telemetry`] (Prometheus remote write with native histograms,
//!    target metrics scraped from Prometheus text endpoints; → folder,
//!    metrics).
//! 7. Commands: [`run`] (one run: target start, phase loop, per-phase
//!    recorder, `run.json` and exit status; → load, plan, reference,
//!    folder, gate, metrics), then [`repeat`], [`merge`], [`capacity`]
//!    (→ run, report), [`processes`] and [`cli`].
//!
//! Invariants:
//! - transports never import load, metrics or report; load never names a
//!   concrete transport (one `match`, in `TransportKind::visit`);
//! - clients never send or lock shared state per sample: one uncontended
//!   shard lock per worker thread, merged once per interval;
//! - scheduled work (polls, publishes) is timed from its intended start;
//! - a failed exchange is recorded by kind, never propagated as an error;
//! - every run writes its folder, partial or not.

pub mod capacity;
pub mod cli;
pub mod clock;
pub mod dashboard;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod fault;
pub mod folder;
pub mod gate;
pub mod identity;
pub mod load;
pub mod merge;
pub mod metrics;
pub mod net;
pub mod plan;
pub mod presets;
pub mod processes;
pub mod profile;
pub mod progress;
pub mod publish;
pub mod reference;
pub mod repeat;
pub mod report;
pub mod rng;
pub mod rooms;
pub mod run;
pub mod scenario;
pub mod scenario_keys;
pub mod schedule;
pub mod secrets;
pub mod shard;
pub mod shutdown;
pub mod telemetry;
pub mod transport;
pub mod units;

/// Sweeps are planned with the rest of the plan (kept at this path).
pub use plan::sweep;

/// Documented process exit codes.
pub mod exit {
    /// Everything passed.
    pub const OK: i32 = 0;
    /// A threshold failed or a regression was found.
    pub const THRESHOLD: i32 = 1;
    /// Usage or scenario error.
    pub const USAGE: i32 = 2;
    /// The run itself failed.
    pub const RUNTIME: i32 = 3;
    /// Interrupted by the user; results written, marked partial.
    pub const INTERRUPTED: i32 = 130;
}

use std::io::Write;
use std::sync::Arc;

use cli::{Command, RunArgs, ServeArgs};
use error::{Error, Result};
use shutdown::{Shutdown, StopReason};

/// Runs a parsed command line; returns the exit code.
pub async fn main_with(cli: cli::Cli) -> Result<i32> {
    match cli.command {
        Command::Run(args) => run_command(args).await,
        Command::Serve(args) => serve_command(args).await,
        Command::Capacity(args) => capacity_command(args).await,
        Command::Report(args) => report_command(args),
        Command::Compare(args) => compare_command(args),
        Command::Merge(args) => merge_command(args),
        Command::Baseline(cli::BaselineCommand::Save { run, to }) => {
            gate::baseline::Side::load(&run)?.save(&to)?;
            println!("{}", to.display());
            Ok(exit::OK)
        }
    }
}

fn report_command(args: cli::ReportArgs) -> Result<i32> {
    let out = match (&args.out, args.runs.as_slice()) {
        (Some(out), _) => out.clone(),
        (None, [single]) => single.clone(),
        (None, _) => {
            return Err(Error::Usage(
                "report: --out DIR is required with several run folders".into(),
            ))
        }
    };
    let written = report::generate(&args.runs, &out)?;
    if !args.quiet {
        println!("{}", written.html.display());
    }
    Ok(exit::OK)
}

fn compare_command(args: cli::CompareArgs) -> Result<i32> {
    use gate::{baseline::Side, compare, output};
    let baseline = Side::load(&args.baseline)?;
    let current = Side::load(&args.current)?;
    compare::check_comparable(&baseline, &current)?;
    let rules = compare::rules(args.max_regression, args.rules.as_deref())?;
    let comparisons = compare::compare(&baseline, &current, &rules);
    if let Some(note) = compare::missing_columns_note(&baseline, &current) {
        eprintln!("{note}");
    }
    let thresholds = &current.thresholds;
    let failed = thresholds.iter().any(|t| !t.passed) || comparisons.iter().any(output::is_failure);
    let title = format!(
        "stampede compare: {} ({} vs {})",
        current.scenario,
        args.baseline.display(),
        args.current.display()
    );
    let write = |path: &std::path::Path, text: String| {
        std::fs::write(path, text).map_err(|e| Error::output(path, e))
    };
    if let Some(p) = &args.junit {
        write(p, output::junit(thresholds, &comparisons))?;
    }
    if let Some(p) = &args.markdown {
        write(p, output::markdown(&title, thresholds, &comparisons))?;
    }
    if let Some(p) = &args.csv {
        output::write_csv(p, &comparisons)?;
    }
    if !args.quiet {
        print!("{}", output::table(thresholds, &comparisons));
        let regressions = comparisons.iter().filter(|c| output::is_failure(c)).count();
        println!(
            "{}: {} compared metrics, {regressions} regressions, {} failed thresholds",
            if failed { "FAIL" } else { "PASS" },
            comparisons.len(),
            thresholds.iter().filter(|t| !t.passed).count()
        );
    }
    Ok(if failed { exit::THRESHOLD } else { exit::OK })
}

async fn run_command(args: RunArgs) -> Result<i32> {
    let (scenario, source) = scenario::load(&args.scenario, &args.sets)?;
    let overrides = plan::Overrides {
        duration: args.duration,
        target: args.target.clone(),
        profile: args.profile.clone(),
        local_addrs: args.local_addr.clone(),
        ca_file: args.ca_file.clone(),
        insecure: args.insecure,
        target_pid: args.target_pid,
    };
    let mut plan = plan::build(&scenario, &source, &overrides)?;
    if plan.tls.as_ref().is_some_and(|t| t.insecure) {
        eprintln!("stampede: warning: --insecure: the target's TLS certificate is not verified");
    }
    let digest = plan.digest();
    let processes = match args.processes {
        Some(cli::Processes::Count(n)) => Some(n),
        Some(cli::Processes::Auto) => {
            let limit = metrics::process::raise_nofile_limit().0;
            Some(processes::needed(plan.peak_connections(), limit))
        }
        None => None,
    };
    if let Some(p) = processes {
        if args.shard.is_some() || args.repeat > 1 {
            return Err(Error::Usage(
                "--processes cannot be combined with --shard or --repeat".into(),
            ));
        }
        // `auto` that fits one process is a plain run.
        if p > 1 || args.processes != Some(cli::Processes::Auto) {
            if args.dashboard.is_some() {
                return Err(Error::Usage(
                    "--dashboard cannot be combined with --processes (each shard is its own \
                     process)"
                        .into(),
                ));
            }
            return processes::run_command(&args, plan, p).await;
        }
    }
    if let Some(s) = args.shard {
        if args.repeat > 1 {
            return Err(Error::Usage(
                "--shard cannot be combined with --repeat".into(),
            ));
        }
        plan.apply_shard(s);
    }
    let shutdown = Shutdown::new();
    let signals = tokio::spawn(watch_signals(shutdown.clone()));
    let display = if args.quiet {
        progress::Display::Quiet
    } else if args.plain {
        progress::Display::Plain
    } else {
        progress::Display::Auto
    };
    // Started before the run, so the page is there from the first second;
    // stopped when the command returns.
    let dashboard = match args.dashboard {
        Some(addr) => {
            let d = dashboard::Dashboard::start(addr, &plan.name).await?;
            eprintln!("stampede: dashboard: {}", d.url());
            Some(d)
        }
        None => None,
    };
    let opts = run::RunOptions {
        dashboard: dashboard.as_ref().map(|d| d.feed()),
        remote_write: args.remote_write(),
        target_metrics: args.target_metrics(),
        scenario_file: args.scenario.display().to_string(),
        out: args.out.clone(),
        results_root: args.results.clone(),
        builtin_exe: None,
        display,
        start_at: args.start_at,
        digest: Some(digest),
        attach_builtin: match args.attach_builtin.as_deref() {
            Some([url, pid]) => Some((
                url.clone(),
                pid.parse()
                    .map_err(|_| Error::Usage(format!("--attach-builtin: bad pid {pid:?}")))?,
            )),
            _ => None,
        },
    };
    let outcome = if args.repeat > 1 {
        repeat::run_repeated(plan, opts, shutdown, args.repeat).await
    } else {
        run::run(plan, opts, shutdown).await
    };
    signals.abort();
    let outcome = outcome?;
    let mut stdout = std::io::stdout().lock();
    if !args.quiet {
        print_results(&outcome.rows, &outcome.thresholds, &mut stdout);
        if let Some(reason) = &outcome.stop {
            let why = match reason {
                StopReason::Interrupted => "interrupted".to_string(),
                StopReason::Fatal(w) | StopReason::Threshold(w) => w.clone(),
            };
            let why = secrets::redact(&why);
            eprintln!("stampede: run stopped early ({why}); partial results written");
        }
    }
    if !args.no_report {
        // The run is already complete on disk: a chart failure is worth a
        // warning, not the run's exit code.
        merge::write_report(&outcome.dir);
    }
    let _ = writeln!(stdout, "{}", outcome.dir.display());
    Ok(outcome.exit_code)
}

/// The summary table and, when there are thresholds, their results.
pub(crate) fn print_results(
    rows: &[metrics::summary::SummaryRow],
    thresholds: &[gate::threshold::ThresholdResult],
    out: &mut impl Write,
) {
    let _ = report::print_table(rows, out);
    if !thresholds.is_empty() {
        let _ = writeln!(out, "\n{}", gate::output::table(thresholds, &[]).trim_end());
    }
}

fn merge_command(args: cli::MergeArgs) -> Result<i32> {
    let merged = merge::merge(&args.runs, &args.out)?;
    let mut stdout = std::io::stdout().lock();
    if !args.quiet {
        print_results(&merged.rows, &merged.thresholds, &mut stdout);
    }
    if !args.no_report {
        merge::write_report(&merged.dir);
    }
    let _ = writeln!(stdout, "{}", merged.dir.display());
    Ok(merged.exit_code)
}

async fn capacity_command(args: cli::CapacityArgs) -> Result<i32> {
    let r = &args.run;
    let (scenario, source) = scenario::load(&r.scenario, &r.sets)?;
    let flags = capacity::Flags {
        slo: args.slo.clone(),
        vary: args.vary,
        start: args.start,
        factor: args.factor,
        max: args.max,
        steps: args.steps.clone(),
        refine: args.refine,
        groups: args.groups.clone(),
    };
    let settings = capacity::Settings::resolve(&scenario, &source, &flags)?;
    let opts = capacity::Options {
        scenario_file: r.scenario.display().to_string(),
        overrides: plan::Overrides {
            duration: r.duration,
            target: r.target.clone(),
            profile: r.profile.clone(),
            target_pid: r.target_pid,
            local_addrs: r.local_addr.clone(),
            ca_file: r.ca_file.clone(),
            insecure: r.insecure,
        },
        run: run::RunOptions {
            dashboard: None,
            remote_write: r.remote_write(),
            target_metrics: r.target_metrics(),
            scenario_file: r.scenario.display().to_string(),
            out: r.out.clone(),
            results_root: r.results.clone(),
            builtin_exe: None,
            // One step after another: a status line per step, not bars.
            display: progress::Display::Quiet,
            start_at: None,
            digest: None,
            attach_builtin: None,
        },
        verbose: !r.quiet,
    };
    let shutdown = Shutdown::new();
    let signals = tokio::spawn(watch_signals(shutdown.clone()));
    let outcome = capacity::search(&scenario, &source, &settings, &opts, shutdown).await;
    signals.abort();
    let outcome = outcome?;
    let mut stdout = std::io::stdout().lock();
    if !r.quiet {
        let _ = write!(
            stdout,
            "{}",
            capacity::table(&outcome.groups, &settings.slo_text)
        );
    }
    let _ = writeln!(stdout, "{}", outcome.dir.display());
    Ok(outcome.exit_code)
}

/// First Ctrl-C stops the run gracefully (results are written); a second
/// one exits at once.
async fn watch_signals(shutdown: Shutdown) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    eprintln!("stampede: interrupted, writing results (Ctrl-C again to quit at once)");
    shutdown.stop(StopReason::Interrupted);
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(exit::INTERRUPTED);
    }
}

async fn serve_command(args: ServeArgs) -> Result<i32> {
    let fault_plan = if args.faults.is_empty() {
        None
    } else {
        Some(
            reference::fault::FaultPlan::parse(&args.faults)
                .map_err(|e| Error::Usage(format!("--fault: {e}")))?,
        )
    };
    if args.worker {
        reference::cluster::worker(args.listen, args.delay, fault_plan).await?;
        return Ok(exit::OK);
    }
    if args.processes > 1 {
        let exe = std::env::current_exe()
            .map_err(|e| Error::TargetStart(format!("cannot locate the stampede binary: {e}")))?;
        let stop = serve_stop(args.exit_with_stdin);
        reference::cluster::serve(
            &exe,
            args.listen,
            args.processes,
            args.delay,
            &args.faults,
            stop,
        )
        .await?;
        return Ok(exit::OK);
    }
    let listener = reference::bind(args.listen)
        .map_err(|e| Error::Usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Usage(format!("cannot read the bound address: {e}")))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "http://{addr}");
        let _ = out.flush();
    }
    let stop = serve_stop(args.exit_with_stdin);
    let faults = fault_plan.map(|p| Arc::new(reference::fault::FaultState::new(p, stop.clone())));
    reference::serve_with_faults(
        listener,
        Arc::new(reference::hub::Hub::with_costs(
            args.delay,
            args.cost_per_conn,
        )),
        faults,
        stop,
    )
    .await;
    Ok(exit::OK)
}

/// Stops `serve` on Ctrl-C, and when standard input closes if asked (the
/// parent that started it is gone).
fn serve_stop(exit_with_stdin: bool) -> tokio_util::sync::CancellationToken {
    let stop = tokio_util::sync::CancellationToken::new();
    if exit_with_stdin {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            stop.cancel();
        });
    }
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.cancel();
            }
        });
    }
    stop
}
