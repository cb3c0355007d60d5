use super::testkit::*;
use super::*;
use crate::config::testkit::{
    admin1, envelope_time_nanos, etcdraft_config, orderer_admin, read, user1,
};
use crate::crypto::NativeCrypto;
use fabric_protos::common::{ConfigGroup, ConfigUpdate, ConfigValue, Status};
use fabric_protos::orderer as ab;

const C: &NativeCrypto = &NativeCrypto;

fn now() -> u64 {
    envelope_time_nanos(&read(ORDERER_ADMIN_UPDATE))
}

fn refused(info: &str) -> Rejection {
    Rejection::bad_request(format!(
        "error applying config update to existing channel 'mychannel': {info}"
    ))
}

const ADMINS_NOT_SATISFIED: &str = "implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Admins' sub-policies to be satisfied";

fn orderer_group(update: &mut ConfigUpdate) -> &mut ConfigGroup {
    update
        .write_set
        .as_mut()
        .unwrap()
        .groups
        .get_mut("Orderer")
        .unwrap()
}

fn batch_size_value(max_message_count: u32) -> Bytes {
    ab::BatchSize {
        max_message_count,
        absolute_max_bytes: 10_485_760,
        preferred_max_bytes: 2_097_152,
    }
    .encode_to_vec()
    .into()
}

/// The real orderer refused the Org1-admin-signed update with this exact text.
#[test]
fn fabric_org1_admin_update_refused_with_fabric_text() {
    let err =
        propose_config_update(&etcdraft_config(), &read(ORG1_ADMIN_UPDATE), now(), C).unwrap_err();
    assert_eq!(err.status, Status::BadRequest);
    assert_eq!(
        err.info,
        "error applying config update to existing channel 'mychannel': error authorizing update: error validating DeltaSet: policy for [Value]  /Channel/Orderer/BatchSize not satisfied: implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Admins' sub-policies to be satisfied"
    );
}

/// The real orderer accepted the orderer-admin-signed update and wrote config
/// block 1: we compute the same config (sequence, versions, mod_policies, values).
#[test]
fn fabric_orderer_admin_update_gives_fabric_config() {
    let envelope = read(ORDERER_ADMIN_UPDATE);
    let result = propose_config_update(&etcdraft_config(), &envelope, now(), C).unwrap();
    let expected = block_config(CONFIG_BLOCK_1);
    let config = result.config.clone().unwrap();
    assert_eq!(config.sequence, 1);
    assert_eq!(config, expected);
    let orderer = &config.channel_group.as_ref().unwrap().groups["Orderer"];
    assert_eq!(orderer.version, 0);
    assert_eq!(orderer.values["BatchSize"].version, 1);
    assert_eq!(orderer.values["BatchSize"].mod_policy, "Admins");
    assert_eq!(orderer.values["BatchTimeout"].version, 1);
    assert_eq!(orderer.values["ConsensusType"].version, 0);
    // last_update is the envelope as received.
    assert_eq!(result.last_update.unwrap().encode_to_vec(), envelope);
    // The block's own ConfigEnvelope names the same last update.
    let fabric = config_envelope_of(&fabric_config_envelope());
    assert_eq!(fabric.last_update.unwrap().encode_to_vec(), envelope);
    // The resulting config parses, with the new batch parameters.
    let next = ChannelConfig::from_config("mychannel", &config, C).unwrap();
    assert_eq!(next.batch_size.max_message_count, 10);
    assert_eq!(next.batch_timeout_ms, 1000);
}

/// A freshly signed copy of the same update: accepted when an orderer admin signs
/// the ConfigUpdate, whoever signs the envelope; refused when only Org1's admin
/// does.
#[test]
fn fresh_signatures_decide() {
    let update = fixture_update();
    let config = etcdraft_config();
    let ok = update_envelope(&update, &[&orderer_admin()], &user1(), now());
    let result = propose_config_update(&config, &ok, now(), C).unwrap();
    assert_eq!(result.config.unwrap(), block_config(CONFIG_BLOCK_1));
    let both = update_envelope(&update, &[&admin1(), &orderer_admin()], &admin1(), now());
    assert!(propose_config_update(&config, &both, now(), C).is_ok());
    let org1 = update_envelope(&update, &[&admin1()], &orderer_admin(), now());
    assert_eq!(
        propose_config_update(&config, &org1, now(), C).unwrap_err(),
        refused(&format!(
            "error authorizing update: error validating DeltaSet: policy for [Value]  /Channel/Orderer/BatchSize not satisfied: {ADMINS_NOT_SATISFIED}"
        ))
    );
}

