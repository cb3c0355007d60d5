//! `orderer.AtomicBroadcast/Deliver` at the HTTP/2 level: the request stream is
//! decoded by tonic as usual, but each block goes out as the ledger holds it, in two
//! DATA frames (gRPC's 5-byte prefix and the field key, then the block's `Bytes`)
//! instead of being copied into tonic's encode buffer, once per Deliver stream. h2
//! hands large `Bytes` to the socket without copying them either.

use crate::comm::{PeerInfo, ServerLimits, send_error};
use crate::deliver;
use crate::multichannel::Registrar;
use bytes::{BufMut, Bytes, BytesMut};
use fabric_protos::common::Envelope;
use fabric_protos::orderer::EncodedDeliverResponse;
use futures::StreamExt;
use http_body_util::StreamBody;
use std::sync::Arc;
use tokio::sync::mpsc;
use tonic::Status;
use tonic::body::Body;
use tonic::codec::{Codec, Streaming};
use tonic::codegen::http::{self, HeaderMap, HeaderValue};
use tonic_prost::ProstCodec;

pub const PATH: &str = "/orderer.AtomicBroadcast/Deliver";

type Frame = http_body::Frame<Bytes>;

/// Answers one Deliver call: the handler runs as a task, its responses become frames,
/// and its end (or a block over General.MaxSendMsgSize) the trailers.
pub async fn serve(
    registrar: Arc<Registrar>,
    request: http::Request<Body>,
    mutual_tls: bool,
    limits: ServerLimits,
) -> http::Response<Body> {
    let binding = deliver::Binding {
        mutual_tls,
        peer: request.extensions().get::<PeerInfo>().cloned(),
    };
    let decoder = ProstCodec::<EncodedDeliverResponse, Envelope>::default().decoder();
    let limit = Some(limits.max_recv_msg_size);
    let requests = Streaming::new_request(decoder, request.into_body(), None, limit);
    let (tx, rx) = mpsc::channel(16);
    let handler = tokio::spawn(deliver::handle(registrar, requests, tx, binding));
    let frames = futures::stream::unfold(Some((rx, handler)), move |state| async move {
        let (mut rx, handler) = state?;
        let Some(response) = rx.recv().await else {
            let ended = handler
                .await
                .unwrap_or_else(|e| Err(Status::internal(e.to_string())));
            return Some((vec![Ok(end_of_stream(ended.err()))], None));
        };
        let (head, block) = response.into_parts();
        let size = head.len() + block.len();
        if size > limits.max_send_msg_size {
            // As grpc-go's Send: the call fails, and the handler with it.
            handler.abort();
            let error = send_error(size, limits.max_send_msg_size);
            tracing::warn!("deliver: {} (General.MaxSendMsgSize)", error.message());
            return Some((vec![Ok(end_of_stream(Some(error)))], None));
        }
        Some((data_frames(head, block), Some((rx, handler))))
    })
    .flat_map(futures::stream::iter);
    http::Response::builder()
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .body(Body::new(StreamBody::new(frames)))
        .expect("a valid response head")
}

/// One gRPC message: the length prefix and the message's head in one frame, the
/// block's bytes (shared with the ledger's cache and every other stream) in another.
fn data_frames(head: Bytes, block: Bytes) -> Vec<Result<Frame, Status>> {
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
/// went before, as the last message), or the error the call failed with.
fn end_of_stream(error: Option<Status>) -> Frame {
    let mut trailers = HeaderMap::new();
    let written = error.is_some_and(|e| e.add_header(&mut trailers).is_ok());
    if !written {
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
    }
    Frame::trailers(trailers)
}
