use super::*;
use crate::blockheader::{header_der, header_hash};
use crate::config::testkit::{self, block_envelopes, envelope_time_nanos, read};
use crate::configtx::testkit::{
    CONFIG_BLOCK_1, ORDERER_ADMIN_UPDATE, block_config, config_envelope_of, fabric_config_envelope,
};
use crate::crypto::NativeCrypto;
use fabric_protos::common::{Block, ConfigEnvelope, HeaderType, Status};

const GENESIS: &str = "blocks/mychannel-etcdraft-genesis.block";

fn decode_block(bytes: &[u8]) -> Block {
    Block::decode(bytes).unwrap()
}

fn encoded_header(block: &[u8]) -> Vec<u8> {
    decode_block(block).header.unwrap().encode_to_vec()
}

fn genesis_channel() -> Channel<NativeCrypto> {
    let genesis = read(GENESIS);
    Channel::open(NativeCrypto, &genesis, &encoded_header(&genesis)).unwrap()
}

fn blocks_json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&read(rel)).unwrap()
}

fn hex_field(v: &serde_json::Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap()).unwrap()
}

/// A fresh message from User1 of `size` bytes of data, signed at `now`.
fn message(data_len: usize, now: u64) -> Vec<u8> {
    testkit::user1().envelope(
        "mychannel",
        HeaderType::EndorserTransaction as i32,
        now,
        &vec![0x5a; data_len],
    )
}

/// Fabric's message size of an envelope.
fn size_of(envelope: &[u8]) -> u32 {
    let e = fabric_protos::common::Envelope::decode(envelope).unwrap();
    (e.payload.len() + e.signature.len()) as u32
}

fn now() -> u64 {
    envelope_time_nanos(&block_envelopes("blocks/mychannel-etcdraft-block-1.block")[0])
}

fn header_of(built: &BuiltBlock) -> BlockHeader {
    decode_block(&built.encoded).header.unwrap()
}

/// Real Fabric blocks 1-3: the same envelopes, cut by the timer, give the same
/// header (number, previous hash, data hash, header hash) and data, byte for byte.
#[test]
fn fabric_blocks_1_to_3_byte_for_byte() {
    let json = blocks_json("blocks/blocks.json");
    let mut channel = genesis_channel();
    assert_eq!(channel.config().batch_size.max_message_count, 500);
    assert_eq!(channel.batch_timeout_ms(), 2000);
    assert_eq!(channel.next_block_number(), 1);
    for n in 1..=3u64 {
        let rel = format!("blocks/mychannel-etcdraft-block-{n}.block");
        let fixture = decode_block(&read(&rel));
        let envelopes = block_envelopes(&rel);
        assert_eq!(envelopes.len() as u64, n);
        for env in &envelopes {
            let t = envelope_time_nanos(env);
            let verdict = channel.validate(env, t).unwrap();
            let cut = channel.order(env, verdict.config_seq, t);
            assert!(cut.blocks.is_empty());
            assert!(cut.pending);
            assert_eq!(cut.dropped, None);
        }
        let built = channel.cut().expect("a block");
        assert_eq!(channel.cut(), None);
        let expected = json
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["number"].as_u64() == Some(n))
            .unwrap();
        let ours = decode_block(&built.encoded);
        let header = ours.header.clone().unwrap();
        assert_eq!(built.number, n);
        assert_eq!(header.number, n);
        assert_eq!(
            header.previous_hash.to_vec(),
            hex_field(expected, "previous_hash")
        );
        assert_eq!(header.data_hash.to_vec(), hex_field(expected, "data_hash"));
        assert_eq!(built.header_der, hex_field(expected, "header_der"));
        assert_eq!(
            header_hash(&header, &NativeCrypto).to_vec(),
            hex_field(expected, "header_hash")
        );
        assert_eq!(ours.header, fixture.header);
        assert_eq!(ours.data, fixture.data);
        assert!(ours.metadata.is_none());
        // Our encoding plus the fixture's metadata field is the fixture block.
        let mut full = built.encoded.clone();
        let metadata = fixture.metadata.clone().unwrap();
        full.push(0x1a);
        full.extend(metadata.encode_length_delimited_to_vec());
        assert_eq!(full, read(&rel));
        assert_eq!(channel.previous_hash(), hex_field(expected, "header_hash"));
    }
    assert_eq!(channel.next_block_number(), 4);
}

