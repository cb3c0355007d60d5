//! Operator filter policies: extra Broadcast rules, written as a small crate that uses
//! this one as a library and builds into a component of the same WIT world
//! (`wit/orderer.wit`), which the host loads in place of the built-in core.
//!
//! (Not to be confused with [`crate::policies`], Fabric's signature policies.)
//!
//! A [`Policy`] runs after Fabric's own filters have accepted a message, in
//! [`Channel::validate`](crate::channel::Channel::validate) and again when `order`
//! revalidates a message validated under an older config ([`Stage::Revalidation`]).
//! It sees the channel's config and the decoded message ([`EnvelopeView`]) and may
//! refuse it with any Fabric status. It must stay deterministic: no clock (time is the
//! `now_unix_nanos` the host passes in), no randomness, no I/O.
//!
//! ```ignore
//! use ordering_core::{EnvelopeView, Policy, PolicyContext, Rejection};
//!
//! #[derive(Default)]
//! pub struct NoEmptyData;
//!
//! impl Policy for NoEmptyData {
//!     const NAME: &'static str = "no-empty-data";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!
//!     fn check(&self, _: &PolicyContext<'_>, env: &EnvelopeView<'_>, _now: u64) -> Result<(), Rejection> {
//!         if env.data_len() == 0 {
//!             return Err(Rejection::bad_request("empty transactions are not accepted here"));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! // The component: the whole core with this policy plugged in.
//! ordering_core::export_core!(NoEmptyData);
//! ```
//!
//! A policy is created with `Default` once per channel instance (each `open`), so
//! state (a rate limiter's buckets) is per channel and per instance; `check` takes
//! `&self`, so state lives in a `Cell`/`RefCell`.

use fabric_protos::common::{ChannelHeader, Envelope, HeaderType, Payload};

use crate::config::ChannelConfig;
use crate::rejection::Rejection;

/// Where a check runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Broadcast (`validate`): the message's first check.
    Broadcast,
    /// `order` checking again a message validated under an older config sequence. A
    /// stateful policy (a rate limiter) should not count the message a second time.
    Revalidation,
}

/// The channel a policy checks for.
#[derive(Clone, Copy, Debug)]
pub struct PolicyContext<'a> {
    /// The config in force (batch size, MSPs, policies, orderer values, ...).
    pub config: &'a ChannelConfig,
    pub stage: Stage,
}

impl PolicyContext<'_> {
    pub fn channel_id(&self) -> &str {
        &self.config.channel_id
    }

    /// The channel config's sequence.
    pub fn config_sequence(&self) -> u64 {
        self.config.sequence
    }
}

/// A message that passed Fabric's filters, decoded once.
#[derive(Clone, Copy, Debug)]
pub struct EnvelopeView<'a> {
    pub envelope: &'a Envelope,
    pub payload: &'a Payload,
    pub channel_header: &'a ChannelHeader,
    /// The creator as sent: a serialized `msp.SerializedIdentity`.
    pub creator: &'a [u8],
    /// The creator's MSP id.
    pub creator_msp_id: &'a str,
    /// The creator's certificate, DER (`None` if it could not be read; Fabric's
    /// signature filter has accepted the creator, so in practice it is there).
    pub creator_cert_der: Option<&'a [u8]>,
    /// A CONFIG_UPDATE (Fabric's filters ran as for a config update).
    pub is_config_update: bool,
}

impl EnvelopeView<'_> {
    /// `common.HeaderType` of the channel header, as an integer.
    pub fn header_type(&self) -> i32 {
        self.channel_header.r#type
    }

    /// The header type, `None` for a value Fabric does not define.
    pub fn header_type_enum(&self) -> Option<HeaderType> {
        HeaderType::try_from(self.channel_header.r#type).ok()
    }

    /// Fabric's message size: `len(payload) + len(signature)` (what `AbsoluteMaxBytes`
    /// and the block cutter count).
    pub fn size_bytes(&self) -> u64 {
        self.envelope.payload.len() as u64 + self.envelope.signature.len() as u64
    }

    /// The length of the payload's `data` (the transaction itself).
    pub fn data_len(&self) -> usize {
        self.payload.data.len()
    }

    pub fn tx_id(&self) -> &str {
        &self.channel_header.tx_id
    }

    /// The creator certificate's subject common name (parsed on each call: use it for
    /// messages, not on the hot path).
    pub fn creator_common_name(&self) -> Option<String> {
        let der = self.creator_cert_der?;
        crate::msp::ParsedCert::from_der(der)
            .ok()
            .map(|c| c.common_name().to_string())
    }
}

/// Extra filter rules: see the module docs.
pub trait Policy: 'static {
    /// The name the component reports (`describe`).
    const NAME: &'static str;
    /// The version the component reports (`describe`).
    const VERSION: &'static str;

    /// Accepts (`Ok`) or refuses a message Fabric's filters accepted. The rejection's
    /// status and info go back to the Broadcast client.
    fn check(
        &self,
        ctx: &PolicyContext<'_>,
        envelope: &EnvelopeView<'_>,
        now_unix_nanos: u64,
    ) -> Result<(), Rejection>;
}

/// No extra rules: Fabric's filters only. The built-in core.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPolicy;

impl Policy for NoPolicy {
    const NAME: &'static str = "ordering-core";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn check(&self, _: &PolicyContext<'_>, _: &EnvelopeView<'_>, _: u64) -> Result<(), Rejection> {
        Ok(())
    }
}
