//! The binary's exit codes and its behaviour when interrupted or when the
//! target dies: results are written and marked partial.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stampede::report::run_json::RunInfo;
use support::{exe, TempDir};

const SCENARIO: &str = "name = \"cli\"\nduration = \"DUR\"\n\
    [publisher]\nrate = 20\n\
    [[groups]]\ntransport = \"sse\"\nclients = 5\n\
    [[groups]]\ntransport = \"poll\"\nclients = 5\ninterval = \"200ms\"\n";

fn scenario(dir: &TempDir, duration: &str) -> std::path::PathBuf {
    let p = dir.path().join("s.toml");
    std::fs::write(&p, SCENARIO.replace("DUR", duration)).unwrap();
    p
}

#[test]
fn a_short_run_exits_0_and_prints_its_folder() {
    let dir = TempDir::new("cli-ok");
    let out_dir = dir.path().join("run");
    let out = Command::new(exe())
        .arg("run")
        .arg(scenario(&dir, "1s"))
        .args(["--quiet", "--set", "drain=500ms", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        out_dir.display().to_string()
    );
    for f in [
        "run.json",
        "summary.csv",
        "timeseries.csv",
        "sse.delivery.hlog",
    ] {
        assert!(out_dir.join(f).is_file(), "{f}");
    }
    let ts = std::fs::read_to_string(out_dir.join("timeseries.csv")).unwrap();
    assert!(ts.lines().count() > 4);
}

#[test]
fn an_unreachable_target_exits_3() {
    let dir = TempDir::new("cli-unreachable");
    // Bind and drop to find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(exe())
        .arg("run")
        .arg(scenario(&dir, "1s"))
        .args([
            "--quiet",
            "--target",
            &format!("http://127.0.0.1:{port}"),
            "--out",
        ])
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("target unreachable") && err.contains(&port.to_string()),
        "{err}"
    );
}

/// Starts a 30 s run in the background and waits until its run.json exists.
fn start_long_run(dir: &TempDir, out_dir: &std::path::Path) -> (std::process::Child, RunInfo) {
    let child = Command::new(exe())
        .arg("run")
        .arg(scenario(dir, "30s"))
        .args(["--quiet", "--out"])
        .arg(out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let info = wait_for_run_json(out_dir);
    (child, info)
}

fn wait_for_run_json(dir: &std::path::Path) -> RunInfo {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(info) = RunInfo::read(dir) {
            return info;
        }
        assert!(Instant::now() < deadline, "no run.json");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_writes_partial_results_and_exits_130() {
    let dir = TempDir::new("cli-sigint");
    let out_dir = dir.path().join("run");
    let (child, info) = start_long_run(&dir, &out_dir);
    let target_pid = info.target.pid.expect("built-in target pid");
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = RunInfo::read(&out_dir).unwrap();
    assert!(info.partial);
    assert_eq!(info.status, "interrupted");
    let rows = stampede::report::summary_csv::read(&out_dir).unwrap();
    // Sequential phases: only the first group ran before the interrupt.
    assert_eq!(rows.len(), 1);
    assert_eq!(info.phases.len(), 1);
    assert!(info.phases[0].stopped_early);
    for r in &rows {
        assert!(
            r.delivered.unwrap_or(0) > 0,
            "{}: measured data kept",
            r.group
        );
        assert_eq!(
            r.lost.unwrap_or(0),
            0,
            "{}: in-flight events are not counted lost",
            r.group
        );
    }
    // The reference server went away with the run.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !std::path::Path::new(&format!("/proc/{target_pid}")).exists() || is_zombie(target_pid)
    );
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z "))
        .unwrap_or(true)
}

#[test]
fn a_target_that_dies_mid_run_ends_the_run_with_exit_3() {
    let dir = TempDir::new("cli-target-dies");
    let out_dir = dir.path().join("run");
    let (child, info) = start_long_run(&dir, &out_dir);
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: killing the target process the run started.
    unsafe { libc::kill(info.target.pid.unwrap(), libc::SIGKILL) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = RunInfo::read(&out_dir).unwrap();
    assert!(info.partial);
    assert_eq!(info.status, "failed");
    assert!(info.partial_reason.unwrap().contains("exited"));
    assert!(out_dir.join("summary.csv").is_file());
}
