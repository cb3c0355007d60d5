//! The gRPC server: `orderer.AtomicBroadcast` on the client listener, and
//! `orderer.Cluster` (the Raft cluster's messages) beside it, as Fabric serves it when
//! no separate cluster listener is configured.

mod deliver_route;
mod grpcmetrics;
mod observe;

pub use observe::{RegistrarHealth, RegistrarRoots, refresh_gauges};

use crate::broadcast;
use crate::comm::{Listener, ServerLimits};
use crate::multichannel::Registrar;
use fabric_protos::common::Envelope;
use fabric_protos::orderer::BroadcastResponse;
use fabric_protos::orderer::atomic_broadcast_server::{AtomicBroadcast, AtomicBroadcastServer};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tonic::{Request, Response, Status, Streaming};

struct Broadcast {
    registrar: Arc<Registrar>,
}

#[tonic::async_trait]
impl AtomicBroadcast for Broadcast {
    type BroadcastStream = ReceiverStream<Result<BroadcastResponse, Status>>;

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
}

/// `orderer.AtomicBroadcast`: Deliver by [`deliver_route`], everything else by the
/// generated service (Broadcast, and tonic's UNIMPLEMENTED for unknown methods).
#[derive(Clone)]
struct Routes {
    generated: AtomicBroadcastServer<Broadcast>,
    registrar: Arc<Registrar>,
    /// TLS with client certificates required: Deliver checks the TLS binding.
    mutual_tls: bool,
    limits: ServerLimits,
}

impl tonic::server::NamedService for Routes {
    const NAME: &'static str = "orderer.AtomicBroadcast";
}

impl Service<http::Request<Body>> for Routes {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let (request, call) = grpcmetrics::track_request(request);
        if request.uri().path() == deliver_route::PATH {
            let (registrar, mutual_tls, limits) =
                (self.registrar.clone(), self.mutual_tls, self.limits);
            return Box::pin(async move {
                let response = deliver_route::serve(registrar, request, mutual_tls, limits).await;
                Ok(grpcmetrics::track_response(response, call))
            });
        }
        let response = self.generated.call(request);
        Box::pin(async move { Ok(grpcmetrics::track_response(response.await?, call)) })
    }
}

/// Serves until the process ends; `mutual_tls` when `listener` does TLS with client
/// certificates required.
pub async fn serve(
    listener: Listener,
    registrar: Arc<Registrar>,
    mutual_tls: bool,
    limits: ServerLimits,
) -> anyhow::Result<()> {
    let registrar_dispatcher: Arc<dyn crate::cluster::Dispatcher> = registrar.clone();
    let generated = AtomicBroadcastServer::new(Broadcast {
        registrar: registrar.clone(),
    })
    .max_decoding_message_size(limits.max_recv_msg_size)
    .max_encoding_message_size(limits.max_send_msg_size);
    let service = Routes {
        generated,
        registrar,
        mutual_tls,
        limits,
    };
    // Flow-control windows that grow with the connection's bandwidth-delay product,
    // as Go gRPC's BDP estimation does: 64 KiB windows stall a stream of 3 KB
    // envelopes on window updates.
    let cluster = fabric_protos::orderer::cluster_server::ClusterServer::new(
        crate::cluster::service::ClusterService {
            dispatcher: registrar_dispatcher,
        },
    )
    .max_decoding_message_size(limits.max_recv_msg_size)
    .max_encoding_message_size(limits.max_send_msg_size);
    tonic::transport::Server::builder()
        .http2_adaptive_window(Some(true))
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .add_service(service)
        .add_service(cluster)
        .serve_with_incoming(listener.into_stream())
        .await?;
    Ok(())
}
