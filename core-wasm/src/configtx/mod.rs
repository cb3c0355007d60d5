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

use std::collections::BTreeMap;

use bytes::Bytes;
use fabric_protos::common::{
    Config, ConfigEnvelope, ConfigGroup, ConfigPolicy, ConfigUpdate, ConfigUpdateEnvelope,
    ConfigValue, Envelope, HeaderType, Payload, SignatureHeader,
};
use fabric_protos::msp::{FabricMspConfig, MspConfig};
use prost::Message;

use crate::config::ChannelConfig;
use crate::crypto::Crypto;
use crate::filters::{self, ParsedEnvelope};
use crate::policies::SignedData;
use crate::rejection::Rejection;

/// The config tree's root group key (Fabric's `channelconfig.RootGroupKey`).
pub const ROOT_GROUP: &str = "Channel";
const GROUP_PREFIX: &str = "[Group]  ";
const VALUE_PREFIX: &str = "[Value]  ";
const POLICY_PREFIX: &str = "[Policy] ";
/// `configmap.go`'s upgrade of v1.0 channels: with this key present, an empty
/// mod_policy becomes `Admins`.
const HACKY_FIX_ORDERER_CAPABILITIES: &str = "[Value]  /Channel/Orderer/Capabilities";
const HACKY_FIX_NEW_MOD_POLICY: &str = "Admins";
/// `configtx.MaxLength`.
const MAX_ID_LENGTH: usize = 249;

/// One element of a config tree (Fabric's `comparable`).
#[derive(Clone, Copy, Debug)]
enum Element<'a> {
    Group(&'a ConfigGroup),
    Value(&'a ConfigValue),
    Policy(&'a ConfigPolicy),
}

#[derive(Clone, Debug)]
struct Comparable<'a> {
    element: Element<'a>,
    key: &'a str,
    /// The path of the group holding the element, from the root key on.
    path: Vec<&'a str>,
}

impl Comparable<'_> {
    fn version(&self) -> u64 {
        match self.element {
            Element::Group(g) => g.version,
            Element::Value(v) => v.version,
            Element::Policy(p) => p.version,
        }
    }

    fn mod_policy(&self) -> &str {
        match self.element {
            Element::Group(g) => &g.mod_policy,
            Element::Value(v) => &v.mod_policy,
            Element::Policy(p) => &p.mod_policy,
        }
    }

    /// The group whose policy manager a relative mod_policy is resolved in (Fabric's
    /// `policyForItem`): the holding group, or the group itself for a group.
    fn policy_group_path(&self) -> String {
        let mut path = String::new();
        for p in &self.path {
            path.push('/');
            path.push_str(p);
        }
        if let Element::Group(_) = self.element {
            path.push('/');
            path.push_str(self.key);
        }
        path
    }
}

type ConfigMap<'a> = BTreeMap<String, Comparable<'a>>;

/// Fabric's `validateConfigID`.
fn validate_config_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("config ID illegal, cannot be empty".into());
    }
    if id.len() > MAX_ID_LENGTH {
        return Err(format!(
            "config ID illegal, cannot be longer than {MAX_ID_LENGTH}"
        ));
    }
    if id == "." || id == ".." {
        return Err(format!("name '{id}' for config ID is not allowed"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(format!("config ID '{id}' contains illegal characters"));
    }
    Ok(())
}

/// Fabric's `validateModPolicy`.
fn validate_mod_policy(mod_policy: &str) -> Result<(), String> {
    if mod_policy.is_empty() {
        return Err("mod_policy not set".into());
    }
    let trimmed = mod_policy.strip_prefix('/').unwrap_or(mod_policy);
    for (i, element) in trimmed.split('/').enumerate() {
        validate_config_id(element).map_err(|e| format!("path element at {i} is invalid: {e}"))?;
    }
    Ok(())
}

/// Fabric's `mapConfig`: every element of the tree under `group` (taken as the root
/// group) by its full path key.
fn map_config(group: Option<&ConfigGroup>) -> Result<ConfigMap<'_>, String> {
    let mut out = ConfigMap::new();
    if let Some(group) = group {
        recurse_config(&mut out, Vec::new(), ROOT_GROUP, group)?;
    }
    Ok(out)
}

