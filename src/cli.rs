//! Command-line interface (clap derive only). The help texts are the
//! reference for flags; exit codes are listed in the top-level help.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Load-testing harness for real-time web transports: interval polling, long
/// polling, SSE, NDJSON streaming and WebSocket on the same event stream.
#[derive(Debug, Parser)]
#[command(
    name = "stampede",
    version,
    after_help = "Exit codes:\n  0    success\n  1    a threshold failed or a regression was found\n  2    usage or scenario error\n  3    the run failed (target unreachable, target died, results not writable)\n  130  interrupted (Ctrl-C); everything measured so far is written, marked partial"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and write a run folder.
    Run(RunArgs),
    /// Run the reference server alone.
    Serve(ServeArgs),
    /// Find the most clients (or events/s) each group carries within an SLO.
    Capacity(CapacityArgs),
    /// Charts and an HTML page from run folders (reads them; never re-runs).
    Report(ReportArgs),
    /// Compare a run (or baseline) with a baseline: the CI gate.
    Compare(CompareArgs),
    /// Merge the folders of a sharded run into one run folder (histograms
    /// added exactly, counters summed, time series aligned by wall clock).
    Merge(MergeArgs),
    /// Manage baseline files.
    #[command(subcommand)]
    Baseline(BaselineCommand),
}

/// `stampede report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Run folders; several are overlaid in every chart and compared in one table.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// Where to write report.html and charts/ (default: the run folder
    /// itself; required with several runs).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print nothing; the exit code says it all.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `stampede compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Baseline: a run folder or a baseline file.
    pub baseline: PathBuf,
    /// Current: a run folder or a baseline file.
    pub current: PathBuf,
    /// Allowed worsening of every compared metric, e.g. 10% (built-in
    /// defaults per metric otherwise).
    #[arg(long, value_parser = parse_fraction)]
    pub max_regression: Option<f64>,
    /// TOML file with per-metric overrides:
    /// `[metrics.delivery_p99_ms] max_regression = "20%"`, `noise_floor = 5`, `enabled = false`.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Write JUnit XML here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Write the comparison as CSV here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Print nothing; the exit code says it all.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `stampede baseline ...`.
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Save a run folder's results as a small baseline file to commit.
    Save {
        /// The run folder.
        run: PathBuf,
        /// The baseline file to write.
        #[arg(long)]
        to: PathBuf,
    },
}

