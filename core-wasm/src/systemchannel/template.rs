//! Fabric's `msgprocessor.DefaultTemplator.NewChannelConfig`: the config a channel
//! creation request is applied to. It is the system channel's `/Channel` values and
//! policies, a copy of its `Orderer` group, a `Consortium` value naming the
//! request's consortium, and an `Application` group that holds copies of the orgs
//! the request names (taken from the consortium) and one policy. That policy is a
//! copy of the consortium's `ChannelCreationPolicy`, and it is also the Application
//! group's mod_policy, so the request's config signatures must satisfy it. Every
//! version is 0.

use fabric_protos::common::{
    ChannelHeader, Config, ConfigGroup, ConfigPolicy, ConfigUpdate, ConfigUpdateEnvelope,
    ConfigValue, Consortium, Envelope, Payload, Policy,
};
use prost::Message;

use crate::config::{CONSORTIUMS_GROUP, ChannelConfig};
use crate::configtx::validate_channel_id;
use crate::crypto::Crypto;

const APPLICATION_GROUP: &str = "Application";
const ORDERER_GROUP: &str = "Orderer";
const CONSORTIUM_KEY: &str = "Consortium";
const CHANNEL_CREATION_POLICY_KEY: &str = "ChannelCreationPolicy";
const ADMINS_POLICY_KEY: &str = "Admins";

/// Go's protobuf text for bytes that do not parse; prost words it differently.
fn go_unmarshal_error(_: prost::DecodeError) -> &'static str {
    "proto: cannot parse invalid wire-format data"
}

