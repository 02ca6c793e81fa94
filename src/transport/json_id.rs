//! Reads the value at a JSON pointer (RFC 6901) in a message without
//! building the document: the walk keeps the one value the pointer names
//! and skips everything else with `serde::de::IgnoredAny`, so a reply's
//! `result` (however large) is never allocated. Used to find the
//! correlation id of a request–reply exchange (JSON-RPC 2.0 section 5,
//! `id`).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What sits at the pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The message is not JSON, or nothing is at the pointer: not a reply.
    Nothing,
    /// A non-negative integer, or a string holding one (`"17"`): the ids
    /// stampede sends.
    Id(u64),
    /// `null`.
    Null,
    /// Something else (a name, a negative or fractional number, an object):
    /// not an id stampede sent.
    Foreign,
}

/// A JSON pointer split into unescaped tokens (`~1` is `/`, `~0` is `~`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    tokens: Box<[Box<str>]>,
}

impl Pointer {
    /// Parses `text`: empty (the whole message) or tokens each after a `/`.
    ///
    /// Errors: text that does not start with `/`, or a `~` not followed by
    /// `0` or `1` (RFC 6901 section 3).
    pub fn parse(text: &str) -> Result<Pointer, String> {
        if !text.is_empty() && !text.starts_with('/') {
            return Err(format!(
                "{text:?} is not a JSON pointer (RFC 6901: empty, or `/` before each \
                 member name, e.g. \"/id\")"
            ));
        }
        let mut tokens = Vec::new();
        for raw in text.split('/').skip(1) {
            let mut t = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                match (c, c == '~') {
                    (_, false) => t.push(c),
                    (_, true) => match chars.next() {
                        Some('0') => t.push('~'),
                        Some('1') => t.push('/'),
                        _ => {
                            return Err(format!(
                                "{text:?}: `~` must be followed by 0 (`~`) or 1 (`/`) \
                                 in a JSON pointer (RFC 6901 section 3)"
                            ))
                        }
                    },
                }
            }
            tokens.push(t.into_boxed_str());
        }
        Ok(Pointer {
            tokens: tokens.into(),
        })
    }

    /// What `message` holds at this pointer.
    pub fn find(&self, message: &[u8]) -> Found {
        let mut de = serde_json::Deserializer::from_slice(message);
        match (Walk { path: &self.tokens }).deserialize(&mut de) {
            // Trailing bytes after the document: not one JSON message.
            Ok(found) if de.end().is_ok() => found,
            _ => Found::Nothing,
        }
    }
}

