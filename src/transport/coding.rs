//! HTTP content codings (RFC 9110 §8.4): bodies sent with
//! `Content-Encoding: gzip`, `deflate` or `br` are decoded as they arrive,
//! so a flushed gzip event stream delivers each event when its bytes do.
//! Decompression is flate2's and brotli-decompressor's; this module only
//! picks the decoder from the header and bounds what it produces.
//!
//! Wire bytes are counted at the socket, below this layer, so a compressed
//! stream shows its compressed size in `bytes_received`.

use std::io::Write;

use http::HeaderMap;

use crate::fault::{ErrorKind, Fault};

/// One response body's decoder; `Identity` passes bytes through.
pub enum Decoder {
    /// No coding (or `identity`).
    Identity,
    /// `gzip` / `x-gzip` (RFC 1952).
    Gzip(Box<flate2::write::GzDecoder<Vec<u8>>>),
    /// `deflate` as RFC 9110 §8.4.1.2 defines it: zlib (RFC 1950).
    Zlib(Box<flate2::write::ZlibDecoder<Vec<u8>>>),
    /// `deflate` sent as raw RFC 1951 data, which some servers do and every
    /// browser accepts; told apart by its first bytes.
    Raw(Box<flate2::write::DeflateDecoder<Vec<u8>>>),
    /// `deflate` before its first two bytes arrived.
    Deflate(Vec<u8>),
    /// `br` (RFC 7932).
    Brotli(Box<brotli_decompressor::DecompressorWriter<Vec<u8>>>),
}

/// Codings stampede decodes, for `Accept-Encoding` checks and messages.
pub const SUPPORTED: [&str; 3] = ["gzip", "deflate", "br"];

impl Decoder {
    /// The decoder for a response's `Content-Encoding` header(s): `Err` (a
    /// `protocol` fault naming the coding) for a coding stampede cannot
    /// decode or for more than one coding stacked.
    pub fn for_headers(headers: &HeaderMap) -> Result<Decoder, Fault> {
        let mut codings = Vec::new();
        for value in headers.get_all(http::header::CONTENT_ENCODING) {
            let text = value.to_str().map_err(|_| {
                Fault::new(
                    ErrorKind::Protocol,
                    "a Content-Encoding header that is not visible ASCII",
                )
            })?;
            // A list of codings (RFC 9110 §8.4: `#content-coding`), case-
            // insensitive, with empty elements allowed.
            for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let token = token.to_ascii_lowercase();
                if token != "identity" {
                    codings.push(token);
                }
            }
        }
        match codings.as_slice() {
            [] => Ok(Decoder::Identity),
            [one] => Decoder::named(one),
            many => Err(Fault::new(
                ErrorKind::Protocol,
                format!(
                    "Content-Encoding: {} (stacked codings are not decoded)",
                    many.join(", ")
                ),
            )),
        }
    }

    fn named(coding: &str) -> Result<Decoder, Fault> {
        Ok(match coding {
            "gzip" | "x-gzip" => Decoder::Gzip(Box::new(flate2::write::GzDecoder::new(Vec::new()))),
            "deflate" => Decoder::Deflate(Vec::new()),
            "br" => Decoder::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(
                Vec::new(),
                4096,
            ))),
            other => {
                return Err(Fault::new(
                    ErrorKind::Protocol,
                    format!(
                        "Content-Encoding: {other} is not a coding stampede decodes ({})",
                        SUPPORTED.join(", ")
                    ),
                ))
            }
        })
    }

    /// True when bytes pass through unchanged.
    pub fn is_identity(&self) -> bool {
        matches!(self, Decoder::Identity)
    }

    /// Decodes `data` and appends what it yields to `out`. `max_out` bounds
    /// the decoded bytes of this call (a decompression bomb is a `limit`
    /// fault, not an OOM).
    pub fn decode(&mut self, data: &[u8], out: &mut Vec<u8>, max_out: usize) -> Result<(), Fault> {
        if let Decoder::Deflate(head) = self {
            head.extend_from_slice(data);
            if head.len() < 2 {
                return Ok(());
            }
            let held = std::mem::take(head);
            // RFC 1950 §2.2: CM = 8 and the 16-bit header a multiple of 31.
            let zlib =
                held[0] & 0x0f == 8 && (u16::from(held[0]) << 8 | u16::from(held[1])) % 31 == 0;
            *self = if zlib {
                Decoder::Zlib(Box::new(flate2::write::ZlibDecoder::new(Vec::new())))
            } else {
                Decoder::Raw(Box::new(flate2::write::DeflateDecoder::new(Vec::new())))
            };
            return self.decode(&held, out, max_out);
        }
        let bad = |coding: &str, e: std::io::Error| {
            Fault::new(ErrorKind::Protocol, format!("bad {coding} body: {e}"))
        };
        let produced = match self {
            Decoder::Identity => {
                out.extend_from_slice(data);
                return Ok(());
            }
            Decoder::Deflate(_) => return Ok(()),
            Decoder::Gzip(d) => feed(d.as_mut(), data).map_err(|e| bad("gzip", e))?,
            Decoder::Zlib(d) => feed(d.as_mut(), data).map_err(|e| bad("deflate", e))?,
            Decoder::Raw(d) => feed(d.as_mut(), data).map_err(|e| bad("deflate", e))?,
            Decoder::Brotli(d) => {
                write_all_flush(d.as_mut(), data).map_err(|e| bad("br", e))?;
                d.get_mut()
            }
        };
        if produced.len() > max_out {
            let n = produced.len();
            produced.clear();
            return Err(Fault::new(
                ErrorKind::Limit,
                format!("a compressed body inflated to {n} bytes (limit {max_out})"),
            ));
        }
        out.append(produced);
        Ok(())
    }
}

