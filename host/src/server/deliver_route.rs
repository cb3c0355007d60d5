//! `orderer.AtomicBroadcast/Deliver` at the HTTP/2 level: the request stream is
//! decoded by tonic as usual, but each block goes out as the ledger holds it, in two
//! DATA frames (gRPC's 5-byte prefix and the field key, then the block's `Bytes`)
//! instead of being copied into tonic's encode buffer, once per Deliver stream. h2
//! hands large `Bytes` to the socket without copying them either.

use crate::comm::{MAX_MESSAGE_BYTES, PeerInfo};
use crate::deliver;
use crate::multichannel::Registrar;
use bytes::{BufMut, Bytes, BytesMut};
use fabric_protos::common::Envelope;
use fabric_protos::orderer::EncodedDeliverResponse;
use futures::StreamExt;
use http_body_util::StreamBody;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::body::Body;
use tonic::codec::{Codec, Streaming};
use tonic::codegen::http::{self, HeaderMap, HeaderValue};
use tonic_prost::ProstCodec;

pub const PATH: &str = "/orderer.AtomicBroadcast/Deliver";

type Frame = http_body::Frame<Bytes>;

/// Answers one Deliver call: the handler runs as a task, its responses become frames.
pub async fn serve(
    registrar: Arc<Registrar>,
    request: http::Request<Body>,
    mutual_tls: bool,
) -> http::Response<Body> {
    let binding = deliver::Binding {
        mutual_tls,
        peer: request.extensions().get::<PeerInfo>().cloned(),
    };
    let decoder = ProstCodec::<EncodedDeliverResponse, Envelope>::default().decoder();
    let requests =
        Streaming::new_request(decoder, request.into_body(), None, Some(MAX_MESSAGE_BYTES));
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(deliver::handle(registrar, requests, tx, binding));
    let frames = ReceiverStream::new(rx)
        .flat_map(|response| futures::stream::iter(data_frames(response)))
        .chain(futures::stream::once(async { Ok(end_of_stream()) }));
    http::Response::builder()
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .body(Body::new(StreamBody::new(frames)))
        .expect("a valid response head")
}

/// One gRPC message: the length prefix and the message's head in one frame, the
/// block's bytes (shared with the ledger's cache and every other stream) in another.
fn data_frames(response: EncodedDeliverResponse) -> Vec<Result<Frame, tonic::Status>> {
    let (head, block) = response.into_parts();
    let mut prefix = BytesMut::with_capacity(5 + head.len());
    prefix.put_u8(0); // not compressed
    prefix.put_u32((head.len() + block.len()) as u32);
    prefix.put_slice(&head);
    let mut frames = vec![Ok(Frame::data(prefix.freeze()))];
    if !block.is_empty() {
        frames.push(Ok(Frame::data(block)));
    }
    frames
}

/// The trailers that end every Deliver call: gRPC status OK (Fabric's own status
/// went before, as the last message).
fn end_of_stream() -> Frame {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    Frame::trailers(trailers)
}
