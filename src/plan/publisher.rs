//! The `[publisher]` section into a [`PublisherPlan`].

use serde::Serialize;

use crate::error::{Error, Result};
use crate::scenario::{Scenario, Source};

/// The publisher's stream.
#[derive(Debug, Clone, Serialize)]
pub struct PublisherPlan {
    /// Events per second over all channels.
    pub rate_per_s: f64,
    /// Payload size in bytes.
    pub payload_bytes: usize,
    /// Channels.
    pub channels: u32,
    /// Channel name prefix (None: unique per run).
    pub channel_prefix: Option<String>,
    /// Publish over h2c instead of HTTP/1.1.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub http2: bool,
    /// Publish-rate stages from the phase start (empty: `rate` throughout).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<crate::schedule::rate::RateStage>,
}

impl PublisherPlan {
    /// The `[publisher]` section: required when a group subscribes.
    pub fn from_scenario(sc: &Scenario, src: &Source) -> Result<Option<PublisherPlan>> {
        let subscribes = sc.groups.iter().any(|g| g.transport.get_ref().subscribes());
        Ok(match &sc.publisher {
            None if subscribes => {
                return Err(Error::Scenario {
                    at: src.path.clone(),
                    message: "`publisher`: a [publisher] section is needed: a group subscribes to the event stream".into(),
                })
            }
            None => None,
            Some(p) => Some(publisher_plan(
                p.get_ref(),
                src,
                sc.groups.iter().any(|g| g.publish.is_some()),
            )?),
        })
    }

    /// The publish schedule: `rate`, then the stages.
    pub fn schedule(&self) -> crate::schedule::rate::RateSchedule {
        crate::schedule::rate::RateSchedule::new(self.rate_per_s, &self.stages)
    }
}

fn publisher_plan(
    p: &crate::scenario::Publisher,
    src: &Source,
    clients_publish: bool,
) -> Result<PublisherPlan> {
    let rate = *p.rate.get_ref();
    // `rate = 0`: only the clients publish (a group's `publish`).
    let only_clients = rate == 0.0 && clients_publish;
    let valid = rate.is_finite() && (0.001..=1_000_000.0).contains(&rate);
    if !(only_clients || valid) {
        return Err(src.error(
            p.rate.span(),
            "publisher.rate",
            "must be in [0.001, 1000000] events/s (or 0 when a group's clients publish)",
        ));
    }
    let payload_bytes = match &p.payload_bytes {
        None => 256,
        Some(b) if *b.get_ref() > 1 << 20 => {
            return Err(src.error(
                b.span(),
                "publisher.payload_bytes",
                "must be at most 1048576",
            ))
        }
        Some(b) => *b.get_ref() as usize,
    };
    let channels = match &p.channels {
        None => 1,
        Some(c) if *c.get_ref() == 0 || *c.get_ref() > 100_000 => {
            return Err(src.error(c.span(), "publisher.channels", "must be in 1..=100000"))
        }
        Some(c) => *c.get_ref() as u32,
    };
    let channel_prefix = match &p.channel_prefix {
        Some(c)
            if c.get_ref().is_empty()
                || !c
                    .get_ref()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) =>
        {
            return Err(src.error(
                c.span(),
                "publisher.channel_prefix",
                "use letters, digits, `-`, `_` and `.` only (it goes into URLs)",
            ))
        }
        Some(c) => Some(c.get_ref().clone()),
        None => None,
    };
    Ok(PublisherPlan {
        rate_per_s: rate,
        payload_bytes,
        channels,
        channel_prefix,
        http2: p.http2.as_ref().is_some_and(|h| *h.get_ref()),
        stages: super::shape::rate_stages_plan(p, src)?,
    })
}
