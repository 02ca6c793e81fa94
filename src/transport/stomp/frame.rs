//! STOMP 1.2 frames (STOMP 1.2 specification, "STOMP Frames" and
//! "Augmented BNF"): a command line, header lines, a blank line, a body
//! ended by NUL (or sized by `content-length`, so it may hold NULs), and
//! EOLs between frames as heart-beats. Header values are escaped (`\r`,
//! `\n`, `\c`, `\\`) in every frame but CONNECT and CONNECTED; a repeated
//! header keeps its first value. Sans-IO: bytes in, frames out.

use bytes::{Buf, Bytes, BytesMut};

use crate::fault::{ErrorKind, Fault};

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The command (`MESSAGE`, `RECEIPT`, `ERROR`, ...).
    pub command: String,
    /// Headers in wire order, unescaped.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl Frame {
    /// The first value of header `name` (STOMP 1.2: repeated headers keep
    /// the first).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the decoder found next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// An EOL between frames: a heart-beat.
    HeartBeat,
    /// A whole frame.
    Frame(Frame),
}

/// Buffers bytes until whole frames are there.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
    /// Largest frame (head and body).
    max: usize,
    /// Bytes of `buf` already searched for the frame's NUL: a body that
    /// arrives in many pieces is scanned once, not once per piece.
    nul_scanned: usize,
}

fn bad(what: impl Into<String>) -> Fault {
    Fault::new(ErrorKind::Protocol, format!("bad STOMP frame: {}", what.into()))
}

impl Decoder {
    /// A decoder refusing frames over `max` bytes (a `limit` fault).
    pub fn new(max: usize) -> Decoder {
        Decoder {
            buf: BytesMut::new(),
            max,
            nul_scanned: 0,
        }
    }

    /// Appends bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next heart-beat or frame, `None` while incomplete.
    pub fn take(&mut self) -> Result<Option<Parsed>, Fault> {
        match self.buf.first() {
            None => return Ok(None),
            Some(b'\n') => {
                self.buf.advance(1);
                return Ok(Some(Parsed::HeartBeat));
            }
            Some(b'\r') => {
                return match self.buf.get(1) {
                    None => Ok(None),
                    Some(b'\n') => {
                        self.buf.advance(2);
                        Ok(Some(Parsed::HeartBeat))
                    }
                    Some(_) => Err(bad("a CR not followed by LF between frames")),
                };
            }
            Some(_) => {}
        }
        // The head: lines up to the first empty one.
        let mut lines: Vec<&[u8]> = Vec::new();
        let mut at = 0;
        let body_start = loop {
            let Some(nl) = memchr::memchr(b'\n', &self.buf[at..]) else {
                return self.incomplete();
            };
            let mut line = &self.buf[at..at + nl];
            if let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            }
            at += nl + 1;
            if line.is_empty() {
                break at;
            }
            lines.push(line);
        };
        let (command, header_lines) = lines.split_first().ok_or_else(|| bad("no command"))?;
        let command = std::str::from_utf8(command)
            .map_err(|_| bad("the command is not UTF-8"))?
            .to_string();
        let escaped = command != "CONNECTED" && command != "CONNECT";
        let mut headers = Vec::with_capacity(header_lines.len());
        for line in header_lines {
            let text = std::str::from_utf8(line).map_err(|_| bad("a header is not UTF-8"))?;
            let (k, v) = text
                .split_once(':')
                .ok_or_else(|| bad(format!("header line {} has no `:`", crate::fault::quote(text))))?;
            let (k, v) = if escaped {
                (unescape(k)?, unescape(v)?)
            } else {
                (k.to_string(), v.to_string())
            };
            headers.push((k, v));
        }
        let frame_len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| {
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| bad(format!("content-length {} is not a length", crate::fault::quote(v))))
            })
            .transpose()?;
        let body_end = match frame_len {
            Some(n) => {
                let end = body_start.saturating_add(n);
                if end > self.max {
                    return Err(self.over());
                }
                match self.buf.get(end) {
                    None => return Ok(None),
                    Some(0) => end,
                    Some(_) => return Err(bad("no NUL after content-length bytes")),
                }
            }
            None => {
                let from = self.nul_scanned.max(body_start);
                match memchr::memchr(0, &self.buf[from..]) {
                    Some(i) => from + i,
                    None => {
                        self.nul_scanned = self.buf.len();
                        return self.incomplete();
                    }
                }
            }
        };
        self.nul_scanned = 0;
        let mut whole = self.buf.split_to(body_end + 1);
        whole.truncate(body_end);
        let body = whole.split_off(body_start).freeze();
        // `NULL *( EOL )`: EOLs that came with the frame end it (RabbitMQ
        // sends one after every frame); only later ones are heart-beats.
        loop {
            if self.buf.starts_with(b"\n") {
                self.buf.advance(1);
            } else if self.buf.starts_with(b"\r\n") {
                self.buf.advance(2);
            } else {
                break;
            }
        }
        Ok(Some(Parsed::Frame(Frame {
            command,
            headers,
            body,
        })))
    }

    fn incomplete(&self) -> Result<Option<Parsed>, Fault> {
        if self.buf.len() > self.max {
            Err(self.over())
        } else {
            Ok(None)
        }
    }

    fn over(&self) -> Fault {
        Fault::new(
            ErrorKind::Limit,
            format!("a STOMP frame over max_message_bytes ({})", self.max),
        )
    }
}

