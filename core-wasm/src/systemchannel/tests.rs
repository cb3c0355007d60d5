//! Channel creation against what the real Fabric v2.5.12 orderer did with the same
//! requests (`testdata/fabric/syschannel`: its answers and the configs it made).

use base64ct::{Base64, Encoding};
use fabric_protos::common::{
    Block, ChannelHeader, ConfigEnvelope, Envelope, HeaderType, Payload, Status,
};
use prost::Message;

use super::*;
use crate::channel::Channel;
use crate::config::testkit::{orderer0, read, user1};
use crate::crypto::NativeCrypto;

const NOW: u64 = 1_800_000_000_000_000_000;

fn system() -> ChannelConfig {
    ChannelConfig::from_config_block(&read("syschannel/system-solo-genesis.block"), &NativeCrypto)
        .unwrap()
}

fn system_channel() -> Channel<NativeCrypto> {
    let genesis = read("syschannel/system-solo-genesis.block");
    let header = Block::decode(genesis.as_slice()).unwrap().header.unwrap();
    Channel::open(NativeCrypto, &genesis, &header.encode_to_vec()).unwrap()
}

fn answers() -> serde_json::Value {
    serde_json::from_slice(&read("syschannel/answers.json")).unwrap()
}

fn case(name: &str) -> serde_json::Value {
    answers()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
        .clone()
}

fn envelope_of(case: &serde_json::Value) -> Vec<u8> {
    let file = case["envelope"].as_str().unwrap();
    let dir = if file.starts_with("appchannel") {
        ""
    } else {
        "envelopes/"
    };
    read(&format!("syschannel/{dir}{file}"))
}

