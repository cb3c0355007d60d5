//! A channel's configuration as the ordering core needs it, read from a config block
//! or a CONFIG envelope (Fabric's `common/channelconfig`, the parts the orderer uses).
//!
//! The config tree: `/Channel` (values `Capabilities`, `HashingAlgorithm`, ...), its
//! `Orderer` group (values `ConsensusType`, `BatchSize`, `BatchTimeout`,
//! `Capabilities`; one group per org with an `MSP` value) and its `Application` group
//! (value `Capabilities`; one group per org with an `MSP` value). A system channel has
//! a `Consortiums` group instead of `Application`: one group per consortium (value
//! `ChannelCreationPolicy`), each with its org groups.

mod duration;
mod error;
#[cfg(any(test, feature = "testkit"))]
#[doc(hidden)]
pub mod testkit;

use bytes::Bytes;
use fabric_protos::common::{
    Block, Capabilities, ChannelHeader, Config, ConfigEnvelope, ConfigGroup, Envelope, HeaderType,
    Payload,
};
use fabric_protos::msp::MspConfig;
use fabric_protos::orderer::{self as ab, consensus_type};
use prost::Message;

use crate::crypto::Crypto;
use crate::msp::MspManager;
use crate::policies::PolicyManager;

pub use duration::parse_go_duration;
pub use error::{ConfigError, DurationError};

const ORDERER_GROUP: &str = "Orderer";
const APPLICATION_GROUP: &str = "Application";
pub(crate) const CONSORTIUMS_GROUP: &str = "Consortiums";
const CHANNEL_RESTRICTIONS_KEY: &str = "ChannelRestrictions";
const CAPABILITIES_KEY: &str = "Capabilities";
const CONSENSUS_TYPE_KEY: &str = "ConsensusType";
const BATCH_SIZE_KEY: &str = "BatchSize";
const BATCH_TIMEOUT_KEY: &str = "BatchTimeout";
const MSP_KEY: &str = "MSP";

/// Channel capabilities this orderer supports (Fabric v2.5 `capabilities/channel.go`).
const SUPPORTED_CHANNEL_CAPABILITIES: &[&str] = &["V1_1", "V1_3", "V1_4_2", "V1_4_3", "V2_0"];
/// Orderer capabilities this orderer supports (Fabric v2.5 `capabilities/orderer.go`).
const SUPPORTED_ORDERER_CAPABILITIES: &[&str] = &["V1_1", "V1_4_2", "V2_0"];

/// `Orderer/BatchSize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSize {
    pub max_message_count: u32,
    pub absolute_max_bytes: u32,
    pub preferred_max_bytes: u32,
}

/// `Orderer/ConsensusType`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consensus {
    /// "solo", "etcdraft", "BFT", ...
    pub kind: String,
    /// `state == STATE_MAINTENANCE`.
    pub maintenance: bool,
    /// The raw `ConsensusType.metadata` (etcdraft: `etcdraft.ConfigMetadata`).
    pub metadata: Bytes,
}

/// The parsed config of one channel.
#[derive(Clone, Debug)]
pub struct ChannelConfig {
    pub channel_id: String,
    /// `Config.sequence`.
    pub sequence: u64,
    pub batch_size: BatchSize,
    /// `Orderer/BatchTimeout`, a Go duration string, in milliseconds (rounded up to a
    /// whole millisecond).
    pub batch_timeout_ms: u64,
    pub consensus: Consensus,
    pub channel_capabilities: Vec<String>,
    pub orderer_capabilities: Vec<String>,
    pub application_capabilities: Vec<String>,
    /// Every org MSP of the Orderer and Application groups.
    pub msps: MspManager,
    /// MSP ids of the orgs of the Orderer group, sorted by org name.
    pub orderer_org_ids: Vec<String>,
    /// MSP ids of the orgs of the Application group, sorted by org name.
    pub application_org_ids: Vec<String>,
    /// Every policy of the config, by absolute path.
    pub policies: PolicyManager,
    /// `Orderer/ChannelRestrictions.max_count`: how many channels a system channel
    /// may create (0: no limit).
    pub max_channels: u64,
    /// The decoded `common.Config` this was parsed from.
    pub config: Config,
}

impl ChannelConfig {
    /// From an encoded `common.Block` whose `data[0]` is a CONFIG envelope (a genesis
    /// block or a later config block).
    pub fn from_config_block(block: &[u8], crypto: &dyn Crypto) -> Result<Self, ConfigError> {
        let block = Block::decode(block).map_err(ConfigError::Block)?;
        let envelope = block
            .data
            .as_ref()
            .and_then(|d| d.data.first())
            .ok_or(ConfigError::NoData)?;
        Self::from_config_envelope(envelope, crypto)
    }

