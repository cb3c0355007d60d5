//! Test helpers: the real config update fixtures and fresh config updates signed with
//! the fixture keys.

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
