//! Fabric's solo consenter: one thread per channel owns the channel's cutter
//! instance of the core and its batch timer, and writes every cut block (signed,
//! fsynced) in order. Until Raft exists, single-consenter etcdraft channels use it
//! too. The logic is [`SoloChain`]; this module queues inputs to it and keeps time.

mod chain;
#[cfg(test)]
mod tests;
mod timer;

pub use chain::{Now, SoloChain};
pub use timer::BatchTimer;

use super::{Chain, ChainError, ConsenterSupport};
use crate::component::CoreComponent;
use crate::protoutil::now_unix_nanos;
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until};

/// How many validated messages may wait for the cutter; a full queue slows
/// Broadcast's `Recv` (back-pressure), nothing is dropped.
const QUEUE_DEPTH: usize = 1024;

/// What the chain is asked to do, in order.
enum Input {
    Order {
        envelope: Bytes,
        config_seq: u64,
    },
    Configure {
        config: Bytes,
        update: Bytes,
        config_seq: u64,
    },
    Swap {
        component: Arc<CoreComponent>,
        done: oneshot::Sender<Result<(), String>>,
    },
}

/// A solo chain: [`Chain`] for Broadcast, hot swap and Deliver.
pub struct Solo {
    tx: mpsc::Sender<Input>,
    /// The chain and its queue until `start`.
    idle: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    halt: watch::Sender<bool>,
}

impl Solo {
    /// The chain over `support` on `component`; it orders once started.
    pub fn new<S: ConsenterSupport>(
        support: S,
        component: Arc<CoreComponent>,
    ) -> anyhow::Result<Self> {
        let channel_id = support.channel_id().to_string();
        let chain = SoloChain::new(support, component)?;
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let (halt, halted) = watch::channel(false);
        let run = move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("building the chain's runtime");
            // A thread of its own: calls into the core and fsyncs block it, not the
            // runtime's workers.
            std::thread::Builder::new()
                .name(format!("chain-{channel_id}"))
                .spawn(move || {
                    if let Err(e) = runtime.block_on(run(chain, rx, halted)) {
                        tracing::error!(channel = %channel_id, "chain halted: {e:#}");
                    }
                })
                .expect("spawning the chain thread");
        };
        Ok(Solo {
            tx,
            idle: Mutex::new(Some(Box::new(run))),
            halt,
        })
    }

    async fn send(&self, input: Input) -> Result<(), ChainError> {
        self.tx.send(input).await.map_err(|_| ChainError::Stopped)
    }
}

/// Feeds the queue and the timer to the chain until it halts or everyone is gone.
async fn run<S: ConsenterSupport>(
    mut chain: SoloChain<S>,
    mut rx: mpsc::Receiver<Input>,
    mut halted: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let now = || Now {
        mono: start.elapsed(),
        unix_nanos: now_unix_nanos(),
    };
    loop {
        let deadline = chain.deadline().map(|d| start + d);
        tokio::select! {
            input = rx.recv() => match input {
                None => return Ok(()),
                Some(Input::Order { envelope, config_seq }) => chain.order(&envelope, config_seq, now())?,
                Some(Input::Configure { config, update, config_seq }) => {
                    chain.configure(config, &update, config_seq, now())?
                }
                Some(Input::Swap { component, done }) => {
                    let _ = done.send(chain.swap(component, now())?);
                }
            },
            _ = sleep_until(deadline.unwrap_or(start)), if deadline.is_some() => chain.tick(now())?,
            _ = halted.wait_for(|h| *h) => return Ok(()),
        }
    }
}

impl Chain for Solo {
    fn order(&self, envelope: Bytes, config_seq: u64) -> BoxFuture<'_, Result<(), ChainError>> {
        self.send(Input::Order {
            envelope,
            config_seq,
        })
        .boxed()
    }

    fn configure(
        &self,
        config: Bytes,
        update: Bytes,
        config_seq: u64,
    ) -> BoxFuture<'_, Result<(), ChainError>> {
        self.send(Input::Configure {
            config,
            update,
            config_seq,
        })
        .boxed()
    }

    fn wait_ready(&self) -> BoxFuture<'_, Result<(), ChainError>> {
        // Solo is ready whenever it runs; a full queue waits in `order`.
        let ready = if self.errored() {
            Err(ChainError::Stopped)
        } else {
            Ok(())
        };
        futures::future::ready(ready).boxed()
    }

    fn errored(&self) -> bool {
        self.tx.is_closed()
    }

    fn halted(&self) -> BoxFuture<'_, ()> {
        self.tx.closed().boxed()
    }

    fn start(&self) {
        if let Some(run) = self.idle.lock().unwrap().take() {
            run();
        }
    }

    fn halt(&self) {
        self.halt.send_replace(true);
        // Not started: drop the chain, so `errored` holds.
        drop(self.idle.lock().unwrap().take());
    }

    fn swap(&self, component: Arc<CoreComponent>) -> BoxFuture<'_, Result<(), String>> {
        async move {
            let (done, answer) = oneshot::channel();
            self.send(Input::Swap { component, done })
                .await
                .map_err(|e| e.to_string())?;
            answer.await.map_err(|_| ChainError::Stopped.to_string())?
        }
        .boxed()
    }
}
