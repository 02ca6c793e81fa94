//! Parameter sweeps: a scenario's `[sweep]` names one `--set` style key path
//! and a list of values; the run executes the scenario's phases once per
//! value. Each value is applied to the scenario's TOML exactly as `--set`
//! would be and the result is planned again, so every key `--set` can set is
//! sweepable and every check of [`crate::plan`] applies to every value.
//!
//! A value's groups are renamed `group@value` (e.g. `poll@250ms`): every
//! later stage (summary.csv, timeseries.csv, .hlog files, thresholds,
//! `compare`, `report`) keys on the group name and needs no sweep column.
//! This module owns the expansion and what `run.json` records about it; it
//! runs nothing and writes nothing.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::plan::{self, Overrides, Plan};
use crate::scenario::{self, Scenario, Source};

/// The sweep of a plan: one fully validated plan per value.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPlan {
    /// The key path, as written.
    pub parameter: String,
    /// Per value, in run order.
    pub values: Vec<SweepStep>,
}

/// One value of a sweep and the plan it gives.
#[derive(Debug, Clone, Serialize)]
pub struct SweepStep {
    /// The value as a label (`250ms`, `0.5`, `true`); also the group suffix.
    pub value: String,
    /// Seconds for a duration, the number for a number; else `None`.
    pub value_num: Option<f64>,
    /// Groups of this value: the scenario's name and the renamed one.
    pub groups: Vec<SweepGroup>,
    /// The scenario planned with this value (groups renamed).
    #[serde(skip)]
    pub plan: Plan,
}

pub use crate::folder::run_json::{SweepGroup, SweepInfo, SweepValueInfo};

impl SweepPlan {
    /// The `run.json` record, before any phase has run.
    pub fn info(&self) -> SweepInfo {
        SweepInfo {
            parameter: self.parameter.clone(),
            values: self
                .values
                .iter()
                .map(|s| SweepValueInfo {
                    value: s.value.clone(),
                    value_num: s.value_num,
                    groups: s.groups.clone(),
                    phases: Vec::new(),
                })
                .collect(),
        }
    }
}

/// Separates a group's name from the sweep value in its summary name.
pub const SEPARATOR: char = '@';

/// Plans every value of the scenario's `[sweep]`; `None` without one.
/// `src` is the scenario text after `--set` overrides. Errors name the
/// place of the parameter (a key that cannot be set) or of the value (a
/// value the plan rejects) in the scenario file.
pub fn expand(sc: &Scenario, src: &Source, ov: &Overrides) -> Result<Option<SweepPlan>> {
    let Some(sweep) = &sc.sweep else {
        return Ok(None);
    };
    let sweep = sweep.get_ref();
    let parameter = sweep.parameter.get_ref().trim().to_string();
    let param_span = sweep.parameter.span();
    let first = parameter.split('.').next().unwrap_or_default();
    // The target is started once per run, from the scenario as written:
    // a swept target or built-in delay would silently not change.
    if parameter.is_empty()
        || matches!(
            first,
            "sweep" | "name" | "target" | "builtin_delay" | "faults" | "builtin_cost_per_conn"
        )
    {
        return Err(src.error(
            param_span,
            "sweep.parameter",
            "give a scenario key path such as \"groups.poll.interval\" or \"publisher.rate\" \
             (not `name`, `sweep`, `target` or `builtin_delay`: one run has one target)",
        ));
    }
    let values = sweep.values.get_ref();
    if values.is_empty() {
        return Err(src.error(
            sweep.values.span(),
            "sweep.values",
            "give at least one value",
        ));
    }
    let mut table: toml::Table = toml::from_str(&src.text).map_err(|e| Error::Scenario {
        at: src.path.clone(),
        message: e.message().trim().to_string(),
    })?;
    table.remove("sweep");
    let mut steps: Vec<SweepStep> = Vec::with_capacity(values.len());
    for v in values {
        let value_err = |m: &str| src.error(v.span(), "sweep.values", m);
        let label = label(v.get_ref()).map_err(|m| value_err(&m))?;
        // Labels become group names and, sanitized, file names.
        let file_key = crate::folder::sanitize(&label);
        if steps
            .iter()
            .any(|s| crate::folder::sanitize(&s.value) == file_key)
        {
            return Err(value_err(&format!(
                "{label:?} repeats an earlier value (or reads the same in file names)"
            )));
        }
        let mut t = table.clone();
        scenario::set_path(&mut t, &parameter, v.get_ref().clone())
            .map_err(|m| src.error(param_span.clone(), "sweep.parameter", &m))?;
        let text = toml::to_string(&t).map_err(|e| value_err(&e.to_string()))?;
        let step_src = Source {
            path: src.path.clone(),
            text,
            overridden: true,
        };
        let planned = scenario::parse(&step_src).and_then(|s| plan::build(&s, &step_src, ov));
        let mut step = planned.map_err(|e| match e {
            // The inner place is in generated text: name the user's place.
            Error::Scenario { message, .. } | Error::Usage(message) => {
                let span = if message.contains("unknown field") {
                    param_span.clone()
                } else {
                    v.span()
                };
                Error::Scenario {
                    at: src.place(span.start),
                    message: format!("`sweep`: {parameter} = {label}: {message}"),
                }
            }
            other => other,
        })?;
        let groups = rename(&mut step, &label);
        steps.push(SweepStep {
            value_num: number(v.get_ref()),
            value: label,
            groups,
            plan: step,
        });
    }
    Ok(Some(SweepPlan {
        parameter,
        values: steps,
    }))
}

