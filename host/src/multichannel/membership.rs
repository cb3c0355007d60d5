//! Joining and removing channels (Fabric's registrar `JoinChannel`/`RemoveChannel`),
//! and what the channel participation API reports about each channel.
//!
//! The ledger folder `chains/<channel>` is the channel: start reopens every folder
//! there. So a join writes the genesis block in the staging folder and renames the
//! ledger into `chains/` (one atomic step), and a removal renames it out to the
//! staging folder before deleting it; start empties the staging folder.

use super::{ConsensusError, Joined, Registrar, consensus_of};
use crate::consensus::{ChannelStatus, ConsensusRelation, RaftStatus};
use crate::ledger::Ledger;
use crate::protoutil::now_unix_nanos;
use bytes::Bytes;
use fabric_protos::common::Block;
use ordering_core::NativeCrypto;
use ordering_core::config::{ChannelConfig, ConfigError};
use prost::Message;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

pub use ordering_core::configtx::{ChannelIdError, validate_channel_id};

/// Why a channel was not joined. The texts are Fabric's where Fabric has them.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("not a common.Block: {0}")]
    NotABlock(prost::DecodeError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    ChannelId(#[from] ChannelIdError),
    #[error("channel pending removal")]
    PendingRemoval,
    #[error("channel removal failure")]
    RemovalFailure,
    /// Fabric's `ValidateBootstrapBlock` text.
    #[error("the block isn't a system channel block because it lacks ConsortiumsConfig")]
    NotSystemChannel,
    /// Fabric 2.5 joins no channel while a system channel exists.
    #[error("system channel exists")]
    SystemChannelExists,
    /// Fabric joins a system channel only on an orderer without channels.
    #[error("application channels already exist")]
    AppChannelsExist,
    #[error(
        "joining a system channel (a config block with consortiums) is not supported yet: this orderer runs without a system channel"
    )]
    SystemChannel,
    /// Joining at a later config block is onboarding a Raft node (pulling the blocks
    /// before it from the other consenters).
    #[error(
        "joining at block {number} (not the genesis block) is for etcdraft channels with several consenters; this {kind} channel is joined with its genesis block"
    )]
    NotCluster { number: u64, kind: String },
    #[error(
        "joining at block {number} means pulling blocks from the channel's other consenters over mutual TLS, and General.TLS is off"
    )]
    NoClusterTls { number: u64 },
    #[error(
        "failed to create follower: this orderer's TLS certificate is not among the join block's consenters, and joining as a follower is not supported yet"
    )]
    Follower,
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error("failed to append join block to the ledger: {0:#}")]
    Ledger(anyhow::Error),
    #[error("failed to create chain support: {0:#}")]
    Start(anyhow::Error),
}

/// Why a channel was not removed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("channel does not exist")]
    NotExist,
    #[error("channel pending removal")]
    PendingRemoval,
    /// Fabric 2.5 removes no channel but the system channel while it exists.
    #[error("system channel exists")]
    SystemChannelExists,
    /// Only an etcdraft system channel can be removed (its channels carry on
    /// without it).
    #[error("cannot remove {kind} system channel: {channel}")]
    SoloSystemChannel { kind: String, channel: String },
    #[error("moving the ledger of channel {channel} away: {error}")]
    Ledger {
        channel: String,
        error: std::io::Error,
    },
}

/// A channel being removed, as Fabric's registrar keeps it (`pendingRemoval`).
pub(super) struct Removal {
    relation: ConsensusRelation,
    status: ChannelStatus,
}

/// Fabric's `types.ChannelInfo` without the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    pub name: String,
    pub relation: ConsensusRelation,
    pub status: ChannelStatus,
    pub height: u64,
    /// etcdraft channels being served: this node's Raft ID and the leader.
    pub raft: Option<RaftStatus>,
}

impl Registrar {
    /// Joins the channel whose genesis (config) block this is, unless already joined.
    /// Blocking: it writes the ledger and opens the channel's core instances.
    pub fn join(&self, block: &[u8]) -> Result<(String, Joined), JoinError> {
        let removals = self.removals.lock().unwrap();
        self.join_locked(&removals, block)
    }

