//! Channel config updates made without Fabric's tools: what `configtxlator
//! compute_update` and `peer channel signconfigtx` do, producing standard Fabric
//! envelopes (so Fabric's tools can read, sign and submit ours, and we theirs).

use crate::identity::Signer;
use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use fabric_protos::common::{
    Block, Config, ConfigEnvelope, ConfigGroup, ConfigPolicy, ConfigSignature, ConfigUpdate,
    ConfigUpdateEnvelope, ConfigValue, Envelope, HeaderType, Payload,
};
use fabric_protos::orderer::{BatchSize, BatchTimeout};
use prost::Message;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// The config carried by a config block (its only envelope, of type CONFIG).
pub fn config_from_block(block: &Block) -> Result<Config> {
    let data = block
        .data
        .as_ref()
        .and_then(|d| d.data.first())
        .context("block has no data")?;
    let envelope = Envelope::decode(data.clone())?;
    let payload = Payload::decode(envelope.payload)?;
    ConfigEnvelope::decode(payload.data)?
        .config
        .context("config envelope without config")
}

/// Edits to the orderer's batch settings, as an operator asks for them.
#[derive(Debug, Default, Clone)]
pub struct BatchEdits {
    pub max_message_count: Option<u32>,
    pub absolute_max_bytes: Option<u32>,
    pub preferred_max_bytes: Option<u32>,
    /// A Go duration string, e.g. "1s" or "500ms".
    pub timeout: Option<String>,
}

/// A copy of `config` with the edits applied to `/Channel/Orderer`.
pub fn apply_batch_edits(config: &Config, edits: &BatchEdits) -> Result<Config> {
    let mut updated = config.clone();
    let orderer = updated
        .channel_group
        .as_mut()
        .and_then(|g| g.groups.get_mut("Orderer"))
        .context("the config has no Orderer group")?;
    if edits.max_message_count.is_some()
        || edits.absolute_max_bytes.is_some()
        || edits.preferred_max_bytes.is_some()
    {
        let value = orderer
            .values
            .get_mut("BatchSize")
            .context("no Orderer/BatchSize value")?;
        let mut size = BatchSize::decode(value.value.clone())?;
        size.max_message_count = edits.max_message_count.unwrap_or(size.max_message_count);
        size.absolute_max_bytes = edits.absolute_max_bytes.unwrap_or(size.absolute_max_bytes);
        size.preferred_max_bytes = edits
            .preferred_max_bytes
            .unwrap_or(size.preferred_max_bytes);
        value.value = size.encode_to_vec().into();
    }
    if let Some(timeout) = &edits.timeout {
        ordering_core::config::parse_go_duration(timeout)
            .map_err(|e| anyhow!("batch timeout {timeout:?}: {e}"))?;
        let value = orderer
            .values
            .get_mut("BatchTimeout")
            .context("no Orderer/BatchTimeout value")?;
        value.value = BatchTimeout {
            timeout: timeout.clone(),
        }
        .encode_to_vec()
        .into();
    }
    Ok(updated)
}

/// configtxlator's compute_update: the read set and write set that turn `original`
/// into `updated`.
pub fn compute_update(
    channel_id: &str,
    original: &Config,
    updated: &Config,
) -> Result<ConfigUpdate> {
    let original = original
        .channel_group
        .as_ref()
        .context("no channel group in the original config")?;
    let updated = updated
        .channel_group
        .as_ref()
        .context("no channel group in the updated config")?;
    let (read_set, write_set, changed) = group_update(original, updated);
    if !changed {
        bail!("no differences detected between original and updated config");
    }
    Ok(ConfigUpdate {
        channel_id: channel_id.to_string(),
        read_set: Some(read_set),
        write_set: Some(write_set),
        isolated_data: BTreeMap::new(),
    })
}

/// Per map (policies, values, groups): read and write sets of what changed, the
/// unchanged members (version only), and whether members were added or removed.
struct MapUpdate<T> {
    read: BTreeMap<String, T>,
    write: BTreeMap<String, T>,
    same: BTreeMap<String, T>,
    members_changed: bool,
}

/// A config value or policy, as compute_update compares and rewrites them.
trait Leaf: Clone {
    fn version(&self) -> u64;
    /// Same content and mod_policy (the version does not count).
    fn same_as(&self, other: &Self) -> bool;
    /// The same element at `version`; `full` keeps content and mod_policy.
    fn at_version(&self, version: u64, full: bool) -> Self;
}

impl Leaf for ConfigPolicy {
    fn version(&self) -> u64 {
        self.version
    }
    fn same_as(&self, other: &Self) -> bool {
        self.mod_policy == other.mod_policy && self.policy == other.policy
    }
    fn at_version(&self, version: u64, full: bool) -> Self {
        match full {
            true => ConfigPolicy {
                version,
                ..self.clone()
            },
            false => ConfigPolicy {
                version,
                ..Default::default()
            },
        }
    }
}

