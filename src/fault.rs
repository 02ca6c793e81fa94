//! Failed exchanges as data. A `Fault` is what a transport returns when a
//! connection, request or frame goes wrong; the client records its kind as a
//! sample and the run goes on. Kinds have stable labels that become CSV
//! columns (`errors_<label>`).

use std::fmt;
use std::io;
use std::time::Duration;

/// What went wrong, coarsely; stable and `Copy` so it can index counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// TCP connect refused.
    Refused,
    /// Connection reset, aborted, or closed mid-message.
    Reset,
    /// Connect, request or read took longer than allowed.
    Timeout,
    /// An unexpected HTTP status (or a refused WebSocket upgrade).
    Status,
    /// Bytes that break the protocol: bad frame, bad line, not an envelope.
    Protocol,
    /// The server ended a session abnormally (WebSocket close other than
    /// 1000, e.g. nchan's `1001 410 Gone` for a deleted channel).
    Closed,
    /// A limit against hostile servers was exceeded: message, header, SSE
    /// line or buffered bytes larger than allowed.
    Limit,
    /// The server refused the request with `429 Too Many Requests`.
    RateLimited,
    /// The TLS handshake failed (bad certificate, wrong name, not TLS).
    Tls,
    /// Anything else (local resource errors and the like).
    Other,
}

impl ErrorKind {
    /// Every kind, in column order.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Refused,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::Status,
        ErrorKind::Protocol,
        ErrorKind::Closed,
        ErrorKind::Limit,
        ErrorKind::RateLimited,
        ErrorKind::Tls,
        ErrorKind::Other,
    ];

    /// Stable label used in CSV columns and JSON.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Status => "status",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Closed => "closed",
            ErrorKind::Limit => "limit",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Tls => "tls",
            ErrorKind::Other => "other",
        }
    }

    /// Position in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The `errors_<label>` column of `summary.csv` and `timeseries.csv`.
    pub fn column(self) -> &'static str {
        match self {
            ErrorKind::Refused => "errors_refused",
            ErrorKind::Reset => "errors_reset",
            ErrorKind::Timeout => "errors_timeout",
            ErrorKind::Status => "errors_status",
            ErrorKind::Protocol => "errors_protocol",
            ErrorKind::Closed => "errors_closed",
            ErrorKind::Limit => "errors_limit",
            ErrorKind::RateLimited => "errors_rate_limited",
            ErrorKind::Tls => "errors_tls",
            ErrorKind::Other => "errors_other",
        }
    }

    /// What the kind counts, for the column documentation.
    pub fn meaning(self) -> &'static str {
        match self {
            ErrorKind::Refused => "TCP connect refused",
            ErrorKind::Reset => "connection reset, aborted, or closed mid-message",
            ErrorKind::Timeout => "connect, request or read took longer than allowed",
            ErrorKind::Status => {
                "an unexpected status, e.g. nchan's `410 Gone` for a deleted channel, \
                 or a request-mode status outside `expect_status`"
            }
            ErrorKind::Protocol => "bad frame, bad line, not an envelope",
            ErrorKind::Closed => {
                "the server closed a WebSocket with a code other than 1000, e.g. nchan's `1001`"
            }
            ErrorKind::Limit => {
                "a [limit](#limits) was exceeded: message, response head, SSE line, buffered bytes"
            }
            ErrorKind::RateLimited => "`429 Too Many Requests`",
            ErrorKind::Tls => "TLS handshake or certificate failure",
            ErrorKind::Other => "anything else (local resource errors and the like)",
        }
    }

    /// Classifies an I/O error.
    pub fn of_io(e: &io::Error) -> ErrorKind {
        use io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused => ErrorKind::Refused,
            K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::UnexpectedEof
            | K::NotConnected => ErrorKind::Reset,
            K::TimedOut => ErrorKind::Timeout,
            K::InvalidData => ErrorKind::Protocol,
            _ => ErrorKind::Other,
        }
    }
}

