//! The solo chain: one thread per channel owns the channel's cutter instance of the
//! core and its batch timer, and writes every cut block (signed, fsynced) to the
//! ledger, in order. Until Raft exists, single-consenter etcdraft channels use it too.

use crate::blockwriter::BlockWriter;
use crate::component::{CoreBlock, CoreChannel, CoreComponent, CoreFault};
use crate::hotswap::{CoreSlot, RecentEnvelopes};
use crate::identity::Signer;
use crate::ledger::Ledger;
use crate::registrar::ValidatorPool;
use anyhow::Result;
use bytes::Bytes;
use fabric_protos::common::HeaderType;
use prost::Message;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
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

/// What the chain task is asked to do, in order.
enum ChainMsg {
    Order(Ordered),
    /// Switch the cutter to this component (hot swap), moving the pending batch.
    Swap {
        component: Arc<CoreComponent>,
        done: oneshot::Sender<Result<(), String>>,
    },
}

/// The sending end of a chain: Broadcast hands messages to consensus through it.
#[derive(Clone)]
pub struct ChainHandle {
    tx: mpsc::Sender<ChainMsg>,
}

const STOPPED: &str = "the chain of this channel has stopped";

impl ChainHandle {
    /// Enqueues a message; fails only when the chain has stopped.
    pub async fn order(&self, msg: Ordered) -> Result<(), &'static str> {
        self.tx
            .send(ChainMsg::Order(msg))
            .await
            .map_err(|_| STOPPED)
    }

    /// Switches the cutter to `component` once every message queued before this
    /// call is ordered: the pending batch moves across. Ok once it is in force.
    pub async fn swap(&self, component: Arc<CoreComponent>) -> Result<(), String> {
        let (done, answer) = oneshot::channel();
        self.tx
            .send(ChainMsg::Swap { component, done })
            .await
            .map_err(|_| STOPPED.to_string())?;
        answer.await.map_err(|_| STOPPED.to_string())?
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
    /// The cutter: an instance of `component`.
    pub core: CoreChannel,
    pub component: Arc<CoreComponent>,
    /// Where the cutter's faults are counted.
    pub slot: Arc<CoreSlot>,
    /// Accepted envelopes, for dry runs.
    pub recent: Arc<RecentEnvelopes>,
    pub ledger: Arc<Ledger>,
    pub writer: BlockWriter,
    /// Told about every new config, so Broadcast validates under it.
    pub validators: Arc<ValidatorPool>,
    pub signer: Arc<Signer>,
}

/// Runs the chain on a thread of its own: calls into the core and fsyncs block it,
/// not the runtime's workers, and without a thread hand-off per message.
pub fn start(chain: Solo) -> ChainHandle {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    let channel_id = chain.channel_id.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("building the chain's runtime");
    std::thread::Builder::new()
        .name(format!("chain-{channel_id}"))
        .spawn(move || {
            if let Err(e) = runtime.block_on(chain.run(rx)) {
                tracing::error!(channel = %channel_id, "chain halted: {e:#}");
            }
        })
        .expect("spawning the chain thread");
    ChainHandle { tx }
}

