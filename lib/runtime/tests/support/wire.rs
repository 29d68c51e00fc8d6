//! Helpers shared by the wire-format test crates: raw two-part bytes and chunked round trips.

// Each test crate includes this file and uses only the helpers it needs.
#![allow(dead_code)]

use bytes::BytesMut;
use stator_runtime::wire::Frame;

/// `struct.pack(">QQQ", len(header), len(body), 0) + header + body`
pub fn two_part_bytes(header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(header.len() as u64).to_be_bytes());
    out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(body);
    out
}

/// Encodes all frames back to back, feeds the bytes in chunks of `chunk`, decodes with the
/// message size limit `max`, and requires the same frames back with nothing left over.
pub fn stream_roundtrip<F: Frame + PartialEq + std::fmt::Debug>(
    frames: &[F],
    chunk: usize,
    max: usize,
) {
    let mut wire = BytesMut::new();
    for f in frames {
        f.encode(&mut wire).expect("encodable");
    }
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in wire.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        while let Some(f) = F::decode(&mut buf, max).expect("valid stream") {
            out.push(f);
        }
    }
    assert!(buf.is_empty());
    assert_eq!(out, frames);
}
