//! Interval polling: one GET per interval carrying the cursor; an empty poll
//! is a `204` without a body. The load module decides when each poll is
//! intended to start; this file only performs it.

use std::sync::Arc;
use std::time::Instant;

use super::http::CursorPoller;
use super::{SessionSpec, Sink, Step, Transport};
use crate::fault::Fault;
use crate::net::IoCounters;

/// An interval-polling session.
pub struct Poll {
    spec: SessionSpec,
    io: Arc<IoCounters>,
    poller: CursorPoller,
}

impl Transport for Poll {
    async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        cursor: Option<String>,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        let poller = CursorPoller::open(spec, io, cursor, sink).await?;
        Ok(Poll {
            spec: spec.clone(),
            io: io.clone(),
            poller,
        })
    }

    async fn next<S: Sink>(&mut self, intended: Instant, sink: &mut S) -> Result<Step, Fault> {
        self.poller
            .exchange(&self.spec, &self.io, "", intended, sink, true)
            .await?;
        Ok(Step::Continue)
    }

    fn cursor(&self) -> Option<String> {
        self.poller.cursor()
    }

    async fn close(mut self) {
        self.poller.close();
    }
}
