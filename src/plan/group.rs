//! One `[[groups]]` entry into a [`GroupPlan`]: its transport's keys (the
//! transport registry says which it takes), pacing, reconnects, request
//! plan and load shape.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use std::time::Duration;

use super::shape::{stages_plan, turnover_plan};
use super::{GroupPlan, ReconnectPlan};
use crate::error::{Error, Result};
use crate::profile::{self, Profile};
use crate::scenario::{Dur, Group, Reconnect, Scenario, Source};
use crate::transport::h2::{H2Params, MAX_WINDOW};
use crate::transport::request::RequestPlan;
use crate::transport::{Params, TransportKind};

const MAX_CLIENTS: u64 = 1_000_000;

/// Every group of the scenario, with the run's limits and request timeout.
pub(super) fn groups_plan(sc: &Scenario, src: &Source) -> Result<Vec<GroupPlan>> {
    if sc.groups.is_empty() {
        return Err(Error::Scenario {
            at: src.path.clone(),
            message: "`groups`: at least one [[groups]] entry is needed".into(),
        });
    }
    let mut groups = Vec::with_capacity(sc.groups.len());
    for g in &sc.groups {
        let plan = GroupPlan::from_group(g, src, &groups)?;
        groups.push(plan);
    }
    let (limits, request_timeout) = limits_plan(sc, src)?;
    for g in &mut groups {
        g.params.limits = limits;
        g.params.request_timeout = request_timeout;
    }
    Ok(groups)
}

impl GroupPlan {
    /// Validates one group; `taken` are the groups before it (names are
    /// unique).
    pub fn from_group(g: &Group, src: &Source, taken: &[GroupPlan]) -> Result<GroupPlan> {
        let kind = *g.transport.get_ref();
        let clients = *g.clients.get_ref();
        if clients == 0 || clients > MAX_CLIENTS {
            return Err(src.error(
                g.clients.span(),
                "clients",
                &format!("must be in 1..={MAX_CLIENTS}"),
            ));
        }
        // Keys only some transports take: each transport lists its own.
        for (key, span) in g.transport_keys() {
            let Some(span) = span else { continue };
            if !kind.info().keys.contains(&key) {
                let names: Vec<_> = TransportKind::accepting(key)
                    .into_iter()
                    .map(|k| k.label())
                    .collect();
                return Err(src.error(
                    span,
                    key,
                    &format!(
                        "applies to transport {} only, not {}",
                        names.join(" / "),
                        kind.label()
                    ),
                ));
            }
        }
        use TransportKind::Echo;
        let (rate_per_s, interval) = pacing(g, kind, clients, src)?;
        let (request, path) = request_plan(g, kind, src)?;
        let h2 = h2_plan(g, kind, src)?;
        let message_bytes = match &g.message_bytes {
            // One frame must fit the WebSocket write buffer (64 KiB).
            Some(b) if *b.get_ref() > 65_000 || *b.get_ref() < 48 => {
                return Err(src.error(
                    b.span(),
                    "message_bytes",
                    "must be in 48..=65000 (the envelope needs 48)",
                ))
            }
            Some(b) => Some(*b.get_ref() as usize),
            None => (kind == Echo).then_some(64),
        };
        let headers = g
            .headers
            .as_ref()
            .map(|h| h.get_ref().clone())
            .unwrap_or_default();
        let hold_timeout = positive(&g.timeout, "timeout", src)?.unwrap_or(Duration::from_secs(30));
        let ping_interval = positive(&g.ping_interval, "ping_interval", src)?;
        let reconnect = ReconnectPlan::from_scenario(g.reconnect.as_ref(), src)?;
        let name = g.name.clone().unwrap_or_else(|| kind.label().to_string());
        if taken.iter().any(|o: &GroupPlan| o.name == name) {
            return Err(src.error(
                g.transport.span(),
                "name",
                &format!("two groups are named {name:?}; give each a unique `name`"),
            ));
        }
        let publish = client_publish_plan(g, kind, src)?;
        let stages = stages_plan(g, clients, kind, src)?;
        let turnover = turnover_plan(g, clients, kind, src)?;
        Ok(GroupPlan {
            turnover,
            stages,
            name,
            transport: kind,
            clients,
            interval,
            params: Params {
                keep_alive: g.keep_alive.as_ref().is_none_or(|k| *k.get_ref()),
                hold_timeout,
                request_timeout: Duration::from_secs(10),
                ping_interval,
                compression: g.compression.as_ref().is_some_and(|c| *c.get_ref()),
                request,
                message_bytes,
                h2,
                engine: g.engine.as_ref().map(|e| *e.get_ref()),
                rpc: rpc_plan(g, kind, src)?,
                limits: crate::transport::Limits::default(),
                tls: None,
            },
            reconnect,
            rate_per_s,
            path,
            headers,
            wire_headers: Arc::new([]),
            shard_of: None,
            first_client: 0,
            token: None,
            publish,
            rooms: None,
            templates: Arc::default(),
        })
    }
}

