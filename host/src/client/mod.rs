//! The client for people: `orderer bench` measures an orderer (acks/s, delivered/s,
//! ack latency, the orderer's CPU and memory) and `orderer broadcast` is its one-line
//! form without followers; `orderer deliver` fetches blocks and verifies them (hash chain, data hash,
//! orderer signatures against the channel's orderer MSPs); `orderer channel` reads
//! and updates a channel's config, and joins, lists and removes channels.

pub mod bench;
pub mod channel;
pub mod configupdate;
pub mod core;
mod deliver;
pub mod manychannels;
pub mod participation;

pub use deliver::{DeliverArgs, check_block, deliver};

use crate::comm::{self, ClientTls, MAX_MESSAGE_BYTES};
use crate::identity::Signer;
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use fabric_protos::common::{Block, Envelope, HeaderType, Status};
use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use fabric_protos::orderer::seek_info::SeekBehavior;
use fabric_protos::orderer::{
    DeliverResponse, SeekInfo, SeekPosition, deliver_response, seek_position,
};
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

fn status_name(status: i32) -> String {
    Status::try_from(status).map_or(status.to_string(), |s| {
        format!("{} ({status})", s.as_str_name())
    })
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
