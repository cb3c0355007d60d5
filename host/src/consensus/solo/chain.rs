//! The solo chain's logic, as a state machine: each input (a message, the batch
//! timer, a swap) is one call with the time given by the caller; blocks go out
//! through the [`ConsenterSupport`]. No thread, socket or clock of its own, so tests
//! drive it with a fake clock and an in-memory ledger.

use super::timer::BatchTimer;
use crate::component::{CoreBlock, CoreChannel, CoreComponent, CoreFault};
use crate::consensus::ConsenterSupport;
use anyhow::Result;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// What went wrong in a step: a fault of the cutter is recovered from (reopened);
/// anything else (the ledger) halts the chain.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Fault(#[from] CoreFault),
    #[error(transparent)]
    Halt(#[from] anyhow::Error),
}

/// The time of an input: monotonic (the batch timer) and wall-clock (the core's
/// expiration checks).
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub mono: Duration,
    pub unix_nanos: u64,
}

pub struct SoloChain<S> {
    support: S,
    /// The cutter: an instance of `component`.
    core: CoreChannel,
    component: Arc<CoreComponent>,
    timer: BatchTimer,
}

/// An error from a method halts the chain (the ledger failed); faults of the core are
/// handled inside.
impl<S: ConsenterSupport> SoloChain<S> {
    /// The chain on `component`, its cutter opened at the channel's config and tip.
    pub fn new(support: S, component: Arc<CoreComponent>) -> Result<Self> {
        let mut core = open(&support, &component)?;
        let timer = BatchTimer::new(Duration::from_millis(core.batch_timeout_ms()?));
        Ok(SoloChain {
            support,
            core,
            component,
            timer,
        })
    }

    pub fn support(&self) -> &S {
        &self.support
    }

    pub fn support_mut(&mut self) -> &mut S {
        &mut self.support
    }

    /// A fresh cutter at the support's config and tip: the pending batch is dropped
    /// and the timer stopped (a Raft leader starting to serve, or stepping down).
    pub fn reopen(&mut self) -> Result<()> {
        self.core = open(&self.support, &self.component)?;
        self.timer
            .set_timeout(Duration::from_millis(self.core.batch_timeout_ms()?));
        self.timer.stop();
        Ok(())
    }

    /// When the batch timer expires, if it runs.
    pub fn deadline(&self) -> Option<Duration> {
        self.timer.deadline()
    }

    /// A normal message: ordered (the core validates it again if the config moved on).
    pub fn order(&mut self, envelope: &[u8], config_seq: u64, now: Now) -> Result<()> {
        let started = self.timer.started().unwrap_or(now.mono);
        let ordered = (|| -> Result<bool, StepError> {
            let cut = self.core.order(envelope, config_seq, now.unix_nanos)?;
            self.write(&cut.blocks)?;
            filled(self.support.channel_id(), &cut.blocks, now.mono - started);
            Ok(cut.pending)
        })();
        match ordered {
            Ok(pending) => self.timer.ordered(pending, now.mono),
            Err(e) => self.recover(e)?,
        }
        Ok(())
    }

    /// A CONFIG envelope: what pends is cut, then the config block alone. One made
    /// under an older config is made again from its update, or dropped (logged).
    pub fn configure(
        &mut self,
        config: Bytes,
        update: &[u8],
        config_seq: u64,
        now: Now,
    ) -> Result<()> {
        let sequence = match self.core.config_sequence() {
            Ok(sequence) => sequence,
            Err(fault) => return self.recover(fault.into()),
        };
        let config = if config_seq < sequence {
            match self.support.process_config_update(update, now.unix_nanos) {
                Ok(config) => config,
                Err(rejection) => {
                    tracing::warn!(channel = %self.support.channel_id(), "discarding bad config message: {rejection}");
                    return Ok(());
                }
            }
        } else {
            config
        };
        let ordered = (|| -> Result<u64, StepError> {
            let cut = self.core.order(&config, config_seq, now.unix_nanos)?;
            self.write(&cut.blocks)?;
            Ok(self.core.batch_timeout_ms()?)
        })();
        match ordered {
            Ok(timeout) => {
                // A config block ends the batch; its BatchTimeout applies next.
                self.timer.set_timeout(Duration::from_millis(timeout));
                self.timer.stop();
            }
            Err(e) => self.recover(e)?,
        }
        Ok(())
    }

