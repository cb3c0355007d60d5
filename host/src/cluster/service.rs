//! The server side of `orderer.Cluster/Step`, as Fabric v2.5's cluster `Service` and
//! `Comm.DispatchConsensus`/`DispatchSubmit`: every request names its channel; the
//! sender is the channel's consenter whose `client_tls_cert` has the public key of the
//! connection's TLS client certificate. A request that cannot be dispatched (unknown
//! channel, no or unknown certificate, a handler error) ends the stream with an
//! error, as Fabric's does.

use super::{Dispatcher, Handler};
use crate::comm::PeerInfo;
use crate::comm::pinned::same_public_key;
use fabric_protos::orderer::cluster_server::Cluster;
use fabric_protos::orderer::step_request::Payload;
use fabric_protos::orderer::{StepRequest, StepResponse};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

pub struct ClusterService {
    pub dispatcher: Arc<dyn Dispatcher>,
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    type StepStream = ReceiverStream<Result<StepResponse, Status>>;

    async fn step(
        &self,
        request: Request<Streaming<StepRequest>>,
    ) -> Result<Response<Self::StepStream>, Status> {
        let peer = request.extensions().get::<PeerInfo>().cloned();
        let mut stream = request.into_inner();
        let dispatcher = self.dispatcher.clone();
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            let from = peer
                .as_ref()
                .map(|p| p.addr.to_string())
                .unwrap_or_default();
            let cert = peer.and_then(|p| p.cert);
            while let Some(request) = stream.next().await {
                let handled = match request {
                    Ok(request) => dispatch(&*dispatcher, cert.as_deref(), request).await,
                    Err(status) => {
                        tracing::debug!("cluster stream from {from} failed: {status}");
                        return;
                    }
                };
                if let Err(problem) = handled {
                    tracing::warn!("cluster message from {from} refused: {problem}");
                    let _ = tx.send(Err(Status::unknown(problem))).await;
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

async fn dispatch(
    dispatcher: &dyn Dispatcher,
    cert: Option<&[u8]>,
    request: StepRequest,
) -> Result<(), String> {
    let channel = match &request.payload {
        Some(Payload::ConsensusRequest(r)) => &r.channel,
        Some(Payload::SubmitRequest(r)) => &r.channel,
        None => return Err("message is neither a Submit nor a Consensus request".into()),
    };
    let handler = dispatcher
        .handler(channel)
        .ok_or_else(|| format!("channel {channel} doesn't exist"))?;
    let sender = sender(&*handler, cert)?;
    match request.payload {
        Some(Payload::ConsensusRequest(r)) => handler.on_consensus(sender, r),
        Some(Payload::SubmitRequest(r)) => handler.on_submit(sender, r).await,
        None => unreachable!("checked above"),
    }
}

/// The Raft ID of the consenter that presented `cert`.
fn sender(handler: &dyn Handler, cert: Option<&[u8]>) -> Result<u64, String> {
    let cert = cert.ok_or("no TLS certificate sent")?;
    handler
        .members()
        .iter()
        .find(|m| same_public_key(cert, &m.client_cert))
        .map(|m| m.id)
        .ok_or_else(|| "certificate extracted from TLS connection isn't authorized".into())
}
