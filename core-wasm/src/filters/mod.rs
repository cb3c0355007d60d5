//! Fabric's Broadcast processing for a standard channel (`orderer/common/broadcast`,
//! `multichannel.Registrar.BroadcastChannelSupport`, `msgprocessor.StandardChannel`)
//! and the Deliver access check (`common/deliver/acl.go`).
//!
//! Order, as in Fabric: the channel header is read (registrar), the message is
//! classified by header type, then the standard channel filters run, the first
//! failure deciding: empty, max bytes, expiration, signature (`/Channel/Writers`).
//!
//! The signature filter evaluates the channel's own policies (see
//! [`crate::policies`]): `/Channel/Writers` for Broadcast and `/Channel/Readers` for
//! Deliver, `/Channel/Orderer/Writers` and `/Channel/Orderer/Readers` in maintenance
//! mode (Fabric's `SigFilter`). The signed data is the envelope's payload, its
//! signature and the creator of its signature header.

use bytes::Bytes;
use fabric_protos::common::{
    ChannelHeader, Envelope, HeaderType, Payload, SignatureHeader, Status,
};
use prost::Message;

use crate::config::ChannelConfig;
use crate::crypto::Crypto;
use crate::msp;
use crate::policies::SignedData;
use crate::rejection::Rejection;

/// An accepted Broadcast message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The config sequence it was validated under (revalidate if it changed).
    pub config_seq: u64,
    /// A CONFIG_UPDATE that passed the filters: the host proposes it next
    /// (`Channel::propose_config_update`).
    pub is_config_update: bool,
}

/// `msgprocessor.ErrEmptyMessage` (`orderer/common/msgprocessor/filter.go`).
pub const ERR_EMPTY_MESSAGE: &str = "Message was empty";
/// `msgprocessor.ErrPermissionDenied` (`orderer/common/msgprocessor/msgprocessor.go`).
pub const ERR_PERMISSION_DENIED: &str = "permission denied";
/// `msgprocessor.ErrMaintenanceMode`.
pub const ERR_MAINTENANCE_MODE: &str = "maintenance mode";
/// `orderer/common/msgprocessor/expiration.go`.
pub const ERR_IDENTITY_EXPIRED: &str = "broadcast client identity expired";
/// `multichannel.Registrar.BroadcastChannelSupport` for CONFIG / ORDERER_TRANSACTION.
pub const ERR_CANNOT_PROCESS_DIRECTLY: &str =
    "message is of type that cannot be processed directly";
/// `multichannel.Registrar.BroadcastChannelSupport` for an unknown channel, with no
/// system channel (channel participation).
pub const ERR_NO_SYSTEM_CHANNEL: &str =
    "channel creation request not allowed because the orderer system channel is not defined";

/// `policies.ChannelWriters`.
pub const CHANNEL_WRITERS: &str = "/Channel/Writers";
/// `policies.ChannelOrdererWriters`: the Broadcast policy in maintenance mode.
pub const CHANNEL_ORDERER_WRITERS: &str = "/Channel/Orderer/Writers";
/// `policies.ChannelReaders`.
pub const CHANNEL_READERS: &str = "/Channel/Readers";
/// `policies.ChannelOrdererReaders`: the Deliver policy in maintenance mode.
pub const CHANNEL_ORDERER_READERS: &str = "/Channel/Orderer/Readers";

/// An envelope taken apart once: the envelope, its payload and channel header.
pub struct ParsedEnvelope {
    pub envelope: Envelope,
    pub payload: Payload,
    pub channel_header: ChannelHeader,
}

/// Decodes an envelope and its channel header as Fabric's `protoutil.ChannelHeader`
/// does, with the registrar's "could not determine channel ID" prefix on errors.
/// Any error is BAD_REQUEST.
pub fn parse_envelope(envelope: &[u8]) -> Result<ParsedEnvelope, Rejection> {
    parse_envelope_bytes(Bytes::copy_from_slice(envelope))
}

/// [`parse_envelope`] of a buffer the caller hands over: the `bytes` fields of the
/// envelope, payload and headers are slices of it, not copies (prost decodes a
/// `Bytes` buffer without copying; a `&[u8]` one is copied field by field).
pub fn parse_envelope_bytes(envelope: Bytes) -> Result<ParsedEnvelope, Rejection> {
    let fail = |e: String| Rejection::bad_request(format!("could not determine channel ID: {e}"));
    let envelope = Envelope::decode(envelope)
        .map_err(|e| fail(format!("error unmarshalling Envelope: {e}")))?;
    let payload = Payload::decode(envelope.payload.clone())
        .map_err(|e| fail(format!("error unmarshalling Payload: {e}")))?;
    let Some(header) = payload.header.as_ref() else {
        return Err(fail("header not set".into()));
    };
    if header.channel_header.is_empty() {
        return Err(fail("channel header not set".into()));
    }
    let channel_header = ChannelHeader::decode(header.channel_header.clone()).map_err(|e| {
        fail(format!(
            "error unmarshalling channel header: error unmarshalling ChannelHeader: {e}"
        ))
    })?;
    Ok(ParsedEnvelope {
        envelope,
        payload,
        channel_header,
    })
}