impl Solo {
    async fn run(mut self, mut rx: mpsc::Receiver<ChainMsg>) -> Result<()> {
        let mut timeout = Duration::from_millis(self.core.batch_timeout_ms()?);
        let mut timer: Option<Instant> = None;
        loop {
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { return Ok(()) };
                    let msg = match msg {
                        ChainMsg::Order(msg) => msg,
                        ChainMsg::Swap { component, done } => {
                            let swapped = self.swap(component)?;
                            let answer = swapped.map(|(pending, batch_timeout)| {
                                timeout = batch_timeout;
                                timer = match (timer, pending) {
                                    (_, false) => None,
                                    (None, true) => Some(Instant::now() + timeout),
                                    (t, true) => t,
                                };
                            });
                            let _ = done.send(answer);
                            continue;
                        }
                    };
                    let is_config = msg.update.is_some();
                    let pending = match self.order(msg) {
                        Ok(pending) => pending,
                        Err(e) => {
                            timeout = self.recover(e)?;
                            timer = None;
                            continue;
                        }
                    };
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
                    let cut = self.core.cut().map_err(anyhow::Error::from).and_then(|block| match block {
                        Some(block) => self.write(&block),
                        None => Ok(()),
                    });
                    if let Err(e) = cut {
                        timeout = self.recover(e)?;
                    }
                }
            }
        }
    }

    /// A fault of the cutter instance: counted, and the cutter reopened on the same
    /// component at the ledger's tip (the faulted instance cannot be asked for its
    /// pending batch: those messages are lost, and logged). Any other error halts.
    fn recover(&mut self, error: anyhow::Error) -> Result<Duration> {
        let Some(fault) = error.downcast_ref::<CoreFault>() else {
            return Err(error);
        };
        self.slot.record_fault(&self.component, fault);
        tracing::error!(
            channel = %self.channel_id,
            "the cutter faulted ({fault}); reopening it, its pending batch is lost"
        );
        self.core = self.open(&self.component)?;
        Ok(Duration::from_millis(self.core.batch_timeout_ms()?))
    }

    /// A new instance of `component` at the ledger's tip and the config in force.
    fn open(&self, component: &CoreComponent) -> Result<CoreChannel> {
        let (config_block, _) = self.validators.config();
        let tip = self.ledger.tip_header().unwrap_or_default().encode_to_vec();
        component.open_channel(&config_block, &tip)
    }

    /// Hot swap of the cutter: the old instance's pending envelopes are ordered again,
    /// in order, into a new instance of `component` opened at the same tip, so the
    /// batch survives. With the same batch limits nothing is cut here; a component
    /// with smaller limits may cut at once (those blocks are written). The outer
    /// error halts the chain (ledger); the inner one refuses the swap, and the old
    /// instance stays in force untouched.
    fn swap(&mut self, component: Arc<CoreComponent>) -> Result<Result<(bool, Duration), String>> {
        let mut next = match self.open(&component) {
            Ok(next) => next,
            Err(e) => {
                return Ok(Err(format!(
                    "the new component cannot open the channel: {e:#}"
                )));
            }
        };
        let pending = if self.core.is_faulted() {
            Vec::new()
        } else {
            match self.core.pending() {
                Ok(pending) => pending,
                Err(fault) => {
                    self.slot.record_fault(&self.component, &fault);
                    tracing::error!(channel = %self.channel_id, "reading the pending batch: {fault}; it is lost");
                    Vec::new()
                }
            }
        };
        let moved = (|| -> Result<(Vec<CoreBlock>, bool, u64), CoreFault> {
            let config_seq = next.config_sequence()?;
            let now = now_unix_nanos();
            let (mut blocks, mut still_pending) = (Vec::new(), false);
            for envelope in &pending {
                let cut = next.order(envelope, config_seq, now)?;
                blocks.extend(cut.blocks);
                still_pending = cut.pending;
            }
            Ok((blocks, still_pending, next.batch_timeout_ms()?))
        })();
        let (blocks, still_pending, timeout_ms) = match moved {
            Ok(moved) => moved,
            Err(fault) => {
                return Ok(Err(format!(
                    "the new component faulted taking the pending batch: {fault}"
                )));
            }
        };
        if !blocks.is_empty() {
            tracing::warn!(
                channel = %self.channel_id,
                blocks = blocks.len(),
                "the new component's batch limits cut the moved pending batch at once"
            );
        }
        tracing::info!(
            channel = %self.channel_id,
            pending = pending.len(),
            "cutter switched to {} {} ({})",
            component.name(),
            component.version(),
            component.sha256()
        );
        self.core = next;
        self.component = component;
        for block in &blocks {
            self.write(block)?;
        }
        Ok(Ok((still_pending, Duration::from_millis(timeout_ms))))
    }

    /// Orders one message and writes what it cut; returns whether messages are pending.
    fn order(&mut self, msg: Ordered) -> Result<bool> {
        let accepted = msg.update.as_ref().unwrap_or(&msg.envelope).clone();
        self.recent.push(accepted, now_unix_nanos());
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
