//! Load shapes as pure functions of elapsed time: ramping stages of
//! connected clients (`{ to = 5000, over = "60s" }, { hold = "2m" }`). The
//! runner asks when each client joins and leaves; nothing here looks at a
//! clock, so the pacing is tested with plain durations.

use std::time::Duration;

use serde::Serialize;

/// One stage of a group's connected-clients shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Move linearly from the current count to `to` clients over `over`.
    Ramp {
        /// Clients connected at the end of the stage.
        to: u64,
        /// Length of the stage.
        #[serde(with = "crate::plan::secs")]
        over: Duration,
    },
    /// Keep the current count.
    Hold(#[serde(with = "crate::plan::secs")] Duration),
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