    /// The batch timer's turn: cuts what pends once the deadline has passed.
    pub fn tick(&mut self, now: Now) -> Result<()> {
        if !self.timer.expired(now.mono) {
            return Ok(());
        }
        let started = self.timer.started().unwrap_or(now.mono);
        self.timer.stop();
        let cut = (|| -> Result<(), StepError> {
            let block = self.core.cut()?;
            filled(
                self.support.channel_id(),
                block.as_slice(),
                now.mono - started,
            );
            self.write(block.as_slice())
        })();
        if let Err(e) = cut {
            self.recover(e)?;
        }
        Ok(())
    }

    /// Hot swap of the cutter: the old instance's pending envelopes are ordered again,
    /// in order, into a new instance of `component` opened at the same tip, so the
    /// batch survives. With the same batch limits nothing is cut here; a component
    /// with smaller limits may cut at once (those blocks are written). The inner error
    /// refuses the swap, and the old instance stays in force untouched.
    pub fn swap(&mut self, component: Arc<CoreComponent>, now: Now) -> Result<Result<(), String>> {
        let mut next = match open(&self.support, &component) {
            Ok(next) => next,
            Err(e) => {
                return Ok(Err(format!(
                    "the new component cannot open the channel: {e:#}"
                )));
            }
        };
        let pending = self.pending();
        let moved = (|| -> Result<(Vec<CoreBlock>, bool, u64), CoreFault> {
            let config_seq = next.config_sequence()?;
            let (mut blocks, mut still_pending) = (Vec::new(), false);
            for envelope in &pending {
                let cut = next.order(envelope, config_seq, now.unix_nanos)?;
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
        let channel = self.support.channel_id().to_string();
        if !blocks.is_empty() {
            tracing::warn!(
                %channel,
                blocks = blocks.len(),
                "the new component's batch limits cut the moved pending batch at once"
            );
        }
        tracing::info!(
            %channel,
            pending = pending.len(),
            "cutter switched to {} {} ({})",
            component.name(),
            component.version(),
            component.sha256()
        );
        self.core = next;
        self.component = component;
        if let Err(e) = self.write(&blocks) {
            self.recover(e)?;
        }
        self.timer.set_timeout(Duration::from_millis(timeout_ms));
        self.timer.ordered(still_pending, now.mono);
        Ok(Ok(()))
    }

    /// The cutter's pending envelopes; none from an instance that faulted.
    fn pending(&mut self) -> Vec<Vec<u8>> {
        if self.core.is_faulted() {
            return Vec::new();
        }
        self.core.pending().unwrap_or_else(|fault| {
            self.support.faults().record_fault(&self.component, &fault);
            tracing::error!(channel = %self.support.channel_id(), "reading the pending batch: {fault}; it is lost");
            Vec::new()
        })
    }

    fn write(&mut self, blocks: &[CoreBlock]) -> Result<(), StepError> {
        for block in blocks {
            if block.is_config {
                // The core applied the config while cutting this block.
                let sequence = self.core.config_sequence()?;
                self.support.write_config_block(block, sequence, None)?;
            } else {
                self.support.write_block(block, None)?;
            }
            tracing::debug!(channel = %self.support.channel_id(), number = block.number, config = block.is_config, "wrote block");
        }
        Ok(())
    }

    /// A fault of the cutter instance: counted, and the cutter reopened on the same
    /// component at the ledger's tip (the faulted instance cannot be asked for its
    /// pending batch: those messages are lost, and logged). Any other error halts.
    fn recover(&mut self, error: StepError) -> Result<()> {
        let fault = match error {
            StepError::Fault(fault) => fault,
            StepError::Halt(error) => return Err(error),
        };
        self.support.faults().record_fault(&self.component, &fault);
        tracing::error!(
            channel = %self.support.channel_id(),
            "the cutter faulted ({fault}); reopening it, its pending batch is lost"
        );
        self.reopen()
    }
}

/// Fabric's blockcutter metric: a cut that made a normal block took `fill` since its
/// batch's first message.
fn filled(channel: &str, blocks: &[CoreBlock], fill: Duration) {
    if blocks.iter().any(|b| !b.is_config) {
        crate::operations::metrics::block_filled(channel, fill);
    }
}

/// A new instance of `component` at the channel's tip and the config in force.
fn open(support: &impl ConsenterSupport, component: &CoreComponent) -> Result<CoreChannel> {
    let (config_block, tip) = support.config_and_tip();
    Ok(component.open_channel(&config_block, &tip)?)
}
