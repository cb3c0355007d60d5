//! `AtomicBroadcast.Broadcast`: one response per envelope, in order; the stream ends
//! after the first non-SUCCESS answer, as Fabric's broadcast handler does. SUCCESS
//! means validated and handed to consensus, not yet committed.

use crate::chain::{Ordered, now_unix_nanos};
use crate::registrar::Registrar;
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

async fn process(registrar: &Registrar, envelope: Envelope) -> Result<(), Rejection> {
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

    let raw = bytes::Bytes::from(envelope.encode_to_vec());
    let now = now_unix_nanos();
    let verdict =
        tokio::task::block_in_place(|| support.validators.with(|core| core.validate(&raw, now)))
            .map_err(|e| {
            Rejection::new(
                Status::ServiceUnavailable,
                format!("ordering core unavailable: {e:#}"),
            )
        })??;
    if verdict.is_config_update {
        return Err(Rejection::bad_request(
            "config updates are not supported by this orderer yet",
        ));
    }
    support
        .chain
        .order(Ordered {
            envelope: raw,
            config_seq: verdict.config_seq,
        })
        .await
        .map_err(|e| Rejection::new(Status::ServiceUnavailable, e))
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
