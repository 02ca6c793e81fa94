//! The identity keys into the plan: `[[data]]` files read and checked,
//! each group's token planned, and every template compiled (an unknown
//! placeholder or column is a scenario error at the template's own
//! `file:line:column`).

use std::path::Path;
use std::sync::Arc;

use http::HeaderName;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::identity::data::{Feeder, Strategy};
use crate::identity::template::{compile, Template, Unknown, Vars};
use crate::identity::{token, Identity, Who};
use crate::profile::Profile;
use crate::scenario::{Scenario, Source};
use crate::scenario_keys::{DataSpec, SecretSpec};
use crate::transport::personal::GroupTemplates;
use crate::transport::TransportKind;

/// Reads the scenario's `[[data]]` files; `clients` is the scenario's
/// client count (all groups, all shards), which `unique` must cover.
pub(super) fn identity(sc: &Scenario, src: &Source, clients: u64) -> Result<Identity> {
    Ok(Identity::new(feeders(&sc.data, src, clients)?))
}

/// Reads and checks every `[[data]]` entry.
fn feeders(specs: &[Spanned<DataSpec>], src: &Source, clients: u64) -> Result<Vec<Feeder>> {
    let mut out: Vec<Feeder> = Vec::with_capacity(specs.len());
    for spec in specs {
        let f = feeder(spec.get_ref(), src, clients)?;
        for c in &f.columns {
            if let Some(other) = out.iter().find(|o| o.columns.contains(c)) {
                return Err(src.error(
                    spec.get_ref().file.span(),
                    "data.file",
                    &format!(
                        "column {c:?} is also in {}: each `{{data.<column>}}` must name one file",
                        other.file
                    ),
                ));
            }
        }
        out.push(f);
    }
    Ok(out)
}

fn feeder(spec: &DataSpec, src: &Source, clients: u64) -> Result<Feeder> {
    let file = spec.file.get_ref();
    let path = Path::new(&src.path)
        .parent()
        .unwrap_or(Path::new("."))
        .join(file);
    let file_error = |m: String| src.error(spec.file.span(), "data.file", &m);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(&path)
        .map_err(|e| {
            file_error(format!(
                "cannot read {}: {}",
                path.display(),
                csv_message(&e)
            ))
        })?;
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| file_error(format!("{}: {}", path.display(), csv_message(&e))))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if columns.iter().any(String::is_empty) {
        return Err(file_error(format!(
            "{}: line 1: every column needs a name in the header row",
            path.display()
        )));
    }
    if let Some(c) = columns
        .iter()
        .enumerate()
        .find_map(|(i, c)| columns[..i].contains(c).then_some(c))
    {
        return Err(file_error(format!(
            "{}: line 1: column {c:?} is named twice",
            path.display()
        )));
    }
    let mut rows: Vec<Box<[Arc<str>]>> = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| file_error(format!("{}: {}", path.display(), csv_message(&e))))?;
        rows.push(record.iter().map(Arc::from).collect());
    }
    if rows.is_empty() {
        return Err(file_error(format!(
            "{} has a header but no rows",
            path.display()
        )));
    }
    let strategy = match spec
        .strategy
        .as_ref()
        .map(|s| (s.get_ref().as_str(), s.span()))
    {
        None | Some(("cycle", _)) => Strategy::Cycle,
        Some(("unique", span)) => {
            if (rows.len() as u64) < clients {
                return Err(src.error(
                    span,
                    "data.strategy",
                    &format!(
                        "`unique` needs a row per client: {file} has {} rows, the scenario has {clients} clients",
                        rows.len()
                    ),
                ));
            }
            Strategy::Unique
        }
        Some(("random", _)) => Strategy::Random {
            seed: spec.seed.as_ref().map_or(0, |s| *s.get_ref()),
        },
        Some((other, span)) => {
            return Err(src.error(
                span,
                "data.strategy",
                &format!("{other:?}: write \"cycle\", \"unique\" or \"random\""),
            ))
        }
    };
    if let (Some(seed), false) = (&spec.seed, matches!(strategy, Strategy::Random { .. })) {
        return Err(src.error(
            seed.span(),
            "data.seed",
            "only `strategy = \"random\"` takes a seed",
        ));
    }
    let secret: Vec<usize> = match spec.secret.as_ref().map(|s| (s.get_ref(), s.span())) {
        None | Some((SecretSpec::All(false), _)) => Vec::new(),
        Some((SecretSpec::All(true), _)) => (0..columns.len()).collect(),
        Some((SecretSpec::Columns(list), span)) => list
            .iter()
            .map(|c| {
                columns.iter().position(|k| k == c).ok_or_else(|| {
                    src.error(
                        span.clone(),
                        "data.secret",
                        &format!(
                            "{file} has no column {c:?} (its columns: {})",
                            columns.join(", ")
                        ),
                    )
                })
            })
            .collect::<Result<_>>()?,
    };
    for &i in &secret {
        let label = format!("{{data.{}}}", columns[i]);
        for row in &rows {
            if let Some(v) = row.get(i) {
                crate::secrets::register_as(&label, v);
            }
        }
    }
    Ok(Feeder {
        file: file.clone(),
        strategy,
        columns,
        row_count: rows.len(),
        rows: rows.into(),
    })
}