fn add_to_map<'a>(out: &mut ConfigMap<'a>, item: Comparable<'a>) -> Result<(), String> {
    let prefix = match item.element {
        Element::Group(_) => GROUP_PREFIX,
        Element::Value(_) => VALUE_PREFIX,
        Element::Policy(_) => POLICY_PREFIX,
    };
    validate_config_id(item.key)
        .map_err(|e| format!("illegal characters in key: {prefix}: {e}"))?;
    let mut key = prefix.to_string();
    for p in &item.path {
        key.push('/');
        key.push_str(p);
    }
    key.push('/');
    key.push_str(item.key);
    out.insert(key, item);
    Ok(())
}

fn recurse_config<'a>(
    out: &mut ConfigMap<'a>,
    path: Vec<&'a str>,
    key: &'a str,
    group: &'a ConfigGroup,
) -> Result<(), String> {
    add_to_map(
        out,
        Comparable {
            element: Element::Group(group),
            key,
            path: path.clone(),
        },
    )?;
    let mut inner = path;
    inner.push(key);
    for (k, g) in &group.groups {
        recurse_config(out, inner.clone(), k, g)?;
    }
    for (k, v) in &group.values {
        add_to_map(
            out,
            Comparable {
                element: Element::Value(v),
                key: k,
                path: inner.clone(),
            },
        )?;
    }
    for (k, p) in &group.policies {
        add_to_map(
            out,
            Comparable {
                element: Element::Policy(p),
                key: k,
                path: inner.clone(),
            },
        )?;
    }
    Ok(())
}

/// Fabric's `configMapToConfig`: the tree rooted at `/Channel` rebuilt from a map.
fn config_map_to_config(map: &ConfigMap) -> Result<ConfigGroup, String> {
    let hacky_fix = map.contains_key(HACKY_FIX_ORDERER_CAPABILITIES);
    recurse_config_map(&format!("/{ROOT_GROUP}"), map, hacky_fix)
}

fn recurse_config_map(path: &str, map: &ConfigMap, hacky_fix: bool) -> Result<ConfigGroup, String> {
    let group_path = format!("{GROUP_PREFIX}{path}");
    let Some(item) = map.get(&group_path) else {
        return Err(format!("missing group at path: {group_path}"));
    };
    let Element::Group(group) = item.element else {
        return Err(format!("ConfigGroup not found at group path: {group_path}"));
    };
    let mut out = ConfigGroup {
        version: group.version,
        mod_policy: group.mod_policy.clone(),
        ..Default::default()
    };
    for key in group.groups.keys() {
        let child = recurse_config_map(&format!("{path}/{key}"), map, hacky_fix)?;
        out.groups.insert(key.clone(), child);
    }
    for key in group.values.keys() {
        let value_path = format!("{VALUE_PREFIX}{path}/{key}");
        let Some(item) = map.get(&value_path) else {
            return Err(format!("missing value at path: {value_path}"));
        };
        let Element::Value(value) = item.element else {
            return Err(format!("ConfigValue not found at value path: {value_path}"));
        };
        out.values.insert(key.clone(), value.clone());
    }
    for key in group.policies.keys() {
        let policy_path = format!("{POLICY_PREFIX}{path}/{key}");
        let Some(item) = map.get(&policy_path) else {
            return Err(format!("missing policy at path: {policy_path}"));
        };
        let Element::Policy(policy) = item.element else {
            return Err(format!(
                "ConfigPolicy not found at policy path: {policy_path}"
            ));
        };
        out.policies.insert(key.clone(), policy.clone());
    }
    if hacky_fix {
        if out.mod_policy.is_empty() {
            out.mod_policy = HACKY_FIX_NEW_MOD_POLICY.into();
        }
        for value in out.values.values_mut() {
            if value.mod_policy.is_empty() {
                value.mod_policy = HACKY_FIX_NEW_MOD_POLICY.into();
            }
        }
        for policy in out.policies.values_mut() {
            if policy.mod_policy.is_empty() {
                policy.mod_policy = HACKY_FIX_NEW_MOD_POLICY.into();
            }
        }
    }
    Ok(out)
}

