//! Real message brokers for the STOMP and MQTT tests, started by the test
//! on free loopback ports and stopped (with everything they started) when
//! dropped:
//! - Mosquitto (Debian `mosquitto`) with one websockets listener;
//! - a private RabbitMQ node (Debian `rabbitmq-server`) with the
//!   `rabbitmq_web_stomp` and `rabbitmq_web_mqtt` plugins, its own node
//!   name, data and log folders, Erlang cookie and epmd (on a free port, so
//!   a system RabbitMQ, running or not, is never touched).
//!
//! A broker that is not installed skips the calling test with a message,
//! unless `STAMPEDE_REQUIRE_MQTT=1` / `STAMPEDE_REQUIRE_RABBITMQ=1` (set by
//! `.ci/run`), which makes it a failure.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

const MOSQUITTO: &str = "/usr/sbin/mosquitto";
const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const RABBITMQCTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";
const EPMD: &str = "/usr/bin/epmd";

fn skip(test: &str, var: &str, why: &str) -> Option<std::convert::Infallible> {
    if std::env::var(var).as_deref() == Ok("1") {
        panic!("{test}: {var}=1 but {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    None
}

/// A free loopback port (it may be taken before the broker binds it: the
/// callers retry).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn wait_port(port: u16, child: &mut Child, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Spawns `cmd` in its own process group, killed by the kernel if the
/// test thread dies first.
fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.stdin(Stdio::null()).process_group(0).spawn()
}

/// SIGTERM to the group, SIGKILL if it lingers, and reaped.
fn stop_group(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pgid = child.id() as i32;
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
}

/// A running Mosquitto with a websockets listener.
pub struct Mosquitto {
    child: Child,
    /// `http://127.0.0.1:PORT` (stampede's target URL).
    pub url: String,
    dir: TempDir,
}

impl Mosquitto {
    /// Starts Mosquitto, or says why not and returns None.
    pub fn start(test: &str) -> Option<Mosquitto> {
        if !Path::new(MOSQUITTO).exists() {
            skip(
                test,
                "STAMPEDE_REQUIRE_MQTT",
                &format!("{MOSQUITTO} is not installed (apt-get install mosquitto)"),
            )?;
        }
        let mut last = String::new();
        for _ in 0..5 {
            let dir = TempDir::new(&format!("mosquitto-{test}"));
            let port = free_port();
            let plain = free_port();
            let conf = dir.path().join("mosquitto.conf");
            // Run as the test's user (no privilege drop to `mosquitto`),
            // nothing written to disk, queues deep enough for a resumed
            // session to get everything it missed. The plain listener is
            // there because 2.0.11 refuses to start with websockets
            // listeners only (fixed in 2.0.12).
            std::fs::write(
                &conf,
                format!(
                    "user {user}\npersistence false\nlog_dest stderr\nlog_type error\n\
                     log_type warning\nmax_queued_messages 100000\n\
                     listener {plain} 127.0.0.1\nallow_anonymous true\n\
                     listener {port} 127.0.0.1\nprotocol websockets\nallow_anonymous true\n",
                    user = std::env::var("USER").unwrap_or_else(|_| "root".into()),
                ),
            )
            .expect("write mosquitto.conf");
            let mut child = spawn(
                Command::new(MOSQUITTO)
                    .arg("-c")
                    .arg(&conf)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped()),
            )
            .expect("spawn mosquitto");
            if wait_port(port, &mut child, Duration::from_secs(10)) {
                return Some(Mosquitto {
                    child,
                    url: format!("http://127.0.0.1:{port}"),
                    dir,
                });
            }
            stop_group(&mut child);
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                last.clear();
                let _ = e.read_to_string(&mut last);
            }
        }
        panic!("{test}: mosquitto did not start: {last}");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        stop_group(&mut self.child);
        let _ = &self.dir;
    }
}

