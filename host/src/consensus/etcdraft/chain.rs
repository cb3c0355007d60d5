//! The etcdraft chain's logic, as a state machine over raft-rs's `RawNode`, in the
//! shape of Fabric v2.5's `etcdraft.Chain`: every input (a tick, a Raft message from a
//! peer, a submission, the batch timer) is one call, and [`RaftChain::ready`] hands
//! back the messages to send. No thread, socket or clock of its own, so a simulated
//! cluster drives several of these in one test.
//!
//! The leader cuts blocks with the same cutter as solo (a [`SoloChain`] whose "ledger"
//! is Raft: what it would append, it proposes). Every node, the leader too, writes a
//! block when its entry commits. A new leader serves only once every entry of earlier
//! terms is applied; a config block pauses the leader until it is written; at most
//! MaxInflightBlocks blocks are proposed and not yet written.
//!
//! Every SnapshotIntervalSize bytes of blocks a node takes a snapshot whose data is the
//! last block written, and compacts its log. A follower that gets a snapshot from the
//! leader (it was too far behind) pulls the blocks up to the snapshot's from the other
//! orderers ([`RaftChain::catching_up`]), while entries committed meanwhile wait.

use super::block::{entry_block, entry_data, header_hash, raft_metadata};
use super::logger::logger;
use super::membership::{self, Consenters};
use super::storage::Log;
use super::tracker::Tracker;
use super::wal::{Restored, Wal};
use super::wire::{decode_conf_change, encode_conf_change};
use crate::component::{CoreBlock, CoreComponent, FaultSink};
use crate::consensus::ConsenterSupport;
use crate::consensus::solo::{Now, SoloChain};
use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use fabric_protos::common::Block;
use fabric_protos::common::BlockHeader;
use fabric_protos::orderer::etcdraft::BlockMetadata;
use ordering_core::Rejection;
use prost::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState, Message, Snapshot,
};
use raft::{RawNode, StateRole};
use sha2::{Digest, Sha256};

fn metrics() -> &'static crate::operations::metrics::EtcdRaftMetrics {
    &crate::operations::metrics::metrics().etcdraft
}

/// No leader (raft-rs's and etcd's `None`).
pub const NO_LEADER: u64 = 0;

/// The Raft settings of a channel (its etcdraft `Options`) and this node's place in it.
#[derive(Clone, Debug)]
pub struct Options {
    /// This node's Raft ID.
    pub id: u64,
    /// The consenters of the config in force, with their IDs.
    pub consenters: Consenters,
    /// Consenter IDs and the next ID, as the last block recorded them.
    pub metadata: BlockMetadata,
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    pub max_inflight_blocks: usize,
    /// Fabric sends at most BatchSize.PreferredMaxBytes of entries per message.
    pub max_size_per_msg: u64,
    /// Bytes of blocks between two snapshots (SnapshotIntervalSize; 0: Fabric's 16 MB).
    pub snapshot_interval_size: u64,
}

/// Fabric's DefaultSnapshotIntervalSize.
const DEFAULT_SNAPSHOT_INTERVAL: u64 = 16 * 1024 * 1024;
/// Entries kept before a snapshot's index (Fabric's DefaultSnapshotCatchUpEntries).
const SNAPSHOT_CATCH_UP_ENTRIES: u64 = 4;

/// What to do with a submission this node cannot order itself.
#[derive(Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Cut (and proposed, if a block was cut) by this node, the leader.
    Ordered,
    /// Send it to the leader with this ID (a `SubmitRequest`).
    Forward(u64),
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Fabric's answer while there is no leader (SERVICE_UNAVAILABLE on Broadcast).
    #[error("no Raft leader")]
    NoLeader,
    /// The leader cannot take it yet (just elected, a config block or too many blocks
    /// in flight); try again after the next [`RaftChain::ready`].
    #[error("the leader is not accepting requests yet")]
    Busy(Submission),
    #[error(transparent)]
    Halted(#[from] anyhow::Error),
}

/// A message the channel's processor accepted, with the config sequence it was
/// validated under (`SubmitRequest.last_validation_seq`).
#[derive(Clone, Debug)]
pub struct Submission {
    pub envelope: Bytes,
    pub config_seq: u64,
    /// A CONFIG envelope (ordered alone, pausing the leader until written).
    pub is_config: bool,
}

