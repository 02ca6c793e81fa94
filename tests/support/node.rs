//! A Node.js app of the tests (`tests/servers/<app>/server.js`): started on
//! a free port (`node server.js 0` prints `listening <port>`), killed on
//! drop. Skipped with a message when node or the app's `node_modules` are
//! missing, unless the app's `STAMPEDE_REQUIRE_*` variable is `1` (as in
//! CI, where `.ci/run` installs them): then it fails.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running Node app.
pub struct NodeApp {
    child: Child,
    pub port: u16,
}

impl NodeApp {
    /// Starts `tests/servers/<app>/server.js`; `module` must be in its
    /// `node_modules`; `require` names the variable that makes a missing
    /// app a failure.
    pub fn start(test: &str, app: &str, module: &str, require: &str) -> Option<NodeApp> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/servers")
            .join(app);
        let skip = |why: &str| {
            if std::env::var(require).as_deref() == Ok("1") {
                panic!("{test}: {require}=1 but {why}");
            }
            eprintln!("SKIPPED {test}: {why}");
            None
        };
        if !dir.join("node_modules").join(module).is_dir() {
            return skip(&format!(
                "tests/servers/{app}/node_modules is missing (run `npm ci` there)"
            ));
        }
        let mut child = match Command::new("node")
            .arg("server.js")
            .arg("0")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return skip(&format!("node does not start: {e}")),
        };
        let mut line = String::new();
        let out = child.stdout.take().unwrap();
        BufReader::new(out).read_line(&mut line).unwrap();
        let port: u16 = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the server said {line:?}"));
        Some(NodeApp { child, port })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for NodeApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
