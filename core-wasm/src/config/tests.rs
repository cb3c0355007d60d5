use super::testkit::*;
use super::*;
use crate::crypto::NativeCrypto;

#[test]
fn etcdraft_genesis_block() {
    let c = etcdraft_config();
    assert_eq!(c.channel_id, "mychannel");
    assert_eq!(c.sequence, 0);
    assert_eq!(
        c.batch_size,
        BatchSize {
            max_message_count: 500,
            absolute_max_bytes: 10_485_760,
            preferred_max_bytes: 2_097_152,
        }
    );
    assert_eq!(c.batch_timeout_ms, 2000);
    assert_eq!(c.consensus.kind, "etcdraft");
    assert!(!c.consensus.maintenance);
    assert_eq!(c.etcdraft_consenters(), Some(1));
    assert_eq!(c.channel_capabilities, vec!["V2_0"]);
    assert_eq!(c.orderer_capabilities, vec!["V2_0"]);
    assert_eq!(c.application_capabilities, vec!["V2_5"]);
    assert_eq!(c.msps.msp_ids(), vec!["OrdererMSP", "Org1MSP"]);
    assert_eq!(c.orderer_org_ids, vec!["OrdererMSP"]);
    assert_eq!(c.application_org_ids, vec!["Org1MSP"]);
    assert!(c.expiration_check());
    assert!(c.consensus_type_migration());
}

#[test]
fn delivered_block_0_equals_genesis() {
    let a = ChannelConfig::from_config_block(
        &read("blocks/mychannel-etcdraft-block-0.block"),
        &NativeCrypto,
    )
    .unwrap();
    assert_eq!(a.batch_size, etcdraft_config().batch_size);
}

#[test]
fn solo_genesis_block() {
    let c = ChannelConfig::from_config_block(
        &read("blocks/mychannel-solo-genesis.block"),
        &NativeCrypto,
    )
    .unwrap();
    assert_eq!(c.channel_id, "mychannel");
    assert_eq!(c.consensus.kind, "solo");
    assert_eq!(c.etcdraft_consenters(), None);
    assert_eq!(c.batch_timeout_ms, 2000);
    assert_eq!(c.msps.msp_ids(), vec!["OrdererMSP", "Org1MSP"]);
}

#[test]
fn later_config_block_and_config_envelope() {
    // The real orderer's block 1 after the BatchSize/BatchTimeout update.
    let c = ChannelConfig::from_config_block(&read("updates/config-block-1.block"), &NativeCrypto)
        .unwrap();
    assert_eq!(c.sequence, 1);
    assert_eq!(c.batch_size.max_message_count, 10);
    assert_eq!(c.batch_timeout_ms, 1000);
    let env = &block_envelopes("updates/config-block-1.block")[0];
    let e = ChannelConfig::from_config_envelope(env, &NativeCrypto).unwrap();
    assert_eq!(e.sequence, 1);
    assert_eq!(e.batch_size, c.batch_size);
}

#[test]
fn rejects_non_config_inputs() {
    assert!(ChannelConfig::from_config_block(b"\xff\xff", &NativeCrypto).is_err());
    let normal = &block_envelopes("blocks/mychannel-etcdraft-block-1.block")[0];
    let err = ChannelConfig::from_config_envelope(normal, &NativeCrypto)
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected CONFIG"), "{err}");
    let err = ChannelConfig::from_config_block(
        &read("blocks/mychannel-etcdraft-block-1.block"),
        &NativeCrypto,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("expected CONFIG"), "{err}");
}

/// The genesis `Config`, for edits.
fn genesis_config() -> Config {
    let env = &block_envelopes("blocks/mychannel-etcdraft-genesis.block")[0];
    let env = Envelope::decode(env.as_slice()).unwrap();
    let payload = Payload::decode(env.payload.as_ref()).unwrap();
    ConfigEnvelope::decode(payload.data.as_ref())
        .unwrap()
        .config
        .unwrap()
}

fn orderer_value<'a>(
    config: &'a mut Config,
    key: &str,
) -> &'a mut fabric_protos::common::ConfigValue {
    config
        .channel_group
        .as_mut()
        .unwrap()
        .groups
        .get_mut(ORDERER_GROUP)
        .unwrap()
        .values
        .get_mut(key)
        .unwrap()
}

