//! Request–reply over a WebSocket with correlation ids (JSON-RPC 2.0,
//! <https://www.jsonrpc.org/specification> section 4 `id` and section 5
//! "the same value as the id member in the Request Object"): each
//! scheduled exchange sends a request carrying a fresh id, and the reply
//! is the message whose value at the `id` pointer is that id.
//!
//! Unlike echo mode, many requests may be in flight on one connection and
//! replies may come in any order. Sends follow the load module's schedule
//! (the open model): `next` only sends; between sends `idle` reads replies,
//! server pushes and deadlines. Each reply is timed from its request's
//! intended instant (corrected for coordinated omission) and from when it
//! was written (uncorrected).
//!
//! Every request ends one way: a reply (`requests`), no reply within
//! `timeout` (a `timeout` error each), or the connection ending first (a
//! `reset` error each). A reply whose id matches no request in flight
//! (never sent, answered already, timed out) is a `protocol` error; a
//! message with nothing at the pointer (a server push, a notification) is
//! classified by the profile's `control` rules as any message is.
//!
//! stampede makes the ids itself, one counter per connection, so the
//! requests in flight are a ring indexed by `id − oldest`: no map, no
//! allocation per request besides the message text.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

use super::deadline::Deadline;
use super::h1::STREAM_CHUNK;
use super::json_id::{Found, Pointer};
use super::websocket::{self, closed_by_server, Ws};
use super::{RequestSample, SessionSpec, Sink, Step, Transport};
use crate::fault::{ErrorKind, Fault};
use crate::identity::template::{compile, Names, Template, Unknown, Vars};
use crate::net::IoCounters;

/// `rpc = { request = '...', id = "/id", timeout = "5s" }` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcSpec {
    /// The request's text: a template where `{id}` is the correlation id
    /// (and `{client}`, `{data.<column>}`, `{token}`, ... as everywhere).
    pub request: toml::Spanned<String>,
    /// JSON pointer (RFC 6901) to the id in a reply, e.g. `"/id"`.
    pub id: toml::Spanned<String>,
    /// A request unanswered this long is a `timeout` error (default: the
    /// run's `limits.request_timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<toml::Spanned<String>>,
    /// JSON pointer to an error in a reply (JSON-RPC's `"/error"`): a
    /// reply with a non-null value there is answered *and* a `status`
    /// error, as an unexpected HTTP status is in request mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<toml::Spanned<String>>,
}

