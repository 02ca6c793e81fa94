//! Load shapes as pure functions of elapsed time: ramping stages of
//! connected clients (`{ to = 5000, over = "60s" }, { hold = "2m" }`). The
//! runner asks when each client joins and leaves; nothing here looks at a
//! clock, so the pacing is tested with plain durations.

mod turnover;

use std::time::Duration;

use serde::Serialize;

pub use turnover::{unit_hash, Arrival, Churn, Distribution, Session, Turnover};

/// One stage of a group's connected-clients shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Move linearly from the current count to `to` clients over `over`.
    Ramp {
        /// Clients connected at the end of the stage.
        to: u64,
        /// Length of the stage.
        #[serde(with = "crate::units::secs")]
        over: Duration,
    },
    /// Keep the current count.
    Hold(#[serde(with = "crate::units::secs")] Duration),
}

impl Stage {
    fn length(&self) -> Duration {
        match *self {
            Stage::Ramp { over, .. } => over,
            Stage::Hold(d) => d,
        }
    }
}

/// The target number of connected clients at `t` after the phase start
/// (0 before the first stage; the last count after the last).
pub fn clients_at(stages: &[Stage], t: Duration) -> f64 {
    let mut from = 0.0;
    let mut start = Duration::ZERO;
    for s in stages {
        let end = start + s.length();
        if let Stage::Ramp { to, over } = *s {
            let to = to as f64;
            if t < end {
                let frac = if over.is_zero() {
                    1.0
                } else {
                    t.saturating_sub(start).as_secs_f64() / over.as_secs_f64()
                };
                return from + (to - from) * frac;
            }
            from = to;
        } else if t < end {
            return from;
        }
        start = end;
    }
    from
}

/// The most clients connected at once.
pub fn peak(stages: &[Stage]) -> u64 {
    stages
        .iter()
        .filter_map(|s| match s {
            Stage::Ramp { to, .. } => Some(*to),
            Stage::Hold(_) => None,
        })
        .max()
        .unwrap_or(0)
}

/// One client's stay: joins at `join`, leaves at `leave` (never: `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stay {
    /// Client index (its channel is `index % channels`).
    pub index: u64,
    /// When it connects, after the phase start.
    pub join: Duration,
    /// When it leaves, after the phase start.
    pub leave: Option<Duration>,
}

/// Every client stay the stages ask for. Going up from `a` to `b`, client
/// `i` (a ≤ i < b) joins at `(i − a)/(b − a)` of the stage, as a plain
/// `ramp_up` spreads them; going down, the newest leave first, the last at
/// the stage's end. A client that left and is needed again joins as a new
/// stay (a new session, its own accounting).
pub fn stays(stages: &[Stage]) -> Vec<Stay> {
    let mut out: Vec<Stay> = Vec::new();
    // Index of the open stay of each connected client.
    let mut open: Vec<usize> = Vec::new();
    let mut start = Duration::ZERO;
    for s in stages {
        if let Stage::Ramp { to, over } = *s {
            let from = open.len() as u64;
            let at = |k: u64, n: u64| start + over.mul_f64(k as f64 / n as f64);
            if to > from {
                let n = to - from;
                for i in from..to {
                    open.push(out.len());
                    out.push(Stay {
                        index: i,
                        join: at(i - from, n),
                        leave: None,
                    });
                }
            } else {
                let n = from - to;
                for k in 1..=n {
                    if let Some(slot) = open.pop() {
                        out[slot].leave = Some(at(k, n));
                    }
                }
            }
        }
        start += s.length();
    }
    out
}

