//! permessage-deflate (RFC 7692) for the WebSocket client: the offer, the
//! check of the server's answer, and [`Wire`], the layer between the
//! counted socket and tungstenite that inflates compressed messages.
//!
//! Why a layer under tungstenite rather than another WebSocket crate:
//! tungstenite 0.29 (axum's) has no extension support and fails any frame
//! with RSV1 set. yawc, the crate that has it, is LGPL-3.0 (stampede is
//! MIT OR Apache-2.0), brings a second WebSocket stack with its own
//! handshake (nom 7, rand 0.8, thiserror 1, url) and would replace the
//! close, ping, UTF-8 and size-limit handling the tests pin down. Here
//! tungstenite keeps all of that: [`Wire`] rewrites each compressed data
//! frame into the plain frame it stands for (RSV1 cleared, payload
//! inflated) and hands every other frame over untouched, so tungstenite
//! still judges them (RSV1 on a control frame or a continuation, masked
//! server frames, bad opcodes). Bytes are counted below this layer, so
//! they are counted compressed.
//!
//! The client never compresses what it sends: RFC 7692 section 6 makes
//! compression a per-message choice of the sender, so the client's
//! `client_max_window_bits` and `client_no_context_takeover` are honoured
//! by construction; the server's `server_no_context_takeover` resets the
//! inflater after each message.
//!
//! Must not: read or parse anything above frames (messages are
//! tungstenite's), or hold more than one frame's inflated payload.

mod wire;

pub use wire::Wire;

/// The extension name.
pub const NAME: &str = "permessage-deflate";

/// The offer stampede makes when compression is asked for and the profile
/// names no offer of its own: what Chrome and Firefox send.
pub const DEFAULT_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// One extension element: a name and its parameters.
type Element = (String, Vec<(String, Option<String>)>);

/// Splits a `Sec-WebSocket-Extensions` value (RFC 6455 section 9.1) into
/// elements. Quoted values are unquoted; nothing in this extension needs a
/// comma or semicolon inside quotes.
fn elements(value: &str) -> Result<Vec<Element>, String> {
    let mut out = Vec::new();
    for element in value.split(',') {
        let mut parts = element.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        if name.is_empty() {
            return Err("an empty extension in the list".into());
        }
        let mut params = Vec::new();
        for p in parts {
            let (key, val) = match p.split_once('=') {
                Some((k, v)) => {
                    let v = v.trim();
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(v);
                    (k.trim(), Some(v.to_string()))
                }
                None => (p, None),
            };
            if key.is_empty() {
                return Err(format!("an empty parameter in {name}"));
            }
            params.push((key.to_ascii_lowercase(), val));
        }
        out.push((name.to_ascii_lowercase(), params));
    }
    Ok(out)
}

/// The parameters of one permessage-deflate element. Window sizes: `None`
/// absent, `Some(None)` present without a value, `Some(Some(bits))`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<Option<u8>>,
    client_max_window_bits: Option<Option<u8>>,
}

impl Params {
    /// Checks the parameters of one element (RFC 7692 section 7.1): each
    /// known, at most once, window sizes in 8..=15.
    fn parse(params: &[(String, Option<String>)]) -> Result<Params, String> {
        let mut p = Params::default();
        for (key, val) in params {
            let bits = || -> Result<Option<u8>, String> {
                match val {
                    None => Ok(None),
                    Some(v) => match v.parse::<u8>() {
                        Ok(b) if (8..=15).contains(&b) && !v.starts_with('0') => Ok(Some(b)),
                        _ => Err(format!("{key}={v} is not a window size in 8..=15")),
                    },
                }
            };
            let flag = |set: &mut bool| -> Result<(), String> {
                if val.is_some() {
                    return Err(format!("{key} takes no value"));
                }
                if std::mem::replace(set, true) {
                    return Err(format!("{key} appears twice"));
                }
                Ok(())
            };
            match key.as_str() {
                "server_no_context_takeover" => flag(&mut p.server_no_context_takeover)?,
                "client_no_context_takeover" => flag(&mut p.client_no_context_takeover)?,
                "server_max_window_bits" | "client_max_window_bits" => {
                    let slot = if key.starts_with("server") {
                        &mut p.server_max_window_bits
                    } else {
                        &mut p.client_max_window_bits
                    };
                    if slot.replace(bits()?).is_some() {
                        return Err(format!("{key} appears twice"));
                    }
                }
                other => return Err(format!("{NAME} has no parameter {other}")),
            }
        }
        Ok(p)
    }

    /// Whether `answer` accepts this offer (RFC 7692 sections 7.1.1-7.1.2).
    fn accepted_by(&self, answer: &Params) -> bool {
        let within = |offered: Option<Option<u8>>, got: Option<Option<u8>>| match (offered, got) {
            (_, Some(None)) => false,
            (Some(Some(max)), Some(Some(b))) => b <= max,
            (Some(Some(_)), None) => false,
            _ => true,
        };
        (!self.server_no_context_takeover || answer.server_no_context_takeover)
            && within(self.server_max_window_bits, answer.server_max_window_bits)
            && (self.client_max_window_bits.is_some() || answer.client_max_window_bits.is_none())
            && (match (self.client_max_window_bits, answer.client_max_window_bits) {
                (Some(Some(max)), Some(Some(b))) => b <= max,
                (_, Some(None)) => false,
                _ => true,
            })
    }
}

