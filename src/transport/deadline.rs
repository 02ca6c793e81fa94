//! A deadline that moves on every message without touching the timer
//! wheel: read timeouts, ping and heartbeat intervals.
//!
//! A `tokio::time::timeout` or `sleep_until` made per message registers a
//! timer entry when first polled and removes it when dropped, two trips
//! through the timer driver's lock for every delivery. A [`Deadline`]
//! keeps one boxed `Sleep` armed for the life of the session; moving the
//! deadline later only stores the instant, and the sleep is re-armed when
//! it fires early (at most once per timeout period).

use std::pin::Pin;

use tokio::time::{Instant, Sleep};

/// An optional instant to wait for, re-armed lazily.
pub struct Deadline {
    due: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    /// A deadline at `due` (never when `None`).
    pub fn new(due: Option<Instant>) -> Deadline {
        Deadline {
            due,
            sleep: due.map(|d| Box::pin(tokio::time::sleep_until(d))),
        }
    }

    /// Moves the deadline (`None`: never). Later is a store; earlier than
    /// the armed sleep re-arms it now.
    pub fn set(&mut self, due: Option<Instant>) {
        self.due = due;
        if let (Some(d), Some(s)) = (due, self.sleep.as_mut()) {
            if d < s.deadline() {
                s.as_mut().reset(d);
            }
        } else if let (Some(d), None) = (due, self.sleep.as_ref()) {
            self.sleep = Some(Box::pin(tokio::time::sleep_until(d)));
        }
    }

    /// The deadline, if any.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Completes once the deadline has passed; pending forever without one.
    pub async fn passed(&mut self) {
        loop {
            let (Some(due), Some(sleep)) = (self.due, self.sleep.as_mut()) else {
                return std::future::pending().await;
            };
            sleep.as_mut().await;
            if Instant::now() >= due {
                return;
            }
            // Moved later while armed: wait for where it is now.
            sleep.as_mut().reset(due);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_moved_later_fires_at_its_last_place_only() {
        let t0 = Instant::now();
        let mut d = Deadline::new(Some(t0 + Duration::from_secs(1)));
        d.set(Some(t0 + Duration::from_secs(3)));
        d.passed().await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(3));
        // Earlier than armed: re-armed at once.
        d.set(Some(t0 + Duration::from_secs(10)));
        d.set(Some(t0 + Duration::from_secs(4)));
        d.passed().await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn no_deadline_never_passes() {
        let mut d = Deadline::new(None);
        let r = tokio::time::timeout(Duration::from_secs(3600), d.passed()).await;
        assert!(r.is_err());
        d.set(Some(Instant::now() + Duration::from_secs(1)));
        d.passed().await;
    }
}