#[test]
fn unsigned_update_is_refused() {
    // The envelope is signed by the orderer admin, but the ConfigUpdate by no one.
    let env = update_envelope(&fixture_update(), &[], &orderer_admin(), now());
    assert_eq!(
        propose_config_update(&etcdraft_config(), &env, now(), C).unwrap_err(),
        refused(&format!(
            "error authorizing update: error validating DeltaSet: policy for [Value]  /Channel/Orderer/BatchSize not satisfied: {ADMINS_NOT_SATISFIED}"
        ))
    );
}

/// The same signer twice counts once: still refused for Org1's admin, still
/// accepted (same config) for the orderer admin.
#[test]
fn duplicated_signatures() {
    let update = fixture_update();
    let config = etcdraft_config();
    let twice = update_envelope(&update, &[&admin1(), &admin1()], &admin1(), now());
    assert_eq!(
        propose_config_update(&config, &twice, now(), C).unwrap_err(),
        refused(&format!(
            "error authorizing update: error validating DeltaSet: policy for [Value]  /Channel/Orderer/BatchSize not satisfied: {ADMINS_NOT_SATISFIED}"
        ))
    );
    let admin = orderer_admin();
    let twice = update_envelope(&update, &[&admin, &admin], &admin, now());
    let result = propose_config_update(&config, &twice, now(), C).unwrap();
    assert_eq!(result.config.unwrap(), block_config(CONFIG_BLOCK_1));
    // A verbatim duplicate of the fixture's own signature as well.
    let mut env = Envelope::decode(read(ORDERER_ADMIN_UPDATE).as_slice()).unwrap();
    let mut payload = Payload::decode(env.payload.clone()).unwrap();
    let mut update_env = ConfigUpdateEnvelope::decode(payload.data.clone()).unwrap();
    update_env.signatures.push(update_env.signatures[0].clone());
    payload.data = update_env.encode_to_vec().into();
    env.payload = payload.encode_to_vec().into();
    assert!(propose_config_update(&config, &env.encode_to_vec(), now(), C).is_ok());
}

/// The fixture update replayed on the config it produced: its read set (group
/// Orderer at version 0) still matches, but BatchSize is at version 1 already.
#[test]
fn replayed_update_has_a_wrong_write_set_version() {
    let config = ChannelConfig::from_config_block(&read(CONFIG_BLOCK_1), C).unwrap();
    assert_eq!(
        propose_config_update(&config, &read(ORDERER_ADMIN_UPDATE), now(), C).unwrap_err(),
        refused(
            "error authorizing update: error validating DeltaSet: attempt to set key [Value]  /Channel/Orderer/BatchSize to version 1, but key is at version 1"
        )
    );
}

#[test]
fn write_set_versions_must_be_next() {
    let config = etcdraft_config();
    let mut update = fixture_update();
    orderer_group(&mut update)
        .values
        .get_mut("BatchSize")
        .unwrap()
        .version = 2;
    let env = update_envelope(&update, &[&orderer_admin()], &orderer_admin(), now());
    assert_eq!(
        propose_config_update(&config, &env, now(), C).unwrap_err(),
        refused(
            "error authorizing update: error validating DeltaSet: attempt to set key [Value]  /Channel/Orderer/BatchSize to version 2, but key is at version 0"
        )
    );
    // A new element must start at version 0.
    let mut update = fixture_update();
    let mut value = orderer_group(&mut update).values["BatchSize"].clone();
    value.version = 1;
    orderer_group(&mut update)
        .values
        .insert("Extra".into(), value);
    let env = update_envelope(&update, &[&orderer_admin()], &orderer_admin(), now());
    assert_eq!(
        propose_config_update(&config, &env, now(), C).unwrap_err(),
        refused(
            "error authorizing update: error validating DeltaSet: attempted to set key [Value]  /Channel/Orderer/Extra to version 1, but key does not exist"
        )
    );
}

