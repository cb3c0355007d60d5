//! Raft messages as Fabric's etcdraft puts them on the wire.
//!
//! A `ConsensusRequest.payload` is an etcd `raftpb.Message` marshalled by etcd's gogoproto
//! code (go.etcd.io/etcd/raft/v3 v3.5, vendored in Fabric v2.5). raft-rs's `eraftpb`
//! shares etcd's field numbers and message-type values, but its own encoding is not
//! etcd's, so we never send raft-rs's bytes; we go through `fabric_protos::raftpb`
//! (etcd's schema, proto2) instead. What differs, and what we do about it:
//! - etcd writes every scalar field even when it is zero, and always writes `snapshot`
//!   (with its metadata and ConfState) in every message; raft-rs (proto3) leaves zeros
//!   out. We write what etcd writes, so our bytes are etcd's bytes.
//! - etcd writes ConfState's id lists unpacked; raft-rs packs them. We write them
//!   unpacked. (etcd reads both; so do we.)
//! - raft-rs's Message has fields etcd has not: `commit_term` (15), `request_snapshot`
//!   (13), `deprecated_priority` (14), `priority` (16); its Entry has `sync_log` (5) and
//!   `context` (6). They are never sent. From etcd they arrive as zero, which raft-rs
//!   reads as etcd behaves: `commit_term` 0 is "no commit fast-forward on a vote",
//!   `request_snapshot` 0 is "none", priority 0 is plain elections. So the chain keeps
//!   priority 0 and never requests a snapshot, and loses nothing it relies on.
//!   Unknown fields from the peer are skipped, as etcd skips them.
//! - ConfChangeType: etcd's UpdateNode is 2 and AddLearnerNode 3; raft-rs has no
//!   UpdateNode and numbers AddLearnerNode 2. Entry data is carried as is, so a
//!   conf-change entry must hold etcd's encoding: write it with [`encode_conf_change`]
//!   (raft-rs's `propose_conf_change` would write raft-rs's bytes), read it with
//!   [`decode_conf_change`] (which also reads raft-rs's proto3 form).
//! - Empty bytes: etcd omits a nil `data`/`context` and writes an empty non-nil one;
//!   raft-rs cannot tell the two apart, so we omit empty bytes (what etcd's own
//!   sender does: its empty entries and contexts are nil).

use fabric_protos::raftpb as etcd;
use prost::Message as _;
use prost::bytes::{Buf, Bytes};
use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryType, Message, MessageType, Snapshot,
    SnapshotMetadata,
};

/// Why bytes from a peer are not a Raft message we can step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("not an etcd raft message: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("unknown raft message type {0}")]
    MessageType(i32),
    #[error("unknown raft entry type {0}")]
    EntryType(i32),
    /// etcd's UpdateNode (2) has no raft-rs counterpart; Fabric never proposes it.
    #[error("raft configuration change type {0} is not supported")]
    ConfChangeType(i32),
}

/// The bytes etcd would marshal for `m`.
pub fn encode_message(m: &Message) -> Vec<u8> {
    let snapshot = m.get_snapshot();
    etcd::Message {
        r#type: Some(m.get_msg_type() as i32),
        to: Some(m.to),
        from: Some(m.from),
        term: Some(m.term),
        log_term: Some(m.log_term),
        index: Some(m.index),
        entries: m.get_entries().iter().map(entry_to_etcd).collect(),
        commit: Some(m.commit),
        snapshot: Some(etcd::Snapshot {
            data: present(&snapshot.data),
            metadata: Some(metadata_to_etcd(snapshot.get_metadata())),
        }),
        reject: Some(m.reject),
        reject_hint: Some(m.reject_hint),
        context: present(&m.context),
    }
    .encode_to_vec()
}