/// Suffixes every group (and the thresholds naming one) with the value.
fn rename(step: &mut Plan, label: &str) -> Vec<SweepGroup> {
    let suffixed = |g: &str| format!("{g}{SEPARATOR}{label}");
    for t in &mut step.thresholds {
        if let Some(g) = &mut t.group {
            *g = suffixed(g);
        }
    }
    step.groups
        .iter_mut()
        .map(|g| {
            let renamed = suffixed(&g.name);
            let base = std::mem::replace(&mut g.name, renamed.clone());
            SweepGroup {
                group: base,
                summary_group: renamed,
            }
        })
        .collect()
}

/// The label of a value: strings as written, numbers as Rust prints them
/// (`0.5`, `2`), booleans as `true`/`false`.
fn label(v: &toml::Value) -> std::result::Result<String, String> {
    let s = match v {
        toml::Value::String(s) => s.trim().to_string(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) if f.is_finite() => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        _ => return Err("give a string, number or boolean".into()),
    };
    if s.is_empty() {
        return Err("a value may not be empty".into());
    }
    Ok(s)
}

/// A value's position on a numeric axis: seconds for a duration, the
/// number for a number (also one written as a string).
pub fn number(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) if f.is_finite() => Some(*f),
        toml::Value::String(s) => {
            let s = s.trim();
            s.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .or_else(|| humantime::parse_duration(s).ok().map(|d| d.as_secs_f64()))
        }
        _ => None,
    }
}

/// Keeps one copy of each threshold: the steps' `*` thresholds are equal.
pub fn merged_thresholds(sweep: &SweepPlan) -> Vec<crate::gate::threshold::Threshold> {
    let mut out: Vec<crate::gate::threshold::Threshold> = Vec::new();
    for t in sweep.values.iter().flat_map(|s| &s.plan.thresholds) {
        if !out.iter().any(|o| o.to_string() == t.to_string()) {
            out.push(t.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_numbers() {
        let s = |t: &str| toml::Value::String(t.into());
        assert_eq!(label(&s("250ms")).as_deref(), Ok("250ms"));
        assert_eq!(label(&toml::Value::Float(0.5)).as_deref(), Ok("0.5"));
        assert_eq!(label(&toml::Value::Integer(50)).as_deref(), Ok("50"));
        assert!(label(&toml::Value::Array(vec![])).is_err());
        assert_eq!(number(&s("250ms")), Some(0.25));
        assert_eq!(number(&s("1m")), Some(60.0));
        assert_eq!(number(&s("7")), Some(7.0));
        assert_eq!(number(&toml::Value::Integer(2)), Some(2.0));
        assert_eq!(number(&s("fast")), None);
        assert_eq!(number(&toml::Value::Boolean(true)), None);
    }
}
