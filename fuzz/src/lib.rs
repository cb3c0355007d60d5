//! What the fuzz targets share: Fabric's real fixtures (`testdata/fabric`), the
//! channels they open, and a crypto that accepts every signature.

use std::path::PathBuf;

use fabric_protos::common::{Block, BlockHeader, ChannelHeader, Envelope, HeaderType, Payload};
use ordering_core::config::ChannelConfig;
use ordering_core::{Crypto, NativeCrypto};
use prost::Message;

/// mychannel's genesis block (etcdraft, no system channel).
pub const APP_GENESIS: &str = "blocks/mychannel-etcdraft-genesis.block";
/// The system channel's genesis block (solo, with a consortium).
pub const SYSTEM_GENESIS: &str = "syschannel/system-solo-genesis.block";

/// 2026-11-24T10:00:00Z, the day the fixtures were made: their certificates are valid
/// and their timestamps recent.
pub const NOW: u64 = 1_795_514_400_000_000_000;

/// `testdata/fabric/<rel>`.
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/fabric")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Real SHA-256, but every ECDSA signature verifies: mutated envelopes get past the
/// signature checks to the policy, config and cutter code behind them. (The DER and
/// low-S checks the core makes itself still run.)
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptAll;

impl Crypto for AcceptAll {
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        NativeCrypto.sha256(data)
    }

    fn verify_p256(&self, _: &[u8], _: &[u8], _: &[u8]) -> bool {
        true
    }
}

/// A config block's channel config (under [`AcceptAll`]) and its header, the tip a
/// channel opened at it builds on.
pub fn config_at(rel: &str) -> (ChannelConfig, BlockHeader) {
    let block = fixture(rel);
    let config = ChannelConfig::from_config_block(&block, &AcceptAll).expect("a config block");
    let header = Block::decode(block.as_slice())
        .expect("a block")
        .header
        .expect("a header");
    (config, header)
}

/// The envelopes of a block, as they are stored.
pub fn block_envelopes(block: &[u8]) -> Vec<Vec<u8>> {
    let block = Block::decode(block).expect("a block");
    block
        .data
        .map(|d| d.data)
        .unwrap_or_default()
        .into_iter()
        .map(Vec::from)
        .collect()
}

/// An envelope of type `kind` on `channel` carrying `data`, with the creator, nonce
/// and signature of the fixture envelope `template`: under [`AcceptAll`], signed by
/// that creator.
pub fn envelope_like(template: &[u8], kind: HeaderType, channel: &str, data: &[u8]) -> Vec<u8> {
    let mut envelope = Envelope::decode(template).expect("an envelope");
    let mut payload = Payload::decode(envelope.payload.as_ref()).expect("a payload");
    let header = payload.header.as_mut().expect("a header");
    let mut chdr = ChannelHeader::decode(header.channel_header.as_ref()).expect("a channel header");
    chdr.r#type = kind as i32;
    chdr.channel_id = channel.into();
    header.channel_header = chdr.encode_to_vec().into();
    payload.data = data.to_vec().into();
    envelope.payload = payload.encode_to_vec().into();
    envelope.encode_to_vec()
}
