//! Harness errors: failures of stampede itself (bad scenario, unreachable
//! target, unwritable results). A failed *exchange* is never one of these: it
//! is a sample, recorded by kind in the metrics.

use std::path::PathBuf;

/// Everything that can stop a run before or while it measures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    ScenarioRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The scenario (or an override) is malformed; `at` names the place.
    #[error("{at}: {message}")]
    Scenario { at: String, message: String },
    /// A command-line value is invalid.
    #[error("{0}")]
    Usage(String),
    /// The target cannot be reached or started.
    #[error("target unreachable: {0}")]
    TargetUnreachable(String),
    /// The reference server could not be started.
    #[error("cannot start the built-in target: {0}")]
    TargetStart(String),
    /// Results could not be written.
    #[error("cannot write results to {path}: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A run folder given to a reading command is unusable.
    #[error("{path}: {message}")]
    RunFolder { path: PathBuf, message: String },
    /// A chart could not be drawn (a bug or a broken bundled font, not bad
    /// input: odd input is drawn as "n/a").
    #[error("cannot draw chart {chart}: {message}")]
    Chart { chart: String, message: String },
}

impl Error {
    /// The documented process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::ScenarioRead { .. }
            | Error::Scenario { .. }
            | Error::Usage(_)
            | Error::RunFolder { .. } => crate::exit::USAGE,
            Error::TargetUnreachable(_)
            | Error::TargetStart(_)
            | Error::Output { .. }
            | Error::Chart { .. } => crate::exit::RUNTIME,
        }
    }

    /// Wraps an I/O error on a results path.
    pub fn output(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Output {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for harness operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