/// The creator of a payload: Fabric's `protoutil.EnvelopeAsSignedData`. An error here
/// is a malformed message (BAD_REQUEST in Fabric).
fn creator(payload: &Payload) -> Result<Bytes, String> {
    let Some(header) = payload.header.as_ref() else {
        return Err("Missing Header".into());
    };
    SignatureHeader::decode(header.signature_header.clone())
        .map(|shdr| shdr.creator)
        .map_err(|e| format!("GetSignatureHeaderFromBytes failed, err {e}"))
}

/// Fabric's `SigFilter.Apply` once the signed data is extracted: the envelope must
/// satisfy `policy` (`maintenance_policy` in maintenance mode), else FORBIDDEN
/// "<policy error>: permission denied". A policy missing from the config is
/// BAD_REQUEST "could not find policy ...", as in Fabric.
fn sig_filter(
    config: &ChannelConfig,
    policy: &str,
    maintenance_policy: &str,
    envelope: &Envelope,
    creator: &[u8],
    identity: Option<&msp::Creator>,
    crypto: &dyn Crypto,
) -> Result<(), Rejection> {
    let name = if config.consensus.maintenance {
        maintenance_policy
    } else {
        policy
    };
    let signed = [SignedData {
        data: &envelope.payload,
        identity: creator,
        signature: &envelope.signature,
    }];
    // The creator as the filters looked it up, not looked up again.
    match config
        .policies
        .evaluate_with_creators(name, &signed, &[identity], &config.msps, crypto)
    {
        None => Err(Rejection::bad_request(format!(
            "could not find policy {name}"
        ))),
        Some(result) => {
            result.map_err(|e| Rejection::forbidden(format!("{e}: {ERR_PERMISSION_DENIED}")))
        }
    }
}

/// Broadcast processing of one envelope for a standard channel; see the module docs.
pub fn validate(
    config: &ChannelConfig,
    envelope: &[u8],
    now_unix_nanos: u64,
    crypto: &dyn Crypto,
) -> Result<Verdict, Rejection> {
    validate_accepted(config, envelope, now_unix_nanos, crypto).map(|a| a.verdict)
}

/// A message Fabric's filters accepted, with what they decoded, for the operator's
/// [`crate::extension::Policy`].
pub struct Accepted {
    pub verdict: Verdict,
    pub parsed: ParsedEnvelope,
    /// The serialized creator identity.
    pub creator: Bytes,
    /// The creator as the MSPs read it (`None` if it could not be read).
    pub identity: Option<msp::Creator>,
}

impl Accepted {
    /// The view a policy checks.
    pub fn view(&self) -> crate::extension::EnvelopeView<'_> {
        crate::extension::EnvelopeView {
            envelope: &self.parsed.envelope,
            payload: &self.parsed.payload,
            channel_header: &self.parsed.channel_header,
            creator: &self.creator,
            creator_msp_id: self.identity.as_ref().map_or("", |id| id.msp_id()),
            creator_cert_der: self.identity.as_ref().map(|id| id.cert_der()),
            is_config_update: self.verdict.is_config_update,
        }
    }
}

/// [`validate`], keeping what the filters decoded.
pub fn validate_accepted(
    config: &ChannelConfig,
    envelope: &[u8],
    now_unix_nanos: u64,
    crypto: &dyn Crypto,
) -> Result<Accepted, Rejection> {
    validate_accepted_bytes(
        config,
        Bytes::copy_from_slice(envelope),
        now_unix_nanos,
        crypto,
    )
}

/// [`validate_accepted`] of a buffer the caller hands over (see
/// [`parse_envelope_bytes`]).
pub fn validate_accepted_bytes(
    config: &ChannelConfig,
    envelope: Bytes,
    now_unix_nanos: u64,
    crypto: &dyn Crypto,
) -> Result<Accepted, Rejection> {
    let parsed = parse_envelope_bytes(envelope)?;
    if parsed.channel_header.channel_id != config.channel_id {
        return Err(Rejection::bad_request(ERR_NO_SYSTEM_CHANNEL));
    }
    let header_type = parsed.channel_header.r#type;
    if header_type == HeaderType::Config as i32
        || header_type == HeaderType::OrdererTransaction as i32
    {
        return Err(Rejection::bad_request(ERR_CANNOT_PROCESS_DIRECTLY));
    }
    if header_type == HeaderType::ConfigUpdate as i32 {
        // StandardChannel.ProcessConfigUpdateMsg: the filters first.
        let (creator, identity) =
            apply_filters(config, &parsed, now_unix_nanos, crypto).map_err(|r| {
                Rejection::new(
                    r.status,
                    format!(
                        "config update for existing channel did not pass initial checks: {}",
                        r.info
                    ),
                )
            })?;
        return Ok(Accepted {
            verdict: Verdict {
                config_seq: config.sequence,
                is_config_update: true,
            },
            parsed,
            creator,
            identity,
        });
    }
    // StandardChannel.ProcessNormalMsg.
    if config.consensus_type_migration() && config.consensus.maintenance {
        return Err(Rejection::new(
            Status::ServiceUnavailable,
            format!("normal transactions are rejected: {ERR_MAINTENANCE_MODE}"),
        ));
    }
    let (creator, identity) = apply_filters(config, &parsed, now_unix_nanos, crypto)?;
    Ok(Accepted {
        verdict: Verdict {
            config_seq: config.sequence,
            is_config_update: false,
        },
        parsed,
        creator,
        identity,
    })
}