    /// From an encoded `common.Envelope` of type CONFIG.
    pub fn from_config_envelope(envelope: &[u8], crypto: &dyn Crypto) -> Result<Self, ConfigError> {
        let envelope = Envelope::decode(envelope).map_err(ConfigError::Envelope)?;
        let payload = Payload::decode(envelope.payload.as_ref()).map_err(ConfigError::Payload)?;
        let header = payload.header.as_ref().ok_or(ConfigError::NoHeader)?;
        let chdr = ChannelHeader::decode(header.channel_header.as_ref())
            .map_err(ConfigError::ChannelHeader)?;
        if chdr.r#type != HeaderType::Config as i32 {
            return Err(ConfigError::NotConfig(chdr.r#type));
        }
        let config_envelope =
            ConfigEnvelope::decode(payload.data.as_ref()).map_err(ConfigError::ConfigEnvelope)?;
        let config = config_envelope.config.ok_or(ConfigError::NoConfig)?;
        Self::from_config(&chdr.channel_id, &config, crypto)
    }

    /// From a decoded `common.Config` of channel `channel_id`.
    pub fn from_config(
        channel_id: &str,
        config: &Config,
        crypto: &dyn Crypto,
    ) -> Result<Self, ConfigError> {
        if channel_id.is_empty() {
            return Err(ConfigError::EmptyChannelId);
        }
        let channel = config
            .channel_group
            .as_ref()
            .ok_or(ConfigError::NoChannelGroup)?;

        let channel_capabilities = capabilities(channel)?;
        let orderer = channel
            .groups
            .get(ORDERER_GROUP)
            .ok_or(ConfigError::NoOrdererGroup)?;
        let orderer_capabilities = capabilities(orderer)?;
        let application = channel.groups.get(APPLICATION_GROUP);
        let application_capabilities = match application {
            Some(group) => capabilities(group)?,
            None => Vec::new(),
        };
        check_supported(
            "Channel",
            &channel_capabilities,
            SUPPORTED_CHANNEL_CAPABILITIES,
        )?;
        check_supported(
            "Orderer",
            &orderer_capabilities,
            SUPPORTED_ORDERER_CAPABILITIES,
        )?;

        let consensus_type: ab::ConsensusType = value(orderer, CONSENSUS_TYPE_KEY)?
            .ok_or(ConfigError::MissingOrdererValue(CONSENSUS_TYPE_KEY))?;
        let consensus = Consensus {
            kind: consensus_type.r#type.clone(),
            maintenance: consensus_type.state == consensus_type::State::Maintenance as i32,
            metadata: consensus_type.metadata.clone(),
        };

        let bs: ab::BatchSize = value(orderer, BATCH_SIZE_KEY)?
            .ok_or(ConfigError::MissingOrdererValue(BATCH_SIZE_KEY))?;
        let batch_size = validate_batch_size(bs)?;

        let timeout: ab::BatchTimeout = value(orderer, BATCH_TIMEOUT_KEY)?
            .ok_or(ConfigError::MissingOrdererValue(BATCH_TIMEOUT_KEY))?;
        let timeout_nanos =
            parse_go_duration(&timeout.timeout).map_err(ConfigError::BatchTimeout)?;
        if timeout_nanos <= 0 {
            return Err(ConfigError::NonPositiveBatchTimeout(timeout.timeout));
        }
        let batch_timeout_ms = (timeout_nanos as u64).div_ceil(1_000_000);

        let mut msp_configs = Vec::new();
        let orderer_org_ids = org_msps(orderer, &mut msp_configs)?;
        let application_org_ids = match application {
            Some(group) => org_msps(group, &mut msp_configs)?,
            None => Vec::new(),
        };
        // As Fabric's channelconfig: a system channel knows the consortiums' MSPs too.
        if let Some(consortiums) = channel.groups.get(CONSORTIUMS_GROUP) {
            for consortium in consortiums.groups.values() {
                org_msps(consortium, &mut msp_configs)?;
            }
        }
        let max_channels = value::<ab::ChannelRestrictions>(orderer, CHANNEL_RESTRICTIONS_KEY)?
            .map_or(0, |r| r.max_count);
        let msps = MspManager::new(&msp_configs, crypto)?;
        let policies = PolicyManager::from_channel_group(channel).map_err(ConfigError::Policies)?;

        Ok(ChannelConfig {
            channel_id: channel_id.to_string(),
            sequence: config.sequence,
            batch_size,
            batch_timeout_ms,
            consensus,
            channel_capabilities,
            orderer_capabilities,
            application_capabilities,
            msps,
            orderer_org_ids,
            application_org_ids,
            policies,
            max_channels,
            config: config.clone(),
        })
    }

    /// Whether this is an orderer system channel (Fabric's `ConsortiumsConfig()` ok).
    pub fn is_system_channel(&self) -> bool {
        (self.config.channel_group.as_ref())
            .is_some_and(|g| g.groups.contains_key(CONSORTIUMS_GROUP))
    }

    fn has_orderer_capability(&self, names: &[&str]) -> bool {
        self.orderer_capabilities
            .iter()
            .any(|c| names.contains(&c.as_str()))
    }

    /// Whether expiration checks apply (Fabric's `ExpirationCheck()`: orderer
    /// capability V1_1 or later).
    pub fn expiration_check(&self) -> bool {
        self.has_orderer_capability(&["V1_1", "V1_4_2", "V2_0"])
    }

    /// Fabric's `ConsensusTypeMigration()`: orderer capability V1_4_2 or later. With it,
    /// normal messages are refused in maintenance mode.
    pub fn consensus_type_migration(&self) -> bool {
        self.has_orderer_capability(&["V1_4_2", "V2_0"])
    }

    /// Number of consenters if the consensus type is etcdraft, else `None` (also when
    /// the metadata does not decode).
    pub fn etcdraft_consenters(&self) -> Option<usize> {
        if self.consensus.kind != "etcdraft" {
            return None;
        }
        fabric_protos::orderer::etcdraft::ConfigMetadata::decode(self.consensus.metadata.as_ref())
            .ok()
            .map(|m| m.consenters.len())
    }
}

/// Decodes the value `key` of `group`, `None` when absent.
fn value<M: Message + Default>(
    group: &ConfigGroup,
    key: &'static str,
) -> Result<Option<M>, ConfigError> {
    match group.values.get(key) {
        None => Ok(None),
        Some(v) => M::decode(v.value.as_ref())
            .map(Some)
            .map_err(|error| ConfigError::Value { key, error }),
    }
}

/// The capability names of a group's `Capabilities` value, sorted.
fn capabilities(group: &ConfigGroup) -> Result<Vec<String>, ConfigError> {
    Ok(value::<Capabilities>(group, CAPABILITIES_KEY)?
        .map(|c| c.capabilities.into_keys().collect())
        .unwrap_or_default())
}

/// Fabric's `Supported()` check, done when a channel is created or joined.
fn check_supported(
    kind: &'static str,
    required: &[String],
    supported: &[&str],
) -> Result<(), ConfigError> {
    match required.iter().find(|c| !supported.contains(&c.as_str())) {
        Some(c) => Err(ConfigError::UnsupportedCapability {
            kind,
            capability: c.clone(),
        }),
        None => Ok(()),
    }
}

/// Fabric's `validateBatchSize` (`common/channelconfig/orderer.go`).
fn validate_batch_size(bs: ab::BatchSize) -> Result<BatchSize, ConfigError> {
    if bs.max_message_count == 0 {
        return Err(ConfigError::ZeroMaxMessageCount);
    }
    if bs.absolute_max_bytes == 0 {
        return Err(ConfigError::ZeroAbsoluteMaxBytes);
    }
    if bs.preferred_max_bytes == 0 {
        return Err(ConfigError::ZeroPreferredMaxBytes);
    }
    if bs.preferred_max_bytes > bs.absolute_max_bytes {
        return Err(ConfigError::PreferredAboveAbsolute {
            preferred: bs.preferred_max_bytes,
            absolute: bs.absolute_max_bytes,
        });
    }
    Ok(BatchSize {
        max_message_count: bs.max_message_count,
        absolute_max_bytes: bs.absolute_max_bytes,
        preferred_max_bytes: bs.preferred_max_bytes,
    })
}

/// Collects the `MSP` value of every org subgroup of `group` into `out`; returns their
/// MSP ids in org-name order.
fn org_msps(group: &ConfigGroup, out: &mut Vec<MspConfig>) -> Result<Vec<String>, ConfigError> {
    let mut ids = Vec::new();
    for (org, org_group) in &group.groups {
        let msp: MspConfig =
            value(org_group, MSP_KEY)?.ok_or_else(|| ConfigError::NoOrgMsp(org.clone()))?;
        let name = crate::msp::msp_config_name(&msp).map_err(|error| ConfigError::OrgMsp {
            org: org.clone(),
            error,
        })?;
        ids.push(name);
        out.push(msp);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests;
