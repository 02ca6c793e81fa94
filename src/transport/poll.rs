//! Interval polling: one GET per interval carrying the cursor, in the
//! profile's cursor style and body format. The load module decides when
//! each poll is intended to start; this file only performs it. Servers that
//! return one message per response (`drain`) are polled again at once
//! until they have nothing new, as a real client would.

use std::sync::Arc;
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
