//! A pure schedule of intended instants: `start + n * period`. It never
//! looks at the clock, so a late caller gets the instant it *should* have
//! acted at, and latency measured from it includes the lateness
//! (coordinated omission).

use std::time::{Duration, Instant};

/// Fixed-period schedule.
#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    period: Duration,
    n: u32,
    // Past u32::MAX ticks the schedule continues from a new base.
    base: Instant,
}

impl Pacer {
    /// Ticks at `start`, `start + period`, ...
    pub fn new(start: Instant, period: Duration) -> Self {
        Pacer {
            start,
            period,
            n: 0,
            base: start,
        }
    }

    /// The next intended instant.
    pub fn next_at(&mut self) -> Instant {
        let at = self.base + self.period * self.n;
        if self.n == u32::MAX {
            self.base = at;
            self.n = 0;
        }
        self.n += 1;
        at
    }

    /// Skips every tick that is already over at `now` except the latest
    /// one (which `next_at` then returns, to fire at once); returns the
    /// skipped ticks.
    pub fn skip_missed(&mut self, now: Instant) -> Vec<Instant> {
        let mut skipped = Vec::new();
        loop {
            let at = self.base + self.period * self.n;
            if at + self.period > now || skipped.len() >= 100_000 {
                return skipped;
            }
            skipped.push(at);
            let _ = self.next_at();
        }
    }

    /// The first instant of the schedule.
    pub fn start(&self) -> Instant {
        self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_independent_of_the_caller() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, Duration::from_millis(100));
        assert_eq!(p.next_at(), t0);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(p.next_at(), t0 + Duration::from_millis(100));
        assert_eq!(p.next_at(), t0 + Duration::from_millis(200));
    }

    #[test]
    fn missed_ticks_are_skipped_but_the_latest_fires() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Pacer::new(t0, ms(100));
        assert_eq!(p.next_at(), t0);
        // At t0+350 the ticks at 100 and 200 were missed; 300 is due now.
        let skipped = p.skip_missed(t0 + ms(350));
        assert_eq!(skipped, vec![t0 + ms(100), t0 + ms(200)]);
        assert_eq!(p.next_at(), t0 + ms(300));
        assert!(p.skip_missed(t0 + ms(350)).is_empty());
    }
}
