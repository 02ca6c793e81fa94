//! `summary.json` against the files and the registry it is made from: every
//! `summary.csv` cell, typed; every registry column with its unit and
//! meaning; the thresholds' verdicts, status and warnings of `run.json`.

mod support;

use serde_json::Value;
use stampede::folder::columns;
use stampede::folder::run_json::RunInfo;
use stampede::folder::summary_json::{SummaryJson, SCHEMA};
use stampede::shutdown::Shutdown;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_json_matches_summary_csv_and_the_registry() {
    let text = "name = \"sj\"\nduration = \"2s\"\nmode = \"concurrent\"\n\
        [thresholds]\n\"sse.errors\" = \"< 1\"\n\"poll.delivery_p50_ms\" = \"< 0.001\"\n\
        [publisher]\nrate = 20\n\
        [[groups]]\ntransport = \"sse\"\nclients = 3\n\
        [[groups]]\ntransport = \"poll\"\nclients = 2\ninterval = \"200ms\"\n";
    let dir = TempDir::new("summary-json");
    let out = run_plan(plan(text), dir.path(), Shutdown::new()).await;
    // The poll group's p50 cannot be under a microsecond: one verdict fails.
    assert_eq!(out.exit_code, 1);

    let raw = std::fs::read_to_string(out.dir.join("summary.json")).unwrap();
    let v: Value = serde_json::from_str(&raw).unwrap();
    let json = SummaryJson::read(&out.dir).unwrap();
    assert_eq!(json.schema, SCHEMA);

    // Status, warnings and verdicts are run.json's.
    let info = RunInfo::read(&out.dir).unwrap();
    assert_eq!(json.status, info.status);
    assert_eq!(json.exit_code, Some(1));
    assert_eq!(json.warnings, info.warnings);
    assert!(!json.thresholds_passed);
    assert_eq!(v["thresholds_passed"], Value::Bool(false));
    let verdict = |g: &str| {
        json.thresholds
            .iter()
            .find(|t| t.group == g)
            .unwrap_or_else(|| panic!("no verdict for {g}"))
            .passed
    };
    assert!(verdict("sse"));
    assert!(!verdict("poll"));

    // Every registry column, described as the registry does.
    assert_eq!(json.columns.len(), columns::all().len());
    for c in columns::all() {
        let doc = &v["columns"][c.name()];
        let unit = if c.unit().is_empty() {
            "text"
        } else {
            c.unit()
        };
        assert_eq!(doc["unit"], unit, "{}", c.name());
        assert_eq!(doc["meaning"], c.meaning().as_str(), "{}", c.name());
    }

    // Every cell of summary.csv, in order, typed by its column.
    let mut csv = csv::Reader::from_path(out.dir.join("summary.csv")).unwrap();
    let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(json.column_order, header);
    let records: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(json.groups.len(), records.len());
    for (rec, g) in records.iter().zip(&v["groups"].as_array().unwrap()[..]) {
        assert_eq!(g["values"].as_object().unwrap().len(), header.len());
        for (h, cell) in header.iter().zip(rec.iter()) {
            let got = &g["values"][h];
            let col = columns::find(h).unwrap_or_else(|| panic!("{h} not in the registry"));
            if cell.is_empty() {
                assert!(got.is_null(), "{h}: {got}");
            } else if col.is_integral() {
                assert_eq!(got.as_i64(), Some(cell.parse().unwrap()), "{h}");
            } else if col.is_numeric() {
                assert_eq!(got.as_f64(), Some(cell.parse().unwrap()), "{h}");
            } else {
                assert_eq!(got.as_str(), Some(cell), "{h}");
            }
        }
    }
    let sse = &v["groups"][0];
    assert_eq!(sse["group"], "sse");
    assert!(sse["values"]["delivered"].as_u64().unwrap() > 0);
    assert!(sse["values"]["delivery_p99_ms"].is_f64());
}