/// `rpc = { request, id, timeout }`: a ws-rpc group's exchange (the
/// transport file checks its own table).
fn rpc_plan(
    g: &Group,
    kind: TransportKind,
    src: &Source,
) -> Result<Option<Arc<crate::transport::ws_rpc::RpcPlan>>> {
    match &g.rpc {
        Some(spec) => spec
            .get_ref()
            .plan()
            .map(|p| Some(Arc::new(p)))
            .map_err(|(span, key, m)| src.error(span, key, &m)),
        None if kind == TransportKind::WsRpc => Err(src.error(
            g.transport.span(),
            "rpc",
            "a ws-rpc group needs `rpc = { request = '...{id}...', id = \"/id\" }`",
        )),
        None => Ok(None),
    }
}

/// `publish = { rate, via, payload_bytes }`: only a transport that can
/// send on its own connection publishes `via = "same"`.
fn client_publish_plan(
    g: &Group,
    kind: TransportKind,
    src: &Source,
) -> Result<Option<super::ClientPublishPlan>> {
    let Some(p) = &g.publish else {
        return Ok(None);
    };
    let (spec, span) = (p.get_ref(), p.span());
    if !(spec.rate.is_finite() && spec.rate > 0.0 && spec.rate <= 10_000.0) {
        return Err(src.error(
            span,
            "publish.rate",
            "must be in (0, 10000] messages/s per client",
        ));
    }
    match spec.via.as_deref().unwrap_or("same") {
        "same" if kind.info().sends => {}
        "same" => {
            let names: Vec<_> = TransportKind::ALL
                .into_iter()
                .filter(|k| k.info().sends && k.subscribes())
                .map(|k| k.label())
                .collect();
            return Err(src.error(
                span,
                "publish.via",
                &format!(
                    "\"same\" sends on the client's own connection, which {} cannot (use {})",
                    kind.label(),
                    names.join(" / ")
                ),
            ));
        }
        "http" => return Err(src.error(
            span,
            "publish.via",
            "\"http\" is not implemented yet: clients publish on their own connection (\"same\")",
        )),
        other => return Err(src.error(span, "publish.via", &format!("{other:?}: write \"same\""))),
    }
    let payload_bytes = match spec.payload_bytes {
        None => 64,
        Some(b) if (48..=65_000).contains(&b) => b as usize,
        Some(_) => {
            return Err(src.error(
                span,
                "publish.payload_bytes",
                "must be in 48..=65000 (the envelope needs 48)",
            ))
        }
    };
    Ok(Some(super::ClientPublishPlan {
        rate_per_s: spec.rate,
        payload_bytes,
    }))
}

impl ReconnectPlan {
    /// `reconnect = { ... }`, or the defaults.
    pub fn from_scenario(reconnect: Option<&Reconnect>, src: &Source) -> Result<ReconnectPlan> {
        Ok(match reconnect {
            None => ReconnectPlan {
                max_attempts: 10,
                backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                jitter: 0.0,
            },
            Some(r) => ReconnectPlan {
                max_attempts: r.max_attempts.as_ref().map_or(10, |m| *m.get_ref()),
                backoff: r
                    .backoff
                    .as_ref()
                    .map_or(Duration::from_millis(100), |b| b.get_ref().0),
                max_backoff: r
                    .max_backoff
                    .as_ref()
                    .map_or(Duration::from_secs(5), |b| b.get_ref().0),
                jitter: match &r.jitter {
                    Some(j) if !(0.0..=1.0).contains(j.get_ref()) => {
                        return Err(src.error(j.span(), "jitter", "must be in [0, 1]"))
                    }
                    Some(j) => *j.get_ref(),
                    None => 0.0,
                },
            },
        })
    }
}

/// A duration key that must be positive, when given.
fn positive(d: &Option<toml::Spanned<Dur>>, key: &str, src: &Source) -> Result<Option<Duration>> {
    match d {
        Some(s) if s.get_ref().0.is_zero() => {
            Err(src.error(s.span(), key, "must be greater than zero"))
        }
        Some(s) => Ok(Some(s.get_ref().0)),
        None => Ok(None),
    }
}

