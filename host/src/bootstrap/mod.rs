//! The embedded dev default: Fabric's `cryptogen` + `configtxgen` for one channel.
//!
//! `orderer start` with no MSP flags calls [`ensure_dev_network`]: the first run creates
//! `<data_dir>/crypto/` (two orgs, real X.509 P-256 material in Fabric's MSP layout)
//! and `<data_dir>/devchannel-genesis.block` (channel `devchannel`, solo); later runs
//! reuse both as they are.

pub mod crypto;
pub mod genesis;
pub mod mspconfig;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use fabric_protos::common::Block;
use prost::Message;

pub use crypto::{CLIENT_MSP_ID, ORDERER_MSP_ID, generate_crypto};
pub use genesis::{Consensus, genesis_block};

/// The dev channel's name.
pub const DEV_CHANNEL_ID: &str = "devchannel";

/// Where the dev network's pieces are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevNetwork {
    /// orderer0.example.com's MSP folder (signs blocks).
    pub orderer_msp_dir: PathBuf,
    pub orderer_msp_id: String,
    /// User1@org1.example.com's MSP folder (a `client` of Org1MSP).
    pub client_msp_dir: PathBuf,
    pub client_msp_id: String,
    /// Admin@example.com's MSP folder (the orderer org admin: signs config updates of
    /// the orderer group, e.g. BatchSize); its MSP id is `orderer_msp_id`.
    pub admin_msp_dir: PathBuf,
    /// Admin@org1.example.com's MSP folder (the application org admin); MSP id
    /// `client_msp_id`.
    pub client_admin_msp_dir: PathBuf,
    pub genesis_block_path: PathBuf,
    pub channel_id: String,
}

/// Creates the dev network under `data_dir` on the first run and reuses it afterwards.
/// `listen` (host:port) becomes the orderer org's endpoint in the genesis block, with
/// an unspecified host (0.0.0.0, [::]) written as 127.0.0.1.
pub fn ensure_dev_network(data_dir: &Path, listen: &str) -> Result<DevNetwork> {
    let crypto_dir = data_dir.join("crypto");
    let orderer_org = crypto::orderer_org_dir(&crypto_dir);
    let client_org = crypto::client_org_dir(&crypto_dir);
    let network = DevNetwork {
        orderer_msp_dir: crypto::orderer_node_msp_dir(&crypto_dir),
        orderer_msp_id: ORDERER_MSP_ID.into(),
        client_msp_dir: crypto::user_msp_dir(&client_org, "User1", crypto::CLIENT_DOMAIN),
        client_msp_id: CLIENT_MSP_ID.into(),
        admin_msp_dir: crypto::user_msp_dir(&orderer_org, "Admin", crypto::ORDERER_DOMAIN),
        client_admin_msp_dir: crypto::user_msp_dir(&client_org, "Admin", crypto::CLIENT_DOMAIN),
        genesis_block_path: data_dir.join(format!("{DEV_CHANNEL_ID}-genesis.block")),
        channel_id: DEV_CHANNEL_ID.into(),
    };

    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data folder {}", data_dir.display()))?;
    if !crypto_dir.exists() {
        // Generate next to the final place, then rename: a crash leaves no half folder.
        let staging = data_dir.join(".crypto.partial");
        if staging.exists() {
            std::fs::remove_dir_all(&staging)
                .with_context(|| format!("removing {}", staging.display()))?;
        }
        generate_crypto(&staging).context("generating the dev crypto material")?;
        std::fs::rename(&staging, &crypto_dir).with_context(|| {
            format!("renaming {} to {}", staging.display(), crypto_dir.display())
        })?;
        tracing::info!(
            "dev default: created crypto material in {}",
            crypto_dir.display()
        );
    }
    // Either way the identities must load (a damaged folder fails here, clearly).
    for (dir, id) in [
        (&network.orderer_msp_dir, ORDERER_MSP_ID),
        (&network.client_msp_dir, CLIENT_MSP_ID),
        (&network.admin_msp_dir, ORDERER_MSP_ID),
        (&network.client_admin_msp_dir, CLIENT_MSP_ID),
    ] {
        crate::identity::Signer::from_msp_dir(dir, id).context("dev default crypto material")?;
    }

    let path = &network.genesis_block_path;
    if path.exists() {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let block = Block::decode(bytes.as_slice())
            .with_context(|| format!("{}: not a protobuf common.Block", path.display()))?;
        if block.header.as_ref().map(|h| h.number) != Some(0) {
            bail!("{}: not a genesis block (number is not 0)", path.display());
        }
    } else {
        let block = genesis_block(
            DEV_CHANNEL_ID,
            &orderer_org.join("msp"),
            &[(CLIENT_MSP_ID, &client_org.join("msp"))],
            ORDERER_MSP_ID,
            &endpoint_address(listen),
            Consensus::Solo,
        )?;
        let staging = path.with_extension("block.partial");
        std::fs::write(&staging, block.encode_to_vec())
            .with_context(|| format!("writing {}", staging.display()))?;
        std::fs::rename(&staging, path)
            .with_context(|| format!("renaming {}", staging.display()))?;
        tracing::info!("dev default: created {}", path.display());
    }
    Ok(network)
}

/// `listen` as clients should dial it: an unspecified host becomes 127.0.0.1.
fn endpoint_address(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some(("0.0.0.0" | "[::]" | "::" | "", port)) => format!("127.0.0.1:{port}"),
        _ => listen.to_string(),
    }
}

#[cfg(test)]
mod tests;