/// The flate2 write-side decoders share one shape.
trait Inflate: Write {
    fn output(&mut self) -> &mut Vec<u8>;
}

macro_rules! inflate {
    ($($t:ty),*) => {$(
        impl Inflate for $t {
            fn output(&mut self) -> &mut Vec<u8> {
                self.get_mut()
            }
        }
    )*};
}
inflate!(
    flate2::write::GzDecoder<Vec<u8>>,
    flate2::write::ZlibDecoder<Vec<u8>>,
    flate2::write::DeflateDecoder<Vec<u8>>
);

fn feed<'a, D: Inflate>(d: &'a mut D, data: &[u8]) -> std::io::Result<&'a mut Vec<u8>> {
    write_all_flush(d, data)?;
    Ok(d.output())
}

/// A write-side decoder keeps what it inflated in its own buffer until
/// flushed: flushing after every read is what delivers a flushed stream's
/// event at once.
fn write_all_flush<W: Write>(w: &mut W, data: &[u8]) -> std::io::Result<()> {
    let mut rest = data;
    while !rest.is_empty() {
        match w.write(rest)? {
            // A decoder that takes nothing more has seen its stream's end;
            // trailing bytes after it are ignored as browsers do.
            0 => break,
            n => rest = &rest[n..],
        }
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_str(v).unwrap_or_else(|_| unreachable!()),
        );
        h
    }

    fn flushed_gzip(parts: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut out = Vec::new();
        for p in parts {
            z.write_all(p).unwrap_or_else(|_| unreachable!());
            z.flush().unwrap_or_else(|_| unreachable!());
            out.push(std::mem::take(z.get_mut()));
        }
        out
    }

    #[test]
    fn a_flushed_gzip_stream_yields_each_part_when_it_arrives() {
        let mut d = Decoder::for_headers(&headers("GZip")).unwrap_or_else(|_| unreachable!());
        for (i, chunk) in flushed_gzip(&[b"data: one\n\n", b"data: two\n\n"])
            .iter()
            .enumerate()
        {
            let mut out = Vec::new();
            d.decode(chunk, &mut out, 1 << 20)
                .unwrap_or_else(|_| unreachable!());
            assert_eq!(out, [&b"data: one\n\n"[..], b"data: two\n\n"][i]);
        }
    }

    #[test]
    fn a_flushed_brotli_stream_yields_each_part_when_it_arrives() {
        // Python's `brotli.Compressor`: process + flush per event, then finish.
        let chunks: [&[u8]; 3] = [
            &[11, 5, 128, 100, 97, 116, 97, 58, 32, 111, 110, 101, 10, 10],
            &[
                80, 0, 128, 95, 90, 225, 141, 238, 78, 17, 162, 74, 4, 96, 11,
            ],
            &[3],
        ];
        let mut d = Decoder::for_headers(&headers("br")).unwrap_or_else(|_| unreachable!());
        let mut got = Vec::new();
        for c in chunks {
            let mut out = Vec::new();
            d.decode(c, &mut out, 1 << 20)
                .unwrap_or_else(|_| unreachable!());
            got.push(out);
        }
        assert_eq!(got, [&b"data: one\n\n"[..], b"data: two\n\n", b""]);
    }

    #[test]
    fn deflate_is_zlib_or_raw() {
        let plain = b"{\"data\":\"x\"}\n".repeat(20);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&plain).unwrap_or_else(|_| unreachable!());
        let zlib = z.finish().unwrap_or_else(|_| unreachable!());
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        r.write_all(&plain).unwrap_or_else(|_| unreachable!());
        let raw = r.finish().unwrap_or_else(|_| unreachable!());
        for body in [zlib, raw] {
            let mut d =
                Decoder::for_headers(&headers("deflate")).unwrap_or_else(|_| unreachable!());
            let mut out = Vec::new();
            // One byte at a time: the kind is only known after two.
            for b in &body {
                d.decode(std::slice::from_ref(b), &mut out, 1 << 20)
                    .unwrap_or_else(|_| unreachable!());
            }
            assert_eq!(out, plain);
        }
    }

    #[test]
    fn unknown_and_stacked_codings_are_named() {
        for (v, needle) in [
            ("zstd", "zstd"),
            ("gzip, br", "gzip, br"),
            ("compress", "compress"),
        ] {
            let Err(f) = Decoder::for_headers(&headers(v)) else {
                panic!("{v} accepted");
            };
            assert_eq!(f.kind, ErrorKind::Protocol);
            assert!(f.detail.contains(needle), "{}", f.detail);
        }
        assert!(Decoder::for_headers(&headers("identity")).is_ok_and(|d| d.is_identity()));
    }

    #[test]
    fn corrupt_bodies_and_bombs_are_faults() {
        let mut d = Decoder::for_headers(&headers("gzip")).unwrap_or_else(|_| unreachable!());
        let mut out = Vec::new();
        assert!(d.decode(b"definitely not gzip", &mut out, 1 << 20).is_err());
        let zeros = vec![0u8; 1 << 20];
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&zeros).unwrap_or_else(|_| unreachable!());
        let bomb = z.finish().unwrap_or_else(|_| unreachable!());
        let mut d = Decoder::for_headers(&headers("gzip")).unwrap_or_else(|_| unreachable!());
        let Err(f) = d.decode(&bomb, &mut out, 1000) else {
            panic!("a bomb was inflated");
        };
        assert_eq!(f.kind, ErrorKind::Limit);
    }
}
