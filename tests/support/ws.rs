//! Server-side WebSocket frames for scripted peers: plain frames and
//! permessage-deflate payloads (RFC 7692).

use flate2::{Compress, FlushCompress};

/// A server frame (unmasked) with first byte `b0`.
pub fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![b0];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n < 65536 => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

/// One message compressed as RFC 7692 section 7.2.1 says: raw deflate,
/// sync-flushed, the `00 00 ff ff` tail removed. `z` carries the context.
pub fn deflate(z: &mut Compress, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 64);
    let mut input = msg;
    loop {
        let before = z.total_in();
        z.compress_vec(input, &mut out, FlushCompress::Sync)
            .unwrap();
        input = &input[(z.total_in() - before) as usize..];
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(64));
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}
