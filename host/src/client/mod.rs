//! The client for people: `orderer bench` measures an orderer (acks/s, delivered/s,
//! ack latency, the orderer's CPU and memory) and `orderer broadcast` is its one-line
//! form without followers; `orderer deliver` fetches blocks and verifies them (hash chain, data hash,
//! orderer signatures against the channel's orderer MSPs); `orderer channel` reads
//! and updates a channel's config, and joins, lists and removes channels.

pub mod bench;
pub mod channel;
pub mod configupdate;
pub mod core;
pub mod manychannels;
pub mod participation;

use crate::comm::{self, ClientTls, MAX_MESSAGE_BYTES};
use crate::identity::Signer;
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use fabric_protos::common::{Block, Envelope, HeaderType, Metadata, SignatureHeader, Status};
use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use fabric_protos::orderer::seek_info::SeekBehavior;
use fabric_protos::orderer::{
    DeliverResponse, SeekInfo, SeekPosition, deliver_response, seek_position,
};
use ordering_core::blockheader::header_der;
use ordering_core::config::ChannelConfig;
use ordering_core::{Crypto, NativeCrypto};
use prost::Message;
use std::path::PathBuf;
use std::time::SystemTime;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// TLS to the orderer, as Fabric's CLIs take it (`--cafile`, `--certfile`, `--keyfile`,
/// `--ordererTLSHostnameOverride`).
#[derive(Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Connect with TLS, trusting this CA (PEM) for the server's certificate.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// The client's TLS certificate (PEM), for servers that require one (mutual TLS).
    #[arg(long, requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The name the server's certificate must carry [default: the host of the address].
    #[arg(long, requires = "tls_ca")]
    pub tls_server_name: Option<String>,
}

impl TlsArgs {
    /// `None` without `--tls-ca`: plaintext.
    pub fn client(&self) -> Result<Option<ClientTls>> {
        let Some(ca) = &self.tls_ca else {
            return Ok(None);
        };
        let identity = self.tls_cert.as_deref().zip(self.tls_key.as_deref());
        Ok(Some(ClientTls::from_files(
            ca,
            identity,
            self.tls_server_name.as_deref(),
        )?))
    }
}

#[derive(Args, Debug)]
pub struct Identity {
    /// Orderer address HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:7050")]
    pub orderer: String,
    #[arg(long, default_value = "devchannel")]
    pub channel: String,
    /// The client's MSP folder (default: the dev default's User1 of Org1MSP).
    #[arg(
        long,
        default_value = "./orderer-data/crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp"
    )]
    pub msp_dir: PathBuf,
    #[arg(long, default_value = "Org1MSP")]
    pub msp_id: String,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Args, Debug)]
pub struct DeliverArgs {
    #[command(flatten)]
    pub identity: Identity,
    /// oldest | newest | next | a block number.
    #[arg(long, default_value = "oldest")]
    pub start: String,
    /// newest | forever | a block number.
    #[arg(long, default_value = "newest")]
    pub stop: String,
    /// Answer NOT_FOUND instead of waiting for blocks that do not exist yet.
    #[arg(long)]
    pub fail_if_not_ready: bool,
    /// Append `NUMBER SHA256` (the SHA-256 of the block's encoding) to this file for
    /// every block received, as it arrives: a follower's record for `--expect`.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// A file written by `--save` (repeatable): every block it names must be among the
    /// blocks delivered now, with the same SHA-256; a summary line follows.
    #[arg(long)]
    pub expect: Vec<PathBuf>,
}