/// Real Fabric after a config update (MaxMessageCount 10): the 10th message cuts
/// a block equal to the real `normal-block-2`, without the timer.
#[test]
fn fabric_block_after_config_update_cut_by_count() {
    let config_block = read("updates/config-block-1.block");
    let mut channel =
        Channel::open(NativeCrypto, &config_block, &encoded_header(&config_block)).unwrap();
    assert_eq!(channel.config().sequence, 1);
    assert_eq!(channel.config().batch_size.max_message_count, 10);
    assert_eq!(channel.batch_timeout_ms(), 1000);
    let fixture_bytes = read("updates/normal-block-2.block");
    let fixture = decode_block(&fixture_bytes);
    let envelopes = block_envelopes("updates/normal-block-2.block");
    assert_eq!(envelopes.len(), 10);
    for (i, env) in envelopes.iter().enumerate() {
        let t = envelope_time_nanos(env);
        let cut = channel.order(env, 1, t);
        if i < 9 {
            assert!(cut.blocks.is_empty() && cut.pending);
        } else {
            assert!(!cut.pending);
            assert_eq!(cut.blocks.len(), 1);
            let ours = decode_block(&cut.blocks[0].encoded);
            assert_eq!(ours.header, fixture.header);
            assert_eq!(ours.data, fixture.data);
            let expected =
                hex::decode("fa104b87815729d10201ed716f54532953e4fb61af70e61c9314058a0a09dbff")
                    .unwrap();
            assert_eq!(
                header_hash(&ours.header.unwrap(), &NativeCrypto).to_vec(),
                expected
            );
        }
    }
    assert_eq!(channel.cut(), None);
}

