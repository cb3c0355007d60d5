//! The gRPC server: `orderer.AtomicBroadcast` on the client listener.

use crate::registrar::Registrar;
use crate::{broadcast, deliver};
use fabric_protos::common::Envelope;
use fabric_protos::orderer::atomic_broadcast_server::{AtomicBroadcast, AtomicBroadcastServer};
use fabric_protos::orderer::{BroadcastResponse, EncodedDeliverResponse};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Fabric's default gRPC message limit (General.MaxRecvMsgSize / MaxSendMsgSize).
pub const MAX_MESSAGE_BYTES: usize = 100 * 1024 * 1024;

struct Service {
    registrar: Arc<Registrar>,
}

#[tonic::async_trait]
impl AtomicBroadcast for Service {
    type BroadcastStream = ReceiverStream<Result<BroadcastResponse, Status>>;
    type DeliverStream = ReceiverStream<Result<EncodedDeliverResponse, Status>>;

    async fn broadcast(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::BroadcastStream>, Status> {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(broadcast::handle(
            self.registrar.clone(),
            request.into_inner(),
            tx,
        ));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn deliver(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(deliver::handle(
            self.registrar.clone(),
            request.into_inner(),
            tx,
        ));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Serves until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registrar: Arc<Registrar>,
) -> anyhow::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!("serving orderer.AtomicBroadcast on {addr}");
    let service = AtomicBroadcastServer::new(Service { registrar })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await?;
    Ok(())
}
