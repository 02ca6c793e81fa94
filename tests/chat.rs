//! Clients that publish to their rooms on the reference server: every
//! member's message is expected at every other member subscribed at the
//! time, and delivered exactly; three processes account exactly as one.

mod support;

use std::path::Path;
use std::process::Command;

use stampede::metrics::summary::SummaryRow;
use support::{exe, TempDir};

/// 36 clients in 6 rooms, each publishing 2 messages/s; a second group
/// only listens (fan-out to members that never publish).
const SCENARIO: &str = r#"
name = "chat-small"
duration = "3s"
ramp_up = "1s"
warmup = "1s"
mode = "concurrent"

[publisher]
rate = 0
channels = 6

[[groups]]
name = "talkers"
transport = "websocket"
clients = 30
publish = { rate = 2, via = "same" }

[[groups]]
name = "listeners"
transport = "websocket"
clients = 6
"#;

fn run(dir: &Path, out: &str, extra: &[&str]) -> Vec<SummaryRow> {
    run_text(dir, SCENARIO, out, extra)
}

fn run_text(dir: &Path, text: &str, out: &str, extra: &[&str]) -> Vec<SummaryRow> {
    let scenario = dir.join(format!("{out}.toml"));
    std::fs::write(&scenario, text).unwrap();
    let out_dir = dir.join(out);
    let o = Command::new(exe())
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out_dir)
        .args(extra)
        .env_remove("STAMPEDE_TARGET")
        .env_remove("STAMPEDE_SHARD")
        .env_remove("STAMPEDE_START_AT")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    stampede::report::summary_csv::read(&out_dir).unwrap()
}

#[test]
fn room_members_receive_every_other_members_messages_exactly_in_one_or_three_processes() {
    let dir = TempDir::new("chat");
    let one = run(dir.path(), "one", &[]);
    let three = run(dir.path(), "three", &["--processes", "3"]);
    for rows in [&one, &three] {
        let talkers = support::row(rows, "talkers");
        let listeners = support::row(rows, "listeners");
        for r in [talkers, listeners] {
            let expected = r.expected.unwrap();
            assert_eq!(r.delivered, Some(expected), "{}: delivered", r.group);
            assert_eq!(r.lost, Some(0), "{}: lost", r.group);
            assert_eq!(r.duplicated, Some(0), "{}: duplicated", r.group);
        }
        // Rooms of 5 talkers and 1 listener; each talker publishes ~6
        // messages in the 3 s window: a talker hears 4 others, a listener 5.
        assert!(talkers.expected.unwrap() >= 30 * 4 * 5, "{talkers:?}");
        assert!(listeners.expected.unwrap() >= 6 * 5 * 5, "{listeners:?}");
        assert_eq!(listeners.published, Some(0));
        assert!(talkers.published.unwrap() >= 30 * 5);
    }
    // Without `rooms`, no room-size table.
    assert!(!dir.path().join("one").join("rooms.csv").exists());
    for g in ["talkers", "listeners"] {
        let (a, b) = (support::row(&one, g), support::row(&three, g));
        assert_eq!(
            (a.published, a.expected, a.delivered),
            (b.published, b.expected, b.delivered),
            "{g}: three processes account as one"
        );
    }
}

/// Rooms of Zipf sizes: every member publishes exactly 6 messages in the
/// 3 s measured window (2/s, all joined before it), so a room of `m`
/// expects `6 m (m − 1)`.
const ZIPF: &str = r#"
name = "chat-zipf"
duration = "3s"
ramp_up = "1s"
warmup = "1s"
rooms = { count = 8, size = "zipf", s = 1.1, seed = 3 }

[publisher]
rate = 0

[[groups]]
name = "members"
transport = "websocket"
clients = 60
publish = { rate = 2 }
"#;

#[test]
fn zipf_rooms_account_exactly_in_one_or_three_processes() {
    let dir = TempDir::new("chat-zipf");
    let sizes = stampede::rooms::zipf_sizes(60, 8, 1.1);
    assert!(sizes[0] > 3 * sizes[7], "{sizes:?}");
    let expected: u64 = sizes.iter().map(|m| 6 * m * m.saturating_sub(1)).sum();
    let mut all = Vec::new();
    for (out, extra) in [("one", &[][..]), ("three", &["--processes", "3"][..])] {
        let rows = run_text(dir.path(), ZIPF, out, extra);
        let r = support::row(&rows, "members").clone();
        assert_eq!(r.published, Some(60 * 6), "{out}");
        assert_eq!(r.expected, Some(expected), "{out}");
        assert_eq!(r.delivered, Some(expected), "{out}");
        assert_eq!((r.lost, r.duplicated), (Some(0), Some(0)), "{out}");
        all.push(r);
    }
    room_buckets_add_up(dir.path(), &sizes, &all[0]);
}