pub struct RaftChain<S> {
    id: u64,
    node: RawNode<Log>,
    /// None in simulations: the log is then memory only.
    wal: Option<Wal>,
    /// The leader's cutter; idle on followers. It owns the support.
    cutter: SoloChain<Proposer<S>>,
    metadata: BlockMetadata,
    leader: u64,
    role: StateRole,
    /// Leader: elected, but entries of earlier terms are not all applied yet.
    just_elected: bool,
    /// Leader: taking submissions.
    serving: bool,
    in_flight: usize,
    config_in_flight: bool,
    max_inflight: usize,
    applied: u64,
    /// Number and header hash of the last block written.
    tip: (u64, Vec<u8>),
    /// Ticks between campaigns, and ticks since the last, while this node is the one
    /// picked to start the first election and no leader is known.
    campaign: Option<(usize, usize)>,
    snapshot_interval: u64,
    /// Bytes of blocks written since the last snapshot.
    since_snapshot: u64,
    /// A snapshot to take once this Ready is stored: its index and block.
    snapshot_due: Option<(u64, Bytes)>,
    /// The number of the block a received snapshot holds, while blocks up to it
    /// are pulled from other orderers; entries committed meanwhile wait in `backlog`.
    catch_up: Option<u64>,
    backlog: Vec<Entry>,
    tracker: Tracker,
    /// The leader was found to know more of our log than we hold (said once).
    log_lost: bool,
    consenters: Consenters,
    /// The ConfChange a written config block asked for, until Raft applies it.
    conf_change: Option<ConfChange>,
    last_is_config: bool,
    /// Bumped whenever the nodes to talk to change (a ConfChange applied, a rotated
    /// certificate).
    membership_version: u64,
    /// A ConfChange removed this node: the chain stops.
    removed: bool,
}

/// The support seen by the leader's cutter: blocks go to Raft, not to the ledger.
struct Proposer<S> {
    support: S,
    proposals: Vec<(Bytes, bool)>,
    /// The header of the last block proposed: a reopened cutter continues from it.
    proposed_tip: Option<Vec<u8>>,
}

impl<S: ConsenterSupport> ConsenterSupport for Proposer<S> {
    fn channel_id(&self) -> &str {
        self.support.channel_id()
    }

    fn config_and_tip(&self) -> (Bytes, Vec<u8>) {
        let (config, tip) = self.support.config_and_tip();
        (config, self.proposed_tip.clone().unwrap_or(tip))
    }

    fn process_config_update(&self, update: &[u8], now: u64) -> Result<Bytes, Rejection> {
        self.support.process_config_update(update, now)
    }

    fn write_block(&mut self, block: &CoreBlock, _: Option<Bytes>) -> Result<()> {
        self.propose(block, false)
    }

    fn write_config_block(&mut self, block: &CoreBlock, _: u64, _: Option<Bytes>) -> Result<()> {
        self.propose(block, true)
    }

    fn faults(&self) -> &dyn FaultSink {
        self.support.faults()
    }
}

impl<S> Proposer<S> {
    fn propose(&mut self, block: &CoreBlock, is_config: bool) -> Result<()> {
        self.proposed_tip = Some(block_header(&block.encoded)?.encode_to_vec());
        self.proposals.push((entry_data(block), is_config));
        Ok(())
    }
}

/// The header of an encoded block, without copying its data.
fn block_header(encoded: &[u8]) -> Result<BlockHeader> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct HeaderOnly {
        #[prost(message, optional, tag = "1")]
        header: Option<BlockHeader>,
    }
    HeaderOnly::decode(encoded)?
        .header
        .context("block has no header")
}

/// The node that starts the first election of a new channel, as Fabric picks it:
/// `varint(sha256(channel)[24..]) % size + 1` (Go's DecodeVarint: 0 when the eight
/// bytes never end a varint).
pub fn campaigner(channel: &str, size: usize) -> u64 {
    let digest = Sha256::digest(channel.as_bytes());
    let (mut value, mut shift) = (0u64, 0);
    let mut ended = false;
    for byte in &digest[24..] {
        value |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            ended = true;
            break;
        }
    }
    let value = if ended { value } else { 0 };
    value % size as u64 + 1
}

/// A new channel's Raft log, as etcd's `StartNode` bootstraps it: one AddNode entry
/// per consenter at term 1, all committed.
fn bootstrap(ids: &[u64]) -> Restored {
    let entries = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut change = ConfChange::default();
            change.set_change_type(ConfChangeType::AddNode);
            change.node_id = *id;
            let mut entry = Entry::default();
            entry.set_entry_type(EntryType::EntryConfChange);
            entry.term = 1;
            entry.index = i as u64 + 1;
            entry.data = encode_conf_change(&change).into();
            entry
        })
        .collect();
    let hard_state = HardState {
        term: 1,
        commit: ids.len() as u64,
        ..Default::default()
    };
    Restored {
        snapshot: None,
        entries,
        hard_state,
    }
}

