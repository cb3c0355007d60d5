//! Fabric's `MaintenanceFilter`: what a config update may change around maintenance
//! mode.

use fabric_protos::common::{ConfigEnvelope, ConfigUpdate};
use prost::Message;

use super::{ROOT_GROUP, envelope_to_config_update};
use crate::config::ChannelConfig;

/// Fabric's `MaintenanceFilter.inspect`, for the consensus types this orderer runs:
/// the consensus type never changes (no migration target is supported), and entering
/// or leaving maintenance mode changes nothing but `ConsensusType.State`.
pub(super) fn inspect_maintenance(
    old: &ChannelConfig,
    new: &ChannelConfig,
    config_envelope: &ConfigEnvelope,
) -> Result<(), String> {
    let state = |c: &ChannelConfig| {
        if c.consensus.maintenance {
            "STATE_MAINTENANCE"
        } else {
            "STATE_NORMAL"
        }
    };
    if !old.consensus_type_migration() {
        if new.consensus.maintenance {
            return Err(format!(
                "next config attempted to change ConsensusType.State to {}, but capability is disabled",
                state(new)
            ));
        }
        if old.consensus.kind != new.consensus.kind {
            return Err(format!(
                "next config attempted to change ConsensusType.Type from {} to {}, but capability is disabled",
                old.consensus.kind, new.consensus.kind
            ));
        }
        return Ok(());
    }
    if old.consensus.maintenance != new.consensus.maintenance {
        ensure_consensus_type_change_only(config_envelope)?;
        if old.consensus.kind != new.consensus.kind {
            return Err(format!(
                "attempted to change ConsensusType.Type from {} to {}, but ConsensusType.State is changing from {} to {}",
                old.consensus.kind,
                new.consensus.kind,
                state(old),
                state(new)
            ));
        }
        if old.consensus.metadata != new.consensus.metadata {
            return Err(format!(
                "attempted to change ConsensusType.Metadata, but ConsensusType.State is changing from {} to {}",
                state(old),
                state(new)
            ));
        }
    }
    if old.consensus.kind != new.consensus.kind {
        if !old.consensus.maintenance {
            return Err(format!(
                "attempted to change consensus type from {} to {}, but current config ConsensusType.State is not in maintenance mode",
                old.consensus.kind, new.consensus.kind
            ));
        }
        if !new.consensus.maintenance {
            return Err(format!(
                "attempted to change consensus type from {} to {}, but next config ConsensusType.State is not in maintenance mode",
                old.consensus.kind, new.consensus.kind
            ));
        }
        return Err(format!(
            "attempted to change consensus type from {} to {}, transition not supported",
            old.consensus.kind, new.consensus.kind
        ));
    }
    Ok(())
}

/// Fabric's `MaintenanceFilter.ensureConsensusTypeChangeOnly`.
fn ensure_consensus_type_change_only(config_envelope: &ConfigEnvelope) -> Result<(), String> {
    let last_update = config_envelope
        .last_update
        .as_ref()
        .ok_or_else(|| "updated config does not include a config update".to_string())?;
    let update_env = envelope_to_config_update(last_update)
        .map_err(|e| format!("envelope to config update unmarshalling error: {e}"))?;
    let update = ConfigUpdate::decode(update_env.config_update.as_ref())
        .map_err(|e| format!("config update unmarshalling error: {e}"))?;
    let write_set = update.write_set.unwrap_or_default();
    if write_set.groups.is_empty() {
        return Err("config update contains no changes".into());
    }
    if !write_set.values.is_empty() {
        return Err(format!(
            "config update contains changes to values in group {ROOT_GROUP}"
        ));
    }
    if write_set.groups.len() > 1 {
        return Err("config update contains changes to more than one group".into());
    }
    let Some(orderer) = write_set.groups.get("Orderer") else {
        return Err("update does not contain the Orderer group".into());
    };
    if !orderer.groups.is_empty() {
        return Err("config update contains changes to groups within the Orderer group".into());
    }
    if !orderer.values.contains_key("ConsensusType") {
        return Err("config update does not contain the ConsensusType value".into());
    }
    if orderer.values.len() > 1 {
        return Err(
            "config update contain more then just the ConsensusType value in the Orderer group"
                .into(),
        );
    }
    Ok(())
}
