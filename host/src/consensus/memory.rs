//! For the chains' unit tests: a [`ConsenterSupport`] over an in-memory ledger.

use super::ConsenterSupport;
use crate::component::{CoreBlock, CoreComponent, CoreFault, FaultSink};
use crate::msgprocessor::{StandardChannel, ValidatorPool};
use crate::testkit::{CHANNEL, orderer0};
use bytes::Bytes;
use fabric_protos::common::Block;
use ordering_core::blockheader::header_hash;
use ordering_core::config::ChannelConfig;
use ordering_core::{NativeCrypto, Rejection};
use prost::Message;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the faults of a core.
#[derive(Default)]
pub struct Faults(pub AtomicUsize);

impl FaultSink for Faults {
    fn record_fault(&self, _: &CoreComponent, _: &CoreFault) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A chain's support over an in-memory ledger, behind the real message processor:
/// every block must chain onto the last; the consenter metadata of each is kept.
pub struct Memory {
    pub processor: StandardChannel,
    pub blocks: Vec<Block>,
    /// What the consenter gave for each block after the genesis block.
    pub consenter_metadata: Vec<Option<Bytes>>,
    pub faults: Faults,
}

impl Memory {
    pub fn new(genesis: Vec<u8>) -> Self {
        let config = ChannelConfig::from_config_block(&genesis, &NativeCrypto).unwrap();
        let block = Block::decode(&genesis[..]).unwrap();
        let tip = block.header.clone().unwrap().encode_to_vec();
        let validators = ValidatorPool::new(
            &config,
            genesis.into(),
            tip.into(),
            Arc::new(CoreComponent::native()),
            Arc::new(Faults::default()),
        );
        Memory {
            processor: StandardChannel::new(CHANNEL, Arc::new(validators), orderer0()),
            blocks: vec![block],
            consenter_metadata: Vec::new(),
            faults: Faults::default(),
        }
    }

    fn append(&mut self, block: &CoreBlock, metadata: Option<Bytes>) -> anyhow::Result<()> {
        let decoded = Block::decode(&block.encoded[..])?;
        let tip = self.blocks.last().unwrap().header.as_ref().unwrap();
        let header = decoded.header.as_ref().unwrap();
        anyhow::ensure!(header.number == self.blocks.len() as u64, "block number");
        anyhow::ensure!(
            header.previous_hash[..] == header_hash(tip, &NativeCrypto)[..],
            "previous hash"
        );
        self.blocks.push(decoded);
        self.consenter_metadata.push(metadata);
        Ok(())
    }
}

impl ConsenterSupport for Memory {
    fn channel_id(&self) -> &str {
        CHANNEL
    }

    fn config_and_tip(&self) -> (Bytes, Vec<u8>) {
        let (config, _) = self.processor.validators().config();
        let tip = self.blocks.last().unwrap().header.clone().unwrap();
        (config, tip.encode_to_vec())
    }

    fn process_config_update(&self, update: &[u8], now: u64) -> Result<Bytes, Rejection> {
        self.processor.process_config_update(update, now)
    }

    fn write_block(&mut self, block: &CoreBlock, metadata: Option<Bytes>) -> anyhow::Result<()> {
        self.append(block, metadata)
    }

    fn write_config_block(
        &mut self,
        block: &CoreBlock,
        sequence: u64,
        metadata: Option<Bytes>,
    ) -> anyhow::Result<()> {
        self.processor
            .validators()
            .reconfigure(block.encoded.clone().into(), sequence);
        self.append(block, metadata)
    }

    fn faults(&self) -> &dyn FaultSink {
        &self.faults
    }
}