    /// [`Registrar::join`] with the membership lock held (`removals` its content).
    pub(super) fn join_locked(
        &self,
        removals: &BTreeMap<String, Removal>,
        block: &[u8],
    ) -> Result<(String, Joined), JoinError> {
        let decoded = Block::decode(block).map_err(JoinError::NotABlock)?;
        let config = ChannelConfig::from_config_block(block, &NativeCrypto)?;
        let channel_id = config.channel_id.clone();
        validate_channel_id(&channel_id)?;
        match removals.get(&channel_id) {
            Some(r) if r.status == ChannelStatus::Failed => return Err(JoinError::RemovalFailure),
            Some(_) => return Err(JoinError::PendingRemoval),
            None => {}
        }
        if self.system_channel_id().is_some() {
            return Err(JoinError::SystemChannelExists);
        }
        if self.get(&channel_id).is_some()
            || self.onboarding.lock().unwrap().contains_key(&channel_id)
        {
            return Ok((channel_id, Joined::AlreadyMember));
        }
        let is_system = (config.config.channel_group.as_ref())
            .is_some_and(|g| g.groups.contains_key("Consortiums"));
        if is_system {
            let channels = self.chains.read().unwrap().len();
            return Err(if channels > 0 {
                JoinError::AppChannelsExist
            } else {
                JoinError::SystemChannel
            });
        }
        if decoded.header.as_ref().is_some_and(|h| h.number > 0) {
            self.onboard(&channel_id, block, &decoded, &config)?;
            return Ok((channel_id, Joined::New));
        }
        consensus_of(&config)?;
        self.write_genesis(&channel_id, block)
            .map_err(JoinError::Ledger)?;
        if let Err(e) = self.start_channel(&channel_id) {
            if let Err(discard) = self.discard(&channel_id) {
                tracing::warn!(
                    channel = channel_id,
                    "leaving the ledger of a failed join: {discard}"
                );
            }
            return Err(JoinError::Start(e));
        }
        Ok((channel_id, Joined::New))
    }

    /// Starts the system channel from its genesis block (Fabric's bootstrap with
    /// `BootstrapMethod: file`) when this orderer has no channel yet; `None` when it
    /// has channels (the file is then not read again, as in Fabric). Blocking.
    pub fn bootstrap(&self, block: &[u8]) -> Result<Option<String>, JoinError> {
        let config = ChannelConfig::from_config_block(block, &NativeCrypto)?;
        if !config.is_system_channel() {
            return Err(JoinError::NotSystemChannel);
        }
        let _membership = self.removals.lock().unwrap();
        if !self.chains.read().unwrap().is_empty() {
            return Ok(None);
        }
        let channel_id = config.channel_id.clone();
        validate_channel_id(&channel_id)?;
        consensus_of(&config)?;
        self.write_genesis(&channel_id, block)
            .map_err(JoinError::Ledger)?;
        self.start_channel(&channel_id).map_err(JoinError::Start)?;
        Ok(Some(channel_id))
    }

    /// Halts the channel's chain, ends its Deliver streams and removes its ledger.
    /// Once this returns Ok the channel is gone, also after a restart.
    pub async fn remove(&self, channel_id: &str) -> Result<(), RemoveError> {
        let support = {
            let mut removals = self.removals.lock().unwrap();
            // A failed removal may be tried again; one under way may not.
            let earlier = match removals.get(channel_id) {
                Some(r) if r.status != ChannelStatus::Failed => {
                    return Err(RemoveError::PendingRemoval);
                }
                other => other.map(|r| r.relation),
            };
            self.may_remove(channel_id)?;
            match self.cancel_onboarding(channel_id) {
                Ok(false) => {}
                Ok(true) => {
                    tracing::info!(channel = channel_id, "removed channel (it was onboarding)");
                    return Ok(());
                }
                Err(error) => {
                    return Err(RemoveError::Ledger {
                        channel: channel_id.to_string(),
                        error,
                    });
                }
            }
            let support = self.chains.write().unwrap().remove(channel_id);
            let Some(relation) = support.as_ref().map(|s| s.relation).or(earlier) else {
                return Err(RemoveError::NotExist);
            };
            removals.insert(
                channel_id.to_string(),
                Removal {
                    relation,
                    status: ChannelStatus::Active,
                },
            );
            support
        };
        if let Some(support) = support {
            support.chain.halt();
            support.removed.send_replace(true);
            // The chain's thread writes no block once this resolves.
            support.chain.halted().await;
        }
        let moved = self.discard(channel_id);
        let mut removals = self.removals.lock().unwrap();
        match moved {
            Ok(()) => {
                removals.remove(channel_id);
                tracing::info!(channel = channel_id, "removed channel");
                Ok(())
            }
            Err(error) => {
                if let Some(removal) = removals.get_mut(channel_id) {
                    removal.status = ChannelStatus::Failed;
                }
                Err(RemoveError::Ledger {
                    channel: channel_id.to_string(),
                    error,
                })
            }
        }
    }

