//! Blocks as Raft entries, and the Raft metadata each written block carries.
//!
//! The leader proposes each block it cuts as the data of a normal entry: a marshalled
//! `common.Block` with header, data and the five empty metadata slots Fabric's
//! `protoutil.NewBlock` makes (a Fabric follower fills the slots in place, so they must
//! be there). Every node, the leader too, writes the block when its entry commits,
//! signing it itself and recording `etcdraft.BlockMetadata` with the entry's index.

use crate::component::CoreBlock;
use bytes::{BufMut, Bytes, BytesMut};
use fabric_protos::common::{Block, ConfigEnvelope, Envelope, HeaderType, Payload};
use fabric_protos::orderer::etcdraft::BlockMetadata;
use ordering_core::NativeCrypto;
use ordering_core::blockheader::header_der;
use prost::Message;

/// `common.Block.metadata` holding five empty slots, with its field tag and length.
const EMPTY_METADATA: [u8; 12] = [0x1a, 10, 0x0a, 0, 0x0a, 0, 0x0a, 0, 0x0a, 0, 0x0a, 0];

#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("entry is not a block: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("block has no header")]
    NoHeader,
    #[error("config block without a config: {0}")]
    Config(String),
}

/// The data of the entry proposing `block`.
pub fn entry_data(block: &CoreBlock) -> Bytes {
    let mut out = BytesMut::with_capacity(block.encoded.len() + EMPTY_METADATA.len());
    out.put_slice(&block.encoded);
    out.put_slice(&EMPTY_METADATA);
    out.freeze()
}

/// A committed entry's block, as the core would have built it, and for a config
/// block the sequence of the config it carries.
pub fn entry_block(data: &[u8]) -> Result<(CoreBlock, Option<u64>), EntryError> {
    let block = Block::decode(data)?;
    let header = block.header.clone().ok_or(EntryError::NoHeader)?;
    let envelopes = block.data.clone().unwrap_or_default().data;
    let sequence = match envelopes.as_slice() {
        [only] => config_sequence(only)?,
        _ => None,
    };
    let core = CoreBlock {
        number: header.number,
        header_der: header_der(&header),
        encoded: Block {
            header: Some(header),
            data: block.data,
            metadata: None,
        }
        .encode_to_vec(),
        is_config: sequence.is_some(),
    };
    Ok((core, sequence))
}

/// The config sequence of a CONFIG envelope; `None` for any other envelope.
fn config_sequence(envelope: &[u8]) -> Result<Option<u64>, EntryError> {
    let bad = |e: prost::DecodeError| EntryError::Config(e.to_string());
    let Ok(envelope) = Envelope::decode(envelope) else {
        return Ok(None);
    };
    let Ok(payload) = Payload::decode(envelope.payload) else {
        return Ok(None);
    };
    let Some(header) = payload.header else {
        return Ok(None);
    };
    let Ok(channel_header) = fabric_protos::common::ChannelHeader::decode(header.channel_header)
    else {
        return Ok(None);
    };
    if channel_header.r#type != HeaderType::Config as i32 {
        return Ok(None);
    }
    let config = ConfigEnvelope::decode(payload.data).map_err(bad)?;
    let config = config
        .config
        .ok_or_else(|| EntryError::Config("ConfigEnvelope.config is empty".into()))?;
    Ok(Some(config.sequence))
}

/// The SHA-256 of a block's DER header: the next block's previous hash.
pub fn header_hash(block: &CoreBlock) -> Vec<u8> {
    use ordering_core::Crypto;
    NativeCrypto.sha256(&block.header_der).to_vec()
}

/// The consenter metadata of a block written at Raft index `index`.
pub fn raft_metadata(metadata: &BlockMetadata, index: u64) -> Bytes {
    BlockMetadata {
        raft_index: index,
        ..metadata.clone()
    }
    .encode_to_vec()
    .into()
}
