//! The publish rate as a pure schedule: steady stages, steps, bursts and
//! linear ramps of the rate, from the phase start. Global event `k` is due
//! when the integral of the rate reaches `k` and goes to channel
//! `k mod channels`, so a channel's instants depend only on its global id,
//! the channel count and the stages (shards add up to the single process),
//! and with a constant rate they are exactly the fixed-period schedule the
//! publisher always had. Nothing here looks at a clock.

use std::time::Duration;

use serde::Serialize;

/// One stage of the publish rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RateStage {
    /// Publish at `rate` for `len`; the rate stays after the stage.
    Steady {
        /// Events per second over all channels.
        rate: f64,
        /// Length of the stage.
        #[serde(rename = "for_s", with = "crate::units::secs")]
        len: Duration,
    },
    /// Publish at `rate` for `len`, then back to the rate before it.
    Burst {
        /// Events per second over all channels.
        rate: f64,
        /// Length of the stage.
        #[serde(rename = "for_s", with = "crate::units::secs")]
        len: Duration,
    },
    /// Move the rate linearly from the current one to `to` over `len`.
    Ramp {
        /// Events per second at the end of the stage.
        to: f64,
        /// Length of the stage.
        #[serde(rename = "over_s", with = "crate::units::secs")]
        len: Duration,
    },
}

impl RateStage {
    fn len(&self) -> Duration {
        match *self {
            RateStage::Steady { len, .. } | RateStage::Burst { len, .. } => len,
            RateStage::Ramp { len, .. } => len,
        }
    }
}

/// A stretch of the schedule where the rate is constant or linear.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    start: Duration,
    /// `None`: open-ended (after the last stage).
    len: Option<Duration>,
    from: f64,
    to: f64,
    /// Events due before `start` (the rate's integral up to it).
    count0: f64,
}

impl Segment {
    /// Events due before the segment's end.
    fn count_end(&self) -> f64 {
        match self.len {
            None => f64::INFINITY,
            Some(l) => self.count0 + (self.from + self.to) / 2.0 * l.as_secs_f64(),
        }
    }

    /// When the rate's integral reaches `k`, for `k` inside the segment.
    fn at(&self, k: u64) -> Duration {
        let m = k as f64 - self.count0;
        let len = self.len.map_or(0.0, |l| l.as_secs_f64());
        let slope = if len > 0.0 {
            (self.to - self.from) / len
        } else {
            0.0
        };
        // Solves from·τ + slope·τ²/2 = m in the form that needs no division
        // by the slope (a constant rate is slope 0) and stays exact-ish when
        // the rate falls (slope < 0; the root is real inside the segment).
        let disc = (self.from * self.from + 2.0 * slope * m).max(0.0);
        let tau = 2.0 * m / (self.from + disc.sqrt());
        let d = Duration::try_from_secs_f64(tau.max(0.0)).unwrap_or(crate::scenario::MAX_DURATION);
        // Float rounding must not push an event past its segment, or a
        // channel's instants could go backwards across the edge.
        self.start + self.len.map_or(d, |l| d.min(l))
    }
}

/// The publish schedule of a phase: a base rate and stages from the phase
/// start; after the last stage the last steady rate continues.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSchedule {
    segments: Vec<Segment>,
    stages: Vec<RateStage>,
}

impl RateSchedule {
    /// `rate` events/s before (and without) stages, then `stages`.
    pub fn new(rate: f64, stages: &[RateStage]) -> Self {
        let mut segments = Vec::new();
        let mut steady = rate;
        let mut start = Duration::ZERO;
        let mut count0 = 0.0;
        for st in stages {
            let (from, to) = match *st {
                RateStage::Steady { rate, .. } => {
                    steady = rate;
                    (rate, rate)
                }
                RateStage::Burst { rate, .. } => (rate, rate),
                RateStage::Ramp { to, .. } => {
                    let from = steady;
                    steady = to;
                    (from, to)
                }
            };
            let seg = Segment {
                start,
                len: Some(st.len()),
                from,
                to,
                count0,
            };
            count0 = seg.count_end();
            start += st.len();
            segments.push(seg);
        }
        segments.push(Segment {
            start,
            len: None,
            from: steady,
            to: steady,
            count0,
        });
        RateSchedule {
            segments,
            stages: stages.to_vec(),
        }
    }

