//! Long polling: the next GET goes out as soon as the previous one returns;
//! the server holds it until an event or its hold timeout (an empty status
//! of the profile: `204` on the reference server, `408` on nchan), which is
//! counted as a server timeout, not an error. The cursor is kept across
//! polls and reconnects.

use std::sync::Arc;
use std::time::Instant;

use super::poll::PollProfile;
use super::http::{CursorPoller, PollOutcome};
use super::{SessionSpec, Sink, Step, Transport};
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;

/// A long-polling session.
pub struct LongPoll {
    spec: SessionSpec,
    io: Arc<IoCounters>,
    poller: CursorPoller,
}

impl Transport for LongPoll {
    const LABEL: &'static str = "long-poll";
    const KEYS: &'static [&'static str] = &["timeout", "keep_alive"];
    const REQUEST_BASED: bool = true;
    const EMPTY_RESPONSES: bool = true;
    const SERVER_TIMEOUTS: bool = true;
    type Section = super::poll::PollProfile;

    fn preset(profile: &str) -> Option<PollProfile> {
        match profile {
            "builtin" => Some(PollProfile::builtin(
                "/lp/{channel}",
                Some("timeout_ms={timeout_ms}"),
            )),
            "nchan" => Some(PollProfile::nchan("/lp/{channel}", false, vec![408, 304])),
            _ => None,
        }
    }

    async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        cursor: Option<String>,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let profile = spec.profile.long_poll.as_ref().ok_or_else(|| {
            Fault::new(
                ErrorKind::Other,
                "the target profile has no long_poll section",
            )
        })?;
        let hold_query = profile.hold_query.as_deref().map_or(String::new(), |q| {
            q.replace(
                "{timeout_ms}",
                &spec.params.hold_timeout.as_millis().to_string(),
            )
        });
        let poller = CursorPoller::open(spec, io, profile, hold_query, cursor, sink).await?;
        let mut spec = spec.clone();
        // The client waits for the server's hold plus slack before it calls
        // the request timed out.
        spec.params.request_timeout = spec.params.hold_timeout + spec.params.request_timeout;
        Ok(LongPoll {
            spec,
            io: io.clone(),
            poller,
        })
    }

    async fn next<S: Sink>(&mut self, intended: Instant, sink: &mut S) -> Result<Step, Fault> {
        let outcome = self
            .poller
            .exchange(&self.spec, &self.io, intended, sink, true)
            .await?;
        if let PollOutcome::Empty = outcome {
            sink.server_timeout();
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
