//! The solo chain: one task per channel owns the channel's cutter instance of the
//! core and its batch timer, and writes every cut block (signed, fsynced) to the
//! ledger, in order. Until Raft exists, single-consenter etcdraft channels use it too.

use crate::blockwriter::BlockWriter;
use crate::component::{CoreBlock, CoreChannel};
use crate::identity::Signer;
use crate::ledger::Ledger;
use crate::registrar::ValidatorPool;
use anyhow::Result;
use bytes::Bytes;
use fabric_protos::common::HeaderType;
use prost::Message;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

/// How many validated messages may wait for the cutter; a full queue slows
/// Broadcast's `Recv` (back-pressure), nothing is dropped.
const QUEUE_DEPTH: usize = 1024;

/// A message validated by Broadcast, on its way to the cutter.
pub struct Ordered {
    pub envelope: Bytes,
    /// The config sequence it was validated under.
    pub config_seq: u64,
    /// For a CONFIG envelope: the CONFIG_UPDATE it was made from, proposed again
    /// if another config got in first.
    pub update: Option<Bytes>,
}

/// The sending end of a chain: Broadcast hands messages to consensus through it.
#[derive(Clone)]
pub struct ChainHandle {
    tx: mpsc::Sender<Ordered>,
}

impl ChainHandle {
    /// Enqueues a message; fails only when the chain has stopped.
    pub async fn order(&self, msg: Ordered) -> Result<(), &'static str> {
        self.tx
            .send(msg)
            .await
            .map_err(|_| "the chain of this channel has stopped")
    }

    /// Whether the chain task has halted (Fabric's consenter `Errored()`).
    pub fn is_halted(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves when the chain task halts.
    pub async fn halted(&self) {
        self.tx.closed().await
    }
}

/// One channel's solo consenter.
pub struct Solo {
    pub channel_id: String,
    pub core: CoreChannel,
    pub ledger: Arc<Ledger>,
    pub writer: BlockWriter,
    /// Told about every new config, so Broadcast validates under it.
    pub validators: Arc<ValidatorPool>,
    pub signer: Arc<Signer>,
}

pub fn start(chain: Solo) -> ChainHandle {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    tokio::spawn(async move {
        let channel_id = chain.channel_id.clone();
        if let Err(e) = chain.run(rx).await {
            tracing::error!(channel = %channel_id, "chain halted: {e:#}");
        }
    });
    ChainHandle { tx }
}

impl Solo {
    async fn run(mut self, mut rx: mpsc::Receiver<Ordered>) -> Result<()> {
        let mut timeout = Duration::from_millis(self.core.batch_timeout_ms()?);
        let mut timer: Option<Instant> = None;
        loop {
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { return Ok(()) };
                    let is_config = msg.update.is_some();
                    let pending = tokio::task::block_in_place(|| self.order(msg))?;
                    if is_config {
                        // A config block ends the batch; the new timeout applies next.
                        timeout = Duration::from_millis(self.core.batch_timeout_ms()?);
                        timer = None;
                        continue;
                    }
                    // As Fabric's solo: a running timer keeps its deadline while
                    // messages stay pending, and stops once nothing is pending.
                    timer = match (timer, pending) {
                        (Some(_), false) => None,
                        (None, true) => Some(Instant::now() + timeout),
                        (t, _) => t,
                    };
                }
                _ = sleep_until(timer.unwrap_or_else(Instant::now)), if timer.is_some() => {
                    timer = None;
                    tokio::task::block_in_place(|| -> Result<()> {
                        if let Some(block) = self.core.cut()? {
                            self.write(&block)?;
                        }
                        Ok(())
                    })?;
                }
            }
        }
    }

    /// Orders one message and writes what it cut; returns whether messages are pending.
    fn order(&mut self, msg: Ordered) -> Result<bool> {
        let envelope = match &msg.update {
            Some(update) if msg.config_seq < self.core.config_sequence()? => {
                match self.repropose(update) {
                    Some(envelope) => envelope,
                    None => return Ok(false),
                }
            }
            _ => msg.envelope,
        };
        let cut = self
            .core
            .order(&envelope, msg.config_seq, now_unix_nanos())?;
        for block in &cut.blocks {
            self.write(block)?;
        }
        Ok(cut.pending)
    }

    /// A config update validated under an older config: propose it again against
    /// the config in force, as Fabric's solo chain does; None drops it.
    fn repropose(&mut self, update: &[u8]) -> Option<Bytes> {
        let now = now_unix_nanos();
        let config = self
            .core
            .propose_config_update(update, now)
            .inspect_err(|r| tracing::warn!(channel = %self.channel_id, "discarding bad config message: {r}"))
            .ok()?;
        let envelope = self
            .signer
            .orderer_envelope(HeaderType::Config, &self.channel_id, config.into())
            .encode_to_vec();
        self.core
            .validate_config(&envelope, now)
            .inspect_err(|r| tracing::warn!(channel = %self.channel_id, "discarding bad config message: {r}"))
            .ok()?;
        Some(envelope.into())
    }

    fn write(&mut self, block: &CoreBlock) -> Result<()> {
        if block.is_config {
            self.writer.set_last_config(block.number);
        }
        let complete = self.writer.finish(block);
        if block.is_config {
            // As Fabric's WriteConfigBlock: the new config is in force before the
            // block is visible, so no Deliver client reads it under the old one.
            // (The core applied it while cutting this block.)
            self.validators
                .reconfigure(complete.clone(), self.core.config_sequence()?);
        }
        self.ledger.append(complete)?;
        tracing::debug!(channel = %self.channel_id, number = block.number, config = block.is_config, "wrote block");
        Ok(())
    }
}

pub fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
