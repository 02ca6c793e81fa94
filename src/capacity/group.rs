//! One group's search: the probe steps and the bisection between the last
//! good and the first bad one, each step a whole run judged by the SLO.

use std::path::Path;

use crate::error::{Error, Result};
use crate::folder::run_json::RunInfo;
use crate::gate::threshold;
use crate::metrics::summary::SummaryRow;
use crate::plan;
use crate::run::{self, RunOptions};
use crate::scenario::{self, Source};
use crate::shutdown::{Shutdown, StopReason};

use super::{Options, Settings, StepRow, Vary};

/// The probe steps of a search: the given steps, or `start × factorⁿ`
/// up to `max` (ending at `max` exactly). Client counts are whole and
/// distinct.
pub fn probe_steps(start: f64, factor: f64, max: f64, whole: bool) -> Vec<f64> {
    let round = |v: f64| if whole { v.round().max(1.0) } else { v };
    let mut out: Vec<f64> = Vec::new();
    let mut v = start.min(max);
    loop {
        let r = round(v);
        if out.last().is_none_or(|l| r > *l) {
            out.push(r);
        }
        if v >= max || out.len() >= 64 {
            return out;
        }
        v = (v * factor).min(max);
    }
}

/// The next value to try between the last good and the first bad step;
/// `None` once they are adjacent (whole clients) or within 2%.
pub fn midpoint(good: f64, bad: f64, whole: bool) -> Option<f64> {
    let mid = if whole {
        ((good + bad) / 2.0).floor()
    } else {
        (good + bad) / 2.0
    };
    let close = (bad - good) <= bad * 0.02;
    (mid > good && mid < bad && !close).then_some(mid)
}

/// The search of one group: its scenario table and the steps it ran.
pub(super) struct GroupSearch<'a> {
    pub(super) base: &'a toml::Table,
    pub(super) src: &'a Source,
    pub(super) settings: &'a Settings,
    pub(super) opts: &'a Options,
    pub(super) shutdown: &'a Shutdown,
    pub(super) dir: &'a Path,
    pub(super) group: &'a str,
    pub(super) rows: Vec<StepRow>,
}

/// Where a group's search ended.
pub(super) struct Found {
    /// The largest value that met the SLO.
    pub(super) good: Option<f64>,
    /// The smallest value that broke it: the value, what broke, and
    /// whether the load generator was saturated there.
    pub(super) bad: Option<(f64, String, bool)>,
    /// A step's run was interrupted before the search ended.
    pub(super) interrupted: bool,
}

impl GroupSearch<'_> {
    /// Runs the probe steps up to the first that breaks the SLO, then
    /// bisects between the last good and the first bad one.
    pub(super) async fn probe_and_refine(
        &mut self,
        probes: Vec<f64>,
        whole_numbers: bool,
    ) -> Result<Found> {
        let mut interrupted = false;
        let mut good: Option<f64> = None;
        let mut bad: Option<(f64, String, bool)> = None;
        for v in probes {
            let Some(row) = self.step(v, "probe").await? else {
                interrupted = true;
                break;
            };
            if row.slo_passed {
                good = Some(v);
            } else {
                bad = Some((v, row.broken.clone(), row.loadgen_saturated));
                break;
            }
        }
        // Refine between the last good and the first bad step; a failure
        // caused by a saturated load generator is not refined: the real
        // limit is not measurable from here.
        if let (Some(mut lo), Some((mut hi, _, false))) = (good, bad.clone()) {
            for _ in 0..self.settings.refine {
                let Some(mid) = midpoint(lo, hi, whole_numbers) else {
                    break;
                };
                let Some(row) = self.step(mid, "refine").await? else {
                    interrupted = true;
                    break;
                };
                if row.slo_passed {
                    lo = mid;
                } else {
                    hi = mid;
                    bad = Some((mid, row.broken.clone(), row.loadgen_saturated));
                }
            }
            good = Some(lo);
        }
        Ok(Found {
            good,
            bad,
            interrupted,
        })
    }

    /// Runs one step; `None` when the run was interrupted.
    async fn step(&mut self, value: f64, search: &str) -> Result<Option<StepRow>> {
        let mut t = self.base.clone();
        let (path, v) = match self.settings.vary {
            Vary::Clients => ("groups.0.clients", toml::Value::Integer(value as i64)),
            Vary::Rate => ("publisher.rate", toml::Value::Float(value)),
        };
        scenario::set_path(&mut t, path, v).map_err(Error::Usage)?;
        let text = toml::to_string(&t).map_err(|e| Error::Usage(e.to_string()))?;
        let step_src = Source {
            path: self.src.path.clone(),
            text,
            overridden: true,
        };
        let plan = scenario::parse(&step_src)
            .and_then(|s| plan::build(&s, &step_src, &self.opts.overrides))
            .map_err(|e| match e {
                Error::Scenario { message, .. } | Error::Usage(message) => Error::Usage(format!(
                    "capacity step {}={value}: {message}",
                    self.settings.vary.label()
                )),
                other => other,
            })?;
        let label = format!(
            "{}-{}-{}",
            crate::folder::sanitize(self.group),
            self.settings.vary.label(),
            value
        );
        let out = self.dir.join("steps").join(label);
        let outcome = run::run(
            plan.clone(),
            RunOptions {
                out: Some(out.clone()),
                ..self.opts.run.clone()
            },
            self.shutdown.clone(),
        )
        .await?;
        if matches!(outcome.stop, Some(StopReason::Interrupted)) {
            return Ok(None);
        }
        let Some(row) = outcome.rows.first() else {
            return Ok(None);
        };
        let phase_s = RunInfo::read(&out)
            .ok()
            .and_then(|i| i.phases.first().map(|p| p.end_s - p.start_s))
            .filter(|s| *s > 0.0);
        let mut broken: Vec<String> =
            threshold::evaluate(&self.settings.slo, std::slice::from_ref(row))
                .into_iter()
                .filter(|r| !r.passed)
                .map(|r| match r.value {
                    Some(v) => format!("{}={v} (limit {})", r.column, r.limit),
                    None => format!("{} has no value (limit {})", r.column, r.limit),
                })
                .collect();
        if let Some(StopReason::Fatal(why)) = &outcome.stop {
            broken.push(format!("run failed: {why}"));
        }
        let health = crate::metrics::health::Health {
            cpu_pct: row.client_cpu_pct,
            cores: std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
            lag_p99_ms: row.loadgen_lag_p99_ms,
            slip_p99_ms: row.publish_slip_p99_ms,
        };
        let step = step_row(
            row,
            self.settings.vary,
            value,
            plan.publisher.as_ref().map(|p| p.rate_per_s),
            search,
            broken,
            phase_s,
            health.saturation(),
            &out,
        );
        if self.opts.verbose {
            let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v} ms"));
            eprintln!(
                "capacity: {} {}={value} ({search}): p99 {}, target CPU {}%, {}{}",
                self.group,
                self.settings.vary.label(),
                ms(step.delivery_p99_ms),
                step.target_cpu_pct.map_or("-".into(), |v| format!("{v}")),
                if step.slo_passed {
                    "meets the SLO".to_string()
                } else {
                    format!("breaks it: {}", step.broken)
                },
                if step.loadgen_saturated {
                    format!(" [stampede saturated: {}]", step.saturation)
                } else {
                    String::new()
                }
            );
        }
        self.rows.push(step.clone());
        Ok(Some(step))
    }
}

