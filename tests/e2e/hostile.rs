//! Hostile clients against the real binary (issue 13): messages and frames over the
//! limits, many idle connections, Deliver streams that never read, HTTP/2 rapid
//! reset, half-closed and garbage streams. In every case another client still orders
//! an envelope and reads its block, during the attack where the attack lasts. Each
//! case prints a row with the orderer's RSS and CPU (docs/RELIABILITY.md).

use crate::common::*;
use crate::operations::{get, sample};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use fabric_protos::common::{Envelope, Status};
use fabric_protos::orderer::seek_info::SeekBehavior;
use fabric_protos::orderer::{DeliverResponse, deliver_response};
use prost::Message;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;
use tonic::codegen::http;

const CH: &str = "devchannel";
const MAX_RECV: usize = 16 << 20;
const MAX_SEND: usize = 3 << 20;
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_clients_do_not_stop_the_orderer() {
    let connections = raise_fd_limit(10_000);
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("ORDERER_GENERAL_MAXRECVMSGSIZE", "16777216"),
        ("ORDERER_GENERAL_MAXSENDMSGSIZE", "3145728"),
    ];
    let orderer = Orderer::spawn_with_env(dir.path(), &[], &env);
    let user = dev_user(dir.path());
    let probe = Probe(orderer.pid());
    still_serves(&orderer, &user).await;
    println!("hostile clients: baseline RSS {} MB", probe.rss_mb());

    let case = probe.start("a 100 MB envelope (MaxRecvMsgSize 16 MiB)");
    let big = tx(&user, CH, 100_000_000, 1);
    let e = broadcast_error(&orderer, big.clone()).await;
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    let expected = format!(
        "grpc: received message larger than max ({} vs. {MAX_RECV})",
        big.encoded_len()
    );
    assert_eq!(e.message(), expected);
    still_serves(&orderer, &user).await;
    case.end(&format!("RESOURCE_EXHAUSTED {expected:?}"));

    let case = probe.start("a 12 MB envelope (under MaxRecvMsgSize, over AbsoluteMaxBytes)");
    let responses = broadcast(&orderer, vec![tx(&user, CH, 12_000_000, 2)]).await;
    assert_eq!(statuses(&responses), [Status::BadRequest as i32]);
    assert!(
        responses[0]
            .info
            .contains("exceeds maximum allowed 10485760 bytes")
    );
    still_serves(&orderer, &user).await;
    case.end(&format!("BAD_REQUEST {:?}", responses[0].info));

    let case = probe.start("a 4 MB block to Deliver (MaxSendMsgSize 3 MiB)");
    let number = height(&orderer).await;
    let responses = broadcast(&orderer, vec![tx(&user, CH, 4_000_000, 3)]).await;
    assert_eq!(statuses(&responses), [Status::Success as i32]);
    let e = deliver_error(&orderer, &user, number).await;
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message()
            .starts_with("grpc: trying to send message larger than max (")
    );
    assert!(e.message().ends_with(&format!(" vs. {MAX_SEND})")), "{e:?}");
    still_serves(&orderer, &user).await;
    case.end(&format!("RESOURCE_EXHAUSTED {:?}", e.message()));

    let case = probe.start("an HTTP/2 frame of 1 MiB (limit 16 KiB)");
    let goaway = oversized_frame(&orderer.addr).await;
    assert_eq!(goaway, Some(FRAME_SIZE_ERROR), "the server's answer");
    still_serves(&orderer, &user).await;
    case.end("GOAWAY FRAME_SIZE_ERROR, connection closed");

    let case = probe.start(&format!("{connections} idle HTTP/2 connections"));
    let mut idle = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut stream = TcpStream::connect(&orderer.addr).await.unwrap();
        stream
            .write_all(&[PREFACE, &SETTINGS].concat())
            .await
            .unwrap();
        idle.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let held = probe.rss_mb();
    assert!(held < 1024, "{connections} idle connections: RSS {held} MB");
    still_serves(&orderer, &user).await;
    drop(idle);
    case.end(&format!("held open: RSS {held} MB"));

    // 50 blocks of 2 MB: most are older than the ledger's 64 MB cache.
    for seed in 0..10 {
        let envelopes = (0..10)
            .map(|i| tx(&user, CH, 1_000_000, seed * 10 + i))
            .collect();
        let responses = broadcast(&orderer, envelopes).await;
        assert!(responses.iter().all(|r| r.status == Status::Success as i32));
    }
    still_serves(&orderer, &user).await;
    let case = probe.start("1,000 Deliver streams from block 0 that never read (10 connections)");
    let mut unread = Vec::new();
    for _ in 0..10 {
        let client = orderer.client().await;
        for _ in 0..100 {
            let request = seek_envelope(
                &user,
                CH,
                Some(oldest()),
                Some(specified(u64::MAX)),
                SeekBehavior::BlockUntilReady,
            );
            let mut client = client.clone();
            let call = client.deliver(tokio_stream::iter([request])).await.unwrap();
            unread.push(call.into_inner());
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = probe.rss_mb();
    // 100 MB of blocks; a copy per stream would be 100 GB.
    assert!(held < 2048, "1,000 unread Deliver streams: RSS {held} MB");
    still_serves(&orderer, &user).await;
    drop(unread);
    tokio::time::sleep(Duration::from_secs(1)).await;
    case.end(&format!("held open: RSS {held} MB"));

    let case = probe.start("HTTP/2 rapid reset: 50,000 Broadcast streams opened and cancelled");
    let attack = tokio::spawn(rapid_reset(orderer.addr.clone(), 50_000));
    let (_, before) = get(&orderer, "/metrics").await;
    still_serves(&orderer, &user).await;
    let (sent, ended) = attack.await.unwrap();
    still_serves(&orderer, &user).await;
    let (_, after) = get(&orderer, "/metrics").await;
    let started = broadcasts(&after) - broadcasts(&before);
    assert_eq!(ended, "GOAWAY with error code 11", "ENHANCE_YOUR_CALM");
    assert!(
        started < 100,
        "{started} of {sent} reset streams reached the handler"
    );
    case.end(&format!(
        "{sent} resets sent, {started} Broadcast calls started; connection: {ended}"
    ));

    let case = probe.start("streams half-closed before, during and after a request");
    let mut client = orderer.client().await;
    let call = client.broadcast(tokio_stream::empty()).await.unwrap();
    assert_eq!(call.into_inner().message().await.unwrap(), None);
    let call = client.deliver(tokio_stream::empty()).await.unwrap();
    assert!(call.into_inner().message().await.unwrap().is_none());
    let envelopes = (0..3).map(|i| tx(&user, CH, 100, 200 + i)).collect();
    let responses = broadcast(&orderer, envelopes).await;
    assert_eq!(statuses(&responses), [Status::Success as i32; 3]);
    let request = seek_envelope(
        &user,
        CH,
        Some(specified(0)),
        Some(specified(0)),
        SeekBehavior::BlockUntilReady,
    );
    let (blocks, status) = deliver(&orderer, request.clone()).await;
    assert_eq!((blocks.len(), status), (1, Some(Status::Success)));
    still_serves(&orderer, &user).await;
    case.end("empty streams end OK; 3 envelopes and a seek, then half-closed: all answered");

    let case = probe.start("garbage after a valid SeekInfo on one Deliver stream");
    let mut h2 = h2_connect(&orderer.addr).await;
    let garbage = Envelope {
        payload: Bytes::from_static(b"\x0a\xff\xff not a payload"),
        signature: Bytes::new(),
    };
    let messages = [request.encode_to_vec(), garbage.encode_to_vec()];
    let (answers, grpc_status) = h2_call(&mut h2, DELIVER, &messages).await;
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert!(matches!(answers[0], deliver_response::Type::Block(_)));
    let status = |s: Status| deliver_response::Type::Status(s as i32);
    assert_eq!(
        answers[1..],
        [status(Status::Success), status(Status::BadRequest)]
    );
    assert_eq!(grpc_status.as_deref(), Some("0"));
    let messages = [
        request.encode_to_vec(),
        b"\xff\xff\xff not protobuf".to_vec(),
    ];
    let (answers, grpc_status) = h2_call(&mut h2, DELIVER, &messages).await;
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[1], status(Status::Success));
    assert_eq!(
        grpc_status.as_deref(),
        Some("13"),
        "INTERNAL: the message does not decode"
    );
    still_serves(&orderer, &user).await;
    case.end("block, SUCCESS, then BAD_REQUEST (a bad payload) or INTERNAL (not protobuf)");
}

