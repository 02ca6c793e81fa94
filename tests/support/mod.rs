//! Test helpers: in-process reference servers on 127.0.0.1:0, plans from
//! scenario text, and runs through the library API.
#![allow(dead_code)]

pub mod brokers;
pub mod browser;
pub mod nginx;
pub mod node;
pub mod prometheus;
pub mod pubsub;
pub mod raw;
pub mod ws;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use stampede::metrics::summary::SummaryRow;
use stampede::plan::{self, Plan};
use stampede::progress::Display;
use stampede::reference::fault::{FaultPlan, FaultState};
use stampede::reference::{self, hub::Hub};
use stampede::run::{self, RunOptions, RunOutcome};
use stampede::scenario::{self, Source};
use stampede::shutdown::Shutdown;
use tokio_util::sync::CancellationToken;

/// A reference server served by this test process.
pub struct InProcess {
    pub url: String,
    pub hub: Arc<Hub>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl InProcess {
    pub async fn start() -> InProcess {
        Self::start_with(None).await.0
    }

    /// A reference server injecting the faults of `spec` (as `serve
    /// --fault`), and its injection counts.
    pub async fn start_faulty(spec: &str) -> (InProcess, Arc<FaultState>) {
        let (t, state) = Self::start_with(Some(spec)).await;
        (t, state.expect("fault state"))
    }

    async fn start_with(faults: Option<&str>) -> (InProcess, Option<Arc<FaultState>>) {
        let listener = reference::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hub = Arc::new(Hub::default());
        let stop = CancellationToken::new();
        let state = faults.map(|f| {
            let plan = FaultPlan::parse(&[f.to_string()]).expect("fault spec");
            Arc::new(FaultState::new(plan, stop.clone()))
        });
        let task = tokio::spawn(reference::serve_with_faults(
            listener,
            hub.clone(),
            state.clone(),
            stop.clone(),
        ));
        (
            InProcess {
                url,
                hub,
                stop,
                task: Some(task),
            },
            state,
        )
    }

    /// Points a plan at this target.
    pub fn aim(&self, plan: &mut Plan) {
        plan.target = stampede::plan::TargetPlan::Url {
            url: self.url.clone(),
            authority: self.url.trim_start_matches("http://").to_string(),
            base_path: String::new(),
        };
    }

    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Parses scenario text into a plan.
pub fn plan(text: &str) -> Plan {
    let src = Source {
        path: "test.toml".into(),
        text: text.into(),
        overridden: false,
    };
    let sc = scenario::parse(&src).unwrap_or_else(|e| panic!("scenario: {e}"));
    plan::build(&sc, &src, &plan::Overrides::default()).unwrap_or_else(|e| panic!("plan: {e}"))
}

/// The stampede binary Cargo built for these tests.
pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stampede"))
}

/// Runs a plan quietly into `dir`.
pub async fn run_plan(plan: Plan, dir: &Path, shutdown: Shutdown) -> RunOutcome {
    run::run(
        plan,
        RunOptions {
            dashboard: None,
            remote_write: None,
            target_metrics: None,
            scenario_file: "test.toml".into(),
            out: Some(dir.to_path_buf()),
            results_root: dir.to_path_buf(),
            builtin_exe: Some(exe()),
            display: Display::Quiet,
            start_at: None,
            digest: None,
            attach_builtin: None,
        },
        shutdown,
    )
    .await
    .unwrap_or_else(|e| panic!("run failed: {e}"))
}

/// A fresh temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "stampede-test-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn row<'a>(rows: &'a [SummaryRow], group: &str) -> &'a SummaryRow {
    rows.iter()
        .find(|r| r.group == group)
        .unwrap_or_else(|| panic!("no row {group} in {rows:?}"))
}
