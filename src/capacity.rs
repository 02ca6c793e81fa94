//! `stampede capacity`: how many clients (or events per second) of each
//! transport group the target carries within an SLO. Per group, it steps the
//! load up geometrically (or through given steps), runs each step as a whole
//! run of that group alone (its own run folder, a fresh reference server),
//! stops at the first step that breaks the SLO, then bisects between the
//! last good and the first bad step. A step where stampede itself was
//! saturated ([`crate::metrics::health`]) is flagged, and a failure there is
//! reported as the load generator's limit, never as the target's.
//!
//! Steps are planned exactly like `--set` overrides and sweeps: the scenario
//! text is rewritten (`groups.0.clients = N`) and planned again, so every
//! check of [`crate::plan`] applies to every step. This module owns the
//! search; its files' schema is [`crate::folder::capacity`]; the chart is [`crate::report::capacity_chart`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::folder::run_json::RunInfo;
use crate::gate::threshold::{self, Threshold};
use crate::metrics::summary::SummaryRow;
use crate::plan::{self, Overrides};
use crate::run::{self, RunOptions};
use crate::scenario::{self, Scenario, Source};
use crate::shutdown::{Shutdown, StopReason};

/// What a capacity search varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Vary {
    /// The group's `clients`.
    Clients,
    /// The publisher's `rate` (events per second), clients fixed.
    Rate,
}

impl Vary {
    fn label(self) -> &'static str {
        match self {
            Vary::Clients => "clients",
            Vary::Rate => "rate",
        }
    }
}

/// Settings of a search: the scenario's `[capacity]` table, then flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The SLO terms (any numeric summary column).
    pub slo: Vec<Threshold>,
    /// The SLO as written.
    pub slo_text: String,
    /// Clients or rate.
    pub vary: Vary,
    /// First step (default: the group's clients, or the publisher's rate).
    pub start: Option<f64>,
    /// Growth per step (default 2).
    pub factor: f64,
    /// Largest step tried.
    pub max: f64,
    /// Explicit steps instead of start × factorⁿ.
    pub steps: Option<Vec<f64>>,
    /// Bisection rounds between the last good and the first bad step.
    pub refine: u32,
    /// Groups to search (default: all), by name.
    pub groups: Vec<String>,
}

/// Command-line settings (each overrides the scenario's `[capacity]`).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--slo`.
    pub slo: Option<String>,
    /// `--vary`.
    pub vary: Option<Vary>,
    /// `--start`.
    pub start: Option<f64>,
    /// `--factor`.
    pub factor: Option<f64>,
    /// `--max`.
    pub max: Option<f64>,
    /// `--steps`.
    pub steps: Option<Vec<f64>>,
    /// `--refine`.
    pub refine: Option<u32>,
    /// `--group`.
    pub groups: Vec<String>,
}

/// Parses an SLO: comma-separated `column<limit` terms, e.g.
/// `delivery_p99_ms<100,lost==0,error_rate<0.001`.
pub fn parse_slo(text: &str) -> std::result::Result<Vec<Threshold>, String> {
    let mut out = Vec::new();
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let at = term.find(['<', '>', '=', '!']).ok_or_else(|| {
            format!("SLO term {term:?} needs an operator, e.g. delivery_p99_ms<100")
        })?;
        let (column, expr) = term.split_at(at);
        out.push(threshold::parse(
            &format!("*.{}", column.trim()),
            expr,
            &[],
        )?);
    }
    if out.is_empty() {
        return Err("the SLO is empty; write e.g. \"delivery_p99_ms<100,lost==0\"".into());
    }
    Ok(out)
}

