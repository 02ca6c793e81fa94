//! Client turnover: an open arrival rate, session lengths drawn per client
//! (deterministic by the client's global number) and churn, as pure
//! functions of elapsed time.

use std::time::Duration;

use serde::Serialize;

use super::Stay;

/// An open arrival rate: client `i` (global number) joins at `i / rate`,
/// none after `until`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Arrival {
    /// New connections per second over the group.
    pub rate_per_s: f64,
    /// No arrivals from here on (after the phase start).
    #[serde(rename = "until_s", with = "crate::units::opt_secs")]
    pub until: Option<Duration>,
}

impl Arrival {
    /// When client `i` arrives, or `None` when it never does.
    pub fn join(&self, i: u64) -> Option<Duration> {
        let at = Duration::try_from_secs_f64(i as f64 / self.rate_per_s).ok()?;
        self.until.is_none_or(|u| at < u).then_some(at)
    }
}

/// How session lengths are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    /// Every session lasts `mean`.
    Fixed,
    /// Uniform between `min` and `max`.
    Uniform,
    /// Exponential with `mean`, cut to `[min, max]`.
    Exponential,
}

/// Session lengths: a client leaves after its session.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Session {
    /// The distribution.
    pub distribution: Distribution,
    /// Mean (fixed, exponential).
    #[serde(rename = "mean_s", with = "crate::units::secs")]
    pub mean: Duration,
    /// Shortest session.
    #[serde(rename = "min_s", with = "crate::units::secs")]
    pub min: Duration,
    /// Longest session (`None`: unbounded).
    #[serde(rename = "max_s", with = "crate::units::opt_secs")]
    pub max: Option<Duration>,
}

/// A value in [0, 1) fixed by `(index, n)`: the same in every shard and
/// every rerun, whatever order clients are built in (SplitMix64 finalizer).
pub fn unit_hash(index: u64, n: u64) -> f64 {
    let mut z = index
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(n.wrapping_mul(0xD1B5_4A32_D192_ED03))
        .wrapping_add(0x632B_E59B_D9B4_E019);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl Session {
    /// The length of client `index`'s `n`-th session (0-based).
    pub fn length(&self, index: u64, n: u64) -> Duration {
        let u = unit_hash(index, n);
        let d = match self.distribution {
            Distribution::Fixed => self.mean,
            Distribution::Uniform => {
                let max = self.max.unwrap_or(self.min);
                self.min + max.saturating_sub(self.min).mul_f64(u)
            }
            // Inverse CDF; 1 − u is in (0, 1], so the log is finite.
            Distribution::Exponential => {
                Duration::try_from_secs_f64(-self.mean.as_secs_f64() * (1.0 - u).ln())
                    .unwrap_or(crate::scenario::MAX_DURATION)
            }
        };
        let d = d.max(self.min);
        // A zero-length session would leave before it joined.
        let d = self.max.map_or(d, |m| d.min(m));
        d.max(Duration::from_millis(1))
    }
}

/// Churn: clients leave at `rate` per second over the group, round robin
/// from client 0, each rejoining as a new session after `gap`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Churn {
    /// Leaves per second over the group.
    pub rate_per_s: f64,
    /// Time away before the rejoin.
    #[serde(rename = "gap_s", with = "crate::units::secs")]
    pub gap: Duration,
}

/// A group's turnover: how clients join (ramp-up or an arrival rate) and
/// leave (never, after a session, or by churn). Exclusive with `stages`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Turnover {
    /// Open arrival rate instead of `ramp_up`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrival: Option<Arrival>,
    /// Session lengths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// Leave-and-rejoin rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn: Option<Churn>,
}

impl Turnover {
    /// True without arrival, session or churn.
    pub fn is_empty(&self) -> bool {
        self.arrival.is_none() && self.session.is_none() && self.churn.is_none()
    }

    /// When client `i` of `total` first joins: by the arrival rate, else
    /// spread over `ramp_up` (`None`: it never arrives).
    fn first_join(&self, i: u64, total: u64, ramp_up: Duration) -> Option<Duration> {
        match self.arrival {
            Some(a) => a.join(i),
            None => Some(ramp_up.mul_f64(i as f64 / total as f64)),
        }
    }

    /// When the last client has joined (churn starts there); in closed
    /// form, since it is asked once per client.
    fn all_joined(&self, total: u64, ramp_up: Duration) -> Duration {
        let last = total.saturating_sub(1);
        match self.arrival {
            None => self.first_join(last, total, ramp_up).unwrap_or_default(),
            Some(a) => {
                let n = a
                    .until
                    .map_or(u64::MAX, |u| (u.as_secs_f64() * a.rate_per_s).ceil() as u64);
                let last = last.min(n.saturating_sub(1));
                // Float rounding at `until` may put `last` just past it.
                a.join(last)
                    .or_else(|| a.join(last.saturating_sub(1)))
                    .unwrap_or_default()
            }
        }
    }

    /// Every stay of client `i` (global number) of `total` that starts
    /// before `horizon`: a pure function of the global number, so each
    /// shard builds its own clients' stays and together they make the
    /// single-process run's.
    ///
    /// - no session, no churn: one stay from its join on;
    /// - session with an arrival rate (open model): one stay of one
    ///   session, then the client is gone;
    /// - session without one (closed model): sessions back to back, each
    ///   a new stay, so the population stays and sessions turn over;
    /// - churn: after every client has joined, leave `k` is at
    ///   `(k + 1) / rate` and takes client `k mod total`, who rejoins `gap`
    ///   later.
    pub fn stays_of(&self, i: u64, total: u64, ramp_up: Duration, horizon: Duration) -> Vec<Stay> {
        let Some(join) = self.first_join(i, total, ramp_up) else {
            return Vec::new();
        };
        if join >= horizon {
            return Vec::new();
        }
        let mut out = Vec::new();
        let stay = |join, leave| Stay {
            index: i,
            join,
            leave,
        };
        if let Some(c) = self.churn {
            let origin = self.all_joined(total, ramp_up);
            let mut from = join;
            for m in 0u64.. {
                let k = i + m * total;
                let leave = origin + Duration::from_secs_f64((k + 1) as f64 / c.rate_per_s);
                if leave >= horizon {
                    break;
                }
                out.push(stay(from, Some(leave)));
                from = leave + c.gap;
                if from >= horizon {
                    return out;
                }
            }
            out.push(stay(from, None));
        } else if let Some(s) = self.session {
            let mut from = join;
            for n in 0u64.. {
                let leave = from + s.length(i, n);
                if leave >= horizon {
                    out.push(stay(from, None));
                    break;
                }
                out.push(stay(from, Some(leave)));
                if self.arrival.is_some() {
                    break;
                }
                from = leave;
            }
        } else {
            out.push(stay(join, None));
        }
        out
    }

    /// A label for the time series: `arrivals` until the last client has
    /// arrived, then `churn` / `sessions` (or nothing to say).
    pub fn label(&self, total: u64, ramp_up: Duration, t: Duration) -> Option<String> {
        if self.arrival.is_some() && t < self.all_joined(total, ramp_up) {
            return Some("arrivals".into());
        }
        if let Some(c) = self.churn {
            return Some(format!("churn {}/s", c.rate_per_s));
        }
        self.session.map(|_| "sessions".into())
    }
}
