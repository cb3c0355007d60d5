use super::wire::*;
use base64ct::{Base64, Encoding};
use prost::bytes::Bytes;
use raft::eraftpb::{
    ConfChange, ConfChangeType, ConfState, Entry, EntryType, Message, MessageType, Snapshot,
    SnapshotMetadata,
};
use serde_json::{Value, json};

fn msg(t: MessageType, to: u64, from: u64, term: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(t);
    m.to = to;
    m.from = from;
    m.term = term;
    m
}

fn entry(t: EntryType, term: u64, index: u64, data: &[u8]) -> Entry {
    let mut e = Entry::default();
    e.set_entry_type(t);
    e.term = term;
    e.index = index;
    e.data = Bytes::copy_from_slice(data);
    e
}

fn conf_change(t: ConfChangeType, node_id: u64) -> ConfChange {
    let mut cc = ConfChange::default();
    cc.set_change_type(t);
    cc.node_id = node_id;
    cc
}

fn snapshot(data: &[u8], index: u64, term: u64, cs: ConfState) -> Snapshot {
    let metadata = SnapshotMetadata {
        conf_state: Some(cs).into(),
        index,
        term,
        ..Default::default()
    };
    Snapshot {
        data: Bytes::copy_from_slice(data),
        metadata: Some(metadata).into(),
        ..Default::default()
    }
}

fn hex(s: &str) -> Vec<u8> {
    ::hex::decode(s.replace(' ', "")).unwrap()
}

/// Every kind of message Raft sends between orderers, as raft-rs fills them.
fn messages() -> Vec<(&'static str, Message)> {
    use EntryType::*;
    use MessageType::*;
    let mut out = Vec::new();

    let mut app = msg(MsgAppend, 2, 1, 3);
    app.log_term = 2;
    app.index = 10;
    app.commit = 9;
    app.entries = vec![
        entry(EntryNormal, 3, 11, b"block 11"),
        entry(EntryNormal, 3, 12, b""), // a new leader's empty entry
        entry(
            EntryConfChange,
            3,
            13,
            &encode_conf_change(&conf_change(ConfChangeType::AddNode, 4)),
        ),
        entry(EntryConfChangeV2, 3, 14, b"\x08\x00"),
    ]
    .into();
    out.push(("MsgApp with entries", app));
    let mut probe = msg(MsgAppend, 3, 1, 3);
    probe.log_term = 3;
    probe.index = 14;
    probe.commit = 14;
    out.push(("MsgApp without entries", probe));

    let mut resp = msg(MsgAppendResponse, 1, 2, 3);
    resp.index = 14;
    out.push(("MsgAppResp", resp));
    let mut reject = msg(MsgAppendResponse, 1, 3, 3);
    reject.index = 10;
    reject.reject = true;
    reject.reject_hint = 7;
    reject.log_term = 2;
    out.push(("MsgAppResp rejecting", reject));

    for (name, t, term) in [
        ("MsgVote", MsgRequestVote, 4),
        ("MsgPreVote", MsgRequestPreVote, 5),
    ] {
        let mut v = msg(t, 2, 1, term);
        v.log_term = 3;
        v.index = 14;
        out.push((name, v));
    }
    let mut transfer = msg(MsgRequestVote, 3, 1, 6);
    transfer.log_term = 3;
    transfer.index = 14;
    transfer.context = Bytes::from_static(b"CampaignTransfer");
    out.push(("MsgVote after a leader transfer", transfer));
    out.push(("MsgVoteResp", msg(MsgRequestVoteResponse, 1, 2, 4)));
    let mut refused = msg(MsgRequestPreVoteResponse, 1, 3, 5);
    refused.reject = true;
    out.push(("MsgPreVoteResp rejecting", refused));

    let mut hb = msg(MsgHeartbeat, 2, 1, 3);
    hb.commit = 14;
    out.push(("MsgHeartbeat", hb));
    let mut hb_ctx = msg(MsgHeartbeat, 3, 1, 3);
    hb_ctx.commit = 12;
    hb_ctx.context = Bytes::from_static(b"read 1");
    out.push(("MsgHeartbeat with a read context", hb_ctx));
    out.push(("MsgHeartbeatResp", msg(MsgHeartbeatResponse, 1, 2, 3)));

    let cs = ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4],
        ..Default::default()
    };
    let mut snap = msg(MsgSnapshot, 4, 1, 3);
    snap.set_snapshot(snapshot(b"block 20", 20, 3, cs));
    out.push(("MsgSnap", snap));
    let joint = ConfState {
        voters: vec![1, 2, 300],
        voters_outgoing: vec![1, 2, 3],
        learners_next: vec![3],
        auto_leave: true,
        ..Default::default()
    };
    let mut snap_joint = msg(MsgSnapshot, 300, 1, 7);
    snap_joint.set_snapshot(snapshot(b"", 40, 7, joint));
    out.push(("MsgSnap of a joint configuration", snap_joint));

    out.push(("MsgTimeoutNow", msg(MsgTimeoutNow, 2, 1, 3)));
    out.push(("MsgTransferLeader", msg(MsgTransferLeader, 1, 2, 3)));
    let mut read = msg(MsgReadIndex, 1, 2, 0);
    read.entries = vec![entry(EntryNormal, 0, 0, b"read 1")].into();
    out.push(("MsgReadIndex", read));
    let mut read_resp = msg(MsgReadIndexResp, 2, 1, 3);
    read_resp.index = 14;
    read_resp.entries = vec![entry(EntryNormal, 0, 0, b"read 1")].into();
    out.push(("MsgReadIndexResp", read_resp));

    let mut wide = msg(MsgAppend, u64::MAX, u64::MAX - 1, u64::MAX);
    wide.log_term = 1 << 63;
    wide.index = 1 << 35;
    wide.commit = 127;
    wide.reject_hint = 128;
    wide.entries = vec![entry(EntryNormal, u64::MAX, u64::MAX, &[0xab; 300])].into();
    out.push(("MsgApp with 10-byte varints and a 300-byte entry", wide));
    out
}