/// The recorder (`tools/sysflow.py`) squeezed whitespace in the answers' texts.
fn squeeze(info: &str) -> String {
    info.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn reference_config(channel: &str) -> fabric_protos::common::Config {
    let b64 = answers()["reference"][format!("config_{channel}")]
        .as_str()
        .unwrap()
        .to_string();
    fabric_protos::common::Config::decode(Base64::decode_vec(&b64).unwrap().as_slice()).unwrap()
}

#[test]
fn the_system_channel_knows_its_consortium_orgs() {
    let system = system();
    assert!(system.is_system_channel());
    assert_eq!(system.max_channels, 0);
    // Org1MSP is only in the consortium, yet its identities are known.
    assert!(system.msps.creator(&user1().creator()).is_ok());
}

#[test]
fn creation_makes_the_config_fabric_made() {
    let request = read("syschannel/appchannel-create-signed.tx");
    let proposed = propose_channel_creation(&system(), &request, NOW, &NativeCrypto).unwrap();
    assert_eq!(proposed.config.unwrap(), reference_config("appchannel"));
    assert_eq!(proposed.last_update.unwrap().encode_to_vec(), request);

    let bad_sig = read("syschannel/envelopes/create-bad-outer-signature.env");
    let proposed = propose_channel_creation(&system(), &bad_sig, NOW, &NativeCrypto).unwrap();
    assert_eq!(proposed.config.unwrap(), reference_config("badsig-channel"));
}

#[test]
fn every_refused_request_gets_fabrics_answer() {
    for name in [
        "create.unknown_consortium",
        "create.org_not_in_consortium",
        "create.signed_by_app_client_only",
        "create.signed_by_orderer_admin_only",
        "create.unsigned_configtxgen_output",
        "create.mismatched_channel_ids",
        "create.invalid_channel_name",
        "unknown.config_update_garbage",
    ] {
        let case = case(name);
        let rejection =
            propose_channel_creation(&system(), &envelope_of(&case), NOW, &NativeCrypto)
                .expect_err(name);
        assert_eq!(rejection.status, Status::BadRequest, "{name}");
        assert_eq!(
            squeeze(&rejection.info),
            case["info"].as_str().unwrap(),
            "{name}"
        );
    }
}

/// What the host does with a proposal: a CONFIG envelope of the new channel inside an
/// ORDERER_TRANSACTION of the system channel, both signed by orderer0.
fn orderer_transaction(config_envelope: &[u8], new_channel: &str) -> Vec<u8> {
    let orderer = orderer0();
    let config_tx = orderer.envelope(new_channel, HeaderType::Config as i32, NOW, config_envelope);
    orderer.envelope(
        "system-channel",
        HeaderType::OrdererTransaction as i32,
        NOW,
        &config_tx,
    )
}

#[test]
fn the_system_chain_filter_passes_what_creation_proposed_and_nothing_else() {
    let system = system();
    let channel = system_channel();
    let request = read("syschannel/appchannel-create-signed.tx");
    let proposed = channel.propose_channel_creation(&request, NOW).unwrap();
    let tx = orderer_transaction(&proposed, "appchannel");
    assert!(validate_orderer_transaction(&system, &tx, 1, NOW, &NativeCrypto).is_ok());

    // A config that is not what the request makes.
    let mut changed = ConfigEnvelope::decode(proposed.as_slice()).unwrap();
    changed.config.as_mut().unwrap().sequence = 2;
    let tx = orderer_transaction(&changed.encode_to_vec(), "appchannel");
    let rejection = validate_orderer_transaction(&system, &tx, 1, NOW, &NativeCrypto).unwrap_err();
    assert_eq!(rejection.status, Status::BadRequest);
    assert_eq!(
        rejection.info,
        "config proposed by the channel creation request did not match the config received with the channel creation request"
    );

    // Not signed by an orderer: the system channel's Writers are the orderer org's.
    let config_tx = user1().envelope("appchannel", HeaderType::Config as i32, NOW, &proposed);
    let tx = user1().envelope(
        "system-channel",
        HeaderType::OrdererTransaction as i32,
        NOW,
        &config_tx,
    );
    let rejection = validate_orderer_transaction(&system, &tx, 1, NOW, &NativeCrypto).unwrap_err();
    assert_eq!(rejection.status, Status::Forbidden);
}

#[test]
fn max_channels_counts_the_system_channel() {
    let mut system = system();
    system.max_channels = 2;
    let request = read("syschannel/appchannel-create-signed.tx");
    let proposed = propose_channel_creation(&system, &request, NOW, &NativeCrypto).unwrap();
    let tx = orderer_transaction(&proposed.encode_to_vec(), "appchannel");
    assert!(validate_orderer_transaction(&system, &tx, 2, NOW, &NativeCrypto).is_ok());
    let rejection = validate_orderer_transaction(&system, &tx, 3, NOW, &NativeCrypto).unwrap_err();
    assert_eq!(
        rejection.info,
        "channel creation would exceed maximimum number of channels: 2"
    );
}

#[test]
fn an_orderer_transaction_is_ordered_alone_and_is_not_a_config_block() {
    let mut channel = system_channel();
    let normal = orderer0().envelope(
        "system-channel",
        HeaderType::EndorserTransaction as i32,
        NOW,
        b"tx",
    );
    assert!(channel.order(&normal, 0, NOW).blocks.is_empty());
    let request = read("syschannel/appchannel-create-signed.tx");
    let proposed = channel.propose_channel_creation(&request, NOW).unwrap();
    let tx = orderer_transaction(&proposed, "appchannel");
    let cut = channel.order(&tx, 0, NOW);
    assert_eq!(
        cut.blocks.len(),
        2,
        "the pending tx, then the creation alone"
    );
    assert!(cut.blocks.iter().all(|b| !b.is_config));
    assert!(!cut.pending);
    assert_eq!(channel.config_sequence(), 0);
    let block = Block::decode(cut.blocks[1].encoded.as_slice()).unwrap();
    let data = block.data.unwrap().data;
    assert_eq!(data.len(), 1);
    let payload = Payload::decode(Envelope::decode(data[0].as_ref()).unwrap().payload).unwrap();
    let chdr = ChannelHeader::decode(payload.header.unwrap().channel_header).unwrap();
    assert_eq!(chdr.r#type, HeaderType::OrdererTransaction as i32);
}