    /// Fabric 2.5's rule while a system channel exists: only the system channel may
    /// be removed, and only an etcdraft one. Once it is gone, the channels it created
    /// are ordinary channels.
    fn may_remove(&self, channel_id: &str) -> Result<(), RemoveError> {
        let mut system = self.system_channel.write().unwrap();
        let Some(system_id) = system.as_deref() else {
            return Ok(());
        };
        if system_id != channel_id {
            return Err(RemoveError::SystemChannelExists);
        }
        // Solo is the one non-cluster type this orderer runs.
        let relation = self.get(channel_id).map(|s| s.relation);
        if relation == Some(ConsensusRelation::Other) {
            return Err(RemoveError::SoloSystemChannel {
                kind: "solo".into(),
                channel: channel_id.to_string(),
            });
        }
        *system = None;
        Ok(())
    }

    /// A channel this orderer serves or is removing.
    pub fn channel_info(&self, channel_id: &str) -> Option<ChannelInfo> {
        if let Some(support) = self.get(channel_id) {
            return Some(ChannelInfo {
                name: channel_id.to_string(),
                relation: support.relation,
                status: ChannelStatus::Active,
                height: support.ledger.height(),
                raft: support.chain.raft_status(),
            });
        }
        if let Some(onboarding) = self.onboarding.lock().unwrap().get(channel_id) {
            return Some(ChannelInfo {
                name: channel_id.to_string(),
                relation: ConsensusRelation::Consenter,
                status: ChannelStatus::Onboarding,
                height: onboarding.height(),
                raft: None,
            });
        }
        // As Fabric's: a channel being removed keeps its relation, with height 0.
        let removals = self.removals.lock().unwrap();
        removals.get(channel_id).map(|r| ChannelInfo {
            name: channel_id.to_string(),
            relation: r.relation,
            status: r.status,
            height: 0,
            raft: None,
        })
    }

    /// The channels served and being removed, by name.
    pub fn channel_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.chains.read().unwrap().keys().cloned().collect();
        names.extend(self.removals.lock().unwrap().keys().cloned());
        names.extend(self.onboarding.lock().unwrap().keys().cloned());
        names.sort();
        names.dedup();
        names
    }

    /// Writes the genesis block into a staged ledger, then moves it into `chains/`.
    pub(super) fn write_genesis(&self, channel_id: &str, block: &[u8]) -> anyhow::Result<()> {
        let staged = self.staging_dir.join(format!("join-{channel_id}"));
        remove_if_present(&staged)?;
        Ledger::open(&staged)?.append(Bytes::copy_from_slice(block))?;
        fs::create_dir_all(&self.chains_dir)?;
        // Fails when a (non-empty) ledger folder of that name is already there.
        fs::rename(&staged, self.chains_dir.join(channel_id))?;
        sync_dir(&self.chains_dir)?;
        Ok(())
    }

    /// Moves the channel's ledger out of `chains/` (durably), then deletes it in the
    /// background.
    fn discard(&self, channel_id: &str) -> std::io::Result<()> {
        fs::create_dir_all(&self.staging_dir)?;
        let trash = self
            .staging_dir
            .join(format!("removed-{channel_id}-{}", now_unix_nanos()));
        fs::rename(self.chains_dir.join(channel_id), &trash)?;
        sync_dir(&self.chains_dir)?;
        std::thread::spawn(move || {
            if let Err(e) = fs::remove_dir_all(&trash) {
                // The next start empties the staging folder.
                tracing::warn!("deleting {}: {e}", trash.display());
            }
        });
        Ok(())
    }
}

pub(super) fn remove_if_present(dir: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}
