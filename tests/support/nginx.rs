//! A real nginx with the nchan module, started as a child of the test on a
//! free loopback port with `tests/data/nchan.conf`, and stopped (with its
//! workers) when dropped. Missing nginx or nchan skips the calling test with
//! a clear message, unless `STAMPEDE_REQUIRE_NCHAN=1` (set by `.ci/run`),
//! which makes it a failure.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

const NGINX: &str = "/usr/sbin/nginx";
const NCHAN_MODULE: &str = "/usr/lib/nginx/modules/ngx_nchan_module.so";

/// A running nginx + nchan.
pub struct Nginx {
    child: Child,
    pub port: u16,
    pub url: String,
    /// HTTP/2 (h2c) listener with `/hello` only.
    pub h2_url: String,
    dir: TempDir,
}

impl Nginx {
    /// Starts nginx, or returns None (after saying why) when nginx with
    /// nchan is not installed and not required. `lp_timeout_s` is the
    /// `/lp` server hold.
    pub fn start(test: &str, lp_timeout_s: u32) -> Option<Nginx> {
        if !(Path::new(NGINX).exists() && Path::new(NCHAN_MODULE).exists()) {
            let why = format!(
                "nginx with nchan is not installed ({NGINX}, {NCHAN_MODULE}); \
                 apt-get install nginx-light libnginx-mod-nchan"
            );
            if std::env::var("STAMPEDE_REQUIRE_NCHAN").as_deref() == Ok("1") {
                panic!("{test}: STAMPEDE_REQUIRE_NCHAN=1 but {why}");
            }
            eprintln!("SKIPPED {test}: {why}");
            return None;
        }
        let template = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nchan.conf"),
        )
        .expect("tests/data/nchan.conf");
        // A port can be taken between probing and nginx binding it: retry.
        let mut last_error = String::new();
        for _ in 0..5 {
            let dir = TempDir::new(&format!("nginx-{test}"));
            let port = free_port();
            let h2_port = free_port();
            let conf = template
                .replace("{RUNDIR}", &dir.path().display().to_string())
                .replace("{PORT}", &port.to_string())
                .replace("{H2PORT}", &h2_port.to_string())
                .replace("{LP_TIMEOUT}", &lp_timeout_s.to_string());
            let conf_path = dir.path().join("nginx.conf");
            std::fs::write(&conf_path, conf).expect("write nginx.conf");
            let mut cmd = Command::new(NGINX);
            // If the test process dies without running Drop (killed, or an
            // interrupted `cargo test`), the kernel stops nginx too.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
            let child = cmd
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                // Own process group: the drop stops master and workers together.
                .process_group(0)
                .spawn()
                .expect("spawn nginx");
            let mut nginx = Nginx {
                child,
                port,
                url: format!("http://127.0.0.1:{port}"),
                h2_url: format!("http://127.0.0.1:{h2_port}"),
                dir,
            };
            if nginx.wait_ready() {
                return Some(nginx);
            }
            last_error =
                std::fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default();
            if let Some(mut e) = nginx.child.stderr.take() {
                let mut s = String::new();
                let _ = e.read_to_string(&mut s);
                last_error.push_str(&s);
            }
        }
        panic!("{test}: nginx did not start: {last_error}");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Some((200, body)) = self.request("GET", "/hello") {
                if body == "ok" {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// One blocking HTTP/1.0 request; `(status, body)`.
    pub fn request(&self, method: &str, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
        )
        .ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        let status = resp.split(' ').nth(1)?.parse().ok()?;
        let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Some((status, body.to_string()))
    }

    /// nginx's error log so far (for assertion messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pgid = self.child.id() as i32;
        // SIGTERM is nginx's fast shutdown (the master stops its workers);
        // SIGKILL the group only if the master lingers, never after it was
        // reaped (its group id could be someone else's by then).
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}