fn conf_changes() -> Vec<(&'static str, ConfChange)> {
    let mut with_id = conf_change(ConfChangeType::RemoveNode, 2);
    with_id.id = 9;
    with_id.context = Bytes::from_static(b"ctx");
    vec![
        ("AddNode", conf_change(ConfChangeType::AddNode, 4)),
        ("RemoveNode with id and context", with_id),
        (
            "AddLearnerNode",
            conf_change(ConfChangeType::AddLearnerNode, 5),
        ),
    ]
}

#[test]
fn every_message_round_trips() {
    for (name, m) in messages() {
        let bytes = encode_message(&m);
        assert_eq!(decode_message(&bytes[..]).unwrap(), m, "{name}");
    }
    for (name, cc) in conf_changes() {
        let bytes = encode_conf_change(&cc);
        assert_eq!(decode_conf_change(&bytes[..]).unwrap(), cc, "{name}");
    }
}

/// etcd writes every field of a message, zeros included, and an empty snapshot.
#[test]
fn a_heartbeat_is_every_field_in_order() {
    let mut hb = msg(MessageType::MsgHeartbeat, 2, 1, 3);
    hb.commit = 5;
    let expected = hex(concat!(
        "08 08 10 02 18 01 20 03 28 00 30 00", // type, to, from, term, logTerm, index
        "40 05",                               // commit
        "4a 0a 12 08 0a 02 28 00 10 00 18 00", // snapshot{metadata{conf_state{auto_leave}, index, term}}
        "50 00 58 00",                         // reject, rejectHint
    ));
    assert_eq!(encode_message(&hb), expected);
}

