//! Fabric's solo consenter. The logic is [`SoloChain`], behind a lock: a Broadcast
//! task orders its message itself, in the order the lock is taken, with no hand-off
//! to another thread and no wake-up per message; cut blocks are signed there and go
//! to the channel's committer. A timer task wakes only for a batch's deadline. Until
//! Raft exists, single-consenter etcdraft channels use it too.

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
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, sleep_until};

/// A solo chain: [`Chain`] for Broadcast, hot swap and Deliver.
pub struct Solo<S> {
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    channel_id: String,
    /// None once halted.
    chain: Mutex<Option<SoloChain<S>>>,
    /// The origin of the chain's monotonic clock.
    origin: Instant,
    /// Tells the timer task that a batch began (a deadline appeared) or the chain halted.
    deadline_set: Notify,
    halted: watch::Sender<bool>,
    started: std::sync::atomic::AtomicBool,
}

impl<S: ConsenterSupport> Solo<S> {
    /// The chain over `support` on `component`; its timer runs once started.
    pub fn new(support: S, component: Arc<CoreComponent>) -> anyhow::Result<Self> {
        let channel_id = support.channel_id().to_string();
        let chain = SoloChain::new(support, component)?;
        Ok(Solo {
            shared: Arc::new(Shared {
                channel_id,
                chain: Mutex::new(Some(chain)),
                origin: Instant::now(),
                deadline_set: Notify::new(),
                halted: watch::channel(false).0,
                started: Default::default(),
            }),
        })
    }
}

impl<S: ConsenterSupport> Shared<S> {
    fn now(&self) -> Now {
        Now {
            mono: self.origin.elapsed(),
            unix_nanos: now_unix_nanos(),
        }
    }

    /// One input to the chain, under its lock; an error halts it.
    fn step<T>(
        &self,
        input: impl FnOnce(&mut SoloChain<S>, Now) -> anyhow::Result<T>,
    ) -> Result<T, ChainError> {
        let mut guard = self.chain.lock().unwrap();
        let chain = guard.as_mut().ok_or(ChainError::Stopped)?;
        let before = chain.deadline();
        match input(chain, self.now()) {
            Ok(answer) => {
                if before.is_none() && chain.deadline().is_some() {
                    self.deadline_set.notify_one();
                }
                Ok(answer)
            }
            Err(e) => {
                tracing::error!(channel = %self.channel_id, "chain halted: {e:#}");
                *guard = None;
                drop(guard);
                self.halt();
                Err(ChainError::Stopped)
            }
        }
    }

    fn halt(&self) {
        self.halted.send_replace(true);
        self.deadline_set.notify_one();
    }

    /// The batch timer: sleeps until the deadline of the batch pending, if one is.
    async fn run_timer(self: Arc<Self>) {
        loop {
            let deadline = match self.chain.lock().unwrap().as_ref() {
                None => return,
                Some(chain) => chain.deadline(),
            };
            match deadline {
                None => self.deadline_set.notified().await,
                Some(deadline) => {
                    tokio::select! {
                        _ = sleep_until(self.origin + deadline) => {
                            let _ = self.step(|chain, now| chain.tick(now));
                        }
                        // A halt; a deadline only appears when none was set.
                        _ = self.deadline_set.notified() => {}
                    }
                }
            }
        }
    }
}

impl<S: ConsenterSupport> Chain for Solo<S> {
    fn order(&self, envelope: Bytes, config_seq: u64) -> BoxFuture<'_, Result<(), ChainError>> {
        let ordered = self
            .shared
            .step(|chain, now| chain.order(&envelope, config_seq, now));
        futures::future::ready(ordered).boxed()
    }

    fn configure(
        &self,
        config: Bytes,
        update: Bytes,
        config_seq: u64,
    ) -> BoxFuture<'_, Result<(), ChainError>> {
        let ordered = self
            .shared
            .step(|chain, now| chain.configure(config, &update, config_seq, now));
        futures::future::ready(ordered).boxed()
    }

    fn wait_ready(&self) -> BoxFuture<'_, Result<(), ChainError>> {
        // Solo is ready whenever it runs.
        let ready = if self.errored() {
            Err(ChainError::Stopped)
        } else {
            Ok(())
        };
        futures::future::ready(ready).boxed()
    }

    fn errored(&self) -> bool {
        *self.shared.halted.borrow()
    }

    fn halted(&self) -> BoxFuture<'_, ()> {
        let mut halted = self.shared.halted.subscribe();
        async move {
            let _ = halted.wait_for(|h| *h).await;
        }
        .boxed()
    }

    fn start(&self) {
        use std::sync::atomic::Ordering;
        if !self.shared.started.swap(true, Ordering::SeqCst) {
            tokio::spawn(self.shared.clone().run_timer());
        }
    }

    fn halt(&self) {
        // Dropping the chain drops its committer, which appends what is queued.
        drop(self.shared.chain.lock().unwrap().take());
        self.shared.halt();
    }

    fn swap(&self, component: Arc<CoreComponent>) -> BoxFuture<'_, Result<(), String>> {
        let swapped = self
            .shared
            .step(|chain, now| chain.swap(component, now))
            .map_err(|e| e.to_string())
            .and_then(|answer| answer);
        futures::future::ready(swapped).boxed()
    }
}
