//! Per-client templates: the one parser of `{placeholder}`s in URLs,
//! headers, bodies, session-script messages and token claims. A template is
//! compiled once when the plan is built (an unknown placeholder is a
//! scenario error there) and rendered per client or per message by walking
//! its parts, with no searching.
//!
//! Syntax: `{name}` where `name` starts with a letter and holds letters,
//! digits, `_`, `.` or `-`; `{{` writes a literal `{` (for text such as a
//! GraphQL selection `{{id}` that would otherwise read as a placeholder);
//! `${VAR}` is an environment secret, read when rendered and registered
//! with [`crate::secrets`]. Any other `{` is literal, so JSON passes as is.

use super::Who;

/// A value a template can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// `{channel}`: the channel (room) name.
    Channel,
    /// `{client}`: the client's scenario-wide number (stable across shards).
    Client,
    /// `{group}`: the client's group name.
    Group,
    /// `{session}`: the client's session counter (0 for its first
    /// connection attempt, one more per reconnect).
    Session,
    /// `{shard}`: this process's shard index (0 unsharded).
    Shard,
    /// `{n}`: a per-session message counter, one more per message rendered.
    N,
    /// `{token}`: the client's signed token.
    Token,
    /// `{data.<column>}`: column `i` of the client's data row.
    Data(usize),
}

impl Var {
    /// True when the value differs between clients of one channel.
    fn is_personal(self) -> bool {
        !matches!(self, Var::Channel)
    }
}

#[derive(Debug, Clone)]
enum Part {
    Lit(Box<str>),
    Var(Var),
    Env(Box<str>),
}

/// A compiled template.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Box<[Part]>,
}

/// The names a template may use where it is compiled.
#[derive(Debug, Clone, Copy, Default)]
pub struct Names<'a> {
    /// Data columns (`{data.<column>}`), in feeder order.
    pub columns: &'a [String],
    /// True when the group signs a token (`{token}`).
    pub token: bool,
}

/// A placeholder the template may not use: where it starts (a byte offset
/// into the template) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// Byte offset of the placeholder's `{` in the template text.
    pub offset: usize,
    /// The placeholder as written, e.g. `{data.room}`.
    pub placeholder: String,
    /// What is wrong, naming what is available.
    pub message: String,
}

const KNOWN: &str =
    "{channel}, {client}, {group}, {session}, {shard}, {n}, {token}, {data.<column>}";

/// Compiles `text` against the names available.
///
/// Errors: the first placeholder that is not a known name (or a
/// `{data.<column>}` without that column, or `{token}` without a `token`),
/// or a `${` that does not name an environment variable.
pub fn compile(text: &str, names: &Names<'_>) -> Result<Template, Unknown> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'$' && bytes.get(i + 1) == Some(&b'{') {
            let rest = &text[i + 2..];
            let end = rest.find('}').ok_or_else(|| Unknown {
                offset: i,
                placeholder: "${".into(),
                message: "unclosed `${`".into(),
            })?;
            let var = &rest[..end];
            if var.is_empty() || !var.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
                return Err(Unknown {
                    offset: i,
                    placeholder: format!("${{{var}}}"),
                    message: format!("`${{{var}}}` is not an environment variable name"),
                });
            }
            flush(&mut lit, &mut parts);
            parts.push(Part::Env(var.into()));
            i += 2 + end + 1;
            continue;
        }
        if b == b'{' && bytes.get(i + 1) == Some(&b'{') {
            lit.push('{');
            i += 2;
            continue;
        }
        if b == b'{' {
            if let Some(name) = placeholder_at(&text[i + 1..]) {
                flush(&mut lit, &mut parts);
                parts.push(Part::Var(resolve(name, names).map_err(|message| {
                    Unknown {
                        offset: i,
                        placeholder: format!("{{{name}}}"),
                        message,
                    }
                })?));
                i += name.len() + 2;
                continue;
            }
        }
        // Whole characters: `i` only ever stops on ASCII bytes above.
        let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
        lit.push(ch);
        i += ch.len_utf8();
    }
    flush(&mut lit, &mut parts);
    Ok(Template {
        parts: parts.into(),
    })
}

fn flush(lit: &mut String, parts: &mut Vec<Part>) {
    if !lit.is_empty() {
        parts.push(Part::Lit(std::mem::take(lit).into()));
    }
}

/// The name of a placeholder starting right after a `{`, if the text there
/// reads as one.
fn placeholder_at(rest: &str) -> Option<&str> {
    let end = rest.find('}')?;
    let name = &rest[..end];
    let first = name.bytes().next()?;
    (first.is_ascii_alphabetic()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')))
    .then_some(name)
}

fn resolve(name: &str, names: &Names<'_>) -> Result<Var, String> {
    Ok(match name {
        "channel" => Var::Channel,
        "client" => Var::Client,
        "group" => Var::Group,
        "session" => Var::Session,
        "shard" => Var::Shard,
        "n" => Var::N,
        "token" if names.token => Var::Token,
        "token" => {
            return Err(
                "`{token}` needs a `token = { alg, key, claims }` in this group".into(),
            )
        }
        _ => match name.strip_prefix("data.") {
            Some(col) => match names.columns.iter().position(|c| c == col) {
                Some(i) => Var::Data(i),
                None if names.columns.is_empty() => {
                    return Err(format!(
                        "`{{{name}}}` needs a [[data]] file with a column {col:?}"
                    ))
                }
                None => {
                    return Err(format!(
                        "no data column {col:?} (the [[data]] columns are {})",
                        names.columns.join(", ")
                    ))
                }
            },
            None => {
                return Err(format!(
                    "unknown placeholder `{{{name}}}` (known: {KNOWN}; write `{{{{` for a literal `{{`)"
                ))
            }
        },
    })
}

/// What one rendering sees.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    /// The channel name.
    pub channel: &'a str,
    /// The client.
    pub who: &'a Who,
}

