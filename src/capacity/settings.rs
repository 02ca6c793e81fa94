//! The search's settings: the scenario's `[capacity]` table resolved with
//! the command-line flags (SLO, what varies, the steps, refinement).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gate::threshold::{self, Threshold};
use crate::scenario::{Scenario, Source};

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
    pub(super) fn label(self) -> &'static str {
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
}