impl Leaf for ConfigValue {
    fn version(&self) -> u64 {
        self.version
    }
    fn same_as(&self, other: &Self) -> bool {
        self.mod_policy == other.mod_policy && self.value == other.value
    }
    fn at_version(&self, version: u64, full: bool) -> Self {
        match full {
            true => ConfigValue {
                version,
                ..self.clone()
            },
            false => ConfigValue {
                version,
                ..Default::default()
            },
        }
    }
}

fn leaf_update<T: Leaf>(
    original: &BTreeMap<String, T>,
    updated: &BTreeMap<String, T>,
) -> MapUpdate<T> {
    let mut out = MapUpdate {
        read: BTreeMap::new(),
        write: BTreeMap::new(),
        same: BTreeMap::new(),
        members_changed: false,
    };
    for (name, old) in original {
        match updated.get(name) {
            None => out.members_changed = true,
            Some(new) if old.same_as(new) => {
                out.same
                    .insert(name.clone(), old.at_version(old.version(), false));
            }
            Some(new) => {
                out.write
                    .insert(name.clone(), new.at_version(old.version() + 1, true));
            }
        }
    }
    for (name, new) in updated {
        if !original.contains_key(name) {
            out.members_changed = true;
            out.write.insert(name.clone(), new.at_version(0, true));
        }
    }
    out
}

fn groups_update(
    o: &BTreeMap<String, ConfigGroup>,
    u: &BTreeMap<String, ConfigGroup>,
) -> MapUpdate<ConfigGroup> {
    let mut out = MapUpdate {
        read: BTreeMap::new(),
        write: BTreeMap::new(),
        same: BTreeMap::new(),
        members_changed: false,
    };
    for (name, old) in o {
        let Some(new) = u.get(name) else {
            out.members_changed = true;
            continue;
        };
        let (read, write, changed) = group_update(old, new);
        if changed {
            out.read.insert(name.clone(), read);
            out.write.insert(name.clone(), write);
        } else {
            out.same.insert(name.clone(), read);
        }
    }
    for (name, new) in u {
        if o.contains_key(name) {
            continue;
        }
        out.members_changed = true;
        let (_, write, _) = group_update(&ConfigGroup::default(), new);
        out.write.insert(
            name.clone(),
            ConfigGroup {
                version: 0,
                mod_policy: new.mod_policy.clone(),
                ..write
            },
        );
    }
    out
}

/// Returns (read set, write set, changed) for one group, as configtxlator does.
fn group_update(original: &ConfigGroup, updated: &ConfigGroup) -> (ConfigGroup, ConfigGroup, bool) {
    let mut policies = leaf_update(&original.policies, &updated.policies);
    let mut values = leaf_update(&original.values, &updated.values);
    let mut groups = groups_update(&original.groups, &updated.groups);
    let members_changed = policies.members_changed
        || values.members_changed
        || groups.members_changed
        || original.mod_policy != updated.mod_policy;
    if !members_changed {
        let nothing = policies.read.is_empty()
            && policies.write.is_empty()
            && values.read.is_empty()
            && values.write.is_empty()
            && groups.read.is_empty()
            && groups.write.is_empty();
        let version_only = ConfigGroup {
            version: original.version,
            ..Default::default()
        };
        if nothing {
            return (version_only.clone(), version_only, false);
        }
        // Only members changed: this group's version stays, it is just a path.
        let read = ConfigGroup {
            version: original.version,
            policies: policies.read,
            values: values.read,
            groups: groups.read,
            mod_policy: String::new(),
        };
        let write = ConfigGroup {
            version: original.version,
            policies: policies.write,
            values: values.write,
            groups: groups.write,
            mod_policy: String::new(),
        };
        return (read, write, true);
    }
    // Members added or removed (or the group's mod_policy changed): the group itself
    // is rewritten, so every member it keeps is listed at its current version.
    policies.read.extend(policies.same.clone());
    policies.write.extend(policies.same);
    values.read.extend(values.same.clone());
    values.write.extend(values.same);
    groups.read.extend(groups.same.clone());
    groups.write.extend(groups.same);
    let read = ConfigGroup {
        version: original.version,
        policies: policies.read,
        values: values.read,
        groups: groups.read,
        mod_policy: String::new(),
    };
    let write = ConfigGroup {
        version: original.version + 1,
        policies: policies.write,
        values: values.write,
        groups: groups.write,
        mod_policy: updated.mod_policy.clone(),
    };
    (read, write, true)
}

/// A ConfigUpdateEnvelope with no signatures yet.
pub fn unsigned_update(update: &ConfigUpdate) -> ConfigUpdateEnvelope {
    ConfigUpdateEnvelope {
        config_update: update.encode_to_vec().into(),
        signatures: vec![],
    }
}

