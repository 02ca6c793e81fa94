//! `stampede report` on real run folders: charts and a self-contained HTML
//! page from short runs against the reference server, several runs overlaid,
//! and clear usage errors for unusable folders.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{exe, TempDir};

/// A group name that needs escaping in HTML and SVG.
const ODD_GROUP: &str = "ws<&>";

const SCENARIO: &str = "name = \"report-test\"\nduration = \"1s\"\nmode = \"concurrent\"\n\
    [publisher]\nrate = 20\n\
    [[groups]]\ntransport = \"sse\"\nclients = 3\n\
    [[groups]]\ntransport = \"poll\"\nclients = 3\ninterval = \"200ms\"\n\
    [[groups]]\nname = \"ws<&>\"\ntransport = \"websocket\"\nclients = 3\n";

const CHARTS: [&str; 6] = [
    "delivery-percentiles.svg",
    "connect-percentiles.svg",
    "latency-over-time.svg",
    "throughput-over-time.svg",
    "cost-per-delivery.svg",
    // The built-in target's pid is known, so its CPU is charted.
    "target-cpu-over-time.svg",
];

fn stampede(args: &[&str], paths: &[&Path]) -> Output {
    let mut c = Command::new(exe());
    c.args(args);
    for p in paths {
        c.arg(p);
    }
    c.output().expect("run stampede")
}

/// Starts a short run into `out` (extra flags appended); returns the child.
fn start_run(dir: &TempDir, out: &Path, extra: &[&str]) -> std::process::Child {
    let scenario = dir.path().join("s.toml");
    if !scenario.exists() {
        std::fs::write(&scenario, SCENARIO).expect("write scenario");
    }
    Command::new(exe())
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--set", "drain=500ms"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn run")
}

fn finish(child: std::process::Child) -> Output {
    let out = child.wait_with_output().expect("wait for run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every text node of an SVG document, parsed as XML.
fn svg_texts(path: &Path) -> String {
    let text = read(path);
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in ["<script src", "<link", "url(", "@import", "<iframe", "<img"] {
        assert!(!lower.contains(bad), "report.html loads something: {bad}");
    }
    // Links stay in the page or point at its own chart files.
    for attr in ["href=\"", "src=\""] {
        for (i, _) in lower.match_indices(attr) {
            let value = &lower[i + attr.len()..];
            assert!(
                value.starts_with('#') || value.starts_with("charts/"),
                "external reference: {}",
                &value[..value.find('"').unwrap_or(value.len())]
            );
        }
    }
}

#[test]
fn a_run_writes_its_report_and_report_rewrites_it() {
    let dir = TempDir::new("report-one");
    let run = dir.path().join("run");
    let out = finish(start_run(&dir, &run, &[]));
    // The run folder is still the last line on stdout.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        run.display().to_string()
    );
    assert!(run.join("report.html").is_file(), "run writes the report");
    std::fs::remove_dir_all(run.join("charts")).expect("remove charts");
    std::fs::remove_file(run.join("report.html")).expect("remove html");

    let out = stampede(&["report"], &[&run]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html_path = run.join("report.html");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        html_path.display().to_string()
    );
    for (chart, axis) in CHARTS.iter().zip([
        "percentile (nines scale)",
        "percentile (nines scale)",
        "time since the run started (s)",
        "time since the run started (s)",
        "bytes (sent + received)",
        "time since the run started (s)",
    ]) {
        let texts = svg_texts(&run.join("charts").join(chart));
        for group in ["sse", "poll", ODD_GROUP] {
            assert!(texts.contains(group), "{chart}: no {group} in\n{texts}");
        }
        assert!(texts.contains(axis), "{chart}: no axis title {axis}");
    }
    let texts = svg_texts(&run.join("charts/delivery-percentiles.svg"));
    for tick in ["90%", "99.9%", "99.999%", "delivery latency (ms"] {
        assert!(texts.contains(tick), "no {tick}");
    }

    let html = read(&html_path);
    assert_self_contained(&html);
    assert!(html.contains("<table class=\"sortable\" id=\"summary-table\">"));
    let table = &html[html.find("summary-table").unwrap_or(0)..];
    let table = &table[..table.find("</table>").unwrap_or(table.len())];
    for group in ["sse", "poll", "ws&lt;&amp;&gt;"] {
        assert!(
            table.contains(&format!("<td class=\"t\">{group}</td>")),
            "no row for {group}"
        );
    }
    assert!(!html.contains(ODD_GROUP), "unescaped group name in HTML");
    assert_eq!(html.matches("<svg").count(), CHARTS.len(), "charts inline");
    for section in ["id=\"runs\"", "id=\"errors\"", "report-test", "completed"] {
        assert!(html.contains(section), "no {section}");
    }
}

#[test]
fn several_runs_are_overlaid_and_need_out() {
    let dir = TempDir::new("report-two");
    let (a, b) = (dir.path().join("base"), dir.path().join("next"));
    let first = start_run(&dir, &a, &["--no-report"]);
    let second = start_run(&dir, &b, &["--no-report"]);
    finish(first);
    finish(second);
    assert!(!a.join("report.html").exists(), "--no-report writes none");

    let out = stampede(&["report"], &[&a, &b]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"));

    let report = dir.path().join("cmp");
    let out = stampede(
        &["report", "--quiet"],
        &[&a, &b, Path::new("--out"), &report],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for chart in &CHARTS[..5] {
        let texts = svg_texts(&report.join("charts").join(chart));
        for label in ["base/sse", "next/sse", "base/poll", "next/ws<&>"] {
            assert!(texts.contains(label), "{chart}: no {label}");
        }
    }
    // One target per run, not per group.
    let texts = svg_texts(&report.join("charts").join(CHARTS[5]));
    for label in ["base/target process", "next/target process"] {
        assert!(
            texts.contains(label),
            "{}: no {label} in {texts}",
            CHARTS[5]
        );
    }
    let html = read(&report.join("report.html"));
    assert_self_contained(&html);
    for label in ["<td class=\"t\">base</td>", "<td class=\"t\">next</td>"] {
        assert!(html.contains(label), "comparison table lacks {label}");
    }
}

#[test]
fn unusable_folders_are_usage_errors_naming_the_file() {
    let dir = TempDir::new("report-bad");
    let run = dir.path().join("run");
    finish(start_run(&dir, &run, &["--no-report"]));

    let missing: PathBuf = dir.path().join("nope");
    let out = stampede(&["report"], &[&missing]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));

    let ts = run.join("timeseries.csv");
    let kept = read(&ts);
    std::fs::write(&ts, "unix_s,elapsed_s\nnot,numbers\n").expect("corrupt timeseries");
    let out = stampede(&["report"], &[&run]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&ts.display().to_string()));
    std::fs::write(&ts, kept).expect("restore timeseries");

    let summary = run.join("summary.csv");
    std::fs::write(&summary, "group,clients\nsse,many\n\"unterminated").expect("corrupt");
    let out = stampede(&["report"], &[&run]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&summary.display().to_string()), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!run.join("report.html").exists());
}