impl Settings {
    /// The settings of `sc`'s `[capacity]` table overridden by `flags`;
    /// scenario errors name their place.
    pub fn resolve(sc: &Scenario, src: &Source, flags: &Flags) -> Result<Settings> {
        let table = sc.capacity.as_ref().map(|c| c.get_ref());
        let (slo_text, slo) = match (&flags.slo, table.and_then(|t| t.slo.as_ref())) {
            (Some(s), _) => (
                s.clone(),
                parse_slo(s).map_err(|m| Error::Usage(format!("--slo: {m}")))?,
            ),
            (None, Some(s)) => (
                s.get_ref().clone(),
                parse_slo(s.get_ref()).map_err(|m| src.error(s.span(), "capacity.slo", &m))?,
            ),
            (None, None) => {
                return Err(Error::Usage(
                    "capacity needs an SLO: --slo \"delivery_p99_ms<100,lost==0\" (or `slo` in [capacity])"
                        .into(),
                ))
            }
        };
        let num = |flag: Option<f64>,
                   spanned: Option<&toml::Spanned<f64>>,
                   key: &str,
                   ok: &dyn Fn(f64) -> bool,
                   need: &str|
         -> Result<Option<f64>> {
            match (flag, spanned) {
                (Some(v), _) if !ok(v) => Err(Error::Usage(format!("--{key}: {need}"))),
                (Some(v), _) => Ok(Some(v)),
                (None, Some(s)) if !ok(*s.get_ref()) => {
                    Err(src.error(s.span(), &format!("capacity.{key}"), need))
                }
                (None, Some(s)) => Ok(Some(*s.get_ref())),
                (None, None) => Ok(None),
            }
        };
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let start = num(
            flags.start,
            table.and_then(|t| t.start.as_ref()),
            "start",
            &positive,
            "must be greater than zero",
        )?;
        let factor = num(
            flags.factor,
            table.and_then(|t| t.factor.as_ref()),
            "factor",
            &|v| v.is_finite() && v > 1.0 && v <= 100.0,
            "must be in (1, 100]",
        )?
        .unwrap_or(2.0);
        let max = num(
            flags.max,
            table.and_then(|t| t.max.as_ref()),
            "max",
            &positive,
            "must be greater than zero",
        )?
        .unwrap_or(100_000.0);
        let vary = match (flags.vary, table.and_then(|t| t.vary.as_ref())) {
            (Some(v), _) => v,
            (None, Some(v)) => match v.get_ref().as_str() {
                "clients" => Vary::Clients,
                "rate" => Vary::Rate,
                _ => {
                    return Err(src.error(
                        v.span(),
                        "capacity.vary",
                        "must be \"clients\" or \"rate\"",
                    ))
                }
            },
            (None, None) => Vary::Clients,
        };
        let steps = match (&flags.steps, table.and_then(|t| t.steps.as_ref())) {
            (Some(s), _) => {
                Some(check_steps(s).map_err(|m| Error::Usage(format!("--steps: {m}")))?)
            }
            (None, Some(s)) => Some(
                check_steps(s.get_ref()).map_err(|m| src.error(s.span(), "capacity.steps", &m))?,
            ),
            (None, None) => None,
        };
        let refine = flags
            .refine
            .or(table.and_then(|t| t.refine.as_ref().map(|r| *r.get_ref())))
            .unwrap_or(3)
            .min(20);
        Ok(Settings {
            slo,
            slo_text,
            vary,
            start,
            factor,
            max,
            steps,
            refine,
            groups: flags.groups.clone(),
        })
    }
}

fn check_steps(s: &[f64]) -> std::result::Result<Vec<f64>, String> {
    if s.is_empty() || s.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return Err("give positive numbers".into());
    }
    if s.windows(2).any(|w| w[1] <= w[0]) {
        return Err("give the steps in increasing order".into());
    }
    Ok(s.to_vec())
}

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

pub use crate::folder::capacity::{GroupCapacity, StepRow};

/// The whole search.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The capacity folder.
    pub dir: PathBuf,
    /// Every step.
    pub steps: Vec<StepRow>,
    /// Per group.
    pub groups: Vec<GroupCapacity>,
    /// Documented exit code.
    pub exit_code: i32,
}

/// How to run the search.
#[derive(Debug, Clone)]
pub struct Options {
    /// The scenario file as given.
    pub scenario_file: String,
    /// `--duration`, `--target`, `--profile`, `--target-pid`.
    pub overrides: Overrides,
    /// Run options of every step (`out` is the capacity folder).
    pub run: RunOptions,
    /// A line on stderr per step.
    pub verbose: bool,
}