/// A read set version that is not the current one (the config moved on).
#[test]
fn stale_read_set_is_refused() {
    let config = ChannelConfig::from_config_block(&read(CONFIG_BLOCK_1), C).unwrap();
    let mut update = fixture_update();
    let mut read_value = orderer_group(&mut update).values["BatchSize"].clone();
    read_value.version = 0;
    read_value.value = Bytes::new();
    read_value.mod_policy = String::new();
    update
        .read_set
        .as_mut()
        .unwrap()
        .groups
        .get_mut("Orderer")
        .unwrap()
        .values
        .insert("BatchSize".into(), read_value);
    let env = update_envelope(&update, &[&orderer_admin()], &orderer_admin(), now());
    assert_eq!(
        propose_config_update(&config, &env, now(), C).unwrap_err(),
        refused(
            "error authorizing update: error validating ReadSet: proposed update requires that key [Value]  /Channel/Orderer/BatchSize be at version 0, but it is currently at version 1"
        )
    );
    // An element the config does not have.
    let mut update = fixture_update();
    update
        .read_set
        .as_mut()
        .unwrap()
        .groups
        .insert("Consortiums".into(), ConfigGroup::default());
    let env = update_envelope(&update, &[&orderer_admin()], &orderer_admin(), now());
    assert_eq!(
        propose_config_update(&config, &env, now(), C).unwrap_err(),
        refused(
            "error authorizing update: error validating ReadSet: existing config does not contain element for [Group]  /Channel/Consortiums but was in the read set"
        )
    );
}

#[test]
fn wrong_channel_id_is_refused() {
    let mut update = fixture_update();
    update.channel_id = "otherchannel".into();
    let env = update_envelope(&update, &[&orderer_admin()], &orderer_admin(), now());
    assert_eq!(
        propose_config_update(&etcdraft_config(), &env, now(), C).unwrap_err(),
        refused(
            "error authorizing update: ConfigUpdate for channel 'otherchannel' but envelope for channel 'mychannel'"
        )
    );
}

#[test]
fn update_that_changes_nothing_is_refused() {
    let mut update = fixture_update();
    update.write_set = update.read_set.clone();
    let env = update_envelope(&update, &[&orderer_admin()], &orderer_admin(), now());
    assert_eq!(
        propose_config_update(&etcdraft_config(), &env, now(), C).unwrap_err(),
        refused(
            "error authorizing update: error validating DeltaSet: delta set was empty -- update would have no effect"
        )
    );
}

#[test]
fn mod_policy_must_be_set_and_valid() {
    for (mod_policy, text) in [
        ("", "mod_policy not set"),
        (
            "/Channel//Admins",
            "path element at 1 is invalid: config ID illegal, cannot be empty",
        ),
        (
            "../Admins",
            "path element at 0 is invalid: name '..' for config ID is not allowed",
        ),
        (
            "Ad mins",
            "path element at 0 is invalid: config ID 'Ad mins' contains illegal characters",
        ),
    ] {
        let mut update = fixture_update();
        orderer_group(&mut update)
            .values
            .get_mut("BatchSize")
            .unwrap()
            .mod_policy = mod_policy.into();
        let env = update_envelope(&update, &[&orderer_admin()], &orderer_admin(), now());
        assert_eq!(
            propose_config_update(&etcdraft_config(), &env, now(), C).unwrap_err(),
            refused(&format!(
                "error authorizing update: error validating DeltaSet: invalid mod_policy for element [Value]  /Channel/Orderer/BatchSize: {text}"
            ))
        );
    }
    // A mod_policy naming no policy.
    let mut update = fixture_update();
    orderer_group(&mut update)
        .values
        .get_mut("BatchSize")
        .unwrap()
        .mod_policy = "Admins".into();
    let mut config = etcdraft_config();
    config
        .config
        .channel_group
        .as_mut()
        .unwrap()
        .groups
        .get_mut("Orderer")
        .unwrap()
        .values
        .get_mut("BatchSize")
        .unwrap()
        .mod_policy = "NoSuchPolicy".into();
    let env = update_envelope(&update, &[&orderer_admin()], &orderer_admin(), now());
    assert_eq!(
        propose_config_update(&config, &env, now(), C).unwrap_err(),
        refused(
            "error authorizing update: error validating DeltaSet: unexpected missing policy NoSuchPolicy for item [Value]  /Channel/Orderer/BatchSize"
        )
    );
}

