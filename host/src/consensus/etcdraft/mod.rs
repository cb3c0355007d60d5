//! Fabric's etcdraft consensus on tikv's raft-rs (issue 12). So far only the wire
//! layer: raft-rs messages in the bytes Fabric's etcd-based orderers send and expect,
//! so that our nodes and Fabric's can share a Raft cluster.

pub mod wire;

#[cfg(test)]
mod tests;