#[test]
fn entries_carry_type_term_index_and_only_non_empty_data() {
    let mut app = msg(MessageType::MsgAppend, 2, 1, 3);
    app.log_term = 2;
    app.index = 10;
    app.commit = 9;
    app.entries = vec![
        entry(EntryType::EntryNormal, 3, 11, b"hi"),
        entry(EntryType::EntryConfChange, 3, 12, b""),
    ]
    .into();
    let expected = hex(concat!(
        "08 03 10 02 18 01 20 03 28 02 30 0a",
        "3a 0a 08 00 10 03 18 0b 22 02 68 69", // entry{type, term, index, data "hi"}
        "3a 06 08 01 10 03 18 0c",             // entry{type conf change, term, index}: no data
        "40 09",
        "4a 0a 12 08 0a 02 28 00 10 00 18 00",
        "50 00 58 00",
    ));
    assert_eq!(encode_message(&app), expected);
}

#[test]
fn conf_state_ids_are_unpacked_and_packed_ones_are_read() {
    let cs = ConfState {
        voters: vec![1, 2],
        learners: vec![3],
        ..Default::default()
    };
    let mut snap = msg(MessageType::MsgSnapshot, 2, 1, 3);
    snap.set_snapshot(snapshot(b"s", 20, 3, cs));
    let conf_state = "08 01 08 02 10 03 28 00"; // voters 1, 2 and learner 3 one field each
    let expected = hex(&format!(
        "08 07 10 02 18 01 20 03 28 00 30 00 40 00 \
         4a 13 0a 01 73 12 0e 0a 08 {conf_state} 10 14 18 03 50 00 58 00"
    ));
    assert_eq!(encode_message(&snap), expected);

    // raft-rs's own encoding packs them (0a 02 01 02: voters [1, 2]).
    let packed = hex("08 07 10 02 18 01 20 03 4a 0f 0a 01 73 12 0a 0a 04 0a 02 01 02 10 14 18 03");
    let mut decoded = decode_message(&packed[..]).unwrap();
    let md = decoded.mut_snapshot().take_metadata();
    assert_eq!(md.get_conf_state().voters, [1, 2]);
    assert_eq!((md.index, md.term), (20, 3));
}

#[test]
fn learner_changes_use_etcds_number() {
    let cc = conf_change(ConfChangeType::AddLearnerNode, 4);
    assert_eq!(encode_conf_change(&cc), hex("08 00 10 03 18 04"));
    let add = conf_change(ConfChangeType::AddNode, 4);
    assert_eq!(encode_conf_change(&add), hex("08 00 10 00 18 04"));
    // etcd's UpdateNode (2) has no raft-rs counterpart.
    assert_eq!(
        decode_conf_change(&hex("10 02 18 04")[..]),
        Err(WireError::ConfChangeType(2))
    );
    // raft-rs's proto3 form, zeros left out, reads the same.
    assert_eq!(decode_conf_change(&hex("18 04")[..]).unwrap(), add);
}

#[test]
fn raft_rs_only_fields_never_leave() {
    let mut hb = msg(MessageType::MsgHeartbeat, 2, 1, 3);
    hb.commit = 5;
    let plain = encode_message(&hb);
    hb.commit_term = 3;
    hb.request_snapshot = 4;
    hb.deprecated_priority = 5;
    hb.priority = 6;
    assert_eq!(encode_message(&hb), plain);

    let mut app = msg(MessageType::MsgAppend, 2, 1, 3);
    app.entries = vec![entry(EntryType::EntryNormal, 3, 1, b"x")].into();
    let plain = encode_message(&app);
    app.mut_entries()[0].context = Bytes::from_static(b"ctx");
    app.mut_entries()[0].sync_log = true;
    assert_eq!(encode_message(&app), plain);
}

#[test]
fn unknown_fields_are_skipped_and_unknown_values_refused() {
    let hb = msg(MessageType::MsgHeartbeat, 2, 1, 3);
    let mut bytes = encode_message(&hb);
    bytes.extend(hex("68 05 80 01 06")); // fields 13 and 16 (raft-rs's, or a newer etcd's)
    assert_eq!(decode_message(&bytes[..]).unwrap(), hb);

    assert_eq!(
        decode_message(&hex("08 13")[..]),
        Err(WireError::MessageType(19))
    );
    assert_eq!(
        decode_message(&hex("08 03 3a 02 08 03")[..]),
        Err(WireError::EntryType(3))
    );
    assert!(matches!(
        decode_message(&hex("08")[..]),
        Err(WireError::Protobuf(_))
    ));
}

