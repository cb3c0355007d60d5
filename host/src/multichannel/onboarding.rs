//! Fabric 2.5's join at a later config block ("onboarding"): a node added to a Raft
//! cluster by a config update is given that config block, pulls the blocks before it
//! from the channel's other consenters, and then starts its chain, which Raft brings
//! up to date. The join block is kept in `pendingops/join/<channel>.join` until the
//! channel's ledger is in `chains/`, so a restart carries on with the onboarding.
//!
//! What vouches for the pulled blocks is the join block (its operator chose it): they
//! must hash-chain onto it, and each is verified by the puller as catch-up's are.

use super::membership::{JoinError, remove_if_present, sync_dir};
use super::{Consensus, Registrar, consensus_of};
use crate::cluster::puller::{BlockPuller, Verifier};
use crate::comm::pinned::same_public_key;
use crate::consensus::etcdraft::{membership, raft_metadata_of};
use crate::ledger::Ledger;
use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use fabric_protos::common::Block;
use fabric_protos::orderer::etcdraft::BlockMetadata;
use ordering_core::config::ChannelConfig;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Between two attempts when the pulled chain cannot be written or does not lead
/// to the join block.
const RETRY: Duration = Duration::from_secs(5);

/// A channel being onboarded.
pub(super) struct Onboarding {
    /// Blocks pulled so far, reported as the channel's height.
    height: Arc<AtomicU64>,
    task: tokio::task::AbortHandle,
}

impl Onboarding {
    pub(super) fn height(&self) -> u64 {
        self.height.load(Ordering::Relaxed)
    }
}

/// What one onboarding pulls, and where it writes.
struct Plan {
    channel: String,
    join_block: Bytes,
    /// The join block's number and previous hash: the pulled chain's end.
    number: u64,
    previous_hash: Bytes,
    staged: PathBuf,
    puller: BlockPuller,
    height: Arc<AtomicU64>,
}

impl Registrar {
    /// Starts onboarding `channel` at `block` (a config block after genesis), or says
    /// why this orderer cannot. Called with the membership lock held.
    pub(super) fn onboard(
        &self,
        channel: &str,
        bytes: &[u8],
        block: &Block,
        config: &ChannelConfig,
    ) -> Result<(), JoinError> {
        let header = block.header.clone().unwrap_or_default();
        let number = header.number;
        let Consensus::Raft(metadata) = consensus_of(config)? else {
            return Err(JoinError::NotCluster {
                number,
                kind: config.consensus.kind.clone(),
            });
        };
        let identity = self
            .cluster
            .get()
            .ok_or(JoinError::NoClusterTls { number })?;
        let ids = raft_metadata_of(block).unwrap_or_else(|| BlockMetadata {
            consenter_ids: (1..=metadata.consenters.len() as u64).collect(),
            ..Default::default()
        });
        let nodes = membership::consenters(&metadata.consenters, &ids)
            .and_then(|consenters| membership::remote_nodes(&consenters))
            .map_err(|e| JoinError::Start(e.context("the join block's consenters")))?;
        let (me, others): (Vec<_>, Vec<_>) = nodes
            .into_iter()
            .partition(|node| same_public_key(&node.server_cert, &identity.server_cert));
        if me.is_empty() {
            return Err(JoinError::Follower);
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| JoinError::Start(anyhow::anyhow!("no runtime to pull blocks on: {e}")))?;
        self.write_pending(channel, bytes)
            .map_err(JoinError::Ledger)?;
        let height = Arc::new(AtomicU64::new(0));
        let plan = Plan {
            channel: channel.to_string(),
            join_block: Bytes::copy_from_slice(bytes),
            number,
            previous_hash: header.previous_hash,
            staged: self.staging_dir.join(format!("onboard-{channel}")),
            puller: BlockPuller::new(
                channel,
                others,
                Some(identity.client.clone()),
                self.signer.clone(),
            ),
            height: height.clone(),
        };
        let task = runtime.spawn(run(self.me.clone(), plan)).abort_handle();
        tracing::info!(
            channel,
            "onboarding: joining at config block [{number}], pulling blocks [0, {}] from the other consenters",
            number - 1
        );
        (self.onboarding.lock().unwrap()).insert(channel.to_string(), Onboarding { height, task });
        Ok(())
    }

