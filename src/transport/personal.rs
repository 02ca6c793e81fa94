//! Sessions that differ between clients: a group's compiled templates
//! (see [`crate::identity`]) and the per-client [`SessionSpec`] they give.
//! Groups whose URL, headers and body are the same for every client of a
//! channel share one spec and never come here.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use super::SessionSpec;
use crate::identity::template::{Template, Vars};
use crate::identity::{token, Who};

/// A group's compiled templates: what differs between its clients, the
/// WebSocket session script, and the token.
#[derive(Debug, Clone, Default)]
pub struct GroupTemplates {
    /// The subscription URL (after the base path) when it is personal.
    pub path: Option<(String, Template)>,
    /// Headers whose values are personal (replacing the shared value).
    pub headers: Vec<(HeaderName, Template)>,
    /// Request mode's URLs when one is personal.
    pub request_urls: Vec<Template>,
    /// Request mode's body when it is personal.
    pub request_body: Option<Template>,
    /// The WebSocket session script, compiled.
    pub script: Option<Arc<super::script::Compiled>>,
    /// The group's token.
    pub token: Option<Arc<token::TokenPlan>>,
}

impl GroupTemplates {
    /// True when each session needs its own URL, headers or body.
    pub fn personal(&self) -> bool {
        self.path.is_some()
            || !self.headers.is_empty()
            || !self.request_urls.is_empty()
            || self.request_body.is_some()
    }

    /// `base` with this client's URL, headers and body.
    ///
    /// Errors: a secret that is not set, or a header value that is not
    /// valid once rendered.
    pub fn session_for(
        &self,
        base: &SessionSpec,
        who: &Who,
    ) -> std::result::Result<SessionSpec, String> {
        let v = Vars {
            channel: &base.channel,
            who,
        };
        let mut spec = base.clone();
        if let Some((prefix, t)) = &self.path {
            spec.path = format!("{prefix}{}", t.render_once(&v)?);
        }
        if !self.headers.is_empty() {
            let mut headers: Vec<(HeaderName, HeaderValue)> = base
                .headers
                .iter()
                .filter(|(n, _)| !self.headers.iter().any(|(p, _)| p == n))
                .cloned()
                .collect();
            for (name, t) in &self.headers {
                let mut value = HeaderValue::from_str(&t.render_once(&v)?).map_err(|_| {
                    format!("header {name}: the rendered value is not a valid header value")
                })?;
                value.set_sensitive(true);
                headers.push((name.clone(), value));
            }
            spec.headers = headers.into();
        }
        if let Some(r) = spec.params.request.as_mut() {
            if !self.request_urls.is_empty() {
                r.urls = self
                    .request_urls
                    .iter()
                    .map(|t| t.render_once(&v))
                    .collect::<std::result::Result<_, _>>()?;
            }
            if let Some(b) = &self.request_body {
                r.wire_body = bytes::Bytes::from(b.render_once(&v)?);
            }
        }
        Ok(spec)
    }
}
