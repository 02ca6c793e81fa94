//! The fault target against stampede's clients: for every fault kind, the
//! clients of every transport it applies to count it under its documented
//! error kind (and no other), never panic or hang, and the run folder is
//! complete. One fault per test, at 70% of the requests, 10 clients per transport (so every
//! streaming group meets it on some session).

mod support;

use std::time::Duration;

use stampede::fault::ErrorKind;
use stampede::metrics::summary::SummaryRow;
use stampede::reference::fault::FaultKind;
use stampede::shutdown::Shutdown;
use support::*;

/// Client limits under the target's oversized payloads (128 KiB), timeouts
/// under its stall (3 s), quick reconnects.
const LIMITS: &str = "[limits]\nrequest_timeout = \"1s\"\nread_timeout = \"1s\"\n\
     max_message_bytes = 65536\nmax_sse_line_bytes = 65536\n";

fn errors_of(r: &SummaryRow, kind: ErrorKind) -> u64 {
    r.errors_of(kind)
}

/// Runs `transports` (concurrently) against a target injecting `fault` at
/// rate 0.7 and checks the counts and the run folder.
async fn check(fault: FaultKind, transports: &[&str]) {
    let spec = format!("{}=0.7,stall_for=3s,oversize_bytes=131072", fault.label());
    let (target, state) = InProcess::start_faulty(&spec).await;
    let mut text = format!(
        "name = \"fault-{}\"\nduration = \"1500ms\"\ndrain = \"500ms\"\nmode = \"concurrent\"\n\
         [publisher]\nrate = 20\n{LIMITS}",
        fault.label()
    );
    for t in transports {
        let extra = match *t {
            "poll" => "interval = \"200ms\"\n",
            "long-poll" => "timeout = \"500ms\"\n",
            // Enough echo bytes that a stream reset (armed after 200 to
            // 3,000 bytes) fires within the run.
            "echo" => "rate = 200\nmessage_bytes = 256\n",
            _ => "",
        };
        text.push_str(&format!(
            "[[groups]]\ntransport = \"{t}\"\nclients = 10\n{extra}\
             reconnect = {{ max_attempts = 1000, backoff = \"50ms\", max_backoff = \"200ms\", jitter = 0.5 }}\n"
        ));
    }
    let mut p = plan(&text);
    target.aim(&mut p);
    let dir = TempDir::new(fault.label());
    // A hang would be the bug under test: fail instead of waiting forever.
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        run_plan(p, dir.path(), Shutdown::new()),
    )
    .await
    .unwrap_or_else(|_| panic!("{}: the run did not end", fault.label()));
    let injected = state.injected()[fault.label()];
    target.stop().await;

    assert_eq!(out.exit_code, 0, "{}", fault.label());
    assert!(injected > 0, "{}: nothing injected", fault.label());
    let want = fault.counted_as();
    for t in transports {
        let r = row(&out.rows, t);
        assert!(
            errors_of(r, want) > 0,
            "{} on {t}: no {} errors in {r:?}",
            fault.label(),
            want.label()
        );
        for other in ErrorKind::ALL.into_iter().filter(|k| *k != want) {
            assert_eq!(
                errors_of(r, other),
                0,
                "{} on {t}: {} errors counted as {}",
                fault.label(),
                errors_of(r, other),
                other.label()
            );
        }
    }
    for f in ["run.json", "summary.csv", "timeseries.csv"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let ts = std::fs::read_to_string(dir.path().join("timeseries.csv")).unwrap();
    let header = ts.lines().next().unwrap_or_default();
    let col = format!("errors_{}", want.label());
    let idx = header
        .split(',')
        .position(|c| c == col)
        .unwrap_or_else(|| panic!("no {col} in {header}"));
    let in_series: u64 = ts
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(idx)?.parse::<u64>().ok())
        .sum();
    assert!(in_series > 0, "{col} is zero in timeseries.csv");
}

const HTTP_ALL: &[&str] = &["poll", "sse", "ndjson", "websocket"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset() {
    check(
        FaultKind::Reset,
        &["poll", "sse", "ndjson", "websocket", "echo"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall() {
    check(FaultKind::Stall, HTTP_ALL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open() {
    check(FaultKind::HalfOpen, HTTP_ALL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers() {
    check(FaultKind::SlowHeaders, HTTP_ALL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http() {
    check(
        FaultKind::MalformedHttp,
        &["poll", "long-poll", "sse", "websocket"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_5xx() {
    check(
        FaultKind::Status5xx,
        &["poll", "long-poll", "sse", "ndjson", "websocket"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_429() {
    check(FaultKind::Status429, &["poll", "sse", "websocket"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_no_blank_line() {
    check(FaultKind::SseNoBlankLine, &["sse"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_huge_line() {
    check(FaultKind::SseHugeLine, &["sse"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_invalid_utf8() {
    check(FaultKind::SseInvalidUtf8, &["sse"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_bad_opcode() {
    check(FaultKind::WsBadOpcode, &["websocket", "echo"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_masked_frame() {
    check(FaultKind::WsMaskedFrame, &["websocket", "echo"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_oversized_frame() {
    check(FaultKind::WsOversizedFrame, &["websocket", "echo"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_no_close() {
    check(FaultKind::WsNoClose, &["websocket", "echo"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message() {
    check(
        FaultKind::OversizedMessage,
        &["poll", "long-poll", "sse", "ndjson", "websocket", "echo"],
    )
    .await;
}

/// Every fault at once, through the whole path a user takes: the
/// scenario's `[faults]` table goes to the reference server started as a
/// child process (`serve --fault`). The run ends, completes, and counts
/// nothing as an unclassified `other` error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_at_once_through_the_child_target() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/faults.toml"),
    )
    .unwrap()
    .replace("duration = \"20s\"", "duration = \"3s\"")
    .replace("ramp_up = \"2s\"", "ramp_up = \"500ms\"")
    .replace("clients = 50", "clients = 10");
    let p = plan(&text);
    assert!(p.faults.as_ref().is_some_and(|f| f.rates.len() == 15));
    let dir = TempDir::new("all-faults");
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        run_plan(p, dir.path(), Shutdown::new()),
    )
    .await
    .expect("the run did not end");
    assert_eq!(out.exit_code, 0);
    let errors: u64 = out.rows.iter().map(|r| r.errors).sum();
    assert!(errors > 0, "no fault was counted");
    for r in &out.rows {
        assert_eq!(
            r.errors_of(ErrorKind::Other),
            0,
            "{}: unclassified errors",
            r.group
        );
    }
    let info = std::fs::read_to_string(dir.path().join("run.json")).unwrap();
    assert!(info.contains("\"status\": \"completed\""), "{info}");
    assert!(
        info.contains("\"ws_no_close\""),
        "the fault plan is recorded"
    );
    for f in ["summary.csv", "timeseries.csv", "websocket.delivery.hlog"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
}
