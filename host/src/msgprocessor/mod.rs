//! Fabric's msgprocessor for a standard (application) channel: what Broadcast does
//! with a message before consensus, and what the chain does again when a config
//! changed under it. Written once, used by both.
//!
//! - normal messages: Fabric's filters (empty, size, expiration, signature), run by
//!   the core;
//! - config updates: the filters, then the core checks the update against the config
//!   and policies and returns the new config, which the orderer signs into a CONFIG
//!   envelope that passes the filters again (ProcessConfigUpdateMsg + ProcessConfigMsg);
//! - CONFIG and ORDERER_TRANSACTION envelopes from clients are refused.
//!
//! On the system channel (see [`systemchannel`]) it also takes what no other channel
//! does: a CONFIG_UPDATE for a channel that does not exist is a channel creation.

mod systemchannel;
mod validators;

pub use systemchannel::ChainCreator;
pub use validators::ValidatorPool;

use crate::component::{CoreChannel, OpenError};
use crate::identity::Signer;
use bytes::Bytes;
use fabric_protos::common::{ChannelHeader, Envelope, HeaderType, Status};
use ordering_core::Rejection;
use prost::Message as _;
use std::sync::Arc;

/// A message that passed the channel's processor, ready for consensus.
#[derive(Clone, Debug)]
pub enum Message {
    Normal {
        envelope: Bytes,
        /// The config sequence it was validated under.
        config_seq: u64,
    },
    /// A CONFIG envelope the orderer made and signed from a client's CONFIG_UPDATE.
    Config {
        envelope: Bytes,
        /// The CONFIG_UPDATE it was made from, processed again if another config got
        /// in first.
        update: Bytes,
        config_seq: u64,
    },
}

impl Message {
    /// What the client sent: the envelope, or the config update behind a CONFIG.
    pub fn accepted(&self) -> &Bytes {
        match self {
            Message::Normal { envelope, .. } => envelope,
            Message::Config { update, .. } => update,
        }
    }
}

/// One channel's processor: its validator instances of the core and the orderer's
/// signer (for the CONFIG envelopes it makes); on the system channel, also who
/// counts the channels (Fabric's SystemChannel).
pub struct StandardChannel {
    channel_id: String,
    validators: Arc<ValidatorPool>,
    signer: Arc<Signer>,
    system: Option<Arc<dyn ChainCreator>>,
}

impl StandardChannel {
    pub fn new(channel_id: &str, validators: Arc<ValidatorPool>, signer: Arc<Signer>) -> Self {
        StandardChannel {
            channel_id: channel_id.to_string(),
            validators,
            signer,
            system: None,
        }
    }

    /// The system channel's processor: it also creates channels.
    pub fn system(
        channel_id: &str,
        validators: Arc<ValidatorPool>,
        signer: Arc<Signer>,
        creator: Arc<dyn ChainCreator>,
    ) -> Self {
        StandardChannel {
            system: Some(creator),
            ..Self::new(channel_id, validators, signer)
        }
    }

    pub fn is_system(&self) -> bool {
        self.system.is_some()
    }

    pub fn validators(&self) -> &Arc<ValidatorPool> {
        &self.validators
    }

    /// Broadcast's path for an envelope whose channel header is `chdr`: one of this
    /// channel's, or on the system channel one for a channel that does not exist.
    /// Blocking: calls into the core.
    pub fn process(
        &self,
        chdr: &ChannelHeader,
        envelope: &Envelope,
        now: u64,
    ) -> Result<Message, Rejection> {
        let header_type = chdr.r#type;
        if matches!(
            HeaderType::try_from(header_type),
            Ok(HeaderType::Config | HeaderType::OrdererTransaction)
        ) {
            return Err(Rejection::bad_request(
                "message is of type that cannot be processed directly",
            ));
        }
        // Fabric's MaxBytesRule, answered here (as the core would) before a message
        // too big for the channel enters the core: copied into an instance it could
        // blow the memory limit and count as a fault of the component, so any client
        // could force a rollback.
        let size = envelope.payload.len() as u64 + envelope.signature.len() as u64;
        let max = self.validators.absolute_max_bytes();
        if size > u64::from(max) {
            return Err(Rejection::bad_request(format!(
                "message payload is {size} bytes and exceeds maximum allowed {max} bytes"
            )));
        }
        let raw = Bytes::from(envelope.encode_to_vec());
        if let Some(creator) = &self.system
            && chdr.channel_id != self.channel_id
        {
            return self.for_other_channel(creator.as_ref(), header_type, raw, now);
        }
        let verdict = self.in_core(|c| c.validate(&raw, now))?;
        if !verdict.is_config_update {
            return Ok(Message::Normal {
                envelope: raw,
                config_seq: verdict.config_seq,
            });
        }
        Ok(Message::Config {
            envelope: self.process_config_update(&raw, now)?,
            update: raw,
            config_seq: verdict.config_seq,
        })
    }

    /// A CONFIG_UPDATE (that passed the filters) checked against the config in force:
    /// the CONFIG envelope the orderer signs for it, filtered again. The chain calls
    /// it again for an update validated under an older config, as Fabric's solo does.
    pub fn process_config_update(&self, update: &[u8], now: u64) -> Result<Bytes, Rejection> {
        if let Some(creator) = &self.system
            && !self.is_own(update)
        {
            return self
                .create_channel(creator.as_ref(), update, now)
                .map(|(tx, _)| tx);
        }
        let config = self.in_core(|c| c.propose_config_update(update, now))?;
        let envelope = self
            .signer
            .orderer_envelope(HeaderType::Config, &self.channel_id, config.into())
            .encode_to_vec();
        self.in_core(|c| c.validate_config(&envelope, now))?;
        Ok(envelope.into())
    }

    /// Runs a call on one of the channel's validator instances of the core; a core
    /// that cannot open the channel answers for the message.
    fn in_core<R>(
        &self,
        f: impl FnOnce(&mut CoreChannel) -> Result<R, Rejection>,
    ) -> Result<R, Rejection> {
        self.validators.with(f).map_err(|e| match e {
            OpenError::Fault(fault) => fault.to_rejection(),
            OpenError::Rejected(_) => Rejection::new(
                Status::ServiceUnavailable,
                format!("ordering core unavailable: {e}"),
            ),
        })?
    }
}

#[cfg(test)]
mod tests;