    /// Carries on with the onboardings a restart interrupted (their join blocks are
    /// still pending); drops those whose ledger made it into `chains/`.
    pub(super) fn resume_onboarding(&self) -> Result<()> {
        let Ok(entries) = fs::read_dir(&self.pending_dir) else {
            return Ok(());
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            let Some(channel) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".join"))
            else {
                continue;
            };
            if self.get(channel).is_some() {
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
                continue;
            }
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let removals = self.removals.lock().unwrap();
            self.join_locked(&removals, &bytes)
                .with_context(|| format!("resuming the onboarding of {}", path.display()))?;
        }
        Ok(())
    }

    /// Stops an onboarding (the channel is being removed): true if there was one.
    pub(super) fn cancel_onboarding(&self, channel: &str) -> std::io::Result<bool> {
        let Some(onboarding) = self.onboarding.lock().unwrap().remove(channel) else {
            return Ok(false);
        };
        onboarding.task.abort();
        remove_if_present(&self.staging_dir.join(format!("onboard-{channel}")))?;
        fs::remove_file(self.pending_file(channel))?;
        sync_dir(&self.pending_dir)?;
        Ok(true)
    }

    fn pending_file(&self, channel: &str) -> PathBuf {
        self.pending_dir.join(format!("{channel}.join"))
    }

    fn write_pending(&self, channel: &str, bytes: &[u8]) -> Result<()> {
        fs::create_dir_all(&self.pending_dir)?;
        let temporary = self.pending_dir.join(format!("{channel}.join.tmp"));
        fs::write(&temporary, bytes)?;
        fs::File::open(&temporary)?.sync_all()?;
        fs::rename(&temporary, self.pending_file(channel))?;
        sync_dir(&self.pending_dir)?;
        Ok(())
    }

    /// Moves the pulled ledger into `chains/` and starts the channel, unless it was
    /// removed meanwhile. Blocking.
    fn finish_onboarding(&self, channel: &str, staged: &Path) -> Result<()> {
        let _membership = self.removals.lock().unwrap();
        let mut onboarding = self.onboarding.lock().unwrap();
        if !onboarding.contains_key(channel) {
            return Ok(remove_if_present(staged)?);
        }
        fs::create_dir_all(&self.chains_dir)?;
        fs::rename(staged, self.chains_dir.join(channel))?;
        sync_dir(&self.chains_dir)?;
        fs::remove_file(self.pending_file(channel))?;
        sync_dir(&self.pending_dir)?;
        let started = self.start_channel(channel);
        onboarding.remove(channel);
        started
    }
}

/// Pulls until the chain up to the join block is written, then starts the channel.
async fn run(registrar: Weak<Registrar>, plan: Plan) {
    let channel = plan.channel.clone();
    while let Err(e) = plan.pull().await {
        tracing::warn!(channel, "onboarding: {e:#}; trying again in {RETRY:?}");
        tokio::time::sleep(RETRY).await;
    }
    let Some(registrar) = registrar.upgrade() else {
        return;
    };
    let staged = plan.staged.clone();
    let name = channel.clone();
    let finished =
        tokio::task::spawn_blocking(move || registrar.finish_onboarding(&name, &staged)).await;
    match finished {
        Ok(Ok(())) => tracing::info!(
            channel,
            "onboarding: done, the ledger holds blocks [0, {}]; the chain starts",
            plan.number
        ),
        Ok(Err(e)) => tracing::error!(channel, "onboarding: starting the channel: {e:#}"),
        Err(e) => tracing::error!(channel, "onboarding: {e}"),
    }
}

impl Plan {
    /// Pulls blocks 0..number into a new staged ledger and appends the join block.
    async fn pull(&self) -> Result<()> {
        remove_if_present(&self.staged)?;
        let ledger = Ledger::open(&self.staged)
            .with_context(|| format!("opening {}", self.staged.display()))?;
        self.height.store(0, Ordering::Relaxed);
        let mut verifier = Verifier::from_genesis();
        let last = self.number - 1;
        self.puller
            .pull(&mut verifier, 0, last, |block| {
                ledger.append_block(block)?;
                self.height.store(ledger.height(), Ordering::Relaxed);
                Ok(())
            })
            .await?;
        ensure!(
            verifier.last_hash() == Some(&self.previous_hash[..]),
            "the pulled block [{last}] is not the one the join block [{}] chains onto: the orderers pulled from have another chain",
            self.number
        );
        ledger
            .append(self.join_block.clone())
            .context("appending the join block")?;
        self.height.store(ledger.height(), Ordering::Relaxed);
        Ok(())
    }
}