/// A scenario error in `rpc`: the span of the value at fault, the key and
/// the message.
pub type SpecError = (std::ops::Range<usize>, &'static str, String);

/// The validated `rpc` table.
#[derive(Debug, Clone, Serialize)]
pub struct RpcPlan {
    /// The request template as written (secrets stay `${VAR}`).
    pub request: String,
    /// The reply's id pointer as written.
    pub id: String,
    /// How long a request may wait for its reply (`None`: the run's
    /// request timeout).
    #[serde(rename = "timeout_s", with = "crate::units::opt_secs")]
    pub timeout: Option<Duration>,
    /// The reply's error pointer as written, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pointer: Pointer,
    #[serde(skip)]
    error_pointer: Option<Pointer>,
    /// The request split at each `{id}`, compiled when the plan's names
    /// are known ([`RpcPlan::compile`]).
    #[serde(skip)]
    pieces: Arc<[Template]>,
}

impl RpcSpec {
    /// Checks the table; the template is compiled later, against the
    /// group's data columns and token ([`RpcPlan::compile`]).
    ///
    /// Errors: a request without `{id}`, a pointer that is not RFC 6901,
    /// a timeout that is not a positive duration.
    pub fn plan(&self) -> Result<RpcPlan, SpecError> {
        let text = self.request.get_ref();
        if split_at_id(text).len() < 2 {
            return Err((
                self.request.span(),
                "rpc.request",
                "has no `{id}`: the reply is found by the id each request carries \
                 (e.g. '{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"echo\",\"params\":[]}')"
                    .into(),
            ));
        }
        let pointer = Pointer::parse(self.id.get_ref()).map_err(|m| (self.id.span(), "rpc.id", m))?;
        let error_pointer = match &self.error {
            Some(e) => Some(Pointer::parse(e.get_ref()).map_err(|m| (e.span(), "rpc.error", m))?),
            None => None,
        };
        let timeout = match &self.timeout {
            None => None,
            Some(t) => match humantime::parse_duration(t.get_ref()) {
                Ok(d) if !d.is_zero() && d <= MAX_TIMEOUT => Some(d),
                Ok(_) => {
                    return Err((
                        t.span(),
                        "rpc.timeout",
                        "must be greater than zero and at most one hour".into(),
                    ))
                }
                Err(e) => {
                    return Err((
                        t.span(),
                        "rpc.timeout",
                        format!(
                            "invalid duration {:?} ({e}); write e.g. \"250ms\", \"5s\"",
                            t.get_ref()
                        ),
                    ))
                }
            },
        };
        Ok(RpcPlan {
            request: text.clone(),
            id: self.id.get_ref().clone(),
            timeout,
            error: self.error.as_ref().map(|e| e.get_ref().clone()),
            pointer,
            error_pointer,
            pieces: Arc::new([]),
        })
    }
}

/// Longest `rpc.timeout`: replies are timed in one-hour histograms.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

impl RpcPlan {
    /// Compiles the request template against the names the group has.
    ///
    /// Errors: the first unknown placeholder (its offset is into the whole
    /// request text).
    pub fn compile(mut self, names: &Names<'_>) -> Result<RpcPlan, Unknown> {
        let mut pieces = Vec::new();
        for (start, text) in split_at_id(&self.request) {
            pieces.push(compile(text, names).map_err(|mut u| {
                u.offset += start;
                u
            })?);
        }
        self.pieces = pieces.into();
        Ok(self)
    }

    /// True when some placeholder differs between clients.
    pub fn is_personal(&self) -> bool {
        self.pieces.iter().any(Template::is_personal)
    }

    /// The request's text around its ids, for one session.
    fn render(&self, vars: &Vars<'_>) -> Result<Box<[String]>, String> {
        self.pieces.iter().map(|t| t.render_once(vars)).collect()
    }
}

/// The template's text between `{id}`s, with each piece's offset (`{{`
/// is a literal `{`, as the template syntax says, so `{{id}` is no id).
fn split_at_id(text: &str) -> Vec<(usize, &str)> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i..].starts_with(b"{{") {
            i += 2;
        } else if bytes[i..].starts_with(b"{id}") {
            pieces.push((start, &text[start..i]));
            i += 4;
            start = i;
        } else {
            i += 1;
        }
    }
    pieces.push((start, &text[start..]));
    pieces
}

/// One request in flight.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    intended: Instant,
    sent: Instant,
}

/// A request–reply session.
pub struct WsRpc {
    ws: Ws,
    pointer: Pointer,
    error_pointer: Option<Pointer>,
    /// The request's text around `{id}`, rendered for this session.
    pieces: Box<[String]>,
    /// Bytes of the pieces, to size each request at once.
    text_len: usize,
    /// The id the next request carries.
    next_id: u64,
    /// Requests by `id − oldest`; `None` once answered (the ring shrinks
    /// from the front past answered ones).
    in_flight: VecDeque<Option<InFlight>>,
    oldest: u64,
    timeout: Duration,
    /// When `idle` or `drain` wakes: its end, or the oldest request's
    /// timeout, whichever is first.
    wake: Deadline,
}

impl Transport for WsRpc {
    const LABEL: &'static str = "ws-rpc";
    const KEYS: &'static [&'static str] = &["rate", "url", "compression", "rpc"];
    const SUBSCRIBES: bool = false;
    const REQUEST_BASED: bool = true;
    const COUNTS_MESSAGES: bool = true;
    type Section = super::NoSection;

    fn preset(_: &str) -> Option<super::NoSection> {
        None
    }

    async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        _cursor: Option<String>,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let plan = spec.params.rpc.as_ref().ok_or_else(|| {
            Fault::new(ErrorKind::Other, "a ws-rpc session needs `rpc = { request, id }`")
        })?;
        let pieces = {
            let who = sink.who().cloned().unwrap_or_default();
            let vars = Vars {
                channel: &spec.channel,
                who: &who,
            };
            plan.render(&vars)
                .map_err(|m| Fault::new(ErrorKind::Other, format!("rpc.request: {m}")))?
        };
        let ws = websocket::connect(spec, io, &spec.path, None, STREAM_CHUNK, sink).await?;
        Ok(WsRpc {
            ws,
            pointer: plan.pointer.clone(),
            error_pointer: plan.error_pointer.clone(),
            text_len: pieces.iter().map(String::len).sum(),
            pieces,
            next_id: 1,
            in_flight: VecDeque::new(),
            oldest: 1,
            timeout: plan.timeout.unwrap_or(spec.params.request_timeout),
            wake: Deadline::new(None),
        })
    }

    async fn next<S: Sink>(&mut self, intended: Instant, sink: &mut S) -> Result<Step, Fault> {
        let id = self.next_id;
        self.next_id += 1;
        let text = self.request(id);
        let sent = Instant::now();
        self.in_flight.push_back(Some(InFlight { intended, sent }));
        if let Err(e) = self.ws.send(Message::text(text)).await {
            self.abandon(sink);
            return Err(e.into());
        }
        Ok(Step::Continue)
    }

    async fn idle<S: Sink>(&mut self, until: Instant, sink: &mut S) -> Result<Step, Fault> {
        let r = self.observe(until, false, sink).await;
        if !matches!(r, Ok(Step::Continue)) {
            self.abandon(sink);
        }
        r
    }

    async fn drain<S: Sink>(&mut self, until: Instant, sink: &mut S) {
        if self.in_flight.is_empty() {
            return;
        }
        // Still in flight at `until`: not counted (the hold is over).
        if !matches!(self.observe(until, true, sink).await, Ok(Step::Continue)) {
            self.abandon(sink);
        }
    }

    fn cursor(&self) -> Option<String> {
        None
    }

    async fn close(mut self) {
        websocket::close_politely(&mut self.ws).await;
    }
}

