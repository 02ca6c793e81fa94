//! The inflating layer: [`Wire`] sits between the counted socket and
//! tungstenite and rewrites each compressed data frame into the plain frame
//! it stands for; every other frame passes untouched.

use std::io::{self, Cursor};
use std::pin::Pin;
use std::task::{Context, Poll};

use flate2::{Decompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;

use super::Agreed;
use crate::net::Stream;

/// The WebSocket's byte stream: the counted socket, plus the inflating
/// layer when permessage-deflate was agreed (`None` costs one pointer).
pub struct Wire {
    io: Stream,
    pmd: Option<Box<Inflating>>,
}

impl Wire {
    /// A stream without extensions.
    pub fn plain(io: Stream) -> Wire {
        Wire { io, pmd: None }
    }

    /// A stream whose server frames are inflated per `agreed`. `early`:
    /// bytes read with the upgrade's answer (frames to rewrite too).
    /// `max_message_bytes`: a frame that would inflate past it is handed
    /// over with a length over the limit, for tungstenite to fail.
    pub fn inflating(io: Stream, agreed: Agreed, early: Vec<u8>, max_message_bytes: usize) -> Wire {
        Wire {
            io,
            pmd: Some(Box::new(Inflating {
                raw: early,
                out: Vec::new(),
                out_at: 0,
                inflater: None,
                in_message: false,
                passthrough: false,
                no_context: agreed.server_no_context_takeover,
                max: max_message_bytes,
            })),
        }
    }
}

/// The read side's state when permessage-deflate is on.
struct Inflating {
    /// Socket bytes not yet rewritten (at most one frame and a read).
    raw: Vec<u8>,
    /// Rewritten bytes for tungstenite, from `out_at`.
    out: Vec<u8>,
    out_at: usize,
    /// Made at the first compressed message (about 42 KiB with miniz_oxide:
    /// a 32 KiB window and tables), kept for context takeover.
    inflater: Option<Decompress>,
    /// Inside a compressed message's fragments.
    in_message: bool,
    /// After a frame stampede does not rewrite and cannot skip (a bad
    /// header, an oversized length): everything goes over as it came.
    passthrough: bool,
    no_context: bool,
    max: usize,
}

/// The tail a sender strips from each compressed message (RFC 7692
/// section 7.2.2).
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// Room kept in front of an inflated payload for its frame header (the
/// longest unmasked header).
const HEAD_ROOM: usize = 10;

impl Inflating {
    /// Rewrites the next whole frame in `raw` into `out`. False: `raw`
    /// does not hold a whole frame yet.
    fn rewrite_one(&mut self) -> io::Result<bool> {
        if self.passthrough {
            if self.raw.is_empty() {
                return Ok(false);
            }
            self.out.append(&mut self.raw);
            return Ok(true);
        }
        let mut cur = Cursor::new(&self.raw[..]);
        let (head, len) = match FrameHeader::parse(&mut cur) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(false),
            Err(_) => {
                // tungstenite reads the same bytes and names the fault.
                self.passthrough = true;
                return self.rewrite_one();
            }
        };
        let at = cur.position() as usize;
        if len > self.max as u64 {
            self.passthrough = true;
            return self.rewrite_one();
        }
        let end = at + len as usize;
        if self.raw.len() < end {
            return Ok(false);
        }
        let compressed = head.mask.is_none()
            && match head.opcode {
                OpCode::Data(Data::Text | Data::Binary) => head.rsv1,
                OpCode::Data(Data::Continue) => self.in_message && !head.rsv1,
                _ => false,
            };
        if !compressed {
            self.out.extend_from_slice(&self.raw[..end]);
            self.consume(end);
            return Ok(true);
        }
        self.in_message = !head.is_final;
        let no_context = self.no_context;
        let inflater = self.inflater.get_or_insert_with(|| Decompress::new(false));
        self.out.resize(HEAD_ROOM, 0);
        let cap = HEAD_ROOM + self.max + 1;
        let mut ended = inflate(inflater, &self.raw[at..end], &mut self.out, cap)?;
        if head.is_final && !ended && self.out.len() < cap {
            ended = inflate(inflater, &TAIL, &mut self.out, cap)?;
        }
        if head.is_final && (no_context || ended) {
            inflater.reset(false);
        }
        self.consume(end);
        let n = self.out.len() - HEAD_ROOM;
        let plain = FrameHeader {
            rsv1: false,
            ..head
        };
        let mut header = [0u8; HEAD_ROOM];
        let mut w = Cursor::new(&mut header[..]);
        plain
            .format(n as u64, &mut w)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let h = w.position() as usize;
        self.out_at = HEAD_ROOM - h;
        self.out[self.out_at..HEAD_ROOM].copy_from_slice(&header[..h]);
        if n > self.max {
            // Over the limit: tungstenite fails on the header's length.
            self.passthrough = true;
        }
        Ok(true)
    }
}

