//! End to end in a real browser: a run's `report.html` opened in headless
//! Chromium, driven over the DevTools protocol (a WebSocket, so no driver
//! binary is needed). Checks that the page logs no console errors or
//! exceptions, that every chart is there with a non-zero size, and saves a
//! screenshot in the test's temp dir. Skipped with a message without
//! Chromium, unless `STAMPEDE_REQUIRE_BROWSER=1` (set by `.ci/run`).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::browser::{chromium_or_skip, devtools_get, Reaped, CHROMIUM};
use support::{exe, TempDir};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_in_a_browser() {
    if !chromium_or_skip("report_in_a_browser") {
        return;
    }
    let dir = TempDir::new("browser");
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "name = \"browser\"\nduration = \"2s\"\nmode = \"concurrent\"\n[publisher]\nrate = 20\n\
         [[groups]]\ntransport = \"sse\"\nclients = 3\n\
         [[groups]]\ntransport = \"poll\"\nclients = 3\ninterval = \"200ms\"\n",
    )
    .unwrap();
    let run_dir = dir.path().join("run");
    let status = Command::new(exe())
        .args(["run", "--quiet", "--set", "drain=500ms", "--out"])
        .arg(&run_dir)
        .arg(&scenario)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let report = run_dir.join("report.html");
    assert!(report.exists());

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
            "--disable-quic",
            "--remote-debugging-port=0",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let stderr = child.stderr.take().unwrap();
    let browser = Reaped(child);
    // Chromium says where DevTools listens on stderr.
    let port = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stderr).lines() {
            let line = line.ok()?;
            if let Some(rest) = line.strip_prefix("DevTools listening on ws://127.0.0.1:") {
                return rest.split('/').next()?.parse::<u16>().ok();
            }
        }
        None
    });
    let port = tokio::time::timeout(Duration::from_secs(30), port)
        .await
        .expect("chromium announces DevTools")
        .unwrap()
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
    // Sends a command and waits for its answer, collecting error events.
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
                collect_error(&v, &mut errors);
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{}: {v}", $method);
                    break v["result"].clone();
                }
            }
        }};
    }
    call!("Runtime.enable", json!({}));
    call!("Log.enable", json!({}));
    call!("Page.enable", json!({}));
    let url = format!("file://{}", report.display());
    call!("Page.navigate", json!({ "url": url }));
    // Wait for the load event (and any errors logged on the way).
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("page loads")
            .unwrap()
            .unwrap();
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        collect_error(&v, &mut errors);
        if v["method"] == "Page.loadEventFired" {
            break;
        }
    }
    // Sorting is the page's one script: exercise it.
    let sizes = call!(
        "Runtime.evaluate",
        json!({
            "expression": "(() => { const th = document.querySelector('th'); if (th) th.click(); \
                return Array.from(document.querySelectorAll('figure')).map(f => { \
                const s = f.querySelector('svg'); const r = s ? s.getBoundingClientRect() : {width: 0, height: 0}; \
                return [f.id, r.width, r.height]; }); })()",
            "returnByValue": true
        })
    );
    let shot = call!(
        "Page.captureScreenshot",
        json!({ "captureBeyondViewport": true })
    );
    drop(browser);

    let figures = sizes["result"]["value"]
        .as_array()
        .expect("figures")
        .clone();
    assert!(figures.len() >= 5, "charts on the page: {figures:?}");
    for f in &figures {
        let (w, h) = (f[1].as_f64().unwrap_or(0.0), f[2].as_f64().unwrap_or(0.0));
        assert!(w > 100.0 && h > 100.0, "chart {} is {w}x{h}", f[0]);
    }
    for chart in std::fs::read_dir(run_dir.join("charts")).unwrap() {
        let name = chart.unwrap().path();
        let stem = name.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            figures.iter().any(|f| f[0].as_str() == Some(stem.as_str())),
            "charts/{stem}.svg is on the page: {figures:?}"
        );
    }
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("screenshot"))
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let path = dir.path().join("report.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {} ({} bytes)", path.display(), png.len());
}

/// Console errors, uncaught exceptions and error log entries.
fn collect_error(v: &Value, errors: &mut Vec<String>) {
    match v["method"].as_str() {
        Some("Runtime.exceptionThrown") => errors.push(v["params"].to_string()),
        Some("Runtime.consoleAPICalled") if v["params"]["type"] == "error" => {
            errors.push(v["params"]["args"].to_string())
        }
        Some("Log.entryAdded") if v["params"]["entry"]["level"] == "error" => {
            errors.push(v["params"]["entry"].to_string())
        }
        _ => {}
    }
}
