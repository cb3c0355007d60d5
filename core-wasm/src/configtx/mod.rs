//! Config updates: Fabric's `common/configtx` (`ValidatorImpl.ProposeConfigUpdate` and
//! `Validate`) and the config parts of `orderer/common/msgprocessor/standardchannel.go`
//! (`ProcessConfigUpdateMsg`, `ProcessConfigMsg`) and `multichannel.ChainSupport`.
//!
//! A CONFIG_UPDATE envelope carries a `ConfigUpdateEnvelope` { `ConfigUpdate` bytes,
//! `ConfigSignature`s }. The update's read set must match the versions of the current
//! config; every element of the write set whose version differs from the read set's
//! (the delta set) must be the current version + 1 (or version 0 for a new element),
//! and the mod_policy of the element it replaces must be satisfied by the config
//! signatures. The delta set overlaid on the current config gives the next config, at
//! sequence + 1. As in Fabric, a new element needs no policy of its own: it only
//! appears in the result if its parent group is in the delta set too (a group's
//! members are those of the group that wins at its path), so the parent's mod_policy
//! decides.
//!
//! Fabric walks Go maps in random order; we walk keys sorted, so when an update breaks
//! several rules the one reported is the first by key.

mod configmap;
mod error;
mod maintenance;
#[cfg(test)]
pub(crate) mod testkit;
mod update;

use bytes::Bytes;
use fabric_protos::common::{
    Config, ConfigEnvelope, ConfigUpdateEnvelope, Envelope, HeaderType, Payload,
};
use prost::Message;

use crate::config::ChannelConfig;
use crate::crypto::Crypto;
use crate::filters::{self, ParsedEnvelope};
use crate::rejection::Rejection;
use maintenance::inspect_maintenance;
use update::authorize_update;
pub(crate) use update::validate_new;

pub use error::{ChannelIdError, ConfigTxError};

/// The config tree's root group key (Fabric's `channelconfig.RootGroupKey`).
pub const ROOT_GROUP: &str = "Channel";

/// Fabric's `configtx.MaxLength` of a channel name.
pub const MAX_CHANNEL_ID_LENGTH: usize = 249;

/// Fabric's channel name rule (`configtx.ValidateChannelID`): `[a-z][a-z0-9.-]*`, at
/// most 249 characters.
pub fn validate_channel_id(channel_id: &str) -> Result<(), ChannelIdError> {
    let mut chars = channel_id.chars();
    let Some(first) = chars.next() else {
        return Err(ChannelIdError::Empty);
    };
    if channel_id.len() > MAX_CHANNEL_ID_LENGTH {
        return Err(ChannelIdError::TooLong);
    }
    let rest_ok = chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '.' | '-'));
    if !first.is_ascii_lowercase() || !rest_ok {
        return Err(ChannelIdError::IllegalCharacters(channel_id.to_string()));
    }
    Ok(())
}

