//! The gRPC server: `orderer.AtomicBroadcast` on the client listener.

mod deliver_route;

use crate::broadcast;
use crate::comm::MAX_MESSAGE_BYTES;
use crate::multichannel::Registrar;
use fabric_protos::common::Envelope;
use fabric_protos::orderer::BroadcastResponse;
use fabric_protos::orderer::atomic_broadcast_server::{AtomicBroadcast, AtomicBroadcastServer};
use std::convert::Infallible;
use std::net::SocketAddr;
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
        if request.uri().path() == deliver_route::PATH {
            let registrar = self.registrar.clone();
            return Box::pin(async move { Ok(deliver_route::serve(registrar, request).await) });
        }
        self.generated.call(request)
    }
}

/// Serves until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registrar: Arc<Registrar>,
) -> anyhow::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!("serving orderer.AtomicBroadcast on {addr}");
    let generated = AtomicBroadcastServer::new(Broadcast {
        registrar: registrar.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let service = Routes {
        generated,
        registrar,
    };
    // Flow-control windows that grow with the connection's bandwidth-delay product,
    // as Go gRPC's BDP estimation does: 64 KiB windows stall a stream of 3 KB
    // envelopes on window updates.
    tonic::transport::Server::builder()
        .http2_adaptive_window(Some(true))
        .add_service(service)
        .serve_with_incoming(incoming(listener))
        .await?;
    Ok(())
}

/// Accepted connections with Nagle's algorithm off (tonic's `tcp_nodelay` applies only
/// to listeners it binds itself): a small Broadcast answer waiting for the client's
/// delayed ACK would otherwise add ~40 ms to its latency.
fn incoming(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|stream| {
        stream.inspect(|s| {
            if let Err(e) = s.set_nodelay(true) {
                tracing::warn!("setting TCP_NODELAY on a client connection: {e}");
            }
        })
    })
}