    /// The intended instants (after the phase start) of the events of
    /// global channel `channel` of `channels`, in order, without end.
    pub fn events_of(&self, channel: u32, channels: u32) -> ChannelEvents<'_> {
        ChannelEvents {
            schedule: self,
            channel: u64::from(channel),
            channels: u64::from(channels.max(1)),
            seg: 0,
            next_k: None,
            fixed: None,
        }
    }

    /// Events due in `from..to` over all `channels` channels: what the
    /// publisher sends there (each channel's instants, as it computes them).
    pub fn count_between(&self, channels: u32, from: Duration, to: Duration) -> u64 {
        (0..channels.max(1))
            .map(|c| {
                self.events_of(c, channels)
                    .take_while(|t| *t < to)
                    .filter(|t| *t >= from)
                    .count() as u64
            })
            .sum()
    }

    /// The rate (events/s) at `t` after the phase start.
    pub fn rate_at(&self, t: Duration) -> f64 {
        let seg = self
            .segments
            .iter()
            .rev()
            .find(|s| s.start <= t)
            .unwrap_or(&self.segments[0]);
        match seg.len {
            Some(l) if !l.is_zero() => {
                let f = (t - seg.start).as_secs_f64() / l.as_secs_f64();
                seg.from + (seg.to - seg.from) * f.min(1.0)
            }
            _ => seg.from,
        }
    }

    /// A label for the time series at `t` (`publish 50/s`, `burst 500/s`,
    /// `publish ramp to 100/s`), or `None` without stages.
    pub fn label(&self, t: Duration) -> Option<String> {
        if self.stages.is_empty() {
            return None;
        }
        let mut end = Duration::ZERO;
        for st in &self.stages {
            end += st.len();
            if t < end {
                return Some(match *st {
                    RateStage::Steady { rate, .. } => format!("publish {rate}/s"),
                    RateStage::Burst { rate, .. } => format!("burst {rate}/s"),
                    RateStage::Ramp { to, .. } => format!("publish ramp to {to}/s"),
                });
            }
        }
        let last = self.segments.last().map_or(0.0, |s| s.from);
        Some(format!("publish {last}/s"))
    }
}

/// One channel's intended instants (see [`RateSchedule::events_of`]).
#[derive(Debug, Clone)]
pub struct ChannelEvents<'a> {
    schedule: &'a RateSchedule,
    channel: u64,
    channels: u64,
    seg: usize,
    /// The channel's next global event number in the current segment.
    next_k: Option<u64>,
    /// In the open-ended segment: first instant, period and count so far.
    fixed: Option<(Duration, Duration, u64)>,
}

impl ChannelEvents<'_> {
    /// The channel's first global event number at or after `count`.
    fn first_from(&self, count: f64) -> u64 {
        let lo = count.ceil().max(0.0) as u64;
        if lo <= self.channel {
            return self.channel;
        }
        let rounds = (lo - self.channel).div_ceil(self.channels);
        self.channel + rounds * self.channels
    }
}

