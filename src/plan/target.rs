//! What to run against: the target (the server under test) or the
//! reference server, TLS to it, and the profile it speaks.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::Overrides;
use crate::error::{Error, Result};
use crate::profile::{self, Profile};
use crate::scenario::{Scenario, Source};

/// What to run against.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TargetPlan {
    /// Start the reference server.
    Builtin,
    /// An already running server.
    Url {
        /// As given.
        url: String,
        /// `host:port`.
        authority: String,
        /// Path prefix put before every profile path (empty for the root).
        base_path: String,
    },
}

/// TLS as run.json records it.
#[derive(Debug, Clone, Serialize)]
pub struct TlsPlan {
    /// Extra trusted certificates (`--ca-file`).
    pub ca_file: Option<std::path::PathBuf>,
    /// Certificates not verified (`--insecure`).
    pub insecure: bool,
}

/// True for `https://` and `wss://` targets.
pub fn is_tls(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("wss://")
}

/// TLS for an `https://` / `wss://` target, built once; `--ca-file` and
/// `--insecure` without such a target are usage errors.
pub(super) fn tls_plan(
    target: &TargetPlan,
    ov: &Overrides,
) -> Result<(Option<TlsPlan>, Option<Arc<crate::net::Tls>>)> {
    let url = match target {
        TargetPlan::Url { url, .. } if is_tls(url) => url,
        _ => {
            if ov.ca_file.is_some() || ov.insecure {
                return Err(Error::Usage(
                    "--ca-file and --insecure need an https:// or wss:// target".into(),
                ));
            }
            return Ok((None, None));
        }
    };
    let host = url
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_string))
        .ok_or_else(|| Error::Usage(format!("--target {url}: missing host")))?;
    let client =
        crate::net::Tls::new(&host, ov.ca_file.as_deref(), ov.insecure).map_err(Error::Usage)?;
    Ok((
        Some(TlsPlan {
            ca_file: ov.ca_file.clone(),
            insecure: ov.insecure,
        }),
        Some(Arc::new(client)),
    ))
}

/// Checks a target URL (`http://host:port[/prefix]`) and returns its
/// authority and path prefix.
pub fn parse_target(url: &str) -> std::result::Result<(String, String), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL ({e})"))?;
    match uri.scheme_str() {
        Some("http") | Some("ws") | Some("https") | Some("wss") => {}
        Some(other) => {
            return Err(format!(
                "scheme {other}:// is not supported (use http:// or https://)"
            ))
        }
        None => return Err("missing scheme; write e.g. http://127.0.0.1:8080".into()),
    }
    let host = uri.host().ok_or("missing host")?;
    let tls = matches!(uri.scheme_str(), Some("https") | Some("wss"));
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        // It would be written to run.json as given.
        return Err(
            "credentials in the URL are not supported; send them as headers with ${ENV} in a [profile]"
                .into(),
        );
    }
    if uri.query().is_some() {
        return Err("a query string is not allowed in the target URL".into());
    }
    let base_path = uri.path().trim_end_matches('/').to_string();
    let authority = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok((authority, base_path))
}

/// The profile from `--profile`, the scenario's `profile`, or the target
/// (reference server: `builtin`; a URL: `generic`, which needs a table).
pub(super) fn resolve_profile(
    sc: &Scenario,
    src: &Source,
    ov: &Overrides,
    target: &TargetPlan,
) -> Result<Arc<Profile>> {
    let table = sc.profile.as_ref().and_then(|p| match p.get_ref() {
        toml::Value::Table(_) => Some(p),
        _ => None,
    });
    let scenario_name = sc.profile.as_ref().and_then(|p| match p.get_ref() {
        toml::Value::String(s) => Some((s.clone(), p.span())),
        _ => None,
    });
    if let Some(p) = &sc.profile {
        if !matches!(p.get_ref(), toml::Value::String(_) | toml::Value::Table(_)) {
            return Err(src.error(
                p.span(),
                "profile",
                "give a name (\"builtin\", \"nchan\") or a [profile] table",
            ));
        }
    }
    let name = match (&ov.profile, &scenario_name) {
        (Some(n), _) => Some(n.clone()),
        (None, Some((n, _))) => Some(n.clone()),
        (None, None) => None,
    };
    let bad_name = |n: &str| {
        let msg = format!(
            "unknown profile {n:?}; use one of {}",
            crate::profile::PRESETS.join(", ")
        );
        match (&ov.profile, &scenario_name) {
            (Some(_), _) => Error::Usage(format!("--profile: {msg}")),
            (None, Some((_, span))) => src.error(span.clone(), "profile", &msg),
            _ => Error::Usage(msg),
        }
    };
    let profile = match (name.as_deref(), table) {
        (None, None) => Profile::preset("builtin").ok_or_else(|| bad_name("builtin"))?,
        (Some(n), None) => Profile::preset(n).ok_or_else(|| {
            if n == "generic" {
                Error::Usage("the generic profile needs a [profile] table in the scenario (see README, \"Target profiles\")".into())
            } else {
                bad_name(n)
            }
        })?,
        (Some(n), Some(_)) if n != "generic" => {
            // --profile NAME replaces the scenario's table.
            Profile::preset(n).ok_or_else(|| bad_name(n))?
        }
        (_, Some(t)) => profile_table(t, src)?,
    };
    if matches!(target, TargetPlan::Builtin) && profile.name != "builtin" {
        return Err(Error::Usage(format!(
            "the {} profile needs --target URL (or `target` in the scenario): the built-in target speaks only the builtin profile",
            profile.name
        )));
    }
    Ok(Arc::new(profile))
}

