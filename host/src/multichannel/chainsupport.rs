//! One channel's parts (Fabric's multichannel ChainSupport): its ledger, message
//! processor, chain and core slot, shared by Broadcast, Deliver and the admin API;
//! and [`ChainWriter`], the chain's side of the channel (its ConsenterSupport).

use super::Registrar;
use super::blockwriter::BlockWriter;
use super::committer::Committer;
use crate::component::{CoreBlock, CoreComponent, FaultSink};
use crate::consensus::{Chain, ConsensusRelation, ConsenterSupport};
use crate::hotswap::{CoreSlot, RecentEnvelopes, Swappable};
use crate::ledger::Ledger;
use crate::msgprocessor::StandardChannel;
use anyhow::Result;
use bytes::Bytes;
use ordering_core::Rejection;
use prost::Message;
use std::sync::{Arc, Weak};
use tokio::sync::watch;

/// Everything Broadcast, Deliver and the admin API need of one channel.
pub struct ChainSupport {
    pub channel_id: String,
    pub ledger: Arc<Ledger>,
    pub processor: Arc<StandardChannel>,
    pub chain: Box<dyn Chain>,
    /// An etcdraft chain's side of the cluster service.
    pub cluster: Option<Arc<dyn crate::cluster::Handler>>,
    /// The core component in force, the ones it replaced, their faults.
    pub core: Arc<CoreSlot>,
    /// The last accepted envelopes, for dry runs of a candidate component.
    pub recent: Arc<RecentEnvelopes>,
    /// What the channel participation API reports (consenter for etcdraft, other for solo).
    pub relation: ConsensusRelation,
    /// Set once the channel is removed: Deliver streams on it end.
    pub(super) removed: watch::Sender<bool>,
}

impl ChainSupport {
    /// Resolves once the channel has been removed from this orderer.
    pub async fn removed(&self) {
        let mut removed = self.removed.subscribe();
        // The sender lives as long as `self`, so this only returns once set.
        let _ = removed.wait_for(|r| *r).await;
    }

    /// The latest config block and its sequence.
    pub fn config(&self) -> (Bytes, u64) {
        self.processor.validators().config()
    }
}

/// The latest config block and the tip header: where a core instance opens.
fn config_and_tip(processor: &StandardChannel, ledger: &Ledger) -> (Bytes, Vec<u8>) {
    let (config_block, _) = processor.validators().config();
    let tip = ledger.tip_header().unwrap_or_default().encode_to_vec();
    (config_block, tip)
}

impl Swappable for ChainSupport {
    fn channel_id(&self) -> &str {
        &self.channel_id
    }

    fn slot(&self) -> &CoreSlot {
        &self.core
    }

    fn recent(&self) -> &RecentEnvelopes {
        &self.recent
    }

    fn config_and_tip(&self) -> (Bytes, Vec<u8>) {
        config_and_tip(&self.processor, &self.ledger)
    }

    /// The chain's cutter first (an ordered event), then the validators.
    async fn switch(&self, component: Arc<CoreComponent>) -> Result<(), String> {
        self.chain.swap(component.clone()).await?;
        self.processor.validators().set_core(component);
        Ok(())
    }
}

/// What the chain writes through: Fabric's BlockWriter (signing, on the chain's
/// side) and the committer (appending, on its own thread), and the message
/// processor it re-runs config updates on.
pub struct ChainWriter {
    pub channel_id: String,
    pub ledger: Arc<Ledger>,
    pub writer: BlockWriter,
    pub committer: Committer,
    /// The header of the last block handed to the committer: the chain's tip, which
    /// the ledger's reaches once the committer has appended it.
    pub tip: Option<Vec<u8>>,
    pub processor: Arc<StandardChannel>,
    pub slot: Arc<CoreSlot>,
    /// On the system channel: where the channels its ORDERER_TRANSACTIONs create go.
    pub registrar: Option<Weak<Registrar>>,
}

impl ChainWriter {
    fn commit(&mut self, complete: Bytes) -> Result<()> {
        let header = crate::ledger::decode_header(&complete)?;
        self.committer.append(complete)?;
        self.tip = Some(header.encode_to_vec());
        Ok(())
    }
}

impl ConsenterSupport for ChainWriter {
    fn channel_id(&self) -> &str {
        &self.channel_id
    }

    /// The tip of what the chain wrote, queued or appended: a cutter opened there
    /// does not wait for the disk (which may be full).
    fn config_and_tip(&self) -> (Bytes, Vec<u8>) {
        let (config, ledger_tip) = config_and_tip(&self.processor, &self.ledger);
        (config, self.tip.clone().unwrap_or(ledger_tip))
    }

    fn process_config_update(&self, update: &[u8], now: u64) -> Result<Bytes, Rejection> {
        self.processor.process_config_update(update, now)
    }

    fn write_block(&mut self, block: &CoreBlock, consenter_metadata: Option<Bytes>) -> Result<()> {
        // As Fabric's block writer: the new channel exists before the system
        // channel's block that creates it is written.
        if let Some(registrar) = self.registrar.as_ref().and_then(Weak::upgrade)
            && let Some(config_tx) = super::creation::created_channel(block)
        {
            registrar.create_channel(config_tx)?;
        }
        let complete = self.writer.finish(block, consenter_metadata);
        self.commit(complete)
    }

    fn write_config_block(
        &mut self,
        block: &CoreBlock,
        sequence: u64,
        consenter_metadata: Option<Bytes>,
    ) -> Result<()> {
        self.writer.set_last_config(block.number);
        let complete = self.writer.finish(block, consenter_metadata);
        // As Fabric's WriteConfigBlock: the new config is in force before the block
        // is visible, so no Deliver client reads it under the old one.
        self.processor
            .validators()
            .reconfigure(complete.clone(), sequence);
        self.commit(complete)
    }

    fn faults(&self) -> &dyn FaultSink {
        &*self.slot
    }
}
