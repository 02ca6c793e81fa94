//! Baseline comparison: per group and metric, baseline vs current, with the
//! metric's direction (latency and errors up are worse, throughput up is
//! better), an allowed relative regression, an absolute noise floor, and —
//! when both sides were repeated — the runs' own spread, so noise is not
//! called a regression.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::baseline::Side;
use super::column_value;
use crate::error::{Error, Result};
use crate::folder::summary::SummaryRow;

/// Which way is worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Latency, errors, cost: up is worse.
    LowerIsBetter,
    /// Throughput: down is worse.
    HigherIsBetter,
}

/// How one metric is judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Summary column.
    pub column: String,
    /// Which way is worse.
    pub direction: Direction,
    /// Allowed worsening as a fraction of the baseline (0.1 = 10%).
    pub max_regression: f64,
    /// Changes smaller than this (in the column's unit) are noise.
    pub noise_floor: f64,
}

fn rule(column: &str, direction: Direction, max_regression: f64, noise_floor: f64) -> Rule {
    Rule {
        column: column.into(),
        direction,
        max_regression,
        noise_floor,
    }
}

/// The metrics compared by default and how. Floors were chosen from
/// repeated runs on a shared 2-core machine: p99 of a few ms moves by a
/// few ms run to run; CPU seconds by a few tenths.
pub fn default_rules() -> Vec<Rule> {
    use Direction::*;
    vec![
        rule("delivery_p50_ms", LowerIsBetter, 0.10, 5.0),
        rule("delivery_p99_ms", LowerIsBetter, 0.10, 10.0),
        rule("request_p99_ms", LowerIsBetter, 0.10, 10.0),
        rule("lost", LowerIsBetter, 0.0, 0.0),
        rule("duplicated", LowerIsBetter, 0.0, 0.0),
        rule("errors", LowerIsBetter, 0.0, 0.0),
        rule("error_rate", LowerIsBetter, 0.10, 0.001),
        rule("deliveries_per_s", HigherIsBetter, 0.10, 1.0),
        rule("requests_per_s", HigherIsBetter, 0.10, 50.0),
        rule("requests_per_delivery", LowerIsBetter, 0.10, 0.01),
        rule("bytes_per_delivery", LowerIsBetter, 0.10, 8.0),
        rule("target_cpu_s", LowerIsBetter, 0.30, 0.5),
        rule("target_rss_peak_mb", LowerIsBetter, 0.30, 5.0),
    ]
}

/// Per-metric overrides file (TOML).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// Per column.
    #[serde(default)]
    pub metrics: BTreeMap<String, RuleOverride>,
}

/// Override of one metric's rule.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleOverride {
    /// e.g. `"20%"`.
    pub max_regression: Option<String>,
    /// In the column's unit.
    pub noise_floor: Option<f64>,
    /// `"lower-is-better"` or `"higher-is-better"` (needed for new columns).
    pub direction: Option<Direction>,
    /// `false` drops the metric.
    pub enabled: Option<bool>,
}

/// Parses `"10%"` or `"0.1"` into a fraction.
pub fn parse_fraction(s: &str) -> std::result::Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("{s:?} is not a percentage like 10%"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{s:?} must be a non-negative percentage"))
    }
}

/// The rules in force: defaults, then `--max-regression` for all, then the
/// file's per-metric overrides.
pub fn rules(global: Option<f64>, file: Option<&Path>) -> Result<Vec<Rule>> {
    let mut rules = default_rules();
    if let Some(g) = global {
        for r in &mut rules {
            r.max_regression = g;
        }
    }
    let Some(path) = file else { return Ok(rules) };
    let text = std::fs::read_to_string(path).map_err(|source| Error::ScenarioRead {
        path: path.to_path_buf(),
        source,
    })?;
    let src = crate::scenario::Source {
        path: path.display().to_string(),
        text,
        overridden: false,
    };
    let parsed: RulesFile = toml::from_str(&src.text).map_err(|e| Error::Scenario {
        at: e.span().map_or(src.path.clone(), |s| src.place(s.start)),
        message: e.message().to_string(),
    })?;
    let bad = |m: String| Error::Usage(format!("{}: {m}", path.display()));
    for (column, o) in parsed.metrics {
        if crate::folder::columns::find_numeric(&column).is_none() {
            return Err(bad(format!("{column:?} is not a numeric summary column")));
        }
        if o.enabled == Some(false) {
            rules.retain(|r| r.column != column);
            continue;
        }
        let idx = match rules.iter().position(|r| r.column == column) {
            Some(i) => i,
            None => {
                let direction = o
                    .direction
                    .ok_or_else(|| bad(format!("{column}: new metric needs a `direction`")))?;
                rules.push(rule(&column, direction, global.unwrap_or(0.1), 0.0));
                rules.len() - 1
            }
        };
        let r = &mut rules[idx];
        if let Some(m) = &o.max_regression {
            r.max_regression = parse_fraction(m).map_err(|e| bad(format!("{column}: {e}")))?;
        }
        if let Some(f) = o.noise_floor {
            r.noise_floor = f;
        }
        if let Some(d) = o.direction {
            r.direction = d;
        }
    }
    Ok(rules)
}

