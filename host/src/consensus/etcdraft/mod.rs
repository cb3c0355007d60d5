//! Fabric's etcdraft consensus on tikv's raft-rs (issue 12). So far: the wire layer
//! (raft-rs messages in the bytes Fabric's etcd-based orderers send and expect) and
//! the chain's logic as a state machine (`chain`), tested in a simulated cluster. Not
//! yet: the cluster service, the WAL, snapshots and membership changes.

mod block;
pub mod chain;
mod logger;
pub mod wire;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