/// Runs the search for every selected group of the scenario.
pub async fn search(
    sc: &Scenario,
    src: &Source,
    settings: &Settings,
    opts: &Options,
    shutdown: Shutdown,
) -> Result<Outcome> {
    // The scenario as written must plan on its own: its errors keep their places.
    let whole = plan::build(sc, src, &opts.overrides)?;
    // A rate search sets `publisher.rate`, which stages would override
    // after their first instant: the steps would not measure their rate.
    if settings.vary == Vary::Rate
        && whole
            .publisher
            .as_ref()
            .is_some_and(|p| !p.stages.is_empty())
    {
        return Err(Error::Usage(
            "capacity: vary = \"rate\" sets publisher.rate, and [publisher] stages would override it; remove the stages for a rate search".into(),
        ));
    }
    let mut table: toml::Table = toml::from_str(&src.text).map_err(|e| Error::Scenario {
        at: src.path.clone(),
        message: e.message().trim().to_string(),
    })?;
    // A step is one group alone, judged by the SLO only.
    for key in ["capacity", "sweep", "thresholds", "mode"] {
        table.remove(key);
    }
    let all_groups = table
        .remove("groups")
        .and_then(|g| match g {
            toml::Value::Array(a) => Some(a),
            _ => None,
        })
        .unwrap_or_default();
    for g in &settings.groups {
        if !whole.groups.iter().any(|p| p.name == *g) {
            return Err(Error::Usage(format!(
                "--group {g}: no such group (groups: {})",
                whole
                    .groups
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let dir = opts.run.out.clone().unwrap_or_else(|| {
        crate::folder::default_run_dir(
            &opts.run.results_root,
            &format!("{}-capacity", whole.name),
            std::time::SystemTime::now(),
        )
    });
    std::fs::create_dir_all(&dir).map_err(|e| Error::output(&dir, e))?;

    let mut steps: Vec<StepRow> = Vec::new();
    let mut groups = Vec::new();
    let mut interrupted = false;
    for (gi, gp) in whole.groups.iter().enumerate() {
        if !settings.groups.is_empty() && !settings.groups.contains(&gp.name) {
            continue;
        }
        if interrupted || shutdown.is_stopped() {
            break;
        }
        let Some(group_value) = all_groups.get(gi).cloned() else {
            continue;
        };
        let mut base = table.clone();
        base.insert("groups".into(), toml::Value::Array(vec![group_value]));
        let default_start = match settings.vary {
            Vary::Clients => gp.clients as f64,
            Vary::Rate => whole.publisher.as_ref().map_or(1.0, |p| p.rate_per_s),
        };
        let whole_numbers = settings.vary == Vary::Clients;
        let probes = match &settings.steps {
            Some(s) => s.clone(),
            None => probe_steps(
                settings.start.unwrap_or(default_start),
                settings.factor,
                settings.max,
                whole_numbers,
            ),
        };
        let mut searcher = GroupSearch {
            base: &base,
            src,
            settings,
            opts,
            shutdown: &shutdown,
            dir: &dir,
            group: &gp.name,
            rows: Vec::new(),
        };
        let mut good: Option<f64> = None;
        let mut bad: Option<(f64, String, bool)> = None;
        for v in probes {
            let Some(row) = searcher.step(v, "probe").await? else {
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
            for _ in 0..settings.refine {
                let Some(mid) = midpoint(lo, hi, whole_numbers) else {
                    break;
                };
                let Some(row) = searcher.step(mid, "refine").await? else {
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
        let limited_by = match &bad {
            _ if interrupted => "interrupted",
            Some((_, _, true)) => "load generator",
            Some(_) => "target",
            None => "max",
        };
        let n = searcher.rows.len();
        let transport = gp.transport.label().to_string();
        steps.extend(searcher.rows);
        groups.push(GroupCapacity {
            group: gp.name.clone(),
            transport,
            vary: settings.vary.label().into(),
            max_sustainable: good,
            first_failing: bad.as_ref().map(|b| b.0),
            broken: bad.map(|b| b.1).unwrap_or_default(),
            limited_by: limited_by.into(),
            steps: n,
        });
        crate::folder::capacity::write(&dir, &steps, &groups)?;
    }
    crate::folder::capacity::write(&dir, &steps, &groups)?;
    let chart = crate::report::capacity_chart::svg(&steps, &settings.slo)?;
    let charts = dir.join("charts");
    std::fs::create_dir_all(&charts).map_err(|e| Error::output(&charts, e))?;
    let path = charts.join("capacity.svg");
    std::fs::write(&path, chart).map_err(|e| Error::output(&path, e))?;
    let exit_code = if interrupted || shutdown.is_stopped() {
        crate::exit::INTERRUPTED
    } else if groups.iter().any(|g| g.max_sustainable.is_none()) {
        crate::exit::THRESHOLD
    } else {
        crate::exit::OK
    };
    Ok(Outcome {
        dir,
        steps,
        groups,
        exit_code,
    })
}

struct GroupSearch<'a> {
    base: &'a toml::Table,
    src: &'a Source,
    settings: &'a Settings,
    opts: &'a Options,
    shutdown: &'a Shutdown,
    dir: &'a Path,
    group: &'a str,
    rows: Vec<StepRow>,
}

impl GroupSearch<'_> {
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
                dashboard: None,
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

/// The per-group answer as a plain-text table.
pub fn table(groups: &[GroupCapacity], slo: &str) -> String {
    let mut s = format!("capacity within SLO {slo}:\n");
    s.push_str(&format!(
        "{:<16} {:<10} {:>14} {:>14}  {:<15} broken\n",
        "group", "transport", "max ok", "first failing", "limited by"
    ));
    let v = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v}"));
    for g in groups {
        s.push_str(&format!(
            "{:<16} {:<10} {:>14} {:>14}  {:<15} {}\n",
            g.group,
            g.transport,
            v(g.max_sustainable),
            v(g.first_failing),
            g.limited_by,
            g.broken
        ));
    }
    s
}

/// `--steps 10,20,40`.
pub fn parse_steps(s: &str) -> std::result::Result<Vec<f64>, String> {
    s.split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| format!("{v:?} is not a number"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_terms() {
        let t = parse_slo("delivery_p99_ms<100, lost==0,error_rate<0.001").unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].to_string(), "*.delivery_p99_ms < 100");
        assert_eq!(t[1].to_string(), "*.lost == 0");
        assert!(parse_slo("delivery_p99_ms").is_err());
        assert!(parse_slo("latency<3")
            .unwrap_err()
            .contains("not a numeric"));
        assert!(parse_slo(" ").is_err());
    }

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