// ---- against etcd itself (Fabric's build) ----

/// `m` as encoding/json reads an etcd `raftpb.Message` (its struct tags).
fn etcd_json(m: &Message) -> Value {
    let b64 = |b: &Bytes| (!b.is_empty()).then(|| Base64::encode_string(b));
    let s = m.get_snapshot();
    let md = s.get_metadata();
    let cs = md.get_conf_state();
    json!({
        "type": m.get_msg_type() as i32, "to": m.to, "from": m.from, "term": m.term,
        "logTerm": m.log_term, "index": m.index,
        "entries": m.get_entries().iter().map(|e| json!({
            "Type": e.get_entry_type() as i32, "Term": e.term, "Index": e.index, "Data": b64(&e.data),
        })).collect::<Vec<_>>(),
        "commit": m.commit,
        "snapshot": {
            "data": b64(&s.data),
            "metadata": {
                "conf_state": {
                    "voters": cs.voters, "learners": cs.learners,
                    "voters_outgoing": cs.voters_outgoing, "learners_next": cs.learners_next,
                    "auto_leave": cs.auto_leave,
                },
                "index": md.index, "term": md.term,
            },
        },
        "reject": m.reject, "rejectHint": m.reject_hint, "context": b64(&m.context),
    })
}

fn etcd_conf_change_json(cc: &ConfChange) -> Value {
    let r#type = match cc.get_change_type() {
        ConfChangeType::AddNode => 0,
        ConfChangeType::RemoveNode => 1,
        ConfChangeType::AddLearnerNode => 3,
    };
    json!({
        "id": cc.id, "type": r#type, "node_id": cc.node_id,
        "context": (!cc.context.is_empty()).then(|| Base64::encode_string(&cc.context)),
    })
}

/// Go writes nil slices as null and leaves out empty omitempty fields; equal values
/// compare equal once empty ones are gone.
fn without_empty(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, without_empty(v)))
                .filter(|(_, v)| !matches!(v, Value::Null) && v != &json!([]) && v != &json!(""))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_empty).collect()),
        v => v,
    }
}

