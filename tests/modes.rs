//! Request mode and echo mode against the reference server, and the scenario
//! checks that come with them and with target profiles.

mod support;

use stampede::fault::ErrorKind;
use stampede::shutdown::Shutdown;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_echo_groups_measure_round_trips() {
    let text = "name = \"modes\"\nduration = \"2s\"\nmode = \"concurrent\"\n\
        [[groups]]\nname = \"hello\"\ntransport = \"request\"\nclients = 4\nurl = \"/hello\"\nrate = 200\n\
        [[groups]]\nname = \"mixed\"\ntransport = \"request\"\nclients = 2\nurls = [\"/hello\", \"/nope\"]\n\
        method = \"get\"\nexpect_status = [200]\n\
        [[groups]]\nname = \"echo\"\ntransport = \"echo\"\nclients = 5\nrate = 100\nmessage_bytes = 300\n";
    let dir = TempDir::new("modes");
    let out = run_plan(plan(text), dir.path(), Shutdown::new()).await;
    assert_eq!(out.exit_code, 0);
    let row = |g: &str| out.rows.iter().find(|r| r.group == g).unwrap().clone();

    let hello = row("hello");
    // 2 s at 200/s; late sends on a busy machine may fall after the hold.
    assert!((320..=420).contains(&hello.requests), "{hello:?}");
    assert_eq!(hello.status_2xx, Some(hello.requests));
    assert_eq!(hello.errors, 0);
    assert!(hello.requests_per_s.unwrap() > 150.0);

    // Closed model, two URLs round-robin: half answer 404, counted as
    // status errors without closing the connection.
    let mixed = row("mixed");
    let (ok, missing) = (mixed.status_2xx.unwrap(), mixed.status_4xx.unwrap());
    assert!(ok > 100 && missing > 100, "{mixed:?}");
    assert!(ok.abs_diff(missing) <= 2, "{mixed:?}");
    assert_eq!(mixed.errors_of(ErrorKind::Status), missing);
    assert_eq!(mixed.reconnects, 0);

    let echo = row("echo");
    // 2 s at 100/s is 200 sends, plus each client's tick at the hold's
    // first and last instants (5 clients); fewer on a busy machine.
    assert!((150..=210 + 5).contains(&echo.requests), "{echo:?}");
    assert_eq!(echo.errors, 0, "{echo:?}");
    assert!(echo.request_p50_ms.is_some() && echo.request_uncorrected_p99_ms.is_some());
    // No HTTP statuses, no event stream: those cells stay empty.
    assert_eq!(echo.status_2xx, None);
    for r in [&hello, &mixed, &echo] {
        assert_eq!(
            (r.published, r.delivered, r.lost),
            (None, None, None),
            "{}",
            r.group
        );
        assert_eq!(r.delivery_p50_ms, None);
    }
    // Every round trip is in the interval logs.
    let hlog = out.dir.join("echo.request.hlog");
    assert!(hlog.exists());
}

