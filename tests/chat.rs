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
