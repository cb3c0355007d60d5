//! Fabric's `ValidatorImpl.authorizeUpdate` (`common/configtx/update.go`) and the
//! new bundle's `ValidateNew`.

use std::collections::BTreeMap;

use bytes::Bytes;
use fabric_protos::common::{
    Config, ConfigGroup, ConfigUpdate, ConfigUpdateEnvelope, SignatureHeader,
};
use fabric_protos::msp::{FabricMspConfig, MspConfig};
use prost::Message;

use super::configmap::{ConfigMap, config_map_to_config, map_config, validate_mod_policy};
use crate::config::ChannelConfig;
use crate::crypto::Crypto;
use crate::policies::SignedData;

/// The data each config signature signs: Fabric's
/// `protoutil.ConfigUpdateEnvelopeAsSignedData`, as owned parts.
struct OwnedSignedData {
    data: Vec<u8>,
    identity: Bytes,
    signature: Bytes,
}

fn config_update_signed_data(env: &ConfigUpdateEnvelope) -> Result<Vec<OwnedSignedData>, String> {
    env.signatures
        .iter()
        .map(|sig| {
            let shdr = SignatureHeader::decode(sig.signature_header.as_ref())
                .map_err(|e| format!("error unmarshalling SignatureHeader: {e}"))?;
            let mut data = Vec::with_capacity(sig.signature_header.len() + env.config_update.len());
            data.extend_from_slice(&sig.signature_header);
            data.extend_from_slice(&env.config_update);
            Ok(OwnedSignedData {
                data,
                identity: shdr.creator,
                signature: sig.signature.clone(),
            })
        })
        .collect()
}

/// Fabric's `ValidatorImpl.authorizeUpdate`: the new config tree, or why not.
pub(super) fn authorize_update(
    config: &ChannelConfig,
    update_env: &ConfigUpdateEnvelope,
    now_unix_nanos: u64,
    crypto: &dyn Crypto,
) -> Result<ConfigGroup, String> {
    let auth = |e: String| format!("error authorizing update: {e}");
    let update = ConfigUpdate::decode(update_env.config_update.as_ref())
        .map_err(|e| auth(format!("error unmarshalling ConfigUpdate: {e}")))?;
    if update.channel_id != config.channel_id {
        return Err(auth(format!(
            "ConfigUpdate for channel '{}' but envelope for channel '{}'",
            update.channel_id, config.channel_id
        )));
    }
    let current = map_config(config.config.channel_group.as_ref())
        .map_err(|e| auth(format!("error mapping current config: {e}")))?;

    // verifyReadSet.
    let read_set = map_config(update.read_set.as_ref())
        .map_err(|e| auth(format!("error mapping ReadSet: {e}")))?;
    for (key, item) in &read_set {
        let Some(existing) = current.get(key) else {
            return Err(auth(format!(
                "error validating ReadSet: existing config does not contain element for {key} but was in the read set"
            )));
        };
        if existing.version() != item.version() {
            return Err(auth(format!(
                "error validating ReadSet: proposed update requires that key {key} be at version {}, but it is currently at version {}",
                item.version(),
                existing.version()
            )));
        }
    }

    // computeDeltaSet.
    let write_set = map_config(update.write_set.as_ref())
        .map_err(|e| auth(format!("error mapping WriteSet: {e}")))?;
    let delta: ConfigMap = write_set
        .iter()
        .filter(|(key, item)| {
            read_set
                .get(*key)
                .is_none_or(|read| read.version() != item.version())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    let owned = config_update_signed_data(update_env).map_err(auth)?;
    let signed: Vec<SignedData> = owned
        .iter()
        .map(|s| SignedData {
            data: &s.data,
            identity: &s.identity,
            signature: &s.signature,
        })
        .collect();

    // verifyDeltaSet.
    let delta_err = |e: String| auth(format!("error validating DeltaSet: {e}"));
    if delta.is_empty() {
        return Err(delta_err(
            "delta set was empty -- update would have no effect".into(),
        ));
    }
    for (key, item) in &delta {
        validate_mod_policy(item.mod_policy())
            .map_err(|e| delta_err(format!("invalid mod_policy for element {key}: {e}")))?;
        let Some(existing) = current.get(key) else {
            if item.version() != 0 {
                return Err(delta_err(format!(
                    "attempted to set key {key} to version {}, but key does not exist",
                    item.version()
                )));
            }
            continue;
        };
        if item.version() != existing.version().wrapping_add(1) {
            return Err(delta_err(format!(
                "attempt to set key {key} to version {}, but key is at version {}",
                item.version(),
                existing.version()
            )));
        }
        let policy = crate::policies::PolicyManager::resolve(
            &existing.policy_group_path(),
            existing.mod_policy(),
        );
        if !config.policies.contains(&policy) {
            return Err(delta_err(format!(
                "unexpected missing policy {} for item {key}",
                existing.mod_policy()
            )));
        }
        config
            .policies
            .evaluate(&policy, &signed, &config.msps, now_unix_nanos, crypto)
            .map_err(|e| delta_err(format!("policy for {key} not satisfied: {e}")))?;
    }

    // computeUpdateResult and verifyFullProposedConfig.
    let mut result = current;
    result.extend(delta);
    if let Some(key) = write_set.keys().find(|k| !result.contains_key(*k)) {
        return Err(auth(format!(
            "full config did not verify: writeset contained key {key} which did not appear in proposed config"
        )));
    }
    config_map_to_config(&result)
        .map_err(|e| format!("could not turn configMap back to channelGroup: {e}"))
}

/// The MSP id of every org subgroup of `group`, by org name.
fn org_msp_ids(group: &ConfigGroup) -> BTreeMap<&str, String> {
    group
        .groups
        .iter()
        .filter_map(|(name, org)| {
            let value = org.values.get("MSP")?;
            let msp = MspConfig::decode(value.value.as_ref()).ok()?;
            let fabric = FabricMspConfig::decode(msp.config.as_ref()).ok()?;
            Some((name.as_str(), fabric.name))
        })
        .collect()
}

/// Fabric's `Bundle.ValidateNew` (orderer and application parts).
pub(crate) fn validate_new(old: &Config, new: &Config) -> Result<(), String> {
    let (Some(old), Some(new)) = (old.channel_group.as_ref(), new.channel_group.as_ref()) else {
        return Err("config has no channel group".into());
    };
    for (section, kind) in [("Orderer", "orderer"), ("Application", "application")] {
        let Some(old_group) = old.groups.get(section) else {
            continue;
        };
        let Some(new_group) = new.groups.get(section) else {
            return Err(format!(
                "current config has {kind} section, but new config does not"
            ));
        };
        let new_ids = org_msp_ids(new_group);
        for (org, id) in org_msp_ids(old_group) {
            if let Some(new_id) = new_ids.get(org)
                && *new_id != id
            {
                return Err(format!(
                    "{kind} org {org} attempted to change MSP ID from {id} to {new_id}"
                ));
            }
        }
    }
    Ok(())
}
