//! Restart of an orderer with a 1 GB ledger: how long `Ledger::open` plus the first
//! reads (the newest block, as `orderer start` reads the tip, and block 0, the config
//! block a Deliver client asks for first) take with a cold page cache; with the
//! persisted index, and without it (index file deleted: the open walks every block
//! file, as every open did before the index, and writes the index again).
//!
//! Two shapes of ~1 GiB ledger, built with `Ledger::append_batch` from real chained
//! blocks (header, data hash, previous hash = the previous header's hash, the five
//! metadata slots with a SIGNATURES entry and LAST_CONFIG as the orderer writes them):
//! - `a`: blocks of 100 envelopes of ~3 KB (~310 KB, what a loaded orderer cuts);
//! - `b`: blocks of one ~3 KB envelope (~330,000 blocks, the worst case for a scan).
//!
//! ```sh
//! cargo bench -p orderer --bench ledger_restart            # ~1-2 minutes, writes 2 GiB
//! ```
//! The page cache is dropped (`/proc/sys/vm/drop_caches`) before each cold run; that
//! needs root, and the output says when it could not be done. Environment:
//! - `LEDGER_BENCH_DIR=D`: build in `D/a` and `D/b` and keep them; a later run reuses a
//!   ledger found there (default: a temporary directory, removed at the end);
//! - `LEDGER_BENCH_SHAPES=a,b`: which shapes (default both);
//! - `LEDGER_BENCH_BYTES=N`: ledger size (default 1 GiB);
//! - `LEDGER_BENCH_EXTEND=LEDGER_DIR` with `LEDGER_BENCH_MSP=MSP_DIR` (and
//!   `LEDGER_BENCH_MSP_ID`, default OrdererMSP): instead of timing, append ~1 GiB of the
//!   first shape to an existing channel ledger (e.g. `orderer-data/chains/devchannel`),
//!   chained from its tip, plus one last block signed by that identity so that
//!   `orderer deliver --start newest` verifies it (the others carry a well-formed but
//!   not verifying signature). For the end-to-end measurement in docs/PERFORMANCE.md.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use fabric_protos::common::{
    Block, BlockData, BlockHeader, BlockMetadata, ChannelHeader, Envelope, Header, HeaderType,
    LastConfig, Metadata, MetadataSignature, OrdererBlockMetadata, Payload, SignatureHeader,
};
use fabric_protos::msp::SerializedIdentity;
use orderer::identity::Signer;
use orderer::ledger::{Ledger, OpenReport};
use ordering_core::NativeCrypto;
use ordering_core::blockheader::{header_der, header_hash};
use prost::Message;
use sha2::{Digest, Sha256};

/// Payload data per envelope: with header, creator and signature ~3,100 bytes, as
/// `orderer broadcast -s 2000` sends.
const DATA_BYTES: usize = 2000;
/// Bytes handed to one `append_batch` (one fsync each).
const BATCH_BYTES: usize = 32 << 20;

struct Shape {
    name: &'static str,
    envelopes_per_block: usize,
    what: &'static str,
}