#[allow(clippy::too_many_arguments)]
fn step_row(
    row: &SummaryRow,
    vary: Vary,
    value: f64,
    rate_per_s: Option<f64>,
    search: &str,
    broken: Vec<String>,
    phase_s: Option<f64>,
    saturation: Vec<String>,
    out: &Path,
) -> StepRow {
    StepRow {
        group: row.group.clone(),
        transport: row.transport.clone(),
        vary: vary.label().into(),
        value,
        clients: row.clients,
        rate_per_s,
        search: search.into(),
        slo_passed: broken.is_empty(),
        broken: broken.join("; "),
        delivery_p50_ms: row.delivery_p50_ms,
        delivery_p99_ms: row.delivery_p99_ms,
        lost: row.lost,
        error_rate: row.error_rate,
        deliveries_per_s: row.deliveries_per_s,
        target_cpu_s: row.target_cpu_s,
        target_cpu_pct: row
            .target_cpu_s
            .zip(phase_s)
            .map(|(c, s)| (c / s * 1000.0).round() / 10.0),
        target_rss_peak_mb: row.target_rss_peak_mb,
        target_connections_peak: row.target_connections_peak,
        target_rss_per_1k_conn_mb: row.target_rss_per_1k_conn_mb,
        target_cpu_ms_per_1k_deliveries: row.target_cpu_ms_per_1k_deliveries,
        client_cpu_pct: row.client_cpu_pct,
        loadgen_lag_p99_ms: row.loadgen_lag_p99_ms,
        publish_slip_p99_ms: row.publish_slip_p99_ms,
        loadgen_saturated: !saturation.is_empty(),
        saturation: saturation.join("; "),
        run_dir: out.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometric_steps_end_at_max() {
        assert_eq!(
            probe_steps(50.0, 2.0, 500.0, true),
            vec![50.0, 100.0, 200.0, 400.0, 500.0]
        );
        assert_eq!(probe_steps(1.0, 1.5, 3.0, true), vec![1.0, 2.0, 3.0]);
        assert_eq!(probe_steps(10.0, 2.0, 5.0, true), vec![5.0]);
        assert_eq!(probe_steps(2.5, 2.0, 10.0, false), vec![2.5, 5.0, 10.0]);
    }

    #[test]
    fn bisection_stops_when_adjacent() {
        assert_eq!(midpoint(80.0, 160.0, true), Some(120.0));
        assert_eq!(midpoint(80.0, 81.0, true), None);
        assert_eq!(midpoint(99.0, 100.0, false), None);
        assert_eq!(midpoint(10.0, 20.0, false), Some(15.0));
    }
}
