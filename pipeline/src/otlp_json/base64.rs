//! Minimal base64 for AnyValue `bytesValue` (proto3 JSON `bytes`), kept here
//! to avoid a dependency for ~60 lines.

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard alphabet with padding: what proto3 JSON emits.
pub(super) fn encode_into(out: &mut Vec<u8>, data: &[u8]) {
    out.reserve(data.len().div_ceil(3) * 4);
    let mut chunks = data.chunks_exact(3);
    for c in &mut chunks {
        let n = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        out.extend_from_slice(&[
            STD[(n >> 18) as usize & 63],
            STD[(n >> 12) as usize & 63],
            STD[(n >> 6) as usize & 63],
            STD[n as usize & 63],
        ]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[
                STD[(n >> 18) as usize & 63],
                STD[(n >> 12) as usize & 63],
                b'=',
                b'=',
            ]);
        }
        [a, b] => {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8);
            out.extend_from_slice(&[
                STD[(n >> 18) as usize & 63],
                STD[(n >> 12) as usize & 63],
                STD[(n >> 6) as usize & 63],
                b'=',
            ]);
        }
        _ => {}
    }
}

fn sextet(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        // Both alphabets: proto3 JSON parsers accept standard and URL-safe.
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    } as u32)
}

/// Decode standard or URL-safe base64, with or without padding.
pub(super) fn decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    // Strip up to two '=' of padding; if present, the length must be a
    // multiple of 4.
    let pad = b.iter().rev().take(2).take_while(|&&c| c == b'=').count();
    if pad > 0 && !b.len().is_multiple_of(4) {
        return None;
    }
    let b = &b[..b.len() - pad];
    if b.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() * 3 / 4);
    let mut chunks = b.chunks_exact(4);
    for c in &mut chunks {
        let n =
            (sextet(c[0])? << 18) | (sextet(c[1])? << 12) | (sextet(c[2])? << 6) | sextet(c[3])?;
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    match *chunks.remainder() {
        [x, y] => {
            let n = (sextet(x)? << 18) | (sextet(y)? << 12);
            out.push((n >> 16) as u8);
        }
        [x, y, z] => {
            let n = (sextet(x)? << 18) | (sextet(y)? << 12) | (sextet(z)? << 6);
            out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8]);
        }
        _ => {}
    }
    Some(out)
}
