//! `[profile.socketio]`: how an app speaks Socket.IO (path, namespace,
//! auth, the event that carries the envelope, the join), with defaults
//! that match the reference server and `tests/servers/socketio/`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `[profile.socketio]`: how the app speaks Socket.IO.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketIoProfile {
    /// The Engine.IO path (socket.io's `path` option, `/socket.io/`).
    #[serde(default = "default_url")]
    pub url: String,
    /// The namespace to connect to.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The CONNECT packet's auth payload (a JSON object; `${VAR}` from the
    /// environment), if the app wants one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// The event name whose arguments carry the envelope.
    #[serde(default = "default_event")]
    pub event: String,
    /// The event (name, then arguments; `{channel}` is replaced) emitted
    /// after connecting to join the channel's room; `[]`: none (the app
    /// puts every socket in its rooms itself).
    #[serde(default = "default_join")]
    pub join: Vec<String>,
    /// The join is emitted with an ack id, and its ack confirms the
    /// subscription (the app's handler must call its callback).
    #[serde(default = "yes")]
    pub join_ack: bool,
    /// How long the namespace connect and the join's ack may take.
    #[serde(
        default = "crate::transport::script::default_subscribe_timeout",
        with = "crate::transport::script::duration_str"
    )]
    pub subscribe_timeout: Duration,
}

impl Default for SocketIoProfile {
    fn default() -> Self {
        SocketIoProfile {
            url: default_url(),
            namespace: default_namespace(),
            auth: None,
            event: default_event(),
            join: default_join(),
            join_ack: true,
            subscribe_timeout: crate::transport::script::default_subscribe_timeout(),
        }
    }
}

fn default_url() -> String {
    "/socket.io/".into()
}
fn default_namespace() -> String {
    "/".into()
}
fn default_event() -> String {
    "message".into()
}
fn default_join() -> Vec<String> {
    vec!["subscribe".into(), "{channel}".into()]
}
fn yes() -> bool {
    true
}

impl crate::transport::Section for SocketIoProfile {
    fn url(&self) -> &str {
        &self.url
    }

    fn check(&self, what: &str) -> Result<(), String> {
        crate::transport::path_ok(&self.url, what)?;
        if !self.namespace.starts_with('/') || self.namespace.contains(',') {
            return Err(format!(
                "{what}.namespace {:?} must start with `/` and hold no `,`",
                self.namespace
            ));
        }
        if let Some(auth) = &self.auth {
            match serde_json::from_str::<Value>(auth) {
                Ok(Value::Object(_)) => {}
                _ => return Err(format!("{what}.auth must be a JSON object")),
            }
        }
        if self.event.is_empty() {
            return Err(format!("{what}.event must name an event"));
        }
        if self.join.first().is_some_and(String::is_empty) {
            return Err(format!(
                "{what}.join must start with an event name: [\"subscribe\", \"{{channel}}\"]"
            ));
        }
        Ok(())
    }
}
