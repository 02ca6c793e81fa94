//! Secrets from the environment (`${VAR}` in header and body values): they
//! go on the wire and nowhere else. Every value `profile::expand_env`
//! expands is registered here, and everything stampede writes for people
//! or files (run.json, error details, log lines, reports) passes through
//! [`redact`], which replaces each registered value with `${VAR}`.

use std::sync::RwLock;

/// Shorter values are not treated as secrets: redacting a one- or
/// two-character value would mangle every message.
const MIN_SECRET_LEN: usize = 4;

/// (what is written instead, value) of every secret, longest value first
/// so a secret containing another is replaced whole.
/// The value's JSON-string form is kept beside it when it differs (run.json
/// holds values escaped), so redacting allocates nothing per secret.
static SECRETS: RwLock<Vec<(String, String, Option<String>)>> = RwLock::new(Vec::new());

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
    if all.iter().any(|(_, v, _)| v == value) {
        return;
    }
    let escaped = serde_json::to_string(value).unwrap_or_default();
    let escaped = escaped.trim_matches('"');
    let escaped = (escaped != value).then(|| escaped.to_string());
    all.push((label.to_string(), value.to_string(), escaped));
    all.sort_by_key(|(_, v, _)| std::cmp::Reverse(v.len()));
}

/// `text` with every registered secret replaced by its label (`${VAR}`).
pub fn redact(text: &str) -> String {
    let all = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    if all.is_empty() {
        return text.to_string();
    }
    let mut out = text.to_string();
    for (label, value, escaped) in all.iter() {
        if out.contains(value.as_str()) {
            out = out.replace(value.as_str(), label);
        }
        // The same value as it appears inside a JSON string (run.json).
        if let Some(e) = escaped.as_deref().filter(|e| out.contains(e)) {
            out = out.replace(e, label);
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
}
