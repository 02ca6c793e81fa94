//! Where a scenario comes from: its text for error places, loading and
//! parsing it, and `--set` overrides rewriting it.

use std::path::Path;

use super::Scenario;
use crate::error::{Error, Result};

/// A scenario together with the text it was parsed from, for error places.
#[derive(Debug, Clone)]
pub struct Source {
    /// Path as the user gave it.
    pub path: String,
    /// The text the spans refer to.
    pub text: String,
    /// True when `--set` overrides rewrote the text.
    pub overridden: bool,
}

impl Source {
    /// `file:line:column` of a byte offset, plus the key written on that line.
    pub fn place(&self, offset: usize) -> String {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = self.text[line_start..offset].chars().count() + 1;
        let what = if self.overridden {
            format!("{} (after --set overrides)", self.path)
        } else {
            self.path.clone()
        };
        format!("{what}:{line}:{column}")
    }

    /// The key assigned on the line holding `offset`, if the line is `key = ...`.
    pub fn key_at(&self, offset: usize) -> Option<String> {
        let offset = offset.min(self.text.len());
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        let line = &self.text[line_start..line_end];
        let (key, _) = line.split_once('=')?;
        let key = key.trim().trim_matches('"');
        let ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        ok.then(|| key.to_string())
    }

    /// A scenario error at `span`, naming `key`.
    pub fn error(&self, span: std::ops::Range<usize>, key: &str, message: &str) -> Error {
        Error::Scenario {
            at: self.place(span.start),
            message: format!("`{key}`: {message}"),
        }
    }
}

/// Reads and parses a scenario file, then applies `--set key.path=value`
/// overrides.
pub fn load(path: &Path, sets: &[String]) -> Result<(Scenario, Source)> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ScenarioRead {
        path: path.to_path_buf(),
        source,
    })?;
    let mut source = Source {
        path: path.display().to_string(),
        text,
        overridden: false,
    };
    // Parse the file as written first, so its own errors carry its own places.
    let scenario = parse(&source)?;
    if sets.is_empty() {
        return Ok((scenario, source));
    }
    let mut table: toml::Table =
        toml::from_str(&source.text).map_err(|e| toml_error(&source, &e))?;
    for set in sets {
        apply_set(&mut table, set)?;
    }
    source.text = toml::to_string(&table).map_err(|e| Error::Usage(format!("--set: {e}")))?;
    source.overridden = true;
    Ok((parse(&source)?, source))
}

/// Parses scenario text.
pub fn parse(source: &Source) -> Result<Scenario> {
    toml::from_str(&source.text).map_err(|e| toml_error(source, &e))
}

fn toml_error(source: &Source, e: &toml::de::Error) -> Error {
    let message = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let key = source.key_at(span.start);
            let message = match key {
                Some(k) if !message.contains(&format!("`{k}`")) => format!("`{k}`: {message}"),
                _ => message,
            };
            Error::Scenario {
                at: source.place(span.start),
                message,
            }
        }
        None => Error::Scenario {
            at: source.path.clone(),
            message,
        },
    }
}

/// Applies one `key.path=value` override.
fn apply_set(table: &mut toml::Table, set: &str) -> Result<()> {
    let usage = |msg: &str| Error::Usage(format!("--set {set}: {msg}"));
    let (path, raw) = set
        .split_once('=')
        .ok_or_else(|| usage("expected key.path=value"))?;
    set_path(table, path.trim(), parse_value(raw.trim())).map_err(|m| usage(&m))
}

/// Sets `path` (`key.path`) to `value` in a scenario table. Path segments
/// index tables by key, and the `groups` array by position or by group name
/// / transport; missing tables are created (an unknown key then fails when
/// the text is parsed). Errors are messages for the caller to place.
pub fn set_path(
    table: &mut toml::Table,
    path: &str,
    value: toml::Value,
) -> std::result::Result<(), String> {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err("empty key in path".into());
    }
    let (last, parents) = segments.split_last().ok_or("empty path")?;
    let mut cur = table;
    let mut rest = parents.iter();
    while let Some(seg) = rest.next() {
        let next = cur
            .entry(seg.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match next {
            toml::Value::Table(t) => t,
            toml::Value::Array(items) => {
                // The next segment selects the element.
                let sel = rest
                    .next()
                    .ok_or_else(|| format!("`{seg}` is a list: name an element and a key"))?;
                let idx = find_item(items, sel)
                    .ok_or_else(|| format!("`{seg}` has no element `{sel}`"))?;
                match &mut items[idx] {
                    toml::Value::Table(t) => t,
                    _ => return Err("the element is not a table".into()),
                }
            }
            _ => return Err(format!("`{seg}` is not a table")),
        };
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

/// Finds a list element by position, by `name`, or by `transport`.
fn find_item(items: &[toml::Value], seg: &str) -> Option<usize> {
    if let Ok(i) = seg.parse::<usize>() {
        return (i < items.len()).then_some(i);
    }
    let by = |key: &str| {
        items
            .iter()
            .position(|v| v.get(key).and_then(|n| n.as_str()) == Some(seg))
    };
    by("name").or_else(|| by("transport"))
}

fn parse_value(raw: &str) -> toml::Value {
    // A bare word like 30s is not TOML: take it as a string.
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Source {
        Source {
            path: "s.toml".into(),
            text: text.into(),
            overridden: false,
        }
    }

    #[test]
    fn place_is_one_based() {
        let s = src("a = 1\nbb = 2\n");
        assert_eq!(s.place(0), "s.toml:1:1");
        assert_eq!(s.place(11), "s.toml:2:6");
        assert_eq!(s.key_at(11).as_deref(), Some("bb"));
    }

    #[test]
    fn set_paths() {
        let mut t: toml::Table = toml::from_str(
            "duration = \"1s\"\n[[groups]]\ntransport = \"sse\"\nclients = 1\n[[groups]]\nname = \"w\"\ntransport = \"websocket\"\nclients = 1\n",
        )
        .unwrap();
        apply_set(&mut t, "duration=5s").unwrap();
        apply_set(&mut t, "groups.sse.clients=7").unwrap();
        apply_set(&mut t, "groups.w.clients=8").unwrap();
        apply_set(&mut t, "groups.0.keep_alive=false").unwrap();
        assert_eq!(t["duration"].as_str(), Some("5s"));
        assert_eq!(t["groups"][0]["clients"].as_integer(), Some(7));
        assert_eq!(t["groups"][1]["clients"].as_integer(), Some(8));
        assert_eq!(t["groups"][0]["keep_alive"].as_bool(), Some(false));
        assert!(apply_set(&mut t, "groups.nope.clients=1").is_err());
        assert!(apply_set(&mut t, "noequals").is_err());
    }
}
