//! Fabric's multichannel: the registrar of the channels this orderer serves
//! (joining a channel from its genesis block, creating one through the system
//! channel, removing one, reopening every channel from its ledger at start, looking
//! channels up), each channel's [`ChainSupport`], and the [`BlockWriter`] that signs
//! blocks.

pub mod blockwriter;
mod chainsupport;
mod committer;
mod creation;
mod membership;
mod onboarding;

pub use blockwriter::{BlockWriter, ConsenterMetadata};
pub use chainsupport::{ChainSupport, ChainWriter};
pub use committer::Committer;
pub use membership::{ChannelIdError, ChannelInfo, JoinError, RemoveError, validate_channel_id};

use crate::component::{ComponentCache, CoreComponent};
use crate::consensus::etcdraft::consenter::{RaftSettings, new_chain};
use crate::consensus::solo::Solo;
use crate::consensus::{Chain, ConsensusRelation};
use crate::hotswap::{self, CoreSettings, CoreSlot, RecentEnvelopes};
use crate::identity::Signer;
use crate::ledger::Ledger;
use crate::msgprocessor::{StandardChannel, ValidatorPool};
use crate::protoutil;
use anyhow::{Context, Result, anyhow, bail};
use fabric_protos::common::Block;
use membership::Removal;
use ordering_core::NativeCrypto;
use ordering_core::config::ChannelConfig;
use prost::Message;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use tokio::sync::watch;

pub struct Registrar {
    chains_dir: PathBuf,
    /// Where a joined channel's ledger is written before it is moved into
    /// `chains_dir`, and where a removed one is moved before it is deleted: a crash
    /// in either leaves nothing that reopens as a channel. Emptied at start.
    staging_dir: PathBuf,
    /// The component every channel starts with (`--core`, else the built-in core).
    core: Arc<CoreComponent>,
    cache: Arc<ComponentCache>,
    settings: CoreSettings,
    signer: Arc<Signer>,
    chains: RwLock<BTreeMap<String, Arc<ChainSupport>>>,
    /// The system channel's name, if this orderer has one (Fabric 2.x's bootstrap
    /// from a system channel genesis block).
    system_channel: RwLock<Option<String>>,
    /// This registrar, for the system channel's chain, which creates channels in it.
    me: Weak<Registrar>,
    /// Channels being removed. Its lock also puts joins and removals in one order
    /// (taken before `chains`).
    removals: Mutex<BTreeMap<String, Removal>>,
    /// Channels joined at a later block, pulling the blocks before it.
    onboarding: Mutex<BTreeMap<String, onboarding::Onboarding>>,
    /// The join blocks of the channels being onboarded (Fabric's `pendingops/join`).
    pending_dir: PathBuf,
    /// Set when General.TLS is on: how this node takes part in Raft clusters.
    cluster: OnceLock<RaftSettings>,
}

pub enum Joined {
    New,
    AlreadyMember,
}

impl Registrar {
    /// `core_wasm` is the component every channel starts with; it is loaded through
    /// the disk cache (`<data_dir>/components`), like every component after it.
    /// Blocking (compiling takes ~100 ms on a cache miss).
    pub fn new(
        data_dir: PathBuf,
        signer: Arc<Signer>,
        core_wasm: &[u8],
        settings: CoreSettings,
    ) -> Result<Arc<Self>> {
        let cache = ComponentCache::new(data_dir.join("components"));
        let core = cache
            .load(core_wasm, settings.limits)
            .context("loading the ordering core component")?;
        Ok(Self::with_core(data_dir, signer, core, cache, settings))
    }

