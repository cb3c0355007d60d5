//! What the fuzz targets (`fuzz/`, `scripts/fuzz.sh`) call that is private to its
//! module otherwise. Built only with the `fuzzing` feature.

use fabric_protos::common::Status;
use fabric_protos::orderer::SeekPosition;

pub use crate::deliver::SeekRange;

/// Deliver's start and stop blocks for a SeekInfo's positions (see `deliver`).
pub fn seek_range(
    start: &SeekPosition,
    stop: &SeekPosition,
    height: u64,
) -> Result<SeekRange, Status> {
    crate::deliver::seek_range(start, stop, height)
}

/// The channel participation API's join request parse (see `channelparticipation`).
pub fn parse_join(content_type: &str, body: &[u8], truncated: bool) -> Result<String, String> {
    crate::channelparticipation::parse_join(content_type, body, truncated)
}