/// Verdict for one metric of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Within the allowed change.
    Ok,
    /// Better beyond the allowed change.
    Improved,
    /// Worse beyond the allowed change, the noise floor and the spread.
    Regressed,
    /// The group or value is missing on one side.
    Missing,
}

/// One compared metric.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Group.
    pub group: String,
    /// Column.
    pub metric: String,
    /// Baseline value.
    pub baseline: Option<f64>,
    /// Current value.
    pub current: Option<f64>,
    /// `current - baseline`.
    pub change: Option<f64>,
    /// Change relative to the baseline (0.1 = +10%).
    pub change_rel: Option<f64>,
    /// Allowed worsening, relative.
    pub max_regression: f64,
    /// Absolute noise floor.
    pub noise_floor: f64,
    /// Largest run-to-run spread of the two sides (0 without repeats).
    pub spread: f64,
    /// Verdict.
    pub verdict: Verdict,
}

fn spread(repeats: &[Vec<SummaryRow>], group: &str, column: &str) -> Option<f64> {
    if repeats.len() < 2 {
        return None;
    }
    let vals: Vec<f64> = repeats
        .iter()
        .filter_map(|rows| rows.iter().find(|r| r.group == group))
        .filter_map(|r| column_value(r, column))
        .collect();
    let max = vals.iter().copied().fold(f64::MIN, f64::max);
    let min = vals.iter().copied().fold(f64::MAX, f64::min);
    (vals.len() >= 2).then_some(max - min)
}

/// Compares every group of the baseline with the current side.
pub fn compare(baseline: &Side, current: &Side, rules: &[Rule]) -> Vec<Comparison> {
    let mut out = Vec::new();
    for b in &baseline.rows {
        let c = current.rows.iter().find(|r| r.group == b.group);
        for rule in rules {
            // A column one side's file lacks is not "empty": say so.
            let absent = |side: &Side| side.missing_columns.iter().any(|m| *m == rule.column);
            let schema_gap = absent(baseline) || absent(current);
            let bv = column_value(b, &rule.column);
            let cv = c.and_then(|c| column_value(c, &rule.column));
            let mut cmp = Comparison {
                group: b.group.clone(),
                metric: rule.column.clone(),
                baseline: bv,
                current: cv,
                change: None,
                change_rel: None,
                max_regression: rule.max_regression,
                noise_floor: rule.noise_floor,
                spread: 0.0,
                verdict: Verdict::Missing,
            };
            match (bv, cv) {
                (Some(bv), Some(cv)) => {
                    let change = cv - bv;
                    let worse = match rule.direction {
                        Direction::LowerIsBetter => change,
                        Direction::HigherIsBetter => -change,
                    };
                    let rel = |d: f64| {
                        if bv == 0.0 {
                            if d == 0.0 {
                                0.0
                            } else {
                                f64::INFINITY.copysign(d)
                            }
                        } else {
                            d / bv.abs()
                        }
                    };
                    let both_repeated = baseline.repeats.len() >= 2 && current.repeats.len() >= 2;
                    let spread = if both_repeated {
                        spread(&baseline.repeats, &b.group, &rule.column)
                            .unwrap_or(0.0)
                            .max(spread(&current.repeats, &b.group, &rule.column).unwrap_or(0.0))
                    } else {
                        0.0
                    };
                    let margin = rule.noise_floor.max(spread);
                    cmp.change = Some(change);
                    cmp.change_rel = (bv != 0.0 || change == 0.0).then(|| rel(change));
                    cmp.spread = spread;
                    cmp.verdict = if worse > margin && rel(worse) > rule.max_regression {
                        Verdict::Regressed
                    } else if -worse > margin && rel(-worse) > rule.max_regression {
                        Verdict::Improved
                    } else {
                        Verdict::Ok
                    };
                }
                // A value that is empty on both sides (e.g. no requests for
                // a streaming group) is not comparable, and not a finding.
                (None, None) if c.is_some() && !schema_gap => continue,
                _ if schema_gap => {
                    cmp.baseline = bv.filter(|_| !absent(baseline));
                    cmp.current = cv.filter(|_| !absent(current));
                }
                _ => {}
            }
            out.push(cmp);
        }
    }
    out
}

