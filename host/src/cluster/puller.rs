//! Fabric's cluster `BlockPuller`: a channel's blocks pulled over Deliver from the
//! other consenters, for a node that fell behind a Raft snapshot. Requests are signed
//! by this orderer and bound to its TLS client certificate, as Fabric's are; every
//! block is verified before it is handed on: the next number, chained onto the last
//! block, its data hash right, and its signatures satisfying the channel's
//! `/Channel/Orderer/BlockValidation` policy under the config in force (a pulled
//! config block puts its own config in force for the blocks after it).

use super::RemoteNode;
use super::comm::{Identity, client_tls, connect};
use crate::identity::Signer;
use anyhow::{Context, Result, anyhow, ensure};
use bytes::Bytes;
use fabric_protos::common::{Block, HeaderType, Metadata, SignatureHeader};
use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use fabric_protos::orderer::deliver_response::Type as Answer;
use fabric_protos::orderer::seek_info::{SeekBehavior, SeekErrorResponse};
use fabric_protos::orderer::seek_position::Type as Position;
use fabric_protos::orderer::{SeekInfo, SeekPosition, SeekSpecified};
use ordering_core::blockheader::{header_der, header_hash};
use ordering_core::config::ChannelConfig;
use ordering_core::policies::SignedData;
use ordering_core::{Crypto, NativeCrypto};
use prost::Message as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long a source may take to send the next block before the next one is tried
/// (Fabric's Cluster.ReplicationPullTimeout default).
const PULL_TIMEOUT: Duration = Duration::from_secs(5);
/// Between two rounds over every source.
const RETRY: Duration = Duration::from_secs(1);

const BLOCK_VALIDATION: &str = "/Channel/Orderer/BlockValidation";

pub struct BlockPuller {
    channel: String,
    /// The other consenters (changed by config blocks).
    sources: std::sync::Mutex<Vec<RemoteNode>>,
    identity: Option<Identity>,
    signer: Arc<Signer>,
}

/// What the next pulled block is checked against.
pub struct Verifier {
    /// The config in force; None before the genesis block.
    config: Option<ChannelConfig>,
    /// Number and header hash of the last block verified; None before the genesis block.
    last: Option<(u64, Vec<u8>)>,
}

impl Verifier {
    /// Blocks after `tip` (an encoded header), under the config of `config_block`.
    pub fn new(config_block: &[u8], tip: &[u8]) -> Result<Verifier> {
        let config = ChannelConfig::from_config_block(config_block, &NativeCrypto)
            .map_err(|e| anyhow!("the channel's config: {e}"))?;
        let tip = fabric_protos::common::BlockHeader::decode(tip)?;
        let hash = header_hash(&tip, &NativeCrypto).to_vec();
        Ok(Verifier {
            config: Some(config),
            last: Some((tip.number, hash)),
        })
    }

    /// Blocks from the genesis block on. The genesis block is signed by no one: what
    /// vouches for it, and so for every block after it, is a later block the caller
    /// trusts and checks [`Verifier::last_hash`] against.
    pub fn from_genesis() -> Verifier {
        Verifier {
            config: None,
            last: None,
        }
    }

    /// The header hash of the last block verified.
    pub fn last_hash(&self) -> Option<&[u8]> {
        self.last.as_ref().map(|(_, hash)| &hash[..])
    }

    /// Checks `block` as the next one.
    pub fn verify(&mut self, block: &Block) -> Result<()> {
        let header = block.header.as_ref().context("a block without a header")?;
        let number = header.number;
        let expected = self.last.as_ref().map_or(0, |(n, _)| n + 1);
        ensure!(
            number == expected,
            "got block [{number}], expected [{expected}]"
        );
        if let Some((last, hash)) = &self.last {
            ensure!(
                header.previous_hash[..] == hash[..],
                "block [{number}] does not chain onto block [{last}]"
            );
        }
        let data = block.data.as_ref().map(|d| &d.data[..]).unwrap_or_default();
        let concatenated: Vec<u8> = data.iter().flat_map(|d| d.iter().copied()).collect();
        ensure!(
            NativeCrypto.sha256(&concatenated)[..] == header.data_hash[..],
            "block [{number}]: the data hash does not match its data"
        );
        match &self.config {
            Some(config) => {
                check_signatures(config, block).with_context(|| format!("block [{number}]"))?;
                // A config block puts its config in force for the blocks after it.
                if let [only] = data
                    && let Ok(config) = ChannelConfig::from_config_envelope(only, &NativeCrypto)
                {
                    self.config = Some(config);
                }
            }
            None => {
                let config =
                    ChannelConfig::from_config_block(&block.encode_to_vec(), &NativeCrypto)
                        .map_err(|e| anyhow!("the genesis block: {e}"))?;
                self.config = Some(config);
            }
        }
        self.last = Some((number, header_hash(header, &NativeCrypto).to_vec()));
        Ok(())
    }
}