/// The group's rate (request / echo) and each client's interval.
fn pacing(
    g: &Group,
    kind: TransportKind,
    clients: u64,
    src: &Source,
) -> Result<(Option<f64>, Option<Duration>)> {
    use TransportKind::Echo;
    let rate_per_s = match &g.rate {
        Some(r)
            if !(r.get_ref().is_finite() && *r.get_ref() > 0.0 && *r.get_ref() <= 10_000_000.0) =>
        {
            return Err(src.error(r.span(), "rate", "must be in (0, 10000000] per second"))
        }
        Some(r) => Some(*r.get_ref()),
        None if kind == Echo || kind == TransportKind::WsRpc => {
            return Err(src.error(
                g.transport.span(),
                "rate",
                &format!(
                    "a{} {} group needs `rate` (messages per second over the group)",
                    if kind == Echo { "n" } else { "" },
                    kind.label()
                ),
            ))
        }
        None => None,
    };
    let interval = match (rate_per_s, &g.rate) {
        // Each client's share of the group's rate.
        (Some(r), Some(spanned)) => Some(
            Duration::try_from_secs_f64(clients as f64 / r)
                .ok()
                .filter(|d| *d <= crate::scenario::MAX_DURATION)
                .ok_or_else(|| {
                    src.error(
                        spanned.span(),
                        "rate",
                        "is so low that a client would wait more than 30 days between sends",
                    )
                })?,
        ),
        (Some(r), None) => Some(Duration::from_secs_f64(clients as f64 / r)),
        (None, _) => positive(&g.interval, "interval", src)?
            .or((kind == TransportKind::Poll).then_some(Duration::from_secs(1))),
    };
    Ok((rate_per_s, interval))
}

/// The `[limits]` section: client limits and the request timeout.
fn limits_plan(sc: &Scenario, src: &Source) -> Result<(crate::transport::Limits, Duration)> {
    let mut limits = crate::transport::Limits::default();
    let mut request_timeout = Duration::from_secs(10);
    let Some(spec) = &sc.limits else {
        return Ok((limits, request_timeout));
    };
    let l = spec.get_ref();
    let time = |d: &Option<toml::Spanned<Dur>>, key: &str| -> Result<Option<Duration>> {
        match d {
            Some(s) if s.get_ref().0.is_zero() => {
                Err(src.error(s.span(), key, "must be greater than zero"))
            }
            Some(s) => Ok(Some(s.get_ref().0)),
            None => Ok(None),
        }
    };
    let size = |b: &Option<toml::Spanned<u64>>, key: &str, min: u64| -> Result<Option<usize>> {
        match b {
            Some(s) if *s.get_ref() < min || *s.get_ref() > 1 << 40 => Err(src.error(
                s.span(),
                key,
                &format!("must be in {min}..=1099511627776 bytes"),
            )),
            Some(s) => Ok(Some(*s.get_ref() as usize)),
            None => Ok(None),
        }
    };
    if let Some(d) = time(&l.read_timeout, "limits.read_timeout")? {
        limits.read_timeout = d;
    }
    if let Some(d) = time(&l.request_timeout, "limits.request_timeout")? {
        request_timeout = d;
    }
    if let Some(n) = size(&l.max_message_bytes, "limits.max_message_bytes", 64)? {
        limits.max_message_bytes = n;
    }
    // hyper's read buffer cannot be smaller.
    if let Some(n) = size(&l.max_header_bytes, "limits.max_header_bytes", 8192)? {
        limits.max_header_bytes = n;
    }
    if let Some(n) = size(&l.max_sse_line_bytes, "limits.max_sse_line_bytes", 64)? {
        limits.max_sse_line_bytes = n;
    }
    if let Some(n) = size(&l.max_buffered_bytes, "limits.max_buffered_bytes", 64)? {
        limits.max_buffered_bytes = n;
    }
    Ok((limits, request_timeout))
}