/// A failed exchange: its kind and a human detail for the run log.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Kind, for counting.
    pub kind: ErrorKind,
    /// Detail, for the first-seen example per kind.
    pub detail: String,
    /// How long the server asked the client to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl Fault {
    /// A fault of `kind` with `detail`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Fault {
            kind,
            detail: crate::secrets::redact(&detail.into()),
            retry_after: None,
        }
    }

    /// The same fault, with the wait the server asked for.
    pub fn with_retry_after(mut self, wait: Option<Duration>) -> Self {
        self.retry_after = wait;
        self
    }

    /// A fault for an HTTP status the client did not accept: `429` is
    /// `rate_limited`, anything else `status`; a `Retry-After` in seconds
    /// (the form servers use for throttling) is kept for the backoff.
    pub fn of_status(status: u16, headers: &http::HeaderMap, detail: impl Into<String>) -> Self {
        let kind = if status == 429 {
            ErrorKind::RateLimited
        } else {
            ErrorKind::Status
        };
        Fault::new(kind, detail).with_retry_after(retry_after(headers))
    }

    /// The same fault with `what` (e.g. `GET /sse/a`) in front of its detail.
    pub fn context(mut self, what: &str) -> Self {
        self.detail = format!("{what}: {}", self.detail);
        self
    }

    /// A timeout fault.
    pub fn timeout(what: &str) -> Self {
        Fault::new(ErrorKind::Timeout, format!("{what} timed out"))
    }
}

/// The longest excerpt of network text [`quote`] shows, in characters.
pub const QUOTE_CHARS: usize = 60;

/// Network text for an error message: in double quotes, its first
/// [`QUOTE_CHARS`] characters, control characters written as `\n`, `\r`,
/// `\t` or `\u{..}` (so a line break cannot forge a log line), and the
/// whole length in bytes after an ellipsis when it was cut.
pub fn quote(text: &str) -> String {
    excerpt(text, text.len(), false)
}

/// [`quote`] for bytes that may not be UTF-8 (invalid sequences show as
/// U+FFFD).
pub fn quote_bytes(bytes: &[u8]) -> String {
    // Only the excerpt is decoded: at most 4 bytes per character shown.
    let head = &bytes[..bytes.len().min(QUOTE_CHARS * 4)];
    excerpt(
        &String::from_utf8_lossy(head),
        bytes.len(),
        head.len() < bytes.len(),
    )
}

fn excerpt(text: &str, total_bytes: usize, cut: bool) -> String {
    let mut out = String::with_capacity(text.len().min(QUOTE_CHARS) + 16);
    out.push('"');
    for c in text.chars().take(QUOTE_CHARS) {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    if cut || text.chars().nth(QUOTE_CHARS).is_some() {
        out.push_str(&format!("… ({total_bytes} bytes)"));
    }
    out
}

/// A response's `Retry-After` (RFC 9110 §10.2.3), see [`retry_after_value`].
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    let date = headers
        .get(http::header::DATE)
        .and_then(|d| d.to_str().ok());
    retry_after_value(value, date)
}

/// A `Retry-After` value in either form RFC 9110 §10.2.3 allows: delay
/// seconds, or an HTTP-date. A date counts from the response's own `Date`
/// header when it has one, so the server's clock is compared with itself
/// and skew against ours does not matter; without one, from our clock. A
/// date in the past is no wait. Bounded at an hour: a hostile value must
/// not park a client past any run.
pub fn retry_after_value(value: &str, date: Option<&str>) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX).min(3600))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        let now = date
            .and_then(|d| httpdate::parse_http_date(d.trim()).ok())
            .unwrap_or_else(std::time::SystemTime::now);
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(Duration::from_secs(3600)))
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.label(), self.detail)
    }
}

impl From<io::Error> for Fault {
    fn from(e: io::Error) -> Self {
        Fault::new(ErrorKind::of_io(&e), e.to_string())
    }
}

