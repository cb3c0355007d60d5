//! The solo chain: one task per channel owns the channel's cutter instance of the
//! core and its batch timer, and writes every cut block (signed, fsynced) to the
//! ledger, in order. Until Raft exists, single-consenter etcdraft channels use it too.

use crate::blockwriter::BlockWriter;
use crate::component::{CoreBlock, CoreChannel};
use crate::ledger::Ledger;
use anyhow::Result;
use bytes::Bytes;
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
    pub config_seq: u64,
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

pub fn start(
    channel_id: String,
    core: CoreChannel,
    ledger: Arc<Ledger>,
    writer: BlockWriter,
) -> ChainHandle {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    tokio::spawn(async move {
        let chain = Solo {
            channel_id: channel_id.clone(),
            core,
            ledger,
            writer,
        };
        if let Err(e) = chain.run(rx).await {
            tracing::error!(channel = %channel_id, "chain halted: {e:#}");
        }
    });
    ChainHandle { tx }
}

struct Solo {
    channel_id: String,
    core: CoreChannel,
    ledger: Arc<Ledger>,
    writer: BlockWriter,
}

impl Solo {
    async fn run(mut self, mut rx: mpsc::Receiver<Ordered>) -> Result<()> {
        let timeout = Duration::from_millis(self.core.batch_timeout_ms()?);
        let mut timer: Option<Instant> = None;
        loop {
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { return Ok(()) };
                    let cut = tokio::task::block_in_place(|| -> Result<_> {
                        let cut = self.core.order(&msg.envelope, msg.config_seq, now_unix_nanos())?;
                        for block in &cut.blocks {
                            self.write(block)?;
                        }
                        Ok(cut)
                    })?;
                    // As Fabric's solo: a running timer keeps its deadline while
                    // messages stay pending, and stops once nothing is pending.
                    timer = match (timer, cut.pending) {
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

    fn write(&self, block: &CoreBlock) -> Result<()> {
        let complete = self.writer.finish(block);
        self.ledger.append(complete)?;
        tracing::debug!(channel = %self.channel_id, number = block.number, "wrote block");
        Ok(())
    }
}

pub fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
