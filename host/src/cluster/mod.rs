//! Fabric's orderer/common/cluster: how the orderers of one Raft cluster speak to each
//! other over `orderer.Cluster/Step` (a bidirectional stream of `StepRequest`s: Raft
//! messages and forwarded Broadcast submissions). [`service`] takes them in and
//! authenticates the sender by the public key of its TLS client certificate against
//! the channel's consenters; [`comm`] sends them, pinning each remote's server
//! certificate to the one its consenter entry names.

pub mod comm;
pub mod puller;
pub mod service;

use bytes::Bytes;
use fabric_protos::orderer::{ConsensusRequest, SubmitRequest};
use futures::future::BoxFuture;
use std::sync::Arc;

/// Another consenter of a channel, as the channel's etcdraft metadata names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteNode {
    /// Its Raft ID.
    pub id: u64,
    /// HOST:PORT of its cluster listener.
    pub endpoint: String,
    /// DER certificates: what it serves, and what it presents as a client.
    pub server_cert: Bytes,
    pub client_cert: Bytes,
}

/// Where one channel's cluster messages go (its etcdraft chain).
pub trait Handler: Send + Sync {
    /// The consenters senders are authenticated against (this node included).
    fn members(&self) -> Vec<RemoteNode>;
    /// A Raft message from consenter `sender`.
    fn on_consensus(&self, sender: u64, request: ConsensusRequest) -> Result<(), String>;
    /// A submission consenter `sender` forwarded.
    fn on_submit(&self, sender: u64, request: SubmitRequest) -> BoxFuture<'_, Result<(), String>>;
}

/// Finds the handler of a channel (the registrar).
pub trait Dispatcher: Send + Sync {
    fn handler(&self, channel: &str) -> Option<Arc<dyn Handler>>;
}
