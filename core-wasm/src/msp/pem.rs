//! PEM and base64, as lenient as Go's `encoding/pem`.

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

/// Standard base64 with padding; ASCII whitespace is ignored.
pub(super) fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some((c - b'A') as u32),
            b'a'..=b'z' => Some((c - b'a' + 26) as u32),
            b'0'..=b'9' => Some((c - b'0' + 52) as u32),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    let mut padding = 0usize;
    for &c in text {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return None; // data after padding
        }
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if padding > 2 || bits >= 6 {
        return None;
    }
    Some(out)
}
