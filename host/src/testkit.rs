//! Fixtures for the host's unit tests: Fabric's own artifacts in `testdata/fabric`
//! and the identities cryptogen made there.

use crate::client::configupdate::{self, BatchEdits};
use crate::identity::Signer;
use bytes::Bytes;
use fabric_protos::common::{Block, Envelope, HeaderType};
use prost::Message;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

pub const CHANNEL: &str = "mychannel";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/fabric")
}

/// The solo genesis block of `mychannel` (BatchTimeout 2s, MaxMessageCount 500).
pub fn solo_genesis() -> Vec<u8> {
    std::fs::read(fixtures().join("blocks/mychannel-solo-genesis.block")).unwrap()
}

/// The signer of a cryptogen identity folder (relative to `crypto/`).
pub fn signer(path: &str, msp_id: &str) -> Arc<Signer> {
    let dir = fixtures().join("crypto").join(path).join("msp");
    Arc::new(Signer::from_msp_dir(&dir, msp_id).expect("fixture signer"))
}

pub fn user1() -> Arc<Signer> {
    signer(
        "peerOrganizations/org1.example.com/users/User1@org1.example.com",
        "Org1MSP",
    )
}

pub fn org1_admin() -> Arc<Signer> {
    signer(
        "peerOrganizations/org1.example.com/users/Admin@org1.example.com",
        "Org1MSP",
    )
}

pub fn orderer0() -> Arc<Signer> {
    signer(
        "ordererOrganizations/example.com/orderers/orderer0.example.com",
        "OrdererMSP",
    )
}

pub fn orderer_admin() -> Arc<Signer> {
    signer(
        "ordererOrganizations/example.com/users/Admin@example.com",
        "OrdererMSP",
    )
}

/// A signed transaction, unique per `seed`, of `size` bytes of data.
pub fn tx(signer: &Signer, seed: u64, size: usize) -> Envelope {
    let mut data = seed.to_be_bytes().to_vec();
    data.resize(size.max(8), 0x5a);
    signer.signed_envelope(
        HeaderType::EndorserTransaction,
        CHANNEL,
        data.into(),
        SystemTime::now(),
    )
}

/// The CONFIG_UPDATE envelope a client sends for `edits` to the config of
/// `config_block`, signed (config signature and envelope) by `signer`.
pub fn batch_update(config_block: &Bytes, edits: &BatchEdits, signer: &Signer) -> Envelope {
    let block = Block::decode(config_block.clone()).unwrap();
    let original = configupdate::config_from_block(&block).unwrap();
    let updated = configupdate::apply_batch_edits(&original, edits).unwrap();
    let update = configupdate::compute_update(CHANNEL, &original, &updated).unwrap();
    let mut envelope = configupdate::unsigned_update(&update);
    configupdate::add_signature(&mut envelope, signer);
    configupdate::update_envelope(CHANNEL, &envelope, signer)
}