/// A checked offer: what a client may send in `Sec-WebSocket-Extensions`.
#[derive(Debug, Clone)]
pub struct Offer {
    elements: Vec<Params>,
}

impl Offer {
    /// Checks a scenario's `Sec-WebSocket-Extensions` value: stampede
    /// sends it only if it implements every extension it offers, which is
    /// permessage-deflate with RFC 7692's parameters.
    pub fn parse(value: &str) -> Result<Offer, String> {
        let mut out = Vec::new();
        for (name, params) in elements(value)? {
            if name != NAME {
                return Err(format!(
                    "Sec-WebSocket-Extensions offers {name}, which stampede does not implement (only {NAME})"
                ));
            }
            let p = Params::parse(&params).map_err(|e| format!("Sec-WebSocket-Extensions: {e}"))?;
            if p.server_max_window_bits == Some(None) {
                return Err(
                    "Sec-WebSocket-Extensions: server_max_window_bits needs a value".into(),
                );
            }
            out.push(p);
        }
        Ok(Offer { elements: out })
    }

    /// Checks the server's answer to this offer. `Ok(None)`: the server
    /// declined (no extension); `Ok(Some)`: what was agreed. Anything not
    /// offered, or an answer no offered element allows, is an error.
    pub fn check_answer(&self, answer: Option<&[u8]>) -> Result<Option<Agreed>, String> {
        let Some(answer) = answer else {
            return Ok(None);
        };
        let text = std::str::from_utf8(answer)
            .map_err(|_| "a Sec-WebSocket-Extensions answer that is not text".to_string())?;
        let els = elements(text)?;
        let [(name, params)] = &els[..] else {
            return Err(format!(
                "the server answered Sec-WebSocket-Extensions: {text}; one {NAME} at most was offered"
            ));
        };
        if name != NAME {
            return Err(format!(
                "the server chose extension {name}, which was not offered"
            ));
        }
        let got = Params::parse(params).map_err(|e| format!("the server's answer: {e}"))?;
        if !self.elements.iter().any(|o| o.accepted_by(&got)) {
            return Err(format!(
                "the server's answer `{text}` does not fit the offer (RFC 7692 section 7.1)"
            ));
        }
        Ok(Some(Agreed {
            server_no_context_takeover: got.server_no_context_takeover,
        }))
    }
}

/// Checks a server's `Sec-WebSocket-Extensions` when nothing was offered:
/// any extension is one the client did not offer.
pub fn check_unoffered(answer: Option<&[u8]>) -> Result<(), String> {
    match answer {
        None => Ok(()),
        Some(v) => Err(format!(
            "the server chose extension(s) `{}` that were not offered",
            String::from_utf8_lossy(v)
        )),
    }
}

/// What the upgrade agreed on, as far as the receiving side needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The server starts each message with an empty window.
    pub server_no_context_takeover: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_are_checked_and_answers_must_fit_them() {
        assert!(Offer::parse("permessage-deflate").is_ok());
        assert!(Offer::parse(DEFAULT_OFFER).is_ok());
        assert!(Offer::parse(
            "permessage-deflate; client_max_window_bits=10; server_no_context_takeover, permessage-deflate"
        )
        .is_ok());
        for bad in [
            "x-webkit-deflate-frame",
            "permessage-deflate, x-custom",
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "",
        ] {
            assert!(Offer::parse(bad).is_err(), "{bad}");
        }
        let offer = Offer::parse(DEFAULT_OFFER).unwrap();
        let check = |o: &Offer, a: &str| o.check_answer(Some(a.as_bytes()));
        assert_eq!(offer.check_answer(None), Ok(None));
        assert_eq!(
            check(&offer, "permessage-deflate"),
            Ok(Some(Agreed {
                server_no_context_takeover: false
            }))
        );
        assert_eq!(
            check(
                &offer,
                "permessage-deflate; server_no_context_takeover; client_max_window_bits=9; server_max_window_bits=\"10\""
            ),
            Ok(Some(Agreed {
                server_no_context_takeover: true
            }))
        );
        for bad in [
            "x-other",
            "permessage-deflate, permessage-deflate",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; mystery=1",
        ] {
            assert!(check(&offer, bad).is_err(), "{bad}");
        }
        // Not offered: the server may not choose it.
        let plain = Offer::parse("permessage-deflate").unwrap();
        assert!(check(&plain, "permessage-deflate; client_max_window_bits=10").is_err());
        // Offered: the server must honour it.
        let strict = Offer::parse(
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
        )
        .unwrap();
        assert!(check(&strict, "permessage-deflate; server_max_window_bits=10").is_err());
        assert!(check(
            &strict,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11"
        )
        .is_err());
        assert!(check(
            &strict,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
        )
        .is_ok());
        assert!(check_unoffered(Some(b"permessage-deflate")).is_err());
        assert!(check_unoffered(None).is_ok());
    }
}
