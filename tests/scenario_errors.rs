//! Malformed scenarios: every error names file:line:column and the key, and
//! the CLI exits with code 2.

mod support;

use std::path::Path;
use std::process::Command;

use stampede::plan::{self, Overrides};
use stampede::scenario;
use support::TempDir;

const GOOD: &str = r#"name = "x"
duration = "2s"

[publisher]
rate = 10

[[groups]]
transport = "sse"
clients = 3
"#;

fn error_for(dir: &Path, text: &str) -> String {
    let path = dir.join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let result = scenario::load(&path, &[])
        .and_then(|(sc, src)| plan::build(&sc, &src, &Overrides::default()));
    match result {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2);
            e.to_string()
        }
    }
}

#[test]
fn errors_name_the_place_and_the_key() {
    let dir = TempDir::new("scenario-errors");
    let at = |s: &str| format!("{}:{s}", dir.path().join("bad.toml").display());
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "duration = \"2s\"",
            "duration = \"two seconds\"",
            &["2:12", "duration", "invalid duration"],
        ),
        ("clients = 3", "clients = 0", &["9:11", "clients", "1..="]),
        ("clients = 3", "clients = \"many\"", &["9:11", "clients"]),
        (
            "transport = \"sse\"",
            "transport = \"carrier-pigeon\"",
            &["8:13", "carrier-pigeon", "websocket"],
        ),
        (
            "clients = 3",
            "clients = 3\ninterval = \"1s\"",
            &["10:12", "interval", "poll only"],
        ),
        ("rate = 10", "rate = -1", &["5:8", "publisher.rate"]),
        ("rate = 10", "rate = 10\nburst = 3", &["6:1", "burst"]),
        (
            "rate = 10",
            "rate = 10\nstages = [{ rate = 0, for = \"1s\" }]",
            &["6:20", "publisher.stages", "rate must be in"],
        ),
        (
            "rate = 10",
            "rate = 10\nstages = [{ burst = 500, for = \"0s\" }]",
            &["6:32", "publisher.stages", "longer than 0s"],
        ),
        (
            "rate = 10",
            "rate = 10\nstages = [{ rate = 5, for = \"1s\" }, { to = 5, for = \"1s\" }]",
            &["6:37", "publisher.stages", "{ to = 100, over"],
        ),
        (
            "rate = 10",
            "rate = 10\nstages = []",
            &["6:10", "publisher.stages", "at least one"],
        ),
        (
            "name = \"x\"",
            "name = \"x\"\ntarget = \"ftp://example\"",
            &["2:10", "target", "ftp"],
        ),
        ("[publisher]", "[publisher", &["4:"]),
        (
            "[publisher]",
            "[storm]\nat = \"10s\"\n[publisher]",
            &["5:6", "storm.at", "before publishing stops"],
        ),
        (
            "[publisher]",
            "[storm]\nat = \"1s\"\nvia = \"server\"\n[publisher]",
            &["6:7", "storm.via", "client"],
        ),
        (
            "clients = 3",
            "clients = 3\nchurn = { rate = 0 }",
            &["10:9", "churn", "rate"],
        ),
        (
            "clients = 3",
            "clients = 3\nchurn = { rate = 1, gap = \"5s\" }",
            &["10:9", "churn", "gap"],
        ),
        (
            "clients = 3",
            "clients = 3\nsession = { distribution = \"gamma\", mean = \"1s\" }",
            &["10:11", "session", "gamma"],
        ),
        (
            "clients = 3",
            "clients = 3\nsession = { distribution = \"uniform\", mean = \"1s\" }",
            &["10:11", "session", "min"],
        ),
        (
            "clients = 3",
            "clients = 3\narrival = { rate = 1e9 }",
            &["10:11", "arrival", "rate"],
        ),
    ];
    for (from, to, needles) in cases {
        let text = GOOD.replacen(from, to, 1);
        assert_ne!(text, GOOD);
        let msg = error_for(dir.path(), &text);
        let place = at(needles[0]);
        assert!(msg.contains(&place), "{msg:?} lacks {place:?}");
        for n in &needles[1..] {
            assert!(msg.contains(n), "{msg:?} lacks {n:?}");
        }
    }
    let msg = error_for(
        dir.path(),
        "name = \"x\"\nduration = \"1s\"\n[publisher]\nrate = 1\n",
    );
    assert!(msg.contains("groups"), "{msg}");
}

