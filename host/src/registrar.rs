//! The channels this orderer serves: joining a channel from its genesis block,
//! reopening every channel from its ledger at start, and looking channels up for
//! Broadcast and Deliver.

use crate::blockwriter::{BlockWriter, ConsenterMetadata};
use crate::chain::{self, ChainHandle};
use crate::component::{CoreChannel, CoreComponent};
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

pub struct Registrar {
    chains_dir: PathBuf,
    core: Arc<CoreComponent>,
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
}

pub enum Joined {
    New,
    AlreadyMember,
}

impl Registrar {
    pub fn new(data_dir: PathBuf, core: Arc<CoreComponent>, signer: Arc<Signer>) -> Self {
        Registrar {
            chains_dir: data_dir.join("chains"),
            core,
            signer,
            chains: RwLock::default(),
        }
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
        let validators = Arc::new(ValidatorPool {
            core: self.core.clone(),
            tip_header: tip_header.into(),
            config: RwLock::new((config_block, config.sequence)),
            idle: Mutex::default(),
        });
        let writer = BlockWriter::new(self.signer.clone(), last_config, consenter);
        let chain = chain::start(chain::Solo {
            channel_id: channel_id.to_string(),
            core: cutter,
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
        });
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

/// Core instances for validation, so Broadcast streams validate in parallel; the
/// cutter's instance belongs to the chain task alone. A config block replaces the
/// config: idle instances of the old one are dropped, busy ones finish their call.
pub struct ValidatorPool {
    core: Arc<CoreComponent>,
    tip_header: Bytes,
    /// The latest config block and its config sequence.
    config: RwLock<(Bytes, u64)>,
    idle: Mutex<Vec<(u64, CoreChannel)>>,
}

impl ValidatorPool {
    /// Runs `f` on an idle instance of the current config, opening one if needed.
    pub fn with<R>(&self, f: impl FnOnce(&mut CoreChannel) -> R) -> Result<R> {
        let (config_block, sequence) = self.config.read().unwrap().clone();
        let idle = {
            let mut idle = self.idle.lock().unwrap();
            idle.retain(|(seq, _)| *seq == sequence);
            idle.pop()
        };
        let mut instance = match idle {
            Some((_, instance)) => instance,
            None => self.core.open_channel(&config_block, &self.tip_header)?,
        };
        let out = f(&mut instance);
        if !instance.is_faulted() {
            self.idle.lock().unwrap().push((sequence, instance));
        }
        Ok(out)
    }

    /// A new config is in force (its block is in the ledger).
    pub fn reconfigure(&self, config_block: Bytes, sequence: u64) {
        *self.config.write().unwrap() = (config_block, sequence);
        self.idle.lock().unwrap().clear();
    }

    /// The sequence of the config validations run under.
    pub fn sequence(&self) -> u64 {
        self.config.read().unwrap().1
    }
}
