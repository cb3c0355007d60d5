//! The config parser's errors, displayed with Fabric's (and Go's) texts.

use fabric_protos::common::HeaderType;
use prost::DecodeError;
use thiserror::Error;

use crate::msp::MspError;
use crate::policies::PolicyError;

/// Why a Go duration string did not parse (Go's `time.ParseDuration` texts).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DurationError {
    #[error("time: invalid duration \"{0}\"")]
    Invalid(String),
    #[error("time: missing unit in duration \"{0}\"")]
    MissingUnit(String),
    #[error("time: unknown unit \"{unit}\" in duration \"{text}\"")]
    UnknownUnit { unit: String, text: String },
}

/// Why a config block, CONFIG envelope or `common.Config` is not a channel config
/// this orderer can run.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("error unmarshalling Block: {0}")]
    Block(DecodeError),
    #[error("block contains no data")]
    NoData,
    #[error("error unmarshalling Envelope: {0}")]
    Envelope(DecodeError),
    #[error("error unmarshalling Payload: {0}")]
    Payload(DecodeError),
    #[error("header not set")]
    NoHeader,
    #[error("error unmarshalling ChannelHeader: {0}")]
    ChannelHeader(DecodeError),
    #[error("invalid header type {0}, expected CONFIG ({config})", config = HeaderType::Config as i32)]
    NotConfig(i32),
    #[error("error unmarshalling ConfigEnvelope: {0}")]
    ConfigEnvelope(DecodeError),
    #[error("config envelope has no config")]
    NoConfig,
    #[error("channel ID is empty")]
    EmptyChannelId,
    #[error("config has no channel group")]
    NoChannelGroup,
    #[error("config has no Orderer group")]
    NoOrdererGroup,
    #[error("error unmarshalling config value {key}: {error}")]
    Value {
        key: &'static str,
        error: DecodeError,
    },
    /// Fabric's `Supported()` check; `kind` is "Channel" or "Orderer".
    #[error("{kind} capability {capability} is required but not supported")]
    UnsupportedCapability {
        kind: &'static str,
        capability: String,
    },
    #[error("Orderer group has no {0} value")]
    MissingOrdererValue(&'static str),
    #[error("Attempted to set the batch size max message count to an invalid value: 0")]
    ZeroMaxMessageCount,
    #[error("Attempted to set the batch size absolute max bytes to an invalid value: 0")]
    ZeroAbsoluteMaxBytes,
    #[error("Attempted to set the batch size preferred max bytes to an invalid value: 0")]
    ZeroPreferredMaxBytes,
    #[error(
        "Attempted to set the batch size preferred max bytes ({preferred}) greater than the absolute max bytes ({absolute})."
    )]
    PreferredAboveAbsolute { preferred: u32, absolute: u32 },
    #[error("Attempted to set the batch timeout to a invalid value: {0}")]
    BatchTimeout(DurationError),
    #[error("Attempted to set the batch timeout to a non-positive value: {0}")]
    NonPositiveBatchTimeout(String),
    #[error("org {0} has no MSP value")]
    NoOrgMsp(String),
    #[error("org {org}: {error}")]
    OrgMsp { org: String, error: MspError },
    #[error(transparent)]
    Msp(#[from] MspError),
    #[error("initializing policymanager failed: {0}")]
    Policies(PolicyError),
}