#[test]
fn illegal_keys_are_refused() {
    let mut update = fixture_update();
    let value = orderer_group(&mut update).values["BatchSize"].clone();
    orderer_group(&mut update)
        .values
        .insert("Batch Size".into(), value);
    let env = update_envelope(&update, &[&orderer_admin()], &orderer_admin(), now());
    assert_eq!(
        propose_config_update(&etcdraft_config(), &env, now(), C).unwrap_err(),
        refused(
            "error authorizing update: error mapping WriteSet: illegal characters in key: [Value]  : config ID 'Batch Size' contains illegal characters"
        )
    );
}

/// A new element is authorized through its group: the group's version must move
/// (its mod_policy is then checked); without that, Fabric drops the element.
#[test]
fn new_elements_go_through_their_group() {
    let config = etcdraft_config();
    let current = config.config.channel_group.clone().unwrap();
    let extra = ConfigValue {
        version: 0,
        value: Bytes::from_static(b"x"),
        mod_policy: "Admins".into(),
    };
    // Group bumped: the full group in the write set, Orderer's Admins decide.
    let mut update = fixture_update();
    let mut group = current.groups["Orderer"].clone();
    group.version = 1;
    group.values.insert("Extra".into(), extra.clone());
    update
        .write_set
        .as_mut()
        .unwrap()
        .groups
        .insert("Orderer".into(), group);
    // The unchanged members at their versions in the read set, as compute_update
    // writes them.
    update
        .read_set
        .as_mut()
        .unwrap()
        .groups
        .insert("Orderer".into(), current.groups["Orderer"].clone());
    let refused_env = update_envelope(&update, &[&admin1()], &admin1(), now());
    assert_eq!(
        propose_config_update(&config, &refused_env, now(), C).unwrap_err(),
        refused(&format!(
            "error authorizing update: error validating DeltaSet: policy for [Group]  /Channel/Orderer not satisfied: {ADMINS_NOT_SATISFIED}"
        ))
    );
    let env = update_envelope(&update, &[&orderer_admin()], &orderer_admin(), now());
    let next = propose_config_update(&config, &env, now(), C)
        .unwrap()
        .config
        .unwrap();
    let orderer = &next.channel_group.as_ref().unwrap().groups["Orderer"];
    assert_eq!(orderer.version, 1);
    assert_eq!(orderer.values["Extra"], extra);
    // Group not bumped: accepted, and the new value is not in the result.
    let mut update = fixture_update();
    orderer_group(&mut update)
        .values
        .insert("Extra".into(), extra);
    let env = update_envelope(&update, &[&orderer_admin()], &orderer_admin(), now());
    let next = propose_config_update(&config, &env, now(), C)
        .unwrap()
        .config
        .unwrap();
    assert_eq!(next, block_config(CONFIG_BLOCK_1));
}

/// The result must be a valid channel config.
#[test]
fn invalid_result_config_is_refused() {
    let mut update = fixture_update();
    orderer_group(&mut update)
        .values
        .get_mut("BatchSize")
        .unwrap()
        .value = batch_size_value(0);
    let env = update_envelope(&update, &[&orderer_admin()], &orderer_admin(), now());
    assert_eq!(
        propose_config_update(&etcdraft_config(), &env, now(), C).unwrap_err(),
        refused("Attempted to set the batch size max message count to an invalid value: 0")
    );
}

