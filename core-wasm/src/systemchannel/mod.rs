//! The orderer system channel (Fabric 2.x's `msgprocessor/systemchannel.go` and
//! `systemchannelfilter.go`): channel creation.
//!
//! A CONFIG_UPDATE for a channel that does not exist is a creation request. It is
//! applied to a template built from the system channel's config (see [`template`]);
//! its config signatures must satisfy the consortium's `ChannelCreationPolicy`. The
//! request's own envelope signature and creator are not checked, as in Fabric. The
//! result is the new channel's first `ConfigEnvelope` (sequence 1, `last_update` = the
//! request). The host signs it into a CONFIG envelope of the new channel and wraps
//! that in an ORDERER_TRANSACTION of the system channel. Before it is ordered, the
//! system channel's filters run on that transaction: the standard four, then the
//! SystemChainFilter, which builds the new config again from the request and
//! compares.

mod template;

use fabric_protos::common::{ConfigEnvelope, Envelope, HeaderType, Payload};
use prost::Message;

use crate::config::ChannelConfig;
use crate::configtx::{self, propose_unchecked, unmarshal_envelope_of_type, validate_new};
use crate::crypto::Crypto;
use crate::filters::{self, ERR_MAINTENANCE_MODE};
use crate::rejection::Rejection;
use template::new_channel_config;

/// Fabric's `SystemChannel.ProcessConfigUpdateMsg` for a new channel: the new
/// channel's first `ConfigEnvelope`, or why not (BAD_REQUEST with Fabric's text).
pub fn propose_channel_creation(
    system: &ChannelConfig,
    envelope: &[u8],
    now_unix_nanos: u64,
    crypto: &dyn Crypto,
) -> Result<ConfigEnvelope, Rejection> {
    let envelope = Envelope::decode(envelope)
        .map_err(|e| Rejection::bad_request(format!("error unmarshalling Envelope: {e}")))?;
    let template = new_channel_config(system, &envelope, crypto).map_err(Rejection::bad_request)?;
    let config = propose_unchecked(&template, &envelope, now_unix_nanos, crypto).map_err(|e| {
        Rejection::bad_request(format!(
            "error validating channel creation transaction for new channel '{}', could not successfully apply update to template configuration: {e}",
            template.channel_id
        ))
    })?;
    Ok(ConfigEnvelope {
        config: Some(config),
        last_update: Some(envelope),
    })
}

/// The system channel's filters (`CreateSystemChannelFilters`) for an
/// ORDERER_TRANSACTION the orderer made: empty, size, expiration, signature, then the
/// SystemChainFilter. `channels` is how many channels the orderer has, the system
/// channel included (Fabric's `ChannelsCount`, checked against MaxChannels).
pub fn validate_orderer_transaction(
    system: &ChannelConfig,
    envelope: &[u8],
    channels: u64,
    now_unix_nanos: u64,
    crypto: &dyn Crypto,
) -> Result<(), Rejection> {
    let parsed = filters::parse_envelope(envelope)?;
    if parsed.channel_header.channel_id != system.channel_id {
        return Err(Rejection::bad_request(filters::ERR_NO_SYSTEM_CHANNEL));
    }
    if parsed.channel_header.r#type != HeaderType::OrdererTransaction as i32 {
        return Err(Rejection::bad_request(
            "not an ORDERER_TRANSACTION of the system channel",
        ));
    }
    filters::apply_filters(system, &parsed, now_unix_nanos, crypto)?;
    system_chain_filter(system, &parsed.payload, channels, now_unix_nanos, crypto)
        .map_err(Rejection::bad_request)
}

/// Fabric's `SystemChainFilter.Apply` for an ORDERER_TRANSACTION's payload.
fn system_chain_filter(
    system: &ChannelConfig,
    payload: &Payload,
    channels: u64,
    now_unix_nanos: u64,
    crypto: &dyn Crypto,
) -> Result<(), String> {
    // Strictly greater: the system channel is one of them.
    if system.max_channels > 0 && channels > system.max_channels {
        return Err(format!(
            "channel creation would exceed maximimum number of channels: {}",
            system.max_channels
        ));
    }
    if system.consensus.maintenance {
        return Err(format!(
            "channel creation is not permitted: {ERR_MAINTENANCE_MODE}"
        ));
    }
    let config_tx = Envelope::decode(payload.data.as_ref())
        .map_err(|e| format!("payload data error unmarshalling to envelope: {e}"))?;
    authorize_and_inspect(system, &config_tx, now_unix_nanos, crypto)
}

/// Fabric's `SystemChainFilter.authorizeAndInspect`: the wrapped CONFIG envelope
/// holds exactly the config its `last_update` creates, and that config is one a
/// channel can run.
fn authorize_and_inspect(
    system: &ChannelConfig,
    config_tx: &Envelope,
    now_unix_nanos: u64,
    crypto: &dyn Crypto,
) -> Result<(), String> {
    let (_, data) =
        unmarshal_envelope_of_type(config_tx, HeaderType::Config).map_err(|e| match e {
            configtx::ConfigTxError::WrongType { .. } => {
                "wrapped configtx envelope not a config transaction".to_string()
            }
            configtx::ConfigTxError::NoHeader => "wrapped configtx envelope missing header".into(),
            other => format!("error unmarshalling wrapped configtx envelope: {other}"),
        })?;
    let config_envelope = ConfigEnvelope::decode(data).map_err(|e| {
        format!("error unmarshalling wrapped configtx config envelope from payload: {e}")
    })?;
    let Some(last_update) = config_envelope.last_update.as_ref() else {
        return Err("updated config does not include a config update".into());
    };
    let template = new_channel_config(system, last_update, crypto)
        .map_err(|e| format!("error constructing new channel config from update: {e}"))?;
    let proposed = propose_unchecked(&template, last_update, now_unix_nanos, crypto)
        .map_err(|e| format!("error proposing channel update to new channel config: {e}"))?;
    if config_envelope.config.as_ref() != Some(&proposed) {
        return Err("config proposed by the channel creation request did not match the config received with the channel creation request".into());
    }
    ChannelConfig::from_config(&template.channel_id, &proposed, crypto)
        .map_err(|e| format!("config does not validly parse: {e}"))?;
    validate_new(&template.config, &proposed).map_err(|e| format!("new bundle invalid: {e}"))
}

#[cfg(test)]
mod tests;