/// A CSV error with its place (`line N`) and without Debug noise.
fn csv_message(e: &csv::Error) -> String {
    let line = e.position().map(|p| format!("line {}: ", p.line()));
    let what = match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        csv::ErrorKind::Utf8 { err, .. } => format!("not UTF-8 ({err})"),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        _ => e.to_string(),
    };
    format!("{}{what}", line.unwrap_or_default())
}

/// Where a template error is: the placeholder's own place when the text
/// under `span` holds it, else the start of `span`.
fn template_error(src: &Source, span: std::ops::Range<usize>, key: &str, u: &Unknown) -> Error {
    let text = src.text.get(span.clone()).unwrap_or_default();
    let at = text
        .find(&u.placeholder)
        .map_or(span.start, |i| span.start + i);
    src.error(at..at, key, &u.message)
}

/// Compiles every template of every group: URL, headers, request URLs and
/// body, the WebSocket script, token claims. Sets each group's
/// `templates`, `token` and scenario-wide `first_client`.
pub(super) fn compile_groups(
    sc: &Scenario,
    src: &Source,
    profile: &Profile,
    identity: &Identity,
    base_path: &str,
    groups: &mut [super::GroupPlan],
) -> Result<()> {
    let dir = Path::new(&src.path).parent().unwrap_or(Path::new("."));
    let profile_span = sc.profile.as_ref().map(|p| p.span());
    // A preset's templates are known good: only a placeholder the scenario
    // did not provide for can fail there, which the message says.
    let in_profile = |key: &str, u: &Unknown| match &profile_span {
        Some(s) => template_error(src, s.clone(), key, u),
        None => Error::Usage(format!("profile {}: `{key}`: {}", profile.name, u.message)),
    };
    let mut first = 0u64;
    for (g, sg) in groups.iter_mut().zip(&sc.groups) {
        g.first_client = first;
        first += g.total_clients();
        let mut t = GroupTemplates::default();
        if let Some(spec) = &sg.token {
            let names = identity.names(false);
            let plan = token::TokenPlan::new(spec.get_ref(), dir, &names).map_err(|e| match e {
                token::TokenError::Bad(m) => src.error(spec.span(), "token", &m),
                token::TokenError::Template(u) => {
                    template_error(src, spec.span(), "token.claims", &u)
                }
            })?;
            // Signed once now, so a key or claim that cannot sign fails
            // the plan, not every client.
            plan.sign(
                &Vars {
                    channel: "",
                    who: &Who::default(),
                },
                0,
            )
            .map_err(|m| src.error(spec.span(), "token", &m))?;
            t.token = Some(Arc::new(plan));
        }
        let names = identity.names(t.token.is_some());
        if g.transport.subscribes() {
            let url = profile.url_for(g.transport).unwrap_or_default();
            let c = compile(url, &names).map_err(|u| in_profile("url", &u))?;
            if c.is_personal() {
                t.path = Some((base_path.to_string(), c));
            }
        } else if matches!(g.transport, TransportKind::Echo | TransportKind::WsRpc) {
            if let Some(p) = &g.path {
                let span = sg.url.as_ref().map_or(sg.transport.span(), |u| u.span());
                let c = compile(p, &names).map_err(|u| template_error(src, span, "url", &u))?;
                if c.is_personal() {
                    t.path = Some((String::new(), c));
                }
            }
        }
        let mut all = profile.headers.clone();
        all.extend(g.headers.clone());
        for (name, value) in &all {
            let in_group = g.headers.contains_key(name);
            let c = compile(value, &names).map_err(|u| match (&sg.headers, in_group) {
                (Some(h), true) => template_error(src, h.span(), "headers", &u),
                _ => in_profile("headers", &u),
            })?;
            // Rendered per session, `{channel}` included: the shared
            // headers are the values as written.
            if c.has_vars() {
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    src.error(
                        sg.transport.span(),
                        "headers",
                        &format!("{name:?} is not a header name"),
                    )
                })?;
                t.headers.push((name, c));
            }
        }
        if let Some(r) = &g.params.request {
            let span = sg
                .urls
                .as_ref()
                .map(|u| u.span())
                .or(sg.url.as_ref().map(|u| u.span()))
                .unwrap_or(sg.transport.span());
            let urls = r
                .urls
                .iter()
                .map(|u| {
                    compile(u, &names).map_err(|e| template_error(src, span.clone(), "url", &e))
                })
                .collect::<Result<Vec<_>>>()?;
            if urls.iter().any(Template::is_personal) {
                t.request_urls = urls;
            }
            if let (Some(body), Some(b)) = (&r.body, &sg.body) {
                let c =
                    compile(body, &names).map_err(|u| template_error(src, b.span(), "body", &u))?;
                if c.is_personal() {
                    t.request_body = Some(c);
                }
            }
        }
        if let (Some(rpc), Some(spec)) = (&g.params.rpc, &sg.rpc) {
            let span = spec.get_ref().request.span();
            let compiled = (**rpc)
                .clone()
                .compile(&names)
                .map_err(|u| template_error(src, span, "rpc.request", &u))?;
            g.params.rpc = Some(Arc::new(compiled));
        }
        if g.transport == TransportKind::Websocket {
            if let Some(ws) = &profile.sections.websocket {
                let c = crate::transport::script::Compiled::new(ws, &names)
                    .map_err(|(key, u)| in_profile(&format!("websocket.{key}"), &u))?;
                t.script = Some(Arc::new(c));
            }
        }
        g.token = t.token.clone();
        g.templates = Arc::new(t);
    }
    Ok(())
}
