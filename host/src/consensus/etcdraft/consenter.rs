//! Fabric's etcdraft `Consenter.HandleChain`: a channel's Raft chain from its config's
//! etcdraft metadata. Consenter IDs are the ones the last block recorded, else (a new
//! channel) 1..n in the config's order; this node is the consenter whose
//! `server_tls_cert` has the public key of our TLS certificate.

use super::chain::{Options, RaftChain, Start};
use super::membership;
use super::node::EtcdRaft;
use super::wal::Wal;
use crate::cluster::RemoteNode;
use crate::cluster::comm::{Identity, Remotes};
use crate::cluster::puller::BlockPuller;
use crate::comm::pinned::same_public_key;
use crate::comm::tls::{certificates, private_key};
use crate::comm::{ServerTlsFiles, TlsError};
use crate::component::CoreComponent;
use crate::consensus::ConsenterSupport;
use crate::identity::Signer;
use anyhow::{Context, Result};
use bytes::Bytes;
use fabric_protos::common::BlockHeader;
use fabric_protos::orderer::etcdraft::{BlockMetadata, ConfigMetadata};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How this orderer takes part in Raft clusters: its TLS server certificate (who it
/// is in a consenter set), the client identity it presents to the others, and where
/// the channels' write-ahead logs and snapshots are.
#[derive(Clone)]
pub struct RaftSettings {
    pub server_cert: Bytes,
    pub client: Identity,
    pub wal_dir: PathBuf,
    pub snap_dir: PathBuf,
}

impl RaftSettings {
    /// From General.TLS: the server certificate names this node in consenter sets,
    /// and it presents the same certificate and key to the other consenters
    /// (Fabric's default when General.Cluster.ClientCertificate is unset).
    pub fn from_tls(
        tls: &ServerTlsFiles,
        wal_dir: PathBuf,
        snap_dir: PathBuf,
    ) -> Result<Self, TlsError> {
        let setting = |name: &str| format!("{}.{name}", tls.section);
        let chain = certificates(&setting("Certificate"), &tls.certificate)?;
        let key = private_key(&setting("PrivateKey"), &tls.private_key)?;
        Ok(RaftSettings {
            server_cert: Bytes::copy_from_slice(&chain[0]),
            client: Identity { chain, key },
            wal_dir,
            snap_dir,
        })
    }
}

/// The Raft chain of a channel whose ledger ends at `tip`, with `last` the etcdraft
/// metadata the last block recorded (None: only the genesis block is written).
/// `signer` signs the Deliver requests of the block puller.
#[allow(clippy::too_many_arguments)]
pub fn new_chain<S: ConsenterSupport>(
    support: S,
    component: Arc<CoreComponent>,
    metadata: &ConfigMetadata,
    last: Option<BlockMetadata>,
    tip: &BlockHeader,
    preferred_max_bytes: u64,
    identity: &RaftSettings,
    signer: Arc<Signer>,
) -> Result<EtcdRaft<S>> {
    let channel = support.channel_id().to_string();
    let n = metadata.consenters.len() as u64;
    let block_metadata = match last {
        Some(last) => last,
        None => BlockMetadata {
            consenter_ids: (1..=n).collect(),
            next_consenter_id: n + 1,
            raft_index: 0,
        },
    };
    let applied = block_metadata.raft_index;
    let consenters = membership::consenters(&metadata.consenters, &block_metadata)?;
    let nodes = membership::remote_nodes(&consenters)?;
    let me = nodes
        .iter()
        .find(|node| same_public_key(&node.server_cert, &identity.server_cert))
        .with_context(|| {
            format!("channel {channel}: this orderer's TLS certificate is not among its consenters (joining as a follower is not supported yet)")
        })?
        .id;
    let options = metadata.options.clone().unwrap_or_default();
    let tick = ordering_core::config::parse_go_duration(&options.tick_interval)
        .ok()
        .filter(|nanos| *nanos > 0)
        .map(|nanos| Duration::from_nanos(nanos as u64))
        .with_context(|| {
            format!(
                "channel {channel}: etcdraft TickInterval {:?}",
                options.tick_interval
            )
        })?;
    let options = Options {
        id: me,
        consenters,
        metadata: block_metadata,
        election_tick: options.election_tick as usize,
        heartbeat_tick: options.heartbeat_tick as usize,
        max_inflight_blocks: options.max_inflight_blocks.max(1) as usize,
        max_size_per_msg: preferred_max_bytes,
        snapshot_interval_size: options.snapshot_interval_size.into(),
    };
    let dir = identity.wal_dir.join(&channel);
    let start = match Wal::open(&dir, &identity.snap_dir.join(&channel))? {
        (wal, None) if tip.number == 0 => Start::New(Some(wal)),
        (wal, None) => {
            // Fabric's join: blocks but no WAL (a lost WAL, or a node added later).
            tracing::info!(%channel, "Starting raft node to join an existing channel: the ledger holds {} blocks, {} has no WAL", tip.number + 1, dir.display());
            Start::Join(Some(wal))
        }
        (wal, Some(log)) => Start::Restart { wal, log, applied },
    };
    tracing::info!(%channel, id = me, consenters = n, restart = matches!(start, Start::Restart { .. }), "starting Raft node");
    let chain = RaftChain::new(support, component, options, tip, start)?;
    let others: Vec<RemoteNode> = nodes.iter().filter(|node| node.id != me).cloned().collect();
    let client = Some(identity.client.clone());
    let remotes = Remotes::new(&channel, client.clone(), others.clone());
    let puller = BlockPuller::new(&channel, others, client, signer);
    Ok(EtcdRaft::new(chain, remotes, nodes, tick, puller))
}