/// `stampede run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// Override the measured hold time of each phase, e.g. 10s.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Run against this server instead of the reference server.
    #[arg(long, env = "STAMPEDE_TARGET")]
    pub target: Option<String>,
    /// How the target speaks: builtin, nchan, or generic (the scenario's
    /// [profile] table). Needs --target (or `target` in the scenario)
    /// unless builtin.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// https:// / wss:// targets: also trust the PEM certificates in FILE
    /// (a private CA), besides the system roots.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// https:// / wss:// targets: do not verify the certificate. Recorded in
    /// run.json and printed as a warning.
    #[arg(long)]
    pub insecure: bool,
    /// Sample this process (on this machine) as the target every second:
    /// CPU, RSS and open sockets, e.g. an nginx worker. Needs --target.
    #[arg(long, value_name = "PID")]
    pub target_pid: Option<i32>,
    /// Write the run folder exactly here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Root of run folders when --out is not given.
    #[arg(long, default_value = "results", env = "STAMPEDE_RESULTS")]
    pub results: PathBuf,
    /// Override any scenario key: --set publisher.rate=50, --set groups.sse.clients=10.
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub sets: Vec<String>,
    /// No progress and no summary table; only the run folder path on stdout.
    #[arg(long, short)]
    pub quiet: bool,
    /// Plain status lines instead of progress bars, even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// Run the scenario N times (into repeat-1 … repeat-N); summary.csv holds
    /// the medians and `compare` uses the spread to tell noise from change.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Do not write charts/ and report.html at the end (`stampede report`
    /// can write them later from the run folder).
    #[arg(long)]
    pub no_report: bool,
    /// Run shard I of N (I from 0, as Kubernetes' completion index): a
    /// deterministic slice of the clients, on this shard's own channels;
    /// `stampede merge` adds the shards' folders up exactly.
    #[arg(long, value_name = "I/N", value_parser = parse_shard, env = "STAMPEDE_SHARD")]
    pub shard: Option<crate::shard::Shard>,
    /// Begin at this wall-clock time, so that shards start together:
    /// RFC 3339 (2026-11-21T10:00:00Z) or Unix seconds.
    #[arg(long, value_name = "TIME", value_parser = parse_time, env = "STAMPEDE_START_AT")]
    pub start_at: Option<std::time::SystemTime>,
    /// Run as P shard processes of this binary on this machine and merge
    /// their folders at the end (past one process's open-file limit).
    /// `auto` runs as many as the plan's connections need against this
    /// machine's open-file limit (one process when that is enough).
    #[arg(long, value_name = "P|auto", value_parser = parse_processes)]
    pub processes: Option<Processes>,
    /// Local addresses to open client connections from, in rotation
    /// (default: 127.0.0.1–127.0.0.250 towards a loopback target, else the
    /// kernel's choice): past one address's ephemeral ports.
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub local_addr: Vec<std::net::IpAddr>,
    /// Use this already running reference server (`URL PID`) instead of
    /// starting one: how `--processes` shares one target between shards.
    #[arg(long, hide = true, num_args = 2, value_names = ["URL", "PID"])]
    pub attach_builtin: Option<Vec<String>>,
    /// Serve a live page of the run (per group, every second) at this
    /// address: PORT or HOST:PORT, default 127.0.0.1 on a free port. The
    /// URL is printed on stderr.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "",
          value_parser = crate::dashboard::parse_addr)]
    pub dashboard: Option<std::net::SocketAddr>,
    /// Push the run's series to this Prometheus remote-write receiver
    /// (e.g. http://127.0.0.1:9090/api/v1/write, a Prometheus started with
    /// --web.enable-remote-write-receiver and native histograms): the
    /// time-series columns as gauges, counters, latencies as native
    /// histograms, and the summary at each phase's end. A failing receiver
    /// is a warning with the count of dropped pushes, never a failed run.
    #[arg(long, value_name = "URL", value_parser = parse_endpoint)]
    pub prometheus_remote_write: Option<crate::telemetry::http::Endpoint>,
    /// How often to push to --prometheus-remote-write.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5s")]
    pub prometheus_remote_write_interval: std::time::Duration,
    /// An extra label on every pushed series, repeatable: --prometheus-label
    /// env=ci. `run` (default: the run folder's name) and `scenario` may be
    /// set this way; `group`, `transport`, `measured` and `shard` are
    /// stampede's.
    #[arg(long = "prometheus-label", value_name = "NAME=VALUE",
          value_parser = crate::telemetry::remote_write::parse_label)]
    pub prometheus_labels: Vec<(String, String)>,
    /// Scrape this Prometheus text endpoint of the target every second
    /// (repeatable): the server's own /metrics, node_exporter on its host.
    /// Its process_* series stand in for --target-pid (target CPU, RSS,
    /// cost per connection); node_* series fill the target_host_* columns;
    /// every kept series goes to target_metrics.csv.
    #[arg(long = "target-metrics", value_name = "URL", value_parser = parse_endpoint)]
    pub target_metrics: Vec<crate::telemetry::http::Endpoint>,
    /// Series to keep from --target-metrics, by name (`*` matches any run
    /// of characters). Default: process_cpu_seconds_total,
    /// process_resident_memory_bytes, process_open_fds,
    /// node_cpu_seconds_total, node_memory_MemTotal_bytes,
    /// node_memory_MemAvailable_bytes, node_network_*_bytes_total.
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub target_metrics_keep: Vec<String>,
}

impl RunArgs {
    /// The scraping settings, when asked for.
    pub fn target_metrics(&self) -> Option<crate::telemetry::scrape::Config> {
        (!self.target_metrics.is_empty()).then(|| crate::telemetry::scrape::Config {
            endpoints: self.target_metrics.clone(),
            keep: self.target_metrics_keep.clone(),
        })
    }

    /// The remote-write settings, when asked for.
    pub fn remote_write(&self) -> Option<crate::telemetry::remote_write::Config> {
        self.prometheus_remote_write.clone().map(|endpoint| {
            crate::telemetry::remote_write::Config {
                endpoint,
                interval: self.prometheus_remote_write_interval,
                labels: self.prometheus_labels.clone(),
            }
        })
    }
}