/// Follows the remaining `path` into the value being read.
struct Walk<'p> {
    path: &'p [Box<str>],
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Found;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Found, D::Error> {
        if self.path.is_empty() {
            d.deserialize_any(IdOf)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let (want, rest) = (&self.path[0], &self.path[1..]);
        let mut found = Found::Nothing;
        // Every entry is read: the deserializer must reach the map's end.
        while let Some(hit) = map.next_key_seed(KeyIs(want))? {
            if hit && found == Found::Nothing {
                found = map.next_value_seed(Walk { path: rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Found, A::Error> {
        let (want, rest) = (&self.path[0], &self.path[1..]);
        let index: Option<usize> = want.parse().ok().filter(|_| {
            // RFC 6901 section 4: no leading zeros in an array index.
            want.len() == 1 || !want.starts_with('0')
        });
        let mut found = Found::Nothing;
        let mut i = 0;
        loop {
            let got = if Some(i) == index {
                seq.next_element_seed(Walk { path: rest })?
            } else {
                seq.next_element::<IgnoredAny>()?.map(|_| Found::Nothing)
            };
            match got {
                None => return Ok(found),
                Some(f) if Some(i) == index => found = f,
                Some(_) => {}
            }
            i += 1;
        }
    }

    // A scalar where the pointer goes on: nothing there.
    fn visit_bool<E>(self, _: bool) -> Result<Found, E> {
        Ok(Found::Nothing)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Found, E> {
        Ok(Found::Nothing)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Found, E> {
        Ok(Found::Nothing)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Found, E> {
        Ok(Found::Nothing)
    }
    fn visit_str<E>(self, _: &str) -> Result<Found, E> {
        Ok(Found::Nothing)
    }
    fn visit_unit<E>(self) -> Result<Found, E> {
        Ok(Found::Nothing)
    }
}

/// True when the key being read is `.0` (compared in place, borrowed or
/// unescaped into serde_json's scratch buffer, never allocated).
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// Reads the value the pointer names as an id.
struct IdOf;

impl<'de> Visitor<'de> for IdOf {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an id")
    }

    fn visit_u64<E>(self, v: u64) -> Result<Found, E> {
        Ok(Found::Id(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Found, E> {
        Ok(u64::try_from(v).map_or(Found::Foreign, Found::Id))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Found, E> {
        Ok(Found::Foreign)
    }
    fn visit_str<E>(self, v: &str) -> Result<Found, E> {
        // Only the canonical decimal form is ours ("07" or "+7" is not).
        Ok(match v.parse::<u64>() {
            Ok(n) if n.to_string().len() == v.len() => Found::Id(n),
            _ => Found::Foreign,
        })
    }
    fn visit_bool<E>(self, _: bool) -> Result<Found, E> {
        Ok(Found::Foreign)
    }
    fn visit_unit<E>(self) -> Result<Found, E> {
        Ok(Found::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Found::Foreign)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Found, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Found::Foreign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(pointer: &str, message: &str) -> Found {
        Pointer::parse(pointer).unwrap().find(message.as_bytes())
    }

    #[test]
    fn ids_are_found_where_the_pointer_says() {
        let reply = r#"{"jsonrpc":"2.0","result":{"id":99,"x":[1,2]},"id":17}"#;
        assert_eq!(at("/id", reply), Found::Id(17));
        assert_eq!(at("/result/id", reply), Found::Id(99));
        assert_eq!(at("/result/x/1", reply), Found::Id(2));
        assert_eq!(at("/result/x/2", reply), Found::Nothing);
        assert_eq!(at("/id", r#"{"id":"17"}"#), Found::Id(17));
        assert_eq!(at("/a~1b/c~0d", r#"{"a/b":{"c~d":5}}"#), Found::Id(5));
        assert_eq!(at("", "42"), Found::Id(42));
        // Escaped member names are unescaped before comparing.
        assert_eq!(at("/id", r#"{"\u0069d":3}"#), Found::Id(3));
    }

    #[test]
    fn what_is_not_an_id_of_ours_is_told_apart_from_no_reply() {
        assert_eq!(at("/id", r#"{"id":null}"#), Found::Null);
        for foreign in [
            r#"{"id":-1}"#,
            r#"{"id":1.5}"#,
            r#"{"id":"abc"}"#,
            r#"{"id":"07"}"#,
            r#"{"id":{"n":1}}"#,
            r#"{"id":[1]}"#,
        ] {
            assert_eq!(at("/id", foreign), Found::Foreign, "{foreign}");
        }
        for nothing in [
            r#"{"method":"tick","params":[]}"#,
            "not json",
            r#"{"id":1} trailing"#,
            r#"{"id":1"#,
            "[1,2]",
            r#"{"id":{"deeper":1}}x"#,
        ] {
            assert_eq!(at("/id", nothing), Found::Nothing, "{nothing}");
        }
        assert_eq!(at("/x/01", r#"{"x":[0,1]}"#), Found::Nothing);
    }

    #[test]
    fn pointers_are_checked() {
        assert!(Pointer::parse("id")
            .unwrap_err()
            .contains("not a JSON pointer"));
        assert!(Pointer::parse("/a~2").unwrap_err().contains("RFC 6901"));
        assert!(Pointer::parse("/a~").is_err());
        assert_eq!(Pointer::parse("").unwrap().tokens.len(), 0);
    }
}
