//! Target profiles: how each transport talks to a given server, as data.
//! `builtin` and `nchan` are presets; `generic` is whatever the scenario's
//! `[profile]` table says. The transports read the section for their kind,
//! so supporting another server means writing a profile, not a transport.

use std::collections::BTreeMap;

use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::transport::TransportKind;

/// How a poller carries its position in the stream between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CursorStyle {
    /// No cursor: every poll returns whatever the server thinks is new.
    None,
    /// `?<cursor_param>=<cursor>`; the next cursor comes in the response
    /// header `cursor_header`.
    Query,
    /// `If-Modified-Since` / `If-None-Match` from the last `Last-Modified` /
    /// `Etag` (nchan and other HTTP-cache style servers).
    Etag,
}

/// Where a new poller starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Start {
    /// A cursor-less request answers at once with the current head cursor
    /// (the reference server); that request is the subscription.
    Head,
    /// Poll without a cursor; the first response brings one.
    None,
    /// Etag style only: start from a cursor `start_lookback` in the past,
    /// for servers whose cursor-less poll would either wait or replay the
    /// whole buffer (nchan). Events from before the subscription that this
    /// replays are neither expected nor timed.
    Recent,
}

/// How a poll response body holds messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BodyFormat {
    /// One message per non-empty line.
    Lines,
    /// The whole body is one message.
    Single,
    /// A JSON array of strings, or of objects whose `data_field` is the message.
    JsonArray,
    /// One JSON value per line: a string, or an object with `data_field`.
    Ndjson,
}

/// Interval polling or long polling against one URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollProfile {
    /// Path (and query) template; `{channel}` is replaced.
    pub url: String,
    /// Cursor style.
    #[serde(default = "cursor_none")]
    pub cursor: CursorStyle,
    /// Query style: request parameter that carries the cursor.
    #[serde(default = "after")]
    pub cursor_param: String,
    /// Query style: response header with the next cursor.
    #[serde(default = "x_cursor")]
    pub cursor_header: String,
    /// Where a new poller starts.
    #[serde(default = "start_none")]
    pub start: Start,
    /// `start = "recent"`: how far back the first cursor points.
    #[serde(default = "two_s", with = "humantime_str")]
    pub start_lookback: std::time::Duration,
    /// Body format.
    #[serde(default = "single")]
    pub body: BodyFormat,
    /// JSON formats: the field holding the message in an object.
    #[serde(default = "data")]
    pub data_field: String,
    /// The server returns one message per response: after a response with
    /// a message, poll again at once instead of waiting for the interval.
    #[serde(default)]
    pub drain: bool,
    /// Extra query for long polls; `{timeout_ms}` is the group's timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_query: Option<String>,
    /// Statuses that carry messages.
    #[serde(default = "ok_200")]
    pub ok_status: Vec<u16>,
    /// Statuses that mean "nothing new" (for long polling: the server's
    /// hold expired).
    #[serde(default = "empty_default")]
    pub empty_status: Vec<u16>,
}

/// Server-Sent Events.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SseProfile {
    /// Path template.
    pub url: String,
    /// Send `Last-Event-ID` when reconnecting.
    #[serde(default = "yes")]
    pub resume: bool,
}

/// Newline-delimited JSON streaming.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NdjsonProfile {
    /// Path template.
    pub url: String,
    /// The field of each line's object that holds the message (a line may
    /// also be a bare JSON string).
    #[serde(default = "data")]
    pub data_field: String,
    /// The field with the event id, used to resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_field: Option<String>,
    /// Query parameter that resumes after an id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_param: Option<String>,
}

/// WebSocket subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketProfile {
    /// Path template.
    pub url: String,
    /// `Sec-WebSocket-Protocol` to ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprotocol: Option<String>,
    /// A message to send after the upgrade to subscribe (`{channel}` is
    /// replaced), for servers that subscribe in-band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe_message: Option<String>,
}

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

/// A whole profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Preset name, or `generic`.
    #[serde(default = "generic")]
    pub name: String,
    /// Headers sent with every request, handshake and publish. Values may
    /// use `${ENV_VAR}`; only the templates are ever written to results.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Publisher.
    pub publish: PublishProfile,
    /// Interval polling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<PollProfile>,
    /// Long polling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_poll: Option<PollProfile>,
    /// Server-Sent Events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<SseProfile>,
    /// NDJSON streaming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ndjson: Option<NdjsonProfile>,
    /// WebSocket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket: Option<WebSocketProfile>,
}

