//! Load shapes: client stages, turnover (arrivals, session lengths,
//! churn), publish-rate stages and reconnect storms, each validated with its
//! own errors.

use std::time::Duration;

use serde::Serialize;

use super::TargetPlan;
use crate::error::Result;
use crate::scenario::{Scenario, Source};
use crate::transport::TransportKind;
use crate::units::secs;

/// How a storm drops connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StormVia {
    /// Every subscribing client closes its own connection (any target).
    Client,
    /// The reference server ends every stream (`POST /control/drop`);
    /// pollers keep their connections.
    Target,
}

/// `[storm]`: all subscriber connections dropped at once, in every phase.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StormPlan {
    /// When, after the phase start.
    #[serde(rename = "at_s", with = "secs")]
    pub at: Duration,
    /// Who drops the connections.
    pub via: StormVia,
}

/// `[publisher] stages`: each one steady (`rate`, `for`), burst (`burst`,
/// `for`) or ramp (`to`, `over`); rates bounded like `publisher.rate` (a
/// rate of 0 would never reach the next event), lengths above zero.
pub(super) fn rate_stages_plan(
    p: &crate::scenario::Publisher,
    src: &Source,
) -> Result<Vec<crate::schedule::rate::RateStage>> {
    use crate::schedule::rate::RateStage;
    let Some(list) = &p.stages else {
        return Ok(Vec::new());
    };
    if list.get_ref().is_empty() {
        return Err(src.error(list.span(), "publisher.stages", "give at least one stage"));
    }
    let key = "publisher.stages";
    let rate = |r: &toml::Spanned<f64>| {
        let v = *r.get_ref();
        if v.is_finite() && (0.001..=1_000_000.0).contains(&v) {
            Ok(v)
        } else {
            Err(src.error(r.span(), key, "a rate must be in [0.001, 1000000] events/s"))
        }
    };
    let len = |d: &toml::Spanned<crate::scenario::Dur>| {
        if d.get_ref().0.is_zero() {
            Err(src.error(d.span(), key, "a stage must last longer than 0s"))
        } else {
            Ok(d.get_ref().0)
        }
    };
    let mut out = Vec::new();
    for st in list.get_ref() {
        let s = st.get_ref();
        let stage = match (&s.rate, &s.burst, &s.to, &s.for_, &s.over) {
            (Some(r), None, None, Some(d), None) => RateStage::Steady {
                rate: rate(r)?,
                len: len(d)?,
            },
            (None, Some(r), None, Some(d), None) => RateStage::Burst {
                rate: rate(r)?,
                len: len(d)?,
            },
            (None, None, Some(r), None, Some(d)) => RateStage::Ramp {
                to: rate(r)?,
                len: len(d)?,
            },
            _ => {
                return Err(src.error(
                    st.span(),
                    key,
                    "write { rate = 50, for = \"10s\" }, { burst = 500, for = \"2s\" } or { to = 100, over = \"10s\" }",
                ))
            }
        };
        out.push(stage);
    }
    Ok(out)
}

/// `[storm]`: inside the phase's hold; `via = "target"` needs the built-in
/// target (only it has `POST /control/drop`).
pub(super) fn storm_plan(
    sc: &Scenario,
    src: &Source,
    target: &TargetPlan,
    phase: Duration,
) -> Result<Option<StormPlan>> {
    let Some(spec) = &sc.storm else {
        return Ok(None);
    };
    let st = spec.get_ref();
    let at = st.at.get_ref().0;
    if at.is_zero() || at >= phase {
        return Err(src.error(
            st.at.span(),
            "storm.at",
            &format!(
                "must be after the phase start and before publishing stops ({} = ramp_up + warmup + duration)",
                humantime::format_duration(phase)
            ),
        ));
    }
    let via = match st.via.as_ref().map(|v| (v.get_ref().as_str(), v.span())) {
        None | Some(("client", _)) => StormVia::Client,
        Some(("target", span)) => {
            if !matches!(target, TargetPlan::Builtin) {
                return Err(src.error(
                    span,
                    "storm.via",
                    "\"target\" needs the built-in target (POST /control/drop); use \"client\" for any target",
                ));
            }
            StormVia::Target
        }
        Some((_, span)) => {
            return Err(src.error(span, "storm.via", "must be \"client\" or \"target\""))
        }
    };
    if !sc.groups.iter().any(|g| g.transport.get_ref().subscribes()) {
        return Err(src.error(
            spec.span(),
            "storm",
            "needs a subscribing group (request and echo load has no subscription to drop)",
        ));
    }
    Ok(Some(StormPlan { at, via }))
}

