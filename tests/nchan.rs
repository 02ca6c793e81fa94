//! The same scenarios against a real third-party server: nginx with the
//! nchan module, through the `nchan` profile. Skipped with a message when
//! nginx/nchan are not installed (fails instead under
//! `STAMPEDE_REQUIRE_NCHAN=1`, as in CI).

mod support;

use std::time::Duration;

use stampede::fault::ErrorKind;
use stampede::shutdown::Shutdown;
use support::nginx::Nginx;
use support::*;

fn scenario(nginx: &Nginx, body: &str) -> String {
    format!(
        "name = \"nchan\"\ntarget = \"{}\"\nprofile = \"nchan\"\n{body}",
        nginx.url
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_has_exact_accounting_against_nchan() {
    let Some(nginx) = Nginx::start("every_transport", 30) else {
        return;
    };
    let text = scenario(
        &nginx,
        "duration = \"3s\"\nwarmup = \"1s\"\nmode = \"concurrent\"\n\
         [publisher]\nrate = 20\npayload_bytes = 200\nchannels = 2\n\
         [[groups]]\ntransport = \"poll\"\nclients = 10\ninterval = \"250ms\"\n\
         [[groups]]\ntransport = \"long-poll\"\nclients = 10\n\
         [[groups]]\ntransport = \"sse\"\nclients = 10\n\
         [[groups]]\ntransport = \"websocket\"\nclients = 10\n",
    );
    let dir = TempDir::new("nchan-all");
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0, "{:?}\n{}", out.stop, nginx.error_log());
    assert_eq!(out.rows.len(), 4);
    for r in &out.rows {
        let published = r.published.unwrap();
        // 3 s at 20 events/s over 2 channels, 5 clients on each channel.
        assert!((55..=65).contains(&published), "{}: {published}", r.group);
        assert_eq!(r.expected, Some(published * 5), "{}: expected", r.group);
        assert_eq!(r.delivered, r.expected, "{}: delivered", r.group);
        assert_eq!(
            (r.lost, r.duplicated, r.errors),
            (Some(0), Some(0), 0),
            "{}: {r:?}",
            r.group
        );
        assert!(r.delivery_p50_ms.is_some(), "{}", r.group);
    }
    let poll = out.rows.iter().find(|r| r.group == "poll").unwrap();
    // One message per response: polls that found several drained them.
    assert!(poll.requests > 0 && poll.empty_responses.unwrap() > 0);
    let p50 = |g: &str| {
        out.rows
            .iter()
            .find(|r| r.group == g)
            .and_then(|r| r.delivery_p50_ms)
            .unwrap()
    };
    // The same story as on the reference server: polling waits for its
    // interval, the others are near real time.
    for g in ["long-poll", "sse", "websocket"] {
        assert!(
            p50(g) * 3.0 < p50("poll"),
            "{g} {} vs poll {}",
            p50(g),
            p50("poll")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_timeouts_are_counted_not_errors() {
    let Some(nginx) = Nginx::start("long_poll_timeout", 1) else {
        return;
    };
    // One event every 2.5 s: with a 1 s hold most polls time out (408).
    let text = scenario(
        &nginx,
        "duration = \"5s\"\n[publisher]\nrate = 0.4\n\
         [[groups]]\ntransport = \"long-poll\"\nclients = 5\n",
    );
    let dir = TempDir::new("nchan-lp");
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0);
    let r = &out.rows[0];
    assert!(r.server_timeouts.unwrap() >= 5, "{r:?}");
    assert_eq!(r.errors, 0, "{r:?}");
    assert_eq!(r.lost, Some(0), "{r:?}");
    assert!(r.delivered.unwrap() >= 5, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_channel_is_counted_and_survived() {
    let Some(nginx) = Nginx::start("deleted_channel", 30) else {
        return;
    };
    let prefix = format!("del{}", std::process::id());
    let text = scenario(
        &nginx,
        &format!(
            "duration = \"5s\"\nmode = \"concurrent\"\n\
             [publisher]\nrate = 20\nchannel_prefix = \"{prefix}\"\n\
             [[groups]]\ntransport = \"long-poll\"\nclients = 4\n\
             [groups.reconnect]\nbackoff = \"50ms\"\n\
             [[groups]]\ntransport = \"sse\"\nclients = 4\n\
             [groups.reconnect]\nbackoff = \"50ms\"\n\
             [[groups]]\ntransport = \"websocket\"\nclients = 4\n\
             [groups.reconnect]\nbackoff = \"50ms\"\n"
        ),
    );
    let dir = TempDir::new("nchan-del");
    let run = tokio::spawn({
        let plan = plan(&text);
        let dir = dir.path().to_path_buf();
        async move { run_plan(plan, &dir, Shutdown::new()).await }
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let channel = format!("{prefix}-p0-c0");
    let deleted =
        tokio::task::block_in_place(|| nginx.request("DELETE", &format!("/pub/{channel}")));
    assert_eq!(deleted.map(|d| d.0), Some(200), "DELETE /pub/{channel}");
    let out = run.await.unwrap();
    assert_eq!(out.exit_code, 0, "the run survives: {:?}", out.stop);
    let row = |g: &str| out.rows.iter().find(|r| r.group == g).unwrap().clone();
    // HTTP subscribers get 410 Gone, WebSocket ones a 1001 close.
    assert!(
        row("long-poll").errors_of(ErrorKind::Status) >= 4,
        "{:?}",
        row("long-poll")
    );
    assert!(
        row("websocket").errors_of(ErrorKind::Closed) >= 4,
        "{:?}",
        row("websocket")
    );
    for r in &out.rows {
        let (e, d, l) = (r.expected.unwrap(), r.delivered.unwrap(), r.lost.unwrap());
        assert_eq!(d + l, e, "{}: accounting adds up", r.group);
        // They resubscribed: most of the stream still arrived.
        assert!(d * 10 >= e * 6, "{}: delivered {d} of {e}", r.group);
        assert!(r.reconnects >= 4, "{}: {r:?}", r.group);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_mode_against_nginx() {
    let Some(nginx) = Nginx::start("request_mode", 30) else {
        return;
    };
    let text = scenario(
        &nginx,
        "duration = \"2s\"\n\
         [[groups]]\nname = \"closed\"\ntransport = \"request\"\nclients = 8\nurl = \"/hello\"\n\
         [[groups]]\nname = \"open\"\ntransport = \"request\"\nclients = 8\nurl = \"/hello\"\nrate = 400\n\
         [[groups]]\nname = \"missing\"\ntransport = \"request\"\nclients = 2\nurl = \"/nope\"\nrate = 20\n",
    );
    let dir = TempDir::new("nchan-req");
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0);
    let row = |g: &str| out.rows.iter().find(|r| r.group == g).unwrap().clone();
    let closed = row("closed");
    assert!(closed.requests > 1000, "{closed:?}");
    assert_eq!(closed.status_2xx, Some(closed.requests));
    assert_eq!(closed.errors, 0);
    let open = row("open");
    // 2 s at 400/s, measured by intended time.
    assert!((680..=840).contains(&open.requests), "{open:?}");
    assert!(open.request_p99_ms.is_some() && open.request_uncorrected_p99_ms.is_some());
    assert!(open.request_uncorrected_p50_ms <= open.request_p50_ms);
    let missing = row("missing");
    assert_eq!(missing.status_4xx, Some(missing.requests), "{missing:?}");
    assert_eq!(missing.errors_of(ErrorKind::Status), missing.requests);
    // Accounting columns do not apply: empty, not zero.
    for r in &out.rows {
        assert_eq!((r.published, r.delivered, r.lost), (None, None, None));
    }
    let csv = std::fs::read_to_string(out.dir.join("summary.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |c: &str| header.iter().position(|h| *h == c).unwrap();
    assert_eq!(first[at("lost")], "");
    assert_eq!(first[at("delivered")], "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_profile_describes_nchan_with_websocket_publishing() {
    let Some(nginx) = Nginx::start("generic_profile", 30) else {
        return;
    };
    std::env::set_var("STAMPEDE_NCHAN_TEST_TOKEN", "t0ps3cret");
    // No preset: every part spelled out, as a user would for their server.
    let text = format!(
        "name = \"generic\"\ntarget = \"{}\"\nduration = \"3s\"\nwarmup = \"1s\"\nmode = \"concurrent\"\n\
         [profile]\nheaders = {{ X-Token = \"${{STAMPEDE_NCHAN_TEST_TOKEN}}\" }}\n\
         [profile.publish]\nmethod = \"websocket\"\nurl = \"/pub/{{channel}}\"\n\
         [profile.poll]\nurl = \"/poll/{{channel}}\"\ncursor = \"etag\"\nstart = \"recent\"\nbody = \"single\"\n\
         drain = true\nempty_status = [304]\n\
         [profile.sse]\nurl = \"/sse/{{channel}}\"\n\
         [publisher]\nrate = 10\n\
         [[groups]]\ntransport = \"poll\"\nclients = 5\ninterval = \"300ms\"\n\
         [[groups]]\ntransport = \"sse\"\nclients = 5\n",
        nginx.url
    );
    let dir = TempDir::new("nchan-generic");
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0, "{:?}", out.stop);
    for r in &out.rows {
        assert!(r.published.unwrap() >= 28, "{r:?}");
        assert_eq!(r.delivered, r.expected, "{}", r.group);
        assert_eq!((r.lost, r.errors), (Some(0), 0), "{r:?}");
    }
    // The secret went on the wire only; results keep the template.
    let run_json = std::fs::read_to_string(out.dir.join("run.json")).unwrap();
    assert!(
        run_json.contains("${STAMPEDE_NCHAN_TEST_TOKEN}"),
        "{run_json}"
    );
    for f in std::fs::read_dir(&out.dir).unwrap() {
        let f = f.unwrap().path();
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(9).any(|w| w == b"t0ps3cret"),
            "{} leaks the secret",
            f.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_mode_over_http2() {
    let Some(nginx) = Nginx::start("request_http2", 30) else {
        return;
    };
    let text = format!(
        "name = \"h2\"\ntarget = \"{}\"\nduration = \"2s\"\n\
         [[groups]]\nname = \"h2\"\ntransport = \"request\"\nclients = 4\nurl = \"/hello\"\nrate = 200\nhttp2 = true\n",
        nginx.h2_url
    );
    let dir = TempDir::new("nchan-h2");
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0);
    let r = &out.rows[0];
    assert!((320..=420).contains(&r.requests), "{r:?}");
    assert_eq!(r.status_2xx, Some(r.requests), "{r:?}");
    assert_eq!((r.errors, r.reconnects), (0, 0), "{r:?}");
    // An HTTP/1.1 request to an h2c-only port is not answered as HTTP/1.1:
    // proof the group really spoke HTTP/2.
    let h1 = text.replace("http2 = true\n", "");
    let out = run_plan(plan(&h1), TempDir::new("nchan-h1").path(), Shutdown::new()).await;
    assert_eq!(out.rows[0].status_2xx.unwrap_or(0), 0, "{:?}", out.rows[0]);
}

/// SSE over HTTP/2 (h2c) against nchan: a connection per client, and four
/// clients' streams on one connection; the publisher speaks h2c too (the
/// port takes no HTTP/1.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_over_http2_against_nchan() {
    let Some(nginx) = Nginx::start("sse_http2", 30) else {
        return;
    };
    let text = format!(
        "name = \"sse-h2\"\ntarget = \"{}\"\nprofile = \"nchan\"\nduration = \"3s\"\n\
         warmup = \"1s\"\nmode = \"concurrent\"\n\
         [publisher]\nrate = 20\npayload_bytes = 200\nchannels = 2\nhttp2 = true\n\
         [[groups]]\nname = \"sse-h2\"\ntransport = \"sse\"\nclients = 8\nhttp2 = true\n\
         [[groups]]\nname = \"sse-mux\"\ntransport = \"sse\"\nclients = 8\nhttp2 = true\n\
         streams_per_connection = 4\n",
        nginx.h2_url
    );
    let dir = TempDir::new("nchan-sse-h2");
    let out = run_plan(plan(&text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0, "{:?}\n{}", out.stop, nginx.error_log());
    for r in &out.rows {
        let published = r.published.unwrap();
        assert!((55..=65).contains(&published), "{}: {published}", r.group);
        // 4 clients on each of the 2 channels.
        assert_eq!(r.expected, Some(published * 4), "{}", r.group);
        assert_eq!(r.delivered, r.expected, "{}: delivered", r.group);
        assert_eq!(
            (r.lost, r.duplicated, r.errors),
            (Some(0), Some(0), 0),
            "{}: {r:?}",
            r.group
        );
    }
}