/// The template for the channel that `envelope` (a CONFIG_UPDATE for a channel that
/// does not exist) would create, parsed as Fabric's `NewBundle` parses it; `Err`
/// carries Fabric's text.
pub(crate) fn new_channel_config(
    system: &ChannelConfig,
    envelope: &Envelope,
    crypto: &dyn Crypto,
) -> Result<ChannelConfig, String> {
    let payload = Payload::decode(envelope.payload.as_ref()).map_err(|e| {
        format!(
            "Failing initial channel config creation because of payload unmarshalling error: {}",
            go_unmarshal_error(e)
        )
    })?;
    let update_env = ConfigUpdateEnvelope::decode(payload.data.as_ref()).map_err(|e| {
        format!(
            "Failing initial channel config creation because of config update envelope unmarshalling error: {}",
            go_unmarshal_error(e)
        )
    })?;
    let Some(header) = payload.header.as_ref() else {
        return Err(
            "Failed initial channel config creation because config update header was missing"
                .into(),
        );
    };
    let chdr = ChannelHeader::decode(header.channel_header.as_ref()).map_err(|e| {
        format!(
            "Failed initial channel config creation because channel header was malformed: {}",
            go_unmarshal_error(e)
        )
    })?;
    let update = ConfigUpdate::decode(update_env.config_update.as_ref()).map_err(|e| {
        format!(
            "Failing initial channel config creation because of config update unmarshalling error: {}",
            go_unmarshal_error(e)
        )
    })?;
    if update.channel_id != chdr.channel_id {
        return Err(format!(
            "Failing initial channel config creation: mismatched channel IDs: '{}' != '{}'",
            update.channel_id, chdr.channel_id
        ));
    }
    let Some(write_set) = update.write_set.as_ref() else {
        return Err("Config update has an empty writeset".into());
    };
    let Some(write_app) = write_set.groups.get(APPLICATION_GROUP) else {
        return Err("Config update has missing application group".into());
    };
    if write_app.version != 1 {
        return Err(format!(
            "Config update for channel creation does not set application group version to 1, was {}",
            write_app.version
        ));
    }
    let Some(consortium_value) = write_set.values.get(CONSORTIUM_KEY) else {
        return Err("Consortium config value missing".into());
    };
    let consortium = Consortium::decode(consortium_value.value.as_ref()).map_err(|e| {
        format!(
            "Error reading unmarshalling consortium name: {}",
            go_unmarshal_error(e)
        )
    })?;

    let system_group = system.config.channel_group.clone().unwrap_or_default();
    let Some(consortiums) = system_group.groups.get(CONSORTIUMS_GROUP) else {
        // Fabric's text, typo included.
        return Err(
            "The ordering system channel does not appear to resources creating channels".into(),
        );
    };
    let Some(consortium_group) = consortiums.groups.get(&consortium.name) else {
        return Err(format!("Unknown consortium name: {}", consortium.name));
    };
    let creation_policy = consortium_group
        .values
        .get(CHANNEL_CREATION_POLICY_KEY)
        .map(|v| Policy::decode(v.value.as_ref()))
        .transpose()
        .map_err(|e| format!("error unmarshalling ChannelCreationPolicy: {e}"))?
        .unwrap_or_default();

    // Orderer capability V2_0 (UseChannelCreationPolicyAsAdmins): the policy is
    // named Admins, unless the request comes from an older configtxgen (its Admins
    // policy at version 0).
    let mut policy_key = CHANNEL_CREATION_POLICY_KEY;
    if system.orderer_capabilities.iter().any(|c| c == "V2_0")
        && !write_app.policies.is_empty()
        && write_app
            .policies
            .get(ADMINS_POLICY_KEY)
            .is_none_or(|p| p.version != 0)
    {
        policy_key = ADMINS_POLICY_KEY;
    }
    let mut application = ConfigGroup {
        mod_policy: policy_key.to_string(),
        ..Default::default()
    };
    application.policies.insert(
        policy_key.to_string(),
        ConfigPolicy {
            version: 0,
            policy: Some(creation_policy),
            mod_policy: policy_key.to_string(),
        },
    );
    if !consortium_group.groups.is_empty() {
        if write_app.groups.is_empty() {
            return Err("Proposed configuration has no application group members, but consortium contains members".into());
        }
        for org in write_app.groups.keys() {
            let Some(org_group) = consortium_group.groups.get(org) else {
                return Err(format!(
                    "Attempted to include member {org} which is not in the consortium"
                ));
            };
            application.groups.insert(org.clone(), org_group.clone());
        }
    }

    let mut channel = ConfigGroup {
        values: system_group.values.clone(),
        policies: system_group.policies.clone(),
        // PredictableChannelTemplate (orderer capability V1_1 and later, which every
        // channel this orderer runs has): the system channel's mod_policy.
        mod_policy: system_group.mod_policy.clone(),
        ..Default::default()
    };
    if let Some(orderer) = system_group.groups.get(ORDERER_GROUP) {
        channel
            .groups
            .insert(ORDERER_GROUP.to_string(), orderer.clone());
    }
    channel
        .groups
        .insert(APPLICATION_GROUP.to_string(), application);
    channel.values.insert(
        CONSORTIUM_KEY.to_string(),
        ConfigValue {
            version: 0,
            value: Consortium {
                name: consortium.name,
            }
            .encode_to_vec()
            .into(),
            mod_policy: ADMINS_POLICY_KEY.to_string(),
        },
    );
    zero_versions(&mut channel);

    // channelconfig.NewBundle: the config parses, then the channel name is checked.
    let config = Config {
        sequence: 0,
        channel_group: Some(channel),
    };
    let name = validate_channel_id(&chdr.channel_id)
        .map_err(|e| format!("initializing configtx manager failed: bad channel ID: {e}"));
    if chdr.channel_id.is_empty() {
        name.clone()?;
    }
    let template = ChannelConfig::from_config(&chdr.channel_id, &config, crypto)
        .map_err(|e| format!("initializing channelconfig failed: {e}"))?;
    name?;
    Ok(template)
}

/// Fabric's `zeroVersions`.
fn zero_versions(group: &mut ConfigGroup) {
    group.version = 0;
    group.values.values_mut().for_each(|v| v.version = 0);
    group.policies.values_mut().for_each(|p| p.version = 0);
    group.groups.values_mut().for_each(zero_versions);
}
