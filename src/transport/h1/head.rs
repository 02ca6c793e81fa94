//! Response heads: reading one (informational heads skipped), with the
//! framing its headers announce, and the header-value checks it needs.

use crate::fault::{ErrorKind, Fault};

use super::{Answer, Framing, H1, MAX_HEADERS};

impl H1 {
    /// The response's head after any informational ones (e.g. 100
    /// Continue; 101 is final), noting whether the connection ends.
    pub(super) async fn final_head(
        &mut self,
        head_only: bool,
        want_headers: bool,
    ) -> Result<(Answer, Framing, http::HeaderMap), Fault> {
        loop {
            let (answer, framing, close, headers) = self.read_head(head_only, want_headers).await?;
            if (100..200).contains(&answer.status) && answer.status != 101 {
                continue;
            }
            if close {
                self.closed = true;
            }
            return Ok((answer, framing, headers));
        }
    }

    /// Parses the next response head; `want_headers`: also return all its
    /// headers (request mode's hot path does not).
    async fn read_head(
        &mut self,
        head_only: bool,
        want_headers: bool,
    ) -> Result<(Answer, Framing, bool, http::HeaderMap), Fault> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.buf[self.start..]) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = resp.code.unwrap_or(0);
                    let mut length = None;
                    // Some(true): chunked is the last transfer coding.
                    let mut chunked = None;
                    let mut close = resp.version == Some(0);
                    let mut retry_after = None;
                    let mut date = None;
                    let mut all = http::HeaderMap::new();
                    for h in resp.headers.iter() {
                        if want_headers {
                            // httparse checked the name's and value's bytes.
                            if let (Ok(name), Ok(value)) = (
                                http::HeaderName::from_bytes(h.name.as_bytes()),
                                http::HeaderValue::from_bytes(h.value),
                            ) {
                                all.append(name, value);
                            }
                        }
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let len = content_length(h.value)?;
                            // Repeated fields must agree (RFC 9110 §8.6).
                            if length.is_some_and(|l| l != len) {
                                return Err(Fault::new(
                                    ErrorKind::Protocol,
                                    "conflicting Content-Length fields",
                                ));
                            }
                            length = Some(len);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            let last = h.value.rsplit(|b| *b == b',').next().unwrap_or_default();
                            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            close |= contains_token(h.value, b"close");
                        } else if h.name.eq_ignore_ascii_case("retry-after") {
                            retry_after = std::str::from_utf8(h.value).ok();
                        } else if h.name.eq_ignore_ascii_case("date") {
                            date = std::str::from_utf8(h.value).ok();
                        }
                    }
                    // Transfer-Encoding overrides Content-Length, and a
                    // body whose last coding is not chunked runs to the
                    // close (RFC 9112 6.3).
                    let mut framing = match (chunked, length) {
                        (Some(true), _) => Framing::Chunked,
                        (Some(false), _) | (None, None) => Framing::UntilClose,
                        (None, Some(len)) => Framing::Length(len),
                    };
                    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
                        framing = Framing::None;
                    }
                    if matches!(framing, Framing::UntilClose) {
                        close = true;
                    }
                    let retry_after =
                        retry_after.and_then(|v| crate::fault::retry_after_value(v, date));
                    self.start += n;
                    return Ok((
                        Answer {
                            status,
                            retry_after,
                        },
                        framing,
                        close,
                        all,
                    ));
                }
                Ok(httparse::Status::Partial) => {
                    if self.buf.len() - self.start > self.max_head {
                        self.closed = true;
                        return Err(Fault::new(
                            ErrorKind::Limit,
                            format!("a response head over max_header_bytes ({})", self.max_head),
                        ));
                    }
                }
                Err(e) => {
                    self.closed = true;
                    return Err(Fault::new(
                        ErrorKind::Protocol,
                        format!("a malformed HTTP response head: {e}"),
                    ));
                }
            }
            if !self.fill().await? {
                return Err(Fault::new(
                    ErrorKind::Reset,
                    "the connection closed before a complete response head",
                ));
            }
        }
    }
}

/// A `Content-Length` value: decimal digits, or a list of identical ones
/// (`42, 42`, which RFC 9110 §8.6 lets a recipient take as one); anything
/// else is a `protocol` fault.
pub(super) fn content_length(value: &[u8]) -> Result<u64, Fault> {
    let bad = || Fault::new(ErrorKind::Protocol, "a bad Content-Length");
    let mut len = None;
    for item in value.split(|b| *b == b',') {
        let item = item.trim_ascii();
        if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let n: u64 = std::str::from_utf8(item)
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        if len.is_some_and(|l| l != n) {
            return Err(Fault::new(
                ErrorKind::Protocol,
                "a Content-Length list of different values",
            ));
        }
        len = Some(n);
    }
    len.ok_or_else(bad)
}

/// True when the comma-separated header value holds `token` (any case).
pub(crate) fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}