impl Inflating {
    /// Drops a rewritten frame's bytes; a big frame's buffer is not kept
    /// while idle.
    fn consume(&mut self, end: usize) {
        self.raw.drain(..end);
        if self.raw.is_empty() && self.raw.capacity() > 4 * READ_CHUNK {
            self.raw = Vec::new();
        }
    }
}

/// Inflates `input` onto `out`, growing it up to `cap` bytes. True: the
/// deflate stream ended (a block with BFINAL set).
fn inflate(
    d: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    cap: usize,
) -> io::Result<bool> {
    loop {
        if out.len() >= cap {
            return Ok(false);
        }
        let room = (input.len() * 4).clamp(1024, 64 << 10).min(cap - out.len());
        out.reserve(room);
        let (before_in, before_out) = (d.total_in(), d.total_out());
        let status = d
            .decompress_vec(input, out, FlushDecompress::None)
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("permessage-deflate: the server's data does not inflate ({e})"),
                )
            })?;
        let used = (d.total_in() - before_in) as usize;
        let made = d.total_out() - before_out;
        input = &input[used..];
        if status == Status::StreamEnd {
            return Ok(true);
        }
        // Done when all input is in and the output had room to spare.
        if input.is_empty() && out.len() < out.capacity() {
            return Ok(false);
        }
        if used == 0 && made == 0 && out.len() < out.capacity() {
            return Ok(false);
        }
    }
}

/// The most read from the socket at once.
const READ_CHUNK: usize = crate::transport::h1::STREAM_CHUNK;

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(p) = this.pmd.as_deref_mut() else {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        };
        loop {
            if p.out_at < p.out.len() {
                let n = buf.remaining().min(p.out.len() - p.out_at);
                buf.put_slice(&p.out[p.out_at..p.out_at + n]);
                p.out_at += n;
                if p.out_at == p.out.len() {
                    p.out.clear();
                    p.out_at = 0;
                    if p.out.capacity() > 4 * READ_CHUNK {
                        // A big message's buffer is not kept while idle.
                        p.out = Vec::new();
                    }
                }
                return Poll::Ready(Ok(()));
            }
            if p.rewrite_one()? {
                continue;
            }
            p.raw.reserve(READ_CHUNK);
            let spare = p.raw.spare_capacity_mut();
            let take = READ_CHUNK.min(spare.len());
            let mut rb = ReadBuf::uninit(&mut spare[..take]);
            match Pin::new(&mut this.io).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        // End of stream: a partial frame goes over as it is
                        // (tungstenite names the truncation), then EOF.
                        if p.raw.is_empty() {
                            return Poll::Ready(Ok(()));
                        }
                        p.passthrough = true;
                        continue;
                    }
                    // SAFETY: the read initialised `n` bytes of the spare
                    // capacity, right after the current length.
                    unsafe { p.raw.set_len(p.raw.len() + n) };
                }
            }
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