/// `msgprocessor.CreateStandardChannelFilters`: empty, size, expiration, signature.
/// Returns the creator (serialized, and as read by the MSPs).
pub(crate) fn apply_filters(
    config: &ChannelConfig,
    parsed: &ParsedEnvelope,
    now_unix_nanos: u64,
    crypto: &dyn Crypto,
) -> Result<(Bytes, Option<msp::Creator>), Rejection> {
    let env = &parsed.envelope;
    // EmptyRejectRule.
    if env.payload.is_empty() {
        return Err(Rejection::bad_request(ERR_EMPTY_MESSAGE));
    }
    // MaxBytesRule.
    let size = env.payload.len() as u64 + env.signature.len() as u64;
    let max = config.batch_size.absolute_max_bytes;
    if size > u64::from(max) {
        return Err(Rejection::bad_request(format!(
            "message payload is {} bytes and exceeds maximum allowed {max} bytes",
            size as u32
        )));
    }
    // The creator, looked up (or parsed) once for the expiration and signature
    // filters.
    let creator = creator(&parsed.payload).map_err(|e| {
        Rejection::bad_request(format!("could not convert message to signedData: {e}"))
    })?;
    let identity = config.msps.creator(&creator);
    // expirationRejectRule: an identity whose certificate cannot be read is not
    // checked here (the signature filter refuses it).
    if config.expiration_check()
        && let Ok(id) = &identity
        && now_unix_nanos >= id.not_after_unix_nanos()
    {
        return Err(Rejection::bad_request(ERR_IDENTITY_EXPIRED));
    }
    // SigFilter: /Channel/Writers (in maintenance mode /Channel/Orderer/Writers).
    sig_filter(
        config,
        CHANNEL_WRITERS,
        CHANNEL_ORDERER_WRITERS,
        env,
        &creator,
        identity.as_ref().ok(),
        crypto,
    )?;
    Ok((creator, identity.ok()))
}

/// Deliver access control (Fabric's `SessionAccessControl`): the creator must not
/// have expired, and the DELIVER_SEEK_INFO envelope must satisfy `/Channel/Readers`
/// (`/Channel/Orderer/Readers` in maintenance mode), else FORBIDDEN. A malformed
/// envelope or signature header is BAD_REQUEST, as in Fabric. The timestamp window
/// and the SeekInfo are the host's job. Returns the creator certificate's NotAfter
/// (unix nanos): the session ends FORBIDDEN once it passes (`u64::MAX` when the
/// creator is not a certificate, Fabric's zero expiry time: no session expiry).
pub fn authorize_deliver(
    config: &ChannelConfig,
    envelope: &[u8],
    now_unix_nanos: u64,
    crypto: &dyn Crypto,
) -> Result<u64, Rejection> {
    let parsed = parse_envelope(envelope)?;
    let creator = creator(&parsed.payload).map_err(Rejection::bad_request)?;
    let identity = config.msps.creator(&creator);
    // SessionAccessControl.Evaluate: expiry first (Fabric's deliver checks it whatever
    // the capabilities), then the policy.
    if let Ok(id) = &identity
        && now_unix_nanos > id.not_after_unix_nanos()
    {
        let ago = now_unix_nanos - id.not_after_unix_nanos();
        return Err(Rejection::forbidden(format!(
            "deliver client identity expired {} before",
            go_duration_string(ago)
        )));
    }
    sig_filter(
        config,
        CHANNEL_READERS,
        CHANNEL_ORDERER_READERS,
        &parsed.envelope,
        &creator,
        identity.as_ref().ok(),
        crypto,
    )?;
    Ok(identity.map_or(u64::MAX, |id| id.not_after_unix_nanos()))
}

/// Go's `time.Duration.String()` for a non-negative duration (e.g. "1h2m3.5s").
pub fn go_duration_string(nanos: u64) -> String {
    fn trim(frac: String) -> String {
        let t = frac.trim_end_matches('0');
        if t.is_empty() {
            String::new()
        } else {
            format!(".{t}")
        }
    }
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!(
            "{}{}µs",
            nanos / 1_000,
            trim(format!("{:03}", nanos % 1_000))
        );
    }
    if nanos < 1_000_000_000 {
        return format!(
            "{}{}ms",
            nanos / 1_000_000,
            trim(format!("{:06}", nanos % 1_000_000))
        );
    }
    let secs = nanos / 1_000_000_000;
    let frac = trim(format!("{:09}", nanos % 1_000_000_000));
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}{frac}s")
    } else if m > 0 {
        format!("{m}m{s}{frac}s")
    } else {
        format!("{s}{frac}s")
    }
}

/// Re-exported for callers that verify other Fabric signatures (low-S enforced).
pub use msp::verify_signature;

#[cfg(test)]
mod tests;