/// Adds `signer`'s ConfigSignature, over `signature_header || config_update`, as
/// `peer channel signconfigtx` does.
pub fn add_signature(envelope: &mut ConfigUpdateEnvelope, signer: &Signer) {
    let signature_header: Bytes = signer.new_signature_header().encode_to_vec().into();
    let mut signed = signature_header.to_vec();
    signed.extend_from_slice(&envelope.config_update);
    envelope.signatures.push(ConfigSignature {
        signature_header,
        signature: signer.sign(&signed).into(),
    });
}

/// The CONFIG_UPDATE envelope that carries `update` to the orderer, signed by `submitter`.
pub fn update_envelope(
    channel_id: &str,
    update: &ConfigUpdateEnvelope,
    submitter: &Signer,
) -> Envelope {
    submitter.signed_envelope(
        HeaderType::ConfigUpdate,
        channel_id,
        update.encode_to_vec().into(),
        SystemTime::now(),
    )
}

/// The ConfigUpdateEnvelope inside a CONFIG_UPDATE envelope (e.g. one made by Fabric's tools).
pub fn update_of_envelope(envelope: &Envelope) -> Result<ConfigUpdateEnvelope> {
    let payload = Payload::decode(envelope.payload.clone()).context("envelope payload")?;
    ConfigUpdateEnvelope::decode(payload.data).context("not a ConfigUpdateEnvelope")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fabric(path: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/fabric")
            .join(path)
    }

    fn genesis_config() -> Config {
        let raw = std::fs::read(fabric("blocks/mychannel-etcdraft-genesis.block")).unwrap();
        config_from_block(&Block::decode(raw.as_slice()).unwrap()).unwrap()
    }

    fn fabric_update() -> ConfigUpdate {
        let raw = std::fs::read(fabric(
            "updates/update-batchsize-signed-by-orderer-admin.env",
        ))
        .unwrap();
        let env = update_of_envelope(&Envelope::decode(raw.as_slice()).unwrap()).unwrap();
        ConfigUpdate::decode(env.config_update).unwrap()
    }

    /// The same edit made with configtxlator gives the same ConfigUpdate.
    #[test]
    fn batch_edit_matches_configtxlator() {
        let original = genesis_config();
        let edits = BatchEdits {
            max_message_count: Some(10),
            timeout: Some("1s".into()),
            ..Default::default()
        };
        let updated = apply_batch_edits(&original, &edits).unwrap();
        let ours = compute_update("mychannel", &original, &updated).unwrap();
        // Equal as messages; Go writes an empty map value (the read set's `Orderer`
        // group) as two explicit bytes that prost leaves out, both decode alike.
        assert_eq!(ours, fabric_update());
    }

    #[test]
    fn no_change_is_an_error() {
        let config = genesis_config();
        let err = compute_update("mychannel", &config, &config).unwrap_err();
        assert!(err.to_string().contains("no differences"));
    }

    #[test]
    fn added_and_removed_members_rewrite_the_group() {
        let original = genesis_config();
        let mut updated = original.clone();
        let orderer = updated
            .channel_group
            .as_mut()
            .unwrap()
            .groups
            .get_mut("Orderer")
            .unwrap();
        orderer.values.remove("BatchTimeout");
        let update = compute_update("mychannel", &original, &updated).unwrap();
        let write = &update.write_set.unwrap().groups["Orderer"];
        let before = &original.channel_group.unwrap().groups["Orderer"];
        assert_eq!(write.version, before.version + 1);
        assert!(!write.values.contains_key("BatchTimeout"));
        assert_eq!(
            write.values["BatchSize"].version,
            before.values["BatchSize"].version
        );
        assert!(
            write.values["BatchSize"].value.is_empty(),
            "unchanged members carry only their version"
        );
    }

    #[test]
    fn signatures_cover_header_and_update() {
        let signer = Signer::from_msp_dir(
            &fabric("crypto/ordererOrganizations/example.com/users/Admin@example.com/msp"),
            "OrdererMSP",
        )
        .unwrap();
        let mut envelope = unsigned_update(&fabric_update());
        add_signature(&mut envelope, &signer);
        add_signature(&mut envelope, &signer);
        assert_eq!(envelope.signatures.len(), 2);
        let sig = &envelope.signatures[0];
        let mut signed = sig.signature_header.to_vec();
        signed.extend_from_slice(&envelope.config_update);
        let key = signer.verifying_key().to_encoded_point(false);
        assert!(ordering_core::Crypto::verify_p256(
            &ordering_core::NativeCrypto,
            key.as_bytes(),
            &signed,
            &sig.signature
        ));
        let env = update_envelope("mychannel", &envelope, &signer);
        assert_eq!(update_of_envelope(&env).unwrap(), envelope);
    }
}
