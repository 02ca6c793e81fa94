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
