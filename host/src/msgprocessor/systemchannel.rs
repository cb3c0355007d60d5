//! Fabric's SystemChannel processor (`msgprocessor/systemchannel.go`): the system
//! channel answers for every channel that does not exist. A normal message for one
//! is NOT_FOUND; a CONFIG_UPDATE for one is a channel creation request. The core
//! turns the request into the new channel's first config. The orderer signs that
//! into a CONFIG envelope of the new channel, wraps it in an ORDERER_TRANSACTION of
//! the system channel, and signs that too. The transaction then passes the system
//! channel's filters and is ordered on the system channel. When its block is written,
//! the registrar starts the new channel from the CONFIG envelope.

use super::{Message, StandardChannel};
use crate::protoutil::channel_header;
use bytes::Bytes;
use fabric_protos::common::{Envelope, HeaderType, Status};
use ordering_core::Rejection;
use prost::Message as _;

/// Fabric's `ErrChannelDoesNotExist` text (NOT_FOUND on Broadcast).
pub const ERR_CHANNEL_DOES_NOT_EXIST: &str = "channel does not exist";

/// What the system channel needs of the registrar (Fabric's `ChainCreator`).
pub trait ChainCreator: Send + Sync {
    /// How many channels this orderer has, the system channel included.
    fn channels_count(&self) -> u64;
}

impl StandardChannel {
    /// Whether `envelope` (encoded) names this channel.
    pub(super) fn is_own(&self, envelope: &[u8]) -> bool {
        Envelope::decode(envelope)
            .ok()
            .and_then(|e| channel_header(&e).ok())
            .is_some_and(|chdr| chdr.channel_id == self.channel_id)
    }

    /// A message for a channel that does not exist (Fabric's SystemChannel
    /// `ProcessNormalMsg` and `ProcessConfigUpdateMsg`).
    pub(super) fn for_other_channel(
        &self,
        creator: &dyn ChainCreator,
        header_type: i32,
        raw: Bytes,
        now: u64,
    ) -> Result<Message, Rejection> {
        if header_type != HeaderType::ConfigUpdate as i32 {
            return Err(Rejection::new(Status::NotFound, ERR_CHANNEL_DOES_NOT_EXIST));
        }
        let (envelope, config_seq) = self.create_channel(creator, &raw, now)?;
        Ok(Message::Config {
            envelope,
            update: raw,
            config_seq,
        })
    }

    /// The ORDERER_TRANSACTION that creates the channel `request` asks for, filtered
    /// by the system channel, and the system config sequence it was made under.
    pub(super) fn create_channel(
        &self,
        creator: &dyn ChainCreator,
        request: &[u8],
        now: u64,
    ) -> Result<(Bytes, u64), Rejection> {
        let config = self.in_core(|c| c.propose_channel_creation(request, now))?;
        // The core checked the request names a channel; its header says which.
        let new_channel = Envelope::decode(request)
            .ok()
            .and_then(|e| channel_header(&e).ok())
            .map(|chdr| chdr.channel_id)
            .unwrap_or_default();
        let config_tx =
            self.signer
                .orderer_envelope(HeaderType::Config, &new_channel, config.into());
        let transaction = self
            .signer
            .orderer_envelope(
                HeaderType::OrdererTransaction,
                &self.channel_id,
                config_tx.encode_to_vec().into(),
            )
            .encode_to_vec();
        let channels = creator.channels_count();
        let verdict =
            self.in_core(|c| c.validate_orderer_transaction(&transaction, now, channels))?;
        tracing::info!(
            channel = new_channel,
            system_channel = self.channel_id,
            "channel creation request accepted"
        );
        Ok((transaction.into(), verdict.config_seq))
    }
}
