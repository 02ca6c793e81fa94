//! Target profiles: how each transport talks to a given server, as data.
//! `builtin` and `nchan` are presets; `generic` is whatever the scenario's
//! `[profile]` table says. The transports read the section for their kind,
//! so supporting another server means writing a profile, not a transport.

use std::collections::BTreeMap;

use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

pub use crate::transport::poll::{BodyFormat, CursorStyle, PollProfile, Start};
pub use crate::transport::{
    ndjson::NdjsonProfile, path_ok, sse::SseProfile, status_ok, websocket::WebSocketProfile,
    Sections,
};

/// How the publisher sends events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PublishMethod {
    /// HTTP POST.
    Post,
    /// HTTP PUT.
    Put,
    /// Text frames on one WebSocket per channel.
    #[serde(rename = "websocket")]
    WebSocket,
    /// STOMP SEND frames on one STOMP-over-WebSocket session per channel,
    /// to `[profile.stomp]`'s destination.
    #[serde(rename = "stomp")]
    Stomp,
    /// MQTT PUBLISH packets on one MQTT-over-WebSocket session per
    /// channel, to `[profile.mqtt]`'s topic at its QoS.
    #[serde(rename = "mqtt")]
    Mqtt,
    /// Socket.IO emits on one Engine.IO WebSocket per channel (namespace
    /// `/`): `body` is the event's JSON array, e.g.
    /// `["publish","{channel}","{payload}"]`.
    #[serde(rename = "socketio")]
    SocketIo,
}

impl PublishMethod {
    /// True for the methods that publish over HTTP (statuses apply).
    pub fn is_http(self) -> bool {
        matches!(self, PublishMethod::Post | PublishMethod::Put)
    }
}

/// The publisher's side.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishProfile {
    /// POST, PUT or websocket.
    #[serde(default = "post")]
    pub method: PublishMethod,
    /// Path template.
    pub url: String,
    /// Body template: `{payload}` is the envelope (printable ASCII, safe
    /// inside a JSON string), `{channel}` the channel name.
    #[serde(default = "payload")]
    pub body: String,
    /// `Content-Type` of HTTP publishes.
    #[serde(default = "text_plain")]
    pub content_type: String,
    /// Statuses that mean the event was accepted.
    #[serde(default = "publish_ok")]
    pub ok_status: Vec<u16>,
}

/// A whole profile. Unknown keys are refused by `Sections` (flattened
/// structs cannot deny them themselves).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    /// Preset name, or `generic`.
    #[serde(default = "generic")]
    pub name: String,
    /// Headers sent with every request, handshake and publish. Values may
    /// use `${ENV_VAR}`; only the templates are ever written to results.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `Accept-Encoding` sent with every request and handshake, as a
    /// browser sends `gzip, deflate, br`; only codings stampede decodes
    /// (gzip, deflate, br) may be offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_encoding: Option<String>,
    /// Publisher.
    pub publish: PublishProfile,
    /// One section per transport that has one (see
    /// [`crate::transport::Sections`]).
    #[serde(flatten)]
    pub sections: Sections,
    /// Where the envelope sits in a wrapped message: a JSON pointer
    /// (`/payload/data/onEvent/text`) that also follows JSON strings
    /// holding JSON. Without it the envelope is found anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_path: Option<String>,
    /// Rules naming messages without an envelope that are part of the
    /// protocol (pings, acks, confirmations): a JSON value (subset match)
    /// or a substring. They count as `control_messages`; other messages
    /// without an envelope count as `other_messages`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub control: Vec<String>,
    /// Messages without an envelope that no `control` rule names are
    /// protocol errors.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
}

/// Names `--profile` accepts.
pub const PRESETS: &[&str] = &[
    "builtin",
    "nchan",
    "generic",
    "graphql-ws",
    "actioncable",
    "phoenix",
    "centrifugo",
    "pusher",
];