#[test]
fn set_overrides_apply_and_are_checked() {
    let dir = TempDir::new("scenario-set");
    let path = dir.path().join("s.toml");
    std::fs::write(&path, GOOD).unwrap();
    let sets = vec![
        "groups.sse.clients=7".to_string(),
        "publisher.rate=2.5".to_string(),
    ];
    let (sc, src) = scenario::load(&path, &sets).unwrap();
    let p = plan::build(&sc, &src, &Overrides::default()).unwrap();
    assert_eq!(p.groups[0].clients, 7);
    assert_eq!(p.publisher.as_ref().map(|p| p.rate_per_s), Some(2.5));
    let bad = vec!["groups.sse.clients=0".to_string()];
    let (sc, src) = scenario::load(&path, &bad).unwrap();
    let e = plan::build(&sc, &src, &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("after --set") && e.contains("clients"), "{e}");
    let e = scenario::load(&path, &["groups.nope.clients=1".to_string()]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn cli_exits_2_on_a_bad_scenario_and_names_the_place() {
    let dir = TempDir::new("scenario-cli");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, GOOD.replace("clients = 3", "clients = 0")).unwrap();
    let out = Command::new(support::exe())
        .arg("run")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:9:11") && err.contains("clients"),
        "{err}"
    );
    let missing = Command::new(support::exe())
        .args(["run", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let usage = Command::new(support::exe())
        .args(["run", "--duration", "soon", "x.toml"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
}

/// A WebSocket scenario against a URL target with its own profile; `{group}`
/// and `{profile}` are extra lines in the group and the `[profile]` table.
fn ws_scenario(group: &str, profile: &str) -> String {
    format!(
        r#"name = "x"
duration = "2s"
target = "http://127.0.0.1:9"
[publisher]
rate = 10
[[groups]]
transport = "websocket"
clients = 3
{group}
[profile]
{profile}
[profile.publish]
url = "/pub/{{channel}}"
[profile.websocket]
url = "/ws/{{channel}}"
"#
    )
}

#[test]
fn an_extension_offer_stampede_does_not_implement_is_a_scenario_error() {
    let dir = TempDir::new("scenario-ext");
    let at = |s: &str| format!("{}:{s}", dir.path().join("bad.toml").display());
    let cases: &[(String, &[&str])] = &[
        (
            ws_scenario(
                "",
                "headers = { Sec-WebSocket-Extensions = \"x-webkit-deflate-frame\" }",
            ),
            &["10:1", "headers", "x-webkit-deflate-frame", "not implement"],
        ),
        (
            ws_scenario(
                "",
                "headers = { Sec-WebSocket-Extensions = \"permessage-deflate, x-custom\" }",
            ),
            &["10:1", "headers", "x-custom"],
        ),
        (
            ws_scenario(
                "headers = { Sec-WebSocket-Extensions = \"permessage-deflate; mystery\" }",
                "",
            ),
            &["9:11", "headers", "mystery"],
        ),
    ];
    for (text, needles) in cases {
        let msg = error_for(dir.path(), text);
        let place = at(needles[0]);
        assert!(msg.contains(&place), "{msg:?} lacks {place:?}");
        for n in &needles[1..] {
            assert!(msg.contains(n), "{msg:?} lacks {n:?}");
        }
    }
    // `compression` is a WebSocket (and echo, ws-rpc) key.
    let msg = error_for(
        dir.path(),
        &GOOD.replace("clients = 3", "clients = 3\ncompression = true"),
    );
    assert!(
        msg.contains(&at("10:15")) && msg.contains("websocket / echo / ws-rpc only"),
        "{msg}"
    );
}

#[test]
fn compression_is_asked_by_key_or_by_an_offer_stampede_implements() {
    let build = |text: &str| {
        let src = scenario::Source {
            path: "ok.toml".into(),
            text: text.into(),
            overridden: false,
        };
        let sc = scenario::parse(&src).unwrap();
        plan::build(&sc, &src, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"))
    };
    let p = build(&ws_scenario("compression = true", ""));
    assert!(p.groups[0].params.compression);
    let p = build(&ws_scenario(
        "",
        "headers = { Sec-WebSocket-Extensions = \"permessage-deflate; client_max_window_bits\" }",
    ));
    assert!(p.groups[0]
        .wire_headers
        .iter()
        .any(|(n, _)| n == "sec-websocket-extensions"));
    let p = build(&ws_scenario("", "").replace(
        "[profile.websocket]\n",
        "[profile.websocket]\ncompression = true\n",
    ));
    assert!(p.profile.websocket.as_ref().unwrap().compression);
}
