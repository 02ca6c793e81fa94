//! WebSocket session scripts, as data in the profile: messages sent after
//! the upgrade in order (each may wait for an answer), the server's
//! confirmation that counts a client as subscribed (`subscribed_when`),
//! replies to application-level pings, a heartbeat, and a goodbye before
//! closing. Templates: `{channel}`, `{client}` (the client's number in its
//! group), `{n}` (a per-session counter, one more for every message sent),
//! `${ENV}` (secrets, never written to results).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::extract::Matcher;

/// One message of the opening script.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ScriptStep {
    /// Sent, then the next step follows at once.
    Send(String),
    /// Sent, then the session waits for a message matching `wait_for`
    /// (a JSON subset or a substring) before the next step.
    Wait {
        /// The message.
        send: String,
        /// What the server answers before the script goes on.
        wait_for: String,
    },
}

impl ScriptStep {
    /// The message template.
    pub fn text(&self) -> &str {
        match self {
            ScriptStep::Send(s) | ScriptStep::Wait { send: s, .. } => s,
        }
    }

    /// What to wait for after sending, if anything.
    pub fn wait_for(&self) -> Option<&str> {
        match self {
            ScriptStep::Send(_) => None,
            ScriptStep::Wait { wait_for, .. } => Some(wait_for),
        }
    }
}

/// An answer to a server message (an application-level ping).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyRule {
    /// The server message: a JSON subset or a substring.
    pub when: String,
    /// The answer (templated).
    pub send: String,
}

/// A message sent on an interval (Phoenix's 30 s heartbeat).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Interval, e.g. `"30s"`.
    #[serde(with = "duration_str")]
    pub every: Duration,
    /// The message (templated).
    pub send: String,
}

/// `subscribe_timeout` when a profile does not say.
pub fn default_subscribe_timeout() -> Duration {
    Duration::from_secs(10)
}

/// True for the default `subscribe_timeout` (not written out).
pub fn is_default_subscribe_timeout(d: &Duration) -> bool {
    *d == default_subscribe_timeout()
}

/// Durations as `"30s"` strings.
pub mod duration_str {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes `"30s"`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    /// Reads `"30s"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// Fills a template for one session; `n` is the session's counter, moved
/// on by one when the template uses it.
pub fn fill(template: &str, channel: &str, client: u64, n: &mut u64) -> Result<String, String> {
    let mut out = template.replace("{channel}", channel);
    if out.contains("{client}") {
        out = out.replace("{client}", &client.to_string());
    }
    *n += 1;
    if out.contains("{n}") {
        out = out.replace("{n}", &n.to_string());
    }
    if out.contains("${") {
        out = crate::secrets::expand_env(&out)?;
    }
    Ok(out)
}

/// Fills a rule (`wait_for`, `subscribed_when`): `{channel}` and
/// `{client}` only.
pub fn fill_rule(template: &str, channel: &str, client: u64) -> String {
    template
        .replace("{channel}", channel)
        .replace("{client}", &client.to_string())
}

/// Checks a profile's script: templates expand, intervals are sane.
pub fn check(
    steps: &[ScriptStep],
    replies: &[ReplyRule],
    heartbeat: Option<&Heartbeat>,
) -> Result<(), String> {
    if let Some(h) = heartbeat {
        if h.every < Duration::from_millis(10) {
            return Err("websocket.heartbeat.every must be at least 10ms".into());
        }
    }
    for r in replies {
        if r.when.is_empty() {
            return Err("websocket.reply: `when` is empty (it would match everything)".into());
        }
    }
    for s in steps {
        if s.wait_for().is_some_and(str::is_empty) {
            return Err("websocket.messages: `wait_for` is empty".into());
        }
    }
    Ok(())
}

/// A session's script at run time: compiled rules and filled templates.
#[derive(Debug)]
pub struct Session {
    /// Channel name, for templates sent later.
    pub channel: Box<str>,
    /// The client's number.
    pub client: u64,
    /// Per-session counter.
    pub n: u64,
    /// Reply rules.
    pub replies: Vec<(Matcher, String)>,
    /// Heartbeat.
    pub heartbeat: Option<Heartbeat>,
    /// The goodbye template.
    pub goodbye: Option<String>,
}

impl Session {
    /// The reply template for `message`, if a rule names it.
    pub fn reply_to(&self, message: &[u8]) -> Option<&str> {
        self.replies
            .iter()
            .find(|(m, _)| m.matches(message))
            .map(|(_, t)| t.as_str())
    }

    /// Fills `template` for this session.
    pub fn fill(&mut self, template: &str) -> Result<String, String> {
        fill(template, &self.channel, self.client, &mut self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_channel_client_counter_and_env() {
        std::env::set_var("STAMPEDE_SCRIPT_TEST", "tok");
        let mut n = 0;
        assert_eq!(
            fill(
                "[null,\"{n}\",\"{channel}\",{client},\"${STAMPEDE_SCRIPT_TEST}\"]",
                "room:a",
                7,
                &mut n
            )
            .unwrap(),
            "[null,\"1\",\"room:a\",7,\"tok\"]"
        );
        assert_eq!(fill("{n}", "", 0, &mut n).unwrap(), "2");
        assert!(fill("${STAMPEDE_NOT_SET_ANYWHERE_2}", "", 0, &mut n).is_err());
    }

    #[test]
    fn steps_parse_as_strings_or_tables() {
        #[derive(Deserialize)]
        struct T {
            messages: Vec<ScriptStep>,
        }
        let t: T = toml::from_str(
            "messages = ['{\"type\":\"connection_init\"}', { send = 'x', wait_for = '{\"type\":\"ack\"}' }]",
        )
        .unwrap();
        assert_eq!(t.messages[0].wait_for(), None);
        assert_eq!(t.messages[1].text(), "x");
        assert_eq!(t.messages[1].wait_for(), Some("{\"type\":\"ack\"}"));
    }
}