fn check_signatures(config: &ChannelConfig, block: &Block) -> Result<()> {
    let slot = block
        .metadata
        .as_ref()
        .and_then(|m| m.metadata.first())
        .context("no SIGNATURES metadata")?;
    let metadata = Metadata::decode(slot.clone())?;
    let header = header_der(block.header.as_ref().unwrap_or(&Default::default()));
    let mut signed = Vec::new();
    let mut creators = Vec::new();
    for signature in &metadata.signatures {
        let shdr = SignatureHeader::decode(signature.signature_header.clone())?;
        let mut data = metadata.value.to_vec();
        data.extend_from_slice(&signature.signature_header);
        data.extend_from_slice(&header);
        signed.push(data);
        creators.push(shdr.creator);
    }
    let set: Vec<SignedData> = metadata
        .signatures
        .iter()
        .zip(&signed)
        .zip(&creators)
        .map(|((signature, data), creator)| SignedData {
            data,
            identity: creator,
            signature: &signature.signature,
        })
        .collect();
    let now = crate::protoutil::now_unix_nanos();
    config
        .policies
        .evaluate(BLOCK_VALIDATION, &set, &config.msps, now, &NativeCrypto)
        .map_err(|e| anyhow!("{BLOCK_VALIDATION}: {e}"))
}

impl BlockPuller {
    pub fn new(
        channel: &str,
        sources: Vec<RemoteNode>,
        identity: Option<Identity>,
        signer: Arc<Signer>,
    ) -> BlockPuller {
        BlockPuller {
            channel: channel.to_string(),
            sources: std::sync::Mutex::new(sources),
            identity,
            signer,
        }
    }

    pub fn set_sources(&self, sources: Vec<RemoteNode>) {
        *self.sources.lock().unwrap_or_else(|p| p.into_inner()) = sources;
    }

    /// Pulls blocks `from..=to`, handing each to `each` once `verifier` passed it;
    /// tries the sources in turn until every block came, or `each` fails.
    pub async fn pull(
        &self,
        verifier: &mut Verifier,
        from: u64,
        to: u64,
        mut each: impl FnMut(&Block) -> Result<()>,
    ) -> Result<()> {
        let mut next = from;
        loop {
            let sources = self
                .sources
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            ensure!(!sources.is_empty(), "no other orderer to pull from");
            for source in &sources {
                if next > to {
                    return Ok(());
                }
                match self
                    .pull_from(source, verifier, &mut next, to, &mut each)
                    .await
                {
                    Ok(()) => {}
                    Err(Pull::Source(e)) => tracing::warn!(
                        channel = %self.channel,
                        "pulling block [{next}] from {}: {e:#}",
                        source.endpoint
                    ),
                    Err(Pull::Local(e)) => return Err(e),
                }
            }
            if next > to {
                return Ok(());
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    async fn pull_from(
        &self,
        source: &RemoteNode,
        verifier: &mut Verifier,
        next: &mut u64,
        to: u64,
        each: &mut impl FnMut(&Block) -> Result<()>,
    ) -> Result<(), Pull> {
        let tls = client_tls(self.identity.as_ref(), source).map_err(Pull::source)?;
        let connection = connect(source, tls.as_ref()).await.map_err(Pull::source)?;
        let mut client = AtomicBroadcastClient::new(connection)
            .max_decoding_message_size(crate::comm::MAX_MESSAGE_BYTES);
        let request = self.seek(*next, to);
        let call = client.deliver(futures::stream::iter([request]));
        let mut answers = tokio::time::timeout(PULL_TIMEOUT, call)
            .await
            .map_err(|_| Pull::source("no answer"))?
            .map_err(Pull::source)?
            .into_inner();
        while *next <= to {
            let answer = tokio::time::timeout(PULL_TIMEOUT, answers.message())
                .await
                .map_err(|_| Pull::source("no block in time"))?
                .map_err(Pull::source)?
                .ok_or_else(|| Pull::source("the stream ended"))?;
            match answer.r#type {
                Some(Answer::Block(block)) => {
                    verifier.verify(&block).map_err(Pull::Source)?;
                    each(&block).map_err(Pull::Local)?;
                    *next += 1;
                }
                Some(Answer::Status(status)) => {
                    return Err(Pull::source(format!("status {status}")));
                }
                None => return Err(Pull::source("an empty answer")),
            }
        }
        Ok(())
    }

    /// A signed SeekInfo for blocks `from..=to`, bound to our TLS certificate.
    fn seek(&self, from: u64, to: u64) -> fabric_protos::common::Envelope {
        let position = |number| SeekPosition {
            r#type: Some(Position::Specified(SeekSpecified { number })),
        };
        let seek = SeekInfo {
            start: Some(position(from)),
            stop: Some(position(to)),
            behavior: SeekBehavior::BlockUntilReady as i32,
            error_response: SeekErrorResponse::Strict as i32,
            ..Default::default()
        };
        let binding = self
            .identity
            .as_ref()
            .map(|identity| NativeCrypto.sha256(&identity.chain[0]).to_vec())
            .unwrap_or_default();
        self.signer.signed_envelope_with_tls_binding(
            HeaderType::DeliverSeekInfo,
            &self.channel,
            Bytes::from(seek.encode_to_vec()),
            SystemTime::now(),
            &binding,
        )
    }
}

/// Why a pull stopped: the source failed (try another), or handing the block on did.
enum Pull {
    Source(anyhow::Error),
    Local(anyhow::Error),
}

impl Pull {
    fn source(e: impl std::fmt::Display) -> Pull {
        Pull::Source(anyhow!("{e}"))
    }
}
