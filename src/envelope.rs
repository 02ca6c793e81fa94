//! The envelope every published event carries inside its payload: channel
//! index, sequence number and the harness's publish timestamp, padded to the
//! configured size. It is one line of printable ASCII so that it survives
//! every transport unchanged (SSE `data:`, NDJSON strings, WebSocket text,
//! poll bodies) and any third-party server that relays bodies verbatim.
//!
//! Format: `st1 <channel> <seq> <sent_ns> ` followed by `.` padding.

use std::fmt::Write;

const MAGIC: &str = "st1";

/// Decoded envelope fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    /// Index of the channel the event was published on (within its phase).
    pub channel: u32,
    /// Per-channel sequence number, from 0.
    pub seq: u64,
    /// Publish time: nanoseconds since the run epoch (the *intended* time).
    pub sent_ns: u64,
}

impl Envelope {
    /// Encodes into a payload of at least `size` bytes.
    pub fn encode(&self, size: usize) -> String {
        let mut s = String::with_capacity(size.max(48));
        // Writing to a String cannot fail.
        let _ = write!(s, "{MAGIC} {} {} {} ", self.channel, self.seq, self.sent_ns);
        while s.len() < size {
            s.push('.');
        }
        s
    }

    /// Decodes a payload; `None` for anything that is not an envelope.
    pub fn decode(payload: &[u8]) -> Option<Envelope> {
        // Only the head is parsed: padding can be long.
        let head = &payload[..payload.len().min(80)];
        let mut parts = head.split(|b| *b == b' ');
        if parts.next()? != MAGIC.as_bytes() {
            return None;
        }
        let channel = parse_u64(parts.next()?)?;
        let seq = parse_u64(parts.next()?)?;
        let sent_ns = parse_u64(parts.next()?)?;
        Some(Envelope {
            channel: u32::try_from(channel).ok()?,
            seq,
            sent_ns,
        })
    }
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_padding() {
        let e = Envelope {
            channel: 3,
            seq: 42,
            sent_ns: 123_456_789,
        };
        let s = e.encode(256);
        assert_eq!(s.len(), 256);
        assert_eq!(Envelope::decode(s.as_bytes()), Some(e));
        // Smaller than the header: never truncated.
        let short = e.encode(4);
        assert_eq!(Envelope::decode(short.as_bytes()), Some(e));
    }

    #[test]
    fn garbage_is_not_an_envelope() {
        for bad in [
            &b""[..],
            b"st1",
            b"st1 1 2",
            b"st1 x 2 3 ",
            b"xx1 1 2 3 ",
            b"st1 1 2 99999999999999999999999 ",
            b"\xff\xfe",
        ] {
            assert_eq!(Envelope::decode(bad), None, "{bad:?}");
        }
    }
}
