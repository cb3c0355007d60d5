//! Appends a channel's blocks to its ledger on a thread of its own, as Fabric's block
//! writer commits in the background: the chain signs a block and goes on cutting the
//! next batch while the last one is fsynced. Blocks queued meanwhile are appended
//! together, with one fsync. A block is visible to Deliver only once it is durable.

use crate::ledger::Ledger;
use anyhow::{Result, anyhow};
use bytes::Bytes;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// How many signed blocks may wait for the ledger; a full queue slows the chain.
const QUEUE_DEPTH: usize = 64;

enum Job {
    Append(Bytes),
    /// Answered once every block queued before it is in the ledger.
    Flush(mpsc::Sender<()>),
}

pub struct Committer {
    jobs: Option<SyncSender<Job>>,
    /// The first append that failed: every later one fails with it (the chain halts).
    failed: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    pub fn start(channel_id: &str, ledger: Arc<Ledger>) -> Self {
        let (jobs, queue) = mpsc::sync_channel(QUEUE_DEPTH);
        let failed = Arc::new(Mutex::new(None));
        let channel = channel_id.to_string();
        let failure = failed.clone();
        let thread = std::thread::Builder::new()
            .name(format!("commit-{channel_id}"))
            .spawn(move || commit(&channel, &ledger, &queue, &failure))
            .expect("spawning the committer thread");
        Committer {
            jobs: Some(jobs),
            failed,
            thread: Some(thread),
        }
    }

    /// Queues a complete block; fails once an earlier append failed.
    pub fn append(&self, block: Bytes) -> Result<()> {
        self.check()?;
        self.send(Job::Append(block))
    }

    /// Waits until every queued block is in the ledger.
    pub fn flush(&self) -> Result<()> {
        let (done, wait) = mpsc::channel();
        self.send(Job::Flush(done))?;
        wait.recv()
            .map_err(|_| anyhow!("the committer has stopped"))?;
        self.check()
    }

    fn check(&self) -> Result<()> {
        match &*self.failed.lock().unwrap() {
            Some(error) => Err(anyhow!("appending to the ledger failed: {error}")),
            None => Ok(()),
        }
    }

    fn send(&self, job: Job) -> Result<()> {
        let jobs = self.jobs.as_ref().expect("open until dropped");
        jobs.send(job)
            .map_err(|_| anyhow!("the committer has stopped"))
    }
}

impl Drop for Committer {
    /// Every block queued is appended before the committer goes away.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn commit(channel: &str, ledger: &Ledger, queue: &Receiver<Job>, failed: &Mutex<Option<String>>) {
    let mut batch = Vec::new();
    let mut flushes = Vec::new();
    while let Ok(job) = queue.recv() {
        let mut next = Some(job);
        // Whatever is queued already joins this append.
        while let Some(job) = next.take() {
            match job {
                Job::Append(block) => batch.push(block),
                Job::Flush(done) => flushes.push(done),
            }
            if batch.len() < QUEUE_DEPTH {
                next = queue.try_recv().ok();
            }
        }
        let healthy = failed.lock().unwrap().is_none();
        let started = std::time::Instant::now();
        if healthy && let Err(e) = ledger.append_batch(&batch) {
            tracing::error!(channel, "appending {} block(s) failed: {e:#}", batch.len());
            *failed.lock().unwrap() = Some(format!("{e:#}"));
        } else if healthy {
            crate::operations::metrics::ledger_committed(channel, batch.len(), started.elapsed());
        }
        batch.clear();
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}
