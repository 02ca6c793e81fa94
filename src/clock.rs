//! The run's single clock. Every timestamp that crosses a module boundary is
//! nanoseconds since the run epoch, on the monotonic clock: publisher and
//! subscribers live in one process, so delivery latency has no clock skew.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Monotonic run clock with the wall-clock time of its epoch.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
    wall_epoch: SystemTime,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn start() -> Self {
        Self {
            epoch: Instant::now(),
            wall_epoch: SystemTime::now(),
        }
    }

    /// Nanoseconds since the epoch for `at` (0 for instants before it).
    pub fn ns(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// Nanoseconds since the epoch, now.
    pub fn now_ns(&self) -> u64 {
        self.ns(Instant::now())
    }

    /// The instant `ns` nanoseconds after the epoch.
    pub fn instant(&self, ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(ns)
    }

    /// The monotonic epoch.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Wall-clock time of the epoch.
    pub fn wall_epoch(&self) -> SystemTime {
        self.wall_epoch
    }

    /// Wall-clock seconds since the Unix epoch for run time `ns`.
    pub fn unix_s(&self, ns: u64) -> f64 {
        let wall = self.wall_epoch + Duration::from_nanos(ns);
        wall.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }
}