/// True when publishing with `method` gets an answer that says the target
/// took the message: an HTTP response, a STOMP RECEIPT (`[profile.stomp]
/// receipt = true`, STOMP 1.2 §"RECEIPT"), an MQTT PUBACK (`qos = 1`,
/// MQTT 3.1.1 §3.4). A WebSocket frame or a Socket.IO emit is done when
/// written.
pub fn publish_acknowledged(method: PublishMethod, sections: &Sections) -> bool {
    match method {
        PublishMethod::Stomp => sections.stomp.as_ref().is_some_and(|s| s.receipt),
        PublishMethod::Mqtt => sections.mqtt.as_ref().is_some_and(|s| s.qos > 0),
        m => m.is_http(),
    }
}

impl Profile {
    /// See [`publish_acknowledged`].
    pub fn publish_acknowledged(&self) -> bool {
        publish_acknowledged(self.publish.method, &self.sections)
    }

    /// A preset by name (`generic` has no preset: it needs a `[profile]`).
    pub fn preset(name: &str) -> Option<Profile> {
        match name {
            "builtin" => Some(builtin()),
            "nchan" => Some(nchan()),
            // The files are checked by the tests below; a broken one is a bug.
            other => crate::presets::text(other).and_then(|t| toml::from_str(t).ok()),
        }
    }

    /// How clients find the envelope in this profile's messages.
    pub fn extractor(&self) -> crate::extract::Extractor {
        crate::extract::Extractor::new(self.message_path.as_deref(), &self.control, self.strict)
    }

    /// Checks what serde cannot: templates, statuses, cursor combinations.
    pub fn check(&self) -> Result<(), String> {
        path_ok(&self.publish.url, "publish")?;
        if self.publish.method.is_http() {
            status_ok(&self.publish.ok_status, "publish.ok_status")?;
        }
        if self.publish.method == PublishMethod::Stomp && self.sections.stomp.is_none() {
            return Err("publish.method = \"stomp\" needs a [profile.stomp] section".into());
        }
        if self.publish.method == PublishMethod::Mqtt && self.sections.mqtt.is_none() {
            return Err("publish.method = \"mqtt\" needs a [profile.mqtt] section".into());
        }
        if !self.publish.body.contains("{payload}") {
            return Err("publish.body must contain {payload} (the envelope)".into());
        }
        self.sections.check()?;
        if let Some(p) = &self.message_path {
            crate::extract::check_path(p)?;
        }
        for name in self.headers.keys() {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("headers: {name:?} is not a header name"))?;
        }
        Ok(())
    }
}

/// The sections are the transports' own: `profile.poll` reads its poll
/// section.
impl std::ops::Deref for Profile {
    type Target = Sections;
    fn deref(&self) -> &Sections {
        &self.sections
    }
}

/// The top-level keys of a `[profile]` table, in the order serde lists them.
pub fn keys() -> Vec<&'static str> {
    let mut keys = vec!["name", "headers", "accept_encoding", "publish"];
    keys.extend(Sections::KEYS);
    keys.extend(["message_path", "control", "strict"]);
    keys
}

pub use crate::transport::fill;

pub use crate::secrets::expand_env;

/// Expands a profile's headers into wire form.
pub fn wire_headers(profile: &Profile) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut out = Vec::with_capacity(profile.headers.len() + 1);
    for (name, template) in &profile.headers {
        let value = expand_env(template).map_err(|e| format!("headers.{name}: {e}"))?;
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("headers: {name:?} is not a header name"))?;
        if name == http::header::ACCEPT_ENCODING {
            check_accept_encoding(&value).map_err(|e| format!("headers.{name}: {e}"))?;
        }
        // The value may be secret: the message must not repeat it.
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            format!("headers.{name}: the expanded value is not a valid header value")
        })?;
        value.set_sensitive(true);
        out.push((name, value));
    }
    if let Some(codings) = &profile.accept_encoding {
        check_accept_encoding(codings).map_err(|e| format!("accept_encoding: {e}"))?;
        // An explicit header (a group's, say) wins over the profile key.
        if !out.iter().any(|(n, _)| n == http::header::ACCEPT_ENCODING) {
            let value = HeaderValue::from_str(codings)
                .map_err(|_| "accept_encoding is not a valid header value".to_string())?;
            out.push((http::header::ACCEPT_ENCODING, value));
        }
    }
    Ok(out)
}