    /// Every channel starts with `core` (e.g. [`CoreComponent::native`]); components
    /// loaded later go through `cache`.
    pub fn with_core(
        data_dir: PathBuf,
        signer: Arc<Signer>,
        core: CoreComponent,
        cache: ComponentCache,
        settings: CoreSettings,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Registrar {
            chains_dir: data_dir.join("chains"),
            staging_dir: data_dir.join("chains.staging"),
            core: Arc::new(core),
            cache: Arc::new(cache),
            settings,
            signer,
            chains: RwLock::default(),
            system_channel: RwLock::default(),
            me: me.clone(),
            removals: Mutex::default(),
            onboarding: Mutex::default(),
            pending_dir: data_dir.join("pendingops").join("join"),
            cluster: OnceLock::new(),
        })
    }

    /// This node's TLS identity for Raft clusters; before any channel opens.
    pub fn set_raft_settings(&self, identity: RaftSettings) {
        let _ = self.cluster.set(identity);
    }

    /// The component channels start with.
    pub fn default_core(&self) -> &Arc<CoreComponent> {
        &self.core
    }

    /// The compiled-component cache, where swapped-in components are loaded.
    pub fn cache(&self) -> &Arc<ComponentCache> {
        &self.cache
    }

    /// This orderer's MSP (General.LocalMSPID).
    pub fn local_msp_id(&self) -> &str {
        self.signer.msp_id()
    }

    pub fn settings(&self) -> &CoreSettings {
        &self.settings
    }

    /// Reopens every channel found in the ledger folder, after discarding what an
    /// interrupted join or removal left in the staging folder.
    pub fn open_existing(&self) -> Result<()> {
        membership::remove_if_present(&self.staging_dir)
            .with_context(|| format!("emptying {}", self.staging_dir.display()))?;
        let Ok(entries) = std::fs::read_dir(&self.chains_dir) else {
            return Ok(());
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            self.start_channel(&name).with_context(|| {
                format!(
                    "reopening channel {name} from {}",
                    self.chains_dir.join(&name).display()
                )
            })?;
        }
        self.resume_onboarding()
    }

    pub fn get(&self, channel_id: &str) -> Option<Arc<ChainSupport>> {
        self.chains.read().unwrap().get(channel_id).cloned()
    }

    /// The system channel's name, if there is one.
    pub fn system_channel_id(&self) -> Option<String> {
        self.system_channel.read().unwrap().clone()
    }

    /// Fabric's `BroadcastChannelSupport` lookup: the channel, or for a channel that
    /// does not exist the system channel (which answers for it), if there is one.
    pub fn broadcast_support(&self, channel_id: &str) -> Option<Arc<ChainSupport>> {
        self.get(channel_id).or_else(|| {
            let system = self.system_channel_id()?;
            self.get(&system)
        })
    }

    pub fn channels(&self) -> Vec<(String, u64)> {
        let chains = self.chains.read().unwrap();
        chains
            .values()
            .map(|c| (c.channel_id.clone(), c.ledger.height()))
            .collect()
    }

    fn start_channel(&self, channel_id: &str) -> Result<()> {
        let ledger = Arc::new(Ledger::open(&self.chains_dir.join(channel_id))?);
        let height = ledger.height();
        if height == 0 {
            bail!("the ledger holds no block, not even the genesis block");
        }
        let tip_bytes = ledger.get(height - 1)?.context("tip block missing")?;
        let tip = Block::decode(tip_bytes).context("decoding the tip block")?;
        let tip_header = tip.header.clone().unwrap_or_default().encode_to_vec();
        let last_config = protoutil::last_config(&tip);
        let config_block = ledger
            .get(last_config)?
            .with_context(|| format!("last config block {last_config} missing"))?;
        let config = ChannelConfig::from_config_block(&config_block, &NativeCrypto)
            .map_err(|e| anyhow!("{e}"))?;
        if config.channel_id != channel_id {
            bail!("the config block names channel {:?}", config.channel_id);
        }
        let consensus = consensus_of(&config)?;
        // As Fabric reports them: solo is not a cluster type; an etcdraft channel
        // this node serves is one it consents on.
        let relation = match consensus {
            Consensus::Solo => ConsensusRelation::Other,
            Consensus::SingleRaft => {
                tracing::info!(
                    channel = channel_id,
                    "single-node etcdraft channel: ordered by the solo chain"
                );
                ConsensusRelation::Consenter
            }
            Consensus::Raft(_) => ConsensusRelation::Consenter,
        };
        let consenter = match consensus {
            Consensus::SingleRaft => ConsenterMetadata::EtcdRaft {
                consenter_ids: vec![1],
            },
            _ => ConsenterMetadata::Solo,
        };

        let is_system = config.is_system_channel();
        if is_system && let Some(other) = self.system_channel_id() {
            bail!("there appear to be two system channels, {other} and {channel_id}");
        }

        let (slot, rollbacks) = CoreSlot::new(channel_id, self.core.clone(), self.settings.clone());
        let validators = Arc::new(ValidatorPool::new(
            &config,
            config_block,
            tip_header.into(),
            self.core.clone(),
            slot.clone(),
        ));
        let processor = Arc::new(if is_system {
            let creator = Arc::new(creation::Channels(self.me.clone()));
            StandardChannel::system(channel_id, validators, self.signer.clone(), creator)
        } else {
            StandardChannel::new(channel_id, validators, self.signer.clone())
        });
        let writer = ChainWriter {
            channel_id: channel_id.to_string(),
            ledger: ledger.clone(),
            writer: BlockWriter::new(self.signer.clone(), last_config, consenter),
            committer: Committer::start(channel_id, ledger.clone()),
            tip: None,
            processor: processor.clone(),
            slot: slot.clone(),
            registrar: is_system.then(|| self.me.clone()),
        };
        let opening = || format!("opening channel {channel_id} in the ordering core");
        let (chain, cluster): (Box<dyn Chain>, _) = match &consensus {
            Consensus::Raft(metadata) => {
                let identity = self.cluster.get().with_context(|| {
                    format!("channel {channel_id} has {} etcdraft consenters: Raft between orderers needs General.TLS (consenters are known by their TLS certificates)", metadata.consenters.len())
                })?;
                let chain = new_chain(
                    writer,
                    self.core.clone(),
                    metadata,
                    crate::consensus::etcdraft::raft_metadata_of(&tip),
                    tip.header.as_ref().context("the tip block has no header")?,
                    config.batch_size.preferred_max_bytes.into(),
                    identity,
                    self.signer.clone(),
                )
                .with_context(opening)?;
                let handler = chain.handler();
                (Box::new(chain), Some(handler))
            }
            _ => (
                Box::new(Solo::new(writer, self.core.clone()).with_context(opening)?),
                None,
            ),
        };
        chain.start();
        // Debug: the start prints each channel served, a join logs itself.
        tracing::debug!(channel = channel_id, height, consensus = %config.consensus.kind, "serving channel");
        let support = Arc::new(ChainSupport {
            channel_id: channel_id.to_string(),
            ledger,
            processor,
            chain,
            cluster,
            core: slot,
            recent: Arc::new(RecentEnvelopes::new(self.settings.recent_envelopes)),
            relation,
            removed: watch::Sender::new(false),
        });
        hotswap::supervise(Arc::downgrade(&support), rollbacks);
        self.chains
            .write()
            .unwrap()
            .insert(channel_id.to_string(), support);
        if is_system {
            *self.system_channel.write().unwrap() = Some(channel_id.to_string());
            tracing::info!(
                channel = channel_id,
                "system channel: channels can be created through it"
            );
        }
        Ok(())
    }
}

