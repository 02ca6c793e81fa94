//! Secrets from the environment go on the wire and nowhere else: not in
//! run.json, summary, time series, interval logs, report, stdout or stderr.

mod support;

use std::io::{Read, Write};
use std::process::Command;
use std::sync::{Arc, Mutex};

use support::{exe, TempDir};

const SECRET: &str = "tok-9f8e7d6c5b4a-not-for-logs";

/// A tiny HTTP/1.1 server that records every request and answers each
/// with `401` (so the run has errors whose details reach run.json) and a
/// reason phrase that quotes the secret back.
fn recording_server() -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let record = record.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                    let answer = format!(
                        "HTTP/1.1 401 Bearer {SECRET}\r\nWWW-Authenticate: Bearer {SECRET}\r\nContent-Length: 0\r\n\r\n"
                    );
                    if conn.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

#[test]
fn a_secret_is_sent_and_never_written() {
    let (url, seen) = recording_server();
    let dir = TempDir::new("secrets");
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "name = \"secrets\"\nduration = \"1s\"\n\
         [[groups]]\ntransport = \"request\"\nclients = 2\nrate = 20\nurl = \"/hello\"\n\
         method = \"POST\"\nbody = '{\"token\":\"${STAMPEDE_TEST_SECRET}\"}'\n\
         headers = { Authorization = \"Bearer ${STAMPEDE_TEST_SECRET}\" }\n",
    )
    .unwrap();
    let out_dir = dir.path().join("run");
    let out = Command::new(exe())
        .arg("run")
        .arg(&scenario)
        .args(["--target", &url, "--out"])
        .arg(&out_dir)
        .env("STAMPEDE_TEST_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let wire = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(
        wire.contains(&format!("authorization: Bearer {SECRET}")),
        "header on the wire"
    );
    assert!(
        wire.contains(&format!("{{\"token\":\"{SECRET}\"}}")),
        "body on the wire"
    );

    let mut files = 0;
    let mut stack = vec![out_dir.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(SECRET),
                "{} holds the secret",
                p.display()
            );
        }
    }
    assert!(files >= 5, "report and run files written ({files})");
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(!String::from_utf8_lossy(text).contains(SECRET), "{name}");
    }
    let info = std::fs::read_to_string(out_dir.join("run.json")).unwrap();
    assert!(
        info.contains("${STAMPEDE_TEST_SECRET}"),
        "templates are kept"
    );
    assert!(info.contains("\"errors\""), "{info}");
}

#[test]
fn fault_details_are_redacted() {
    std::env::set_var("STAMPEDE_TEST_SECRET_2", "another-secret-value-42");
    let wire = stampede::profile::expand_env("x ${STAMPEDE_TEST_SECRET_2}").unwrap();
    assert_eq!(wire, "x another-secret-value-42");
    let f = stampede::fault::Fault::new(
        stampede::fault::ErrorKind::Status,
        "server said: another-secret-value-42",
    );
    assert_eq!(f.detail, "server said: ${STAMPEDE_TEST_SECRET_2}");
}