/// An `Accept-Encoding` value (RFC 9110 §12.5.3) may only offer codings
/// stampede decodes: a server is free to use any coding offered, and one
/// stampede could not read would lose every event.
pub fn check_accept_encoding(value: &str) -> Result<(), String> {
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (coding, params) = item.split_once(';').unwrap_or((item, ""));
        let coding = coding.trim().to_ascii_lowercase();
        // `q=0` refuses a coding, so any coding may be named with it.
        let refused = params
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .any(|(k, v)| k.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f64>() == Ok(0.0));
        let known = coding == "identity"
            || coding == "x-gzip"
            || crate::transport::coding::SUPPORTED.contains(&coding.as_str());
        if !known && !refused {
            return Err(format!(
                "offers `{coding}`, which stampede cannot decode (it decodes {})",
                crate::transport::coding::SUPPORTED.join(", ")
            ));
        }
    }
    Ok(())
}

/// The reference server.
pub fn builtin() -> Profile {
    Profile {
        name: "builtin".into(),
        headers: BTreeMap::new(),
        accept_encoding: None,
        publish: PublishProfile {
            method: PublishMethod::Post,
            url: "/pub/{channel}".into(),
            body: payload(),
            content_type: text_plain(),
            ok_status: publish_ok(),
        },
        sections: Sections::preset("builtin"),
        message_path: None,
        control: Vec::new(),
        // It relays stampede's envelope as the whole message: anything
        // else is an error.
        strict: true,
    }
}

/// nginx with the nchan module, configured as in `shared/targets/nchan.conf`
/// (one message per poll response, `304` when nothing is new, `408` when a
/// long poll's hold expires, no NDJSON).
pub fn nchan() -> Profile {
    Profile {
        name: "nchan".into(),
        headers: BTreeMap::new(),
        accept_encoding: None,
        publish: PublishProfile {
            method: PublishMethod::Post,
            url: "/pub/{channel}".into(),
            body: payload(),
            content_type: text_plain(),
            ok_status: vec![200, 201, 202],
        },
        sections: Sections::preset("nchan"),
        message_path: None,
        control: Vec::new(),
        // It relays stampede's envelope as the whole message: anything
        // else is an error.
        strict: true,
    }
}

fn post() -> PublishMethod {
    PublishMethod::Post
}
fn payload() -> String {
    "{payload}".into()
}
fn text_plain() -> String {
    "text/plain".into()
}
fn publish_ok() -> Vec<u16> {
    vec![200, 201, 202, 204]
}
fn generic() -> String {
    "generic".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_data_preset_parses_and_checks() {
        for (name, _) in crate::presets::DATA {
            let p = Profile::preset(name).unwrap_or_else(|| panic!("{name} does not parse"));
            assert_eq!(p.name, *name);
            p.check().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(p.websocket.is_some(), "{name}");
            assert!(PRESETS.contains(name), "{name}");
        }
    }

    #[test]
    fn presets_check() {
        builtin().check().unwrap();
        nchan().check().unwrap();
    }

    #[test]
    fn env_expansion() {
        std::env::set_var("STAMPEDE_TEST_TOKEN", "s3cret");
        assert_eq!(
            expand_env("Bearer ${STAMPEDE_TEST_TOKEN}!").unwrap(),
            "Bearer s3cret!"
        );
        assert!(expand_env("${NOPE_NOT_SET_ANYWHERE_1}").is_err());
        assert!(expand_env("${bad-name}").is_err());
        assert!(expand_env("${open").is_err());
        assert_eq!(expand_env("plain").unwrap(), "plain");
    }

    #[test]
    fn generic_table_parses_with_defaults() {
        let p: Profile = toml::from_str(
            "[publish]\nurl = \"/x/{channel}\"\n[poll]\nurl = \"/p/{channel}\"\ncursor = \"query\"\nstart = \"head\"\nbody = \"json-array\"\n",
        )
        .unwrap();
        assert_eq!(p.name, "generic");
        p.check().unwrap();
        let poll = p.sections.poll.unwrap();
        assert_eq!(poll.body, BodyFormat::JsonArray);
        assert_eq!(poll.empty_status, vec![204, 304]);
    }
}
