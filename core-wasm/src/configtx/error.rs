//! The errors of config messages, displayed with Fabric's texts.

use fabric_protos::common::HeaderType;
use prost::DecodeError;
use thiserror::Error;

use super::header_type_name;

/// Why an envelope is not the config message it should be, or a config not the
/// next one.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigTxError {
    #[error("error unmarshalling Payload: {0}")]
    Payload(DecodeError),
    #[error("envelope must have a Header")]
    NoHeader,
    #[error("error unmarshalling ChannelHeader: {0}")]
    ChannelHeader(DecodeError),
    #[error("invalid type {}, expected {}", header_type_name(*actual), expected.as_str_name())]
    WrongType { actual: i32, expected: HeaderType },
    #[error("error unmarshalling message for type {}: {error}", kind.as_str_name())]
    Message {
        kind: HeaderType,
        error: DecodeError,
    },
    #[error("config envelope has nil config")]
    NilConfig,
    /// Fabric's `ValidatorImpl.Validate` sequence rule.
    #[error("config currently at sequence {current}, cannot validate config at sequence {next}")]
    Sequence { current: u64, next: u64 },
}

/// Why a channel name is not one Fabric allows (`configtx.ValidateChannelID` texts).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ChannelIdError {
    #[error("channel ID illegal, cannot be empty")]
    Empty,
    #[error(
        "channel ID illegal, cannot be longer than {}",
        super::MAX_CHANNEL_ID_LENGTH
    )]
    TooLong,
    #[error("'{0}' contains illegal characters")]
    IllegalCharacters(String),
}
