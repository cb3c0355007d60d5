//! Appends a channel's blocks to its ledger in the background, as Fabric's block
//! writer commits: the chain signs a block and goes on cutting the next batch while
//! the last one is fsynced. Blocks queued meanwhile are appended together, with one
//! fsync. A block is visible to Deliver only once it is durable.
//!
//! An idle channel holds no thread. The first block queued starts a drain on tokio's
//! blocking pool (a plain thread outside a runtime), which appends until the queue is
//! empty and ends. With a thousand idle channels that is a thousand empty queues, not
//! a thousand parked threads.

use crate::ledger::Ledger;
use anyhow::{Result, anyhow};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};

/// How many signed blocks may wait for the ledger; a full queue slows the chain.
const QUEUE_DEPTH: usize = 64;

enum Job {
    Append(Bytes),
    /// Answered once every block queued before it is in the ledger.
    Flush(mpsc::Sender<()>),
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// A drain is running (it empties the queue before it ends).
    draining: bool,
    /// The first append that failed: every later one fails with it (the chain halts).
    failed: Option<String>,
}

struct Inner {
    channel: String,
    ledger: Arc<Ledger>,
    state: Mutex<State>,
    /// Signalled whenever a drain took jobs off the queue or ended.
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

    /// Queues a complete block; fails once an earlier append failed.
    pub fn append(&self, block: Bytes) -> Result<()> {
        self.check()?;
        self.push(Job::Append(block));
        Ok(())
    }

    /// Waits until every queued block is in the ledger.
    pub fn flush(&self) -> Result<()> {
        let (done, wait) = mpsc::channel();
        self.push(Job::Flush(done));
        wait.recv()
            .map_err(|_| anyhow!("the committer has stopped"))?;
        self.check()
    }

    fn check(&self) -> Result<()> {
        match &self.inner.state.lock().unwrap().failed {
            Some(error) => Err(anyhow!("appending to the ledger failed: {error}")),
            None => Ok(()),
        }
    }

    fn push(&self, job: Job) {
        let mut state = self.inner.state.lock().unwrap();
        while state.queue.len() >= QUEUE_DEPTH {
            state = self.inner.progress.wait(state).unwrap();
        }
        state.queue.push_back(job);
        if !state.draining {
            state.draining = true;
            let inner = self.inner.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(move || inner.drain())),
                Err(_) => drop(std::thread::spawn(move || inner.drain())),
            }
        }
    }
}

impl Drop for Committer {
    /// Every block queued is appended before the committer goes away.
    fn drop(&mut self) {
        let mut state = self.inner.state.lock().unwrap();
        while state.draining {
            state = self.inner.progress.wait(state).unwrap();
        }
    }
}

impl Inner {
    /// Appends what is queued, in batches, until the queue is empty.
    fn drain(&self) {
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        loop {
            let healthy = {
                let mut state = self.state.lock().unwrap();
                if state.queue.is_empty() {
                    state.draining = false;
                    self.progress.notify_all();
                    return;
                }
                // Whatever is queued already joins this append.
                while batch.len() < QUEUE_DEPTH
                    && let Some(job) = state.queue.pop_front()
                {
                    match job {
                        Job::Append(block) => batch.push(block),
                        Job::Flush(done) => flushes.push(done),
                    }
                }
                self.progress.notify_all();
                state.failed.is_none()
            };
            let started = std::time::Instant::now();
            if healthy && !batch.is_empty() {
                match self.ledger.append_batch(&batch) {
                    Ok(()) => crate::operations::metrics::ledger_committed(
                        &self.channel,
                        batch.len(),
                        started.elapsed(),
                    ),
                    Err(e) => {
                        let channel = &self.channel;
                        tracing::error!(
                            channel,
                            "appending {} block(s) failed: {e:#}",
                            batch.len()
                        );
                        self.state.lock().unwrap().failed = Some(format!("{e:#}"));
                    }
                }
            }
            batch.clear();
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
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
        let mut blocks = chain(101);
        let last = blocks.pop().unwrap();
        // Outside a runtime; a hundred blocks through a queue of 64.
        for block in blocks {
            committer.append(block).unwrap();
        }
        committer.flush().unwrap();
        assert_eq!(ledger.height(), 100);
        committer.append(last).unwrap();
        drop(committer);
        assert_eq!(ledger.height(), 101, "dropping appends what was queued");
    }
}
