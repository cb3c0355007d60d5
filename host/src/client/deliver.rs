//! `orderer deliver`: blocks from any orderer, each checked (data hash, hash chain,
//! the orderers' signatures against the channel's config), optionally recorded
//! (`--save`) and held against earlier records (`--expect`).

use super::{DeliverSession, Identity, position, status_name};
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use fabric_protos::common::{Block, Metadata, SignatureHeader, Status};
use fabric_protos::orderer::seek_info::SeekBehavior;
use ordering_core::blockheader::header_der;
use ordering_core::config::ChannelConfig;
use ordering_core::{Crypto, NativeCrypto};
use prost::Message;
use std::path::PathBuf;

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
