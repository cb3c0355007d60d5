//! One channel of the ordering core: its config, Broadcast filters, block cutter and
//! block builder, as the host's chain task (Fabric's solo/etcdraft `Chain`) drives them.
//!
//! The host calls [`Channel::validate`] from Broadcast, [`Channel::order`] from the chain
//! task for each accepted envelope (in order), and [`Channel::cut`] when its batch timer
//! ([`Channel::batch_timeout_ms`]) fires. Every block comes back built (header and data);
//! the host adds metadata, signs and writes it.

use bytes::Bytes;
use fabric_protos::common::{BlockHeader, ChannelHeader, Envelope, HeaderType, Payload};
use prost::Message;

use crate::blockbuilder::{BlockBuilder, BuiltBlock, OrderedEnvelope, marshal_envelope};
use crate::blockcutter::{BlockCutter, CutterLimits};
use crate::config::ChannelConfig;
use crate::configtx;
use crate::crypto::Crypto;
use crate::extension::{NoPolicy, Policy, PolicyContext, Stage};
use crate::filters::{self, Verdict};
use crate::rejection::Rejection;

/// What one [`Channel::order`] call produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// The blocks cut, in chain order (zero, one or two).
    pub blocks: Vec<BuiltBlock>,
    /// Whether messages are still pending (the host keeps its batch timer running).
    pub pending: bool,
    /// Why the message was dropped instead of ordered, if it was: it failed validation
    /// again under a newer config, or it is not a decodable envelope. Not part of the
    /// WIT `cut` record; for native callers and tests.
    pub dropped: Option<Rejection>,
}

/// One channel: crypto, config, the cutter's pending batch and the chain position,
/// and the operator's filter policy (see [`crate::extension`]; none by default).
pub struct Channel<C: Crypto, P = NoPolicy> {
    crypto: C,
    config: ChannelConfig,
    cutter: BlockCutter<OrderedEnvelope>,
    builder: BlockBuilder,
    policy: P,
}

impl<C: Crypto> Channel<C, NoPolicy> {
    /// Opens a channel from its latest config block and the header of its tip block
    /// (an encoded `common.BlockHeader`): the next block is `tip.number + 1`, linked to
    /// the tip's header hash. Errors are BAD_REQUEST.
    pub fn open(crypto: C, config_block: &[u8], tip_header: &[u8]) -> Result<Self, Rejection> {
        Self::open_with_policy(crypto, NoPolicy, config_block, tip_header)
    }

    /// A channel from an already parsed config, building the block after `tip`.
    pub fn with_config(crypto: C, config: ChannelConfig, tip: &BlockHeader) -> Self {
        Self::with_config_and_policy(crypto, NoPolicy, config, tip)
    }
}

impl<C: Crypto, P: Policy> Channel<C, P> {
    /// [`Channel::open`] with an operator filter policy applied after Fabric's filters.
    pub fn open_with_policy(
        crypto: C,
        policy: P,
        config_block: &[u8],
        tip_header: &[u8],
    ) -> Result<Self, Rejection> {
        let config = ChannelConfig::from_config_block(config_block, &crypto)
            .map_err(|e| Rejection::bad_request(format!("invalid config block: {e}")))?;
        let tip = BlockHeader::decode(tip_header)
            .map_err(|e| Rejection::bad_request(format!("invalid tip header: {e}")))?;
        Ok(Self::with_config_and_policy(crypto, policy, config, &tip))
    }

    /// [`Channel::with_config`] with an operator filter policy.
    pub fn with_config_and_policy(
        crypto: C,
        policy: P,
        config: ChannelConfig,
        tip: &BlockHeader,
    ) -> Self {
        let builder = BlockBuilder::after(tip, &crypto);
        let cutter = BlockCutter::new(CutterLimits::from(config.batch_size));
        Channel {
            crypto,
            config,
            cutter,
            builder,
            policy,
        }
    }

    /// The operator's filter policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The config in force.
    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// Puts a new config in force (after a config block): it applies from the next
    /// message on; the pending batch is kept.
    pub fn update_config(&mut self, config: ChannelConfig) {
        self.cutter
            .set_limits(CutterLimits::from(config.batch_size));
        self.config = config;
    }

    /// The channel's BatchTimeout, for the host's batch timer.
    pub fn batch_timeout_ms(&self) -> u64 {
        self.config.batch_timeout_ms
    }

    /// The sequence of the config in force.
    pub fn config_sequence(&self) -> u64 {
        self.config.sequence
    }

