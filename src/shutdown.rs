//! Run-wide stop signals, injected (no globals): `interrupt` for Ctrl-C,
//! `fatal` for a fault of the run itself (the target died). Workers watch
//! per-phase child tokens; the first reason to stop wins and is kept.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// Why a run stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The user interrupted (Ctrl-C).
    Interrupted,
    /// The run cannot go on (target gone, ...).
    Fatal(String),
    /// A threshold with `abort_on_fail` was breached.
    Threshold(String),
}

/// Stop signals of one run.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
}

impl Shutdown {
    /// A fresh, untriggered shutdown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Triggers the stop; the first reason is kept.
    pub fn stop(&self, reason: StopReason) {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        self.token.cancel();
    }

    /// Why the run stopped, if it did.
    pub fn reason(&self) -> Option<StopReason> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True once stopped.
    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// A token cancelled when the run stops (children for phases).
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}