/// `stampede merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Shard run folders of one sharded run (`run --shard I/N`).
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// The merged run folder to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Do not write charts/ and report.html.
    #[arg(long)]
    pub no_report: bool,
    /// Print nothing but the merged folder's path.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `stampede capacity`.
#[derive(Debug, clap::Args)]
pub struct CapacityArgs {
    /// The run options every step shares (scenario, --target, --out, ...).
    #[command(flatten)]
    pub run: RunArgs,
    /// The SLO every step must meet: comma-separated terms on summary
    /// columns, e.g. "delivery_p99_ms<100,lost==0,error_rate<0.001".
    #[arg(long)]
    pub slo: Option<String>,
    /// Step the group's clients (default) or the publisher's rate.
    #[arg(long, value_enum)]
    pub vary: Option<crate::capacity::Vary>,
    /// First step (default: the group's clients, or the publisher's rate).
    #[arg(long)]
    pub start: Option<f64>,
    /// Growth per step (default 2).
    #[arg(long)]
    pub factor: Option<f64>,
    /// Largest step tried (default 100000).
    #[arg(long)]
    pub max: Option<f64>,
    /// Explicit steps instead of start × factorⁿ, e.g. 100,200,500.
    #[arg(long, value_parser = crate::capacity::parse_steps)]
    pub steps: Option<std::vec::Vec<f64>>,
    /// Bisection rounds between the last good and first bad step (default 3).
    #[arg(long)]
    pub refine: Option<u32>,
    /// Search only this group (repeatable; default every group).
    #[arg(long = "group", value_name = "NAME")]
    pub groups: Vec<String>,
}

/// `stampede serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. The bound URL is the
    /// first line on stdout.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Delay every response and publish by this much (a deliberately slow
    /// target), e.g. 20ms.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub delay: std::time::Duration,
    /// Make every publish wait this long per open SSE, NDJSON or WebSocket
    /// subscriber (an artificial fan-out cost: a known capacity knee).
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub cost_per_conn: std::time::Duration,
    /// Exit when standard input closes (used when `run` starts the target).
    #[arg(long, hide = true)]
    pub exit_with_stdin: bool,
    /// Serve as N worker processes sharing the port (SO_REUSEPORT): past
    /// one process's open-file limit. Publishes are passed between workers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub processes: u32,
    /// Run as one worker of `--processes N` (started by the parent).
    #[arg(long, hide = true)]
    pub worker: bool,
    /// Inject faults: `KIND=RATE,...` (rates per request, summing to at most
    /// 1), plus `stall_for=15s` and `oversize_bytes=N`; see README "Fault
    /// target". Repeatable.
    #[arg(long = "fault", value_name = "KIND=RATE,...")]
    pub faults: Vec<String>,
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    crate::gate::compare::parse_fraction(s)
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e}; write e.g. 250ms, 30s, 5m"))
}

fn parse_endpoint(s: &str) -> Result<crate::telemetry::http::Endpoint, String> {
    crate::telemetry::http::Endpoint::parse(s)
}

fn parse_shard(s: &str) -> Result<crate::shard::Shard, String> {
    crate::shard::Shard::parse(s)
}

/// RFC 3339 or Unix seconds (fractions allowed).
pub fn parse_time(s: &str) -> Result<std::time::SystemTime, String> {
    if let Ok(secs) = s.trim().parse::<f64>() {
        return std::time::Duration::try_from_secs_f64(secs)
            .map(|d| std::time::UNIX_EPOCH + d)
            .map_err(|_| format!("{s:?}: Unix seconds must be a non-negative number"));
    }
    humantime::parse_rfc3339_weak(s.trim())
        .map_err(|e| format!("{s:?}: {e}; write RFC 3339 (2026-11-21T10:00:00Z) or Unix seconds"))
}

/// `--processes`: a count, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processes {
    /// As many as the plan needs.
    Auto,
    /// Exactly this many.
    Count(u32),
}

fn parse_processes(s: &str) -> Result<Processes, String> {
    if s == "auto" {
        return Ok(Processes::Auto);
    }
    match s.parse::<u32>() {
        Ok(n) if (1..=256).contains(&n) => Ok(Processes::Count(n)),
        _ => Err(format!(
            "{s:?}: write a number of processes in 1..=256, or auto"
        )),
    }
}