fn plan_err(text: &str) -> String {
    let src = stampede::scenario::Source {
        path: "s.toml".into(),
        text: text.into(),
        overridden: false,
    };
    let sc = stampede::scenario::parse(&src).unwrap();
    stampede::plan::build(&sc, &src, &Default::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

#[test]
fn mode_and_profile_errors_name_the_place() {
    let e = plan_err("name = \"x\"\nduration = \"1s\"\n[publisher]\nrate = 1\n[[groups]]\ntransport = \"sse\"\nclients = 1\nrate = 5\n");
    assert!(e.contains("s.toml:8:8") && e.contains("`rate`"), "{e}");
    let e =
        plan_err("name = \"x\"\nduration = \"1s\"\n[[groups]]\ntransport = \"sse\"\nclients = 1\n");
    assert!(e.contains("[publisher]"), "{e}");
    let e = plan_err(
        "name = \"x\"\nduration = \"1s\"\n[[groups]]\ntransport = \"request\"\nclients = 1\n",
    );
    assert!(e.contains("`url`"), "{e}");
    let e = plan_err("name = \"x\"\nduration = \"1s\"\n[[groups]]\ntransport = \"request\"\nclients = 1\nurl = \"hello\"\n");
    assert!(
        e.contains("s.toml:6:7") && e.contains("must be a path"),
        "{e}"
    );
    let e = plan_err(
        "name = \"x\"\nduration = \"1s\"\n[[groups]]\ntransport = \"echo\"\nclients = 1\n",
    );
    assert!(e.contains("needs `rate`"), "{e}");
    let e = plan_err("name = \"x\"\nduration = \"1s\"\ntarget = \"http://127.0.0.1:1\"\nprofile = \"nchan\"\n[publisher]\nrate = 1\n[[groups]]\ntransport = \"ndjson\"\nclients = 1\n");
    assert!(e.contains("nchan profile does not support ndjson"), "{e}");
    let e = plan_err("name = \"x\"\nduration = \"1s\"\ntarget = \"http://127.0.0.1:1\"\nprofile = \"nope\"\n[publisher]\nrate = 1\n[[groups]]\ntransport = \"sse\"\nclients = 1\n");
    assert!(
        e.contains("s.toml:4:11") && e.contains("unknown profile"),
        "{e}"
    );
    let e = plan_err("name = \"x\"\nduration = \"1s\"\nprofile = \"nchan\"\n[publisher]\nrate = 1\n[[groups]]\ntransport = \"sse\"\nclients = 1\n");
    assert!(e.contains("needs --target"), "{e}");
    let e = plan_err("name = \"x\"\nduration = \"1s\"\ntarget = \"http://127.0.0.1:1\"\n[profile]\n[profile.publish]\nurl = \"/p/{channel}\"\n[profile.poll]\nurl = \"/q/{channel}\"\ncursor = \"sideways\"\n[publisher]\nrate = 1\n[[groups]]\ntransport = \"poll\"\nclients = 1\n");
    assert!(e.contains("s.toml:4:1") && e.contains("sideways"), "{e}");
    let e = plan_err("name = \"x\"\nduration = \"1s\"\ntarget = \"http://127.0.0.1:1\"\n[profile]\nheaders = { Authorization = \"Bearer ${STAMPEDE_SURELY_UNSET_VAR}\" }\n[profile.publish]\nurl = \"/p/{channel}\"\n[profile.sse]\nurl = \"/s/{channel}\"\n[publisher]\nrate = 1\n[[groups]]\ntransport = \"sse\"\nclients = 1\n");
    assert!(e.contains("STAMPEDE_SURELY_UNSET_VAR is not set"), "{e}");
}

#[test]
fn every_shipped_scenario_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        if f.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let (sc, src) = stampede::scenario::load(&f, &[]).unwrap_or_else(|e| panic!("{e}"));
        stampede::plan::build(&sc, &src, &Default::default())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        n += 1;
    }
    assert!(n >= 6, "{n} scenarios");
}

/// The README's generic-profile example is a valid profile for every
/// subscribing transport.
#[test]
fn readme_generic_profile_example_builds() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("### generic").unwrap()..];
    let start = section.find("```toml\n").unwrap() + 8;
    let block = &section[start..start + section[start..].find("```").unwrap()];
    std::env::set_var("API_TOKEN", "x");
    let mut text =
        format!("name = \"readme\"\nduration = \"1s\"\n{block}\n[publisher]\nrate = 1\n");
    for t in ["poll", "long-poll", "sse", "ndjson", "websocket"] {
        text.push_str(&format!("[[groups]]\ntransport = \"{t}\"\nclients = 1\n"));
    }
    let src = stampede::scenario::Source {
        path: "README.md".into(),
        text,
        overridden: false,
    };
    let sc = stampede::scenario::parse(&src).unwrap_or_else(|e| panic!("{e}"));
    let plan =
        stampede::plan::build(&sc, &src, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.profile.name, "generic");
    assert!(plan.profile.ndjson.is_some());
}
