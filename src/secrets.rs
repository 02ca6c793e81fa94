//! Secrets from the environment (`${VAR}` in header and body values), data
//! columns and signed tokens: they go on the wire and nowhere else. Every
//! value `profile::expand_env` expands is registered here (and every
//! per-client token and secret data value), and everything stampede
//! writes for people or files (run.json, error details, log lines,
//! reports) passes through [`redact`], which replaces each registered
//! value with its label (`${VAR}`, `{token}`, …).
//!
//! A run may register a secret per client (tens of thousands): one
//! registration is a hash-set insert, and redaction is one pass of a
//! single Aho–Corasick automaton over every value, built at the first
//! redaction after a registration, never per secret.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};

/// Shorter values are not treated as secrets: redacting a one- or
/// two-character value would mangle every message.
const MIN_SECRET_LEN: usize = 4;

/// Every secret: its value and, when it differs, its JSON-string form
/// (run.json holds values escaped), each with what is written instead.
#[derive(Default)]
struct Registry {
    /// The values registered, to register each once.
    seen: HashSet<String>,
    /// Patterns to find: values and their escaped forms.
    patterns: Vec<String>,
    /// What each pattern is replaced by.
    labels: Vec<String>,
    /// The automaton over `patterns`; `None` after a registration.
    matcher: Option<Arc<AhoCorasick>>,
}

static SECRETS: LazyLock<RwLock<Registry>> = LazyLock::new(Default::default);

/// Remembers that `value` (from environment variable `var`) is secret.
pub fn register(var: &str, value: &str) {
    register_as(&format!("${{{var}}}"), value);
}

/// Remembers that `value` is secret, written as `label` (a data column's
/// `{data.token}`, a client's `{token}`).
pub fn register_as(label: &str, value: &str) {
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    let mut all = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    if !all.seen.insert(value.to_string()) {
        return;
    }
    let escaped = serde_json::to_string(value).unwrap_or_default();
    let escaped = escaped.trim_matches('"');
    if escaped != value && !escaped.is_empty() {
        all.patterns.push(escaped.to_string());
        all.labels.push(label.to_string());
    }
    all.patterns.push(value.to_string());
    all.labels.push(label.to_string());
    all.matcher = None;
}

/// How the registered values are found.
enum Finder {
    /// Nothing is registered.
    Nothing,
    /// One automaton over every value.
    Automaton(Arc<AhoCorasick>),
    /// The automaton could not be built (too many states): value by
    /// value, longest first, slow but never leaking.
    OneByOne,
}

/// The automaton over every registered value, built if a registration
/// made the last one stale.
fn finder() -> Finder {
    {
        let all = SECRETS.read().unwrap_or_else(|p| p.into_inner());
        if all.patterns.is_empty() {
            return Finder::Nothing;
        }
        if let Some(m) = &all.matcher {
            return Finder::Automaton(m.clone());
        }
    }
    let mut all = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    if all.matcher.is_none() {
        // Leftmost-longest: a secret containing another is replaced whole.
        match AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&all.patterns)
        {
            Ok(built) => all.matcher = Some(Arc::new(built)),
            Err(_) => return Finder::OneByOne,
        }
    }
    all.matcher
        .clone()
        .map_or(Finder::OneByOne, Finder::Automaton)
}

/// `text` with every registered secret replaced by its label (`${VAR}`).
pub fn redact(text: &str) -> String {
    let m = match finder() {
        Finder::Nothing => return text.to_string(),
        Finder::Automaton(m) => m,
        Finder::OneByOne => return redact_one_by_one(text),
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let all = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    for hit in m.find_iter(text) {
        // Patterns are only ever appended: the automaton's indexes stay
        // valid even if more were registered since it was built.
        let Some(label) = all.labels.get(hit.pattern().as_usize()) else {
            continue;
        };
        out.push_str(&text[last..hit.start()]);
        out.push_str(label);
        last = hit.end();
    }
    out.push_str(&text[last..]);
    out
}

fn redact_one_by_one(text: &str) -> String {
    let all = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    let mut order: Vec<usize> = (0..all.patterns.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(all.patterns[i].len()));
    let mut out = text.to_string();
    for i in order {
        if out.contains(all.patterns[i].as_str()) {
            out = out.replace(all.patterns[i].as_str(), &all.labels[i]);
        }
    }
    out
}

/// Expands `${VAR}` from the environment. The expanded value is a secret:
/// callers keep it out of everything they write.
pub fn expand_env(template: &str) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in {template:?}"))?;
        let var = &after[..end];
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{var}}}` is not an environment variable name"));
        }
        let value =
            std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?;
        register(var, &value);
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_replaced_by_their_variable() {
        register("STAMPEDE_UNIT_SECRET", "hunter2-very-secret");
        register("STAMPEDE_UNIT_SHORT", "ab");
        assert_eq!(
            redact("Authorization: Bearer hunter2-very-secret; ab"),
            "Authorization: Bearer ${STAMPEDE_UNIT_SECRET}; ab"
        );
    }

    /// Ten thousand per-client secrets (the registry is process-wide, so
    /// their values are unique to this test): each is replaced by its own
    /// label wherever it appears, escaped forms too, a secret containing
    /// another is replaced whole, and registering one twice keeps the
    /// first label.
    #[test]
    fn ten_thousand_secrets_are_each_redacted() {
        let value = |i: usize| format!("tenk-{i:05}-{:x}", i * 7919);
        for i in 0..10_000 {
            register_as(&format!("{{client{i}}}"), &value(i));
        }
        register_as("{again}", &value(42));
        register_as("{quoted}", "tenk\"quote\\d");
        register_as("{outer}", "tenk-outer-tenk-00007-d889-end");
        let mut text = String::new();
        let mut want = String::new();
        for i in (0..10_000).step_by(997) {
            text.push_str(&format!("[{}] ", value(i)));
            want.push_str(&format!("[{{client{i}}}] "));
        }
        assert_eq!(redact(&text), want);
        assert_eq!(redact(&value(9_999)), "{client9999}");
        assert_eq!(redact(&format!("x{}y", value(42))), "x{client42}y");
        assert_eq!(
            redact(r#"{"k":"tenk\"quote\\d"} tenk"quote\d"#),
            r#"{"k":"{quoted}"} {quoted}"#
        );
        assert_eq!(
            redact("a tenk-outer-tenk-00007-d889-end b tenk-00007-d889"),
            "a {outer} b {client7}"
        );
        assert_eq!(redact("tenk-10000-nothing"), "tenk-10000-nothing");
        // Registered after the automaton was built: found all the same.
        register_as("{late}", "tenk-late-secret");
        assert_eq!(redact("tenk-late-secret"), "{late}");
    }
}
