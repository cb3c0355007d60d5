//! `AtomicBroadcast.Broadcast`: one response per envelope, in order; the stream ends
//! after the first non-SUCCESS answer, as Fabric's broadcast handler does. SUCCESS
//! means validated and handed to consensus, not yet committed.

use crate::consensus::ChainError;
use crate::msgprocessor::Message;
use crate::multichannel::Registrar;
use crate::operations::metrics::BroadcastTracker;
use crate::protoutil::{channel_header, now_unix_nanos};
use fabric_protos::common::{Envelope, Status};
use fabric_protos::orderer::BroadcastResponse;
use ordering_core::Rejection;
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
            // As Fabric's handler: the failed Recv's error ends the call.
            Err(e) => {
                let e = crate::comm::recv_error(e);
                tracing::debug!("broadcast stream ended: {e}");
                let _ = responses.send(Err(e)).await;
                return;
            }
        };
        let response = match process(&registrar, envelope).await {
            Ok(()) => BroadcastResponse {
                status: Status::Success as i32,
                info: String::new(),
            },
            // Unavailability (a ledger that cannot be written, no Raft leader) is
            // logged once where it starts, not once per envelope refused.
            Err(rejection) if rejection.status == Status::ServiceUnavailable => {
                tracing::debug!("rejecting broadcast: {rejection}");
                BroadcastResponse {
                    status: rejection.status as i32,
                    info: rejection.info,
                }
            }
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
/// Recorded in Fabric's broadcast metrics.
pub async fn process(registrar: &Registrar, envelope: Envelope) -> Result<(), Rejection> {
    let mut tracker = BroadcastTracker::default();
    let result = process_tracked(registrar, envelope, &mut tracker).await;
    tracker.record(
        result
            .as_ref()
            .map_or_else(|r| r.status as i32, |()| Status::Success as i32),
    );
    result
}

async fn process_tracked(
    registrar: &Registrar,
    envelope: Envelope,
    tracker: &mut BroadcastTracker,
) -> Result<(), Rejection> {
    let chdr = channel_header(&envelope)
        .map_err(|e| Rejection::bad_request(format!("could not determine channel ID: {e}")))?;
    tracker.header(&chdr);
    // Without a system channel, Fabric v2.5 answers an unknown channel this way.
    let support = registrar.broadcast_support(&chdr.channel_id).ok_or_else(|| {
        Rejection::bad_request("channel creation request not allowed because the orderer system channel is not defined")
    })?;
    // Blocks already cut wait in memory for the disk; taking more would only grow them.
    if let Some(why) = support.ledger.write_failure() {
        return Err(Rejection::new(
            Status::ServiceUnavailable,
            format!(
                "the ledger of channel {} cannot be written ({why}); the orderer retries, try again later",
                support.channel_id
            ),
        ));
    }
    let now = now_unix_nanos();
    // On this task, not a blocking thread: a validation is tens of µs, and handing it
    // to another thread costs more than it saves.
    let message = support.processor.process(&chdr, &envelope, now)?;
    tracker.validated();
    let accepted = message.accepted().clone();
    let ordered = match message {
        Message::Normal {
            envelope,
            config_seq,
        } => support.chain.order(envelope, config_seq).await,
        Message::Config {
            envelope,
            update,
            config_seq,
        } => support.chain.configure(envelope, update, config_seq).await,
    };
    ordered.map_err(|e| {
        let status = match e {
            ChainError::Invalid(_) => Status::BadRequest,
            _ => Status::ServiceUnavailable,
        };
        Rejection::new(status, e.to_string())
    })?;
    support.recent.push(accepted, now);
    // Validated and ordered without waiting on anything: count it against the task's
    // budget, so a stream that always has a message ready still lets others run.
    tokio::task::coop::consume_budget().await;
    Ok(())
}