/// A new client orders an envelope and reads it back in its block: the first block
/// from the height before that holds it (envelopes acknowledged before may still be
/// waiting to be cut).
async fn still_serves(orderer: &Orderer, user: &orderer::identity::Signer) {
    let number = height(orderer).await;
    let envelope = Bytes::from(tx(user, CH, 1000, 99).encode_to_vec());
    let sent = Envelope::decode(envelope.clone()).unwrap();
    let responses = broadcast(orderer, vec![sent]).await;
    assert_eq!(
        statuses(&responses),
        [Status::Success as i32],
        "{responses:?}"
    );
    let mut call = deliver_from(orderer, user, number, u64::MAX).await;
    let found = async {
        while let Some(response) = call.message().await.unwrap() {
            if let Some(deliver_response::Type::Block(block)) = response.r#type
                && block.data.is_some_and(|d| d.data.contains(&envelope))
            {
                return;
            }
        }
        panic!("Deliver ended before the envelope's block");
    };
    let within = Duration::from_secs(20);
    let not_found = "the envelope is in no block 20 s after its SUCCESS";
    tokio::time::timeout(within, found).await.expect(not_found);
}

/// A Deliver stream of blocks `start..=stop`, read by the caller.
async fn deliver_from(
    orderer: &Orderer,
    user: &orderer::identity::Signer,
    start: u64,
    stop: u64,
) -> tonic::Streaming<DeliverResponse> {
    let request = seek_envelope(
        user,
        CH,
        Some(specified(start)),
        Some(specified(stop)),
        SeekBehavior::BlockUntilReady,
    );
    let mut client = orderer.client().await;
    let call = client.deliver(tokio_stream::iter([request])).await;
    call.unwrap().into_inner()
}