impl WsRpc {
    /// The request carrying `id`.
    fn request(&self, id: u64) -> String {
        use std::fmt::Write;
        let mut text = String::with_capacity(self.text_len + 20 * (self.pieces.len() - 1));
        for (i, piece) in self.pieces.iter().enumerate() {
            if i > 0 {
                // Writing to a String cannot fail.
                let _ = write!(text, "{id}");
            }
            text.push_str(piece);
        }
        text
    }

    /// Reads replies and pushes until `until` (or, with `until_answered`,
    /// until no request is in flight), counting timeouts as they fall due.
    async fn observe<S: Sink>(
        &mut self,
        until: Instant,
        until_answered: bool,
        sink: &mut S,
    ) -> Result<Step, Fault> {
        loop {
            let now = Instant::now();
            self.expire(now, sink);
            if now >= until || (until_answered && self.in_flight.is_empty()) {
                return Ok(Step::Continue);
            }
            let due = self.oldest_due().map_or(until, |d| d.min(until));
            self.wake.set(Some(due.into()));
            let msg = tokio::select! {
                biased;
                msg = self.ws.next() => msg,
                _ = self.wake.passed() => continue,
            };
            let at = Instant::now();
            match msg {
                None => return Ok(Step::Ended),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(t))) => self.on_message(t.as_bytes(), at, sink),
                Some(Ok(Message::Binary(b))) => self.on_message(&b, at, sink),
                Some(Ok(Message::Close(f))) => {
                    websocket::answer_close(&mut self.ws).await;
                    return closed_by_server(f.as_ref());
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Frame(_))) => {
                    return Err(Fault::new(ErrorKind::Protocol, "raw frame"))
                }
            }
        }
    }

    /// When the oldest request in flight times out.
    fn oldest_due(&self) -> Option<Instant> {
        match self.in_flight.front() {
            Some(Some(r)) => Some(r.sent + self.timeout),
            _ => None,
        }
    }

    /// Counts every request whose time is up at `now` as a timeout. The
    /// oldest is always at the front: requests go out in id order with
    /// one timeout, and answered ones are dropped from the front.
    fn expire<S: Sink>(&mut self, now: Instant, sink: &mut S) {
        while let Some(due) = self.oldest_due() {
            if due > now {
                break;
            }
            sink.fault(Fault::new(
                ErrorKind::Timeout,
                format!(
                    "no reply to request id {} within {}",
                    self.oldest,
                    humantime::format_duration(self.timeout)
                ),
            ));
            self.pop_front();
        }
    }

    /// Drops the front slot and any answered ones behind it.
    fn pop_front(&mut self) {
        self.in_flight.pop_front();
        self.oldest += 1;
        while let Some(None) = self.in_flight.front() {
            self.in_flight.pop_front();
            self.oldest += 1;
        }
    }

    /// A reply, or a message that is none.
    fn on_message<S: Sink>(&mut self, bytes: &[u8], at: Instant, sink: &mut S) {
        let id = match self.pointer.find(bytes) {
            Found::Nothing => return sink.message(bytes, at),
            Found::Id(id) => id,
            Found::Null | Found::Foreign => {
                return sink.fault(Fault::new(
                    ErrorKind::Protocol,
                    format!("a reply whose id is not one stampede sent: {}", snippet(bytes)),
                ))
            }
        };
        let slot = id
            .checked_sub(self.oldest)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.in_flight.get_mut(i))
            .and_then(Option::take);
        let Some(r) = slot else {
            let why = if id < self.next_id {
                "answered already or timed out"
            } else {
                "never sent"
            };
            return sink.fault(Fault::new(
                ErrorKind::Protocol,
                format!("a reply to request id {id}, which was {why}: {}", snippet(bytes)),
            ));
        };
        if id == self.oldest {
            self.pop_front();
        }
        let failed = self
            .error_pointer
            .as_ref()
            .is_some_and(|p| !matches!(p.find(bytes), Found::Nothing | Found::Null));
        if failed {
            sink.fault(Fault::new(
                ErrorKind::Status,
                format!("the reply to request id {id} is an error: {}", snippet(bytes)),
            ));
        }
        sink.request(RequestSample {
            intended: r.intended,
            sent: r.sent,
            done: at,
            status: None,
            empty: false,
        });
    }

    /// The connection is ending: every request still in flight failed.
    fn abandon<S: Sink>(&mut self, sink: &mut S) {
        while let Some(slot) = self.in_flight.front() {
            if slot.is_some() {
                sink.fault(Fault::new(
                    ErrorKind::Reset,
                    format!(
                        "the connection ended before the reply to request id {}",
                        self.oldest
                    ),
                ));
            }
            self.in_flight.pop_front();
            self.oldest += 1;
        }
    }
}

