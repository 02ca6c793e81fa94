//! Finding the envelope inside a wrapped message, and classifying messages
//! that carry none. Real servers wrap every message in a protocol (GraphQL
//! `next` frames, ActionCable, Phoenix, Centrifugo, Pusher); the profile may
//! say where the envelope sits (`message_path`, a JSON pointer that also
//! follows JSON-string values holding JSON), and without a path it is found
//! anywhere in the message. The envelope is printable ASCII with no `"` or
//! `\`, so a JSON-escaped copy (even escaped twice) is the same bytes.
//!
//! A message with no envelope is a control message when a profile rule
//! names it (`control = [...]`), another message otherwise, and a protocol
//! error only under `strict = true`.

use serde_json::Value;

use crate::envelope::Envelope;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// It carries this envelope.
    Data(Envelope),
    /// A rule of the profile names it: a ping, an ack, a confirmation.
    Control,
    /// Neither.
    Other,
}

/// A rule that names messages: a JSON subset match when the rule is a JSON
/// object or array, a substring match otherwise. An empty object or array
/// (`{}`, Centrifugo's ping) matches only itself: as a subset it would
/// match every message.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// The message is JSON and contains this value (objects: every member
    /// of the rule matches; arrays: element by element as a prefix;
    /// scalars: equal).
    Json(Value),
    /// The message contains these bytes.
    Substring(String),
}

impl Matcher {
    /// A rule from its profile text.
    pub fn new(rule: &str) -> Matcher {
        let t = rule.trim_start();
        if t.starts_with('{') || t.starts_with('[') {
            if let Ok(v) = serde_json::from_str::<Value>(rule) {
                return Matcher::Json(v);
            }
        }
        Matcher::Substring(rule.to_string())
    }

    /// True when `message` matches.
    pub fn matches(&self, message: &[u8]) -> bool {
        match self {
            Matcher::Substring(s) => memchr::memmem::find(message, s.as_bytes()).is_some(),
            Matcher::Json(want) => serde_json::from_slice::<Value>(message)
                .map(|got| matches_json(want, &got))
                .unwrap_or(false),
        }
    }

    /// True when the already parsed `message` matches.
    pub fn matches_value(&self, message: &Value, raw: &[u8]) -> bool {
        match self {
            Matcher::Substring(s) => memchr::memmem::find(raw, s.as_bytes()).is_some(),
            Matcher::Json(want) => matches_json(want, message),
        }
    }
}

fn matches_json(want: &Value, got: &Value) -> bool {
    let empty = match want {
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if empty {
        want == got
    } else {
        subset(want, got)
    }
}

/// True when `got` contains `want`: objects member by member (recursively),
/// arrays element by element over `want`'s length, scalars equal.
pub fn subset(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w
            .iter()
            .all(|(k, wv)| g.get(k).is_some_and(|gv| subset(wv, gv))),
        (Value::Array(w), Value::Array(g)) => {
            w.len() <= g.len() && w.iter().zip(g).all(|(wv, gv)| subset(wv, gv))
        }
        _ => want == got,
    }
}

/// How one profile finds envelopes and classifies the rest.
#[derive(Debug, Clone, Default)]
pub struct Extractor {
    /// `message_path`, split into unescaped JSON-pointer tokens.
    path: Option<Vec<String>>,
    /// `control` rules.
    control: Vec<Matcher>,
    /// `strict`: unknown messages are protocol errors.
    pub strict: bool,
}

impl Extractor {
    /// The extractor of a profile's `message_path`, `control` rules and
    /// `strict` (see `Profile::extractor`).
    pub fn new(message_path: Option<&str>, control: &[String], strict: bool) -> Extractor {
        Extractor {
            path: message_path.map(pointer_tokens),
            control: control.iter().map(|r| Matcher::new(r)).collect(),
            strict,
        }
    }

    /// True when the profile names where the envelope sits: JSON items are
    /// then handed over whole, for the pointer to start at.
    pub fn has_path(&self) -> bool {
        self.path.is_some()
    }

    /// Classifies one message.
    pub fn classify(&self, message: &[u8]) -> Class {
        // A plain relay sends the envelope as the whole message: this is
        // the only work done for it.
        if let Some(e) = Envelope::decode(message) {
            return Class::Data(e);
        }
        let found = match &self.path {
            Some(path) => at_path(message, path),
            None => find_anywhere(message),
        };
        if let Some(e) = found {
            return Class::Data(e);
        }
        if self.control.iter().any(|m| m.matches(message)) {
            Class::Control
        } else {
            Class::Other
        }
    }
}