/// The cluster service finds a channel's Raft chain here.
impl crate::cluster::Dispatcher for Registrar {
    fn handler(&self, channel: &str) -> Option<Arc<dyn crate::cluster::Handler>> {
        self.get(channel)?.cluster.clone()
    }
}

/// Why a channel's consenter set is not one this orderer can order.
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    #[error("channel {channel}: etcdraft without consenters")]
    NoConsenters { channel: String },
    #[error("channel {channel}: consensus type {kind:?} is not supported (solo or etcdraft)")]
    UnsupportedType { channel: String, kind: String },
}

/// How a channel is ordered here.
enum Consensus {
    Solo,
    /// One etcdraft consenter: ordered by the solo chain, with Raft's block metadata.
    SingleRaft,
    Raft(fabric_protos::orderer::etcdraft::ConfigMetadata),
}

fn consensus_of(config: &ChannelConfig) -> Result<Consensus, ConsensusError> {
    match config.consensus.kind.as_str() {
        "solo" => Ok(Consensus::Solo),
        "etcdraft" => {
            let metadata = fabric_protos::orderer::etcdraft::ConfigMetadata::decode(
                config.consensus.metadata.as_ref(),
            )
            .ok()
            .filter(|m| !m.consenters.is_empty())
            .ok_or_else(|| ConsensusError::NoConsenters {
                channel: config.channel_id.clone(),
            })?;
            Ok(if metadata.consenters.len() == 1 {
                Consensus::SingleRaft
            } else {
                Consensus::Raft(metadata)
            })
        }
        other => Err(ConsensusError::UnsupportedType {
            channel: config.channel_id.clone(),
            kind: other.to_string(),
        }),
    }
}