/// The ledger's height, from /metrics (the newest block may be too large to Deliver).
async fn height(orderer: &Orderer) -> u64 {
    let (_, metrics) = get(orderer, "/metrics").await;
    sample(
        &metrics,
        &format!("ledger_blockchain_height{{channel=\"{CH}\"}}"),
    ) as u64
}

/// Broadcast calls started so far (/metrics).
fn broadcasts(metrics: &str) -> u64 {
    let line = metrics.lines().find(|l| {
        l.starts_with("grpc_server_stream_requests_received{") && l.contains("\"Broadcast\"")
    });
    line.and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map_or(0, |n| n as u64)
}

/// The gRPC error a Broadcast of `envelope` ends with.
async fn broadcast_error(orderer: &Orderer, envelope: Envelope) -> tonic::Status {
    let mut client = orderer.client().await;
    match client.broadcast(tokio_stream::iter([envelope])).await {
        Err(e) => e,
        Ok(call) => call
            .into_inner()
            .message()
            .await
            .expect_err("an error, not an answer"),
    }
}

/// The gRPC error a Deliver of block `number` ends with.
async fn deliver_error(
    orderer: &Orderer,
    user: &orderer::identity::Signer,
    number: u64,
) -> tonic::Status {
    let mut call = deliver_from(orderer, user, number, number).await;
    match call.message().await {
        Err(e) => e,
        Ok(Some(DeliverResponse {
            r#type: Some(deliver_response::Type::Block(_)),
        })) => panic!("block {number} sent over MaxSendMsgSize"),
        Ok(other) => panic!("{other:?} instead of an error"),
    }
}

