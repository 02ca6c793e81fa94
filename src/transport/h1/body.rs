//! Response bodies: handing a streamed body out as it arrives, or skipping
//! it, under each framing (Content-Length, chunked, until close).

use crate::fault::{ErrorKind, Fault};

use super::{BodyState, Framing, H1};

impl H1 {
    /// The next bytes of the body [`H1::begin`] started, as they arrive;
    /// `None` at its end. A connection that ends early is a `reset` fault.
    pub async fn body_data(&mut self) -> Result<Option<&[u8]>, Fault> {
        loop {
            match self.body {
                BodyState::Done => return Ok(None),
                BodyState::Length(left) | BodyState::ChunkData(left) if left > 0 => {
                    if self.start == self.buf.len() && !self.fill().await? {
                        self.body = BodyState::Done;
                        return Err(Fault::new(
                            ErrorKind::Reset,
                            "the connection closed in the middle of a response body",
                        ));
                    }
                    let at = self.start;
                    let k = self.take(left);
                    self.body = match self.body {
                        BodyState::Length(_) => BodyState::Length(left - k),
                        _ => BodyState::ChunkData(left - k),
                    };
                    return Ok(Some(&self.buf[at..at + k as usize]));
                }
                BodyState::Length(_) => self.body = BodyState::Done,
                BodyState::ChunkData(_) => {
                    let (_, len) = self.line().await?;
                    if len != 0 {
                        self.closed = true;
                        self.body = BodyState::Done;
                        return Err(Fault::new(
                            ErrorKind::Protocol,
                            "chunk data longer than its size line",
                        ));
                    }
                    self.body = BodyState::ChunkSize;
                }
                BodyState::ChunkSize => {
                    let size = self.chunk_size().await?;
                    if size == 0 {
                        // Trailers, then an empty line.
                        loop {
                            let (_, len) = self.line().await?;
                            if len == 0 {
                                break;
                            }
                        }
                        self.body = BodyState::Done;
                    } else {
                        self.body = BodyState::ChunkData(size);
                    }
                }
                BodyState::UntilClose => {
                    if self.start == self.buf.len() && !self.fill().await? {
                        self.body = BodyState::Done;
                        return Ok(None);
                    }
                    let at = self.start;
                    let k = self.take(u64::MAX);
                    return Ok(Some(&self.buf[at..at + k as usize]));
                }
            }
        }
    }

    /// Consumes up to `n` buffered bytes; returns how many it took.
    pub(super) fn take(&mut self, n: u64) -> u64 {
        let have = (self.buf.len() - self.start) as u64;
        let k = have.min(n);
        self.start += k as usize;
        k
    }

    pub(super) async fn skip_body(&mut self, framing: Framing) -> Result<(), Fault> {
        match framing {
            Framing::None => Ok(()),
            Framing::Length(mut left) => {
                while left > 0 {
                    left -= self.take(left);
                    if left > 0 && !self.fill().await? {
                        return Err(Fault::new(
                            ErrorKind::Reset,
                            "the connection closed in the middle of a response body",
                        ));
                    }
                }
                Ok(())
            }
            Framing::UntilClose => {
                let _ = self.take(u64::MAX);
                while self.fill().await? {
                    let _ = self.take(u64::MAX);
                }
                Ok(())
            }
            Framing::Chunked => loop {
                let size = self.chunk_size().await?;
                // The chunk's data and its CRLF (the last chunk: trailers
                // then an empty line).
                if size == 0 {
                    loop {
                        let (_, len) = self.line().await?;
                        if len == 0 {
                            return Ok(());
                        }
                    }
                }
                let mut left = size + 2;
                while left > 0 {
                    left -= self.take(left);
                    if left > 0 && !self.fill().await? {
                        return Err(Fault::new(
                            ErrorKind::Reset,
                            "the connection closed in the middle of a chunk",
                        ));
                    }
                }
            },
        }
    }

    /// Consumes one LF-terminated line; returns where it starts in `buf`
    /// and its length without the line end.
    async fn line(&mut self) -> Result<(usize, usize), Fault> {
        loop {
            if let Some(i) = self.buf[self.start..].iter().position(|b| *b == b'\n') {
                let at = self.start;
                let len = if i > 0 && self.buf[at + i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                self.start += i + 1;
                return Ok((at, len));
            }
            if self.buf.len() - self.start > self.max_head {
                self.closed = true;
                return Err(Fault::new(
                    ErrorKind::Limit,
                    "a chunk line over max_header_bytes",
                ));
            }
            if !self.fill().await? {
                return Err(Fault::new(
                    ErrorKind::Reset,
                    "the connection closed in the middle of a chunked body",
                ));
            }
        }
    }

    async fn chunk_size(&mut self) -> Result<u64, Fault> {
        let (at, len) = self.line().await?;
        let line = &self.buf[at..at + len];
        let hex = line.split(|b| *b == b';').next().unwrap_or_default();
        // Digits only (the parser would take a sign), and room for the
        // CRLF after the data.
        let size = std::str::from_utf8(hex)
            .ok()
            .map(str::trim)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .filter(|n| *n < u64::MAX / 2);
        size.ok_or_else(|| {
            self.closed = true;
            Fault::new(ErrorKind::Protocol, "a bad chunk size line")
        })
    }
}