    /// The next config from a CONFIG_UPDATE envelope that passed [`Channel::validate`]
    /// (see [`configtx::propose_config_update`]): an encoded `common.ConfigEnvelope`
    /// whose `last_update` is the envelope as Fabric re-marshals it (the bytes
    /// received, for a canonical envelope). The host wraps it in a CONFIG envelope
    /// signed by the orderer, checks it with [`Channel::validate_config`] and orders it.
    pub fn propose_config_update(
        &self,
        envelope: &[u8],
        now_unix_nanos: u64,
    ) -> Result<Vec<u8>, Rejection> {
        let proposed =
            configtx::propose_config_update(&self.config, envelope, now_unix_nanos, &self.crypto)?;
        let config = proposed.config.unwrap_or_default();
        let last_update = match marshal_envelope(Bytes::copy_from_slice(envelope)) {
            Ok(m) => m.data().clone(),
            Err(_) => Bytes::from(proposed.last_update.unwrap_or_default().encode_to_vec()),
        };
        let mut out = Vec::with_capacity(config.encoded_len() + last_update.len() + 16);
        prost::encoding::message::encode(1, &config, &mut out);
        prost::encoding::bytes::encode(2, &last_update, &mut out);
        Ok(out)
    }

    /// Checks a CONFIG envelope signed by the orderer before it is ordered (see
    /// [`configtx::validate_config`]); the verdict carries the current sequence.
    pub fn validate_config(
        &self,
        envelope: &[u8],
        now_unix_nanos: u64,
    ) -> Result<Verdict, Rejection> {
        configtx::validate_config(&self.config, envelope, now_unix_nanos, &self.crypto)?;
        Ok(Verdict {
            config_seq: self.config.sequence,
            is_config_update: false,
        })
    }

    /// The number the next block will get.
    pub fn next_block_number(&self) -> u64 {
        self.builder.next_number()
    }

    /// The header hash of the last block built (or of the tip given to `open`).
    pub fn previous_hash(&self) -> &[u8] {
        self.builder.previous_hash()
    }

    /// Whether messages are pending in the cutter.
    pub fn is_pending(&self) -> bool {
        self.cutter.is_pending()
    }

    /// The envelopes pending in the cutter, in order, as they will go into the block
    /// (Fabric's re-marshalled bytes). Ordering them again, in this order, in another
    /// instance opened at the same tip rebuilds the same pending batch (hot swap).
    pub fn pending_envelopes(&self) -> Vec<Vec<u8>> {
        self.cutter
            .pending()
            .iter()
            .map(|m| m.data().to_vec())
            .collect()
    }

    /// Fabric's Broadcast filters for a normal message (see [`filters::validate`]),
    /// then the operator's policy.
    pub fn validate(&self, envelope: &[u8], now_unix_nanos: u64) -> Result<Verdict, Rejection> {
        self.validate_bytes(Bytes::copy_from_slice(envelope), now_unix_nanos)
    }

    /// [`Channel::validate`] taking ownership of the bytes, which the decoded message
    /// then shares instead of copying its fields.
    pub fn validate_bytes(
        &self,
        envelope: Bytes,
        now_unix_nanos: u64,
    ) -> Result<Verdict, Rejection> {
        self.validate_at(Stage::Broadcast, envelope, now_unix_nanos)
    }

    fn validate_at(
        &self,
        stage: Stage,
        envelope: Bytes,
        now_unix_nanos: u64,
    ) -> Result<Verdict, Rejection> {
        let accepted =
            filters::validate_accepted_bytes(&self.config, envelope, now_unix_nanos, &self.crypto)?;
        let ctx = PolicyContext {
            config: &self.config,
            stage,
        };
        self.policy.check(&ctx, &accepted.view(), now_unix_nanos)?;
        Ok(accepted.verdict)
    }

    /// Deliver access control (see [`filters::authorize_deliver`]).
    pub fn authorize_deliver(
        &self,
        envelope: &[u8],
        now_unix_nanos: u64,
    ) -> Result<u64, Rejection> {
        filters::authorize_deliver(&self.config, envelope, now_unix_nanos, &self.crypto)
    }

    /// Orders one envelope that was validated under config sequence `config_seq`:
    /// revalidates it first if the config changed since (dropping it if it now fails,
    /// as Fabric's chains do), then hands it to the cutter and builds every batch cut.
    pub fn order(&mut self, envelope: &[u8], config_seq: u64, now_unix_nanos: u64) -> Cut {
        self.order_bytes(Bytes::copy_from_slice(envelope), config_seq, now_unix_nanos)
    }

