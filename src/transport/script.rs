//! WebSocket session scripts, as data in the profile: messages sent after
//! the upgrade in order (each may wait for an answer), the server's
//! confirmation that counts a client as subscribed (`subscribed_when`),
//! replies to application-level pings, a heartbeat, and a goodbye before
//! closing. Every message and rule is a template of
//! [`crate::identity::template`] (`{channel}`, `{client}`, `{n}` — a
//! per-session counter, one more for every message sent — `{data.<column>}`,
//! `{token}`, `${ENV}`), compiled once per group when the plan is built.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::extract::Matcher;
use crate::identity::template::{compile, Names, Template, Unknown, Vars};
use crate::identity::Who;

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

/// A profile's script, compiled.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// `subscribe_message`.
    pub subscribe_message: Option<Template>,
    /// `messages`: each message and what to wait for after it.
    pub messages: Vec<(Template, Option<Template>)>,
    /// `subscribed_when`.
    pub subscribed_when: Option<Template>,
    /// `reply`: the rule (matched as written) and the answer.
    pub replies: Vec<(String, Template)>,
    /// `heartbeat`: interval and message.
    pub heartbeat: Option<(Duration, Template)>,
    /// `goodbye`.
    pub goodbye: Option<Template>,
}

impl Compiled {
    /// Compiles a WebSocket profile's script.
    ///
    /// Errors: the key (`messages`, `reply`, ...) and the unknown placeholder.
    pub fn new(
        p: &super::websocket::WebSocketProfile,
        names: &Names<'_>,
    ) -> Result<Compiled, (&'static str, Unknown)> {
        let c = |key: &'static str, t: &str| compile(t, names).map_err(|u| (key, u));
        Ok(Compiled {
            subscribe_message: p
                .subscribe_message
                .as_deref()
                .map(|m| c("subscribe_message", m))
                .transpose()?,
            messages: p
                .messages
                .iter()
                .map(|s| {
                    Ok((
                        c("messages", s.text())?,
                        s.wait_for().map(|w| c("messages", w)).transpose()?,
                    ))
                })
                .collect::<Result<_, _>>()?,
            subscribed_when: p
                .subscribed_when
                .as_deref()
                .map(|m| c("subscribed_when", m))
                .transpose()?,
            replies: p
                .reply
                .iter()
                .map(|r| Ok((r.when.clone(), c("reply", &r.send)?)))
                .collect::<Result<_, _>>()?,
            heartbeat: p
                .heartbeat
                .as_ref()
                .map(|h| Ok((h.every, c("heartbeat", &h.send)?)))
                .transpose()?,
            goodbye: p.goodbye.as_deref().map(|g| c("goodbye", g)).transpose()?,
        })
    }

    /// True when the session needs its script after opening.
    pub fn has_session_part(&self) -> bool {
        !self.replies.is_empty() || self.heartbeat.is_some() || self.goodbye.is_some()
    }
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

/// A session's script at run time: compiled rules, who the client is.
#[derive(Debug)]
pub struct Session {
    /// Channel name, for templates sent later.
    pub channel: Box<str>,
    /// The client.
    pub who: Who,
    /// Per-session counter.
    pub n: u64,
    /// Reply rules.
    pub replies: Vec<(Matcher, Template)>,
    /// The compiled script (heartbeat, goodbye).
    pub script: Arc<Compiled>,
}

impl Session {
    /// The reply template for `message`, if a rule names it.
    pub fn reply_to(&self, message: &[u8]) -> Option<&Template> {
        self.replies
            .iter()
            .find(|(m, _)| m.matches(message))
            .map(|(_, t)| t)
    }

    /// Renders `template` for this session (moving `{n}` on).
    pub fn fill(&mut self, template: &Template) -> Result<String, String> {
        let v = Vars {
            channel: &self.channel,
            who: &self.who,
        };
        template.render(&v, &mut self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
