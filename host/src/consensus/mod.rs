//! Consensus, in Fabric's shape (orderer/consensus): a [`Chain`] per channel orders
//! what the channel's message processor accepted, and writes blocks through its
//! [`ConsenterSupport`]. `solo` is the first implementation; `etcdraft` is a second
//! module behind the same two traits.

pub mod etcdraft;
#[cfg(test)]
mod memory;
pub mod solo;

use crate::component::{CoreBlock, CoreComponent, FaultSink};
use anyhow::Result;
use bytes::Bytes;
use futures::future::BoxFuture;
use ordering_core::Rejection;
use std::sync::Arc;

/// Fabric's `types.ConsensusRelation`: how this orderer takes part in a channel's
/// consensus, as the channel participation API reports it. (Fabric also has
/// `follower` and `config-tracker`, for cluster channels this node does not consent on.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsensusRelation {
    /// In the channel's consenter set (etcdraft).
    Consenter,
    /// A non-cluster consensus type (solo).
    Other,
}

/// Fabric's `types.Status` of a channel on this orderer. (Fabric also has
/// `inactive`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelStatus {
    Active,
    /// Joined at a later block: pulling the blocks before it from other orderers.
    Onboarding,
    /// The last operation on the channel (its removal) failed.
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("the chain of this channel has stopped")]
    Stopped,
    /// etcdraft, while no leader is elected (Fabric's text).
    #[error("no Raft leader")]
    NoLeader,
    /// etcdraft: the leader's stream is full or gone.
    #[error("failed to forward the transaction to the Raft leader {0}")]
    Forward(u64),
    /// A config the consenter refuses (etcdraft: Fabric's ValidateConsensusMetadata),
    /// answered BAD_REQUEST as Fabric's message processor does.
    #[error("consensus metadata update for channel config update is invalid: {0}")]
    Invalid(String),
}

/// Fabric's `consensus.Chain`. Calls return once the message is queued (SUCCESS on
/// Broadcast means handed to consensus, not written); a full queue slows the caller.
pub trait Chain: Send + Sync {
    /// Fabric's `Order`: a normal message validated under `config_seq`.
    fn order(&self, envelope: Bytes, config_seq: u64) -> BoxFuture<'_, Result<(), ChainError>>;

    /// Fabric's `Configure`: a CONFIG envelope the orderer made from `update`,
    /// validated under `config_seq`.
    fn configure(
        &self,
        config: Bytes,
        update: Bytes,
        config_seq: u64,
    ) -> BoxFuture<'_, Result<(), ChainError>>;

    /// Fabric's `WaitReady`: resolves when the chain can take a message.
    fn wait_ready(&self) -> BoxFuture<'_, Result<(), ChainError>>;

    /// Fabric's `Errored`: whether the chain has halted.
    fn errored(&self) -> bool;

    /// Resolves when the chain halts.
    fn halted(&self) -> BoxFuture<'_, ()>;

    /// Fabric's `Start`: begins ordering (once).
    fn start(&self);

    /// Fabric's `Halt`: stops ordering; queued messages are not ordered.
    fn halt(&self);

    /// Switches the cutter to `component` once every message queued before is
    /// ordered, moving the pending batch across (hot swap). Ok once it is in force.
    fn swap(&self, component: Arc<CoreComponent>) -> BoxFuture<'_, Result<(), String>>;

    /// etcdraft: this node's Raft ID and the leader it knows of; None for the other
    /// consensus types (and once halted).
    fn raft_status(&self) -> Option<RaftStatus> {
        None
    }
}

/// Where a node stands in its Raft cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftStatus {
    pub id: u64,
    /// 0: no leader known.
    pub leader: u64,
}

/// What a chain needs of its channel (Fabric's `consensus.ConsenterSupport`),
/// called on the chain's own thread, in order.
pub trait ConsenterSupport: Send + 'static {
    fn channel_id(&self) -> &str;

    /// The latest config block and the ledger's tip header, to open a cutter.
    fn config_and_tip(&self) -> (Bytes, Vec<u8>);

    /// The message processor's config-update path, for an update validated under an
    /// older config: the CONFIG envelope for the config in force, or why not.
    fn process_config_update(&self, update: &[u8], now_unix_nanos: u64)
    -> Result<Bytes, Rejection>;

    /// Signs and appends a normal block. `consenter_metadata` is what the consenter
    /// records in the block's `OrdererBlockMetadata` (etcdraft: its `BlockMetadata`);
    /// `None` leaves it to the block writer (solo: nothing).
    fn write_block(&mut self, block: &CoreBlock, consenter_metadata: Option<Bytes>) -> Result<()>;

    /// Puts the config of `block` (config sequence `sequence`) in force, then signs
    /// and appends the block: no reader sees the block under the old config.
    fn write_config_block(
        &mut self,
        block: &CoreBlock,
        sequence: u64,
        consenter_metadata: Option<Bytes>,
    ) -> Result<()>;

    /// Where the cutter's faults are counted.
    fn faults(&self) -> &dyn FaultSink;
}