const FRAME_SIZE_ERROR: u32 = 6;
const GOAWAY: u8 = 7;

/// Sends a DATA frame header announcing 1 MiB, then reads until the server closes;
/// the error code of its GOAWAY, if it sent one.
async fn oversized_frame(addr: &str) -> Option<u32> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let len = 1u32 << 20;
    let header = [
        (len >> 16) as u8,
        (len >> 8) as u8,
        len as u8,
        0,
        0,
        0,
        0,
        0,
        1,
    ];
    let _ = stream
        .write_all(&[PREFACE, &SETTINGS, &header, &[0; 16384]].concat())
        .await;
    let mut read = Vec::new();
    let eof = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut read));
    eof.await.expect("the server closes the connection").ok()?;
    let mut frames = &read[..];
    while frames.len() >= 9 {
        let len = u32::from_be_bytes([0, frames[0], frames[1], frames[2]]) as usize;
        let (kind, payload) = (frames[3], &frames[9..(9 + len).min(frames.len())]);
        if kind == GOAWAY && payload.len() >= 8 {
            return Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
        }
        frames = &frames[(9 + len).min(frames.len())..];
    }
    None
}

const BROADCAST: &str = "/orderer.AtomicBroadcast/Broadcast";
const DELIVER: &str = "/orderer.AtomicBroadcast/Deliver";

async fn h2_connect(addr: &str) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (h2, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    h2
}

fn grpc_request(addr: &str, path: &str) -> http::Request<()> {
    http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// Opens `streams` Broadcast streams on one connection, each HEADERS frame followed
/// at once by its RST_STREAM (CANCEL), written as raw frames so that no client library
/// holds back the headers of a stream already reset; the resets written and how the
/// connection ended.
async fn rapid_reset(addr: String, streams: u32) -> (u32, String) {
    let stream = TcpStream::connect(&addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    // Reads what the server sends (it must not block on a full socket) up to a GOAWAY.
    let reader = tokio::spawn(async move {
        let mut frames = BytesMut::new();
        let mut buf = vec![0; 64 * 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => frames.extend_from_slice(&buf[..n]),
            }
            while frames.len() >= 9 {
                let len = u32::from_be_bytes([0, frames[0], frames[1], frames[2]]) as usize;
                if frames.len() < 9 + len {
                    break;
                }
                let frame = frames.split_to(9 + len);
                if frame[3] == GOAWAY {
                    return Some(u32::from_be_bytes(frame[13..17].try_into().unwrap()));
                }
            }
        }
    });
    write
        .write_all(&[PREFACE, &SETTINGS].concat())
        .await
        .unwrap();
    let block = hpack_request(&addr, BROADCAST);
    let mut sent = 0;
    'attack: for batch in 0..streams / 1000 {
        let mut frames = BytesMut::new();
        for i in 0..1000 {
            let id = 2 * (batch * 1000 + i) + 1;
            frames.extend_from_slice(&frame_header(block.len(), 1, 0x4, id));
            frames.extend_from_slice(&block);
            frames.extend_from_slice(&frame_header(4, 3, 0, id));
            frames.put_u32(0x8); // CANCEL
        }
        if write.write_all(&frames).await.is_err() {
            break 'attack;
        }
        sent += 1000;
    }
    let goaway = tokio::time::timeout(Duration::from_secs(2), reader).await;
    let ended = match goaway {
        Ok(Ok(Some(code))) => format!("GOAWAY with error code {code}"),
        Ok(_) => "closed without a GOAWAY".to_string(),
        Err(_) => "left open by the server".to_string(),
    };
    (sent, ended)
}