/// The start of a message, for an error's example.
fn snippet(bytes: &[u8]) -> String {
    const MAX: usize = 120;
    let cut = &bytes[..bytes.len().min(MAX)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > MAX {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_pointer_is_checked() {
        let text = "rpc = { request = '{id}', id = \"/id\", error = \"error\" }";
        #[derive(Deserialize)]
        struct Group {
            rpc: RpcSpec,
        }
        let (_, key, m) = toml::from_str::<Group>(text).unwrap().rpc.plan().unwrap_err();
        assert_eq!(key, "rpc.error");
        assert!(m.contains("not a JSON pointer"));
    }

    fn spec(request: &str, id: &str, timeout: Option<&str>) -> RpcSpec {
        let t = timeout.map_or(String::new(), |t| format!(", timeout = {t:?}"));
        #[derive(Deserialize)]
        struct Group {
            rpc: RpcSpec,
        }
        let text = format!("rpc = {{ request = {request:?}, id = {id:?}{t} }}");
        toml::from_str::<Group>(&text).unwrap().rpc
    }

    #[test]
    fn the_request_is_split_at_each_id_and_nowhere_else() {
        assert_eq!(split_at_id("a{id}b{{id}c{id}"), [(0, "a"), (5, "b{{id}c"), (16, "")]);
        assert_eq!(split_at_id("{id}"), [(0, ""), (4, "")]);
        assert_eq!(split_at_id("none"), [(0, "none")]);
    }

    #[test]
    fn the_table_is_checked() {
        let err = |s: RpcSpec| s.plan().unwrap_err();
        assert!(err(spec("{\"x\":1}", "/id", None)).2.contains("no `{id}`"));
        let (span, key, m) = err(spec("{id}", "id", None));
        assert_eq!(key, "rpc.id");
        assert!(m.contains("JSON pointer") && !span.is_empty());
        assert!(err(spec("{id}", "/id", Some("0s"))).2.contains("greater than zero"));
        assert!(err(spec("{id}", "/id", Some("soon"))).2.contains("invalid duration"));
        let p = spec("{id}", "/id", Some("250ms")).plan().unwrap();
        assert_eq!(p.timeout, Some(Duration::from_millis(250)));
    }

    #[test]
    fn requests_carry_their_ids_and_the_clients_values() {
        let plan = spec(r#"{"id":{id},"params":["{client}","{id}"]}"#, "/id", None)
            .plan()
            .unwrap()
            .compile(&Names::default())
            .unwrap();
        assert!(plan.is_personal());
        let who = crate::identity::Who {
            client: 7,
            ..Default::default()
        };
        let pieces = plan
            .render(&Vars {
                channel: "",
                who: &who,
            })
            .unwrap();
        assert_eq!(&*pieces, [r#"{"id":"#, r#","params":["7",""#, r#""]}"#]);
        let e = spec("{id}{nope}", "/id", None)
            .plan()
            .unwrap()
            .compile(&Names::default())
            .unwrap_err();
        assert_eq!((e.offset, e.placeholder.as_str()), (4, "{nope}"));
    }
}
