//! The channels this orderer serves: joining a channel from its genesis block,
//! reopening every channel from its ledger at start, and looking channels up for
//! Broadcast and Deliver.

use crate::blockwriter::{BlockWriter, ConsenterMetadata};
use crate::chain::{self, ChainHandle};
use crate::component::{ComponentCache, CoreChannel, CoreComponent, CoreFault};
use crate::hotswap::{self, CoreSettings, CoreSlot, CoreState, DryRunVerdict, RecentEnvelopes};
use crate::identity::Signer;
use crate::ledger::Ledger;
use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use fabric_protos::common::Block;
use ordering_core::NativeCrypto;
use ordering_core::config::ChannelConfig;
use prost::Message;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc::UnboundedReceiver;

pub struct Registrar {
    chains_dir: PathBuf,
    /// The component every channel starts with (`--core`, else the built-in core).
    core: Arc<CoreComponent>,
    cache: Arc<ComponentCache>,
    settings: CoreSettings,
    signer: Arc<Signer>,
    chains: RwLock<BTreeMap<String, Arc<ChainSupport>>>,
}

/// Everything Broadcast and Deliver need of one channel.
pub struct ChainSupport {
    pub channel_id: String,
    pub ledger: Arc<Ledger>,
    pub chain: ChainHandle,
    pub validators: Arc<ValidatorPool>,
    /// Signs the CONFIG envelopes the orderer makes from config updates.
    pub signer: Arc<Signer>,
    /// The core component in force, the ones it replaced, their faults.
    pub core: Arc<CoreSlot>,
    /// The last accepted envelopes, for dry runs of a candidate component.
    pub recent: Arc<RecentEnvelopes>,
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
    ) -> Result<Self> {
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
    ) -> Self {
        Registrar {
            chains_dir: data_dir.join("chains"),
            core: Arc::new(core),
            cache: Arc::new(cache),
            settings,
            signer,
            chains: RwLock::default(),
        }
    }

    /// The component channels start with.
    pub fn default_core(&self) -> &Arc<CoreComponent> {
        &self.core
    }

    /// The compiled-component cache (its hit and miss counts).
    pub fn cache(&self) -> &ComponentCache {
        &self.cache
    }

    fn support(&self, channel: &str) -> Result<Arc<ChainSupport>, String> {
        self.get(channel)
            .ok_or_else(|| format!("channel {channel} does not exist"))
    }

    /// Loads a component (compiled off the async runtime, or read from the cache),
    /// self-checks it on the channel, and puts it in force. No change on error.
    pub async fn load_core(&self, channel: &str, wasm: Vec<u8>) -> Result<CoreState, String> {
        let support = self.support(channel)?;
        let started = std::time::Instant::now();
        let cache = self.cache.clone();
        let limits = self.settings.limits;
        let component = tokio::task::spawn_blocking(move || cache.load(&wasm, limits))
            .await
            .map_err(|e| format!("loading the component: {e}"))?
            .map_err(|e| format!("{e:#}"))?;
        let loaded = started.elapsed();
        let state = hotswap::install(&support, Arc::new(component)).await?;
        tracing::info!(
            channel,
            "core swap: loaded in {loaded:?}, in force {:?} after the request",
            started.elapsed()
        );
        Ok(state)
    }

    /// Back to the component in force before the current one.
    pub async fn rollback(&self, channel: &str) -> Result<CoreState, String> {
        let support = self.support(channel)?;
        hotswap::rollback(&support, None).await
    }

    /// The component in force on the channel, its faults and its predecessors.
    pub fn core_state(&self, channel: &str) -> Result<CoreState, String> {
        Ok(self.support(channel)?.core.state())
    }

    /// Which of the channel's recent accepted envelopes (the last N) the candidate
    /// would reject, and why. Nothing changes.
    pub async fn dry_run(
        &self,
        channel: &str,
        wasm: Vec<u8>,
    ) -> Result<Vec<DryRunVerdict>, String> {
        let support = self.support(channel)?;
        let recent = support.recent.snapshot();
        let (config_block, _) = support.validators.config();
        let tip = support
            .ledger
            .tip_header()
            .unwrap_or_default()
            .encode_to_vec();
        let cache = self.cache.clone();
        let limits = self.settings.limits;
        tokio::task::spawn_blocking(move || {
            let candidate = cache.load(&wasm, limits).map_err(|e| format!("{e:#}"))?;
            hotswap::dry_run(&candidate, &config_block, &tip, &recent)
        })
        .await
        .map_err(|e| format!("dry run: {e}"))?
    }

    /// Reopens every channel found in the ledger folder.
    pub fn open_existing(&self) -> Result<()> {
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
        Ok(())
    }

    /// Joins the channel whose genesis (config) block this is, unless already joined.
    pub fn join(&self, genesis: &[u8]) -> Result<(String, Joined)> {
        let block = Block::decode(genesis).map_err(|e| anyhow!("not a common.Block: {e}"))?;
        let number = block.header.as_ref().map_or(0, |h| h.number);
        if number != 0 {
            bail!("block {number} is not a genesis block (number 0)");
        }
        let config =
            ChannelConfig::from_config_block(genesis, &NativeCrypto).map_err(|e| anyhow!("{e}"))?;
        let channel_id = config.channel_id.clone();
        if self.get(&channel_id).is_some() {
            return Ok((channel_id, Joined::AlreadyMember));
        }
        consenter_metadata(&config)?;
        let ledger = Ledger::open(&self.chains_dir.join(&channel_id))?;
        if ledger.height() == 0 {
            ledger.append(Bytes::copy_from_slice(genesis))?;
        }
        drop(ledger);
        self.start_channel(&channel_id)?;
        Ok((channel_id, Joined::New))
    }

    pub fn get(&self, channel_id: &str) -> Option<Arc<ChainSupport>> {
        self.chains.read().unwrap().get(channel_id).cloned()
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
        let last_config = crate::blockwriter::last_config(&tip);
        let config_block = ledger
            .get(last_config)?
            .with_context(|| format!("last config block {last_config} missing"))?;
        let config = ChannelConfig::from_config_block(&config_block, &NativeCrypto)
            .map_err(|e| anyhow!("{e}"))?;
        if config.channel_id != channel_id {
            bail!("the config block names channel {:?}", config.channel_id);
        }
        let consenter = consenter_metadata(&config)?;
        if matches!(consenter, ConsenterMetadata::EtcdRaft { .. }) {
            tracing::info!(
                channel = channel_id,
                "single-node etcdraft channel: ordered by the solo chain until Raft exists"
            );
        }

        let cutter = self
            .core
            .open_channel(&config_block, &tip_header)
            .with_context(|| format!("opening channel {channel_id} in the ordering core"))?;
        let (slot, rollbacks) = CoreSlot::new(channel_id, self.core.clone(), self.settings.clone());
        let recent = Arc::new(RecentEnvelopes::new(self.settings.recent_envelopes));
        let validators = Arc::new(ValidatorPool {
            tip_header: tip_header.into(),
            state: RwLock::new(PoolState {
                config_block,
                sequence: config.sequence,
                absolute_max_bytes: config.batch_size.absolute_max_bytes,
                core: self.core.clone(),
            }),
            idle: Mutex::default(),
            slot: slot.clone(),
        });
        let writer = BlockWriter::new(self.signer.clone(), last_config, consenter);
        let chain = chain::start(chain::Solo {
            channel_id: channel_id.to_string(),
            core: cutter,
            component: self.core.clone(),
            slot: slot.clone(),
            recent: recent.clone(),
            ledger: ledger.clone(),
            writer,
            validators: validators.clone(),
            signer: self.signer.clone(),
        });
        tracing::info!(channel = channel_id, height, consensus = %config.consensus.kind, "serving channel");
        let support = Arc::new(ChainSupport {
            channel_id: channel_id.to_string(),
            ledger,
            chain,
            validators,
            signer: self.signer.clone(),
            core: slot,
            recent,
        });
        supervise(Arc::downgrade(&support), rollbacks);
        self.chains
            .write()
            .unwrap()
            .insert(channel_id.to_string(), support);
        Ok(())
    }
}