/// A group's `arrival`, `session` and `churn`: subscribers only, not with
/// `stages`; churn and session lengths are two ways to turn sessions over,
/// so one of them.
pub(super) fn turnover_plan(
    g: &crate::scenario::Group,
    clients: u64,
    kind: TransportKind,
    src: &Source,
) -> Result<crate::schedule::shape::Turnover> {
    use crate::schedule::shape::{Arrival, Churn, Turnover};
    let spans = [
        g.arrival.as_ref().map(|a| ("arrival", a.span())),
        g.session.as_ref().map(|a| ("session", a.span())),
        g.churn.as_ref().map(|a| ("churn", a.span())),
    ];
    for (key, span) in spans.iter().flatten() {
        if !kind.subscribes() {
            return Err(src.error(
                span.clone(),
                key,
                "applies to subscribing transports only (request and echo load is paced by `rate`)",
            ));
        }
        if g.stages.is_some() {
            return Err(src.error(
                span.clone(),
                key,
                "give either `stages` or arrival / session / churn, not both",
            ));
        }
    }
    let rate_ok = |r: f64| r.is_finite() && (0.001..=1_000_000.0).contains(&r);
    let arrival = match &g.arrival {
        None => None,
        Some(a) => {
            let bad = |m: &str| src.error(a.span(), "arrival", m);
            let spec = a.get_ref();
            if !rate_ok(spec.rate) {
                return Err(bad("`rate` must be in [0.001, 1000000] new connections/s"));
            }
            if spec.until.is_some_and(|u| u.0.is_zero()) {
                return Err(bad("`until` must be greater than zero"));
            }
            Some(Arrival {
                rate_per_s: spec.rate,
                until: spec.until.map(|u| u.0),
            })
        }
    };
    let session = g
        .session
        .as_ref()
        .map(|sp| session_plan(sp, src))
        .transpose()?;
    let churn = match &g.churn {
        None => None,
        Some(c) => {
            let bad = |m: &str| src.error(c.span(), "churn", m);
            let spec = c.get_ref();
            if !rate_ok(spec.rate) {
                return Err(bad("`rate` must be in [0.001, 1000000] leaves/s"));
            }
            if session.is_some() {
                return Err(bad(
                    "give either `churn` or `session`: both turn sessions over",
                ));
            }
            let gap = spec.gap.map_or(Duration::ZERO, |d| d.0);
            // A client must be back before its next turn to leave.
            let round = Duration::from_secs_f64(clients as f64 / spec.rate);
            if gap >= round {
                return Err(bad(&format!(
                    "`gap` must be shorter than clients / rate ({}), or a client would be due to leave while away",
                    humantime::format_duration(round)
                )));
            }
            Some(Churn {
                rate_per_s: spec.rate,
                gap,
            })
        }
    };
    Ok(Turnover {
        arrival,
        session,
        churn,
    })
}

/// `session = { distribution = ..., mean / min / max }`.
fn session_plan(
    sp: &toml::Spanned<crate::scenario::SessionLengthSpec>,
    src: &Source,
) -> Result<crate::schedule::shape::Session> {
    use crate::schedule::shape::{Distribution, Session};
    let bad = |m: &str| src.error(sp.span(), "session", m);
    let spec = sp.get_ref();
    let (mean, min, max) = (
        spec.mean.map(|d| d.0),
        spec.min.map(|d| d.0),
        spec.max.map(|d| d.0),
    );
    let distribution = match spec.distribution.as_deref() {
        None | Some("fixed") => Distribution::Fixed,
        Some("uniform") => Distribution::Uniform,
        Some("exponential") => Distribution::Exponential,
        Some(other) => {
            return Err(bad(&format!(
                "distribution {other:?}: use \"fixed\", \"uniform\" or \"exponential\""
            )))
        }
    };
    let s = match distribution {
        Distribution::Fixed => match (mean, min, max) {
            (Some(m), None, None) if !m.is_zero() => Session {
                distribution,
                mean: m,
                min: Duration::ZERO,
                max: None,
            },
            _ => {
                return Err(bad(
                    "a fixed session needs `mean` > 0 only (no `min` / `max`)",
                ))
            }
        },
        Distribution::Uniform => match (mean, min, max) {
            (None, Some(lo), Some(hi)) if hi > lo => Session {
                distribution,
                mean: (lo + hi) / 2,
                min: lo,
                max: Some(hi),
            },
            _ => {
                return Err(bad(
                    "a uniform session needs `min` < `max` (and no `mean`: it is their middle)",
                ))
            }
        },
        Distribution::Exponential => match mean {
            Some(m) if !m.is_zero() => {
                let lo = min.unwrap_or_default();
                if max.is_some_and(|hi| hi <= lo) {
                    return Err(bad("`max` must be greater than `min`"));
                }
                Session {
                    distribution,
                    mean: m,
                    min: lo,
                    max,
                }
            }
            _ => return Err(bad("an exponential session needs `mean` > 0")),
        },
    };
    Ok(s)
}

/// A group's `stages`: ramps to at most `clients`, holds; subscribers only
/// (request and echo load is paced by `rate`).
pub(super) fn stages_plan(
    g: &crate::scenario::Group,
    clients: u64,
    kind: TransportKind,
    src: &Source,
) -> Result<Vec<crate::schedule::shape::Stage>> {
    use crate::schedule::shape::Stage;
    let Some(list) = &g.stages else {
        return Ok(Vec::new());
    };
    if !kind.subscribes() {
        return Err(src.error(
            list.span(),
            "stages",
            "applies to subscribing transports only (request and echo load is paced by `rate`)",
        ));
    }
    if list.get_ref().is_empty() {
        return Err(src.error(list.span(), "stages", "give at least one stage"));
    }
    let mut out = Vec::new();
    for st in list.get_ref() {
        let bad = |m: &str| src.error(st.span(), "stages", m);
        let stage = match (st.get_ref().to, st.get_ref().over, st.get_ref().hold) {
            (Some(to), Some(over), None) if to <= clients => Stage::Ramp { to, over: over.0 },
            (Some(to), Some(_), None) => {
                return Err(bad(&format!(
                    "`to = {to}` passes the group's `clients = {clients}` (the ceiling)"
                )))
            }
            (None, None, Some(hold)) => Stage::Hold(hold.0),
            _ => return Err(bad("write { to = N, over = \"60s\" } or { hold = \"2m\" }")),
        };
        out.push(stage);
    }
    Ok(out)
}