/// A private RabbitMQ node with web-stomp and web-mqtt.
pub struct RabbitMq {
    node: Child,
    epmd: Child,
    env: Vec<(&'static str, String)>,
    /// `http://127.0.0.1:PORT` of web-stomp (path `/ws`).
    pub stomp_url: String,
    /// `http://127.0.0.1:PORT` of web-mqtt (path `/ws`).
    pub mqtt_url: String,
    /// How long the node took to start (printed by the tests).
    pub startup: Duration,
    dir: TempDir,
}

impl RabbitMq {
    /// Starts a node, or says why not and returns None. Slow (seconds):
    /// one node per test binary.
    pub fn start(test: &str) -> Option<RabbitMq> {
        for bin in [RABBITMQ_SERVER, RABBITMQCTL, EPMD] {
            if !Path::new(bin).exists() {
                skip(
                    test,
                    "STAMPEDE_REQUIRE_RABBITMQ",
                    &format!("{bin} is not installed (apt-get install rabbitmq-server)"),
                )?;
            }
        }
        let mut last = String::new();
        for _ in 0..3 {
            let dir = TempDir::new(&format!("rabbitmq-{test}"));
            let d = |p: &str| dir.path().join(p).display().to_string();
            let [amqp, dist, epmd_port, stomp, mqtt, raw_stomp, raw_mqtt] =
                [(); 7].map(|_| free_port());
            std::fs::write(
                d("rabbitmq.conf"),
                format!(
                    "listeners.tcp.default = 127.0.0.1:{amqp}\n\
                     web_stomp.tcp.ip = 127.0.0.1\nweb_stomp.tcp.port = {stomp}\n\
                     web_mqtt.tcp.ip = 127.0.0.1\nweb_mqtt.tcp.port = {mqtt}\n\
                     stomp.listeners.tcp.1 = 127.0.0.1:{raw_stomp}\n\
                     mqtt.listeners.tcp.default = 127.0.0.1:{raw_mqtt}\n\
                     log.console = false\nlog.file.level = warning\n"
                ),
            )
            .expect("write rabbitmq.conf");
            std::fs::write(
                d("enabled_plugins"),
                "[rabbitmq_web_stomp,rabbitmq_web_mqtt].\n",
            )
            .expect("write enabled_plugins");
            let env: Vec<(&'static str, String)> = vec![
                // The Erlang cookie goes to $HOME: a private one.
                ("HOME", d("")),
                (
                    "RABBITMQ_NODENAME",
                    format!("stampede-{}-{dist}@localhost", std::process::id()),
                ),
                ("RABBITMQ_NODE_PORT", amqp.to_string()),
                ("RABBITMQ_DIST_PORT", dist.to_string()),
                ("ERL_EPMD_PORT", epmd_port.to_string()),
                ("RABBITMQ_MNESIA_BASE", d("mnesia")),
                ("RABBITMQ_LOG_BASE", d("log")),
                ("RABBITMQ_ENABLED_PLUGINS_FILE", d("enabled_plugins")),
                ("RABBITMQ_CONFIG_FILE", d("rabbitmq.conf")),
                ("RABBITMQ_PID_FILE", d("rabbitmq.pid")),
                // Exec the VM in place of the script, so the node is this
                // process's child and its process group.
                ("RUNNING_UNDER_SYSTEMD", "true".into()),
            ];
            let started = Instant::now();
            let mut epmd = spawn(
                Command::new(EPMD)
                    .arg("-port")
                    .arg(epmd_port.to_string())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )
            .expect("spawn epmd");
            if !wait_port(epmd_port, &mut epmd, Duration::from_secs(5)) {
                stop_group(&mut epmd);
                continue;
            }
            let mut node = spawn(
                Command::new(RABBITMQ_SERVER)
                    .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )
            .expect("spawn rabbitmq-server");
            let ready = wait_port(stomp, &mut node, Duration::from_secs(90))
                && wait_port(mqtt, &mut node, Duration::from_secs(10));
            let me = RabbitMq {
                node,
                epmd,
                env,
                stomp_url: format!("http://127.0.0.1:{stomp}"),
                mqtt_url: format!("http://127.0.0.1:{mqtt}"),
                startup: started.elapsed(),
                dir,
            };
            if ready {
                return Some(me);
            }
            last = me.logs();
        }
        panic!("{test}: rabbitmq did not start: {last}");
    }

    /// The node's log files so far (for assertion messages).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path().join("log")) {
            for e in entries.flatten() {
                out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        out
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        // `rabbitmqctl stop` is RabbitMQ's own clean shutdown; the group
        // signal only catches what it leaves.
        let _ = Command::new(RABBITMQCTL)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .args(["stop", "--timeout", "20"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.node.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        stop_group(&mut self.node);
        stop_group(&mut self.epmd);
    }
}