/// Names `--profile` accepts.
pub const PRESETS: &[&str] = &["builtin", "nchan", "generic"];

impl Profile {
    /// A preset by name (`generic` has no preset: it needs a `[profile]`).
    pub fn preset(name: &str) -> Option<Profile> {
        match name {
            "builtin" => Some(builtin()),
            "nchan" => Some(nchan()),
            _ => None,
        }
    }

    /// The URL template this profile uses for `kind`, if it supports it.
    pub fn url_for(&self, kind: TransportKind) -> Option<&str> {
        match kind {
            TransportKind::Poll => self.poll.as_ref().map(|p| p.url.as_str()),
            TransportKind::LongPoll => self.long_poll.as_ref().map(|p| p.url.as_str()),
            TransportKind::Sse => self.sse.as_ref().map(|p| p.url.as_str()),
            TransportKind::Ndjson => self.ndjson.as_ref().map(|p| p.url.as_str()),
            TransportKind::Websocket => self.websocket.as_ref().map(|p| p.url.as_str()),
            // These do not subscribe: their URLs come from the group.
            TransportKind::Request | TransportKind::Echo => Some(""),
        }
    }

    /// Checks what serde cannot: templates, statuses, cursor combinations.
    pub fn check(&self) -> Result<(), String> {
        let status_ok = |list: &[u16], what: &str| {
            if list.is_empty() || list.iter().any(|s| !(100..=599).contains(s)) {
                Err(format!("{what}: give HTTP statuses between 100 and 599"))
            } else {
                Ok(())
            }
        };
        let path_ok = |url: &str, what: &str| {
            if !url.starts_with('/') {
                return Err(format!(
                    "{what}.url {url:?} must be a path starting with `/` (the target URL gives host and port)"
                ));
            }
            Ok(())
        };
        path_ok(&self.publish.url, "publish")?;
        if self.publish.method != PublishMethod::WebSocket {
            status_ok(&self.publish.ok_status, "publish.ok_status")?;
        }
        if !self.publish.body.contains("{payload}") {
            return Err("publish.body must contain {payload} (the envelope)".into());
        }
        for (what, p) in [("poll", &self.poll), ("long_poll", &self.long_poll)] {
            let Some(p) = p else { continue };
            path_ok(&p.url, what)?;
            status_ok(&p.ok_status, &format!("{what}.ok_status"))?;
            if p.start == Start::Recent && p.cursor != CursorStyle::Etag {
                return Err(format!(
                    "{what}: start = \"recent\" needs cursor = \"etag\""
                ));
            }
            if p.start == Start::Head && p.cursor == CursorStyle::None {
                return Err(format!("{what}: start = \"head\" needs a cursor"));
            }
            HeaderName::from_bytes(p.cursor_header.as_bytes())
                .map_err(|_| format!("{what}.cursor_header is not a header name"))?;
        }
        if let Some(s) = &self.sse {
            path_ok(&s.url, "sse")?;
        }
        if let Some(s) = &self.ndjson {
            path_ok(&s.url, "ndjson")?;
        }
        if let Some(s) = &self.websocket {
            path_ok(&s.url, "websocket")?;
            if let Some(p) = &s.subprotocol {
                HeaderValue::from_str(p)
                    .map_err(|_| "websocket.subprotocol is not a valid header value".to_string())?;
            }
        }
        for name in self.headers.keys() {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("headers: {name:?} is not a header name"))?;
        }
        Ok(())
    }
}

/// Fills `{channel}` into a template.
pub fn fill(template: &str, channel: &str) -> String {
    template.replace("{channel}", channel)
}

