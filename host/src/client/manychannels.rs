//! `orderer bench-channels`: what many channels cost an orderer. Joins N copies of a
//! genesis block (channel i is the block renamed `<prefix>-<i>`) through the channel
//! participation API, then reads the orderer's memory, threads and idle CPU from
//! /proc. `orderer bench --channel <prefix> --channels N` then loads them all at once.

use super::participation::join_block;
use super::process_cpu_seconds;
use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::Args;
use fabric_protos::common::{Block, ChannelHeader, Envelope, Header, Payload};
use futures::StreamExt;
use prost::Message;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct ManyChannelsArgs {
    /// A channel's genesis block (configtxgen -outputBlock); every channel joined is
    /// a copy of it under another name.
    #[arg(long)]
    pub genesis_block: PathBuf,
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    #[arg(long, default_value = "bench")]
    pub prefix: String,
    /// The orderer's admin listener, HOST:PORT.
    #[arg(long = "admin", default_value = "127.0.0.1:9443")]
    pub admin: String,
    /// The orderer's process id (same machine): memory, threads and CPU come from /proc.
    #[arg(long)]
    pub orderer_pid: u32,
    /// How long to watch the idle orderer's CPU after the joins.
    #[arg(long, default_value_t = 10)]
    pub idle_secs: u64,
    /// Joins in flight at once.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
}

/// `block` as the genesis block of `channel_id`: the CONFIG envelope's channel header
/// renamed (configtxgen's genesis envelope is unsigned) and the data hash redone.
pub fn renamed_genesis(block: &Block, channel_id: &str) -> Result<Block> {
    let mut block = block.clone();
    let data = block.data.as_mut().context("the block has no data")?;
    let first = data.data.first_mut().context("the block has no envelope")?;
    let mut envelope = Envelope::decode(first.clone()).context("not an envelope")?;
    let mut payload = Payload::decode(envelope.payload.clone()).context("not a payload")?;
    let header = payload.header.as_mut().context("no header")?;
    let mut chdr =
        ChannelHeader::decode(header.channel_header.clone()).context("no channel header")?;
    chdr.channel_id = channel_id.to_string();
    *header = Header {
        channel_header: chdr.encode_to_vec().into(),
        signature_header: header.signature_header.clone(),
    };
    envelope.payload = payload.encode_to_vec().into();
    *first = Bytes::from(envelope.encode_to_vec());
    let mut hash = Sha256::new();
    data.data.iter().for_each(|d| hash.update(d));
    block.header.as_mut().context("no header")?.data_hash = hash.finalize().to_vec().into();
    Ok(block)
}

/// `VmRSS` and `Threads` of `pid`.
fn rss_and_threads(pid: u32) -> Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| anyhow!("{path}: no {name}"))
    };
    Ok((field("VmRSS:")? * 1024, field("Threads:")?))
}

const MIB: f64 = 1024.0 * 1024.0;

pub async fn run(args: ManyChannelsArgs) -> Result<()> {
    let raw = std::fs::read(&args.genesis_block)
        .with_context(|| format!("reading {}", args.genesis_block.display()))?;
    let genesis = Block::decode(raw.as_slice())
        .map_err(|e| anyhow!("{}: not a block: {e}", args.genesis_block.display()))?;
    let blocks = (0..args.count)
        .map(|i| {
            renamed_genesis(&genesis, &format!("{}-{i}", args.prefix)).map(|b| b.encode_to_vec())
        })
        .collect::<Result<Vec<_>>>()?;
    let (rss_before, threads_before) = rss_and_threads(args.orderer_pid)?;

    let started = Instant::now();
    let answers: Vec<Result<u16>> = futures::stream::iter(blocks.iter())
        .map(|block| async { Ok(join_block(&args.admin, block).await?.0.as_u16()) })
        .buffer_unordered(args.parallel.max(1))
        .collect()
        .await;
    let join_time = started.elapsed();
    let mut joined = 0;
    for answer in answers {
        match answer? {
            201 => joined += 1,
            405 => {} // already a member
            status => bail!("a join was answered {status}"),
        }
    }

    // Let background work of the joins settle before watching the idle orderer.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_after, threads_after) = rss_and_threads(args.orderer_pid)?;
    let cpu_before = process_cpu_seconds(args.orderer_pid)?;
    let idle = Duration::from_secs(args.idle_secs.max(1));
    tokio::time::sleep(idle).await;
    let idle_cpu = process_cpu_seconds(args.orderer_pid)? - cpu_before;

    let n = args.count.max(1) as f64;
    println!(
        "channels        {} ({joined} joined now) as {}-0..{}-{}",
        args.count,
        args.prefix,
        args.prefix,
        args.count.saturating_sub(1)
    );
    println!(
        "join time       {:.2} s ({:.0} joins/s, {} at once)",
        join_time.as_secs_f64(),
        joined as f64 / join_time.as_secs_f64(),
        args.parallel
    );
    println!(
        "orderer RSS     {:.1} MiB before, {:.1} MiB after: {:.3} MiB per channel",
        rss_before as f64 / MIB,
        rss_after as f64 / MIB,
        (rss_after as f64 - rss_before as f64) / MIB / n
    );
    println!("orderer threads {threads_before} before, {threads_after} after");
    println!(
        "idle CPU        {:.2}% of one core over {} s",
        100.0 * idle_cpu / idle.as_secs_f64(),
        idle.as_secs()
    );
    Ok(())
}
