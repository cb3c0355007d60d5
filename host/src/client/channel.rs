//! `orderer channel`: read a channel's config and change it without Fabric's tools.
//! Files are standard Fabric messages: a config block (`fetch-config`) and a
//! CONFIG_UPDATE envelope (`update --output`, `sign`, `submit`), so `configtxlator`
//! and `peer channel signconfigtx/update` work on ours and we on theirs. `join`,
//! `list` and `remove` are `osnadmin channel`'s, through the admin listener. `create`
//! is `peer channel create`'s, for an orderer with a system channel.

use super::configupdate::{self, BatchEdits};
use super::participation;
use super::{DeliverSession, Identity, connect};
use crate::identity::Signer;
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use fabric_protos::common::{ConfigUpdate, Envelope, Status};
use prost::Message;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct ChannelArgs {
    #[command(subcommand)]
    pub command: ChannelCommand,
}

#[derive(Subcommand, Debug)]
pub enum ChannelCommand {
    /// Write the channel's latest config block to a file.
    FetchConfig {
        #[command(flatten)]
        identity: Identity,
        #[arg(long, default_value = "config.block")]
        output: PathBuf,
    },
    /// Change batch settings: fetch the config, edit, compute the update, sign it
    /// with every --signer, and submit it (or write it with --output).
    Update {
        #[command(flatten)]
        identity: Identity,
        #[arg(long)]
        max_message_count: Option<u32>,
        #[arg(long)]
        absolute_max_bytes: Option<u32>,
        #[arg(long)]
        preferred_max_bytes: Option<u32>,
        /// A Go duration, e.g. 1s or 500ms.
        #[arg(long)]
        batch_timeout: Option<String>,
        /// MSPDIR:MSPID of an identity whose signature the update carries (repeatable;
        /// e.g. the orderer org's admin). The first also signs the envelope.
        #[arg(long = "signer", value_parser = parse_signer)]
        signers: Vec<SignerSpec>,
        /// Write the signed CONFIG_UPDATE envelope here instead of submitting it.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Add a signature to a CONFIG_UPDATE envelope file (as `peer channel signconfigtx`).
    Sign {
        #[arg(long)]
        input: PathBuf,
        #[arg(long = "signer", value_parser = parse_signer)]
        signer: SignerSpec,
        /// Default: overwrite the input.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Submit a CONFIG_UPDATE envelope file as it is.
    Submit {
        #[command(flatten)]
        identity: Identity,
        #[arg(long)]
        input: PathBuf,
    },
    /// Create a channel through the orderer's system channel, as `peer channel
    /// create` does: sign the creation transaction (`configtxgen
    /// -outputCreateChannelTx`) as --msp-dir (an admin of an org of the channel's
    /// consortium), send it, and write the new channel's genesis block. --channel
    /// names the new channel.
    Create {
        #[command(flatten)]
        identity: Identity,
        /// The creation transaction (a CONFIG_UPDATE envelope).
        #[arg(long)]
        tx_file: PathBuf,
        /// Where the genesis block goes [default: <channel>.block].
        #[arg(long)]
        output_block: Option<PathBuf>,
        /// How long to wait for the genesis block, in seconds.
        #[arg(long, default_value_t = 15)]
        timeout_secs: u64,
    },
    /// Join the orderer to the channel of a config block (as `osnadmin channel join`).
    Join {
        #[command(flatten)]
        admin: Admin,
        /// The channel's genesis block, e.g. from `configtxgen -outputBlock`.
        #[arg(long)]
        config_block: PathBuf,
    },
    /// Apply a CONFIG_UPDATE envelope file through the admin API (as Fabric 3.x's
    /// `osnadmin channel update`).
    UpdateEnvelope {
        #[command(flatten)]
        admin: Admin,
        #[arg(long)]
        config_update_envelope: PathBuf,
    },
    /// The channels the orderer serves, or one channel's details (as `osnadmin channel list`).
    List {
        #[command(flatten)]
        admin: Admin,
        channel: Option<String>,
    },
    /// Remove a channel from the orderer, ledger included (as `osnadmin channel remove`).
    Remove {
        #[command(flatten)]
        admin: Admin,
        channel: String,
    },
}

#[derive(Args, Debug)]
pub struct Admin {
    /// The orderer's admin listener, HOST:PORT.
    #[arg(long = "admin", default_value = "127.0.0.1:9443")]
    pub address: String,
}

#[derive(Clone, Debug)]
pub struct SignerSpec {
    dir: PathBuf,
    msp_id: String,
}

fn parse_signer(text: &str) -> Result<SignerSpec, String> {
    let (dir, msp_id) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?}: expected MSPDIR:MSPID"))?;
    Ok(SignerSpec {
        dir: dir.into(),
        msp_id: msp_id.into(),
    })
}

impl SignerSpec {
    fn load(&self) -> Result<Signer> {
        Signer::from_msp_dir(&self.dir, &self.msp_id)
    }
}

pub async fn run(args: ChannelArgs) -> Result<()> {
    match args.command {
        ChannelCommand::FetchConfig { identity, output } => {
            let block = DeliverSession::open(&identity)
                .await?
                .latest_config_block()
                .await?;
            let number = block.header.as_ref().map_or(0, |h| h.number);
            write(&output, &block.encode_to_vec())?;
            println!(
                "config block {number} of {} written to {}",
                identity.channel,
                output.display()
            );
            Ok(())
        }
        ChannelCommand::Update {
            identity,
            max_message_count,
            absolute_max_bytes,
            preferred_max_bytes,
            batch_timeout,
            signers,
            output,
        } => {
            let edits = BatchEdits {
                max_message_count,
                absolute_max_bytes,
                preferred_max_bytes,
                timeout: batch_timeout,
            };
            let signers = signers
                .iter()
                .map(SignerSpec::load)
                .collect::<Result<Vec<_>>>()?;
            let Some(submitter) = signers.first() else {
                bail!("at least one --signer MSPDIR:MSPID is needed (e.g. an orderer org admin)");
            };
            let block = DeliverSession::open(&identity)
                .await?
                .latest_config_block()
                .await?;
            let original = configupdate::config_from_block(&block)?;
            let updated = configupdate::apply_batch_edits(&original, &edits)?;
            let update = configupdate::compute_update(&identity.channel, &original, &updated)?;
            let mut update_envelope = configupdate::unsigned_update(&update);
            for signer in &signers {
                configupdate::add_signature(&mut update_envelope, signer);
            }
            let envelope =
                configupdate::update_envelope(&identity.channel, &update_envelope, submitter);
            match output {
                Some(path) => {
                    write(&path, &envelope.encode_to_vec())?;
                    println!(
                        "config update for {} written to {}",
                        identity.channel,
                        path.display()
                    );
                    Ok(())
                }
                None => submit(&identity, envelope).await,
            }
        }
        ChannelCommand::Sign {
            input,
            signer,
            output,
        } => {
            let envelope = read_envelope(&input)?;
            let payload_channel = crate::protoutil::channel_header(&envelope)
                .map_err(|e| anyhow!("{}: {e}", input.display()))?
                .channel_id;
            let mut update = configupdate::update_of_envelope(&envelope)
                .with_context(|| format!("{}", input.display()))?;
            let signer = signer.load()?;
            configupdate::add_signature(&mut update, &signer);
            let signed = configupdate::update_envelope(&payload_channel, &update, &signer);
            let output = output.unwrap_or(input);
            write(&output, &signed.encode_to_vec())?;
            println!(
                "{} now carries {} signature(s); written to {}",
                payload_channel,
                update.signatures.len(),
                output.display()
            );
            Ok(())
        }
        ChannelCommand::Submit { identity, input } => {
            submit(&identity, read_envelope(&input)?).await
        }
        ChannelCommand::Create {
            identity,
            tx_file,
            output_block,
            timeout_secs,
        } => {
            let output =
                output_block.unwrap_or_else(|| format!("{}.block", identity.channel).into());
            create(
                &identity,
                &tx_file,
                &output,
                Duration::from_secs(timeout_secs),
            )
            .await
        }
        ChannelCommand::Join {
            admin,
            config_block,
        } => participation::join(&admin.address, &config_block).await,
        ChannelCommand::UpdateEnvelope {
            admin,
            config_update_envelope,
        } => participation::update(&admin.address, &config_update_envelope).await,
        ChannelCommand::List { admin, channel } => {
            participation::list(&admin.address, channel.as_deref()).await
        }
        ChannelCommand::Remove { admin, channel } => {
            participation::remove(&admin.address, &channel).await
        }
    }
}

/// `peer channel create`: the creation transaction's config update, signed and
/// re-wrapped by the identity, sent; then block 0 of the new channel, fetched.
async fn create(
    identity: &Identity,
    tx_file: &Path,
    output: &Path,
    timeout: Duration,
) -> Result<()> {
    let tx = read_envelope(tx_file)?;
    let mut update =
        configupdate::update_of_envelope(&tx).with_context(|| format!("{}", tx_file.display()))?;
    let named = ConfigUpdate::decode(update.config_update.clone())
        .map_err(|e| {
            anyhow!(
                "{}: not a channel creation transaction: {e}",
                tx_file.display()
            )
        })?
        .channel_id;
    if named != identity.channel {
        bail!(
            "{}: the transaction creates channel {named:?}, not --channel {:?}",
            tx_file.display(),
            identity.channel
        );
    }
    let signer = Signer::from_msp_dir(&identity.msp_dir, &identity.msp_id)?;
    configupdate::add_signature(&mut update, &signer);
    let envelope = configupdate::update_envelope(&identity.channel, &update, &signer);
    broadcast_one(identity, envelope, "channel creation").await?;
    let deadline = Instant::now() + timeout;
    let block = loop {
        let attempt = match DeliverSession::open(identity).await {
            Ok(mut session) => session.single(0).await,
            Err(e) => Err(e),
        };
        match attempt {
            Ok(block) => break block,
            Err(e) if Instant::now() >= deadline => {
                bail!(
                    "no genesis block of {} within {timeout:?}: {e:#}",
                    identity.channel
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    write(output, &block.encode_to_vec())?;
    println!(
        "channel {} created; genesis block written to {}",
        identity.channel,
        output.display()
    );
    Ok(())
}

async fn submit(identity: &Identity, envelope: Envelope) -> Result<()> {
    broadcast_one(identity, envelope, "config update").await
}

/// Sends one envelope; Ok on SUCCESS, else the status and info.
async fn broadcast_one(identity: &Identity, envelope: Envelope, what: &str) -> Result<()> {
    let mut client = connect(identity).await?;
    let mut answers = client
        .broadcast(tokio_stream::iter(vec![envelope]))
        .await?
        .into_inner();
    let answer = answers
        .message()
        .await?
        .context("the orderer closed the stream without an answer")?;
    let status = Status::try_from(answer.status)
        .map_or(answer.status.to_string(), |s| s.as_str_name().into());
    if answer.status != Status::Success as i32 {
        bail!("{what} rejected: {status}: {}", answer.info);
    }
    println!("{what} accepted: {status}");
    Ok(())
}

fn read_envelope(path: &Path) -> Result<Envelope> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Envelope::decode(raw.as_slice())
        .map_err(|e| anyhow!("{}: not a common.Envelope: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
