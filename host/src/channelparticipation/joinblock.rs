//! Fabric's `ValidateJoinBlock`: whether a block can join a channel, before the
//! registrar is asked.

use crate::multichannel::{ChannelIdError, validate_channel_id};
use fabric_protos::common::{Block, ChannelHeader, Envelope, HeaderType, Payload};
use ordering_core::NativeCrypto;
use ordering_core::config::{ChannelConfig, ConfigError};
use prost::Message;

/// Why a block cannot be a join block (Fabric's texts; the config's own errors are
/// the core's config parser's).
#[derive(Debug, thiserror::Error)]
pub enum JoinBlockError {
    #[error("block is not a config block")]
    NotConfigBlock,
    #[error(transparent)]
    Config(ConfigError),
    #[error("initializing configtx manager failed: bad channel ID: {0}")]
    ChannelId(ChannelIdError),
    #[error("invalid config: must have at least one of application or consortiums")]
    NoApplicationOrConsortiums,
}

/// The channel a join block is for: a config block of an application channel or
/// of a system channel (with consortiums).
pub fn validate_join_block(block: &Block) -> Result<String, JoinBlockError> {
    let envelope = config_envelope(block).ok_or(JoinBlockError::NotConfigBlock)?;
    let config = ChannelConfig::from_config_envelope(envelope, &NativeCrypto)
        .map_err(JoinBlockError::Config)?;
    validate_channel_id(&config.channel_id).map_err(JoinBlockError::ChannelId)?;
    let groups = config
        .config
        .channel_group
        .as_ref()
        .map(|g| &g.groups)
        .ok_or(JoinBlockError::NoApplicationOrConsortiums)?;
    if !groups.contains_key("Consortiums") && !groups.contains_key("Application") {
        return Err(JoinBlockError::NoApplicationOrConsortiums);
    }
    Ok(config.channel_id)
}

/// Fabric's `protoutil.IsConfigBlock`: one envelope whose channel header is of type
/// CONFIG or ORDERER_TRANSACTION; that envelope.
fn config_envelope(block: &Block) -> Option<&[u8]> {
    let [envelope] = block.data.as_ref()?.data.as_slice() else {
        return None;
    };
    let payload = Payload::decode(Envelope::decode(envelope.as_ref()).ok()?.payload).ok()?;
    let chdr = ChannelHeader::decode(payload.header?.channel_header).ok()?;
    let kind = HeaderType::try_from(chdr.r#type).ok()?;
    matches!(kind, HeaderType::Config | HeaderType::OrdererTransaction).then_some(envelope.as_ref())
}