/// Runs `tests/etcdraft-wire/main.go` inside Fabric's source tree (laid there by
/// `go run -overlay`, the tree is not written) over `requests`, one answer each.
fn ask_etcd(fabric_src: &std::path::Path, requests: &[String]) -> Vec<Result<String, String>> {
    use std::io::Write;
    let program = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/etcdraft-wire/main.go")
        .canonicalize()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let overlay = dir.path().join("overlay.json");
    let target = fabric_src.join("internal/etcdraftwireref/main.go");
    std::fs::write(
        &overlay,
        json!({"Replace": {target.to_str().unwrap(): program.to_str().unwrap()}}).to_string(),
    )
    .unwrap();
    let go = std::env::var_os("GO").unwrap_or_else(|| {
        let debian = std::path::Path::new("/usr/lib/go-1.23/bin/go");
        if debian.exists() {
            debian.into()
        } else {
            "go".into()
        }
    });
    let mut child = std::process::Command::new(go)
        .args(["run", "-overlay"])
        .arg(&overlay)
        .arg("./internal/etcdraftwireref")
        .current_dir(fabric_src)
        .envs([
            ("GOFLAGS", "-mod=vendor"),
            ("GOTOOLCHAIN", "local"),
            ("GOPROXY", "off"),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("go run (Go 1.23 at /usr/lib/go-1.23/bin, or GO=...)");
    let mut stdin = child.stdin.take().unwrap();
    for r in requests {
        writeln!(stdin, "{r}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "go run failed: {}", out.status);
    let answers: Vec<_> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| match l.split_once(' ') {
            Some(("ok", rest)) => Ok(rest.to_string()),
            _ => Err(l.to_string()),
        })
        .collect();
    assert_eq!(answers.len(), requests.len(), "one answer per request");
    answers
}

/// Against etcd's own raftpb code as Fabric v2.5.12 vendors it: for every message,
/// our bytes are the bytes etcd marshals for the same values, etcd reads our bytes back
/// as those values, and we read etcd's bytes back as the raft-rs message we started from.
#[test]
fn etcd_encodes_and_decodes_as_we_do() {
    let Some(fabric_ref) = std::env::var_os("FABRIC_REF") else {
        println!("skipped: FABRIC_REF is not set");
        return;
    };
    let src = std::path::PathBuf::from(fabric_ref).join("src");
    // (name, kind, our bytes, the values as etcd's JSON, what we started from, our decoder)
    type Decode = Box<dyn Fn(&[u8]) -> Result<String, WireError>>;
    type Case = (String, &'static str, Vec<u8>, Value, String, Decode);
    let mut cases: Vec<Case> = Vec::new();
    for (name, m) in messages() {
        let want = format!("{m:?}");
        let decode: Decode = Box::new(|b| decode_message(b).map(|m| format!("{m:?}")));
        cases.push((
            name.into(),
            "msg",
            encode_message(&m),
            etcd_json(&m),
            want,
            decode,
        ));
    }
    for (name, cc) in conf_changes() {
        let want = format!("{cc:?}");
        let decode: Decode = Box::new(|b| decode_conf_change(b).map(|c| format!("{c:?}")));
        let json = etcd_conf_change_json(&cc);
        cases.push((
            format!("ConfChange {name}"),
            "cc",
            encode_conf_change(&cc),
            json,
            want,
            decode,
        ));
    }
    let mut requests = Vec::new();
    for (_, kind, ours, json, _, _) in &cases {
        requests.push(format!("enc {kind} {json}"));
        requests.push(format!("dec {kind} {}", ::hex::encode(ours)));
    }
    let answers = ask_etcd(&src, &requests);
    for ((name, _, ours, json, want, decode), pair) in cases.iter().zip(answers.chunks(2)) {
        let etcd_bytes = ::hex::decode(pair[0].as_ref().expect("etcd encodes")).unwrap();
        assert_eq!(
            ::hex::encode(&etcd_bytes),
            ::hex::encode(ours),
            "{name}: etcd's bytes, ours"
        );
        let etcd_view: Value =
            serde_json::from_str(pair[1].as_ref().expect("etcd decodes ours")).unwrap();
        assert_eq!(
            without_empty(etcd_view),
            without_empty(json.clone()),
            "{name}: etcd reads ours"
        );
        assert_eq!(
            &decode(&etcd_bytes).unwrap(),
            want,
            "{name}: we read etcd's"
        );
        println!(
            "{name}: {} bytes, identical to etcd's both ways",
            ours.len()
        );
    }
    println!(
        "{} messages checked against etcd's raftpb (Fabric v2.5.12)",
        cases.len()
    );
}

fn fixture_block(name: &str) -> Vec<u8> {
    std::fs::read(crate::testkit::fixtures().join("blocks").join(name)).unwrap()
}

/// A block Fabric's Raft chain wrote, read back as an entry: the core's form of it
/// (header and data only) and, for a config block, its config's sequence.
#[test]
fn a_fabric_block_reads_as_the_entry_its_leader_proposed() {
    use super::block::{entry_block, entry_data};
    use fabric_protos::common::Block;
    use prost::Message as _;
    let raw = fixture_block("mychannel-etcdraft-block-1.block");
    let fabric = Block::decode(&raw[..]).unwrap();
    let (block, sequence) = entry_block(&raw).unwrap();
    assert_eq!((block.number, block.is_config, sequence), (1, false, None));
    let ours = Block::decode(&block.encoded[..]).unwrap();
    assert_eq!(
        (ours.header, ours.data),
        (fabric.header.clone(), fabric.data.clone())
    );
    assert!(ours.metadata.is_none());
    // Proposed again, it carries the five empty metadata slots of protoutil.NewBlock.
    let proposed = Block::decode(entry_data(&block)).unwrap();
    assert_eq!(proposed.metadata.unwrap().metadata, vec![Bytes::new(); 5]);
    assert_eq!(proposed.header, fabric.header);

    let (genesis, sequence) =
        entry_block(&fixture_block("mychannel-etcdraft-genesis.block")).unwrap();
    assert_eq!(
        (genesis.number, genesis.is_config, sequence),
        (0, true, Some(0))
    );
}

/// Against Fabric v2.5.12's own code: the entry we propose for a block is the bytes
/// its blockCreator and proto.Marshal make for the same block, and the node that
/// starts a new chain's first campaign is the one Fabric's node.start picks.
#[test]
fn fabric_proposes_our_bytes_and_picks_our_campaigner() {
    use super::block::{entry_block, entry_data};
    use super::chain::campaigner;
    use fabric_protos::common::Block;
    use prost::Message as _;
    let Some(fabric_ref) = std::env::var_os("FABRIC_REF") else {
        println!("skipped: FABRIC_REF is not set");
        return;
    };
    let src = std::path::PathBuf::from(fabric_ref).join("src");
    let mut requests = Vec::new();
    let mut ours = Vec::new();
    for name in [
        "mychannel-etcdraft-block-1.block",
        "mychannel-etcdraft-block-2.block",
    ] {
        let raw = fixture_block(name);
        let fabric = Block::decode(&raw[..]).unwrap();
        let header = fabric.header.unwrap();
        let mut fields = vec![::hex::encode(&header.previous_hash)];
        fields.extend(fabric.data.unwrap().data.iter().map(::hex::encode));
        requests.push(format!("block {} {}", header.number, fields.join(",")));
        ours.push(::hex::encode(entry_data(&entry_block(&raw).unwrap().0)));
    }
    let channels = [
        "mychannel",
        "system-channel",
        "appchannel",
        "a",
        "channel-42",
    ];
    for channel in channels {
        for size in 1..=5 {
            requests.push(format!("campaign {channel} {size}"));
            ours.push(campaigner(channel, size).to_string());
        }
    }
    let answers = ask_etcd(&src, &requests);
    for ((request, answer), ours) in requests.iter().zip(&answers).zip(&ours) {
        let request: String = request.chars().take(40).collect();
        assert_eq!(answer.as_ref().unwrap(), ours, "{request}");
    }
    println!(
        "{} answers of Fabric's blockCreator and campaign pick equal ours",
        answers.len()
    );
}

fn wal_entry(term: u64, index: u64, data: &[u8]) -> Entry {
    entry(EntryType::EntryNormal, term, index, data)
}

/// What was appended reads back after a reopen; a later entry at an index replaces
/// the entries from there on, as in Raft's log; the last hard state wins.
#[test]
fn the_wal_reads_back_what_was_written() {
    use super::wal::Wal;
    use raft::eraftpb::HardState;
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, restored) = Wal::open(dir.path(), &dir.path().join("snap")).unwrap();
    assert!(restored.is_none(), "a new WAL");
    let hard = |term, commit| HardState {
        term,
        vote: 2,
        commit,
        ..Default::default()
    };
    let first: Vec<Entry> = (1..=4).map(|i| wal_entry(1, i, &[i as u8; 3])).collect();
    wal.append(&first, Some(&hard(1, 2))).unwrap();
    // A new leader's entries replace 3 and 4.
    let replaced = vec![wal_entry(2, 3, b"new"), wal_entry(2, 4, b"")];
    wal.append(&replaced, Some(&hard(2, 4))).unwrap();
    drop(wal);

    let (_, restored) = Wal::open(dir.path(), &dir.path().join("snap")).unwrap();
    let restored = restored.unwrap();
    let read: Vec<(u64, u64, Vec<u8>)> = restored
        .entries
        .iter()
        .map(|e| (e.term, e.index, e.data.to_vec()))
        .collect();
    assert_eq!(
        read,
        vec![
            (1, 1, vec![1; 3]),
            (1, 2, vec![2; 3]),
            (2, 3, b"new".to_vec()),
            (2, 4, vec![]),
        ]
    );
    assert_eq!(restored.hard_state, hard(2, 4));
}

/// A crash in the middle of a write leaves a torn record: it is cut off, everything
/// before it is kept, and appends carry on after it.
#[test]
fn a_torn_write_at_the_end_of_the_wal_is_cut_off() {
    use super::wal::Wal;
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), &dir.path().join("snap")).unwrap();
    wal.append(&[wal_entry(1, 1, b"kept")], None).unwrap();
    wal.append(&[wal_entry(1, 2, b"torn")], None).unwrap();
    drop(wal);
    let path = dir.path().join("wal");
    let length = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(length - 2).unwrap();

    let (mut wal, restored) = Wal::open(dir.path(), &dir.path().join("snap")).unwrap();
    let indexes: Vec<u64> = restored.unwrap().entries.iter().map(|e| e.index).collect();
    assert_eq!(indexes, vec![1]);
    wal.append(&[wal_entry(1, 2, b"again")], None).unwrap();
    drop(wal);
    let (_, restored) = Wal::open(dir.path(), &dir.path().join("snap")).unwrap();
    let entries = restored.unwrap().entries;
    assert_eq!(entries.len(), 2);
    assert_eq!(&entries[1].data[..], b"again");

    // A flipped bit in a record's body fails its CRC the same way.
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let (_, restored) = Wal::open(dir.path(), &dir.path().join("snap")).unwrap();
    assert_eq!(restored.unwrap().entries.len(), 1);
}

/// A snapshot and a compaction survive a reopen: the snapshot comes back with its
/// data and conf state, the log holds what the compaction kept and what came after,
/// and entries the snapshot covers are not replayed. A damaged snapshot is an error
/// naming the file, not a silent restart from nothing.
#[test]
fn a_snapshot_and_the_compacted_wal_read_back() {
    use super::wal::Wal;
    use raft::eraftpb::{ConfState, HardState, Snapshot};
    let dir = tempfile::tempdir().unwrap();
    let snap_dir = dir.path().join("snap");
    let (mut wal, _) = Wal::open(dir.path(), &snap_dir).unwrap();
    let first: Vec<Entry> = (1..=10).map(|i| wal_entry(1, i, &[i as u8; 3])).collect();
    let hard = HardState {
        term: 1,
        vote: 1,
        commit: 10,
        ..Default::default()
    };
    wal.append(&first, Some(&hard)).unwrap();
    let mut snapshot = Snapshot::default();
    snapshot.mut_metadata().index = 8;
    snapshot.mut_metadata().term = 1;
    snapshot
        .mut_metadata()
        .set_conf_state(ConfState::from((vec![1, 2, 3], vec![4])));
    snapshot.data = bytes::Bytes::from_static(b"block 5");
    wal.save_snapshot(&snapshot).unwrap();
    let before = std::fs::metadata(dir.path().join("wal")).unwrap().len();
    wal.compact(&first[4..], &hard).unwrap();
    wal.append(&[wal_entry(2, 11, b"after")], None).unwrap();
    drop(wal);

    let (_, restored) = Wal::open(dir.path(), &snap_dir).unwrap();
    let restored = restored.unwrap();
    let back = restored.snapshot.unwrap();
    assert_eq!(back, snapshot);
    let indexes: Vec<u64> = restored.entries.iter().map(|e| e.index).collect();
    assert_eq!(indexes, vec![9, 10, 11]);
    assert_eq!(restored.hard_state, hard);
    let wal_bytes = std::fs::metadata(dir.path().join("wal")).unwrap().len();
    assert!(
        wal_bytes < before,
        "compacted from {before} to {wal_bytes} bytes"
    );

    let path = snap_dir.join("snapshot");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let error = Wal::open(dir.path(), &snap_dir).err().unwrap();
    let text = format!("{error:#}");
    assert!(text.contains("snapshot") && text.contains("CRC"), "{text}");
}