/// Every fixture block decodes as `common.Block` and re-encodes to the same bytes.
#[test]
fn fixture_blocks_round_trip() {
    let mut count = 0;
    for dir in ["blocks", "updates"] {
        for entry in std::fs::read_dir(testkit::fabric_path(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("block") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let block = decode_block(&bytes);
            assert_eq!(block.encode_to_vec(), bytes, "{}", path.display());
            count += 1;
        }
    }
    assert_eq!(count, 8);
}

#[test]
fn open_rejects_bad_inputs() {
    let genesis = read(GENESIS);
    let tip = encoded_header(&genesis);
    let err = Channel::open(NativeCrypto, b"\xff\xff", &tip)
        .err()
        .unwrap();
    assert_eq!(err.status, Status::BadRequest);
    assert!(err.info.starts_with("invalid config block"), "{}", err.info);
    let err = Channel::open(NativeCrypto, &genesis, b"\xff")
        .err()
        .unwrap();
    assert_eq!(err.status, Status::BadRequest);
    assert!(err.info.starts_with("invalid tip header"), "{}", err.info);
    // A normal block is not a config block.
    let block1 = read("blocks/mychannel-etcdraft-block-1.block");
    assert!(Channel::open(NativeCrypto, &block1, &tip).is_err());
}

fn with_batch_size(channel: &mut Channel<NativeCrypto>, count: u32, preferred: u32) {
    let mut config = channel.config().clone();
    config.batch_size.max_message_count = count;
    config.batch_size.preferred_max_bytes = preferred;
    channel.update_config(config);
}

#[test]
fn cuts_by_count_and_chains_blocks() {
    let mut channel = genesis_channel();
    with_batch_size(&mut channel, 3, 2 * 1024 * 1024);
    let t = now();
    let mut built = Vec::new();
    for i in 0..10 {
        let cut = channel.order(&message(100, t + i), 0, t);
        assert_eq!(cut.pending, (i + 1) % 3 != 0);
        assert_eq!(cut.blocks.len(), usize::from((i + 1) % 3 == 0));
        built.extend(cut.blocks);
    }
    built.extend(channel.cut());
    let sizes: Vec<usize> = built
        .iter()
        .map(|b| decode_block(&b.encoded).data.unwrap().data.len())
        .collect();
    assert_eq!(sizes, vec![3, 3, 3, 1]);
    let genesis_hash =
        hex::decode("935c1299d79afa37b66811cec8d654c6ae6eb547c42ccf66a38e1b489dfdaf22").unwrap();
    let mut previous = genesis_hash;
    for (i, b) in built.iter().enumerate() {
        let header = header_of(b);
        assert_eq!(b.number, i as u64 + 1);
        assert_eq!(header.number, b.number);
        assert_eq!(header.previous_hash.to_vec(), previous);
        assert_eq!(b.header_der, header_der(&header));
        previous = header_hash(&header, &NativeCrypto).to_vec();
    }
    assert_eq!(channel.previous_hash(), previous);
    assert_eq!(channel.next_block_number(), 5);
}

#[test]
fn cuts_by_preferred_bytes() {
    let t = now();
    let size = size_of(&message(1000, t));
    let mut channel = genesis_channel();
    // Two messages fit, the third overflows.
    with_batch_size(&mut channel, 500, 2 * size + size / 2);
    let first = channel.order(&message(1000, t), 0, t);
    let second = channel.order(&message(1000, t + 1), 0, t);
    assert!(first.blocks.is_empty() && second.blocks.is_empty());
    let third = channel.order(&message(1000, t + 2), 0, t);
    assert_eq!(third.blocks.len(), 1);
    assert!(third.pending);
    assert_eq!(
        decode_block(&third.blocks[0].encoded)
            .data
            .unwrap()
            .data
            .len(),
        2
    );
    let rest = channel.cut().unwrap();
    assert_eq!(decode_block(&rest.encoded).data.unwrap().data.len(), 1);
    assert_eq!(rest.number, 2);
}

#[test]
fn oversized_message_is_isolated() {
    let t = now();
    let mut channel = genesis_channel();
    let small = message(100, t);
    let big = message(5000, t + 1);
    with_batch_size(&mut channel, 500, size_of(&big) - 1);
    assert!(channel.order(&small, 0, t).pending);
    let cut = channel.order(&big, 0, t);
    assert!(!cut.pending);
    assert_eq!(cut.blocks.len(), 2);
    let first = decode_block(&cut.blocks[0].encoded);
    let second = decode_block(&cut.blocks[1].encoded);
    assert_eq!(first.data.unwrap().data, vec![Bytes::from(small)]);
    assert_eq!(second.data.unwrap().data, vec![Bytes::from(big.clone())]);
    assert_eq!(
        second.header.unwrap().previous_hash.as_ref(),
        &header_hash(&first.header.unwrap(), &NativeCrypto)
    );
    assert_eq!((cut.blocks[0].number, cut.blocks[1].number), (1, 2));
    // With nothing pending: one block.
    let cut = channel.order(&big, 0, t);
    assert_eq!(cut.blocks.len(), 1);
    assert_eq!(cut.blocks[0].number, 3);
    assert_eq!(channel.cut(), None);
}

/// A message validated under an older config sequence is validated again and
/// dropped if it fails now; one under the current sequence is not re-checked.
#[test]
fn revalidation_under_newer_config() {
    let t = now();
    let mut channel = genesis_channel();
    let mut config = channel.config().clone();
    config.sequence = 1;
    channel.update_config(config);

    let good = message(10, t);
    let mut bad = fabric_protos::common::Envelope::decode(good.as_slice()).unwrap();
    bad.signature = testkit::sign(&testkit::user1().key, b"something else").into();
    let bad = bad.encode_to_vec();

    let cut = channel.order(&bad, 0, t);
    let dropped = cut.dropped.expect("dropped");
    assert_eq!(dropped.status, Status::Forbidden);
    assert!(cut.blocks.is_empty() && !cut.pending);
    assert_eq!(channel.cut(), None);

    // Still valid under the new config: ordered.
    let cut = channel.order(&good, 0, t);
    assert_eq!(cut.dropped, None);
    assert!(cut.pending);

    // Dropping keeps what is pending.
    let cut = channel.order(&bad, 0, t);
    assert!(cut.dropped.is_some());
    assert!(cut.pending);

    // Validated under the current sequence: trusted, as in Fabric.
    let cut = channel.order(&bad, 1, t);
    assert_eq!(cut.dropped, None);
    let block = channel.cut().unwrap();
    let data = decode_block(&block.encoded).data.unwrap().data;
    assert_eq!(data, vec![Bytes::from(good), Bytes::from(bad)]);
    assert_eq!(block.number, 1);
}

#[test]
fn undecodable_envelope_is_dropped() {
    let mut channel = genesis_channel();
    let cut = channel.order(&[0x0a, 0x05, 1], 0, now());
    assert_eq!(cut.dropped.unwrap().status, Status::BadRequest);
    assert!(cut.blocks.is_empty() && !cut.pending);
    assert_eq!(channel.next_block_number(), 1);
}

/// Non-canonical envelopes go into the block as Fabric re-marshals them.
#[test]
fn block_data_is_the_re_marshalled_envelope() {
    let t = now();
    let mut channel = genesis_channel();
    let good = fabric_protos::common::Envelope::decode(message(10, t).as_slice()).unwrap();
    // Signature first, then payload.
    let mut raw = Vec::new();
    prost::encoding::bytes::encode(2, &good.signature, &mut raw);
    prost::encoding::bytes::encode(1, &good.payload, &mut raw);
    assert!(channel.validate(&raw, t).is_ok());
    channel.order(&raw, 0, t);
    let block = channel.cut().unwrap();
    let data = decode_block(&block.encoded).data.unwrap().data;
    assert_eq!(data, vec![Bytes::from(good.encode_to_vec())]);
}

#[test]
fn validate_and_authorize_deliver_use_the_config() {
    let channel = genesis_channel();
    let t = now();
    assert_eq!(channel.validate(&message(10, t), t).unwrap().config_seq, 0);
    let seek = testkit::user1().envelope("mychannel", HeaderType::DeliverSeekInfo as i32, t, b"");
    channel.authorize_deliver(&seek, t).unwrap();
    let other = testkit::user1().envelope(
        "otherchannel",
        HeaderType::EndorserTransaction as i32,
        t,
        b"",
    );
    assert_eq!(
        channel.validate(&other, t).unwrap_err().status,
        Status::BadRequest
    );
}

fn data_of(built: &BuiltBlock) -> Vec<Bytes> {
    decode_block(&built.encoded).data.unwrap().data
}

/// The real update, end to end: 3 messages pending, the orderer-admin-signed
/// CONFIG_UPDATE proposed, wrapped in a CONFIG envelope signed by orderer0 and
/// ordered: a block with the 3 messages, then the config block alone; then the new
/// MaxMessageCount 10 cuts 25 messages into 10, 10 and 5 left for the 1 s timer,
/// as the real orderer did.
#[test]
fn config_update_end_to_end_like_fabric() {
    let update = read(ORDERER_ADMIN_UPDATE);
    let t = envelope_time_nanos(&update);
    let mut channel = genesis_channel();
    assert_eq!(channel.config_sequence(), 0);
    let verdict = channel.validate(&update, t).unwrap();
    assert_eq!(
        verdict,
        Verdict {
            config_seq: 0,
            is_config_update: true
        }
    );
    for i in 0..3 {
        let cut = channel.order(&message(32, t + i), 0, t);
        assert!(cut.blocks.is_empty() && cut.pending);
    }

    let proposed = channel.propose_config_update(&update, t).unwrap();
    let decoded = ConfigEnvelope::decode(proposed.as_slice()).unwrap();
    assert_eq!(
        decoded.config.clone().unwrap(),
        block_config(CONFIG_BLOCK_1)
    );
    // Field 2 (last_update) holds the received bytes verbatim.
    let mut tail = Vec::new();
    prost::encoding::bytes::encode(2, &Bytes::from(update.clone()), &mut tail);
    assert!(proposed.ends_with(&tail));
    // The real orderer put the same ConfigEnvelope in block 1.
    assert_eq!(config_envelope_of(&fabric_config_envelope()), decoded);

    let config_env =
        testkit::orderer0().envelope("mychannel", HeaderType::Config as i32, t, &proposed);
    assert_eq!(
        channel.validate_config(&config_env, t).unwrap(),
        Verdict {
            config_seq: 0,
            is_config_update: false
        }
    );
    // A CONFIG envelope is never accepted from Broadcast directly.
    assert_eq!(
        channel.validate(&config_env, t).unwrap_err().status,
        Status::BadRequest
    );

    let cut = channel.order(&config_env, 0, t);
    assert_eq!(cut.dropped, None);
    assert!(!cut.pending);
    assert_eq!(cut.blocks.len(), 2);
    assert_eq!(cut.blocks[0].number, 1);
    assert!(!cut.blocks[0].is_config);
    assert_eq!(data_of(&cut.blocks[0]).len(), 3);
    assert_eq!(cut.blocks[1].number, 2);
    assert!(cut.blocks[1].is_config);
    assert_eq!(
        data_of(&cut.blocks[1]),
        vec![Bytes::from(config_env.clone())]
    );
    assert_eq!(
        header_of(&cut.blocks[1]).previous_hash.as_ref(),
        &header_hash(&header_of(&cut.blocks[0]), &NativeCrypto)
    );

    // The new config is in force.
    assert_eq!(channel.config_sequence(), 1);
    assert_eq!(channel.config().batch_size.max_message_count, 10);
    assert_eq!(channel.batch_timeout_ms(), 1000);
    let mut sizes = Vec::new();
    for i in 0..25 {
        let env = message(32, t + 100 + i);
        let verdict = channel.validate(&env, t).unwrap();
        assert_eq!(verdict.config_seq, 1);
        let cut = channel.order(&env, verdict.config_seq, t);
        assert!(cut.blocks.iter().all(|b| !b.is_config));
        sizes.extend(cut.blocks.iter().map(|b| data_of(b).len()));
        assert_eq!(cut.pending, (i + 1) % 10 != 0);
    }
    assert_eq!(sizes, vec![10, 10]);
    let last = channel.cut().unwrap();
    assert_eq!(data_of(&last).len(), 5);
    assert_eq!((last.number, last.is_config), (5, false));

    // The same CONFIG again: its sequence is stale now; dropped, nothing cut.
    channel.order(&message(32, t), 1, t);
    let cut = channel.order(&config_env, 1, t);
    assert_eq!(
        cut.dropped,
        Some(Rejection::bad_request(
            "config currently at sequence 1, cannot validate config at sequence 1"
        ))
    );
    assert!(cut.blocks.is_empty() && cut.pending);
    assert_eq!(channel.config_sequence(), 1);
    assert_eq!(channel.next_block_number(), 6);
}

/// Fabric's own CONFIG envelope on the genesis block gives Fabric's block 1 (same
/// data hash and header hash), and then Fabric's block 2.
#[test]
fn fabric_config_envelope_gives_fabric_blocks_1_and_2() {
    let config_env = fabric_config_envelope();
    let t = envelope_time_nanos(&config_env);
    let mut channel = genesis_channel();
    assert_eq!(
        channel.validate_config(&config_env, t).unwrap().config_seq,
        0
    );
    let cut = channel.order(&config_env, 0, t);
    assert_eq!(cut.dropped, None);
    assert_eq!(cut.blocks.len(), 1);
    let block = &cut.blocks[0];
    assert!(block.is_config);
    let fixture = decode_block(&read(CONFIG_BLOCK_1));
    let ours = decode_block(&block.encoded);
    assert_eq!(ours.header, fixture.header);
    assert_eq!(ours.data, fixture.data);
    let header = ours.header.unwrap();
    assert_eq!(
        hex::encode(&header.data_hash),
        "bdf7a2fd7341636d4e01a1fed6f38736a224b4269bd9f51432ee50cb46400cf6"
    );
    assert_eq!(
        hex::encode(header_hash(&header, &NativeCrypto)),
        "8d7eadf9e6102fbf825510f9d936c391075d04a97849704fb1a6550646dc0e12"
    );
    assert_eq!(channel.config_sequence(), 1);

    let envelopes = block_envelopes("updates/normal-block-2.block");
    let mut blocks = Vec::new();
    for env in &envelopes {
        let t = envelope_time_nanos(env);
        let verdict = channel.validate(env, t).unwrap();
        blocks.extend(channel.order(env, verdict.config_seq, t).blocks);
    }
    assert_eq!(blocks.len(), 1);
    assert!(!blocks[0].is_config);
    let ours = decode_block(&blocks[0].encoded);
    assert_eq!(
        hex::encode(header_hash(&ours.header.clone().unwrap(), &NativeCrypto)),
        "fa104b87815729d10201ed716f54532953e4fb61af70e61c9314058a0a09dbff"
    );
    let fixture = decode_block(&read("updates/normal-block-2.block"));
    assert_eq!(ours.header, fixture.header);
    assert_eq!(ours.data, fixture.data);
}

/// A CONFIG envelope whose config is not the next sequence, or not a valid config,
/// is dropped without cutting what is pending.
#[test]
fn bad_config_envelopes_are_dropped() {
    let t = now();
    let mut channel = genesis_channel();
    channel.order(&message(10, t), 0, t);
    let orderer0 = testkit::orderer0();
    let fabric = config_envelope_of(&fabric_config_envelope());
    let config_env = |sequence: u64, max_message_count: u32| {
        let mut ce = fabric.clone();
        let config = ce.config.as_mut().unwrap();
        config.sequence = sequence;
        let value = config
            .channel_group
            .as_mut()
            .unwrap()
            .groups
            .get_mut("Orderer")
            .unwrap()
            .values
            .get_mut("BatchSize")
            .unwrap();
        let mut bs = fabric_protos::orderer::BatchSize::decode(value.value.as_ref()).unwrap();
        bs.max_message_count = max_message_count;
        value.value = bs.encode_to_vec().into();
        orderer0.envelope(
            "mychannel",
            HeaderType::Config as i32,
            t,
            &ce.encode_to_vec(),
        )
    };
    for (env, text) in [
        (
            config_env(2, 10),
            "config currently at sequence 0, cannot validate config at sequence 2",
        ),
        (
            config_env(0, 10),
            "config currently at sequence 0, cannot validate config at sequence 0",
        ),
        (
            config_env(1, 0),
            "invalid config: Attempted to set the batch size max message count to an invalid value: 0",
        ),
    ] {
        let cut = channel.order(&env, 0, t);
        assert_eq!(cut.dropped, Some(Rejection::bad_request(text)));
        assert!(cut.blocks.is_empty() && cut.pending);
    }
    assert_eq!(channel.config_sequence(), 0);
    assert_eq!(channel.next_block_number(), 1);
    // A valid next config (not produced by its last update: the host's
    // validate_config refuses that; ordering trusts what it is given).
    let cut = channel.order(&config_env(1, 7), 0, t);
    assert_eq!(cut.blocks.len(), 2);
    assert_eq!(channel.config().batch_size.max_message_count, 7);
    assert_eq!(
        channel
            .validate_config(&config_env(2, 7), t)
            .unwrap_err()
            .status,
        Status::BadRequest
    );
}

/// The pending batch, read out and ordered again in a fresh channel at the same
/// tip, gives the same block (hot swap moves a batch this way).
#[test]
fn pending_envelopes_move_a_batch_across() {
    let t = now();
    let mut old = genesis_channel();
    assert!(old.pending_envelopes().is_empty());
    let sent: Vec<Vec<u8>> = (0..3).map(|i| message(50 + i, t + i as u64)).collect();
    for env in &sent {
        old.order(env, 0, t);
    }
    let pending = old.pending_envelopes();
    assert_eq!(pending, sent);
    let mut new = genesis_channel();
    for env in &pending {
        assert!(new.order(env, 0, t).pending);
    }
    assert_eq!(new.cut(), old.cut());
    assert!(old.pending_envelopes().is_empty());
}

/// A policy that refuses data over 100 bytes and records what it saw.
#[derive(Default)]
struct SmallOnly {
    seen: std::cell::RefCell<Vec<(crate::extension::Stage, String, i32, usize)>>,
}

impl crate::extension::Policy for SmallOnly {
    const NAME: &'static str = "small-only";
    const VERSION: &'static str = "9.9.9";

    fn check(
        &self,
        ctx: &crate::extension::PolicyContext<'_>,
        env: &crate::extension::EnvelopeView<'_>,
        _now: u64,
    ) -> Result<(), Rejection> {
        assert_eq!(ctx.channel_id(), "mychannel");
        assert_eq!(
            env.creator_common_name().as_deref(),
            Some("User1@org1.example.com")
        );
        self.seen.borrow_mut().push((
            ctx.stage,
            env.creator_msp_id.to_string(),
            env.header_type(),
            env.data_len(),
        ));
        if env.data_len() > 100 {
            return Err(Rejection::new(Status::ServiceUnavailable, "too big for me"));
        }
        Ok(())
    }
}

#[test]
fn policy_runs_after_fabric_filters_and_on_revalidation() {
    use crate::extension::Stage;
    let genesis = read(GENESIS);
    let mut channel = Channel::open_with_policy(
        NativeCrypto,
        SmallOnly::default(),
        &genesis,
        &encoded_header(&genesis),
    )
    .unwrap();
    let t = now();
    let endorser = HeaderType::EndorserTransaction as i32;
    assert!(channel.validate(&message(100, t), t).is_ok());
    let err = channel.validate(&message(101, t), t).unwrap_err();
    assert_eq!(
        err,
        Rejection::new(Status::ServiceUnavailable, "too big for me")
    );
    // Refused by Fabric's filters: the policy is not asked.
    let mut bad = fabric_protos::common::Envelope::decode(message(10, t).as_slice()).unwrap();
    bad.signature = testkit::sign(&testkit::user1().key, b"x").into();
    let bad = bad.encode_to_vec();
    assert_eq!(
        channel.validate(&bad, t).unwrap_err().status,
        Status::Forbidden
    );
    // Under the current sequence `order` trusts the verdict; under an older one it
    // asks again, as a revalidation.
    assert_eq!(channel.order(&message(200, t), 0, t).dropped, None);
    let mut config = channel.config().clone();
    config.sequence = 1;
    channel.update_config(config);
    let cut = channel.order(&message(200, t), 0, t);
    assert_eq!(cut.dropped.unwrap().info, "too big for me");
    let org1 = "Org1MSP".to_string();
    assert_eq!(
        *channel.policy().seen.borrow(),
        vec![
            (Stage::Broadcast, org1.clone(), endorser, 100),
            (Stage::Broadcast, org1.clone(), endorser, 101),
            (Stage::Revalidation, org1, endorser, 200),
        ]
    );
}
