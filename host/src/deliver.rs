//! `AtomicBroadcast.Deliver`, as Fabric's common/deliver handler: each SeekInfo
//! request streams blocks from the ledger (waiting for new ones where asked) and
//! ends with a status; SUCCESS lets the client send the next request on the same
//! stream, any other status closes it.

use crate::comm::PeerInfo;
use crate::multichannel::{ChainSupport, Registrar};
use crate::operations::metrics::{DeliverRequest, DeliverStream, deliver_block_sent};
use crate::protoutil::now_unix_nanos;
use fabric_protos::common::{ChannelHeader, Envelope, Payload, SignatureHeader, Status};
use fabric_protos::orderer::seek_info::{SeekBehavior, SeekErrorResponse};
use fabric_protos::orderer::{EncodedDeliverResponse, SeekInfo, SeekPosition, seek_position};
use prost::Message;
use std::sync::Arc;
use tokio::sync::mpsc;
use tonic::Streaming;

/// Blocks go out as the ledger holds them: one encoding shared by every stream.
pub type Responses = mpsc::Sender<EncodedDeliverResponse>;

/// Fabric's default `General.Authentication.TimeWindow`.
const TIME_WINDOW_NANOS: u64 = 15 * 60 * 1_000_000_000;

/// Fabric's `BindingInspector`: under mutual TLS (TLS on and client certificates
/// required), each request's channel header must carry the SHA-256 of the TLS
/// certificate the client connected with. Broadcast has no such check in Fabric.
#[derive(Debug, Clone)]
pub struct Binding {
    pub mutual_tls: bool,
    pub peer: Option<PeerInfo>,
}

impl Binding {
    fn inspect(&self, claimed: &[u8]) -> Result<(), String> {
        if !self.mutual_tls {
            return Ok(());
        }
        if claimed.is_empty() {
            return Err("client didn't include its TLS cert hash".into());
        }
        let Some(actual) = self.peer.as_ref().and_then(|p| p.cert_hash) else {
            return Err("client didn't send a TLS certificate".into());
        };
        if claimed != actual {
            return Err(format!(
                "claimed TLS cert hash is {} but actual TLS cert hash is {}",
                go_bytes(claimed),
                go_bytes(&actual)
            ));
        }
        Ok(())
    }

    fn addr(&self) -> String {
        self.peer
            .as_ref()
            .map_or_else(String::new, |p| p.addr.to_string())
    }
}

/// A byte slice as Go's `%v` prints it: `[1 2 3]`.
fn go_bytes(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(u8::to_string).collect();
    format!("[{}]", items.join(" "))
}

/// Serves one Deliver stream; Err: the gRPC status the call ends with, as Fabric's
/// handler returns a failed Recv's error.
pub async fn handle(
    registrar: Arc<Registrar>,
    mut inbound: Streaming<Envelope>,
    responses: Responses,
    binding: Binding,
) -> Result<(), tonic::Status> {
    let _stream = DeliverStream::open();
    loop {
        let envelope = match inbound.message().await {
            Ok(Some(envelope)) => envelope,
            Ok(None) => return Ok(()),
            Err(e) => {
                let e = crate::comm::recv_error(e);
                tracing::debug!("deliver stream ended: {e}");
                return Err(e);
            }
        };
        // None: the client went away while we were sending or waiting.
        let Some(status) = deliver_blocks(&registrar, &envelope, &responses, &binding).await else {
            return Ok(());
        };
        let response = EncodedDeliverResponse::Status(status as i32);
        if responses.send(response).await.is_err() || status != Status::Success {
            return Ok(());
        }
    }
}

