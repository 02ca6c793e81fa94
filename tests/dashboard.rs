//! The live dashboard in a real headless Chromium (driven over the DevTools
//! protocol, as `tests/browser.rs`): `stampede run --dashboard` prints its
//! URL, the page's figures change while the run goes, and every figure it
//! showed equals the `timeseries.csv` row of that group and second.
//! Skipped without Chromium unless `STAMPEDE_REQUIRE_BROWSER=1`.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::browser::{chromium_or_skip, devtools_get, Reaped, CHROMIUM};
use support::{exe, TempDir};
use tokio_tungstenite::tungstenite::Message;

/// The first line of `stream` that starts with `prefix` (its rest), read
/// on a blocking thread; the rest of the stream is drained there.
async fn announced<R: Read + Send + 'static>(stream: R, prefix: &'static str) -> String {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix(prefix) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(rest.to_string());
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(60), rx)
        .await
        .unwrap_or_else(|_| panic!("nothing announced as {prefix:?}"))
        .expect("announcement")
}

/// What the page shows now: per group, `data-k` → `data-v`.
const SNAPSHOT: &str = "(() => { const out = {}; \
    document.querySelectorAll('section.group').forEach(s => { const g = {}; \
    s.querySelectorAll('dd[data-k]').forEach(d => { g[d.dataset.k] = d.getAttribute('data-v'); }); \
    g.paths = s.querySelectorAll('svg path').length; out[s.dataset.group] = g; }); \
    return out; })()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_dashboard_in_a_browser() {
    if !chromium_or_skip("live_dashboard_in_a_browser") {
        return;
    }
    let dir = TempDir::new("dashboard");
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "name = \"live\"\nduration = \"8s\"\nmode = \"concurrent\"\n[publisher]\nrate = 20\n\
         [[groups]]\ntransport = \"sse\"\nclients = 3\n\
         [[groups]]\ntransport = \"websocket\"\nclients = 4\n",
    )
    .unwrap();
    let run_dir = dir.path().join("run");
    let mut child = Command::new(exe())
        .args(["run", "--quiet", "--no-report", "--dashboard", "--out"])
        .arg(&run_dir)
        .arg(&scenario)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut run = Reaped(child);
    let url = announced(stderr, "stampede: dashboard: ").await;
    assert!(url.starts_with("http://127.0.0.1:"), "loopback: {url}");

    let profile = dir.path().join("chromium-profile");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-port=0",
            "--window-size=1280,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let stderr = child.stderr.take().unwrap();
    let browser = Reaped(child);
    let port: u16 = announced(stderr, "DevTools listening on ws://127.0.0.1:")
        .await
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("DevTools port");
    let list: Value = serde_json::from_str(&devtools_get(port, "/json/list")).unwrap();
    let page_ws = list
        .as_array()
        .and_then(|l| l.iter().find(|t| t["type"] == "page"))
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .expect("a page target")
        .to_string();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(page_ws, tcp).await.unwrap();
    let mut next_id = 0;
    let mut errors: Vec<String> = Vec::new();
    macro_rules! call {
        ($method:expr, $params:expr) => {{
            next_id += 1;
            let id = next_id;
            let msg = json!({"id": id, "method": $method, "params": $params});
            ws.send(Message::text(msg.to_string())).await.unwrap();
            loop {
                let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
                    .await
                    .expect("DevTools answers")
                    .unwrap()
                    .unwrap();
                let Message::Text(t) = m else { continue };
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                match v["method"].as_str() {
                    Some("Runtime.exceptionThrown") => errors.push(v["params"].to_string()),
                    Some("Runtime.consoleAPICalled") if v["params"]["type"] == "error" => {
                        errors.push(v["params"]["args"].to_string())
                    }
                    _ => {}
                }
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{}: {v}", $method);
                    break v["result"].clone();
                }
            }
        }};
    }
    call!("Runtime.enable", json!({}));
    call!("Page.enable", json!({}));
    call!("Page.navigate", json!({ "url": url }));

    // Snapshots while the run goes, until the page has shown three
    // different seconds of both groups.
    let mut seen: Vec<Value> = Vec::new();
    let mut seconds: Vec<String> = Vec::new();
    let mut shot = Value::Null;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let snap = call!(
            "Runtime.evaluate",
            json!({ "expression": SNAPSHOT, "returnByValue": true })
        )["result"]["value"]
            .clone();
        let (Some(sse), Some(_)) = (snap.get("sse"), snap.get("websocket")) else {
            continue;
        };
        let Some(at) = sse["elapsed_s"].as_str().map(String::from) else {
            continue;
        };
        if !seconds.contains(&at) {
            seconds.push(at);
            seen.push(snap);
        }
        if seconds.len() == 3 {
            shot = call!("Page.captureScreenshot", json!({}));
            break;
        }
    }
    assert!(seconds.len() >= 3, "the page moved on: {seconds:?}");

    let status = tokio::task::spawn_blocking(move || run.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "run: {status:?}");
    // Lost events, settled at the phase's end, as summary.csv has them.
    let summary = stampede::folder::summary::read(&run_dir).unwrap();
    let mut lost_shown = Value::Null;
    for _ in 0..100 {
        let snap = call!(
            "Runtime.evaluate",
            json!({ "expression": SNAPSHOT, "returnByValue": true })
        )["result"]["value"]
            .clone();
        if summary.iter().all(|r| snap[&r.group]["lost"].is_string()) {
            lost_shown = snap;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for r in &summary {
        let lost = r.lost.expect("subscribers have lost").to_string();
        assert_eq!(
            lost_shown[&r.group]["lost"].as_str(),
            Some(lost.as_str()),
            "{}: lost on the page vs summary.csv in {lost_shown}",
            r.group
        );
    }
    drop(browser);
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // Every figure shown is the file's.
    let mut csv = csv::Reader::from_path(run_dir.join("timeseries.csv")).unwrap();
    let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<std::collections::HashMap<String, String>> = csv
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect();
    let mut compared = 0;
    for snap in &seen {
        for (group, shown) in snap.as_object().unwrap() {
            let at = shown["elapsed_s"].as_str().unwrap();
            let row = rows
                .iter()
                .find(|r| r["group"] == *group && r["elapsed_s"] == at)
                .unwrap_or_else(|| panic!("{group} at {at}s is in timeseries.csv"));
            for k in [
                "connections",
                "deliveries_per_s",
                "delivery_p50_ms",
                "delivery_p99_ms",
                "client_cpu_pct",
                "loadgen_lag_ms",
                "target_cpu_pct",
                "target_rss_mb",
            ] {
                let page = shown[k].as_str().unwrap_or("");
                let file = row[k].as_str();
                let num = |s: &str| s.parse::<f64>().ok();
                assert_eq!(
                    num(page),
                    num(file),
                    "{group} {k} at {at}s: {page} vs {file}"
                );
                compared += 1;
            }
            // Errors so far: the file's rows of the group up to that second.
            let total: u64 = rows
                .iter()
                .filter(|r| r["group"] == *group)
                .take_while(|r| r["elapsed_s"] != at)
                .chain(std::iter::once(row))
                .map(|r| r["errors"].parse::<u64>().unwrap())
                .sum();
            assert_eq!(
                shown["errors_total"].as_str(),
                Some(total.to_string().as_str())
            );
            assert!(
                shown["paths"].as_u64().unwrap() >= 3,
                "charts drawn: {shown}"
            );
        }
    }
    assert!(compared >= 3 * 2 * 8);
    // The page moved: connections or the clock changed between snapshots.
    assert_ne!(seen[0]["sse"]["elapsed_s"], seen[2]["sse"]["elapsed_s"]);

    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("screenshot"))
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {} ({} bytes)", path.display(), png.len());
}