/// The Go name of a header type (`cb.HeaderType.String()`).
fn header_type_name(t: i32) -> String {
    HeaderType::try_from(t)
        .map(|h| h.as_str_name().to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// Fabric's `protoutil.UnmarshalEnvelopeOfType`: the channel id and the payload data.
fn unmarshal_envelope_of_type(
    envelope: &Envelope,
    header_type: HeaderType,
) -> Result<(String, Bytes), String> {
    let payload = Payload::decode(envelope.payload.as_ref())
        .map_err(|e| format!("error unmarshalling Payload: {e}"))?;
    let Some(header) = payload.header.as_ref() else {
        return Err("envelope must have a Header".into());
    };
    let chdr = fabric_protos::common::ChannelHeader::decode(header.channel_header.as_ref())
        .map_err(|e| format!("error unmarshalling ChannelHeader: {e}"))?;
    if chdr.r#type != header_type as i32 {
        return Err(format!(
            "invalid type {}, expected {}",
            header_type_name(chdr.r#type),
            header_type.as_str_name()
        ));
    }
    Ok((chdr.channel_id, payload.data))
}

/// Fabric's `protoutil.EnvelopeToConfigUpdate`.
fn envelope_to_config_update(envelope: &Envelope) -> Result<ConfigUpdateEnvelope, String> {
    let (_, data) = unmarshal_envelope_of_type(envelope, HeaderType::ConfigUpdate)?;
    ConfigUpdateEnvelope::decode(data)
        .map_err(|e| format!("error unmarshalling message for type CONFIG_UPDATE: {e}"))
}

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
fn authorize_update(
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
fn validate_new(old: &Config, new: &Config) -> Result<(), String> {
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
/// BAD_REQUEST, worded as Fabric's Broadcast answers them ("error applying config
/// update to existing channel '<id>': ...").
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
    let next = Config {
        sequence: config.sequence.wrapping_add(1),
        channel_group: Some(channel_group),
    };
    // CreateBundle, checkResources, ValidateNew.
    ChannelConfig::from_config(&config.channel_id, &next, crypto)
        .map_err(|e| apply_error(config, e))?;
    validate_new(&config.config, &next).map_err(|e| apply_error(config, e))?;
    Ok(next)
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
pub fn config_message(envelope: &Envelope) -> Result<ConfigMessage, String> {
    let (_, data) = unmarshal_envelope_of_type(envelope, HeaderType::Config)?;
    let config_envelope = ConfigEnvelope::decode(data)
        .map_err(|e| format!("error unmarshalling message for type CONFIG: {e}"))?;
    let config = config_envelope
        .config
        .clone()
        .ok_or_else(|| "config envelope has nil config".to_string())?;
    Ok(ConfigMessage {
        config_envelope,
        config,
    })
}

/// Fabric's `ValidatorImpl.Validate` sequence rule.
pub fn check_next_sequence(config: &ChannelConfig, next: &Config) -> Result<(), String> {
    if next.sequence != config.sequence.wrapping_add(1) {
        return Err(format!(
            "config currently at sequence {}, cannot validate config at sequence {}",
            config.sequence, next.sequence
        ));
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
    let message = config_message(&parsed.envelope).map_err(Rejection::bad_request)?;
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
    check_next_sequence(config, &message.config).map_err(Rejection::bad_request)?;
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
        .map_err(Rejection::bad_request)?;
    inspect_maintenance(config, &next, &message.config_envelope).map_err(|e| {
        Rejection::bad_request(format!(
            "config update for existing channel did not pass maintenance checks: config transaction inspection failed: {e}"
        ))
    })
}

/// Fabric's `MaintenanceFilter.inspect`, for the consensus types this orderer runs:
/// the consensus type never changes (no migration target is supported), and entering
/// or leaving maintenance mode changes nothing but `ConsensusType.State`.
fn inspect_maintenance(
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

/// Test helpers: the real config update fixtures and fresh config updates signed with
/// the fixture keys.
#[cfg(test)]
pub(crate) mod testkit {
    use fabric_protos::common::{
        Block, Config, ConfigSignature, ConfigUpdate, ConfigUpdateEnvelope, Envelope, HeaderType,
        Payload, SignatureHeader,
    };
    use prost::Message;

    use crate::config::testkit::{Signer, block_envelopes, read, sign};

    pub const ORDERER_ADMIN_UPDATE: &str = "updates/update-batchsize-signed-by-orderer-admin.env";
    pub const ORG1_ADMIN_UPDATE: &str = "updates/update-batchsize-signed-by-org1-admin.env";
    pub const CONFIG_BLOCK_1: &str = "updates/config-block-1.block";

    /// The ConfigUpdate both fixture envelopes carry.
    pub fn fixture_update() -> ConfigUpdate {
        ConfigUpdate::decode(update_envelope_of(&read(ORDERER_ADMIN_UPDATE)).config_update).unwrap()
    }

    /// The `ConfigUpdateEnvelope` of a CONFIG_UPDATE envelope.
    pub fn update_envelope_of(envelope: &[u8]) -> ConfigUpdateEnvelope {
        let env = Envelope::decode(envelope).unwrap();
        let payload = Payload::decode(env.payload).unwrap();
        ConfigUpdateEnvelope::decode(payload.data).unwrap()
    }

    /// The `ConfigEnvelope` of a CONFIG envelope.
    pub fn config_envelope_of(envelope: &[u8]) -> fabric_protos::common::ConfigEnvelope {
        let env = Envelope::decode(envelope).unwrap();
        let payload = Payload::decode(env.payload).unwrap();
        fabric_protos::common::ConfigEnvelope::decode(payload.data).unwrap()
    }

    /// The config inside a config block fixture.
    pub fn block_config(rel: &str) -> Config {
        config_envelope_of(&block_envelopes(rel)[0]).config.unwrap()
    }

    /// The CONFIG envelope of `config-block-1.block` (made by the real orderer).
    pub fn fabric_config_envelope() -> Vec<u8> {
        let block = Block::decode(read(CONFIG_BLOCK_1).as_slice()).unwrap();
        block.data.unwrap().data[0].to_vec()
    }

    /// A `ConfigSignature` by `signer` over `update` (as `peer channel signconfigtx`).
    pub fn config_signature(signer: &Signer, update: &[u8]) -> ConfigSignature {
        let shdr = SignatureHeader {
            creator: signer.creator().into(),
            nonce: vec![9u8; 24].into(),
        }
        .encode_to_vec();
        let mut data = shdr.clone();
        data.extend_from_slice(update);
        ConfigSignature {
            signature_header: shdr.into(),
            signature: sign(&signer.key, &data).into(),
        }
    }

    /// A CONFIG_UPDATE envelope for `update`, with one config signature per signer,
    /// the envelope itself signed by `outer`.
    pub fn update_envelope(
        update: &ConfigUpdate,
        signers: &[&Signer],
        outer: &Signer,
        now: u64,
    ) -> Vec<u8> {
        let bytes = update.encode_to_vec();
        let env = ConfigUpdateEnvelope {
            signatures: signers
                .iter()
                .map(|s| config_signature(s, &bytes))
                .collect(),
            config_update: bytes.into(),
        };
        outer.envelope(
            &update.channel_id,
            HeaderType::ConfigUpdate as i32,
            now,
            &env.encode_to_vec(),
        )
    }
}

#[cfg(test)]
mod tests;
