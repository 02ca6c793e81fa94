//! stampede: a load-testing and benchmarking harness for real-time web
//! transports.
//!
//! Data flow: scenario file + CLI flags → [`plan::Plan`] → [`run::run`]
//! starts the target and runs phases ([`load::runner`]) → one task per
//! simulated client ([`load::client`]) drives a [`transport::Transport`] and
//! records into its group's sharded [`metrics::GroupRecorder`] → the runner
//! collects intervals once per second → [`report`] writes `timeseries.csv`,
//! `.hlog` files, `summary.csv` and `run.json`. `stampede report` (also run
//! at the end of `stampede run`) only reads finished folders back
//! ([`report::generate`]) to draw `charts/*.svg` and `report.html`.
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
pub mod envelope;
pub mod error;
pub mod fault;
pub mod gate;
pub mod load;
pub mod metrics;
pub mod net;
pub mod plan;
pub mod profile;
pub mod progress;
pub mod publish;
pub mod repeat;
pub mod report;
pub mod run;
pub mod scenario;
pub mod shutdown;
pub mod sweep;
pub mod target;
pub mod transport;

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
        target_pid: args.target_pid,
    };
    let plan = plan::build(&scenario, &source, &overrides)?;
    let shutdown = Shutdown::new();
    let signals = tokio::spawn(watch_signals(shutdown.clone()));
    let display = if args.quiet {
        progress::Display::Quiet
    } else if args.plain {
        progress::Display::Plain
    } else {
        progress::Display::Auto
    };
    let opts = run::RunOptions {
        scenario_file: args.scenario.display().to_string(),
        out: args.out.clone(),
        results_root: args.results.clone(),
        builtin_exe: None,
        display,
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
        let _ = report::print_table(&outcome.rows, &mut stdout);
        if !outcome.thresholds.is_empty() {
            let _ = writeln!(
                stdout,
                "\n{}",
                gate::output::table(&outcome.thresholds, &[]).trim_end()
            );
        }
        if let Some(reason) = &outcome.stop {
            let why = match reason {
                StopReason::Interrupted => "interrupted".to_string(),
                StopReason::Fatal(w) | StopReason::Threshold(w) => w.clone(),
            };
            eprintln!("stampede: run stopped early ({why}); partial results written");
        }
    }
    if !args.no_report {
        // The run is already complete on disk: a chart failure is worth a
        // warning, not the run's exit code.
        if let Err(e) = report::generate(std::slice::from_ref(&outcome.dir), &outcome.dir) {
            eprintln!("stampede: warning: report not written: {e}");
        }
    }
    let _ = writeln!(stdout, "{}", outcome.dir.display());
    Ok(outcome.exit_code)
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
        },
        run: run::RunOptions {
            scenario_file: r.scenario.display().to_string(),
            out: r.out.clone(),
            results_root: r.results.clone(),
            builtin_exe: None,
            // One step after another: a status line per step, not bars.
            display: progress::Display::Quiet,
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
    let listener = target::bind(args.listen)
        .map_err(|e| Error::Usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Usage(format!("cannot read the bound address: {e}")))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "http://{addr}");
        let _ = out.flush();
    }
    let stop = tokio_util::sync::CancellationToken::new();
    if args.exit_with_stdin {
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
    target::serve(
        listener,
        Arc::new(target::hub::Hub::with_costs(args.delay, args.cost_per_conn)),
        stop,
    )
    .await;
    Ok(exit::OK)
}
