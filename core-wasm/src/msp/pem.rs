//! PEM, as lenient as Go's `encoding/pem`, with base64ct for the base64.
//!
//! The framing stays by hand: pem-rfc7468 wants the block to be the whole input, with
//! 64-column lines and no headers, where Go's `pem.Decode` (Fabric's) takes text around
//! the block, several blocks, any line width and RFC 1421 headers.

use base64ct::{Base64, Encoding};

/// Decodes the first PEM block found in `data`, whatever its type, like Go's
/// `pem.Decode` (text before the block is skipped; RFC 1421 headers are ignored).
pub fn pem_decode(data: &[u8]) -> Option<Vec<u8>> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let start = find(data, BEGIN)?;
    let after_begin = &data[start + BEGIN.len()..];
    let type_end = find(after_begin, b"-----")?;
    let label = &after_begin[..type_end];
    if label.contains(&b'\n') {
        return None;
    }
    let body = &after_begin[type_end + 5..];
    let mut end_marker = b"-----END ".to_vec();
    end_marker.extend_from_slice(label);
    end_marker.extend_from_slice(b"-----");
    let end = find(body, &end_marker)?;
    let body = &body[..end];
    // Skip RFC 1421 headers ("Key: value" lines followed by a blank line).
    let body = match find(body, b":") {
        Some(_) => {
            let text = body;
            match find(text, b"\n\n").or_else(|| find(text, b"\r\n\r\n")) {
                Some(pos) => &text[pos..],
                None => text,
            }
        }
        None => body,
    };
    base64_decode(body)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Standard base64 with padding; ASCII whitespace is ignored (Go's `pem.Decode`
/// drops spaces, tabs and line breaks).
pub(super) fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut buf: Vec<u8> = text
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let len = Base64::decode_in_place(&mut buf).ok()?.len();
    buf.truncate(len);
    Some(buf)
}