#[test]
fn validates_batch_size_and_timeout_like_fabric() {
    let cases: &[(ab::BatchSize, &str)] = &[
        (
            ab::BatchSize {
                max_message_count: 0,
                absolute_max_bytes: 10,
                preferred_max_bytes: 5,
            },
            "Attempted to set the batch size max message count to an invalid value: 0",
        ),
        (
            ab::BatchSize {
                max_message_count: 1,
                absolute_max_bytes: 0,
                preferred_max_bytes: 5,
            },
            "Attempted to set the batch size absolute max bytes to an invalid value: 0",
        ),
        (
            ab::BatchSize {
                max_message_count: 1,
                absolute_max_bytes: 10,
                preferred_max_bytes: 0,
            },
            "Attempted to set the batch size preferred max bytes to an invalid value: 0",
        ),
        (
            ab::BatchSize {
                max_message_count: 1,
                absolute_max_bytes: 10,
                preferred_max_bytes: 11,
            },
            "Attempted to set the batch size preferred max bytes (11) greater than the absolute max bytes (10).",
        ),
    ];
    for (bs, text) in cases {
        let mut config = genesis_config();
        orderer_value(&mut config, BATCH_SIZE_KEY).value = bs.encode_to_vec().into();
        let err = ChannelConfig::from_config("mychannel", &config, &NativeCrypto)
            .unwrap_err()
            .to_string();
        assert_eq!(&err, text);
    }
    for (timeout, text) in [
        (
            "0s",
            "Attempted to set the batch timeout to a non-positive value: 0s",
        ),
        (
            "2 s",
            "Attempted to set the batch timeout to a invalid value: time: unknown unit \" s\" in duration \"2 s\"",
        ),
    ] {
        let mut config = genesis_config();
        orderer_value(&mut config, BATCH_TIMEOUT_KEY).value = ab::BatchTimeout {
            timeout: timeout.into(),
        }
        .encode_to_vec()
        .into();
        let err = ChannelConfig::from_config("mychannel", &config, &NativeCrypto)
            .unwrap_err()
            .to_string();
        assert_eq!(err, text);
    }
    let mut config = genesis_config();
    orderer_value(&mut config, BATCH_TIMEOUT_KEY).value = ab::BatchTimeout {
        timeout: "250us".into(),
    }
    .encode_to_vec()
    .into();
    let c = ChannelConfig::from_config("mychannel", &config, &NativeCrypto).unwrap();
    assert_eq!(c.batch_timeout_ms, 1, "sub-millisecond timeouts round up");
}

#[test]
fn refuses_unsupported_capabilities() {
    let mut config = genesis_config();
    let caps = orderer_value(&mut config, CAPABILITIES_KEY);
    let mut c = Capabilities::decode(caps.value.as_ref()).unwrap();
    c.capabilities.insert("V9_9".into(), Default::default());
    caps.value = c.encode_to_vec().into();
    let err = ChannelConfig::from_config("mychannel", &config, &NativeCrypto)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "Orderer capability V9_9 is required but not supported");
}

#[test]
fn maintenance_state_and_expiration_capability() {
    let mut config = genesis_config();
    let v = orderer_value(&mut config, CONSENSUS_TYPE_KEY);
    let mut ct = ab::ConsensusType::decode(v.value.as_ref()).unwrap();
    ct.state = consensus_type::State::Maintenance as i32;
    v.value = ct.encode_to_vec().into();
    let caps = orderer_value(&mut config, CAPABILITIES_KEY);
    caps.value = Capabilities::default().encode_to_vec().into();
    let c = ChannelConfig::from_config("mychannel", &config, &NativeCrypto).unwrap();
    assert!(c.consensus.maintenance);
    assert!(c.orderer_capabilities.is_empty());
    assert!(!c.expiration_check());
    assert!(!c.consensus_type_migration());
}

#[test]
fn go_durations() {
    let ok = [
        ("2s", 2_000_000_000i64),
        ("500ms", 500_000_000),
        ("1m30s", 90_000_000_000),
        ("1.5h", 5_400_000_000_000),
        ("1h2m3.25s", 3_723_250_000_000),
        ("10us", 10_000),
        ("10µs", 10_000),
        ("7ns", 7),
        (".5s", 500_000_000),
        ("0", 0),
        ("-3s", -3_000_000_000),
        ("+3s", 3_000_000_000),
    ];
    for (text, nanos) in ok {
        assert_eq!(parse_go_duration(text), Ok(nanos), "{text}");
    }
    for bad in ["", "2", "s", "2x", "1.s.", "-", "3000000h"] {
        assert!(parse_go_duration(bad).is_err(), "{bad}");
    }
}