const SHAPES: [Shape; 2] = [
    Shape {
        name: "a",
        envelopes_per_block: 100,
        what: "100 envelopes of ~3 KB per block",
    },
    Shape {
        name: "b",
        envelopes_per_block: 1,
        what: "1 envelope of ~3 KB per block",
    },
];

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`) this is
    // a smoke run of 8 MiB per ledger.
    let full = std::env::args().any(|a| a == "--bench");
    let bytes: u64 = match std::env::var("LEDGER_BENCH_BYTES") {
        Ok(v) => v.parse().context("LEDGER_BENCH_BYTES")?,
        Err(_) if full => 1 << 30,
        Err(_) => 8 << 20,
    };
    let wanted: Vec<String> = std::env::var("LEDGER_BENCH_SHAPES")
        .unwrap_or_else(|_| "a,b".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let shapes: Vec<&Shape> = SHAPES
        .iter()
        .filter(|s| wanted.iter().any(|w| w == s.name))
        .collect();
    if shapes.is_empty() {
        bail!("LEDGER_BENCH_SHAPES names no shape (a, b)");
    }

    if let Ok(dir) = std::env::var("LEDGER_BENCH_EXTEND") {
        return extend(Path::new(&dir), shapes[0], bytes);
    }

    let (root, _tmp) = match std::env::var("LEDGER_BENCH_DIR") {
        Ok(d) => (PathBuf::from(d), None),
        Err(_) => {
            let tmp = tempfile::Builder::new()
                .prefix("ledger-restart")
                .tempdir_in(std::env::var("TMPDIR").unwrap_or_else(|_| "/var/tmp".into()))?;
            (tmp.path().to_path_buf(), Some(tmp))
        }
    };
    let can_drop = drop_caches();
    println!(
        "ledger_restart: {} MiB per ledger in {}; {}",
        bytes >> 20,
        root.display(),
        if can_drop {
            "page cache dropped before each cold run"
        } else {
            "CANNOT drop the page cache (needs root): the \"cold\" figures below are WARM"
        }
    );
    for shape in shapes {
        let dir = root.join(shape.name);
        build(&dir, shape, bytes)?;
        measure(&dir, can_drop)?;
    }
    Ok(())
}

/// Builds the ledger unless `dir` already holds one.
fn build(dir: &Path, shape: &Shape, bytes: u64) -> Result<()> {
    let ledger = Ledger::open(dir)?;
    if ledger.height() > 0 {
        println!(
            "shape {} ({}): reusing {} blocks in {}",
            shape.name,
            shape.what,
            ledger.height(),
            dir.display()
        );
        return Ok(());
    }
    let start = Instant::now();
    let mut maker = Maker::new(shape.envelopes_per_block, None);
    let mut total = 0u64;
    while total < bytes {
        let batch = maker.batch(bytes - total);
        total += batch.iter().map(|b| b.len() as u64).sum::<u64>();
        ledger.append_batch(&batch)?;
    }
    let height = ledger.height();
    println!(
        "shape {} ({}): built {height} blocks, {} MiB, avg {} B/block, in {:.1} s",
        shape.name,
        shape.what,
        total >> 20,
        total / height,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

struct Timing {
    open: Duration,
    newest: Duration,
    first: Duration,
}

impl Timing {
    fn total(&self) -> Duration {
        self.open + self.newest + self.first
    }
}

/// Open + get(height - 1) + get(0), each checked.
fn restart(dir: &Path) -> Result<(Timing, OpenReport)> {
    let t0 = Instant::now();
    let ledger = Ledger::open(dir)?;
    let open = t0.elapsed();
    let height = ledger.height();
    let t1 = Instant::now();
    let newest = ledger.get(height - 1)?.context("newest block")?;
    let newest_time = t1.elapsed();
    let t2 = Instant::now();
    let first = ledger.get(0)?.context("block 0")?;
    let first_time = t2.elapsed();
    let n = |b: &Bytes| Block::decode(b.clone()).map(|b| b.header.unwrap_or_default().number);
    assert_eq!(n(&newest)?, height - 1);
    assert_eq!(n(&first)?, 0);
    Ok((
        Timing {
            open,
            newest: newest_time,
            first: first_time,
        },
        ledger.open_report(),
    ))
}

fn measure(dir: &Path, can_drop: bool) -> Result<()> {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let report = |label: &str, t: &Timing| {
        println!(
            "  {label:<34} open {:>7.1} ms  get(newest) {:>5.2} ms  get(0) {:>5.2} ms  total {:>7.1} ms",
            ms(t.open),
            ms(t.newest),
            ms(t.first),
            ms(t.total())
        );
    };
    let cold = || {
        if can_drop {
            drop_caches();
        }
    };
    // The first open after the index file is lost (or after an upgrade from a ledger
    // without one): every block file is walked, as every open did before the index.
    for run in 1..=2 {
        fs::remove_file(dir.join("index")).ok();
        cold();
        let (t, r) = restart(dir)?;
        report(&format!("cold, no index {run} ({} scanned)", r.scanned), &t);
    }
    for run in 1..=3 {
        cold();
        let (t, r) = restart(dir)?;
        report(
            &format!(
                "cold {run} ({} indexed, {} scanned)",
                r.from_index, r.scanned
            ),
            &t,
        );
    }
    for run in 1..=3 {
        let (t, _) = restart(dir)?;
        report(&format!("warm {run}"), &t);
    }
    Ok(())
}

/// `sync; echo 3 > /proc/sys/vm/drop_caches`; false when not allowed.
fn drop_caches() -> bool {
    let _ = std::process::Command::new("sync").status();
    fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

/// Appends ~`bytes` of blocks of `shape` to the existing ledger in `dir`.
fn extend(dir: &Path, shape: &Shape, bytes: u64) -> Result<()> {
    let msp =
        std::env::var("LEDGER_BENCH_MSP").context("LEDGER_BENCH_EXTEND needs LEDGER_BENCH_MSP")?;
    let msp_id = std::env::var("LEDGER_BENCH_MSP_ID").unwrap_or_else(|_| "OrdererMSP".into());
    let signer = Signer::from_msp_dir(Path::new(&msp), &msp_id)?;
    let ledger = Ledger::open(dir)?;
    let height = ledger.height();
    if height == 0 {
        bail!(
            "{} holds no block: start the orderer once first",
            dir.display()
        );
    }
    let tip = Block::decode(ledger.get(height - 1)?.context("tip")?)?;
    let last_config = orderer::protoutil::last_config(&tip);
    let mut maker = Maker::new(shape.envelopes_per_block, Some((&ledger, last_config)));
    let start = Instant::now();
    let mut total = 0u64;
    while total < bytes {
        let batch = maker.batch(bytes - total);
        total += batch.iter().map(|b| b.len() as u64).sum::<u64>();
        ledger.append_batch(&batch)?;
    }
    // The newest block, signed for real.
    let newest = maker.block(Some(&signer));
    total += newest.len() as u64;
    ledger.append(newest)?;
    println!(
        "appended {} blocks ({} MiB, shape {}) to {} in {:.1} s: height {}",
        ledger.height() - height,
        total >> 20,
        shape.name,
        dir.display(),
        start.elapsed().as_secs_f64(),
        ledger.height()
    );
    Ok(())
}

/// Makes chained blocks of realistic content.
struct Maker {
    envelopes_per_block: usize,
    next: u64,
    previous_hash: [u8; 32],
    last_config: u64,
    rng: u64,
    client: Bytes,
    orderer: Bytes,
}

impl Maker {
    fn new(envelopes_per_block: usize, after: Option<(&Ledger, u64)>) -> Maker {
        let (next, previous_hash, last_config) = match after {
            Some((ledger, last_config)) => (
                ledger.height(),
                ledger.tip_hash().unwrap_or_default(),
                last_config,
            ),
            None => (0, [0; 32], 0),
        };
        // Serialized identities of certificate size (a PEM of ~800 bytes).
        let identity = |msp: &str, seed: u8| {
            let mut pem = b"-----BEGIN CERTIFICATE-----\n".to_vec();
            pem.extend((0..760).map(|i: u32| b'A' + ((i * 7 + u32::from(seed)) % 26) as u8));
            pem.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
            Bytes::from(
                SerializedIdentity {
                    mspid: msp.into(),
                    id_bytes: pem.into(),
                }
                .encode_to_vec(),
            )
        };
        Maker {
            envelopes_per_block,
            next,
            previous_hash,
            last_config,
            rng: 0x9e37_79b9_7f4a_7c15,
            client: identity("Org1MSP", 1),
            orderer: identity("OrdererMSP", 2),
        }
    }

    fn random(&mut self, len: usize) -> Bytes {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            // xorshift64*
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            out.extend_from_slice(&self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        out.truncate(len);
        out.into()
    }

    fn envelope(&mut self) -> Bytes {
        let nonce = self.random(24);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let tx_id = hex::encode(Sha256::digest([&nonce[..], &self.client[..]].concat()));
        let payload = Payload {
            header: Some(Header {
                channel_header: ChannelHeader {
                    r#type: HeaderType::EndorserTransaction as i32,
                    timestamp: Some(prost_types::Timestamp {
                        seconds: now.as_secs() as i64,
                        nanos: now.subsec_nanos() as i32,
                    }),
                    channel_id: "devchannel".into(),
                    tx_id,
                    ..Default::default()
                }
                .encode_to_vec()
                .into(),
                signature_header: SignatureHeader {
                    creator: self.client.clone(),
                    nonce,
                }
                .encode_to_vec()
                .into(),
            }),
            data: self.random(DATA_BYTES),
        };
        Envelope {
            payload: payload.encode_to_vec().into(),
            signature: self.random(71),
        }
        .encode_to_vec()
        .into()
    }

    /// The orderer's five metadata slots; a real signature when `signer` is given.
    fn metadata(&mut self, header: &BlockHeader, signer: Option<&Signer>) -> BlockMetadata {
        let value = OrdererBlockMetadata {
            last_config: Some(LastConfig {
                index: self.last_config,
            }),
            consenter_metadata: Metadata::default().encode_to_vec().into(),
        }
        .encode_to_vec();
        let (signature_header, signature) = match signer {
            Some(signer) => {
                let shdr = signer.new_signature_header().encode_to_vec();
                let signed = [&value[..], &shdr, &header_der(header)].concat();
                let signature = signer.sign(&signed);
                (shdr, signature)
            }
            None => {
                let shdr = SignatureHeader {
                    creator: self.orderer.clone(),
                    nonce: self.random(24),
                }
                .encode_to_vec();
                (shdr, self.random(71).to_vec())
            }
        };
        let signatures = Metadata {
            value: value.into(),
            signatures: vec![MetadataSignature {
                signature_header: signature_header.into(),
                signature: signature.into(),
                identifier_header: Bytes::new(),
            }],
        };
        let last_config = Metadata {
            value: LastConfig {
                index: self.last_config,
            }
            .encode_to_vec()
            .into(),
            signatures: vec![],
        };
        BlockMetadata {
            metadata: vec![
                signatures.encode_to_vec().into(),
                last_config.encode_to_vec().into(),
                Bytes::new(),
                Bytes::new(),
                Bytes::new(),
            ],
        }
    }

    fn block(&mut self, signer: Option<&Signer>) -> Bytes {
        let data: Vec<Bytes> = (0..self.envelopes_per_block)
            .map(|_| self.envelope())
            .collect();
        let mut hasher = Sha256::new();
        data.iter().for_each(|d| hasher.update(d));
        let header = BlockHeader {
            number: self.next,
            previous_hash: self.previous_hash.to_vec().into(),
            data_hash: hasher.finalize().to_vec().into(),
        };
        let metadata = self.metadata(&header, signer);
        self.previous_hash = header_hash(&header, &NativeCrypto);
        self.next += 1;
        Block {
            header: Some(header),
            data: Some(BlockData { data }),
            metadata: Some(metadata),
        }
        .encode_to_vec()
        .into()
    }

    /// Blocks until `BATCH_BYTES` or `left` bytes are reached.
    fn batch(&mut self, left: u64) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut size = 0u64;
        while size < BATCH_BYTES as u64 && size < left {
            let block = self.block(None);
            size += block.len() as u64;
            out.push(block);
        }
        out
    }
}
