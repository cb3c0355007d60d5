#![no_main]
//! Deliver: a SeekInfo (after an 8-byte little-endian ledger height) decoded and
//! turned into the range of blocks to send, as `deliver::stream_range` does.

use fabric_protos::common::Status;
use fabric_protos::orderer::{SeekInfo, seek_position};
use libfuzzer_sys::fuzz_target;
use orderer::fuzzing::seek_range;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let (height, seek) = data.split_at(data.len().min(8));
    let mut le = [0u8; 8];
    le[..height.len()].copy_from_slice(height);
    let height = u64::from_le_bytes(le);
    let Ok(seek) = SeekInfo::decode(seek) else {
        return;
    };
    let (Some(start), Some(stop)) = (&seek.start, &seek.stop) else {
        return;
    };
    match seek_range(start, stop, height) {
        Ok(range) => {
            if range.found {
                assert!(
                    range.start <= height,
                    "starts past the next block: {range:?}"
                );
            }
            if let Some(seek_position::Type::Specified(s)) = &stop.r#type {
                assert!(s.number >= range.start, "stops before it starts: {range:?}");
            }
        }
        Err(status) => assert_eq!(status, Status::BadRequest),
    }
});