impl Template {
    /// True when some placeholder differs between clients of one channel.
    pub fn is_personal(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Var(v) if v.is_personal()))
    }

    /// True when the template names any value (not only literal text and
    /// secrets).
    pub fn has_vars(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var(_)))
    }

    /// True when the template holds no placeholder or secret at all.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// Renders with `n` as `{n}` (moved on by one first, as every message
    /// sent counts, whether its template shows the counter or not).
    ///
    /// Errors: an environment variable that is not set.
    pub fn render(&self, v: &Vars<'_>, n: &mut u64) -> Result<String, String> {
        *n += 1;
        let mut out = String::new();
        for p in self.parts.iter() {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Env(var) => {
                    let value = std::env::var(&**var)
                        .map_err(|_| format!("environment variable {var} is not set"))?;
                    crate::secrets::register(var, &value);
                    out.push_str(&value);
                }
                Part::Var(var) => push_var(&mut out, *var, v, *n),
            }
        }
        Ok(out)
    }

    /// Renders once, without a message counter (URLs, headers, claims).
    pub fn render_once(&self, v: &Vars<'_>) -> Result<String, String> {
        self.render(v, &mut 0)
    }
}

fn push_var(out: &mut String, var: Var, v: &Vars<'_>, n: u64) {
    use std::fmt::Write;
    let w = v.who;
    // Writing to a String cannot fail.
    let _ = match var {
        Var::Channel => {
            out.push_str(v.channel);
            Ok(())
        }
        Var::Client => write!(out, "{}", w.client),
        Var::Group => {
            out.push_str(&w.group);
            Ok(())
        }
        Var::Session => write!(out, "{}", w.session),
        Var::Shard => write!(out, "{}", w.shard),
        Var::N => write!(out, "{n}"),
        Var::Token => {
            out.push_str(w.token.as_deref().unwrap_or(""));
            Ok(())
        }
        Var::Data(i) => {
            out.push_str(w.data.get(i).map_or("", |s| &**s));
            Ok(())
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn who() -> Who {
        Who {
            client: 7,
            group: "chat".into(),
            shard: 2,
            session: 3,
            data: vec![Arc::from("alice"), Arc::from("room-9")].into(),
            token: Some("tok.en.sig".into()),
        }
    }

    #[test]
    fn placeholders_render_and_json_passes_through() {
        let cols = ["user".to_string(), "room".to_string()];
        let names = Names {
            columns: &cols,
            token: true,
        };
        let t = compile(
            r#"{"id":"{client}","g":"{group}/{shard}/{session}","u":"{data.user}","r":"{data.room}","n":{n},"t":"{token}","c":"{channel}","x":{},"q":"{{id}"}"#,
            &names,
        )
        .unwrap();
        let w = who();
        let v = Vars {
            channel: "room:a",
            who: &w,
        };
        let mut n = 0;
        assert_eq!(
            t.render(&v, &mut n).unwrap(),
            r#"{"id":"7","g":"chat/2/3","u":"alice","r":"room-9","n":1,"t":"tok.en.sig","c":"room:a","x":{},"q":"{id}"}"#
        );
        assert!(t.is_personal());
        assert!(!compile("/ws/{channel}", &names).unwrap().is_personal());
        std::env::set_var("STAMPEDE_TEMPLATE_TEST", "sekrit-value");
        let e = compile("Bearer ${STAMPEDE_TEMPLATE_TEST}", &names).unwrap();
        assert_eq!(e.render_once(&v).unwrap(), "Bearer sekrit-value");
        assert!(compile("${STAMPEDE_NOT_SET_ANYWHERE_3}", &names)
            .unwrap()
            .render_once(&v)
            .is_err());
    }

    #[test]
    fn unknown_placeholders_name_their_offset() {
        let cols = ["user".to_string()];
        let names = Names {
            columns: &cols,
            token: false,
        };
        let e = compile("/ws/{channel}?u={data.room}", &names).unwrap_err();
        assert_eq!((e.offset, e.placeholder.as_str()), (16, "{data.room}"));
        assert!(e.message.contains("user"), "{}", e.message);
        let e = compile("a{clinet}", &names).unwrap_err();
        assert_eq!(e.offset, 1);
        assert!(e.message.contains("unknown placeholder"));
        assert!(compile("{token}", &names).is_err());
        assert!(compile("${bad-name}", &names).is_err());
        // Not placeholders: JSON, spaces, digits first.
        assert!(compile(r#"{"a":{ "b": 1 }, "c":{1}}"#, &names)
            .unwrap()
            .is_literal());
    }
}