/// The stage running at `t` as a label: `ramp 1/3 to 5000`, `hold 2/3`,
/// or `after` once every stage is over.
pub fn stage_label(stages: &[Stage], t: Duration) -> String {
    let mut start = Duration::ZERO;
    for (i, s) in stages.iter().enumerate() {
        start += s.length();
        if t < start {
            return match s {
                Stage::Ramp { to, .. } => format!("ramp {}/{} to {to}", i + 1, stages.len()),
                Stage::Hold(_) => format!("hold {}/{}", i + 1, stages.len()),
            };
        }
    }
    "after".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn shape() -> Vec<Stage> {
        vec![
            Stage::Ramp {
                to: 100,
                over: s(10),
            },
            Stage::Hold(s(5)),
            Stage::Ramp { to: 40, over: s(6) },
        ]
    }

    #[test]
    fn target_follows_the_stages() {
        let st = shape();
        assert_eq!(clients_at(&st, s(0)), 0.0);
        assert_eq!(clients_at(&st, s(5)), 50.0);
        assert_eq!(clients_at(&st, s(10)), 100.0);
        assert_eq!(clients_at(&st, s(14)), 100.0);
        assert_eq!(clients_at(&st, s(18)), 70.0);
        assert_eq!(clients_at(&st, s(60)), 40.0);
        assert_eq!(peak(&st), 100);
        assert_eq!(stage_label(&st, s(3)), "ramp 1/3 to 100");
        assert_eq!(stage_label(&st, s(12)), "hold 2/3");
        assert_eq!(stage_label(&st, s(30)), "after");
    }

    #[test]
    fn stays_match_the_target_at_every_instant() {
        let st = shape();
        let all = stays(&st);
        assert_eq!(all.len(), 100);
        assert_eq!(all.iter().filter(|c| c.leave.is_some()).count(), 60);
        // Connected clients at t (joined at or before, not yet left) never
        // differ from the target by a client, at any millisecond.
        for ms in (0..25_000).step_by(7) {
            let t = Duration::from_millis(ms);
            let connected = all
                .iter()
                .filter(|c| c.join <= t && c.leave.is_none_or(|l| l > t))
                .count() as f64;
            let want = clients_at(&st, t);
            assert!(
                (connected - want).abs() <= 1.0 + 1e-9,
                "t={ms} ms: {connected} connected, target {want}"
            );
        }
    }

    fn connected(all: &[Stay], t: Duration) -> usize {
        all.iter()
            .filter(|c| c.join <= t && c.leave.is_none_or(|l| l > t))
            .count()
    }

    fn every(t: &Turnover, total: u64, ramp_up: Duration, horizon: Duration) -> Vec<Stay> {
        (0..total)
            .flat_map(|i| t.stays_of(i, total, ramp_up, horizon))
            .collect()
    }

    #[test]
    fn arrivals_join_at_the_rate_until_the_end() {
        let t = Turnover {
            arrival: Some(Arrival {
                rate_per_s: 200.0,
                until: Some(s(2)),
            }),
            ..Turnover::default()
        };
        let all = every(&t, 1000, s(30), s(60));
        // 200/s for 2 s: 400 of the 1000 arrive, ramp_up is ignored.
        assert_eq!(all.len(), 400);
        for ms in (0..3000).step_by(13) {
            let at = Duration::from_millis(ms);
            let want = ((ms as f64 / 1000.0 * 200.0).floor() as usize + 1).min(400);
            assert_eq!(connected(&all, at), want, "t={ms} ms");
        }
        assert_eq!(
            t.label(1000, s(30), Duration::from_millis(500)).as_deref(),
            Some("arrivals")
        );
        assert_eq!(t.label(1000, s(30), s(3)), None);
        // Capped by `clients` without `until`.
        let open = Turnover {
            arrival: Some(Arrival {
                rate_per_s: 10.0,
                until: None,
            }),
            ..Turnover::default()
        };
        assert_eq!(
            every(&open, 5, s(0), s(60)).last().map(|c| c.join),
            Some(Duration::from_millis(400))
        );
    }

    #[test]
    fn sessions_are_fixed_per_global_client_and_follow_their_distribution() {
        let exp = Session {
            distribution: Distribution::Exponential,
            mean: s(30),
            min: Duration::ZERO,
            max: None,
        };
        // Deterministic: the same client and session number, the same length.
        assert_eq!(exp.length(17, 3), exp.length(17, 3));
        assert_ne!(exp.length(17, 3), exp.length(18, 3));
        let n = 20_000u64;
        let mean = (0..n).map(|i| exp.length(i, 0).as_secs_f64()).sum::<f64>() / n as f64;
        assert!((mean - 30.0).abs() < 1.0, "exponential mean {mean}");
        // Exponential: P(X > mean) = 1/e.
        let above = (0..n).filter(|&i| exp.length(i, 0) > s(30)).count() as f64 / n as f64;
        assert!((above - (-1f64).exp()).abs() < 0.02, "{above}");
        let capped = Session {
            min: s(5),
            max: Some(s(60)),
            ..exp
        };
        assert!((0..n).all(|i| (s(5)..=s(60)).contains(&capped.length(i, 0))));
        let uni = Session {
            distribution: Distribution::Uniform,
            mean: Duration::ZERO,
            min: s(10),
            max: Some(s(20)),
        };
        let mean = (0..n).map(|i| uni.length(i, 1).as_secs_f64()).sum::<f64>() / n as f64;
        assert!((mean - 15.0).abs() < 0.2, "uniform mean {mean}");
        assert!((0..n).all(|i| (s(10)..s(20)).contains(&uni.length(i, 1))));
        let fixed = Session {
            distribution: Distribution::Fixed,
            ..exp
        };
        assert_eq!(fixed.length(3, 9), s(30));
    }

    #[test]
    fn closed_sessions_turn_over_and_open_ones_leave() {
        let fixed = Session {
            distribution: Distribution::Fixed,
            mean: s(4),
            min: Duration::ZERO,
            max: None,
        };
        let closed = Turnover {
            session: Some(fixed),
            ..Turnover::default()
        };
        let all = every(&closed, 10, s(1), s(10));
        // Client 0: [0,4) [4,8) [8,∞).
        let zero: Vec<_> = all
            .iter()
            .filter(|c| c.index == 0)
            .map(|c| (c.join, c.leave))
            .collect();
        assert_eq!(
            zero,
            vec![(s(0), Some(s(4))), (s(4), Some(s(8))), (s(8), None)]
        );
        for ms in (1000..10_000).step_by(7) {
            assert_eq!(connected(&all, Duration::from_millis(ms)), 10, "t={ms} ms");
        }
        let open = Turnover {
            arrival: Some(Arrival {
                rate_per_s: 10.0,
                until: None,
            }),
            session: Some(fixed),
            churn: None,
        };
        let all = every(&open, 100, s(0), s(20));
        assert_eq!(all.len(), 100, "one session each");
        // Little's law: 10/s × 4 s = 40 connected once arrivals settle.
        for ms in (4000..9900).step_by(11) {
            let n = connected(&all, Duration::from_millis(ms));
            assert!((39..=41).contains(&n), "t={ms} ms: {n}");
        }
    }

    #[test]
    fn churn_keeps_the_count_while_sessions_turn_over() {
        let t = Turnover {
            churn: Some(Churn {
                rate_per_s: 5.0,
                gap: Duration::from_millis(500),
            }),
            ..Turnover::default()
        };
        let (total, ramp, horizon) = (20, s(2), s(30));
        let all = every(&t, total, ramp, horizon);
        // All joined at 1.9 s; then 5 leaves/s for 28.1 s: 140 leaves.
        let leaves = all.iter().filter(|c| c.leave.is_some()).count();
        assert_eq!(leaves, 140);
        // Every leave rejoins, but the three in the last 0.5 s: too late.
        assert_eq!(all.len(), 20 + 140 - 3);
        // Leave k at 1.9 + (k+1)/5 s, back 0.5 s later: 2 or 3 away at once.
        for ms in (2500..29_000).step_by(17) {
            let n = connected(&all, Duration::from_millis(ms));
            assert!((17..=18).contains(&n), "t={ms} ms: {n}");
        }
        let leave_times: Vec<Duration> = {
            let mut v: Vec<_> = all.iter().filter_map(|c| c.leave).collect();
            v.sort();
            v
        };
        assert_eq!(leave_times[0], Duration::from_millis(2100));
        assert_eq!(leave_times[1] - leave_times[0], Duration::from_millis(200));
        // Client 3 leaves 4th, and again a round (20 leaves, 4 s) later.
        let three: Vec<_> = all.iter().filter(|c| c.index == 3).collect();
        assert_eq!(three[0].leave, Some(Duration::from_millis(2700)));
        assert_eq!(three[1].join, Duration::from_millis(3200));
        assert_eq!(three[1].leave, Some(Duration::from_millis(6700)));
        // A shard building only its own clients gets exactly their stays.
        let odd: Vec<Stay> = (0..total)
            .filter(|i| i % 2 == 1)
            .flat_map(|i| t.stays_of(i, total, ramp, horizon))
            .collect();
        assert_eq!(
            odd,
            all.iter()
                .filter(|c| c.index % 2 == 1)
                .copied()
                .collect::<Vec<_>>()
        );
        assert_eq!(t.label(total, ramp, s(5)).as_deref(), Some("churn 5/s"));
    }

    #[test]
    fn a_client_needed_again_is_a_new_stay() {
        let st = vec![
            Stage::Ramp { to: 2, over: s(2) },
            Stage::Ramp {
                to: 0,
                over: Duration::ZERO,
            },
            Stage::Ramp { to: 2, over: s(2) },
        ];
        let all = stays(&st);
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].leave, Some(s(2)));
        assert_eq!((all[2].index, all[2].join, all[2].leave), (0, s(2), None));
        assert_eq!(all[3].join, s(3));
    }
}
