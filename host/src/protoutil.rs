//! Small helpers over Fabric's messages and the clock, as Fabric's protoutil has
//! them: used by the server, the chain and the client alike.

use bytes::Bytes;
use fabric_protos::common::{
    Block, BlockMetadataIndex, ChannelHeader, ConfigEnvelope, Envelope, LastConfig, Metadata,
    Payload,
};
use prost::Message;
use std::time::{SystemTime, UNIX_EPOCH};

/// The channel header, with Fabric's texts for what is missing (protoutil.ChannelHeader).
pub fn channel_header(envelope: &Envelope) -> Result<ChannelHeader, String> {
    let payload = Payload::decode(envelope.payload.clone())
        .map_err(|e| format!("error unmarshalling Payload: {e}"))?;
    let header = payload.header.ok_or("header not set")?;
    if header.channel_header.is_empty() {
        return Err("channel header not set".into());
    }
    ChannelHeader::decode(header.channel_header)
        .map_err(|e| format!("error unmarshalling channel header: {e}"))
}

/// The LAST_CONFIG index a block carries (0 when absent, as in a genesis block).
pub fn last_config(block: &Block) -> u64 {
    let slot = BlockMetadataIndex::LastConfig as usize;
    block
        .metadata
        .as_ref()
        .and_then(|m| m.metadata.get(slot))
        .and_then(|raw| Metadata::decode(raw.clone()).ok())
        .and_then(|m| LastConfig::decode(m.value).ok())
        .map_or(0, |lc| lc.index)
}

/// The CONFIG_UPDATE envelope a CONFIG envelope was made from (its
/// `ConfigEnvelope.last_update`), as Fabric's ProcessConfigMsg reads it; empty when
/// there is none.
pub fn config_update_of(config: &[u8]) -> Bytes {
    Envelope::decode(config)
        .ok()
        .and_then(|e| Payload::decode(e.payload).ok())
        .and_then(|p| ConfigEnvelope::decode(p.data).ok())
        .and_then(|c| c.last_update)
        .map(|u| u.encode_to_vec().into())
        .unwrap_or_default()
}

pub fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Seconds and nanoseconds since the epoch as `2006-01-02T15:04:05.999999999Z`
/// (trailing zeros of the fraction dropped, as Go's RFC3339Nano).
pub fn rfc3339_nano(secs: u64, nanos: u32) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let days = (secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    let fraction = format!(".{nanos:09}");
    let fraction = fraction.trim_end_matches('0').trim_end_matches('.');
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{fraction}Z")
}