async fn deliver_blocks(
    registrar: &Registrar,
    envelope: &Envelope,
    responses: &Responses,
    binding: &Binding,
) -> Option<Status> {
    let now = now_unix_nanos();
    let (payload, chdr) = match parse(envelope, now, binding) {
        Ok(parsed) => parsed,
        Err(e) => {
            tracing::warn!("error parsing envelope from {}: {e}", binding.addr());
            return Some(Status::BadRequest);
        }
    };
    let Some(support) = registrar.get(&chdr.channel_id) else {
        return Some(Status::NotFound);
    };
    let request = DeliverRequest::received(&chdr.channel_id);
    let Ok(seek) = SeekInfo::decode(payload.data) else {
        return Some(Status::BadRequest);
    };
    // A halted consenter answers SERVICE_UNAVAILABLE, unless the client asked for
    // BEST_EFFORT (whatever the ledger has).
    let strict = seek.error_response != SeekErrorResponse::BestEffort as i32;
    if strict && support.chain.errored() {
        return Some(Status::ServiceUnavailable);
    }
    let mut session = Session {
        request: envelope.encode_to_vec(),
        config_seq: 0,
        expires: 0,
    };
    if let Err(status) = session.authorize(&support) {
        return Some(status);
    }
    let (Some(start), Some(stop)) = (&seek.start, &seek.stop) else {
        return Some(Status::BadRequest);
    };
    let status = stream_range(
        &support,
        &seek,
        start,
        stop,
        &mut session,
        strict,
        responses,
    );
    request.finish(status.await)
}

/// Fabric's SessionAccessControl: the request is authorized once, then checked
/// before every block: the client certificate's expiry, and the Readers policy
/// again whenever the channel config has changed.
struct Session {
    request: Vec<u8>,
    config_seq: u64,
    expires: u64,
}

impl Session {
    fn authorize(&mut self, support: &ChainSupport) -> Result<(), Status> {
        let config_seq = support.processor.validators().sequence();
        let now = now_unix_nanos();
        let access = tokio::task::block_in_place(|| {
            support
                .processor
                .validators()
                .with(|core| core.authorize_deliver(&self.request, now))
        });
        match access {
            Ok(Ok(not_after)) => {
                self.expires = not_after;
                self.config_seq = config_seq;
                Ok(())
            }
            Ok(Err(rejection)) => {
                tracing::warn!(channel = %support.channel_id, "deliver client is not authorized: {rejection}");
                Err(rejection.status)
            }
            Err(e) => {
                tracing::error!(channel = %support.channel_id, "deliver access check failed: {e:#}");
                Err(Status::ServiceUnavailable)
            }
        }
    }

    fn evaluate(&mut self, support: &ChainSupport) -> Result<(), Status> {
        if support.processor.validators().sequence() != self.config_seq {
            return self.authorize(support);
        }
        if now_unix_nanos() > self.expires {
            tracing::warn!(channel = %support.channel_id, "deliver client identity expired, ending the stream");
            return Err(Status::Forbidden);
        }
        Ok(())
    }
}

/// Payload and channel header of a request, with the 15-minute timestamp window and
/// the TLS binding, checked as Fabric's `parseEnvelope` does; Err is its log text.
fn parse(
    envelope: &Envelope,
    now: u64,
    binding: &Binding,
) -> Result<(Payload, ChannelHeader), String> {
    let payload = Payload::decode(envelope.payload.clone()).map_err(|e| e.to_string())?;
    let header = payload.header.as_ref().ok_or("envelope has no header")?;
    let chdr = ChannelHeader::decode(header.channel_header.clone()).map_err(|e| e.to_string())?;
    SignatureHeader::decode(header.signature_header.clone()).map_err(|e| e.to_string())?;
    let ts = chdr
        .timestamp
        .as_ref()
        .ok_or("channel header in envelope must contain timestamp")?;
    let ts_nanos = ts.seconds as i128 * 1_000_000_000 + ts.nanos as i128;
    if (now as i128 - ts_nanos).unsigned_abs() > TIME_WINDOW_NANOS as u128 {
        return Err("envelope timestamp is more than 15m0s apart from current server time".into());
    }
    binding.inspect(&chdr.tls_cert_hash)?;
    Ok((payload, chdr))
}

/// Where a Deliver request's blocks start and stop, on a ledger of `height` blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeekRange {
    pub start: u64,
    pub stop: u64,
    /// False when the start is past the height (or has no type): Fabric's iterator
    /// then answers NOT_FOUND.
    pub found: bool,
}