/// The tokens of an RFC 6901 pointer (`~1` is `/`, `~0` is `~`).
fn pointer_tokens(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Checks a `message_path`: a JSON pointer, empty or starting with `/`.
pub fn check_path(path: &str) -> Result<(), String> {
    if !path.is_empty() && !path.starts_with('/') {
        return Err(format!(
            "message_path {path:?} is not a JSON pointer (it starts with `/`, e.g. \"/payload/data/onEvent/text\")"
        ));
    }
    Ok(())
}

/// Follows `path` through the message; a JSON string met on the way that
/// itself holds JSON is parsed and followed (Pusher's `data`).
fn at_path(message: &[u8], path: &[String]) -> Option<Envelope> {
    let mut owned: Value = serde_json::from_slice(message).ok()?;
    let mut i = 0;
    loop {
        if i == path.len() {
            return match &owned {
                Value::String(s) => {
                    Envelope::decode(s.as_bytes()).or_else(|| find_anywhere(s.as_bytes()))
                }
                other => find_anywhere(other.to_string().as_bytes()),
            };
        }
        let next = match owned {
            Value::String(s) => {
                // A string holding JSON: parse it and go on at the same token.
                owned = serde_json::from_str(&s).ok()?;
                continue;
            }
            Value::Object(mut o) => o.remove(&path[i])?,
            Value::Array(mut a) => {
                let idx: usize = path[i].parse().ok()?;
                if idx >= a.len() {
                    return None;
                }
                a.swap_remove(idx)
            }
            _ => return None,
        };
        owned = next;
        i += 1;
    }
}

/// The first envelope anywhere in `message`.
pub fn find_anywhere(message: &[u8]) -> Option<Envelope> {
    memchr::memmem::find_iter(message, b"st1 ").find_map(|at| Envelope::decode(&message[at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> (Envelope, String) {
        let e = Envelope {
            channel: 2,
            seq: 7,
            sent_ns: 1_000,
        };
        (e, e.encode(64))
    }

    fn extractor(path: Option<&str>, control: &[&str], strict: bool) -> Extractor {
        Extractor {
            path: path.map(pointer_tokens),
            control: control.iter().map(|r| Matcher::new(r)).collect(),
            strict,
        }
    }

    #[test]
    fn plain_and_wrapped_envelopes_are_found() {
        let (e, s) = env();
        let x = extractor(None, &[], false);
        assert_eq!(x.classify(s.as_bytes()), Class::Data(e));
        let graphql = format!(
            r#"{{"id":"1","type":"next","payload":{{"data":{{"onEvent":{{"text":"{s}"}}}}}}}}"#
        );
        let cable = format!(
            r#"{{"identifier":"{{\"channel\":\"RoomChannel\",\"room\":\"a\"}}","message":{{"body":"{s}"}}}}"#
        );
        let phoenix = format!(r#"[null,null,"room:a","new_msg",{{"body":"{s}"}}]"#);
        let centrifugo =
            format!(r#"{{"push":{{"channel":"a","pub":{{"data":{{"body":"{s}"}}}}}}}}"#);
        let pusher = format!(r#"{{"event":"msg","channel":"a","data":"{{\"body\":\"{s}\"}}"}}"#);
        for m in [&graphql, &cable, &phoenix, &centrifugo, &pusher] {
            assert_eq!(x.classify(m.as_bytes()), Class::Data(e), "{m}");
        }
        // With paths, following strings that hold JSON.
        let cases = [
            ("/payload/data/onEvent/text", &graphql),
            ("/message/body", &cable),
            ("/4/body", &phoenix),
            ("/push/pub/data/body", &centrifugo),
            ("/data/body", &pusher),
        ];
        for (path, m) in cases {
            let x = extractor(Some(path), &[], false);
            assert_eq!(x.classify(m.as_bytes()), Class::Data(e), "{path} {m}");
        }
        // A wrong path finds nothing, even though the envelope is there.
        let x = extractor(Some("/payload/nope"), &[], false);
        assert_eq!(x.classify(graphql.as_bytes()), Class::Other);
    }

    #[test]
    fn lookalikes_are_not_envelopes() {
        let x = extractor(None, &[], false);
        for m in [
            &b"{\"text\":\"st1 is a word\"}"[..],
            b"st1 st1 1 2",
            b"",
            b"\xff\xfe st1",
        ] {
            assert_eq!(x.classify(m), Class::Other, "{m:?}");
        }
        // A look-alike first, the real one after.
        let (e, s) = env();
        let m = format!("st1 x then {s}");
        assert_eq!(x.classify(m.as_bytes()), Class::Data(e));
    }

    #[test]
    fn control_rules_match_json_subsets_and_substrings() {
        let x = extractor(
            None,
            &[r#"{"type":"ping"}"#, "welcome", "[null,null]"],
            false,
        );
        assert_eq!(
            x.classify(br#"{"type":"ping","message":1700000000}"#),
            Class::Control
        );
        assert_eq!(x.classify(br#"{"type":"welcome"}"#), Class::Control);
        assert_eq!(
            x.classify(br#"[null,null,"phoenix","phx_reply",{}]"#),
            Class::Control
        );
        assert_eq!(x.classify(br#"{"type":"pong"}"#), Class::Other);
        assert_eq!(x.classify(b"{}"), Class::Other);
        let centrifugo = extractor(None, &["{}"], false);
        assert_eq!(centrifugo.classify(b"{}"), Class::Control);
        assert_eq!(centrifugo.classify(br#"{"a":1}"#), Class::Other);
        assert_eq!(centrifugo.classify(b" { } "), Class::Control);
        assert_eq!(centrifugo.classify(b"[]"), Class::Other);
    }

    #[test]
    fn subset_semantics() {
        let v = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert!(subset(
            &v(r#"{"a":{"b":1}}"#),
            &v(r#"{"a":{"b":1,"c":2},"d":3}"#)
        ));
        assert!(!subset(&v(r#"{"a":{"b":2}}"#), &v(r#"{"a":{"b":1}}"#)));
        assert!(subset(&v(r#"[null,"x"]"#), &v(r#"[null,"x","y"]"#)));
        assert!(!subset(&v(r#"[1,2,3]"#), &v(r#"[1,2]"#)));
    }
}
