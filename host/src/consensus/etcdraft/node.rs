//! The etcdraft chain on the network: [`RaftChain`] behind a lock, driven by a tick
//! task (TickInterval) and the batch timer, by Broadcast (`order`, `configure`) and by
//! the cluster service (`on_consensus`, `on_submit`). After every input the chain's
//! ready messages go to the other consenters through [`Remotes`]. Followers forward
//! submissions to the leader; a leader that cannot take one yet (just elected, a
//! config block in flight, MaxInflightBlocks) makes the caller wait, as Fabric's
//! blocked `submitC` does. A node that fell behind a snapshot pulls the missing
//! blocks from the other consenters in a task of its own, while Raft goes on.

use super::chain::{NO_LEADER, RaftChain, Submission, SubmitError, Submitted};
use super::membership;
use super::wire::{decode_message, encode_message};
use crate::cluster::comm::Remotes;
use crate::cluster::puller::{BlockPuller, Verifier};
use crate::cluster::{Handler, RemoteNode};
use crate::component::CoreComponent;
use crate::consensus::solo::Now;
use crate::consensus::{Chain, ChainError, ConsenterSupport};
use crate::protoutil::now_unix_nanos;
use bytes::Bytes;
use fabric_protos::common::Envelope;
use fabric_protos::orderer::step_request::Payload;
use fabric_protos::orderer::{ConsensusRequest, StepRequest, SubmitRequest};
use futures::FutureExt;
use futures::future::BoxFuture;
use prost::Message as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, MissedTickBehavior, sleep_until};

pub struct EtcdRaft<S> {
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    channel: String,
    /// None once halted.
    chain: Mutex<Option<RaftChain<S>>>,
    remotes: Remotes,
    /// Every consenter (this node too), to authenticate cluster senders, and the
    /// chain's membership version they are of.
    members: Mutex<(Vec<RemoteNode>, u64)>,
    tick: Duration,
    origin: Instant,
    /// Woken after every input: leadership, acceptance or the batch deadline may
    /// have changed.
    changed: Notify,
    halted: watch::Sender<bool>,
    started: AtomicBool,
    puller: BlockPuller,
    /// A catch-up task is running.
    pulling: AtomicBool,
    me: Weak<Shared<S>>,
}

impl<S: ConsenterSupport> EtcdRaft<S> {
    pub fn new(
        chain: RaftChain<S>,
        remotes: Remotes,
        members: Vec<RemoteNode>,
        tick: Duration,
        puller: BlockPuller,
    ) -> Self {
        EtcdRaft {
            shared: Arc::new_cyclic(|me| Shared {
                channel: chain.support().channel_id().to_string(),
                chain: Mutex::new(Some(chain)),
                remotes,
                members: Mutex::new((members, 0)),
                tick,
                origin: Instant::now(),
                changed: Notify::new(),
                halted: watch::channel(false).0,
                started: AtomicBool::new(false),
                puller,
                pulling: AtomicBool::new(false),
                me: me.clone(),
            }),
        }
    }

    /// The cluster service's view of this chain.
    pub fn handler(&self) -> Arc<dyn Handler> {
        self.shared.clone()
    }

    /// The leader this node knows of (0: none), for status reports.
    pub fn leader(&self) -> u64 {
        self.shared
            .chain
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(NO_LEADER, |c| c.leader())
    }
}

impl<S: ConsenterSupport> Shared<S> {
    fn now(&self) -> Now {
        Now {
            mono: self.origin.elapsed(),
            unix_nanos: now_unix_nanos(),
        }
    }

