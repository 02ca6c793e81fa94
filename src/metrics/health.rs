//! Load-generator health: is stampede itself the limit? Three signs, each
//! measured while a phase runs: its CPU near the machine's cores, its event
//! loop waking late (a ticker task that sleeps a fixed period and records how
//! late it woke), and the publisher's timer firing late. A step measured
//! while the load generator was saturated says nothing about the target, so
//! capacity planning marks it instead of trusting it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::recorder::new_histogram;
use crate::units::pct_ms;

/// Share of all cores above which stampede counts as CPU-saturated.
pub const CPU_SATURATED: f64 = 0.8;
/// Event-loop lag p99 above which stampede counts as saturated: timers
/// (polls, publishes, arrivals) are then that late on its side.
pub const LAG_SATURATED_MS: f64 = 25.0;
/// Publisher timer slip p99 above which the publish schedule slipped.
pub const SLIP_SATURATED_MS: f64 = 25.0;

/// How often the lag ticker wakes: rarely enough not to change what it
/// measures (at 50 ms its extra wakeups visibly sped up other timers).
const TICK: Duration = Duration::from_millis(250);

/// The load generator's health over one phase.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Health {
    /// stampede's CPU over the phase, percent of one core.
    pub cpu_pct: f64,
    /// Cores of the machine.
    pub cores: f64,
    /// p99 of how late the event-loop ticker woke, ms.
    pub lag_p99_ms: Option<f64>,
    /// p99 of how late the publisher's timer fired, ms.
    pub slip_p99_ms: Option<f64>,
}

impl Health {
    /// The reasons the load generator was the limit (empty: it was not).
    pub fn saturation(&self) -> Vec<String> {
        let mut why = Vec::new();
        if self.cores > 0.0 && self.cpu_pct > CPU_SATURATED * self.cores * 100.0 {
            why.push(format!(
                "stampede CPU {:.0}% of {} cores",
                self.cpu_pct / self.cores,
                self.cores
            ));
        }
        if let Some(l) = self.lag_p99_ms.filter(|l| *l > LAG_SATURATED_MS) {
            why.push(format!("event-loop lag p99 {l:.0} ms"));
        }
        if let Some(s) = self.slip_p99_ms.filter(|s| *s > SLIP_SATURATED_MS) {
            why.push(format!("publish schedule slip p99 {s:.0} ms"));
        }
        why
    }

    /// True when any sign says stampede was the limit.
    pub fn saturated(&self) -> bool {
        !self.saturation().is_empty()
    }
}

/// A ticker task measuring event-loop lag until stopped.
pub struct LagProbe {
    hist: Arc<Mutex<Histogram<u64>>>,
    /// Largest lag since the last `take_max`, µs.
    max: Arc<Mutex<u64>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl LagProbe {
    /// Starts the ticker on the current runtime.
    pub fn start() -> LagProbe {
        let hist = Arc::new(Mutex::new(new_histogram()));
        let max = Arc::new(Mutex::new(0u64));
        let stop = CancellationToken::new();
        let task = {
            let (hist, max, stop) = (hist.clone(), max.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    let due = Instant::now() + TICK;
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep_until(due) => {}
                    }
                    let late = Instant::now().saturating_duration_since(due).as_micros() as u64;
                    // One sample per tick: the lock is never contended.
                    hist.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .saturating_record(late);
                    let mut m = max.lock().unwrap_or_else(|p| p.into_inner());
                    *m = (*m).max(late);
                }
            })
        };
        LagProbe {
            hist,
            max,
            stop,
            task,
        }
    }

    /// The largest lag since the previous call, ms.
    pub fn take_max_ms(&self) -> f64 {
        let mut m = self.max.lock().unwrap_or_else(|p| p.into_inner());
        let v = std::mem::take(&mut *m);
        (v as f64 / 10.0).round() / 100.0
    }

    /// Stops the ticker; returns the lag p99 over its life, ms.
    pub async fn finish(self) -> Option<f64> {
        self.stop.cancel();
        let _ = self.task.await;
        let h = self.hist.lock().unwrap_or_else(|p| p.into_inner());
        pct_ms(&h, 0.99)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturation_names_each_sign() {
        let mut h = Health {
            cpu_pct: 100.0,
            cores: 2.0,
            lag_p99_ms: Some(1.0),
            slip_p99_ms: None,
        };
        assert!(!h.saturated());
        h.cpu_pct = 170.0;
        assert_eq!(h.saturation().len(), 1);
        h.lag_p99_ms = Some(40.0);
        h.slip_p99_ms = Some(30.0);
        assert_eq!(h.saturation().len(), 3);
    }

    #[tokio::test]
    async fn the_probe_samples_and_ends() {
        let probe = LagProbe::start();
        tokio::time::sleep(TICK * 3).await;
        let _ = probe.take_max_ms();
        // The ticker task ends and its samples are summarised.
        assert!(probe.finish().await.is_some_and(|p| p >= 0.0));
    }
}