impl Iterator for ChannelEvents<'_> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if let Some((first, period, n)) = &mut self.fixed {
            // The same arithmetic as the fixed-period pacer (first instant
            // plus a whole-nanosecond period times n): without stages the
            // instants are exactly the ones published before stages existed.
            let nanos = period.as_nanos().saturating_mul(u128::from(*n));
            let at = *first + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            *n += 1;
            return Some(at);
        }
        loop {
            let seg = *self.schedule.segments.get(self.seg)?;
            let k = match self.next_k {
                Some(k) => k,
                None => self.first_from(seg.count0),
            };
            if seg.len.is_none() {
                let offset = Duration::from_secs_f64((k as f64 - seg.count0) / seg.from);
                let period = Duration::from_secs_f64(self.channels as f64 / seg.from);
                self.fixed = Some((seg.start + offset, period, 0));
                return self.next();
            }
            if (k as f64) < seg.count_end() {
                self.next_k = Some(k + self.channels);
                return Some(seg.at(k));
            }
            // Past this segment: the next one starts from its own count.
            self.seg += 1;
            self.next_k = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// Every channel's instants merged and sorted: the global stream.
    fn stream(sched: &RateSchedule, channels: u32, until: Duration) -> Vec<Duration> {
        let mut all: Vec<Duration> = (0..channels)
            .flat_map(|c| sched.events_of(c, channels).take_while(|t| *t < until))
            .collect();
        all.sort();
        all
    }

    fn within_one(got: u64, want: f64, what: &str) {
        assert!(
            (got as f64 - want).abs() <= 1.0 + 1e-9,
            "{what}: {got} events, rate × duration = {want}"
        );
    }

    #[test]
    fn no_stage_is_the_fixed_period_schedule() {
        // Exactly what the publisher's pacer produced: channel c's n-th
        // event at c/rate + n × (channels/rate), each rounded to nanoseconds.
        for (rate, channels) in [(10.0, 1u32), (7.0, 3), (1000.0, 16), (0.3, 2)] {
            let sched = RateSchedule::new(rate, &[]);
            for c in 0..channels {
                let offset = Duration::from_secs_f64(f64::from(c) / rate);
                let period = Duration::from_secs_f64(f64::from(channels) / rate);
                let got: Vec<Duration> = sched.events_of(c, channels).take(500).collect();
                let want: Vec<Duration> = (0..500u32).map(|n| offset + period * n).collect();
                assert_eq!(got, want, "rate {rate}, channel {c}/{channels}");
            }
            assert_eq!(sched.label(s(1)), None);
        }
    }

    #[test]
    fn counts_per_stage_follow_rate_times_duration() {
        let stages = [
            RateStage::Steady {
                rate: 10.0,
                len: s(20),
            },
            RateStage::Steady {
                rate: 50.0,
                len: s(10),
            },
            RateStage::Steady {
                rate: 3.3,
                len: ms(2700),
            },
        ];
        let sched = RateSchedule::new(10.0, &stages);
        for channels in [1u32, 4, 7] {
            let c = |a, b| sched.count_between(channels, a, b);
            within_one(c(s(0), s(20)), 200.0, "steady 10/s");
            within_one(c(s(20), s(30)), 500.0, "step to 50/s");
            within_one(c(s(30), ms(32_700)), 3.3 * 2.7, "3.3/s");
            // The last steady rate continues after the stages.
            within_one(c(ms(32_700), ms(42_700)), 33.0, "after");
            // Nothing lost or doubled at the edges: the whole is the sum.
            within_one(c(s(0), ms(42_700)), 200.0 + 500.0 + 8.91 + 33.0, "all");
        }
        // Events are evenly spaced inside a stage and numbered in order.
        let all = stream(&sched, 4, s(30));
        assert_eq!(all.len(), 700);
        assert_eq!(all[199], ms(19_900));
        assert_eq!(all[200], s(20));
        assert_eq!(all[201], ms(20_020));
        assert_eq!(sched.label(s(5)).as_deref(), Some("publish 10/s"));
        assert_eq!(sched.label(s(25)).as_deref(), Some("publish 50/s"));
        assert_eq!(sched.label(s(99)).as_deref(), Some("publish 3.3/s"));
    }

    #[test]
    fn a_burst_returns_to_the_rate_before_it() {
        let stages = [
            RateStage::Steady {
                rate: 10.0,
                len: s(2),
            },
            RateStage::Burst {
                rate: 500.0,
                len: s(2),
            },
        ];
        let sched = RateSchedule::new(10.0, &stages);
        let all = stream(&sched, 5, s(10));
        let burst: Vec<_> = all.iter().filter(|t| (s(2)..s(4)).contains(t)).collect();
        assert_eq!(burst.len(), 1000, "500/s for 2 s");
        assert_eq!(*burst[0], s(2));
        assert_eq!(*burst[1], ms(2002));
        assert_eq!(*burst[999], ms(3998));
        // Back to 10/s: 60 events in the last 6 s, the first at 4 s.
        let after: Vec<_> = all.iter().filter(|t| **t >= s(4)).collect();
        assert_eq!(after.len(), 60);
        assert_eq!(*after[0], s(4));
        assert_eq!(*after[1], ms(4100));
        assert_eq!(sched.rate_at(s(3)), 500.0);
        assert_eq!(sched.rate_at(s(5)), 10.0);
        assert_eq!(sched.label(s(3)).as_deref(), Some("burst 500/s"));
        assert_eq!(sched.label(s(5)).as_deref(), Some("publish 10/s"));
        // A burst first: back to the base rate.
        let first = RateSchedule::new(
            20.0,
            &[RateStage::Burst {
                rate: 200.0,
                len: s(1),
            }],
        );
        assert_eq!(first.count_between(3, s(0), s(1)), 200);
        assert_eq!(first.count_between(3, s(1), s(3)), 40);
    }

    #[test]
    fn a_ramp_publishes_its_integral() {
        // 10/s to 100/s over 10 s: (10 + 100) / 2 × 10 = 550 events.
        let stages = [
            RateStage::Ramp {
                to: 100.0,
                len: s(10),
            },
            RateStage::Ramp {
                to: 20.0,
                len: s(4),
            },
        ];
        let sched = RateSchedule::new(10.0, &stages);
        within_one(sched.count_between(3, s(0), s(10)), 550.0, "ramp up");
        // The first half holds (10 + 55) / 2 × 5 = 162.5 events.
        within_one(sched.count_between(3, s(0), s(5)), 162.5, "first half");
        // Down from 100/s to 20/s over 4 s: 240 events.
        within_one(sched.count_between(3, s(10), s(14)), 240.0, "ramp down");
        within_one(sched.count_between(3, s(14), s(24)), 200.0, "after");
        assert_eq!(sched.rate_at(s(5)), 55.0);
        assert_eq!(sched.rate_at(s(12)), 60.0);
        assert_eq!(sched.label(s(1)).as_deref(), Some("publish ramp to 100/s"));
        assert_eq!(sched.label(s(30)).as_deref(), Some("publish 20/s"));
        // Spacing follows the rate: 1/r at each end (within float error).
        let all = stream(&sched, 1, s(14));
        let gap = |i: usize| (all[i + 1] - all[i]).as_secs_f64();
        assert!((gap(0) - 0.1).abs() < 0.005, "{}", gap(0));
        assert!((gap(548) - 0.01).abs() < 0.0005, "{}", gap(548));
    }

    #[test]
    fn channels_are_a_partition_of_the_global_stream() {
        let stages = [
            RateStage::Steady {
                rate: 37.0,
                len: ms(1300),
            },
            RateStage::Burst {
                rate: 400.0,
                len: ms(700),
            },
            RateStage::Ramp { to: 5.0, len: s(3) },
        ];
        let sched = RateSchedule::new(37.0, &stages);
        let one = stream(&sched, 1, s(9));
        for channels in [2u32, 5, 13] {
            let many = stream(&sched, channels, s(9));
            assert_eq!(many.len(), one.len(), "{channels} channels");
            for (a, b) in one.iter().zip(&many) {
                // The staged segments agree exactly; the open-ended one
                // rounds each channel's period to whole nanoseconds.
                assert!(a.abs_diff(*b) < Duration::from_micros(1), "{a:?} {b:?}");
            }
            // Each channel's instants never go back (the ledger needs it).
            for c in 0..channels {
                let v: Vec<_> = sched.events_of(c, channels).take(2000).collect();
                assert!(v.windows(2).all(|w| w[0] <= w[1]), "channel {c}");
            }
        }
    }
}
