//! Request mode: plain HTTP load without a publisher, like wrk (closed
//! model: each connection sends its next request when the last one ends)
//! or wrk2 (open model: the load module schedules each request at its
//! intended instant and never skips one, so a slow server shows up in the
//! corrected latency). One keep-alive connection per client.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes};
use http::Method;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Serialize;

use super::h1::H1;
use super::h2::H2Conn;
use super::{RequestSample, SessionSpec, Sink, Step, Transport};
use crate::fault::{ErrorKind, Fault};
use crate::net::IoCounters;

/// What a request-mode group sends.
#[derive(Clone, Serialize)]
pub struct RequestPlan {
    /// HTTP method.
    #[serde(serialize_with = "as_str")]
    pub method: Method,
    /// Paths (with query) on the target, used round-robin.
    pub urls: Vec<String>,
    /// Body template as written (`${VAR}` unexpanded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The body on the wire (secrets expanded; never written anywhere).
    #[serde(skip)]
    pub wire_body: Bytes,
    /// Statuses that count as success; empty means any 2xx or 3xx.
    pub expect_status: Vec<u16>,
    /// HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    pub http2: bool,
}

impl std::fmt::Debug for RequestPlan {
    // By hand: the wire body may hold an expanded secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestPlan")
            .field("method", &self.method)
            .field("urls", &self.urls)
            .field("body", &self.body)
            .field("expect_status", &self.expect_status)
            .field("http2", &self.http2)
            .finish_non_exhaustive()
    }
}

fn as_str<S: serde::Serializer>(m: &Method, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

impl RequestPlan {
    /// True when `status` is a success for this plan.
    pub fn expected(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            (200..400).contains(&status)
        } else {
            self.expect_status.contains(&status)
        }
    }
}

/// Spreads the clients' first URL over the list.
static NEXT_START: AtomicUsize = AtomicUsize::new(0);

/// The connection of a request-mode client.
enum Link {
    Http1(H1),
    /// h2c, prior knowledge: one connection per client (with one stream in
    /// flight), so N clients are still N connections.
    Http2(H2Conn),
}

impl Link {
    async fn open<S: Sink>(
        spec: &SessionSpec,
        io: &Arc<IoCounters>,
        http2: bool,
        sink: &mut S,
    ) -> Result<Self, Fault> {
        Ok(if http2 {
            Link::Http2(H2Conn::open(spec, io, (None, None), sink).await?)
        } else {
            let stream = super::dial(spec, io, sink).await?;
            Link::Http1(H1::new(stream, spec.params.limits.max_header_bytes))
        })
    }

    fn is_closed(&self) -> bool {
        match self {
            Link::Http1(c) => c.is_closed(),
            Link::Http2(h) => h.is_closed(),
        }
    }
}

/// A request-mode session: one connection, reopened when it closes.
pub struct Request {
    spec: SessionSpec,
    io: Arc<IoCounters>,
    conn: Option<Link>,
    next_url: usize,
    /// Each URL's whole HTTP/1.1 request, serialized once per session.
    requests: Vec<Vec<u8>>,
}

/// Every URL's request as bytes: `Host`, the profile's and group's
/// headers, `Connection: close` without keep-alive, and the body.
fn serialized(spec: &SessionSpec, plan: &RequestPlan) -> Vec<Vec<u8>> {
    plan.urls
        .iter()
        .map(|u| {
            super::h1::serialize(
                &plan.method,
                u,
                &spec.authority,
                &spec.headers,
                !spec.params.keep_alive,
                &plan.wire_body,
            )
        })
        .collect()
}

impl Transport for Request {
    const LABEL: &'static str = "request";
    const KEYS: &'static [&'static str] = &[
        "keep_alive",
        "rate",
        "url",
        "urls",
        "method",
        "body",
        "expect_status",
        "http2",
    ];
    const SUBSCRIBES: bool = false;
    const REQUEST_BASED: bool = true;
    const STATUS_IS_RESPONSE: bool = true;
    const CONFIRMS_SESSIONS: bool = false;
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
        let plan = spec
            .params
            .request
            .as_ref()
            .ok_or_else(|| Fault::new(ErrorKind::Other, "a request group without requests"))?;
        let conn = Link::open(spec, io, plan.http2, sink).await?;
        Ok(Request {
            spec: spec.clone(),
            io: io.clone(),
            conn: Some(conn),
            next_url: NEXT_START.fetch_add(1, Ordering::Relaxed),
            requests: serialized(spec, plan),
        })
    }

    async fn next<S: Sink>(&mut self, intended: Instant, sink: &mut S) -> Result<Step, Fault> {
        let result = self.exchange(intended, sink).await;
        let closed = self.conn.as_ref().is_none_or(Link::is_closed);
        if (result.is_err() || !self.spec.params.keep_alive || closed) && self.conn.take().is_some()
        {
            sink.disconnected();
        }
        result.map(|()| Step::Continue)
    }

    fn cursor(&self) -> Option<String> {
        None
    }

    async fn close(mut self) {
        self.conn = None;
    }
}

impl Request {
    async fn exchange<S: Sink>(&mut self, intended: Instant, sink: &mut S) -> Result<(), Fault> {
        let plan = self
            .spec
            .params
            .request
            .as_ref()
            .ok_or_else(|| Fault::new(ErrorKind::Other, "a request group without requests"))?;
        if self.conn.is_none() {
            self.conn = Some(Link::open(&self.spec, &self.io, plan.http2, sink).await?);
        }
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Fault::new(ErrorKind::Other, "no connection"))?;
        let i = self.next_url % plan.urls.len();
        let url = &plan.urls[i];
        self.next_url = self.next_url.wrapping_add(1);
        let sent = Instant::now();
        // One deadline over head and body: one timer per request.
        let deadline = tokio::time::Instant::from_std(sent + self.spec.params.request_timeout);
        let (status, wait) = tokio::time::timeout_at(deadline, async {
            match conn {
                Link::Http1(c) => {
                    let a = c
                        .exchange(&self.requests[i], plan.method == http::Method::HEAD)
                        .await?;
                    Ok::<_, Fault>((a.status, a.retry_after))
                }
                Link::Http2(h) => {
                    let resp = h
                        .send(&self.spec, &plan.method, url, &[], plan.wire_body.clone())
                        .await?;
                    let status = resp.status().as_u16();
                    let wait = crate::fault::retry_after(resp.headers());
                    discard(resp.into_body()).await?;
                    Ok((status, wait))
                }
            }
        })
        .await
        .map_err(|_| Fault::timeout("request"))??;
        let done = Instant::now();
        sink.request(RequestSample {
            intended,
            sent,
            done,
            status: Some(status),
            empty: false,
        });
        if !plan.expected(status) {
            // The connection is still good: count it and go on.
            // Request load keeps its schedule (open model), so a
            // `Retry-After` is recorded with the fault, not obeyed.
            sink.fault(
                Fault::of_status(
                    status,
                    &http::HeaderMap::new(),
                    format!("{} {url} answered {status}", plan.method),
                )
                .with_retry_after(wait),
            );
        }
        Ok(())
    }
}

/// Reads a body to its end without keeping it (the bytes are counted on
/// the socket).
async fn discard(mut body: Incoming) -> Result<(), Fault> {
    while let Some(frame) = body.frame().await {
        if let Ok(mut data) = frame?.into_data() {
            data.advance(data.remaining());
        }
    }
    Ok(())
}
