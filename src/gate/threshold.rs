//! Thresholds: `"group.column" = "< 50"` (group `*` = every group) on any
//! numeric summary column. Parsed and checked when the plan is built (errors
//! name the scenario place), evaluated against summary rows.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::column_value;
use crate::folder::summary::SummaryRow;

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `==`
    #[serde(rename = "==")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    fn holds(self, v: f64, limit: f64) -> bool {
        match self {
            Op::Lt => v < limit,
            Op::Le => v <= limit,
            Op::Gt => v > limit,
            Op::Ge => v >= limit,
            Op::Eq => v == limit,
            Op::Ne => v != limit,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

/// A validated threshold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Threshold {
    /// Group name, or `None` for `*`.
    pub group: Option<String>,
    /// Summary column.
    pub column: String,
    /// Operator.
    pub op: Op,
    /// Limit.
    pub limit: f64,
    /// Stop the run once it is breached (after `grace`).
    pub abort_on_fail: bool,
    /// Measured time before an early abort may happen.
    #[serde(with = "crate::units::secs", rename = "grace_s")]
    pub grace: Duration,
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{} {} {}",
            self.group.as_deref().unwrap_or("*"),
            self.column,
            self.op.symbol(),
            self.limit
        )
    }
}

/// Parses `key` (`group.column`) and `expr` (`< 50`). `groups` are the
/// scenario's group names. Errors are messages for the caller to place.
pub fn parse(key: &str, expr: &str, groups: &[String]) -> Result<Threshold, String> {
    let (group, column) = key
        .rsplit_once('.')
        .ok_or_else(|| format!("threshold key {key:?} must be `group.column` (or `*.column`)"))?;
    let group = match group {
        "*" => None,
        g if groups.iter().any(|n| n == g) => Some(g.to_string()),
        g => {
            return Err(format!(
                "no group named {g:?} (groups: {})",
                groups.join(", ")
            ))
        }
    };
    if crate::folder::columns::find_numeric(column).is_none() {
        return Err(format!(
            "{column:?} is not a numeric summary column; one of: {}",
            super::columns().join(", ")
        ));
    }
    let expr = expr.trim();
    let (op, rest) = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ]
    .iter()
    .find_map(|(s, op)| expr.strip_prefix(s).map(|r| (*op, r)))
    .ok_or_else(|| format!("threshold {expr:?} must start with <, <=, >, >=, == or !="))?;
    let limit: f64 = rest
        .trim()
        .parse()
        .map_err(|_| format!("threshold limit {:?} is not a number", rest.trim()))?;
    Ok(Threshold {
        group,
        column: column.to_string(),
        op,
        limit,
        abort_on_fail: false,
        grace: Duration::ZERO,
    })
}

pub use crate::folder::run_json::ThresholdResult;

/// Evaluates thresholds against rows. A threshold whose column has no value
/// (no samples) fails: a gate that cannot see must not pass. A `*`
/// threshold skips groups the column cannot apply to (`lost` of request load).
pub fn evaluate(thresholds: &[Threshold], rows: &[SummaryRow]) -> Vec<ThresholdResult> {
    let mut out = Vec::new();
    for t in thresholds {
        for r in rows
            .iter()
            .filter(|r| t.group.as_ref().is_none_or(|g| *g == r.group))
            .filter(|r| t.group.is_some() || super::applies(&t.column, &r.transport))
        {
            let value = column_value(r, &t.column);
            out.push(ThresholdResult {
                threshold: t.to_string(),
                group: r.group.clone(),
                column: t.column.clone(),
                value,
                limit: format!("{} {}", t.op.symbol(), t.limit),
                passed: value.is_some_and(|v| t.op.holds(v, t.limit)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_evaluate() {
        let groups = vec!["sse".to_string(), "poll".to_string()];
        let t = parse("sse.delivery_p99_ms", "< 50", &groups).unwrap();
        assert_eq!(t.to_string(), "sse.delivery_p99_ms < 50");
        assert!(parse("*.lost", "== 0", &groups).unwrap().group.is_none());
        assert!(parse("nope.lost", "== 0", &groups)
            .unwrap_err()
            .contains("no group"));
        assert!(parse("*.latency", "< 1", &groups)
            .unwrap_err()
            .contains("not a numeric summary column"));
        assert!(parse("*.lost", "about 0", &groups).is_err());
        assert!(parse("*.lost", "< x", &groups).is_err());
        assert!(parse("lost", "< 1", &groups).is_err());

        let mut a = SummaryRow::example();
        a.group = "sse".into();
        a.delivery_p99_ms = Some(40.0);
        let mut b = a.clone();
        b.group = "poll".into();
        b.delivery_p99_ms = None;
        let all = parse("*.delivery_p99_ms", "< 50", &groups).unwrap();
        let res = evaluate(&[all], &[a, b]);
        assert!(res[0].passed);
        assert!(!res[1].passed, "no value fails");
    }
}