/// The request plan and path of a request or echo group.
fn request_plan(
    g: &crate::scenario::Group,
    kind: TransportKind,
    src: &Source,
) -> Result<(Option<RequestPlan>, Option<String>)> {
    let check_path = |p: &str, span: std::ops::Range<usize>, key: &str| {
        if p.starts_with('/') && p.parse::<http::uri::PathAndQuery>().is_ok() {
            Ok(p.to_string())
        } else {
            Err(src.error(
                span,
                key,
                &format!("{p:?} must be a path on the target, like \"/hello\" (the target URL gives host and port)"),
            ))
        }
    };
    match kind {
        TransportKind::Echo | TransportKind::WsRpc => {
            let path = match &g.url {
                Some(u) => check_path(u.get_ref(), u.span(), "url")?,
                None if kind == TransportKind::Echo => "/echo".to_string(),
                None => "/rpc".to_string(),
            };
            Ok((None, Some(path)))
        }
        TransportKind::Request => {
            let mut urls = Vec::new();
            if let Some(u) = &g.url {
                urls.push(check_path(u.get_ref(), u.span(), "url")?);
            }
            if let Some(list) = &g.urls {
                for u in list.get_ref() {
                    urls.push(check_path(u, list.span(), "urls")?);
                }
            }
            if urls.is_empty() {
                return Err(src.error(
                    g.transport.span(),
                    "url",
                    "a request group needs `url` (or `urls`)",
                ));
            }
            let method = match &g.method {
                None => http::Method::GET,
                Some(m) => http::Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes())
                    .map_err(|_| src.error(m.span(), "method", "not an HTTP method"))?,
            };
            let (body, wire_body) = match &g.body {
                None => (None, bytes::Bytes::new()),
                Some(b) => {
                    let wire = profile::expand_env(b.get_ref())
                        .map_err(|m| src.error(b.span(), "body", &m))?;
                    (Some(b.get_ref().clone()), bytes::Bytes::from(wire))
                }
            };
            let expect_status = match &g.expect_status {
                None => Vec::new(),
                Some(s)
                    if s.get_ref().is_empty()
                        || s.get_ref().iter().any(|c| !(100..=599).contains(c)) =>
                {
                    return Err(src.error(
                        s.span(),
                        "expect_status",
                        "give HTTP statuses between 100 and 599",
                    ))
                }
                Some(s) => s.get_ref().clone(),
            };
            let first = urls[0].clone();
            Ok((
                Some(RequestPlan {
                    method,
                    urls,
                    body,
                    wire_body,
                    expect_status,
                    http2: g.http2.as_ref().is_some_and(|h| *h.get_ref()),
                }),
                Some(first),
            ))
        }
        _ => Ok((None, None)),
    }
}

/// A streaming group's `http2 = true` with its sharing and windows; the
/// three keys without `http2 = true` are an error at the key.
fn h2_plan(g: &Group, kind: TransportKind, src: &Source) -> Result<Option<H2Params>> {
    if !kind.info().keys.contains(&"streams_per_connection") {
        return Ok(None);
    }
    let on = g.http2.as_ref().is_some_and(|h| *h.get_ref());
    let keys = [
        (
            "streams_per_connection",
            &g.streams_per_connection,
            1,
            10_000,
        ),
        ("stream_window", &g.stream_window, 1, u64::from(MAX_WINDOW)),
        (
            "connection_window",
            &g.connection_window,
            65_535,
            u64::from(MAX_WINDOW),
        ),
    ];
    let mut values = [None; 3];
    for (i, (key, value, min, max)) in keys.into_iter().enumerate() {
        let Some(v) = value else { continue };
        if !on {
            return Err(src.error(v.span(), key, "applies with `http2 = true` only"));
        }
        if !(min..=max).contains(v.get_ref()) {
            return Err(src.error(v.span(), key, &format!("must be in {min}..={max}")));
        }
        values[i] = Some(*v.get_ref());
    }
    Ok(on.then(|| H2Params {
        streams_per_connection: values[0].unwrap_or(1) as usize,
        stream_window: values[1].map(|w| w as u32),
        connection_window: values[2].map(|w| w as u32),
        pool: Default::default(),
    }))
}

/// The profile's headers, then each group's (profile first, group
/// overriding), checked and ready for the wire; the groups' transports must
/// be ones the profile speaks.
pub(super) fn wire_headers(
    sc: &Scenario,
    src: &Source,
    profile: &Profile,
    groups: &mut [GroupPlan],
) -> Result<Arc<[(HeaderName, HeaderValue)]>> {
    let profile_headers: Arc<[(HeaderName, HeaderValue)]> = profile::wire_headers(profile)
        .map_err(|m| match &sc.profile {
            Some(p) => src.error(p.span(), "profile", &m),
            None => Error::Usage(m),
        })?
        .into();
    for (g, sg) in groups.iter_mut().zip(&sc.groups) {
        if profile.url_for(g.transport).is_none() {
            return Err(src.error(
                sg.transport.span(),
                "transport",
                &format!(
                    "the {} profile does not support {}",
                    profile.name,
                    g.transport.label()
                ),
            ));
        }
        let mut all = profile.headers.clone();
        all.extend(g.headers.clone());
        let wire = profile::wire_headers(&Profile {
            headers: all,
            ..profile.clone()
        })
        .map_err(|m| {
            let span = sg
                .headers
                .as_ref()
                .map_or(sg.transport.span(), |h| h.span());
            src.error(span, "headers", &m)
        })?;
        crate::transport::websocket::check_scenario_extensions(&wire).map_err(|m| {
            let in_group = g
                .headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("sec-websocket-extensions"));
            let span = match (&sg.headers, &sc.profile) {
                (Some(h), _) if in_group => h.span(),
                (_, Some(p)) => p.span(),
                _ => sg.transport.span(),
            };
            src.error(span, "headers", &m)
        })?;
        g.wire_headers = wire.into();
    }
    Ok(profile_headers)
}