/// A raft-rs message from etcd's bytes. The snapshot is set only when the peer sent a
/// non-empty one (etcd sends an empty one in every message).
pub fn decode_message(bytes: impl Buf) -> Result<Message, WireError> {
    let e = etcd::Message::decode(bytes)?;
    let mut m = Message::default();
    m.set_msg_type(message_type(e.r#type())?);
    m.to = e.to();
    m.from = e.from();
    m.term = e.term();
    m.log_term = e.log_term();
    m.index = e.index();
    m.commit = e.commit();
    m.reject = e.reject();
    m.reject_hint = e.reject_hint();
    m.entries = e
        .entries
        .into_iter()
        .map(entry_from_etcd)
        .collect::<Result<Vec<_>, _>>()?
        .into();
    m.context = e.context.unwrap_or_default();
    if let Some(s) = e.snapshot
        && s != empty_snapshot()
    {
        m.set_snapshot(Snapshot {
            data: s.data.unwrap_or_default(),
            metadata: Some(metadata_from_etcd(s.metadata.unwrap_or_default())).into(),
            ..Default::default()
        });
    }
    Ok(m)
}

/// The bytes etcd would marshal for a v1 ConfChange: the data of an EntryConfChange.
pub fn encode_conf_change(cc: &ConfChange) -> Vec<u8> {
    let r#type = match cc.get_change_type() {
        ConfChangeType::AddNode => 0,
        ConfChangeType::RemoveNode => 1,
        ConfChangeType::AddLearnerNode => 3,
    };
    etcd::ConfChange {
        id: Some(cc.id),
        r#type: Some(r#type),
        node_id: Some(cc.node_id),
        context: present(&cc.context),
    }
    .encode_to_vec()
}

/// A v1 ConfChange from the data of an EntryConfChange.
pub fn decode_conf_change(bytes: impl Buf) -> Result<ConfChange, WireError> {
    let e = etcd::ConfChange::decode(bytes)?;
    let change_type = match e.r#type() {
        0 => ConfChangeType::AddNode,
        1 => ConfChangeType::RemoveNode,
        3 => ConfChangeType::AddLearnerNode,
        other => return Err(WireError::ConfChangeType(other)),
    };
    Ok(ConfChange {
        id: e.id(),
        change_type,
        node_id: e.node_id(),
        context: e.context.unwrap_or_default(),
        ..Default::default()
    })
}

fn present(b: &Bytes) -> Option<Bytes> {
    (!b.is_empty()).then(|| b.clone())
}

fn entry_to_etcd(e: &Entry) -> etcd::Entry {
    etcd::Entry {
        r#type: Some(e.get_entry_type() as i32),
        term: Some(e.term),
        index: Some(e.index),
        data: present(&e.data),
    }
}

fn entry_from_etcd(e: etcd::Entry) -> Result<Entry, WireError> {
    let entry_type = match e.r#type() {
        0 => EntryType::EntryNormal,
        1 => EntryType::EntryConfChange,
        2 => EntryType::EntryConfChangeV2,
        other => return Err(WireError::EntryType(other)),
    };
    let mut entry = Entry::default();
    entry.set_entry_type(entry_type);
    entry.term = e.term();
    entry.index = e.index();
    entry.data = e.data.unwrap_or_default();
    Ok(entry)
}

fn metadata_to_etcd(md: &SnapshotMetadata) -> etcd::SnapshotMetadata {
    let cs = md.get_conf_state();
    etcd::SnapshotMetadata {
        conf_state: Some(etcd::ConfState {
            voters: cs.voters.clone(),
            learners: cs.learners.clone(),
            voters_outgoing: cs.voters_outgoing.clone(),
            learners_next: cs.learners_next.clone(),
            auto_leave: Some(cs.auto_leave),
        }),
        index: Some(md.index),
        term: Some(md.term),
    }
}

fn metadata_from_etcd(md: etcd::SnapshotMetadata) -> SnapshotMetadata {
    let (index, term) = (md.index(), md.term());
    let cs = md.conf_state.unwrap_or_default();
    let conf_state = ConfState {
        auto_leave: cs.auto_leave(),
        voters: cs.voters,
        learners: cs.learners,
        voters_outgoing: cs.voters_outgoing,
        learners_next: cs.learners_next,
        ..Default::default()
    };
    SnapshotMetadata {
        conf_state: Some(conf_state).into(),
        index,
        term,
        ..Default::default()
    }
}

/// What etcd writes in the `snapshot` field of a message that carries none.
fn empty_snapshot() -> etcd::Snapshot {
    etcd::Snapshot {
        data: None,
        metadata: Some(metadata_to_etcd(&SnapshotMetadata::default())),
    }
}

/// The values are etcd's and raft-rs's alike; only the names differ (MsgApp is
/// MsgAppend, MsgVote MsgRequestVote, ...).
fn message_type(v: i32) -> Result<MessageType, WireError> {
    use MessageType::*;
    Ok(match v {
        0 => MsgHup,
        1 => MsgBeat,
        2 => MsgPropose,
        3 => MsgAppend,
        4 => MsgAppendResponse,
        5 => MsgRequestVote,
        6 => MsgRequestVoteResponse,
        7 => MsgSnapshot,
        8 => MsgHeartbeat,
        9 => MsgHeartbeatResponse,
        10 => MsgUnreachable,
        11 => MsgSnapStatus,
        12 => MsgCheckQuorum,
        13 => MsgTransferLeader,
        14 => MsgTimeoutNow,
        15 => MsgReadIndex,
        16 => MsgReadIndexResp,
        17 => MsgRequestPreVote,
        18 => MsgRequestPreVoteResponse,
        other => return Err(WireError::MessageType(other)),
    })
}