pub(crate) async fn connect(id: &Identity) -> Result<AtomicBroadcastClient<Channel>> {
    let address = &id.orderer;
    let tls = id.tls.client()?;
    let scheme = comm::client::scheme(tls.as_ref());
    // Large fixed windows: blocks of megabytes would trickle through 64 KiB ones.
    // Not BDP estimation (adaptive windows): its pings, sent while a busy Go server
    // has nothing to answer yet, count as strikes against grpc-go's keepalive policy,
    // and Fabric's orderer then ends the connection with ENHANCE_YOUR_CALM.
    let endpoint = Channel::from_shared(format!("{scheme}://{address}"))
        .with_context(|| format!("orderer address {address}"))?
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(32 << 20)
        // Blocks of megabytes in 1 MiB DATA frames rather than 16 KiB ones.
        .max_frame_size(1 << 20);
    let connector = comm::client::Connector {
        address: address.clone(),
        tls,
    };
    let client = AtomicBroadcastClient::new(
        endpoint
            .connect_with_connector(connector)
            .await
            .with_context(|| format!("connecting to the orderer at {address}"))?,
    );
    Ok(client
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// User + system CPU seconds of a process, all threads, from /proc (Linux).
fn process_cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // Fields after the parenthesised command name; utime and stime are the 14th and
    // 15th fields of the line, in USER_HZ ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| anyhow!("{path}: unexpected format"))
    };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

fn position(text: &str) -> Result<SeekPosition> {
    use seek_position::Type;
    let kind = match text {
        "oldest" => Type::Oldest(Default::default()),
        "newest" => Type::Newest(Default::default()),
        "next" => Type::NextCommit(Default::default()),
        "forever" => Type::Specified(fabric_protos::orderer::SeekSpecified { number: u64::MAX }),
        n => Type::Specified(fabric_protos::orderer::SeekSpecified {
            number: n.parse().map_err(|_| {
                anyhow!("bad seek position {n:?}: oldest, newest, next, forever or a number")
            })?,
        }),
    };
    Ok(SeekPosition { r#type: Some(kind) })
}

/// One Deliver stream; each `request` sends a SeekInfo and collects the answer.
pub(crate) struct DeliverSession {
    signer: Signer,
    /// The TLS binding Fabric's Deliver checks under mutual TLS.
    tls_cert_hash: Option<[u8; 32]>,
    channel: String,
    requests: mpsc::Sender<Envelope>,
    responses: Responses,
}

/// The answers of a Deliver call. The call itself resolves only once the server sends
/// its response headers, which a Go gRPC server (Fabric's orderer) does only with its
/// first answer, i.e. after our first request: so it is awaited on the first read,
/// never before a request is sent.
enum Responses {
    Opening(futures::future::BoxFuture<'static, Result<tonic::Streaming<DeliverResponse>>>),
    Open(Box<tonic::Streaming<DeliverResponse>>),
}

impl DeliverSession {
    pub(crate) async fn open(id: &Identity) -> Result<Self> {
        let signer = Signer::from_msp_dir(&id.msp_dir, &id.msp_id)?;
        let tls_cert_hash = id.tls.client()?.and_then(|tls| tls.cert_hash());
        let mut client = connect(id).await?;
        let (requests, rx) = mpsc::channel(4);
        let call = async move { Ok(client.deliver(ReceiverStream::new(rx)).await?.into_inner()) };
        let responses = Responses::Opening(Box::pin(call));
        Ok(DeliverSession {
            signer,
            tls_cert_hash,
            channel: id.channel.clone(),
            requests,
            responses,
        })
    }

    async fn send(
        &self,
        start: SeekPosition,
        stop: SeekPosition,
        behavior: SeekBehavior,
    ) -> Result<()> {
        let seek = SeekInfo {
            start: Some(start),
            stop: Some(stop),
            behavior: behavior as i32,
            ..Default::default()
        };
        let env = self.signer.signed_envelope_with_tls_binding(
            HeaderType::DeliverSeekInfo,
            &self.channel,
            seek.encode_to_vec().into(),
            SystemTime::now(),
            self.tls_cert_hash.as_ref().map_or(&[][..], |h| &h[..]),
        );
        self.requests
            .send(env)
            .await
            .map_err(|_| anyhow!("deliver stream closed"))
    }

    /// The next block, or Err with the final status.
    async fn next(&mut self) -> Result<std::result::Result<Block, i32>> {
        if let Responses::Opening(call) = &mut self.responses {
            self.responses = Responses::Open(Box::new(call.await?));
        }
        let Responses::Open(responses) = &mut self.responses else {
            unreachable!("opened above")
        };
        match responses.message().await?.and_then(|r| r.r#type) {
            Some(deliver_response::Type::Block(block)) => Ok(Ok(block)),
            Some(deliver_response::Type::Status(status)) => Ok(Err(status)),
            None => bail!("the orderer closed the deliver stream"),
        }
    }

    /// The channel's newest block.
    async fn tip(&mut self) -> Result<Block> {
        let newest = position("newest")?;
        self.send(newest, newest, SeekBehavior::FailIfNotReady)
            .await?;
        let tip = self
            .next()
            .await?
            .map_err(|s| anyhow!("channel {}: status {}", self.channel, status_name(s)))?;
        self.next().await?.ok();
        Ok(tip)
    }

    /// The channel's latest config block, found through the newest block's LAST_CONFIG.
    pub(crate) async fn latest_config_block(&mut self) -> Result<Block> {
        let tip = self.tip().await?;
        self.single(crate::protoutil::last_config(&tip)).await
    }

    pub(crate) async fn single(&mut self, number: u64) -> Result<Block> {
        let at = position(&number.to_string())?;
        self.send(at, at, SeekBehavior::FailIfNotReady).await?;
        let block = self
            .next()
            .await?
            .map_err(|s| anyhow!("block {number}: status {s}"))?;
        self.next().await?.ok();
        Ok(block)
    }
}

pub async fn deliver(args: DeliverArgs) -> Result<()> {
    let mut session = DeliverSession::open(&args.identity).await?;
    let config_block = session.latest_config_block().await?;
    let config = ChannelConfig::from_config_block(&config_block.encode_to_vec(), &NativeCrypto)
        .map_err(|e| anyhow!("reading the channel config: {e}"))?;

    let behavior = if args.fail_if_not_ready {
        SeekBehavior::FailIfNotReady
    } else {
        SeekBehavior::BlockUntilReady
    };
    let expected = read_saved(&args.expect)?;
    let mut save = match &args.save {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?,
        ),
        None => None,
    };
    session
        .send(position(&args.start)?, position(&args.stop)?, behavior)
        .await?;
    // The number the next block must carry, where the request fixes it.
    let mut next_number = match args.start.as_str() {
        "oldest" => Some(0),
        n => n.parse::<u64>().ok(),
    };
    let mut delivered: std::collections::HashMap<u64, [u8; 32]> = Default::default();
    let mut previous: Option<(u64, [u8; 32])> = None;
    let mut problems = 0;
    loop {
        let block = match session.next().await? {
            Ok(block) => block,
            Err(status) => {
                println!("status {}", status_name(status));
                if status != Status::Success as i32 {
                    bail!("deliver ended with {}", status_name(status));
                }
                break;
            }
        };
        let digest = NativeCrypto.sha256(&block.encode_to_vec());
        let header = block.header.clone().unwrap_or_default();
        if let Some(file) = &mut save {
            use std::io::Write;
            writeln!(file, "{} {}", header.number, hex::encode(digest))
                .context("writing the --save file")?;
        }
        let (line, ok) = check_block(&block, previous, &config);
        println!("{line}");
        problems += usize::from(!ok);
        if let Some(want) = next_number.filter(|&n| n != header.number) {
            println!(
                "block {} OUT OF SEQUENCE: expected block {want}",
                header.number
            );
            problems += 1;
        }
        if delivered.insert(header.number, digest).is_some() {
            println!("block {} DELIVERED TWICE", header.number);
            problems += 1;
        }
        next_number = Some(header.number + 1);
        previous = Some((header.number, NativeCrypto.sha256(&header_der(&header))));
    }
    if !args.expect.is_empty() {
        let mut missing = 0;
        let mut differ = 0;
        for (number, want) in &expected {
            match delivered.get(number) {
                None => {
                    println!("block {number} MISSING: a follower received it");
                    missing += 1;
                }
                Some(got) if got != want => {
                    println!(
                        "block {number} DIFFERS: sha256 {} now, {} when a follower received it",
                        hex::encode(got),
                        hex::encode(want)
                    );
                    differ += 1;
                }
                Some(_) => {}
            }
        }
        problems += missing + differ;
        println!(
            "{} blocks delivered; {} blocks saved by followers: {} present byte for byte, {missing} missing, {differ} different",
            delivered.len(),
            expected.len(),
            expected.len() - missing - differ,
        );
    }
    if problems > 0 {
        bail!("{problems} problem(s) found");
    }
    Ok(())
}

/// The blocks named by `--save` files: number -> SHA-256. The same number with two
/// different hashes (two followers saw different blocks) is an error.
fn read_saved(files: &[PathBuf]) -> Result<std::collections::BTreeMap<u64, [u8; 32]>> {
    let mut saved = std::collections::BTreeMap::new();
    for path in files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (i, line) in text.lines().enumerate() {
            let bad = || anyhow!("{}:{}: expected `NUMBER SHA256`", path.display(), i + 1);
            let (number, hash) = line.split_once(' ').ok_or_else(bad)?;
            let number: u64 = number.parse().map_err(|_| bad())?;
            let hash: [u8; 32] = hex::decode(hash)
                .ok()
                .and_then(|h| h.try_into().ok())
                .ok_or_else(bad)?;
            if let Some(other) = saved.insert(number, hash)
                && other != hash
            {
                bail!(
                    "{}:{}: block {number} was received with two different hashes ({} and {})",
                    path.display(),
                    i + 1,
                    hex::encode(other),
                    hex::encode(hash)
                );
            }
        }
    }
    Ok(saved)
}

fn status_name(status: i32) -> String {
    Status::try_from(status).map_or(status.to_string(), |s| {
        format!("{} ({status})", s.as_str_name())
    })
}

/// One line about a block and whether everything in it checks out.
pub fn check_block(
    block: &Block,
    previous: Option<(u64, [u8; 32])>,
    config: &ChannelConfig,
) -> (String, bool) {
    let header = block.header.clone().unwrap_or_default();
    let data = block
        .data
        .as_ref()
        .map(|d| d.data.as_slice())
        .unwrap_or_default();
    let mut concat = Vec::new();
    data.iter().for_each(|d| concat.extend_from_slice(d));
    let data_ok = NativeCrypto.sha256(&concat)[..] == header.data_hash[..];
    let chain_ok = match previous {
        Some((n, hash)) if n + 1 == header.number => hash[..] == header.previous_hash[..],
        _ => true,
    };
    let signers = signatures(block, config);
    let signed_ok = header.number == 0 || signers.as_ref().is_ok_and(|s| !s.is_empty());
    let ok = data_ok && chain_ok && signed_ok;
    let hash = NativeCrypto.sha256(&header_der(&header));
    let signed = match signers {
        Ok(s) if s.is_empty() => "unsigned".to_string(),
        Ok(s) => format!("signed by {}", s.join(",")),
        Err(e) => format!("BAD SIGNATURE: {e}"),
    };
    let line = format!(
        "block {} txs={} hash={} data_hash={} previous={} {} {}",
        header.number,
        data.len(),
        hex::encode(&hash[..8]),
        if data_ok { "ok" } else { "MISMATCH" },
        if chain_ok { "ok" } else { "MISMATCH" },
        signed,
        if ok { "verified" } else { "FAILED" },
    );
    (line, ok)
}

/// The MSP ids of valid orderer-org signatures on a block; Err on any bad one.
fn signatures(block: &Block, config: &ChannelConfig) -> Result<Vec<String>> {
    let Some(raw) = block.metadata.as_ref().and_then(|m| m.metadata.first()) else {
        return Ok(vec![]);
    };
    let metadata = Metadata::decode(raw.clone())?;
    let header = header_der(&block.header.clone().unwrap_or_default());
    let now = crate::protoutil::now_unix_nanos();
    let mut signers = Vec::new();
    for sig in &metadata.signatures {
        let shdr = SignatureHeader::decode(sig.signature_header.clone())?;
        let identity = config
            .msps
            .validate_identity(&shdr.creator, now, &NativeCrypto)
            .map_err(|e| anyhow!("signer: {e}"))?;
        if !config.orderer_org_ids.contains(&identity.msp_id) {
            bail!("signer {} is not an orderer organization", identity.msp_id);
        }
        let mut signed = metadata.value.to_vec();
        signed.extend_from_slice(&sig.signature_header);
        signed.extend_from_slice(&header);
        if !NativeCrypto.verify_p256(&identity.public_key, &signed, &sig.signature) {
            bail!("signature by {} does not verify", identity.msp_id);
        }
        signers.push(identity.msp_id);
    }
    Ok(signers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, Bytes, BytesMut};
    use fabric_protos::common::BlockHeader;
    use fabric_protos::orderer::DeliverResponse;
    use http_body_util::{BodyExt, StreamBody};
    use std::convert::Infallible;
    use std::task::{Context, Poll};
    use tonic::body::Body;
    use tonic::codegen::http::{self, HeaderMap, HeaderValue};

    /// `orderer.AtomicBroadcast/Deliver` as a Go gRPC server answers it: the response
    /// headers go out only with the first answer, which comes only after the client's
    /// first request (a block numbered 7, then SUCCESS).
    #[derive(Clone)]
    struct HeadersWithFirstAnswer;

    impl tonic::server::NamedService for HeadersWithFirstAnswer {
        const NAME: &'static str = "orderer.AtomicBroadcast";
    }

    impl tower::Service<http::Request<Body>> for HeadersWithFirstAnswer {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = futures::future::BoxFuture<'static, Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<Body>) -> Self::Future {
            Box::pin(async move {
                let mut body = request.into_body();
                while let Some(Ok(frame)) = body.frame().await {
                    if frame.data_ref().is_some_and(|d| !d.is_empty()) {
                        break;
                    }
                }
                let block = Block {
                    header: Some(BlockHeader {
                        number: 7,
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                let answers = [
                    deliver_response::Type::Block(block),
                    deliver_response::Type::Status(Status::Success as i32),
                ];
                let mut frames: Vec<Result<http_body::Frame<Bytes>, tonic::Status>> = answers
                    .into_iter()
                    .map(|answer| {
                        let message = DeliverResponse {
                            r#type: Some(answer),
                        }
                        .encode_to_vec();
                        let mut data = BytesMut::new();
                        data.put_u8(0);
                        data.put_u32(message.len() as u32);
                        data.put_slice(&message);
                        Ok(http_body::Frame::data(data.freeze()))
                    })
                    .collect();
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from_static("0"));
                frames.push(Ok(http_body::Frame::trailers(trailers)));
                let body = Body::new(StreamBody::new(futures::stream::iter(frames)));
                Ok(http::Response::builder()
                    .header(http::header::CONTENT_TYPE, "application/grpc")
                    .body(body)
                    .unwrap())
            })
        }
    }

    #[tokio::test]
    async fn a_deliver_session_sends_before_the_call_resolves() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(HeadersWithFirstAnswer)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let msp = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
            "../testdata/fabric/crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp",
        );
        let id = Identity {
            orderer: addr.to_string(),
            channel: "mychannel".into(),
            msp_dir: msp,
            msp_id: "Org1MSP".into(),
            tls: TlsArgs::default(),
        };
        let tip = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let mut session = DeliverSession::open(&id).await.unwrap();
            session.tip().await.unwrap()
        })
        .await
        .expect("the session sent its request without waiting for the call");
        assert_eq!(tip.header.unwrap().number, 7);
    }
}