    /// [`Channel::order`] taking ownership of the bytes, which the block then shares.
    ///
    /// A CONFIG envelope (see `order_config`) is not revalidated: its
    /// config must be at the current sequence + 1, which one built under an older
    /// config never is.
    pub fn order_bytes(&mut self, envelope: Bytes, config_seq: u64, now_unix_nanos: u64) -> Cut {
        if let Some(decoded) = config_envelope(&envelope) {
            return self.order_config(envelope, decoded);
        }
        if config_seq < self.config.sequence
            && let Err(rejection) =
                self.validate_at(Stage::Revalidation, envelope.clone(), now_unix_nanos)
        {
            return self.dropped(rejection);
        }
        let message = match marshal_envelope(envelope) {
            Ok(m) => m,
            Err(e) => {
                return self.dropped(Rejection::bad_request(format!(
                    "error unmarshalling Envelope: {e}"
                )));
            }
        };
        let ordered = self.cutter.ordered(message);
        let blocks = ordered
            .batches
            .iter()
            .map(|batch| self.builder.build(batch, &self.crypto))
            .collect();
        Cut {
            blocks,
            pending: ordered.pending,
            dropped: None,
        }
    }

    /// Cuts the pending batch into a block (batch timer expiry), if anything is pending.
    pub fn cut(&mut self) -> Option<BuiltBlock> {
        let batch = self.cutter.cut();
        if batch.is_empty() {
            return None;
        }
        Some(self.builder.build(&batch, &self.crypto))
    }

    /// Orders a CONFIG envelope, as Fabric's solo chain and block writer do: whatever
    /// is pending is cut into a block, then the config envelope goes alone into a
    /// config block, and its config is in force from the next message on. An envelope
    /// whose config is not at the current sequence + 1 or is not a valid channel
    /// config is dropped (Fabric's block writer would panic on it).
    fn order_config(&mut self, envelope: Bytes, decoded: Envelope) -> Cut {
        let next = configtx::config_message(&decoded).and_then(|message| {
            configtx::check_next_sequence(&self.config, &message.config)?;
            ChannelConfig::from_config(&self.config.channel_id, &message.config, &self.crypto)
                .map_err(|e| format!("invalid config: {e}"))
        });
        let next = match next {
            Ok(next) => next,
            Err(e) => return self.dropped(Rejection::bad_request(e)),
        };
        let message = match marshal_envelope(envelope) {
            Ok(m) => m,
            Err(e) => {
                return self.dropped(Rejection::bad_request(format!(
                    "error unmarshalling Envelope: {e}"
                )));
            }
        };
        let mut blocks = Vec::with_capacity(2);
        let pending = self.cutter.cut();
        if !pending.is_empty() {
            blocks.push(self.builder.build(&pending, &self.crypto));
        }
        let mut block = self.builder.build(&[message], &self.crypto);
        block.is_config = true;
        blocks.push(block);
        self.update_config(next);
        Cut {
            blocks,
            pending: false,
            dropped: None,
        }
    }

    fn dropped(&self, rejection: Rejection) -> Cut {
        Cut {
            blocks: Vec::new(),
            pending: self.cutter.is_pending(),
            dropped: Some(rejection),
        }
    }
}

/// The decoded envelope when `envelope` is of type CONFIG; `None` for every other
/// message, including undecodable ones.
fn config_envelope(envelope: &Bytes) -> Option<Envelope> {
    let env = Envelope::decode(envelope.clone()).ok()?;
    let payload = Payload::decode(env.payload.clone()).ok()?;
    let chdr = ChannelHeader::decode(payload.header?.channel_header).ok()?;
    (chdr.r#type == HeaderType::Config as i32).then_some(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blockheader::{header_der, header_hash};
    use crate::config::testkit::{self, block_envelopes, envelope_time_nanos, read};
    use crate::configtx::testkit::{
        CONFIG_BLOCK_1, ORDERER_ADMIN_UPDATE, block_config, config_envelope_of,
        fabric_config_envelope,
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
            hex::decode("935c1299d79afa37b66811cec8d654c6ae6eb547c42ccf66a38e1b489dfdaf22")
                .unwrap();
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
        let seek =
            testkit::user1().envelope("mychannel", HeaderType::DeliverSeekInfo as i32, t, b"");
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
}
