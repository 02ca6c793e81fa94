//! The container and Kubernetes files cannot run here (no cluster, no
//! image build), so their contract with the binary is checked instead:
//! every stampede command line in the manifests parses with this CLI, the
//! shard count agrees with the Job's size, the scenario the Job runs is a
//! valid shipped scenario, and the Dockerfile copies only what exists.
//! `.ci/run` validates the manifests against the Kubernetes schemas.

use clap::Parser;
use stampede::cli::{Cli, Command};

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The one-line `args: [...]` lists of a manifest, with Kubernetes'
/// `$(VAR)` references given sample values.
fn arg_lists(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("args: "))
        .map(|l| {
            let l = l.replace("$(SHARD)", "3").replace("$(RUN_ID)", "r1");
            serde_json::from_str::<Vec<String>>(&l).unwrap_or_else(|e| panic!("{l}: {e}"))
        })
        .collect()
}

fn field(text: &str, key: &str) -> u32 {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key}"))
        .parse()
        .unwrap()
}

#[test]
fn shard_job_runs_a_valid_sharded_command() {
    let text = read("deploy/kubernetes/shards-job.yaml");
    let lists = arg_lists(&text);
    assert_eq!(lists.len(), 1);
    let cli = Cli::try_parse_from(std::iter::once("stampede".to_string()).chain(lists[0].clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    let Command::Run(run) = cli.command else {
        panic!("the shard Job must run `stampede run`")
    };
    let shard = run.shard.expect("--shard");
    let n = field(&text, "completions");
    assert_eq!(shard.count, n, "--shard N must equal completions");
    assert_eq!(field(&text, "parallelism"), n, "all shards run at once");
    assert!(text.contains("completionMode: Indexed"));
    assert!(text.contains("batch.kubernetes.io/job-completion-index"));
    assert!(text.contains("STAMPEDE_START_AT"));

    // The image ships scenarios/ as /scenarios.
    let scenario = run.scenario.strip_prefix("/").unwrap();
    let (sc, src) = stampede::scenario::load(scenario, &[]).unwrap_or_else(|e| panic!("{e}"));
    let overrides = stampede::plan::Overrides {
        target: run.target.clone(),
        profile: run.profile.clone(),
        ..Default::default()
    };
    stampede::plan::build(&sc, &src, &overrides).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn target_deployment_serves_on_the_service_port() {
    let text = read("deploy/kubernetes/target.yaml");
    let lists = arg_lists(&text);
    let cli = Cli::try_parse_from(std::iter::once("stampede".to_string()).chain(lists[0].clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    let Command::Serve(serve) = cli.command else {
        panic!("the target must run `stampede serve`")
    };
    assert_eq!(serve.listen.port(), 8080);
    let job = read("deploy/kubernetes/shards-job.yaml");
    assert!(job.contains("http://stampede-target:8080"));
}

#[test]
fn merge_job_merges_the_shard_folders() {
    let text = read("deploy/kubernetes/merge-job.yaml");
    let script = &arg_lists(&text)[0][0];
    assert!(script.contains("stampede merge"), "{script}");
    assert!(script.contains("/shard-*"), "{script}");
    // The same flags through the CLI parser.
    let cli = Cli::try_parse_from(["stampede", "merge", "a", "b", "--out", "m"]).unwrap();
    assert!(matches!(cli.command, Command::Merge(_)));
}

#[test]
fn dockerfile_copies_what_exists_and_runs_unprivileged() {
    let text = read("Dockerfile");
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(
                std::path::Path::new(src).exists(),
                "Dockerfile copies {src}, which does not exist"
            );
        }
    }
    assert!(text.contains("USER 10001"));
    assert!(text.lines().filter(|l| l.starts_with("FROM ")).count() >= 2);
}

/// Every `expr` of a Grafana dashboard's panels (rows' nested panels too).
fn grafana_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(e) = m.get("expr").and_then(|e| e.as_str()) {
                out.push(e.to_string());
            }
            m.values().for_each(|v| grafana_exprs(v, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| grafana_exprs(v, out)),
        _ => {}
    }
}

/// The Grafana dashboard reads only what `--prometheus-remote-write`
/// writes: every `stampede_*` name in its queries (panels and template
/// variables) is one of the remote writer's names, derived from the column
/// registry, and every label it matches on is one stampede sets.
#[test]
fn grafana_queries_name_series_stampede_writes() {
    let text = read("deploy/grafana/stampede.json");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut exprs = Vec::new();
    grafana_exprs(&dash["panels"], &mut exprs);
    for v in dash["templating"]["list"].as_array().expect("variables") {
        if let Some(q) = v["query"].as_str().filter(|q| q.contains('(')) {
            exprs.push(q.to_string());
        }
    }
    assert!(exprs.len() >= 10, "{exprs:?}");
    let written = stampede::telemetry::remote_write::written_names();
    let labels = ["run", "scenario", "group", "transport", "shard", "measured"];
    let mut kinds = [false; 4];
    for e in &exprs {
        let words: Vec<&str> = e
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .filter(|w| !w.is_empty())
            .collect();
        let names: Vec<&&str> = words
            .iter()
            .filter(|w| w.starts_with("stampede_"))
            .collect();
        assert!(!names.is_empty(), "{e}: names no stampede series");
        for n in names {
            assert!(
                written.iter().any(|w| w == *n),
                "{e}: {n} is not written by stampede"
            );
            kinds[0] |= n.ends_with("_total");
            kinds[1] |= n.ends_with("_seconds");
            kinds[2] |= n.starts_with("stampede_summary_");
            kinds[3] |= !n.ends_with("_total") && !n.ends_with("_seconds");
        }
        // Matchers `label=~"..."` and groupings `by (label)`.
        for (i, w) in words.iter().enumerate() {
            let after = &e[e.find(w).map_or(0, |p| p + w.len())..];
            let matcher = ["=~", "!~", "!=", "="]
                .iter()
                .any(|op| after.trim_start().starts_with(op))
                && !after.trim_start().starts_with("==");
            let grouped = i > 0 && (words[i - 1] == "by" || words[i - 1] == "without");
            if (matcher && e.contains('{')) || grouped {
                assert!(labels.contains(w), "{e}: stampede sets no label {w}");
            }
        }
    }
    assert_eq!(
        kinds, [true; 4],
        "counters, histograms, summary and gauges all read"
    );
}