/// The consenter set must be one we can order: solo, or etcdraft with one consenter.
fn consenter_metadata(config: &ChannelConfig) -> Result<ConsenterMetadata> {
    match config.consensus.kind.as_str() {
        "solo" => Ok(ConsenterMetadata::Solo),
        "etcdraft" => match config.etcdraft_consenters() {
            Some(1) => Ok(ConsenterMetadata::EtcdRaft {
                consenter_ids: vec![1],
            }),
            n => bail!(
                "channel {}: etcdraft with {} consenters is not supported yet (one node only: solo or a single etcdraft consenter)",
                config.channel_id,
                n.unwrap_or(0)
            ),
        },
        other => bail!(
            "channel {}: consensus type {other:?} is not supported (solo or single-node etcdraft)",
            config.channel_id
        ),
    }
}

/// Rolls a channel back by itself when its component keeps faulting.
fn supervise(support: std::sync::Weak<ChainSupport>, mut rollbacks: UnboundedReceiver<String>) {
    tokio::spawn(async move {
        while let Some(sha256) = rollbacks.recv().await {
            let Some(support) = support.upgrade() else {
                return;
            };
            tracing::error!(
                channel = %support.channel_id,
                "component {sha256} faulted too often; rolling back to the last good component"
            );
            if let Err(e) = hotswap::rollback(&support, Some(&sha256)).await {
                tracing::error!(channel = %support.channel_id, "automatic rollback failed: {e}");
            }
        }
    });
}