/// Refuses comparing different scenarios.
pub fn check_comparable(baseline: &Side, current: &Side) -> Result<()> {
    if baseline.scenario != current.scenario {
        return Err(Error::Usage(format!(
            "cannot compare scenario {:?} with scenario {:?}",
            baseline.scenario, current.scenario
        )));
    }
    Ok(())
}

/// A line naming the columns each side's summary lacks (`None`: none).
pub fn missing_columns_note(baseline: &Side, current: &Side) -> Option<String> {
    let part = |name: &str, side: &Side| {
        (!side.missing_columns.is_empty()).then(|| {
            format!(
                "the {name} has no column {} (an older or renamed schema: not read as empty)",
                side.missing_columns.join(", ")
            )
        })
    };
    let parts: Vec<String> = [part("baseline", baseline), part("current run", current)]
        .into_iter()
        .flatten()
        .collect();
    (!parts.is_empty()).then(|| format!("note: {}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(p99: f64, repeats: &[f64]) -> Side {
        let row = |v: f64| {
            let mut r = SummaryRow::example();
            r.group = "g".into();
            r.delivery_p99_ms = Some(v);
            r.deliveries_per_s = Some(100.0);
            r
        };
        Side {
            scenario: "s".into(),
            stampede_version: "0".into(),
            measured_at: String::new(),
            rows: vec![row(p99)],
            repeats: repeats.iter().map(|v| vec![row(*v)]).collect(),
            thresholds: vec![],
            missing_columns: vec![],
        }
    }

    fn verdict(b: &Side, c: &Side) -> Verdict {
        let rules = rules(None, None).unwrap();
        compare(b, c, &rules)
            .into_iter()
            .find(|x| x.metric == "delivery_p99_ms")
            .unwrap()
            .verdict
    }

    #[test]
    fn direction_floor_and_spread() {
        assert_eq!(
            verdict(&side(100.0, &[]), &side(130.0, &[])),
            Verdict::Regressed
        );
        assert_eq!(
            verdict(&side(100.0, &[]), &side(70.0, &[])),
            Verdict::Improved
        );
        // 0.5 -> 0.7 ms is +40% but inside the 10 ms floor.
        assert_eq!(verdict(&side(0.5, &[]), &side(0.7, &[])), Verdict::Ok);
        // Inside the spread of repeated runs.
        assert_eq!(
            verdict(
                &side(100.0, &[80.0, 100.0, 125.0]),
                &side(120.0, &[110.0, 120.0, 130.0])
            ),
            Verdict::Ok
        );
        assert_eq!(parse_fraction("10%").unwrap(), 0.1);
        assert!(parse_fraction("-5%").is_err());
        let mut gone = side(100.0, &[]);
        gone.rows[0].group = "other".into();
        assert_eq!(verdict(&side(100.0, &[]), &gone), Verdict::Missing);
    }

    #[test]
    fn a_column_missing_from_a_file_is_named_not_empty() {
        let mut old = side(100.0, &[]);
        old.missing_columns = vec!["delivery_p99_ms"];
        old.rows[0].delivery_p99_ms = None;
        assert_eq!(verdict(&old, &side(100.0, &[])), Verdict::Missing);
        let note = missing_columns_note(&old, &side(1.0, &[])).unwrap();
        assert!(
            note.contains("baseline has no column delivery_p99_ms"),
            "{note}"
        );
        assert!(missing_columns_note(&side(1.0, &[]), &side(1.0, &[])).is_none());
    }
}
