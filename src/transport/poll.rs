//! Interval polling: one GET per interval carrying the cursor, in the
//! profile's cursor style and body format. The load module decides when
//! each poll is intended to start; this file only performs it. Servers that
//! return one message per response (`drain`) are polled again at once
//! until they have nothing new, as a real client would.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use std::time::Instant;

use super::http::{CursorPoller, PollOutcome};
use super::{SessionSpec, Sink, Step, Transport};
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;

/// Most back-to-back polls per interval: a server that always answers with
/// a message (a broken cursor) must not trap the client in one interval.
const MAX_DRAIN: u32 = 10_000;

/// An interval-polling session.
pub struct Poll {
    spec: SessionSpec,
    io: Arc<IoCounters>,
    poller: CursorPoller,
    drain: bool,
}

impl Transport for Poll {
    const LABEL: &'static str = "poll";
    const KEYS: &'static [&'static str] = &["interval", "keep_alive"];
    const REQUEST_BASED: bool = true;
    const EMPTY_RESPONSES: bool = true;
    type Section = PollProfile;

    fn preset(profile: &str) -> Option<PollProfile> {
        match profile {
            "builtin" => Some(PollProfile::builtin("/poll/{channel}", None)),
            "nchan" => Some(PollProfile::nchan("/poll/{channel}", true, vec![304])),
            _ => None,
        }
    }

    async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        cursor: Option<String>,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let profile = spec.profile.poll.as_ref().ok_or_else(|| {
            Fault::new(ErrorKind::Other, "the target profile has no poll section")
        })?;
        let poller = CursorPoller::open(spec, io, profile, String::new(), cursor, sink).await?;
        Ok(Poll {
            spec: spec.clone(),
            io: io.clone(),
            poller,
            drain: profile.drain,
        })
    }

    async fn next<S: Sink>(&mut self, intended: Instant, sink: &mut S) -> Result<Step, Fault> {
        let mut intended = intended;
        for _ in 0..MAX_DRAIN {
            let outcome = self
                .poller
                .exchange(&self.spec, &self.io, intended, sink, true)
                .await?;
            if !(self.drain && outcome == PollOutcome::Events) {
                break;
            }
            // A follow-up poll is intended the moment the last one ended.
            intended = Instant::now();
        }
        Ok(Step::Continue)
    }

    fn cursor(&self) -> Option<String> {
        self.poller.cursor()
    }

    async fn close(mut self) {
        self.poller.close();
    }
}

// Configuration: the `[profile.poll]` / `[profile.long_poll]` section.

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
    /// `?<cursor_param>=<id>` with the id of the last item of the previous
    /// body (`cursor_field`), as many JSON poll APIs page: no cursor header.
    Body,
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
    /// Body style: where the last item's id is, a field name or a JSON
    /// pointer (RFC 6901, starting with `/`).
    #[serde(default = "id_field")]
    pub cursor_field: String,
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

impl PollProfile {
    /// The reference server's polls: query cursor, head start, lines.
    pub fn builtin(url: &str, hold: Option<&str>) -> PollProfile {
        PollProfile {
            url: url.into(),
            cursor: CursorStyle::Query,
            cursor_param: after(),
            cursor_header: x_cursor(),
            cursor_field: id_field(),
            start: Start::Head,
            start_lookback: two_s(),
            body: BodyFormat::Lines,
            data_field: data(),
            drain: false,
            hold_query: hold.map(str::to_string),
            ok_status: vec![200],
            empty_status: vec![204, 304],
        }
    }

    /// nchan's polls: etag cursor, recent start, one message per response.
    pub fn nchan(url: &str, drain: bool, empty: Vec<u16>) -> PollProfile {
        PollProfile {
            url: url.into(),
            cursor: CursorStyle::Etag,
            cursor_param: after(),
            cursor_header: x_cursor(),
            cursor_field: id_field(),
            start: Start::Recent,
            start_lookback: two_s(),
            body: BodyFormat::Single,
            data_field: data(),
            drain,
            hold_query: None,
            ok_status: vec![200],
            empty_status: empty,
        }
    }
}

impl super::Section for PollProfile {
    fn url(&self) -> &str {
        &self.url
    }

    fn check(&self, what: &str) -> Result<(), String> {
        super::path_ok(&self.url, what)?;
        super::status_ok(&self.ok_status, &format!("{what}.ok_status"))?;
        if self.start == Start::Recent && self.cursor != CursorStyle::Etag {
            return Err(format!(
                "{what}: start = \"recent\" needs cursor = \"etag\""
            ));
        }
        if self.start == Start::Head && self.cursor == CursorStyle::None {
            return Err(format!("{what}: start = \"head\" needs a cursor"));
        }
        http::HeaderName::from_bytes(self.cursor_header.as_bytes())
            .map_err(|_| format!("{what}.cursor_header is not a header name"))?;
        if self.cursor == CursorStyle::Body
            && !matches!(self.body, BodyFormat::JsonArray | BodyFormat::Ndjson)
        {
            return Err(format!(
                "{what}: cursor = \"body\" needs body = \"json-array\" or \"ndjson\" (items with ids)"
            ));
        }
        Ok(())
    }
}

fn after() -> String {
    "after".into()
}
fn x_cursor() -> String {
    "x-cursor".into()
}
fn id_field() -> String {
    "id".into()
}
fn data() -> String {
    "data".into()
}
fn two_s() -> std::time::Duration {
    std::time::Duration::from_secs(2)
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
fn ok_200() -> Vec<u16> {
    vec![200]
}
fn empty_default() -> Vec<u16> {
    vec![204, 304]
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