/// A `[profile]` table: sections given replace those of `base` (a preset);
/// without `base` the profile is generic and needs `[profile.publish]` plus
/// a section per transport used.
fn profile_table(t: &toml::Spanned<toml::Value>, src: &Source) -> Result<Profile> {
    let toml::Value::Table(table) = t.get_ref() else {
        return Err(src.error(t.span(), "profile", "expected a table"));
    };
    let err = |m: String| src.error(t.span(), "profile", &m);
    let mut table = table.clone();
    let base = match table.remove("base") {
        None => None,
        Some(toml::Value::String(b)) => Some(
            Profile::preset(&b)
                .ok_or_else(|| err(format!("base {b:?} is not builtin or nchan")))?,
        ),
        Some(_) => return Err(err("base must be a preset name".into())),
    };
    let mut profile = match base {
        Some(mut b) => {
            b.sections
                .replace_from(&mut table)
                .map_err(|(key, m)| err(format!("[profile.{key}]: {m}")))?;
            if let Some(v) = table.remove("publish") {
                b.publish = v.try_into().map_err(|e: toml::de::Error| {
                    err(format!("[profile.publish]: {}", e.message().trim()))
                })?;
            }
            if let Some(v) = table.remove("headers") {
                b.headers = v.try_into().map_err(|e: toml::de::Error| {
                    err(format!("headers: {}", e.message().trim()))
                })?;
            }
            if let Some(v) = table.remove("name") {
                b.name = v
                    .try_into()
                    .map_err(|e: toml::de::Error| err(format!("name: {}", e.message().trim())))?;
            } else {
                b.name = format!("{}+custom", b.name);
            }
            if let Some(k) = table.keys().next() {
                return Err(err(format!("unknown key `{k}`")));
            }
            b
        }
        None => {
            // As serde words it for a struct that denies unknown fields
            // (the flattened sections cannot).
            let keys = profile::keys();
            if let Some(k) = table.keys().find(|k| !keys.contains(&k.as_str())) {
                let expected: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
                return Err(err(format!(
                    "unknown field `{k}`, expected one of {}",
                    expected.join(", ")
                )));
            }
            toml::Value::Table(table).try_into::<Profile>()
        }
        .map_err(|e| err(e.message().trim().to_string()))?,
    };
    if profile.name.is_empty() {
        profile.name = "generic".into();
    }
    profile.check().map_err(err)?;
    Ok(profile)
}

impl TargetPlan {
    /// `--target URL`, the scenario's `target`, or the reference server.
    pub fn from_scenario(sc: &Scenario, src: &Source, ov: &Overrides) -> Result<TargetPlan> {
        let target_text = ov
            .target
            .clone()
            .or_else(|| sc.target.as_ref().map(|t| t.get_ref().clone()));
        Ok(match target_text {
            None => TargetPlan::Builtin,
            Some(url) => {
                let (authority, base_path) =
                    parse_target(&url).map_err(|msg| match (&ov.target, &sc.target) {
                        (None, Some(t)) => src.error(t.span(), "target", &msg),
                        _ => Error::Usage(format!("--target {url}: {msg}")),
                    })?;
                TargetPlan::Url {
                    url,
                    authority,
                    base_path,
                }
            }
        })
    }

    /// Puts the target's path prefix before the request paths of `groups`.
    pub(super) fn prefix_request_paths(&self, groups: &mut [super::GroupPlan]) {
        if let TargetPlan::Url { base_path, .. } = self {
            // Request paths are on the target, under its prefix like the
            // profile's paths (echo's path is prefixed with the session's).
            for g in groups.iter_mut() {
                if let Some(r) = &mut g.params.request {
                    for u in &mut r.urls {
                        *u = format!("{base_path}{u}");
                    }
                }
            }
        }
    }
}

/// The options only the reference server takes.
pub(super) struct BuiltinOptions {
    pub delay: Duration,
    pub faults: Option<crate::reference::fault::FaultPlan>,
    pub cost_per_conn: Duration,
}

impl BuiltinOptions {
    /// `builtin_delay`, `faults`, `builtin_cost_per_conn` (and `--target-pid`,
    /// which only an external target needs).
    pub fn from_scenario(
        sc: &Scenario,
        src: &Source,
        ov: &Overrides,
        target: &TargetPlan,
    ) -> Result<BuiltinOptions> {
        let builtin_delay = match (&sc.builtin_delay, target) {
            (None, _) => Duration::ZERO,
            (Some(d), TargetPlan::Builtin) => d.get_ref().0,
            (Some(d), TargetPlan::Url { .. }) => {
                return Err(src.error(
                    d.span(),
                    "builtin_delay",
                    "applies to the built-in target only",
                ))
            }
        };

        let faults = match (&sc.faults, target) {
            (None, _) => None,
            (Some(f), TargetPlan::Builtin) => Some(
                crate::reference::fault::FaultPlan::from_table(f.get_ref())
                    .map_err(|m| src.error(f.span(), "faults", &m))?,
            ),
            (Some(f), TargetPlan::Url { .. }) => {
                return Err(src.error(f.span(), "faults", "applies to the built-in target only"))
            }
        };
        let builtin_cost_per_conn = match (&sc.builtin_cost_per_conn, target) {
            (None, _) => Duration::ZERO,
            (Some(d), TargetPlan::Builtin) => d.get_ref().0,
            (Some(d), TargetPlan::Url { .. }) => {
                return Err(src.error(
                    d.span(),
                    "builtin_cost_per_conn",
                    "applies to the built-in target only",
                ))
            }
        };
        if ov.target_pid.is_some() && matches!(target, TargetPlan::Builtin) {
            return Err(Error::Usage(
                "--target-pid needs --target URL: the built-in target's own process is sampled already"
                    .into(),
            ));
        }
        Ok(BuiltinOptions {
            delay: builtin_delay,
            faults,
            cost_per_conn: builtin_cost_per_conn,
        })
    }
}
