//! `AtomicBroadcast.Broadcast`: one response per envelope, in order; the stream ends
//! after the first non-SUCCESS answer, as Fabric's broadcast handler does. SUCCESS
//! means validated and handed to consensus, not yet committed.

use crate::chain::{Ordered, now_unix_nanos};
use crate::component::{CoreChannel, CoreFault};
use crate::registrar::{ChainSupport, Registrar};
use bytes::Bytes;
use fabric_protos::common::{ChannelHeader, Envelope, HeaderType, Payload, Status};
use fabric_protos::orderer::BroadcastResponse;
use ordering_core::Rejection;
use prost::Message;
use std::sync::Arc;
use tokio::sync::mpsc;
use tonic::Streaming;

pub type Responses = mpsc::Sender<Result<BroadcastResponse, tonic::Status>>;

pub async fn handle(
    registrar: Arc<Registrar>,
    mut inbound: Streaming<Envelope>,
    responses: Responses,
) {
    loop {
        let envelope = match inbound.message().await {
            Ok(Some(envelope)) => envelope,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!("broadcast stream ended: {e}");
                return;
            }
        };
        let response = match process(&registrar, envelope).await {
            Ok(()) => BroadcastResponse {
                status: Status::Success as i32,
                info: String::new(),
            },
            Err(rejection) => {
                tracing::warn!("rejecting broadcast: {rejection}");
                BroadcastResponse {
                    status: rejection.status as i32,
                    info: rejection.info,
                }
            }
        };
        let success = response.status == Status::Success as i32;
        if responses.send(Ok(response)).await.is_err() || !success {
            return;
        }
    }
}

/// Validates one envelope and hands it to consensus: SUCCESS, or the rejection.
pub async fn process(registrar: &Registrar, envelope: Envelope) -> Result<(), Rejection> {
    let chdr = channel_header(&envelope)
        .map_err(|e| Rejection::bad_request(format!("could not determine channel ID: {e}")))?;
    // Without a system channel, Fabric v2.5 answers an unknown channel this way.
    let support = registrar.get(&chdr.channel_id).ok_or_else(|| {
        Rejection::bad_request("channel creation request not allowed because the orderer system channel is not defined")
    })?;
    if matches!(
        HeaderType::try_from(chdr.r#type),
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
    let max = support.validators.absolute_max_bytes();
    if size > u64::from(max) {
        return Err(Rejection::bad_request(format!(
            "message payload is {size} bytes and exceeds maximum allowed {max} bytes"
        )));
    }

    let raw = Bytes::from(envelope.encode_to_vec());
    let now = now_unix_nanos();
    let verdict = in_core(&support, |c| c.validate(&raw, now))?;
    let ordered = if verdict.is_config_update {
        config_message(&support, &chdr.channel_id, raw, verdict.config_seq, now)?
    } else {
        Ordered {
            envelope: raw,
            config_seq: verdict.config_seq,
            update: None,
        }
    };
    support
        .chain
        .order(ordered)
        .await
        .map_err(|e| Rejection::new(Status::ServiceUnavailable, e))
}

/// Fabric's ProcessConfigUpdateMsg: the core checks the update against the config
/// and policies and returns the new config; the orderer signs the CONFIG envelope
/// carrying it, which passes the filters again before it is ordered.
fn config_message(
    support: &ChainSupport,
    channel_id: &str,
    update: Bytes,
    config_seq: u64,
    now: u64,
) -> Result<Ordered, Rejection> {
    let config = in_core(support, |c| c.propose_config_update(&update, now))?;
    let envelope = support
        .signer
        .orderer_envelope(HeaderType::Config, channel_id, config.into())
        .encode_to_vec();
    in_core(support, |c| c.validate_config(&envelope, now))?;
    Ok(Ordered {
        envelope: envelope.into(),
        config_seq,
        update: Some(update),
    })
}

/// Runs a call on one of the channel's validator instances of the core.
fn in_core<R>(
    support: &ChainSupport,
    f: impl FnOnce(&mut CoreChannel) -> Result<R, Rejection>,
) -> Result<R, Rejection> {
    tokio::task::block_in_place(|| support.validators.with(f)).map_err(|e| {
        match e.downcast_ref::<CoreFault>() {
            // Opening an instance faulted (trap, deadline, memory limit).
            Some(fault) => fault.to_rejection(),
            None => Rejection::new(
                Status::ServiceUnavailable,
                format!("ordering core unavailable: {e:#}"),
            ),
        }
    })?
}

/// The channel header, with Fabric's texts for what is missing (protoutil.ChannelHeader).
pub fn channel_header(envelope: &Envelope) -> Result<ChannelHeader, String> {
    let payload = Payload::decode(envelope.payload.clone())
        .map_err(|e| format!("error unmarshalling Payload: {e}"))?;
    let header = payload.header.ok_or("header not set")?;
    if header.channel_header.is_empty() {
        return Err("channel header not set".into());
    }
    ChannelHeader::decode(header.channel_header)
        .map_err(|e| format!("error unmarshalling channel header: {e}"))
}