    /// One input, then what Raft has ready; an error halts the chain, and so does a
    /// panic of raft-rs (its assertions on a log it finds inconsistent), rather than
    /// poisoning the lock for every later input.
    fn step<T>(
        &self,
        input: impl FnOnce(&mut RaftChain<S>, Now) -> anyhow::Result<T>,
    ) -> Result<T, ChainError> {
        let mut guard = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        let chain = guard.as_mut().ok_or(ChainError::Stopped)?;
        let now = self.now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            input(chain, now).and_then(|answer| {
                let messages = chain.ready()?;
                Ok((answer, messages))
            })
        }))
        .unwrap_or_else(|panic| {
            let text = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Err(anyhow::anyhow!("raft: {text}"))
        });
        if outcome.is_ok() {
            self.follow_membership(chain);
        }
        if outcome.is_ok()
            && chain.catching_up().is_some()
            && !self.pulling.swap(true, Ordering::SeqCst)
            && let Some(me) = self.me.upgrade()
        {
            tokio::spawn(me.catch_up());
        }
        match outcome {
            Ok((answer, messages)) => {
                for message in messages {
                    let request = StepRequest {
                        payload: Some(Payload::ConsensusRequest(ConsensusRequest {
                            channel: self.channel.clone(),
                            payload: encode_message(&message).into(),
                            metadata: chain.cluster_metadata_for(message.to),
                        })),
                    };
                    let to = message.to;
                    let sent = self.remotes.send(to, request);
                    if message.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot {
                        chain.report_snapshot(to, sent);
                    }
                }
                if chain.removed() {
                    // Removed from the consenters: this node orders no more.
                    *guard = None;
                    drop(guard);
                    self.halt();
                    return Ok(answer);
                }
                drop(guard);
                self.changed.notify_waiters();
                Ok(answer)
            }
            Err(e) => {
                tracing::error!(channel = %self.channel, "Raft chain halted: {e:#}");
                *guard = None;
                drop(guard);
                self.halt();
                Err(ChainError::Stopped)
            }
        }
    }

    fn halt(&self) {
        self.halted.send_replace(true);
        self.changed.notify_waiters();
    }

    /// Streams to the consenters the chain has now (Fabric's configureComm).
    fn follow_membership(&self, chain: &RaftChain<S>) {
        let (consenters, version) = chain.consenters();
        let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        if members.1 == version {
            return;
        }
        match membership::remote_nodes(consenters) {
            Ok(nodes) => {
                let others: Vec<RemoteNode> = nodes
                    .iter()
                    .filter(|n| n.id != chain.id())
                    .cloned()
                    .collect();
                self.remotes.configure(others.clone());
                self.puller.set_sources(others);
                *members = (nodes, version);
            }
            Err(e) => tracing::error!(channel = %self.channel, "the new consenters: {e:#}"),
        }
    }

    /// Orders `submission` here, or forwards it to the leader; waits while the
    /// leader cannot take it yet.
    async fn submit(&self, submission: Submission) -> Result<(), ChainError> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let attempt = submission.clone();
            match self.step(|chain, now| Ok(chain.submit(attempt, now)))? {
                Ok(Submitted::Ordered) => return Ok(()),
                Ok(Submitted::Forward(leader)) => {
                    let request = StepRequest {
                        payload: Some(Payload::SubmitRequest(SubmitRequest {
                            channel: self.channel.clone(),
                            last_validation_seq: submission.config_seq,
                            payload: Some(
                                Envelope::decode(submission.envelope.clone())
                                    .map_err(|_| ChainError::Stopped)?,
                            ),
                        })),
                    };
                    if !self.remotes.submit(leader, request) {
                        return Err(ChainError::Forward(leader));
                    }
                    return Ok(());
                }
                Err(SubmitError::NoLeader) => return Err(ChainError::NoLeader),
                Err(SubmitError::Busy(_)) => {
                    if *self.halted.borrow() {
                        return Err(ChainError::Stopped);
                    }
                    // Woken by the next input; a tick comes at least every TickInterval.
                    let _ = tokio::time::timeout(self.tick, changed).await;
                }
                Err(SubmitError::Halted(e)) => {
                    tracing::error!(channel = %self.channel, "Raft chain halted: {e:#}");
                    self.halt();
                    return Err(ChainError::Stopped);
                }
            }
        }
    }

    /// Pulls blocks from the other consenters until the chain has caught up with the
    /// snapshot it received (a failed write halts the chain).
    async fn catch_up(self: Arc<Self>) {
        loop {
            let wanted = self
                .chain
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .and_then(|chain| {
                    let range = chain.catching_up()?;
                    Some((range, chain.support().config_and_tip()))
                });
            let Some(((from, to), (config, tip))) = wanted else {
                break;
            };
            let pulled = match Verifier::new(&config, &tip) {
                Ok(mut verifier) => {
                    let write = |block: &fabric_protos::common::Block| {
                        let raft = super::raft_metadata_of(block);
                        self.step(|chain, _| chain.write_pulled(block, raft))
                            .map_err(anyhow::Error::from)
                    };
                    self.puller.pull(&mut verifier, from, to, write).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = pulled {
                tracing::error!(channel = %self.channel, "catching up: {e:#}");
                self.halt();
                break;
            }
        }
        self.pulling.store(false, Ordering::SeqCst);
    }

    /// Ticks every TickInterval, and fires the leader's batch timer on time.
    async fn run(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.tick);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let changed = self.changed.notified();
            let deadline = match self
                .chain
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
            {
                None => return,
                Some(chain) => chain.batch_deadline(),
            };
            let batch = async {
                match deadline {
                    Some(deadline) => sleep_until(self.origin + deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = ticks.tick() => {
                    let _ = self.step(|chain, _| {
                        chain.tick();
                        Ok(())
                    });
                }
                _ = batch => {
                    let _ = self.step(|chain, now| chain.batch_timeout(now));
                }
                _ = changed => {}
            }
        }
    }
}

impl<S: ConsenterSupport> Handler for Shared<S> {
    fn members(&self) -> Vec<RemoteNode> {
        self.members
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    fn on_consensus(&self, sender: u64, request: ConsensusRequest) -> Result<(), String> {
        let message = decode_message(request.payload)
            .map_err(|e| format!("failed to unmarshal StepRequest payload to Raft Message: {e}"))?;
        if message.from != sender {
            return Err(format!(
                "a Raft message from node {} sent by node {sender}",
                message.from
            ));
        }
        // The leader's list of active nodes rides along; an unreadable one fails
        // this request, not the chain.
        self.step(|chain, _| {
            chain.step(message)?;
            Ok(chain.learn_active(sender, &request.metadata))
        })
        .map_err(|e| e.to_string())?
    }

    fn on_submit(&self, _: u64, request: SubmitRequest) -> BoxFuture<'_, Result<(), String>> {
        async move {
            let envelope = request.payload.ok_or("SubmitRequest without an envelope")?;
            let envelope: Bytes = envelope.encode_to_vec().into();
            let is_config = is_config(&envelope);
            let submission = Submission {
                envelope,
                config_seq: request.last_validation_seq,
                is_config,
            };
            self.submit(submission).await.map_err(|e| e.to_string())
        }
        .boxed()
    }
}

/// Fabric counts what Broadcast hands to the chain, on every node.
fn proposals_received(channel: &str, config: bool) {
    let metrics = &crate::operations::metrics::metrics().etcdraft;
    let counter = if config {
        &metrics.config_proposals_received
    } else {
        &metrics.normal_proposals_received
    };
    counter.with_label_values(&[channel]).inc();
}

/// Whether an envelope is a CONFIG envelope (ordered alone).
fn is_config(envelope: &[u8]) -> bool {
    Envelope::decode(envelope)
        .ok()
        .and_then(|e| crate::protoutil::channel_header(&e).ok())
        .is_some_and(|h| h.r#type == fabric_protos::common::HeaderType::Config as i32)
}

impl<S: ConsenterSupport> Chain for EtcdRaft<S> {
    fn raft_status(&self) -> Option<crate::consensus::RaftStatus> {
        let chain = self.shared.chain.lock().unwrap_or_else(|p| p.into_inner());
        chain.as_ref().map(|chain| crate::consensus::RaftStatus {
            id: chain.id(),
            leader: chain.leader(),
        })
    }

    fn order(&self, envelope: Bytes, config_seq: u64) -> BoxFuture<'_, Result<(), ChainError>> {
        proposals_received(&self.shared.channel, false);
        self.shared
            .submit(Submission {
                envelope,
                config_seq,
                is_config: false,
            })
            .boxed()
    }

    fn configure(
        &self,
        config: Bytes,
        _update: Bytes,
        config_seq: u64,
    ) -> BoxFuture<'_, Result<(), ChainError>> {
        proposals_received(&self.shared.channel, true);
        let checked = self
            .shared
            .chain
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|chain| chain.check_config(&config));
        if let Some(Err(e)) = checked {
            return futures::future::ready(Err(ChainError::Invalid(e))).boxed();
        }
        self.shared
            .submit(Submission {
                envelope: config,
                config_seq,
                is_config: true,
            })
            .boxed()
    }

    fn wait_ready(&self) -> BoxFuture<'_, Result<(), ChainError>> {
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
        if !self.shared.started.swap(true, Ordering::SeqCst) {
            tokio::spawn(self.shared.clone().run());
        }
    }

    fn halt(&self) {
        drop(
            self.shared
                .chain
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
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
