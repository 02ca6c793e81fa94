//! Property tests: the parsers that read what servers and files hand us
//! never panic, whatever the bytes. SSE parser (as the SSE transport
//! configures it), envelope decoder, scenario parser and planner, `.hlog`
//! reader, and the run-folder CSV readers.

mod support;

use std::time::Duration;

use proptest::prelude::*;
use stampede::envelope::Envelope;
use stampede::scenario::{self, Source};
use support::TempDir;

const SCENARIO: &str = "name = \"fuzz\"\nduration = \"1s\"\nramp_up = \"100ms\"\n\
    [publisher]\nrate = 10\npayload_bytes = 100\n\
    [limits]\nread_timeout = \"2s\"\nmax_message_bytes = 1000\n\
    [faults]\nreset = 0.1\nstall_for = \"1s\"\n\
    [[groups]]\ntransport = \"poll\"\nclients = 3\ninterval = \"200ms\"\n\
    reconnect = { max_attempts = 3, backoff = \"10ms\", jitter = 0.5 }\n\
    [[groups]]\ntransport = \"request\"\nclients = 1\nrate = 5\nurl = \"/hello\"\n\
    [thresholds]\n\"*.errors\" = \"< 10\"\n";

fn plan_text(text: &str) {
    let src = Source {
        path: "fuzz.toml".into(),
        text: text.into(),
        overridden: false,
    };
    if let Ok(sc) = scenario::parse(&src) {
        let _ = stampede::plan::build(&sc, &src, &Default::default());
    }
}

/// One valid interval log, written by stampede's own writer.
fn valid_hlog(dir: &TempDir) -> Vec<u8> {
    let path = dir.path().join("valid.hlog");
    let w = stampede::report::hlog::HlogWriter::create(
        vec![path.clone()],
        std::time::SystemTime::now(),
    )
    .unwrap();
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    for v in [10, 200, 3_000, 45_000] {
        h.record(v).unwrap();
    }
    w.write(0, &h, Duration::ZERO, Duration::from_secs(1));
    w.write(0, &h, Duration::from_secs(1), Duration::from_secs(1));
    w.finish().unwrap();
    std::fs::read(path).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sse_parser_takes_any_bytes_in_any_chunks(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..20),
    ) {
        let mut p = sse_parse::SseParser::new().max_buffer(256);
        for c in &chunks {
            p.feed(c);
            while let Some(ev) = p.next_event() {
                prop_assert!(ev.data.len() <= 256 * 3);
            }
        }
        p.finish();
        while p.next_event().is_some() {}
    }

    #[test]
    fn sse_parser_takes_hostile_streams(
        lines in prop::collection::vec(
            prop_oneof![
                Just("data: x".to_string()),
                Just("id: 7".to_string()),
                Just("retry: 99999999999999999999".to_string()),
                Just(String::new()),
                Just(":comment".to_string()),
                "[a-z:]{0,12}",
                "data: [^\n]{0,400}",
            ],
            0..40,
        ),
        eol in prop_oneof![Just("\n"), Just("\r"), Just("\r\n")],
    ) {
        let text = lines.join(eol);
        let mut p = sse_parse::SseParser::new().max_buffer(128);
        for chunk in text.as_bytes().chunks(7) {
            p.feed(chunk);
            while p.next_event().is_some() {}
        }
        let _ = p.retry();
        let _ = p.last_event_id();
    }

    #[test]
    fn envelope_decoder_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Envelope::decode(&bytes);
    }

    #[test]
    fn envelope_decoder_takes_mangled_envelopes(
        cut in 0usize..400,
        junk in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let good = Envelope { channel: 3, seq: 42, sent_ns: 123_456_789 }.encode(120);
        let mut bytes = good.into_bytes();
        let at = cut.min(bytes.len());
        bytes.splice(at..at, junk);
        let _ = Envelope::decode(&bytes);
    }

    #[test]
    fn extractor_takes_any_wrapped_bytes(
        pre in prop::collection::vec(any::<u8>(), 0..60),
        post in prop::collection::vec(any::<u8>(), 0..60),
        with_env in any::<bool>(),
    ) {
        let good = Envelope { channel: 3, seq: 42, sent_ns: 123_456_789 }.encode(40);
        let mut bytes = pre;
        if with_env {
            bytes.extend_from_slice(good.as_bytes());
        }
        bytes.extend_from_slice(&post);
        let mut profile = stampede::profile::builtin();
        profile.control = vec!["{\"type\":\"ping\"}".into(), "x".into()];
        let _ = profile.extractor().classify(&bytes);
        profile.message_path = Some("/a/0/b".into());
        let _ = profile.extractor().classify(&bytes);
    }

    #[test]
    fn scenario_parser_takes_any_text(text in "\\PC{0,300}") {
        plan_text(&text);
    }

    #[test]
    fn scenario_parser_takes_mangled_scenarios(
        at in 0usize..600,
        len in 0usize..20,
        junk in "[\\[\\]\"'={}.,0-9a-z_\n -]{0,20}",
    ) {
        let mut text = SCENARIO.to_string();
        let start = at.min(text.len());
        let end = (start + len).min(text.len());
        if text.is_char_boundary(start) && text.is_char_boundary(end) {
            text.replace_range(start..end, &junk);
        }
        plan_text(&text);
    }

    #[test]
    fn hlog_reader_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let dir = TempDir::new("fuzz-hlog");
        let path = dir.path().join("x.hlog");
        std::fs::write(&path, &bytes).unwrap();
        let _ = stampede::report::hlog::read(&path);
    }

    #[test]
    fn hlog_reader_takes_corrupted_logs(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let dir = TempDir::new("fuzz-hlog2");
        let mut bytes = valid_hlog(&dir);
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        let path = dir.path().join("x.hlog");
        std::fs::write(&path, &bytes).unwrap();
        let _ = stampede::report::hlog::read(&path);
    }

    #[test]
    fn summary_reader_takes_any_text(text in "\\PC{0,400}") {
        let dir = TempDir::new("fuzz-summary");
        std::fs::write(dir.path().join("summary.csv"), &text).unwrap();
        let _ = stampede::report::summary_csv::read(dir.path());
        std::fs::write(dir.path().join("timeseries.csv"), &text).unwrap();
        let _ = stampede::report::timeseries::read(dir.path());
    }
}

#[test]
fn a_corrupted_hlog_is_an_error_naming_the_file_exit_2() {
    use std::process::Command;
    // A real run folder, then one of its logs corrupted.
    let dir = TempDir::new("hostile-hlog");
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "name = \"h\"\nduration = \"1s\"\ndrain = \"300ms\"\n[publisher]\nrate = 10\n\
         [[groups]]\ntransport = \"sse\"\nclients = 2\n",
    )
    .unwrap();
    let run = dir.path().join("run");
    let out = Command::new(support::exe())
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--no-report", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hlog = run.join("sse.delivery.hlog");
    let mut bytes = std::fs::read(&hlog).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n / 2..] {
        *b ^= b'#';
    }
    std::fs::write(&hlog, &bytes).unwrap();
    let out = Command::new(support::exe())
        .arg("report")
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("sse.delivery.hlog"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