/// The Go name of a header type (`cb.HeaderType.String()`).
fn header_type_name(t: i32) -> String {
    HeaderType::try_from(t)
        .map(|h| h.as_str_name().to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// Fabric's `protoutil.UnmarshalEnvelopeOfType`: the channel id and the payload data.
pub(crate) fn unmarshal_envelope_of_type(
    envelope: &Envelope,
    header_type: HeaderType,
) -> Result<(String, Bytes), ConfigTxError> {
    let payload = Payload::decode(envelope.payload.as_ref()).map_err(ConfigTxError::Payload)?;
    let Some(header) = payload.header.as_ref() else {
        return Err(ConfigTxError::NoHeader);
    };
    let chdr = fabric_protos::common::ChannelHeader::decode(header.channel_header.as_ref())
        .map_err(ConfigTxError::ChannelHeader)?;
    if chdr.r#type != header_type as i32 {
        return Err(ConfigTxError::WrongType {
            actual: chdr.r#type,
            expected: header_type,
        });
    }
    Ok((chdr.channel_id, payload.data))
}

/// Fabric's `protoutil.EnvelopeToConfigUpdate`.
fn envelope_to_config_update(envelope: &Envelope) -> Result<ConfigUpdateEnvelope, ConfigTxError> {
    let (_, data) = unmarshal_envelope_of_type(envelope, HeaderType::ConfigUpdate)?;
    ConfigUpdateEnvelope::decode(data).map_err(|error| ConfigTxError::Message {
        kind: HeaderType::ConfigUpdate,
        error,
    })
}

fn apply_error(config: &ChannelConfig, e: impl std::fmt::Display) -> Rejection {
    Rejection::bad_request(format!(
        "error applying config update to existing channel '{}': {e}",
        config.channel_id
    ))
}

/// The next config from a CONFIG_UPDATE envelope (`envelope`, already through the
/// Broadcast filters): Fabric's `ChainSupport.ProposeConfigUpdate`, i.e.
/// `ValidatorImpl.ProposeConfigUpdate` then the new bundle's checks. The result has
/// `config.sequence` = current + 1 and `last_update` = the envelope. Errors are
/// BAD_REQUEST, worded as Fabric's Broadcast answers them (`error applying config
/// update to existing channel '<id>': ...`).
pub fn propose_config_update(
    config: &ChannelConfig,
    envelope: &[u8],
    now_unix_nanos: u64,
    crypto: &dyn Crypto,
) -> Result<ConfigEnvelope, Rejection> {
    let envelope = Envelope::decode(envelope)
        .map_err(|e| apply_error(config, format!("error unmarshalling Envelope: {e}")))?;
    let next = propose(config, &envelope, now_unix_nanos, crypto)?;
    Ok(ConfigEnvelope {
        config: Some(next),
        last_update: Some(envelope),
    })
}

/// The config `envelope` (a CONFIG_UPDATE) leads to, checked as a new channel config.
fn propose(
    config: &ChannelConfig,
    envelope: &Envelope,
    now_unix_nanos: u64,
    crypto: &dyn Crypto,
) -> Result<Config, Rejection> {
    let update_env = envelope_to_config_update(envelope).map_err(|e| {
        apply_error(
            config,
            format!("error converting envelope to config update: {e}"),
        )
    })?;
    let channel_group = authorize_update(config, &update_env, now_unix_nanos, crypto)
        .map_err(|e| apply_error(config, e))?;
    let next = next_config(config, channel_group);
    // CreateBundle, checkResources, ValidateNew.
    ChannelConfig::from_config(&config.channel_id, &next, crypto)
        .map_err(|e| apply_error(config, e))?;
    validate_new(&config.config, &next).map_err(|e| apply_error(config, e))?;
    Ok(next)
}

fn next_config(
    config: &ChannelConfig,
    channel_group: fabric_protos::common::ConfigGroup,
) -> Config {
    Config {
        sequence: config.sequence.wrapping_add(1),
        channel_group: Some(channel_group),
    }
}

/// Fabric's `ValidatorImpl.ProposeConfigUpdate` alone, without the new bundle's
/// checks (what channel creation runs on its template): the config the CONFIG_UPDATE
/// `envelope` leads to from `config`, at sequence + 1, or Fabric's text.
pub(crate) fn propose_unchecked(
    config: &ChannelConfig,
    envelope: &Envelope,
    now_unix_nanos: u64,
    crypto: &dyn Crypto,
) -> Result<Config, String> {
    let update_env = envelope_to_config_update(envelope)
        .map_err(|e| format!("error converting envelope to config update: {e}"))?;
    let channel_group = authorize_update(config, &update_env, now_unix_nanos, crypto)?;
    Ok(next_config(config, channel_group))
}

/// `msgprocessor.CreateStandardChannelFilters` applied to an envelope made by the
/// orderer or carried inside one: empty, size, expiration, signature (the
/// `/Channel/Writers` policy; `/Channel/Orderer/Writers` in maintenance mode).
fn apply_filters(
    config: &ChannelConfig,
    parsed: &ParsedEnvelope,
    now_unix_nanos: u64,
    crypto: &dyn Crypto,
) -> Result<(), Rejection> {
    filters::apply_filters(config, parsed, now_unix_nanos, crypto).map(drop)
}

fn with_message(r: Rejection, message: &str) -> Rejection {
    Rejection::new(r.status, format!("{message}: {}", r.info))
}

/// A CONFIG envelope taken apart: its `ConfigEnvelope` and the config's sequence.
pub struct ConfigMessage {
    pub config_envelope: ConfigEnvelope,
    pub config: Config,
}

/// Decodes a CONFIG envelope's `ConfigEnvelope` (Fabric's
/// `UnmarshalEnvelopeOfType(env, CONFIG, configEnvelope)`).
pub fn config_message(envelope: &Envelope) -> Result<ConfigMessage, ConfigTxError> {
    let (_, data) = unmarshal_envelope_of_type(envelope, HeaderType::Config)?;
    let config_envelope = ConfigEnvelope::decode(data).map_err(|error| ConfigTxError::Message {
        kind: HeaderType::Config,
        error,
    })?;
    let config = config_envelope
        .config
        .clone()
        .ok_or(ConfigTxError::NilConfig)?;
    Ok(ConfigMessage {
        config_envelope,
        config,
    })
}

/// Fabric's `ValidatorImpl.Validate` sequence rule.
pub fn check_next_sequence(config: &ChannelConfig, next: &Config) -> Result<(), ConfigTxError> {
    if next.sequence != config.sequence.wrapping_add(1) {
        return Err(ConfigTxError::Sequence {
            current: config.sequence,
            next: next.sequence,
        });
    }
    Ok(())
}

/// Checks a CONFIG envelope signed by the orderer before it is ordered, as Fabric's
/// `StandardChannel.ProcessConfigMsg` does (it re-processes the `last_update`): the
/// last update passes the filters ("initial checks") and produces exactly the
/// envelope's config at sequence current + 1 (`ValidatorImpl.Validate`), then the
/// CONFIG envelope itself passes the filters ("final checks"; the orderer is a
/// Writer) and the maintenance rules. Errors are BAD_REQUEST, or FORBIDDEN when a
/// signature policy is not satisfied.
pub fn validate_config(
    config: &ChannelConfig,
    envelope: &[u8],
    now_unix_nanos: u64,
    crypto: &dyn Crypto,
) -> Result<(), Rejection> {
    let parsed = filters::parse_envelope(envelope)?;
    if parsed.channel_header.channel_id != config.channel_id {
        return Err(Rejection::bad_request(filters::ERR_NO_SYSTEM_CHANNEL));
    }
    let message =
        config_message(&parsed.envelope).map_err(|e| Rejection::bad_request(e.to_string()))?;
    let Some(last_update) = message.config_envelope.last_update.as_ref() else {
        return Err(Rejection::bad_request(
            "updated config does not include a config update",
        ));
    };
    let last_update_parsed = filters::parse_envelope_bytes(last_update.encode_to_vec().into())
        .map_err(|r| {
            with_message(
                r,
                "config update for existing channel did not pass initial checks",
            )
        })?;
    apply_filters(config, &last_update_parsed, now_unix_nanos, crypto).map_err(|r| {
        with_message(
            r,
            "config update for existing channel did not pass initial checks",
        )
    })?;
    check_next_sequence(config, &message.config)
        .map_err(|e| Rejection::bad_request(e.to_string()))?;
    let expected = propose(config, last_update, now_unix_nanos, crypto)?;
    if expected != message.config {
        return Err(Rejection::bad_request(
            "ConfigEnvelope LastUpdate did not produce the supplied config result",
        ));
    }
    apply_filters(config, &parsed, now_unix_nanos, crypto).map_err(|r| {
        with_message(
            r,
            "config update for existing channel did not pass final checks",
        )
    })?;
    let next = ChannelConfig::from_config(&config.channel_id, &message.config, crypto)
        .map_err(|e| Rejection::bad_request(e.to_string()))?;
    inspect_maintenance(config, &next, &message.config_envelope).map_err(|e| {
        Rejection::bad_request(format!(
            "config update for existing channel did not pass maintenance checks: config transaction inspection failed: {e}"
        ))
    })
}

#[cfg(test)]
mod tests;