/// Undoes STOMP 1.2 header escaping; an undefined escape is an error.
fn unescape(s: &str) -> Result<String, Fault> {
    if !s.contains('\\') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('r') => '\r',
            Some('n') => '\n',
            Some('c') => ':',
            Some('\\') => '\\',
            other => {
                return Err(bad(format!(
                    "undefined header escape `\\{}`",
                    other.map_or(String::new(), String::from)
                )))
            }
        });
    }
    Ok(out)
}

fn escape(s: &str, out: &mut Vec<u8>) {
    for c in s.chars() {
        match c {
            '\r' => out.extend_from_slice(b"\\r"),
            '\n' => out.extend_from_slice(b"\\n"),
            ':' => out.extend_from_slice(b"\\c"),
            '\\' => out.extend_from_slice(b"\\\\"),
            c => {
                let mut b = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

/// Encodes a frame; a non-empty body gets `content-length`. Headers are
/// escaped except in CONNECT (STOMP 1.2 "Value Encoding").
pub fn encode(command: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + body.len());
    out.extend_from_slice(command.as_bytes());
    out.push(b'\n');
    let escaped = command != "CONNECT";
    for (k, v) in headers {
        if escaped {
            escape(k, &mut out);
            out.push(b':');
            escape(v, &mut out);
        } else {
            out.extend_from_slice(k.as_bytes());
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
        }
        out.push(b'\n');
    }
    if !body.is_empty() {
        out.extend_from_slice(format!("content-length:{}\n", body.len()).as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut Decoder) -> Vec<Parsed> {
        let mut out = Vec::new();
        while let Some(p) = d.take().unwrap() {
            out.push(p);
        }
        out
    }

    #[test]
    fn frames_heart_beats_and_escapes_in_any_split() {
        let mut wire = Vec::new();
        wire.extend_from_slice(b"\n\r\n");
        wire.extend_from_slice(&encode(
            "MESSAGE",
            &[("destination", "/topic/a:b"), ("x", "l1\nl2\\")],
            b"body\0with nul",
        ));
        wire.extend_from_slice(b"RECEIPT\r\nreceipt-id:7\r\nreceipt-id:8\r\n\r\n\0\n");
        wire.extend_from_slice(b"CONNECTED\nversion:1.2\nserver:a\\b\n\n\0");
        for split in 1..wire.len() {
            let mut d = Decoder::new(1 << 20);
            let mut got = Vec::new();
            for chunk in wire.chunks(split) {
                d.push(chunk);
                got.extend(all(&mut d));
            }
            // The EOL after RECEIPT's NUL ends the frame when it comes with
            // it, and is a heart-beat when it comes later.
            let beats = got.iter().filter(|p| **p == Parsed::HeartBeat).count();
            assert!((2..=3).contains(&beats), "split {split}: {got:?}");
            got.retain(|p| *p != Parsed::HeartBeat);
            assert_eq!(got.len(), 3, "split {split}: {got:?}");
            let Parsed::Frame(m) = &got[0] else { panic!() };
            assert_eq!(m.command, "MESSAGE");
            assert_eq!(m.header("destination"), Some("/topic/a:b"));
            assert_eq!(m.header("x"), Some("l1\nl2\\"));
            assert_eq!(&m.body[..], b"body\0with nul");
            let Parsed::Frame(r) = &got[1] else { panic!() };
            assert_eq!(r.header("receipt-id"), Some("7"), "the first repeat wins");
            let Parsed::Frame(c) = &got[2] else { panic!() };
            // CONNECTED is never escaped.
            assert_eq!(c.header("server"), Some("a\\b"));
        }
    }

    #[test]
    fn hostile_frames_are_protocol_or_limit_faults() {
        let kind = |bytes: &[u8], max: usize| {
            let mut d = Decoder::new(max);
            d.push(bytes);
            d.take().unwrap_err().kind
        };
        assert_eq!(kind(b"MESSAGE\nx:\\t\n\n\0", 100), ErrorKind::Protocol);
        assert_eq!(kind(b"MESSAGE\nnocolon\n\n\0", 100), ErrorKind::Protocol);
        assert_eq!(
            kind(b"MESSAGE\ncontent-length:2\n\nabc\0", 100),
            ErrorKind::Protocol
        );
        assert_eq!(
            kind(b"MESSAGE\ncontent-length:999\n\n", 100),
            ErrorKind::Limit
        );
        assert_eq!(kind(&[b'a'; 200], 100), ErrorKind::Limit);
        assert_eq!(kind(b"\rX", 100), ErrorKind::Protocol);
    }

    proptest::proptest! {
        /// Hostile bytes never panic the decoder, and however they are
        /// split, the decoder finds the same frames (or the same fault).
        #[test]
        fn any_bytes_in_any_split_decode_alike(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::any::<u8>(),
                    proptest::strategy::Just(0u8),
                    proptest::strategy::Just(b'\n'),
                    proptest::strategy::Just(b':'),
                ],
                0..300,
            ),
            split in 1usize..40,
        ) {
            let decode = |chunks: &mut dyn Iterator<Item = &[u8]>| {
                let mut d = Decoder::new(200);
                let mut got = Vec::new();
                for c in chunks {
                    d.push(c);
                    loop {
                        match d.take() {
                            Ok(Some(p)) => got.push(Ok(p)),
                            Ok(None) => break,
                            Err(f) => {
                                got.push(Err(f.kind));
                                return got;
                            }
                        }
                    }
                }
                got
            };
            let whole = decode(&mut std::iter::once(&bytes[..]));
            let split = decode(&mut bytes.chunks(split));
            // Split reads may see a heart-beat where the whole read saw a
            // frame's trailing EOL, and a limit a little earlier.
            let frames = |v: &[Result<Parsed, ErrorKind>]| -> Vec<Frame> {
                v.iter()
                    .filter_map(|p| match p {
                        Ok(Parsed::Frame(f)) => Some(f.clone()),
                        _ => None,
                    })
                    .collect()
            };
            let (fw, fs) = (frames(&whole), frames(&split));
            let n = fw.len().min(fs.len());
            proptest::prop_assert_eq!(&fw[..n], &fs[..n]);
        }
    }
}