impl From<hyper::Error> for Fault {
    fn from(e: hyper::Error) -> Self {
        // Prefer the underlying socket error's kind when there is one.
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<io::Error>() {
                return Fault::new(ErrorKind::of_io(io), e.to_string());
            }
            if let Some(h2) = s.downcast_ref::<h2::Error>() {
                return Fault::new(h2_kind(h2), e.to_string());
            }
            source = s.source();
        }
        let kind = if e.is_parse_too_large() {
            ErrorKind::Limit
        } else if e.is_parse() || e.is_parse_status() {
            ErrorKind::Protocol
        } else if e.is_timeout() {
            ErrorKind::Timeout
        } else if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
            ErrorKind::Reset
        } else {
            ErrorKind::Other
        };
        Fault::new(kind, e.to_string())
    }
}

/// An HTTP/2 error's kind (RFC 9113 §7): the peer's RST_STREAM or GOAWAY
/// with NO_ERROR, CANCEL or REFUSED_STREAM ends a stream as a reset does;
/// a framing, header-compression or flow-control violation (ours or the
/// peer's report of one) is `protocol`.
fn h2_kind(e: &h2::Error) -> ErrorKind {
    use h2::Reason;
    if let Some(io) = e.get_io() {
        return ErrorKind::of_io(io);
    }
    match e.reason() {
        Some(
            Reason::PROTOCOL_ERROR
            | Reason::FRAME_SIZE_ERROR
            | Reason::COMPRESSION_ERROR
            | Reason::FLOW_CONTROL_ERROR
            | Reason::STREAM_CLOSED,
        ) => ErrorKind::Protocol,
        Some(Reason::ENHANCE_YOUR_CALM) => ErrorKind::RateLimited,
        _ => ErrorKind::Reset,
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for Fault {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        use tokio_tungstenite::tungstenite::error::ProtocolError;
        use tokio_tungstenite::tungstenite::Error as W;
        let kind = match &e {
            W::Io(io) => ErrorKind::of_io(io),
            W::ConnectionClosed | W::AlreadyClosed => ErrorKind::Reset,
            // The connection ended without a close frame.
            W::Protocol(ProtocolError::ResetWithoutClosingHandshake) => ErrorKind::Reset,
            W::Http(r) if r.status().as_u16() == 429 => ErrorKind::RateLimited,
            W::Http(_) => ErrorKind::Status,
            W::Capacity(_) => ErrorKind::Limit,
            W::Protocol(_) | W::Utf8(_) | W::HttpFormat(_) | W::Url(_) => ErrorKind::Protocol,
            _ => ErrorKind::Other,
        };
        let wait = match &e {
            W::Http(r) => retry_after(r.headers()),
            _ => None,
        };
        Fault::new(kind, e.to_string()).with_retry_after(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let s = |v: &str, d: Option<&str>| retry_after_value(v, d).map(|d| d.as_secs());
        assert_eq!(s("120", None), Some(120));
        assert_eq!(s(" 7 ", None), Some(7));
        assert_eq!(s("99999999999999999999", None), Some(3600));
        let date = Some("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(s("Wed, 21 Oct 2015 07:28:30 GMT", date), Some(30));
        // The obsolete forms RFC 9110 §5.6.7 still requires recipients to read.
        assert_eq!(s("Wednesday, 21-Oct-15 07:29:00 GMT", date), Some(60));
        assert_eq!(s("Wed Oct 21 07:28:05 2015", date), Some(5));
        assert_eq!(s("Wed, 21 Oct 2015 07:00:00 GMT", date), Some(0));
        assert_eq!(s("soon", None), None);
        assert_eq!(s("-5", None), None);
    }

    #[test]
    fn network_text_is_quoted_escaped_and_capped() {
        assert_eq!(quote("a\"b\nc\u{1}"), "\"a\\\"b\\nc\\u{1}\"");
        let long = "x".repeat(100);
        assert_eq!(
            quote(&long),
            format!("\"{}\"… (100 bytes)", "x".repeat(QUOTE_CHARS))
        );
        assert_eq!(quote_bytes(b"ab\xffc"), "\"ab\u{fffd}c\"");
        let big = vec![b'y'; 10_000];
        assert!(quote_bytes(&big).ends_with("… (10000 bytes)"));
    }
}
