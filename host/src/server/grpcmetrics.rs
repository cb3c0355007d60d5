//! Fabric's common/grpcmetrics for our gRPC server: per streaming call, requests
//! received and completed (with the gRPC status code as Go names it), the call's
//! duration, and the messages received and sent. Counted at the HTTP/2 body level
//! (gRPC's 5-byte length prefixes), so Broadcast and the hand-framed Deliver are
//! counted the same way, without touching either.

use crate::operations::metrics;
use bytes::{Buf, Bytes};
use http_body::{Frame, SizeHint};
use prometheus::Counter;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::body::Body;
use tonic::codegen::http;

/// Fabric's label values for a path `/orderer.AtomicBroadcast/Deliver`:
/// `orderer_AtomicBroadcast`, `Deliver` (dots become underscores).
pub fn service_method(path: &str) -> (String, String) {
    let normalized = path.replace('.', "_");
    let parts: Vec<&str> = normalized.split('/').collect();
    match parts[..] {
        ["", service, method] => (service.to_string(), method.to_string()),
        _ => ("unknown".into(), "unknown".into()),
    }
}

/// Go's names of the gRPC status codes (`codes.Code.String()`).
pub fn code_name(code: &str) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    code.trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| NAMES.get(n).copied())
        .unwrap_or("Unknown")
}

/// Counts the request as received and its messages; the response side
/// ([`track_response`]) counts the rest and the completion.
pub fn track_request(request: http::Request<Body>) -> (http::Request<Body>, Call) {
    let (service, method) = service_method(request.uri().path());
    let m = metrics();
    m.grpc_stream_requests_received
        .with_label_values(&[&service, &method])
        .inc();
    let received = m
        .grpc_stream_messages_received
        .with_label_values(&[&service, &method]);
    let request = request.map(|body| Body::new(Counted::new(body, received, None)));
    let call = Call {
        service,
        method,
        started: Instant::now(),
        code: None,
    };
    (request, call)
}

pub fn track_response(response: http::Response<Body>, mut call: Call) -> http::Response<Body> {
    // A trailers-only answer (an error before any message) has its status here.
    call.code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(code_name);
    let sent = metrics()
        .grpc_stream_messages_sent
        .with_label_values(&[&call.service, &call.method]);
    response.map(|body| Body::new(Counted::new(body, sent, Some(call))))
}

/// One streaming call; recorded as completed when its response body is dropped.
pub struct Call {
    service: String,
    method: String,
    started: Instant,
    code: Option<&'static str>,
}

impl Drop for Call {
    fn drop(&mut self) {
        // No status sent: the client went away first, which Go reports as Canceled.
        let code = self.code.unwrap_or("Canceled");
        let labels = [self.service.as_str(), self.method.as_str(), code];
        let m = metrics();
        m.grpc_stream_request_duration
            .with_label_values(&labels)
            .observe(self.started.elapsed().as_secs_f64());
        m.grpc_stream_requests_completed
            .with_label_values(&labels)
            .inc();
    }
}

/// A gRPC body that counts the messages passing through it.
struct Counted {
    inner: Body,
    messages: Counter,
    /// Bytes still to skip of the current message, or of its 5-byte prefix.
    framing: Framing,
    call: Option<Call>,
}

/// Where the byte stream is: inside a prefix (bytes of it seen) or a message
/// (bytes of it left).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Framing {
    Prefix(Vec<u8>),
    Message(u64),
}

impl Counted {
    fn new(inner: Body, messages: Counter, call: Option<Call>) -> Counted {
        Counted {
            inner,
            messages,
            framing: Framing::Prefix(Vec::new()),
            call,
        }
    }
}

/// How many messages `data` completes; `framing` carries over between frames.
fn count_messages(framing: &mut Framing, mut data: &[u8]) -> u64 {
    let mut completed = 0;
    while !data.is_empty() {
        match framing {
            Framing::Prefix(seen) => {
                let take = (5 - seen.len()).min(data.len());
                seen.extend_from_slice(&data[..take]);
                data.advance(take);
                if seen.len() == 5 {
                    let len = u32::from_be_bytes([seen[1], seen[2], seen[3], seen[4]]);
                    *framing = Framing::Message(len as u64);
                }
            }
            Framing::Message(left) => {
                let take = (*left).min(data.len() as u64);
                data.advance(take as usize);
                *left -= take;
            }
        }
        if *framing == Framing::Message(0) {
            completed += 1;
            *framing = Framing::Prefix(Vec::new());
        }
    }
    completed
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                let n = count_messages(&mut this.framing, data);
                this.messages.inc_by(n as f64);
            } else if let (Some(trailers), Some(call)) = (frame.trailers_ref(), &mut this.call) {
                call.code = trailers
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map(code_name);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_fabric() {
        assert_eq!(
            service_method("/orderer.AtomicBroadcast/Broadcast"),
            ("orderer_AtomicBroadcast".into(), "Broadcast".into())
        );
        assert_eq!(service_method("/x"), ("unknown".into(), "unknown".into()));
        assert_eq!(code_name("0"), "OK");
        assert_eq!(code_name("14"), "Unavailable");
        assert_eq!(code_name("99"), "Unknown");
    }

    #[test]
    fn messages_are_counted_across_frames() {
        let message = |len: u32| {
            let mut m = vec![0];
            m.extend_from_slice(&len.to_be_bytes());
            m.extend(std::iter::repeat_n(7, len as usize));
            m
        };
        let stream: Vec<u8> = [message(3), message(0), message(10)].concat();
        let mut framing = Framing::Prefix(Vec::new());
        // One byte at a time, then all at once: the same three messages.
        let one_by_one: u64 = stream
            .iter()
            .map(|b| count_messages(&mut framing, &[*b]))
            .sum();
        assert_eq!(one_by_one, 3);
        let mut framing = Framing::Prefix(Vec::new());
        assert_eq!(count_messages(&mut framing, &stream), 3);
        assert_eq!(count_messages(&mut framing, &message(4)[..6]), 0);
    }
}
