//! Appends a channel's blocks to its ledger in the background, as Fabric's block
//! writer commits: the chain signs a block and goes on cutting the next batch while
//! the last one is fsynced. Blocks queued meanwhile are appended together, with one
//! fsync. A block is visible to Deliver only once it is durable.
//!
//! An idle channel holds no thread. The first block queued starts a drain on tokio's
//! blocking pool (a plain thread outside a runtime), which appends until the queue is
//! empty and ends. With a thousand idle channels that is a thousand empty queues, not
//! a thousand parked threads.

use crate::ledger::{AppendError, Ledger};
use anyhow::{Result, anyhow};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How many signed blocks may wait for the ledger; a full queue slows the chain.
const QUEUE_DEPTH: usize = 64;
/// The first wait before an append that failed on I/O is tried again...
const RETRY_FIRST: Duration = Duration::from_millis(50);
/// ...doubled up to this.
const RETRY_MAX: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    queue: VecDeque<Bytes>,
    /// A drain is running (it empties the queue before it ends).
    draining: bool,
    /// An append failed on I/O and is being retried: the queue may then exceed its
    /// depth rather than block the chain (Broadcast is refused meanwhile, so only
    /// messages already in flight add blocks).
    stalled: bool,
    /// An append that cannot succeed (the ledger refused the block itself, or could
    /// not roll a failed write back): every later one fails with it (the chain halts).
    failed: Option<String>,
}

struct Inner {
    channel: String,
    ledger: Arc<Ledger>,
    state: Mutex<State>,
    /// Signalled whenever a drain took blocks off the queue or ended.
    progress: Condvar,
}

pub struct Committer {
    inner: Arc<Inner>,
}

impl Committer {
    pub fn start(channel_id: &str, ledger: Arc<Ledger>) -> Self {
        Committer {
            inner: Arc::new(Inner {
                channel: channel_id.to_string(),
                ledger,
                state: Mutex::default(),
                progress: Condvar::new(),
            }),
        }
    }

    /// Queues a complete block; fails once an append failed for good.
    pub fn append(&self, block: Bytes) -> Result<()> {
        let mut state = self.inner.state.lock().unwrap();
        while state.queue.len() >= QUEUE_DEPTH && !state.stalled && state.failed.is_none() {
            state = self.inner.progress.wait(state).unwrap();
        }
        if let Some(error) = &state.failed {
            return Err(anyhow!("appending to the ledger failed: {error}"));
        }
        state.queue.push_back(block);
        if !state.draining {
            state.draining = true;
            let inner = self.inner.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(move || inner.drain())),
                Err(_) => drop(std::thread::spawn(move || inner.drain())),
            }
        }
        Ok(())
    }
}

impl Drop for Committer {
    /// Every block queued is appended before the committer goes away (a drain that
    /// is retrying a failed append gives up at the next try, so a removed channel
    /// does not wait for its disk).
    fn drop(&mut self) {
        let mut state = self.inner.state.lock().unwrap();
        while state.draining {
            if state.stalled {
                state
                    .failed
                    .get_or_insert_with(|| "the channel was stopped".into());
            }
            state = self.inner.progress.wait(state).unwrap();
        }
    }
}

impl Inner {
    /// Appends what is queued, in batches, until the queue is empty. An append that
    /// fails on I/O (a full disk, EIO) is tried again, the same blocks in the same
    /// order, until it succeeds: the blocks are signed and numbered, and the chain
    /// has moved past them, so they must be the ones written next.
    fn drain(&self) {
        let mut batch = Vec::new();
        let mut stalled_since: Option<Instant> = None;
        let mut retry = RETRY_FIRST;
        loop {
            if batch.is_empty() {
                let mut state = self.state.lock().unwrap();
                if state.queue.is_empty() || state.failed.is_some() {
                    return self.end(state);
                }
                // Whatever is queued already joins this append.
                let take = state.queue.len().min(QUEUE_DEPTH);
                batch.extend(state.queue.drain(..take));
                self.progress.notify_all();
            }
            let started = Instant::now();
            let error = match self.ledger.append_batch(&batch) {
                Ok(()) => {
                    crate::operations::metrics::ledger_committed(
                        &self.channel,
                        batch.len(),
                        started.elapsed(),
                    );
                    if let Some(since) = stalled_since.take() {
                        tracing::info!(
                            channel = %self.channel,
                            "the ledger takes blocks again: appended the {} block(s) held for {:.1} s; Broadcast accepted again",
                            batch.len(),
                            since.elapsed().as_secs_f64()
                        );
                        self.state.lock().unwrap().stalled = false;
                        retry = RETRY_FIRST;
                    }
                    batch.clear();
                    continue;
                }
                Err(e) => e,
            };
            let first = crate::ledger::decode_header(&batch[0]).map_or(0, |h| h.number);
            let mut state = self.state.lock().unwrap();
            if state.failed.is_some() {
                // Dropped while retrying: the channel is gone, and so are its blocks.
                tracing::error!(
                    channel = %self.channel,
                    "the channel stopped while its ledger could not be written: {} block(s) not appended",
                    batch.len() + state.queue.len()
                );
                return self.end(state);
            }
            // The ledger refused the blocks themselves, or is broken until reopened.
            if error.downcast_ref::<AppendError>().is_some() {
                tracing::error!(channel = %self.channel, "appending {} block(s) failed: {error:#}", batch.len());
                state.failed = Some(format!("{error:#}"));
                return self.end(state);
            }
            if stalled_since.is_none() {
                // Once per episode: the retries are silent until they succeed.
                tracing::error!(
                    channel = %self.channel,
                    "cannot append block {first} and after to the ledger: {error:#}; holding {} block(s) in memory and retrying until the disk takes them; Broadcast is refused (SERVICE_UNAVAILABLE) meanwhile",
                    batch.len() + state.queue.len()
                );
                stalled_since = Some(Instant::now());
                state.stalled = true;
                self.progress.notify_all();
            }
            drop(state);
            std::thread::sleep(retry);
            retry = (retry * 2).min(RETRY_MAX);
        }
    }

    /// Ends the drain; what is still queued is not appended.
    fn end(&self, mut state: std::sync::MutexGuard<'_, State>) {
        state.queue.clear();
        state.draining = false;
        self.progress.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use prost::Message;

    use fabric_protos::common::BlockHeader;
    use ordering_core::NativeCrypto;
    use ordering_core::blockheader::header_hash;

    /// A chain of `count` tiny blocks, as the ledger checks them (numbers, hashes).
    fn chain(count: u64) -> Vec<Bytes> {
        let mut previous: Option<BlockHeader> = None;
        (0..count)
            .map(|n| {
                let mut block =
                    crate::multichannel::creation::genesis_block(Bytes::from(vec![7; 10]));
                let header = block.header.as_mut().unwrap();
                header.number = n;
                if let Some(p) = &previous {
                    header.previous_hash = header_hash(p, &NativeCrypto).to_vec().into();
                }
                previous = Some(header.clone());
                block.encode_to_vec().into()
            })
            .collect()
    }

    #[test]
    fn every_queued_block_is_appended_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger::open(dir.path()).unwrap());
        let committer = Committer::start("ch", ledger.clone());
        // Outside a runtime; a hundred blocks through a queue of 64.
        for block in chain(101) {
            committer.append(block).unwrap();
        }
        drop(committer);
        assert_eq!(ledger.height(), 101, "dropping appends what was queued");
    }
}
