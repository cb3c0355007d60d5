//! Channels created through the system channel (Fabric's registrar `newChain` and
//! the ORDERER_TRANSACTION case of its block writer). The ORDERER_TRANSACTION block
//! carries the new channel's CONFIG envelope. Before that block is appended to the
//! system channel, the new channel's ledger gets a genesis block holding exactly that
//! envelope, and the channel starts. A crash in between leaves a channel whose
//! creation block is missing. It never leaves a creation block without its channel.

use super::{Registrar, validate_channel_id};
use crate::component::CoreBlock;
use crate::msgprocessor::ChainCreator;
use crate::protoutil::channel_header;
use anyhow::{Context, Result};
use bytes::Bytes;
use fabric_protos::common::{
    Block, BlockData, BlockHeader, BlockMetadata, Envelope, HeaderType, Payload,
};
use prost::Message;
use sha2::{Digest, Sha256};
use std::sync::Weak;

/// `common.BlockMetadataIndex` has five slots.
const METADATA_SLOTS: usize = 5;

/// The system channel's count of channels, for MaxChannels.
pub(super) struct Channels(pub(super) Weak<Registrar>);

impl ChainCreator for Channels {
    fn channels_count(&self) -> u64 {
        self.0
            .upgrade()
            .map_or(0, |r| r.chains.read().unwrap().len() as u64)
    }
}

/// The CONFIG envelope of the channel `block` creates, if it is a block of one
/// ORDERER_TRANSACTION.
pub(super) fn created_channel(block: &CoreBlock) -> Option<Bytes> {
    let block = Block::decode(block.encoded.as_slice()).ok()?;
    let [envelope] = block.data?.data.try_into().ok()?;
    let envelope = Envelope::decode(envelope).ok()?;
    let chdr = channel_header(&envelope).ok()?;
    if chdr.r#type != HeaderType::OrdererTransaction as i32 {
        return None;
    }
    Some(Payload::decode(envelope.payload).ok()?.data)
}

/// The genesis block Fabric's registrar makes for a created channel: number 0, no
/// previous hash, the CONFIG envelope as its one transaction, five empty metadata
/// slots, unsigned.
pub fn genesis_block(config_tx: Bytes) -> Block {
    let data_hash = Sha256::digest(&config_tx).to_vec();
    Block {
        header: Some(BlockHeader {
            number: 0,
            previous_hash: Bytes::new(),
            data_hash: data_hash.into(),
        }),
        data: Some(BlockData {
            data: vec![config_tx],
        }),
        metadata: Some(BlockMetadata {
            metadata: vec![Bytes::new(); METADATA_SLOTS],
        }),
    }
}

impl Registrar {
    /// Creates and starts the channel whose first CONFIG envelope is `config_tx`,
    /// unless it exists already (two requests for one name both got ordered; the
    /// first one made it). Blocking: writes the ledger and opens core instances.
    pub(super) fn create_channel(&self, config_tx: Bytes) -> Result<()> {
        let envelope = Envelope::decode(config_tx.clone()).context("the CONFIG envelope")?;
        let channel_id = channel_header(&envelope)
            .map_err(|e| anyhow::anyhow!("the CONFIG envelope's channel header: {e}"))?
            .channel_id;
        // Held across the creation, so a join or removal cannot interleave.
        let _membership = self.removals.lock().unwrap();
        if self.get(&channel_id).is_some() {
            tracing::warn!(
                channel = channel_id,
                "channel already exists, skipping its creation"
            );
            return Ok(());
        }
        // The core checked the name; it also names the ledger's folder.
        validate_channel_id(&channel_id)?;
        let block = genesis_block(config_tx).encode_to_vec();
        self.write_genesis(&channel_id, &block)
            .with_context(|| format!("writing the genesis block of channel {channel_id}"))?;
        self.start_channel(&channel_id)
            .with_context(|| format!("starting created channel {channel_id}"))?;
        tracing::info!(
            channel = channel_id,
            "created channel through the system channel"
        );
        Ok(())
    }
}
