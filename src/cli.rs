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
    /// Run the built-in reference target alone.
    Serve(ServeArgs),
}

/// `stampede run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// Override the measured hold time of each phase, e.g. 10s.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Run against this server instead of the built-in target.
    #[arg(long, env = "STAMPEDE_TARGET")]
    pub target: Option<String>,
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
}

/// `stampede serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. The bound URL is the
    /// first line on stdout.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Exit when standard input closes (used when `run` starts the target).
    #[arg(long, hide = true)]
    pub exit_with_stdin: bool,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e}; write e.g. 250ms, 30s, 5m"))
}