/// `rooms.csv`: one row per room-size bucket with exactly the rooms,
/// members and accounting the Zipf sizes give, adding up to the group's
/// row; three processes count exactly as one, and their percentiles come
/// from the shards' added histograms.
fn room_buckets_add_up(dir: &Path, sizes: &[u64], group: &SummaryRow) {
    use stampede::folder::rooms::{read, RoomsRow};
    use stampede::rooms::{bucket, bucket_label};
    let one = read(&dir.join("one")).unwrap();
    let three = read(&dir.join("three")).unwrap();
    let mut want: Vec<RoomsRow> = Vec::new();
    for &m in sizes.iter().filter(|&&m| m > 0) {
        let label = bucket_label(bucket(m).unwrap());
        let i = match want.iter().position(|r| r.room_size == label) {
            Some(i) => i,
            None => {
                want.push(RoomsRow {
                    group: "members".into(),
                    transport: "websocket".into(),
                    room_size: label,
                    room_size_min: m,
                    room_size_max: m,
                    ..RoomsRow::default()
                });
                want.len() - 1
            }
        };
        let r = &mut want[i];
        r.room_size_min = r.room_size_min.min(m);
        r.room_size_max = r.room_size_max.max(m);
        r.rooms += 1;
        r.members += m;
        r.expected += 6 * m * (m - 1);
    }
    want.sort_by_key(|r| bucket(r.room_size_min));
    assert!(want.len() >= 3, "{want:?}");
    let counts = |r: &RoomsRow| {
        (
            r.group.clone(),
            r.room_size.clone(),
            r.room_size_min,
            r.room_size_max,
            r.rooms,
            r.members,
            r.expected,
        )
    };
    for (rows, out) in [(&one, "one"), (&three, "three")] {
        assert_eq!(
            rows.iter().map(counts).collect::<Vec<_>>(),
            want.iter().map(counts).collect::<Vec<_>>(),
            "{out}: rooms.csv"
        );
        for r in rows.iter() {
            assert_eq!(
                (r.delivered, r.lost, r.duplicated),
                (r.expected, 0, 0),
                "{out}: {r:?}"
            );
            if r.delivered > 0 {
                let p = [r.delivery_p50_ms, r.delivery_p99_ms, r.delivery_max_ms];
                assert!(p.iter().all(Option::is_some), "{out}: {r:?}");
                assert!(p[0] <= p[1] && p[1] <= p[2], "{out}: {r:?}");
            }
        }
        assert_eq!(
            rows.iter().map(|r| r.delivered).sum::<u64>(),
            group.delivered.unwrap(),
            "{out}: the buckets add up to the group"
        );
        let folder = dir.join(out);
        let json = stampede::folder::summary_json::SummaryJson::read(&folder).unwrap();
        assert_eq!(
            &json.rooms, rows,
            "{out}: summary.json has rooms.csv's rows"
        );
        let html = std::fs::read_to_string(folder.join("report.html")).unwrap();
        assert!(
            html.contains("id=\"rooms-table\"") && html.contains("id=\"rooms\""),
            "{out}: the report shows the rooms table and chart"
        );
    }
    assert!(dir.join("one/charts/rooms.svg").exists());
    // Merged, not averaged: the largest delivery of a bucket is the
    // largest any shard saw, and its median lies within the shards'.
    let shards: Vec<Vec<RoomsRow>> = (0..3)
        .map(|i| read(&dir.join("three").join(format!("shard-{i}"))).unwrap())
        .collect();
    for r in &three {
        let mut of_shards: Vec<&RoomsRow> = shards
            .iter()
            .filter_map(|s| s.iter().find(|x| x.room_size == r.room_size))
            .collect();
        assert_eq!(
            of_shards.iter().map(|x| x.members).sum::<u64>(),
            r.members,
            "{r:?}"
        );
        of_shards.retain(|x| x.delivered > 0);
        let max = of_shards
            .iter()
            .filter_map(|x| x.delivery_max_ms)
            .fold(0.0, f64::max);
        assert_eq!(r.delivery_max_ms, Some(max), "{r:?}");
        let p50s: Vec<f64> = of_shards.iter().filter_map(|x| x.delivery_p50_ms).collect();
        let (lo, hi) = p50s
            .iter()
            .fold((f64::MAX, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        let p50 = r.delivery_p50_ms.unwrap();
        assert!(lo <= p50 && p50 <= hi, "{p50} not within {p50s:?}");
    }
}

/// "SSE down, POST up": members receive their room on SSE and publish
/// each message with a POST to the reference server's publish endpoint,
/// on a keep-alive connection of their own. Every member publishes exactly
/// 6 messages in the 3 s measured window (2/s), so rooms of 5 expect
/// `6 × 5 × 4` each; every POST is answered, so `publish_ack` has samples.
const SSE_POST: &str = r#"
name = "chat-sse-post"
duration = "3s"
ramp_up = "1s"
warmup = "1s"

[publisher]
rate = 0
channels = 4

[[groups]]
name = "members"
transport = "sse"
clients = 20
publish = { rate = 2, via = "http" }
"#;

#[test]
fn sse_members_posting_over_http_are_delivered_exactly_in_one_or_three_processes() {
    let dir = TempDir::new("chat-sse-post");
    let mut all = Vec::new();
    for (out, extra) in [("one", &[][..]), ("three", &["--processes", "3"][..])] {
        let rows = run_text(dir.path(), SSE_POST, out, extra);
        let r = support::row(&rows, "members").clone();
        assert_eq!(r.published, Some(20 * 6), "{out}");
        assert_eq!(r.expected, Some(4 * 6 * 5 * 4), "{out}");
        assert_eq!(r.delivered, r.expected, "{out}");
        assert_eq!((r.lost, r.duplicated), (Some(0), Some(0)), "{out}");
        assert_eq!(r.errors, 0, "{out}");
        assert_eq!(r.publishes_failed, Some(0), "{out}");
        // Counted in the measured window when answered: the answer to a
        // message due just before the window ends may land after it.
        let acked = r.publishes_acked.unwrap();
        assert!((20 * 5..=20 * 7).contains(&acked), "{out}: {acked} acked");
        let (p50, p99) = (r.publish_ack_p50_ms.unwrap(), r.publish_ack_p99_ms.unwrap());
        assert!(p50 > 0.0 && p99 >= p50, "{out}: {p50} {p99}");
        assert!(dir
            .path()
            .join(out)
            .join("members.publish-ack.hlog")
            .exists());
        all.push(r);
    }
}

/// A publish endpoint that refuses every other POST with `500`, in front
/// of the reference server's hub (the scripted peer): the refused messages
/// are errors of kind `status`, counted in `publishes_failed`, named in
/// `run.json`, and expected at no receiver, so nothing is `lost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_posts_are_errors_and_not_expected_at_receivers() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use axum::extract::{Path as UrlPath, State};
    use axum::http::StatusCode;
    use axum::routing::post;
    use stampede::reference::hub::Hub;

    #[derive(Clone)]
    struct Gate {
        hub: Arc<Hub>,
        posts: Arc<AtomicU64>,
    }
    async fn gate(
        State(g): State<Gate>,
        UrlPath(ch): UrlPath<String>,
        body: bytes::Bytes,
    ) -> (StatusCode, &'static str) {
        if g.posts.fetch_add(1, Ordering::Relaxed) % 2 == 1 {
            return (StatusCode::INTERNAL_SERVER_ERROR, "scripted refusal");
        }
        g.hub.channel(&ch).publish(body);
        (StatusCode::OK, "ok")
    }
    let hub = Arc::new(Hub::default());
    let gate_state = Gate {
        hub: hub.clone(),
        posts: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/gate/{ch}", post(gate).with_state(gate_state.clone()))
        .merge(stampede::reference::server::router(hub));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        })
    };

    let mut p = support::plan(SSE_POST);
    p.target = stampede::plan::TargetPlan::Url {
        url: format!("http://{addr}"),
        authority: addr.to_string(),
        base_path: String::new(),
    };
    std::sync::Arc::make_mut(&mut p.profile).publish.url = "/gate/{channel}".into();
    let dir = TempDir::new("chat-refused");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        support::run_plan(p, dir.path(), stampede::shutdown::Shutdown::new()),
    )
    .await
    .expect("the run ended");
    stop.cancel();
    let _ = server.await;

    let r = support::row(&out.rows, "members");
    let failed = r.publishes_failed.unwrap();
    let status = r.errors_by_kind[stampede::fault::ErrorKind::Status.index()];
    assert!(failed >= 20 * 2, "{r:?}");
    assert_eq!(status, failed, "every refusal is a status error");
    assert_eq!(r.errors, failed, "and nothing else failed");
    // Each accepted message is expected at the 4 other members of its
    // room, and delivered; the refused ones are not expected at all.
    let published = r.published.unwrap();
    assert!(published > 0 && published < 20 * 6, "{r:?}");
    assert_eq!(r.expected, Some(4 * published));
    assert_eq!(r.delivered, r.expected);
    assert_eq!((r.lost, r.duplicated), (Some(0), Some(0)));
    assert!(gate_state.posts.load(Ordering::Relaxed) >= 2 * failed);
    let run_json = std::fs::read_to_string(dir.path().join("run.json")).unwrap();
    assert!(
        run_json.contains("publish to /gate/") && run_json.contains("answered 500"),
        "run.json names the refusal: {run_json}"
    );
}
