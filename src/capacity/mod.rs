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

mod group;
mod settings;

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::plan::{self, Overrides};
use crate::run::RunOptions;
use crate::scenario::{Scenario, Source};
use crate::shutdown::Shutdown;

pub use crate::folder::capacity::{GroupCapacity, StepRow};
pub use group::{midpoint, probe_steps};
pub use settings::{parse_slo, parse_steps, Flags, Settings, Vary};

use group::GroupSearch;

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
    check_search(settings, &whole)?;
    let (table, all_groups) = step_table(src)?;
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
        let found = searcher.probe_and_refine(probes, whole_numbers).await?;
        interrupted = found.interrupted;
        let limited_by = match &found.bad {
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
            max_sustainable: found.good,
            first_failing: found.bad.as_ref().map(|b| b.0),
            broken: found.bad.map(|b| b.1).unwrap_or_default(),
            limited_by: limited_by.into(),
            steps: n,
        });
        crate::folder::capacity::write(&dir, &steps, &groups)?;
    }
    finish(dir, steps, groups, settings, interrupted, &shutdown)
}

/// Refuses a search the scenario cannot run: a rate search over publisher
/// stages, or a `--group` the scenario does not have.
fn check_search(settings: &Settings, whole: &plan::Plan) -> Result<()> {
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
    Ok(())
}

/// The scenario's table without its groups, and the groups apart: a step
/// is one group alone, judged by the SLO only.
fn step_table(src: &Source) -> Result<(toml::Table, Vec<toml::Value>)> {
    let mut table: toml::Table = toml::from_str(&src.text).map_err(|e| Error::Scenario {
        at: src.path.clone(),
        message: e.message().trim().to_string(),
    })?;
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
    Ok((table, all_groups))
}

/// Writes the capacity files and chart; the exit code says whether the
/// search was interrupted or a group found no sustainable load.
fn finish(
    dir: PathBuf,
    steps: Vec<StepRow>,
    groups: Vec<GroupCapacity>,
    settings: &Settings,
    interrupted: bool,
    shutdown: &Shutdown,
) -> Result<Outcome> {
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
