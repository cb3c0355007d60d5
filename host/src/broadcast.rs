//! `AtomicBroadcast.Broadcast`: one response per envelope, in order; the stream ends
//! after the first non-SUCCESS answer, as Fabric's broadcast handler does. SUCCESS
//! means validated and handed to consensus, not yet committed.

use crate::msgprocessor::Message;
use crate::multichannel::Registrar;
use crate::operations::metrics::BroadcastTracker;
use crate::protoutil::{channel_header, now_unix_nanos};
use fabric_protos::common::{Envelope, Status};
use fabric_protos::orderer::BroadcastResponse;
use futures::Stream;
use ordering_core::Rejection;
use std::sync::Arc;
use tonic::Streaming;

/// The answers to `inbound`, made as they are polled: the connection's response
/// task reads an envelope, validates and orders it and yields its answer, with no
/// task or queue of its own between the two (a hand-off per envelope costs a
/// wake-up, which at a few thousand envelopes/s is most of an envelope's CPU).
pub fn handle(
    registrar: Arc<Registrar>,
    inbound: Streaming<Envelope>,
) -> impl Stream<Item = Result<BroadcastResponse, tonic::Status>> + Send + 'static {
    futures::stream::unfold(Some((registrar, inbound)), |state| async move {
        let (registrar, mut inbound) = state?;
        let envelope = match inbound.message().await {
            Ok(Some(envelope)) => envelope,
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!("broadcast stream ended: {e}");
                return None;
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
        // After a refusal the stream ends, as Fabric's handler returns.
        let next = (response.status == Status::Success as i32).then_some((registrar, inbound));
        Some((Ok(response), next))
    })
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
    ordered.map_err(|e| Rejection::new(Status::ServiceUnavailable, e.to_string()))?;
    support.recent.push(accepted, now);
    // Validated and ordered without waiting on anything: count it against the task's
    // budget, so a stream that always has a message ready still lets others run.
    tokio::task::coop::consume_budget().await;
    Ok(())
}
