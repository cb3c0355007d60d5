#![no_main]
//! The channel participation API's join request: a Content-Type (Go's media type
//! parser) and a multipart/form-data body (Go's form reader), up to the join block's
//! checks. Input: a flags byte (bit 0: the body went over the size limit), the
//! Content-Type up to the first newline, then the body.

use libfuzzer_sys::fuzz_target;
use orderer::fuzzing::parse_join;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (content_type, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    // As the handler reads the header value.
    let content_type = String::from_utf8_lossy(content_type);
    let _ = parse_join(&content_type, body, flags & 1 != 0);
});
