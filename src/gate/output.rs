//! What the gate prints and writes: an aligned terminal table, JUnit XML
//! (one testcase per threshold and per compared metric), Markdown for job
//! summaries and pull-request comments, and CSV.

use std::fmt::Write as _;
use std::path::Path;

use super::compare::{Comparison, Verdict};
use super::threshold::ThresholdResult;
use crate::error::{Error, Result};

fn num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.is_infinite() => if v > 0.0 { "+inf" } else { "-inf" }.into(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
    }
}

fn pct(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.is_infinite() => if v > 0.0 { "+inf%" } else { "-inf%" }.into(),
        Some(v) => format!("{:+.1}%", v * 100.0),
    }
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "ok",
        Verdict::Improved => "improved",
        Verdict::Regressed => "REGRESSED",
        Verdict::Missing => "MISSING",
    }
}

/// True when the comparison is a failure for CI.
pub fn is_failure(c: &Comparison) -> bool {
    matches!(c.verdict, Verdict::Regressed | Verdict::Missing)
}

fn failure_message(c: &Comparison) -> String {
    match c.verdict {
        Verdict::Missing if c.baseline.is_none() && c.current.is_some() => format!("{}.{}: missing in baseline (current {})", c.group, c.metric, num(c.current)),
        Verdict::Missing => format!("{}.{}: missing in current (baseline {})", c.group, c.metric, num(c.baseline)),
        _ => format!(
            "{}.{} regressed: current {}, baseline {} ({}), allowed {} beyond a noise floor of {}{}",
            c.group,
            c.metric,
            num(c.current),
            num(c.baseline),
            pct(c.change_rel),
            pct(Some(c.max_regression)),
            num(Some(c.noise_floor)),
            if c.spread > 0.0 { format!(" and a run-to-run spread of {}", num(Some(c.spread))) } else { String::new() }
        ),
    }
}

/// The terminal table.
pub fn table(thresholds: &[ThresholdResult], comparisons: &[Comparison]) -> String {
    let mut s = String::new();
    if !thresholds.is_empty() {
        let _ = writeln!(
            s,
            "{:<14} {:<24} {:>12} {:>12} result",
            "group", "threshold", "value", "limit"
        );
        for t in thresholds {
            let _ = writeln!(
                s,
                "{:<14} {:<24} {:>12} {:>12} {}",
                t.group,
                t.column,
                num(t.value),
                t.limit,
                if t.passed { "pass" } else { "FAIL" }
            );
        }
        s.push('\n');
    }
    if !comparisons.is_empty() {
        let _ = writeln!(
            s,
            "{:<14} {:<24} {:>12} {:>12} {:>12} {:>9}  verdict",
            "group", "metric", "baseline", "current", "change", "change%"
        );
        for c in comparisons {
            let _ = writeln!(
                s,
                "{:<14} {:<24} {:>12} {:>12} {:>12} {:>9}  {}",
                c.group,
                c.metric,
                num(c.baseline),
                num(c.current),
                num(c.change),
                pct(c.change_rel),
                verdict(c.verdict)
            );
        }
    }
    s
}

// XML escaping is five replacements: not worth a dependency.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// JUnit XML: suites `thresholds` and `compare`.
pub fn junit(thresholds: &[ThresholdResult], comparisons: &[Comparison]) -> String {
    let t_fail = thresholds.iter().filter(|t| !t.passed).count();
    let c_fail = comparisons.iter().filter(|c| is_failure(c)).count();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"stampede\" tests=\"{}\" failures=\"{}\">",
        thresholds.len() + comparisons.len(),
        t_fail + c_fail
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"thresholds\" tests=\"{}\" failures=\"{t_fail}\" errors=\"0\">",
        thresholds.len()
    );
    for t in thresholds {
        let name = xml(&format!("{}.{} {}", t.group, t.column, t.limit));
        let _ = write!(
            s,
            "    <testcase classname=\"stampede.thresholds.{}\" name=\"{name}\"",
            xml(&t.group)
        );
        if t.passed {
            s.push_str("/>\n");
        } else {
            let msg = xml(&format!(
                "{}.{} = {}, limit {}",
                t.group,
                t.column,
                num(t.value),
                t.limit
            ));
            let _ = writeln!(s, ">\n      <failure type=\"threshold\" message=\"{msg}\">{msg}</failure>\n    </testcase>");
        }
    }
    s.push_str("  </testsuite>\n");
    let _ = writeln!(
        s,
        "  <testsuite name=\"compare\" tests=\"{}\" failures=\"{c_fail}\" errors=\"0\">",
        comparisons.len()
    );
    for c in comparisons {
        let name = xml(&format!("{}.{}", c.group, c.metric));
        let _ = write!(
            s,
            "    <testcase classname=\"stampede.compare.{}\" name=\"{name}\"",
            xml(&c.group)
        );
        if is_failure(c) {
            let msg = xml(&failure_message(c));
            let _ = writeln!(s, ">\n      <failure type=\"regression\" message=\"{msg}\">{msg}</failure>\n    </testcase>");
        } else {
            s.push_str("/>\n");
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

/// Markdown: failures first, then the full table.
pub fn markdown(title: &str, thresholds: &[ThresholdResult], comparisons: &[Comparison]) -> String {
    let failed_t: Vec<_> = thresholds.iter().filter(|t| !t.passed).collect();
    let failed_c: Vec<_> = comparisons.iter().filter(|c| is_failure(c)).collect();
    let mut s = format!("## {title}\n\n");
    if failed_t.is_empty() && failed_c.is_empty() {
        let _ = writeln!(
            s,
            "**Passed**: {} thresholds, {} compared metrics.\n",
            thresholds.len(),
            comparisons.len()
        );
    } else {
        let _ = writeln!(
            s,
            "**Failed**: {} thresholds, {} regressions.\n",
            failed_t.len(),
            failed_c.len()
        );
        for t in &failed_t {
            let _ = writeln!(
                s,
                "- threshold `{}.{}` = {}, limit `{}`",
                t.group,
                t.column,
                num(t.value),
                t.limit
            );
        }
        for c in &failed_c {
            let _ = writeln!(s, "- {}", failure_message(c));
        }
        s.push('\n');
    }
    if !thresholds.is_empty() {
        s.push_str("| group | threshold | value | limit | result |\n|---|---|---:|---|---|\n");
        for t in thresholds {
            let _ = writeln!(
                s,
                "| {} | `{}` | {} | `{}` | {} |",
                t.group,
                t.column,
                num(t.value),
                t.limit,
                if t.passed { "pass" } else { "**FAIL**" }
            );
        }
        s.push('\n');
    }
    if !comparisons.is_empty() {
        s.push_str("| group | metric | baseline | current | change | verdict |\n|---|---|---:|---:|---:|---|\n");
        for c in comparisons {
            let v = verdict(c.verdict);
            let v = if is_failure(c) {
                format!("**{v}**")
            } else {
                v.to_string()
            };
            let _ = writeln!(
                s,
                "| {} | `{}` | {} | {} | {} | {v} |",
                c.group,
                c.metric,
                num(c.baseline),
                num(c.current),
                pct(c.change_rel)
            );
        }
    }
    s
}

/// CSV of the comparison.
pub fn write_csv(path: &Path, comparisons: &[Comparison]) -> Result<()> {
    let err = |e: csv::Error| Error::output(path, std::io::Error::other(e.to_string()));
    let mut w = csv::Writer::from_path(path).map_err(err)?;
    for c in comparisons {
        w.serialize(c).map_err(err)?;
    }
    w.flush().map_err(|e| Error::output(path, e))
}