/// Expands `${VAR}` from the environment. The expanded value is a secret:
/// callers keep it out of everything they write.
pub fn expand_env(template: &str) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in {template:?}"))?;
        let var = &after[..end];
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{var}}}` is not an environment variable name"));
        }
        let value =
            std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?;
        crate::secrets::register(var, &value);
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands a profile's headers into wire form.
pub fn wire_headers(profile: &Profile) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut out = Vec::with_capacity(profile.headers.len());
    for (name, template) in &profile.headers {
        let value = expand_env(template).map_err(|e| format!("headers.{name}: {e}"))?;
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("headers: {name:?} is not a header name"))?;
        // The value may be secret: the message must not repeat it.
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            format!("headers.{name}: the expanded value is not a valid header value")
        })?;
        value.set_sensitive(true);
        out.push((name, value));
    }
    Ok(out)
}

/// The reference server.
pub fn builtin() -> Profile {
    let poll = |url: &str, hold: Option<&str>| PollProfile {
        url: url.into(),
        cursor: CursorStyle::Query,
        cursor_param: after(),
        cursor_header: x_cursor(),
        start: Start::Head,
        start_lookback: two_s(),
        body: BodyFormat::Lines,
        data_field: data(),
        drain: false,
        hold_query: hold.map(str::to_string),
        ok_status: vec![200],
        empty_status: vec![204, 304],
    };
    Profile {
        name: "builtin".into(),
        headers: BTreeMap::new(),
        publish: PublishProfile {
            method: PublishMethod::Post,
            url: "/pub/{channel}".into(),
            body: payload(),
            content_type: text_plain(),
            ok_status: publish_ok(),
        },
        poll: Some(poll("/poll/{channel}", None)),
        long_poll: Some(poll("/lp/{channel}", Some("timeout_ms={timeout_ms}"))),
        sse: Some(SseProfile {
            url: "/sse/{channel}".into(),
            resume: true,
        }),
        ndjson: Some(NdjsonProfile {
            url: "/stream/{channel}".into(),
            data_field: data(),
            id_field: Some("id".into()),
            resume_param: Some("after".into()),
        }),
        websocket: Some(WebSocketProfile {
            url: "/ws/{channel}".into(),
            subprotocol: None,
            subscribe_message: None,
        }),
    }
}

/// nginx with the nchan module, configured as in `shared/targets/nchan.conf`
/// (one message per poll response, `304` when nothing is new, `408` when a
/// long poll's hold expires, no NDJSON).
pub fn nchan() -> Profile {
    let poll = |url: &str, drain: bool, empty: Vec<u16>| PollProfile {
        url: url.into(),
        cursor: CursorStyle::Etag,
        cursor_param: after(),
        cursor_header: x_cursor(),
        start: Start::Recent,
        start_lookback: two_s(),
        body: BodyFormat::Single,
        data_field: data(),
        drain,
        hold_query: None,
        ok_status: vec![200],
        empty_status: empty,
    };
    Profile {
        name: "nchan".into(),
        headers: BTreeMap::new(),
        publish: PublishProfile {
            method: PublishMethod::Post,
            url: "/pub/{channel}".into(),
            body: payload(),
            content_type: text_plain(),
            ok_status: vec![200, 201, 202],
        },
        poll: Some(poll("/poll/{channel}", true, vec![304])),
        long_poll: Some(poll("/lp/{channel}", false, vec![408, 304])),
        sse: Some(SseProfile {
            url: "/sse/{channel}".into(),
            resume: true,
        }),
        ndjson: None,
        websocket: Some(WebSocketProfile {
            url: "/ws/{channel}".into(),
            subprotocol: None,
            subscribe_message: None,
        }),
    }
}

fn cursor_none() -> CursorStyle {
    CursorStyle::None
}
fn start_none() -> Start {
    Start::None
}
fn single() -> BodyFormat {
    BodyFormat::Single
}
fn after() -> String {
    "after".into()
}
fn x_cursor() -> String {
    "x-cursor".into()
}
fn data() -> String {
    "data".into()
}
fn two_s() -> std::time::Duration {
    std::time::Duration::from_secs(2)
}
fn ok_200() -> Vec<u16> {
    vec![200]
}
fn empty_default() -> Vec<u16> {
    vec![204, 304]
}
fn yes() -> bool {
    true
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

/// Durations as `"2s"` strings.
mod humantime_str {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        let v = humantime::parse_duration(&s).map_err(serde::de::Error::custom)?;
        if v > Duration::from_secs(3600) {
            return Err(serde::de::Error::custom("start_lookback above 1h"));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let poll = p.poll.unwrap();
        assert_eq!(poll.body, BodyFormat::JsonArray);
        assert_eq!(poll.empty_status, vec![204, 304]);
    }
}
