//! Fabric's etcdraft consensus on tikv's raft-rs (issue 12): the wire layer (raft-rs
//! messages in the bytes Fabric's etcd-based orderers send and expect), the chain's
//! logic as a state machine (`chain`, tested in a simulated cluster), the chain on the
//! network (`node`) and its making from a channel's config (`consenter`), the WAL and
//! snapshots (`wal`, `storage`), consenter changes (`membership`) and the nodes known
//! alive (`tracker`). Not yet: followers.

mod block;
pub mod chain;
pub mod consenter;
mod logger;
pub mod membership;
pub mod node;
mod storage;
mod tracker;
pub mod wal;
pub mod wire;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

/// The etcdraft `BlockMetadata` a written block carries, if any.
pub fn raft_metadata_of(
    block: &fabric_protos::common::Block,
) -> Option<fabric_protos::orderer::etcdraft::BlockMetadata> {
    use fabric_protos::common::{Metadata, OrdererBlockMetadata};
    use prost::Message;
    let slot = block.metadata.as_ref()?.metadata.first()?;
    let value = Metadata::decode(slot.clone()).ok()?.value;
    let orderer = OrdererBlockMetadata::decode(value).ok()?;
    let consenter = Metadata::decode(orderer.consenter_metadata).ok()?;
    if consenter.value.is_empty() {
        return None;
    }
    fabric_protos::orderer::etcdraft::BlockMetadata::decode(consenter.value).ok()
}
