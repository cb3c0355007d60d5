//! One channel of the ordering core: its config, Broadcast filters, block cutter and
//! block builder, as the host's chain task (Fabric's solo/etcdraft `Chain`) drives them.
//!
//! The host calls [`Channel::validate`] from Broadcast, [`Channel::order`] from the chain
//! task for each accepted envelope (in order), and [`Channel::cut`] when its batch timer
//! ([`Channel::batch_timeout_ms`]) fires. Every block comes back built (header and data);
//! the host adds metadata, signs and writes it.

use bytes::Bytes;
use fabric_protos::common::{
    BlockHeader, ChannelHeader, ConfigEnvelope, Envelope, HeaderType, Payload,
};
use prost::Message;

use crate::blockbuilder::{BlockBuilder, BuiltBlock, OrderedEnvelope, marshal_envelope};
use crate::blockcutter::{BlockCutter, CutterLimits};
use crate::config::ChannelConfig;
use crate::configtx;
use crate::crypto::Crypto;
use crate::extension::{NoPolicy, Policy, PolicyContext, Stage};
use crate::filters::{self, Verdict};
use crate::rejection::Rejection;
use crate::systemchannel;

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
        Ok(encode_config_envelope(proposed, envelope))
    }

    /// On a system channel: the first `ConfigEnvelope` of the channel a creation
    /// request (a CONFIG_UPDATE for a channel that does not exist) creates, encoded as
    /// [`Channel::propose_config_update`] encodes its result (see
    /// [`systemchannel::propose_channel_creation`]).
    pub fn propose_channel_creation(
        &self,
        envelope: &[u8],
        now_unix_nanos: u64,
    ) -> Result<Vec<u8>, Rejection> {
        let proposed = systemchannel::propose_channel_creation(
            &self.config,
            envelope,
            now_unix_nanos,
            &self.crypto,
        )?;
        Ok(encode_config_envelope(proposed, envelope))
    }

    /// On a system channel: the filters an ORDERER_TRANSACTION the orderer made
    /// passes before it is ordered (see [`systemchannel::validate_orderer_transaction`]).
    pub fn validate_orderer_transaction(
        &self,
        envelope: &[u8],
        channels: u64,
        now_unix_nanos: u64,
    ) -> Result<Verdict, Rejection> {
        systemchannel::validate_orderer_transaction(
            &self.config,
            envelope,
            channels,
            now_unix_nanos,
            &self.crypto,
        )?;
        Ok(Verdict {
            config_seq: self.config.sequence,
            is_config_update: false,
        })
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
        match config_envelope(&envelope) {
            Some((HeaderType::Config, decoded)) => return self.order_config(envelope, decoded),
            Some((_, _)) => return self.order_alone(envelope),
            None => {}
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
        let next = configtx::config_message(&decoded)
            .and_then(|message| {
                configtx::check_next_sequence(&self.config, &message.config)?;
                Ok(message)
            })
            .map_err(|e| e.to_string())
            .and_then(|message| {
                ChannelConfig::from_config(&self.config.channel_id, &message.config, &self.crypto)
                    .map_err(|e| format!("invalid config: {e}"))
            });
        let next = match next {
            Ok(next) => next,
            Err(e) => return self.dropped(Rejection::bad_request(e)),
        };
        let mut cut = self.order_alone(envelope);
        if cut.dropped.is_none()
            && let Some(block) = cut.blocks.last_mut()
        {
            block.is_config = true;
            self.update_config(next);
        }
        cut
    }

    /// Orders an ORDERER_TRANSACTION (a channel creation on the system channel) as
    /// Fabric's solo chain does: what is pending is cut first, then it goes alone
    /// into a block. That block is not a config block: the system channel's config
    /// does not change.
    fn order_alone(&mut self, envelope: Bytes) -> Cut {
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
        blocks.push(self.builder.build(&[message], &self.crypto));
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

/// The type and decoded envelope when `envelope` is of type CONFIG or
/// ORDERER_TRANSACTION (a block of its own); `None` for every other message,
/// including undecodable ones.
fn config_envelope(envelope: &Bytes) -> Option<(HeaderType, Envelope)> {
    let env = Envelope::decode(envelope.clone()).ok()?;
    let payload = Payload::decode(env.payload.clone()).ok()?;
    let chdr = ChannelHeader::decode(payload.header?.channel_header).ok()?;
    match HeaderType::try_from(chdr.r#type) {
        Ok(t @ (HeaderType::Config | HeaderType::OrdererTransaction)) => Some((t, env)),
        _ => None,
    }
}

/// A proposed `ConfigEnvelope` encoded with `last_update` as the envelope received
/// (Fabric re-marshals it; for a canonical envelope that is the same bytes).
fn encode_config_envelope(proposed: ConfigEnvelope, envelope: &[u8]) -> Vec<u8> {
    let config = proposed.config.unwrap_or_default();
    let last_update = match marshal_envelope(Bytes::copy_from_slice(envelope)) {
        Ok(m) => m.data().clone(),
        Err(_) => Bytes::from(proposed.last_update.unwrap_or_default().encode_to_vec()),
    };
    let mut out = Vec::with_capacity(config.encoded_len() + last_update.len() + 16);
    prost::encoding::message::encode(1, &config, &mut out);
    prost::encoding::bytes::encode(2, &last_update, &mut out);
    out
}

#[cfg(test)]
mod tests;