fn frame_header(len: usize, kind: u8, flags: u8, stream: u32) -> [u8; 9] {
    let [_, a, b, c] = (len as u32).to_be_bytes();
    let [d, e, f, g] = stream.to_be_bytes();
    [a, b, c, kind, flags, d, e, f, g]
}

/// A gRPC request's header block in HPACK: static-table entries and literals without
/// indexing (no Huffman), so that every stream's block is the same bytes.
fn hpack_request(authority: &str, path: &str) -> Vec<u8> {
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
    let mut literal = |name_index: u8, name: &str, value: &str| {
        block.push(name_index);
        if name_index == 0 {
            block.push(name.len() as u8);
            block.extend_from_slice(name.as_bytes());
        }
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    };
    literal(0x04, "", path); // :path
    literal(0x01, "", authority); // :authority
    literal(0, "content-type", "application/grpc");
    literal(0, "te", "trailers");
    block
}

/// One gRPC call with `messages` as its request stream, half-closed after them: the
/// Deliver answers and the grpc-status trailer.
async fn h2_call(
    h2: &mut h2::client::SendRequest<Bytes>,
    path: &str,
    messages: &[Vec<u8>],
) -> (Vec<deliver_response::Type>, Option<String>) {
    let ready = h2.clone().ready().await.unwrap();
    *h2 = ready;
    let addr = "orderer";
    let (response, mut body) = h2.send_request(grpc_request(addr, path), false).unwrap();
    let mut data = BytesMut::new();
    for message in messages {
        data.put_u8(0);
        data.put_u32(message.len() as u32);
        data.put_slice(message);
    }
    body.send_data(data.freeze(), true).unwrap();
    let within = Duration::from_secs(10);
    let response = tokio::time::timeout(within, response)
        .await
        .unwrap()
        .unwrap();
    let mut body = response.into_body();
    let mut received = BytesMut::new();
    while let Some(chunk) = tokio::time::timeout(within, body.data()).await.unwrap() {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.unwrap().unwrap_or_default();
    let status = trailers
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_string());
    let mut answers = Vec::new();
    while received.len() >= 5 {
        received.advance(1);
        let len = received.get_u32() as usize;
        let message = received.split_to(len);
        answers.push(DeliverResponse::decode(message).unwrap().r#type.unwrap());
    }
    (answers, status)
}

/// The orderer process's memory and CPU, from /proc.
struct Probe(u32);

impl Probe {
    fn rss_mb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0)).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb / 1024
    }

    /// User + system CPU, in ms.
    fn cpu_ms(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0)).unwrap();
        // The fields after the command name in parentheses; utime and stime are 14, 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks * 1000 / clock_ticks()
    }

    fn start(&self, name: &str) -> Case<'_> {
        Case {
            probe: self,
            name: name.to_string(),
            started: Instant::now(),
            cpu_ms: self.cpu_ms(),
            rss_mb: self.rss_mb(),
        }
    }
}

struct Case<'a> {
    probe: &'a Probe,
    name: String,
    started: Instant,
    cpu_ms: u64,
    rss_mb: u64,
}

impl Case<'_> {
    /// Prints the case's table row: outcome, RSS before and after, CPU, time.
    fn end(self, outcome: &str) {
        println!(
            "| {} | {outcome}; another client served | RSS {} -> {} MB | CPU {} ms in {:.1} s |",
            self.name,
            self.rss_mb,
            self.probe.rss_mb(),
            self.probe.cpu_ms() - self.cpu_ms,
            self.started.elapsed().as_secs_f64(),
        );
    }
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).unwrap_or(100)
}

/// Raises this process's open-file limit (the orderer inherits it) so that `wanted`
/// connections fit, up to the hard limit; the connections that fit.
fn raise_fd_limit(wanted: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct given.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    // Room for the other tests running in this process meanwhile.
    let fit = (limit.rlim_cur as usize).saturating_sub(2048).min(wanted);
    if fit < wanted {
        println!(
            "hostile clients: open-file limit {}: {fit} idle connections",
            limit.rlim_cur
        );
    }
    fit
}
