//! Headless Chromium for the browser tests: where it is, skipping (or
//! failing under `STAMPEDE_REQUIRE_BROWSER=1`) when it is missing, a child
//! reaped on drop, and the DevTools HTTP endpoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::Duration;

pub const CHROMIUM: &str = "/usr/bin/chromium";

pub fn chromium_or_skip(test: &str) -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var("STAMPEDE_REQUIRE_BROWSER").as_deref() == Ok("1") {
        panic!("STAMPEDE_REQUIRE_BROWSER=1 but {CHROMIUM} is missing: apt-get install chromium");
    }
    eprintln!("SKIPPED {test}: {CHROMIUM} is not installed (apt-get install chromium)");
    false
}

/// A headless Chromium, killed on drop.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One blocking GET on the DevTools HTTP endpoint (HTTP/1.1: it ignores
/// HTTP/1.0 and keeps the connection open, so the body is read by length).
pub fn devtools_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("devtools");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("write");
    let mut r = BufReader::new(s);
    let mut length = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("head");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().expect("length");
            }
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).expect("body");
    String::from_utf8_lossy(&body).into_owned()
}