/// The in-memory log raft-rs reads, holding `log`.
fn storage(log: Restored, voters: &[u64]) -> Result<Log> {
    let mut storage = Log::new(ConfState::from((voters.to_vec(), vec![])));
    storage.set_hard_state(log.hard_state);
    if let Some(snapshot) = log.snapshot {
        storage.apply_snapshot(snapshot);
    }
    storage.append(&log.entries)?;
    Ok(storage)
}

/// How a node starts: a new channel (its log bootstrapped, written to the WAL if
/// any), a restart from the log its WAL held, with every entry up to `applied`
/// already written to the ledger, or a node joining a running channel with blocks
/// already in its ledger but no WAL (Fabric's join: an empty log, no voters known,
/// the leader sends the log or a snapshot).
pub enum Start {
    New(Option<Wal>),
    Restart {
        wal: Wal,
        log: Restored,
        applied: u64,
    },
    Join(Option<Wal>),
}

impl<S: ConsenterSupport> RaftChain<S> {
    /// A node of a channel whose ledger ends at `tip`. A new channel's picked node
    /// campaigns; a restarted node waits for the election timeout like any other.
    pub fn new(
        support: S,
        component: std::sync::Arc<CoreComponent>,
        options: Options,
        tip: &BlockHeader,
        start: Start,
    ) -> Result<Self> {
        let channel = support.channel_id().to_string();
        let ids = options.metadata.consenter_ids.clone();
        ensure!(
            ids.contains(&options.id),
            "this node ({}) is not among the consenters {ids:?}",
            options.id
        );
        let mut catch_up = None;
        let (mut wal, log, applied, fresh, voters) = match start {
            Start::New(wal) => (wal, bootstrap(&ids), 0, true, ids.clone()),
            Start::Restart { wal, log, applied } => {
                // Blocks are written only once committed; a commit index not yet
                // persisted is learnt again from the leader.
                let mut applied = applied.min(log.hard_state.commit);
                if let Some(snapshot) = &log.snapshot {
                    let (block, _) = entry_block(&snapshot.data).context("the Raft snapshot")?;
                    if block.number > tip.number {
                        // A crash while catching up: pull the rest again.
                        catch_up = Some(block.number);
                    }
                    applied = applied.max(snapshot.get_metadata().index);
                }
                (Some(wal), log, applied, false, ids.clone())
            }
            Start::Join(wal) => (wal, Restored::default(), 0, false, vec![]),
        };
        if fresh && let Some(wal) = &mut wal {
            wal.append(&log.entries, Some(&log.hard_state))?;
        }
        let config = raft::Config {
            id: options.id,
            applied,
            election_tick: options.election_tick,
            heartbeat_tick: options.heartbeat_tick,
            max_size_per_msg: options.max_size_per_msg,
            max_inflight_msgs: options.max_inflight_blocks,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        config.validate()?;
        let node = RawNode::new(&config, storage(log, &voters)?, &logger(&channel))?;
        let campaign = (fresh && campaigner(&channel, ids.len()) == options.id)
            .then_some((2 * options.heartbeat_tick, 0));
        let labels = [channel.as_str()];
        metrics()
            .cluster_size
            .with_label_values(&labels)
            .set(ids.len() as f64);
        metrics().is_leader.with_label_values(&labels).set(0.0);
        let proposer = Proposer {
            support,
            proposals: Vec::new(),
            proposed_tip: None,
        };
        Ok(RaftChain {
            id: options.id,
            node,
            wal,
            cutter: SoloChain::new(proposer, component)?,
            metadata: options.metadata,
            leader: NO_LEADER,
            role: StateRole::Follower,
            just_elected: false,
            serving: false,
            in_flight: 0,
            config_in_flight: false,
            max_inflight: options.max_inflight_blocks,
            applied,
            tip: (
                tip.number,
                ordering_core::blockheader::header_hash(tip, &ordering_core::NativeCrypto).to_vec(),
            ),
            campaign,
            snapshot_interval: match options.snapshot_interval_size {
                0 => DEFAULT_SNAPSHOT_INTERVAL,
                size => size,
            },
            since_snapshot: 0,
            snapshot_due: None,
            catch_up,
            backlog: Vec::new(),
            tracker: Tracker::default(),
            log_lost: false,
            consenters: options.consenters,
            conf_change: None,
            last_is_config: false,
            membership_version: 0,
            removed: false,
        })
    }

    pub fn support(&self) -> &S {
        &self.cutter.support().support
    }

    /// The leader this node knows of, or [`NO_LEADER`].
    pub fn leader(&self) -> u64 {
        self.leader
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// The number of the last block written.
    pub fn height(&self) -> u64 {
        self.tip.0 + 1
    }

    /// One tick of the Raft clock (every TickInterval).
    pub fn tick(&mut self) {
        self.track_active();
        self.repropose_conf_change();
        self.node.tick();
        if let Some((every, elapsed)) = &mut self.campaign {
            *elapsed += 1;
            if *elapsed >= *every {
                *elapsed = 0;
                tracing::debug!(channel = %self.cutter.support().channel_id(), "campaigning");
                let _ = self.node.campaign();
            }
        }
    }

    /// The active-node tracker's tick (`tracker`), with raft's RecentActive read
    /// before the tick resets it.
    fn track_active(&mut self) {
        let gauge = metrics()
            .active_nodes
            .with_label_values(&[self.cutter.support().channel_id()]);
        if self.leader == NO_LEADER {
            self.tracker.leaderless();
            gauge.set(0.0);
            return;
        }
        if self.role != StateRole::Leader {
            return;
        }
        let recent = self
            .node
            .raft
            .prs()
            .iter()
            .filter(|(_, progress)| progress.recent_active)
            .map(|(id, _)| *id);
        if let Some(count) = self.tracker.check(self.id, recent) {
            gauge.set(count as f64);
        }
    }

    /// The `ClusterMetadata` to send with the next message to `to` (empty mostly).
    pub fn cluster_metadata_for(&mut self, to: u64) -> Bytes {
        self.tracker.metadata_for(to)
    }

    /// `ClusterMetadata` that came with a message from `sender`: taken from the
    /// leader, ignored from anyone else.
    pub fn learn_active(&mut self, sender: u64, metadata: &[u8]) -> Result<(), String> {
        if metadata.is_empty() || sender != self.leader {
            return Ok(());
        }
        let count = self.tracker.learn(metadata)?;
        metrics()
            .active_nodes
            .with_label_values(&[self.cutter.support().channel_id()])
            .set(count as f64);
        Ok(())
    }

    /// raft-rs drops a ConfChange proposed while another is unapplied (it becomes
    /// an empty entry): the leader proposes a missing one again.
    fn repropose_conf_change(&mut self) {
        if self.leader != self.id || self.conf_change.is_none() || self.node.raft.has_pending_conf()
        {
            return;
        }
        let voters = self.node.raft.prs().conf().to_conf_state().voters;
        match membership::pending_change(&voters, &self.metadata.consenter_ids) {
            Some(change) => self.propose_conf_change(change),
            // Made meanwhile (a snapshot held it).
            None => {
                self.conf_change = None;
                self.config_in_flight = false;
            }
        }
    }

    fn propose_conf_change(&mut self, change: ConfChange) {
        let channel = self.cutter.support().channel_id().to_string();
        tracing::info!(%channel, "proposing Raft {:?} of node {}", change.get_change_type(), change.node_id);
        if let Err(e) = self.node.propose_conf_change(vec![], change.clone()) {
            tracing::warn!(%channel, "Failed to propose configuration update to Raft node: {e}");
        }
        self.conf_change = Some(change);
        self.config_in_flight = true;
    }

    /// The consenters with their IDs, and a number that changes with them.
    pub fn consenters(&self) -> (&Consenters, u64) {
        (&self.consenters, self.membership_version)
    }

    /// Whether a ConfChange removed this node.
    pub fn removed(&self) -> bool {
        self.removed
    }

    /// Fabric's ValidateConsensusMetadata for a CONFIG envelope about to be ordered:
    /// at most one consenter added, removed or rotated, and not at the cost of the
    /// quorum with the nodes alive now.
    pub fn check_config(&self, envelope: &[u8]) -> Result<(), String> {
        let Some(new) = etcdraft_consenters(envelope)? else {
            return Ok(());
        };
        let changes = membership::compute(&self.metadata, &self.consenters, &new)?;
        let active = self.tracker.active();
        if changes.unacceptable_quorum_loss(active) {
            return Err(format!(
                "{} out of {} nodes are alive, configuration will result in quorum loss",
                active.len(),
                self.consenters.len()
            ));
        }
        Ok(())
    }

    /// A Raft message from a peer.
    pub fn step(&mut self, mut message: Message) -> Result<()> {
        ensure!(
            message.to == self.id,
            "received a message for node {}, this node is {}",
            message.to,
            self.id
        );
        let last = self.node.raft.raft_log.last_index();
        if message.get_msg_type() == raft::eraftpb::MessageType::MsgHeartbeat
            && message.commit > last
        {
            // The leader remembers more of our log than we have: our WAL was lost
            // and we joined again. etcd (and Fabric) stop here; we commit only what
            // we hold, and the leader's next append, refused, sends us back to the
            // start of its log or a snapshot.
            if !std::mem::replace(&mut self.log_lost, true) {
                tracing::warn!(
                    channel = %self.cutter.support().channel_id(),
                    "the leader's commit index {} is beyond this node's log (last index {last}): was its WAL lost?",
                    message.commit
                );
            }
            message.commit = last;
        }
        if let Err(e) = self.node.step(message) {
            tracing::debug!(channel = %self.cutter.support().channel_id(), "raft step: {e}");
        }
        Ok(())
    }

    /// Whether a snapshot for node `to` left (Fabric's ReportSnapshot after sending):
    /// the leader stops waiting for it, and probes the node again.
    pub fn report_snapshot(&mut self, to: u64, sent: bool) {
        let status = if sent {
            raft::SnapshotStatus::Finish
        } else {
            raft::SnapshotStatus::Failure
        };
        self.node.report_snapshot(to, status);
    }

    /// A message to order: cut here on the leader, forwarded from a follower.
    pub fn submit(&mut self, submission: Submission, now: Now) -> Result<Submitted, SubmitError> {
        let candidate = matches!(self.role, StateRole::Candidate | StateRole::PreCandidate);
        if candidate || self.leader == NO_LEADER {
            metrics()
                .proposal_failures
                .with_label_values(&[self.cutter.support().channel_id()])
                .inc();
            return Err(SubmitError::NoLeader);
        }
        if self.leader != self.id {
            return Ok(Submitted::Forward(self.leader));
        }
        if !self.accepting() {
            return Err(SubmitError::Busy(submission));
        }
        if submission.is_config {
            let update = crate::protoutil::config_update_of(&submission.envelope);
            self.cutter
                .configure(submission.envelope, &update, submission.config_seq, now)?;
        } else {
            self.cutter
                .order(&submission.envelope, submission.config_seq, now)?;
        }
        self.propose();
        Ok(Submitted::Ordered)
    }

    /// Whether the leader takes submissions now.
    pub fn accepting(&self) -> bool {
        self.serving && !self.config_in_flight && self.in_flight < self.max_inflight
    }

    /// When the leader's batch timer expires, if it runs.
    pub fn batch_deadline(&self) -> Option<std::time::Duration> {
        self.serving.then(|| self.cutter.deadline()).flatten()
    }

    /// The batch timer's turn (leader): cuts what pends once its deadline passed.
    pub fn batch_timeout(&mut self, now: Now) -> Result<()> {
        if self.serving {
            self.cutter.tick(now)?;
            self.propose();
        }
        Ok(())
    }

    /// Hot swap of the cutter (see [`SoloChain::swap`]); on a follower it takes
    /// effect when this node next leads.
    pub fn swap(
        &mut self,
        component: std::sync::Arc<CoreComponent>,
        now: Now,
    ) -> Result<Result<(), String>> {
        let swapped = self.cutter.swap(component, now)?;
        if self.serving {
            self.propose();
        } else {
            self.cutter.support_mut().proposals.clear();
        }
        Ok(swapped)
    }

    /// Proposes what the cutter cut. A dropped proposal (leadership lost meanwhile) is
    /// lost, as in Fabric: its clients were answered SUCCESS for "handed to consensus".
    fn propose(&mut self) {
        let proposals = std::mem::take(&mut self.cutter.support_mut().proposals);
        for (data, is_config) in proposals {
            if let Err(e) = self.node.propose(vec![], data.to_vec()) {
                let channel = self.cutter.support().channel_id();
                tracing::error!(%channel, "proposing a block: {e}");
                metrics()
                    .proposal_failures
                    .with_label_values(&[channel])
                    .inc();
                continue;
            }
            self.in_flight += 1;
            self.config_in_flight |= is_config;
        }
    }

    /// Handles what Raft has ready: persists entries, writes committed blocks, follows
    /// leader changes. Returns the messages to send to peers.
    pub fn ready(&mut self) -> Result<Vec<Message>> {
        let mut out = Vec::new();
        while self.node.has_ready() {
            let mut ready = self.node.ready();
            out.extend(ready.take_messages());
            if let Some(soft) = ready.ss() {
                let (leader, role) = (soft.leader_id, soft.raft_state);
                self.follow(leader, role)?;
            }
            if ready.snapshot().get_metadata().index != 0 {
                self.receive_snapshot(ready.snapshot().clone())?;
            }
            // Durable before any of this Ready's blocks is written or message sent.
            if let Some(wal) = &mut self.wal {
                let started = std::time::Instant::now();
                wal.append(ready.entries(), ready.hs())?;
                metrics()
                    .data_persist_duration
                    .with_label_values(&[self.cutter.support().channel_id()])
                    .observe(started.elapsed().as_secs_f64());
            }
            self.apply(ready.take_committed_entries())?;
            self.node.mut_store().append(ready.entries())?;
            if let Some(hard) = ready.hs() {
                self.node.mut_store().set_hard_state(hard.clone());
            }
            out.extend(ready.take_persisted_messages());
            let mut light = self.node.advance(ready);
            if let Some(commit) = light.commit_index() {
                self.node.mut_store().set_commit(commit);
            }
            out.extend(light.take_messages());
            self.apply(light.take_committed_entries())?;
            self.node.advance_apply();
            self.take_snapshot()?;
        }
        self.maybe_serve()?;
        Ok(out)
    }

    /// A leader change: Fabric's becomeLeader / becomeFollower.
    fn follow(&mut self, leader: u64, role: StateRole) -> Result<()> {
        if leader != self.leader {
            tracing::info!(
                channel = %self.cutter.support().channel_id(),
                "Raft leader changed: {} -> {leader}",
                self.leader
            );
            if self.leader == self.id {
                // What the old leader had pending or in flight is not ours any more.
                self.serving = false;
                self.in_flight = 0;
                self.config_in_flight = false;
                self.cutter.reopen()?;
            }
            let labels = [self.cutter.support().channel_id()];
            metrics().leader_changes.with_label_values(&labels).inc();
            let leading = if leader == self.id { 1.0 } else { 0.0 };
            metrics().is_leader.with_label_values(&labels).set(leading);
            self.just_elected = leader == self.id;
            if leader != NO_LEADER {
                self.campaign = None;
            }
        }
        self.leader = leader;
        self.role = role;
        Ok(())
    }

    /// A new leader starts serving once everything earlier is written.
    fn maybe_serve(&mut self) -> Result<()> {
        if !self.just_elected || self.leader != self.id {
            return Ok(());
        }
        let behind = self.node.raft.raft_log.last_index() > self.applied;
        if behind || self.config_in_flight || self.catch_up.is_some() {
            return Ok(());
        }
        if self.last_is_config {
            // Elected before the ConfChange of the last config block committed.
            let voters = self.node.raft.prs().conf().to_conf_state().voters;
            if let Some(change) = membership::pending_change(&voters, &self.metadata.consenter_ids)
            {
                self.propose_conf_change(change);
                return Ok(());
            }
        }
        self.cutter.support_mut().proposed_tip = None;
        self.cutter.reopen()?;
        self.just_elected = false;
        self.serving = true;
        tracing::info!(
            channel = %self.cutter.support().channel_id(),
            "Start accepting requests as Raft leader at block [{}]",
            self.tip.0
        );
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<()> {
        for entry in entries {
            if entry.index <= self.applied {
                continue;
            }
            if self.catch_up.is_some() {
                self.backlog.push(entry);
                continue;
            }
            match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => {}
                EntryType::EntryNormal => {
                    self.write(&entry)?;
                    self.since_snapshot += entry.data.len() as u64;
                    if self.since_snapshot >= self.snapshot_interval {
                        self.snapshot_due = Some((entry.index, entry.data.clone()));
                    }
                }
                EntryType::EntryConfChange => {
                    let change = decode_conf_change(&entry.data[..])?;
                    let state = self.node.apply_conf_change(&change)?;
                    self.conf_change_applied(&change, &state.voters);
                    self.node.mut_store().set_conf_state(state);
                }
                EntryType::EntryConfChangeV2 => bail!(
                    "Raft entry {}: joint configuration changes are not used by Fabric",
                    entry.index
                ),
            }
            self.applied = entry.index;
        }
        if let Some((index, _)) = &mut self.snapshot_due {
            // At the last entry applied, as Fabric: with the last block as its data.
            *index = self.applied;
        }
        Ok(())
    }

    fn conf_change_applied(&mut self, change: &ConfChange, voters: &[u64]) {
        let channel = self.cutter.support().channel_id().to_string();
        self.membership_version += 1;
        let ours = self.conf_change.as_ref().is_some_and(|c| {
            c.node_id == change.node_id && c.get_change_type() == change.get_change_type()
        });
        if !ours {
            return;
        }
        tracing::info!(%channel, "Applied config change to {} node {}, current nodes in channel: {voters:?}",
            if change.get_change_type() == ConfChangeType::AddNode { "add" } else { "remove" },
            change.node_id);
        self.conf_change = None;
        self.config_in_flight = false;
        metrics()
            .cluster_size
            .with_label_values(&[&channel])
            .set(self.consenters.len() as f64);
        if change.get_change_type() == ConfChangeType::RemoveNode && change.node_id == self.id {
            tracing::info!(%channel, "This node is being removed from replica set");
            self.removed = true;
        }
    }

    /// The consenters of config block `block` put in force; the ConfChange it asks for.
    fn membership_of(&mut self, block: &CoreBlock) -> Result<Option<ConfChange>> {
        let envelope = Block::decode(&block.encoded[..])?
            .data
            .and_then(|d| d.data.into_iter().next())
            .context("a config block without an envelope")?;
        let Some(new) = etcdraft_consenters(&envelope).map_err(anyhow::Error::msg)? else {
            return Ok(None);
        };
        let changes = membership::compute(&self.metadata, &self.consenters, &new)
            .map_err(|e| anyhow::anyhow!("illegal configuration change detected: {e}"))?;
        let channel = self.cutter.support().channel_id().to_string();
        if changes.changed() || changes.rotated.is_some() {
            tracing::info!(%channel, "Config block [{}] changes consenter set: add {} node(s), remove {} node(s), rotated {:?}", block.number, changes.added, changes.removed, changes.rotated);
        }
        if changes.rotated.is_some() {
            self.membership_version += 1;
        }
        self.metadata.consenter_ids = changes.metadata.consenter_ids;
        self.metadata.next_consenter_id = changes.metadata.next_consenter_id;
        self.consenters = changes.consenters;
        Ok(changes.conf_change)
    }

    /// Takes the snapshot due, once everything up to it is stored, and compacts the
    /// log (memory and WAL).
    fn take_snapshot(&mut self) -> Result<()> {
        let Some((index, data)) = self.snapshot_due.take() else {
            return Ok(());
        };
        let (block, _) = entry_block(&data)?;
        let channel = self.cutter.support().channel_id().to_string();
        tracing::info!(
            %channel,
            "Accumulated {} bytes since last snapshot, exceeding size limit ({} bytes), taking snapshot at block [{}] (index: {index})",
            self.since_snapshot,
            self.snapshot_interval,
            block.number
        );
        self.since_snapshot = 0;
        let store = self.node.mut_store();
        store.take_snapshot(index, data, index.saturating_sub(SNAPSHOT_CATCH_UP_ENTRIES));
        if let Some(wal) = &mut self.wal {
            let store = self.node.store();
            wal.save_snapshot(store.snapshot_of())?;
            let hard_state = raft::Storage::initial_state(store)?.hard_state;
            let kept = store.entries_after(raft::Storage::first_index(store)? - 1);
            wal.compact(kept, &hard_state)?;
        }
        metrics()
            .snapshot_block_number
            .with_label_values(&[&channel])
            .set(block.number as f64);
        Ok(())
    }

    /// A snapshot the leader sent: the log restarts after it; blocks up to the one it
    /// holds are pulled from other orderers unless the ledger has them.
    fn receive_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        let index = snapshot.get_metadata().index;
        let (block, _) = entry_block(&snapshot.data).context("the leader's Raft snapshot")?;
        let channel = self.cutter.support().channel_id().to_string();
        if let Some(wal) = &mut self.wal {
            wal.save_snapshot(&snapshot)?;
        }
        let data = snapshot.data.clone();
        self.node.mut_store().apply_snapshot(snapshot);
        if let Some(wal) = &mut self.wal {
            let hard_state = raft::Storage::initial_state(self.node.store())?.hard_state;
            wal.compact(&[], &hard_state)?;
        }
        if index <= self.applied {
            return Ok(());
        }
        self.applied = index;
        let tip = self.tip.0;
        if block.number <= tip {
            tracing::warn!(%channel, "Snapshot is at block [{}], local block number is {tip}, no sync needed", block.number);
        } else if block.number == tip + 1 {
            tracing::info!(%channel, "The only missing block [{}] is encapsulated in snapshot, committing it to shortcut catchup process", block.number);
            let entry = Entry {
                index,
                data,
                ..Default::default()
            };
            self.write(&entry)?;
        } else {
            tracing::info!(%channel, "Catching up with snapshot taken at block [{}], starting from block [{}]", block.number, tip + 1);
            self.catch_up = Some(self.catch_up.unwrap_or(0).max(block.number));
        }
        metrics()
            .snapshot_block_number
            .with_label_values(&[&channel])
            .set(block.number as f64);
        Ok(())
    }

    /// The blocks to pull from other orderers (first and last), while catching up.
    pub fn catching_up(&self) -> Option<(u64, u64)> {
        self.catch_up.map(|last| (self.tip.0 + 1, last))
    }

    /// A block pulled while catching up, verified by the puller; `raft` is the Raft
    /// metadata the orderer it came from recorded (the same on every node).
    pub fn write_pulled(&mut self, block: &Block, raft: Option<BlockMetadata>) -> Result<()> {
        let (core, sequence) = entry_block(&block.encode_to_vec())?;
        let metadata = raft.unwrap_or_else(|| BlockMetadata {
            raft_index: 0,
            ..self.metadata.clone()
        });
        self.write_block(core, sequence, Some(metadata.encode_to_vec().into()), 0)?;
        if self.catch_up.is_some_and(|last| self.tip.0 >= last) {
            tracing::info!(channel = %self.cutter.support().channel_id(), "Finished syncing with cluster up to and including block [{}]", self.tip.0);
            self.catch_up = None;
            let backlog = std::mem::take(&mut self.backlog);
            self.apply(backlog)?;
        }
        Ok(())
    }

    /// Writes the block of a committed entry, signed by this node.
    fn write(&mut self, entry: &Entry) -> Result<()> {
        let (block, sequence) =
            entry_block(&entry.data).with_context(|| format!("Raft entry {}", entry.index))?;
        self.write_block(block, sequence, None, entry.index)
            .with_context(|| format!("Raft entry {}", entry.index))
    }

    /// Writes `block`, with `metadata` (a pulled block's) or else the Raft metadata
    /// of entry `index`; a config block changes the consenters first, so it records
    /// the new ones, and asks Raft for its ConfChange (the leader proposes it).
    fn write_block(
        &mut self,
        block: CoreBlock,
        sequence: Option<u64>,
        metadata: Option<Bytes>,
        index: u64,
    ) -> Result<()> {
        let expected = self.tip.0 + 1;
        if block.number < expected {
            tracing::info!(
                channel = %self.cutter.support().channel_id(),
                "got block [{}], expected [{expected}]: already written",
                block.number
            );
            return Ok(());
        }
        ensure!(
            block.number == expected,
            "got block [{}], expected block [{expected}]",
            block.number,
        );
        let previous = block_header(&block.encoded)?.previous_hash;
        ensure!(
            previous[..] == self.tip.1[..],
            "block [{}] does not chain onto block [{}]",
            block.number,
            self.tip.0
        );
        let mut conf_change = None;
        if sequence.is_some() {
            conf_change = self.membership_of(&block)?;
        }
        let metadata = Some(metadata.unwrap_or_else(|| raft_metadata(&self.metadata, index)));
        let support = &mut self.cutter.support_mut().support;
        match sequence {
            Some(sequence) => support.write_config_block(&block, sequence, metadata)?,
            None => support.write_block(&block, metadata)?,
        }
        self.tip = (block.number, header_hash(&block));
        metrics()
            .committed_block_number
            .with_label_values(&[self.cutter.support().channel_id()])
            .set(block.number as f64);
        self.last_is_config = block.is_config;
        if self.leader == self.id {
            self.in_flight = self.in_flight.saturating_sub(1);
            if block.is_config {
                self.config_in_flight = false;
            }
        }
        if let Some(change) = conf_change {
            if self.leader == self.id {
                self.propose_conf_change(change);
            } else if change.get_change_type() == ConfChangeType::RemoveNode
                && change.node_id == self.id
            {
                // Once the others apply the ConfChange they stop speaking to this
                // node, which would never learn that it committed: a follower stops
                // here (the leader stops when its ConfChange applies), as Fabric's
                // eviction suspector does.
                let channel = self.cutter.support().channel_id();
                tracing::info!(%channel, "Detected our own eviction from the channel in block [{}]", block.number);
                self.removed = true;
            } else {
                self.conf_change = Some(change);
            }
        }
        Ok(())
    }
}

/// The etcdraft consenters of a CONFIG envelope's config; None for another consensus.
fn etcdraft_consenters(
    envelope: &[u8],
) -> Result<Option<Vec<fabric_protos::orderer::etcdraft::Consenter>>, String> {
    let config = ordering_core::config::ChannelConfig::from_config_envelope(
        envelope,
        &ordering_core::NativeCrypto,
    )
    .map_err(|e| e.to_string())?;
    if config.consensus.kind != "etcdraft" {
        return Ok(None);
    }
    let metadata =
        fabric_protos::orderer::etcdraft::ConfigMetadata::decode(config.consensus.metadata)
            .map_err(|e| format!("failed to unmarshal new etcdraft metadata configuration: {e}"))?;
    Ok(Some(metadata.consenters))
}