#[test]
fn not_a_config_update_envelope() {
    let env = orderer_admin().envelope(
        "mychannel",
        HeaderType::EndorserTransaction as i32,
        now(),
        b"",
    );
    assert_eq!(
        propose_config_update(&etcdraft_config(), &env, now(), C).unwrap_err(),
        refused(
            "error converting envelope to config update: invalid type ENDORSER_TRANSACTION, expected CONFIG_UPDATE"
        )
    );
    let err = propose_config_update(&etcdraft_config(), b"\xff", now(), C).unwrap_err();
    assert_eq!(err.status, Status::BadRequest);
}

/// Fabric's own CONFIG envelope (block 1) passes ProcessConfigMsg's checks on the
/// genesis config, and only there.
#[test]
fn validate_config_accepts_fabric_config_envelope() {
    let env = fabric_config_envelope();
    let t = envelope_time_nanos(&env);
    validate_config(&etcdraft_config(), &env, t, C).unwrap();
    let later = ChannelConfig::from_config_block(&read(CONFIG_BLOCK_1), C).unwrap();
    let err = validate_config(&later, &env, t, C).unwrap_err();
    assert_eq!(err.status, Status::BadRequest);
    assert_eq!(
        err.info,
        "config currently at sequence 1, cannot validate config at sequence 1"
    );
}

fn config_envelope_bytes(config: Config, last_update: &[u8]) -> Vec<u8> {
    ConfigEnvelope {
        config: Some(config),
        last_update: Some(Envelope::decode(last_update).unwrap()),
    }
    .encode_to_vec()
}

#[test]
fn validate_config_refusals() {
    let genesis = etcdraft_config();
    let t = now();
    let last_update = read(ORDERER_ADMIN_UPDATE);
    let orderer0 = crate::config::testkit::orderer0();
    let good = block_config(CONFIG_BLOCK_1);
    let sign = |config: Config, last_update: &[u8]| {
        orderer0.envelope(
            "mychannel",
            HeaderType::Config as i32,
            t,
            &config_envelope_bytes(config, last_update),
        )
    };
    validate_config(&genesis, &sign(good.clone(), &last_update), t, C).unwrap();

    // A config the last update does not produce.
    let mut tampered = good.clone();
    tampered
        .channel_group
        .as_mut()
        .unwrap()
        .groups
        .get_mut("Orderer")
        .unwrap()
        .values
        .get_mut("BatchSize")
        .unwrap()
        .value = batch_size_value(11);
    assert_eq!(
        validate_config(&genesis, &sign(tampered, &last_update), t, C).unwrap_err(),
        Rejection::bad_request(
            "ConfigEnvelope LastUpdate did not produce the supplied config result"
        )
    );
    // A last update not signed by an orderer admin.
    assert_eq!(
        validate_config(
            &genesis,
            &sign(good.clone(), &read(ORG1_ADMIN_UPDATE)),
            t,
            C
        )
        .unwrap_err(),
        refused(&format!(
            "error authorizing update: error validating DeltaSet: policy for [Value]  /Channel/Orderer/BatchSize not satisfied: {ADMINS_NOT_SATISFIED}"
        ))
    );
    // The CONFIG envelope's own signature must verify (final checks).
    let mut env = Envelope::decode(sign(good.clone(), &last_update).as_slice()).unwrap();
    env.signature = crate::config::testkit::sign(&orderer0.key, b"other").into();
    let err = validate_config(&genesis, &env.encode_to_vec(), t, C).unwrap_err();
    assert_eq!(err.status, Status::Forbidden);
    assert_eq!(
        err.info,
        "config update for existing channel did not pass final checks: implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Writers' sub-policies to be satisfied: permission denied"
    );
    // Not a CONFIG envelope.
    let err = validate_config(&genesis, &last_update, t, C).unwrap_err();
    assert_eq!(
        err,
        Rejection::bad_request("invalid type CONFIG_UPDATE, expected CONFIG")
    );
    // Too big for the channel (final checks: size).
    let mut small = genesis.clone();
    small.batch_size.absolute_max_bytes = 5000;
    small.batch_size.preferred_max_bytes = 5000;
    let err = validate_config(&small, &sign(good, &last_update), t, C).unwrap_err();
    assert_eq!(err.status, Status::BadRequest);
    assert!(
        err.info.starts_with(
            "config update for existing channel did not pass final checks: message payload is"
        ),
        "{}",
        err.info
    );
}