/// Fabric's deliver handler: the iterator's start position (a start beyond the
/// height, or without a type, is not found, reported as position 0), then the stop
/// number; a Specified stop before the start is BAD_REQUEST. The newest block of an
/// empty ledger is block 0, when it comes.
pub(crate) fn seek_range(
    start: &SeekPosition,
    stop: &SeekPosition,
    height: u64,
) -> Result<SeekRange, Status> {
    let newest = height.saturating_sub(1);
    let (number, found) = match start.r#type {
        Some(seek_position::Type::Oldest(_)) => (0, true),
        Some(seek_position::Type::Newest(_)) => (newest, true),
        Some(seek_position::Type::Specified(ref s)) if s.number <= height => (s.number, true),
        Some(seek_position::Type::NextCommit(_)) => (height, true),
        _ => (0, false),
    };
    let stop_number = match stop.r#type {
        Some(seek_position::Type::Oldest(_)) => number,
        // Newest..Newest sends exactly one block, even if the chain grows meanwhile.
        Some(seek_position::Type::Newest(_)) if start == stop => number,
        Some(seek_position::Type::Newest(_)) => newest,
        Some(seek_position::Type::Specified(ref s)) if s.number < number => {
            return Err(Status::BadRequest);
        }
        Some(seek_position::Type::Specified(ref s)) => s.number,
        _ => 0,
    };
    Ok(SeekRange {
        start: number,
        stop: stop_number,
        found,
    })
}

async fn stream_range(
    support: &ChainSupport,
    seek: &SeekInfo,
    start: &SeekPosition,
    stop: &SeekPosition,
    session: &mut Session,
    strict: bool,
    responses: &Responses,
) -> Option<Status> {
    let ledger = &support.ledger;
    let mut height = ledger.watch_height();
    let current = *height.borrow();
    let SeekRange {
        start: mut number,
        stop: stop_number,
        found,
    } = match seek_range(start, stop, current) {
        Ok(range) => range,
        Err(status) => return Some(status),
    };
    let fail_if_not_ready = seek.behavior == SeekBehavior::FailIfNotReady as i32;
    loop {
        if fail_if_not_ready && number >= *height.borrow() {
            return Some(Status::NotFound);
        }
        if !found {
            return Some(Status::NotFound);
        }
        while *height.borrow_and_update() <= number {
            tokio::select! {
                changed = height.changed() => changed.ok()?,
                _ = responses.closed() => return None,
                _ = support.chain.halted(), if strict => return Some(Status::ServiceUnavailable),
                // As Fabric's closed ledger iterator: even BEST_EFFORT ends.
                _ = support.removed() => return Some(Status::ServiceUnavailable),
            }
        }
        let raw = match ledger.get(number) {
            Ok(Some(raw)) => raw,
            other => {
                tracing::error!(channel = %support.channel_id, number, "reading block: {other:?}");
                return Some(Status::InternalServerError);
            }
        };
        if let Err(status) = session.evaluate(support) {
            return Some(status);
        }
        responses
            .send(EncodedDeliverResponse::Block(raw))
            .await
            .ok()?;
        deliver_block_sent(&support.channel_id);
        if number == stop_number {
            return Some(Status::Success);
        }
        number += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `scripts/fuzz.sh seekinfo`: Newest on an empty ledger overflowed.
    #[test]
    fn seek_newest_on_an_empty_ledger_waits_for_block_0() {
        let fuzzed = [10, 2, 10, 0, 18, 2, 10, 0, 24, 1, 32, 1];
        let seek = SeekInfo::decode(&fuzzed[..]).unwrap();
        let (start, stop) = (seek.start.unwrap(), seek.stop.unwrap());
        let range = seek_range(&start, &stop, 0).unwrap();
        let expected = SeekRange {
            start: 0,
            stop: 0,
            found: true,
        };
        assert_eq!(range, expected);
        let oldest = SeekPosition {
            r#type: Some(seek_position::Type::Oldest(Default::default())),
        };
        assert_eq!(seek_range(&oldest, &stop, 0), Ok(expected));
    }
}