/// Core instances for validation, so Broadcast streams validate in parallel; the
/// cutter's instance belongs to the chain task alone. A config block replaces the
/// config, a swap replaces the component: idle instances of the old one are dropped,
/// busy ones finish their call on it.
pub struct ValidatorPool {
    tip_header: Bytes,
    state: RwLock<PoolState>,
    idle: Mutex<Vec<Idle>>,
    /// Where faults are counted.
    slot: Arc<CoreSlot>,
}

struct PoolState {
    /// The latest config block.
    config_block: Bytes,
    /// Its config sequence.
    sequence: u64,
    /// Its `BatchSize.AbsoluteMaxBytes`.
    absolute_max_bytes: u32,
    /// The component in force.
    core: Arc<CoreComponent>,
}

struct Idle {
    sequence: u64,
    core: Arc<CoreComponent>,
    instance: CoreChannel,
}

impl ValidatorPool {
    /// Runs `f` on an idle instance of the current config and component, opening one
    /// if needed. A fault is counted; the faulted instance is dropped. An error
    /// holding a [`CoreFault`] means opening the instance faulted.
    pub fn with<R>(&self, f: impl FnOnce(&mut CoreChannel) -> R) -> Result<R> {
        let (config_block, sequence, core) = {
            let state = self.state.read().unwrap();
            (
                state.config_block.clone(),
                state.sequence,
                state.core.clone(),
            )
        };
        let idle = {
            let mut idle = self.idle.lock().unwrap();
            idle.retain(|i| i.sequence == sequence && Arc::ptr_eq(&i.core, &core));
            idle.pop()
        };
        let mut instance = match idle {
            Some(idle) => idle.instance,
            None => match core.open_channel(&config_block, &self.tip_header) {
                Ok(instance) => instance,
                Err(e) => {
                    if let Some(fault) = e.downcast_ref::<CoreFault>() {
                        self.slot.record_fault(&core, fault);
                    }
                    return Err(e);
                }
            },
        };
        let out = f(&mut instance);
        if let Some(fault) = instance.fault() {
            self.slot.record_fault(&core, fault);
            return Ok(out);
        }
        let current = {
            let state = self.state.read().unwrap();
            state.sequence == sequence && Arc::ptr_eq(&state.core, &core)
        };
        if current {
            self.idle.lock().unwrap().push(Idle {
                sequence,
                core,
                instance,
            });
        }
        Ok(out)
    }

    /// A new config is in force (its block is in the ledger).
    pub fn reconfigure(&self, config_block: Bytes, sequence: u64) {
        let absolute_max_bytes = ChannelConfig::from_config_block(&config_block, &NativeCrypto)
            .map(|config| config.batch_size.absolute_max_bytes)
            .inspect_err(|e| tracing::error!("reading the new config natively: {e}"))
            .ok();
        {
            let mut state = self.state.write().unwrap();
            state.config_block = config_block;
            state.sequence = sequence;
            if let Some(max) = absolute_max_bytes {
                state.absolute_max_bytes = max;
            }
        }
        self.idle.lock().unwrap().clear();
    }

    /// A new component is in force.
    pub fn set_core(&self, core: Arc<CoreComponent>) {
        self.state.write().unwrap().core = core;
        let idle = std::mem::take(&mut *self.idle.lock().unwrap());
        drop(idle);
    }

    /// The sequence of the config validations run under.
    pub fn sequence(&self) -> u64 {
        self.state.read().unwrap().sequence
    }

    /// The channel's `BatchSize.AbsoluteMaxBytes`: Broadcast refuses bigger messages
    /// before they enter the core.
    pub fn absolute_max_bytes(&self) -> u32 {
        self.state.read().unwrap().absolute_max_bytes
    }

    /// The latest config block and its sequence.
    pub fn config(&self) -> (Bytes, u64) {
        let state = self.state.read().unwrap();
        (state.config_block.clone(), state.sequence)
    }
}
