//! Small helpers over Fabric's messages and the clock, as Fabric's protoutil has
//! them: used by the server, the chain and the client alike.

use fabric_protos::common::{
    Block, BlockMetadataIndex, ChannelHeader, Envelope, LastConfig, Metadata, Payload,
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

pub fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
