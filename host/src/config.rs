//! `orderer start` settings: flags, with Fabric's orderer.yaml environment variables
//! as fallbacks, and Fabric's defaults.

use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct StartArgs {
    /// Client gRPC listener, HOST:PORT [env: ORDERER_GENERAL_LISTENADDRESS and
    /// ORDERER_GENERAL_LISTENPORT; default 127.0.0.1:7050]
    #[arg(long)]
    pub listen: Option<String>,

    /// Ledger and dev-default folder.
    #[arg(
        long,
        env = "ORDERER_FILELEDGER_LOCATION",
        default_value = "./orderer-data"
    )]
    pub data_dir: PathBuf,

    /// The orderer's MSP folder (signcerts/, keystore/). Without it, the embedded dev
    /// default generates (or reuses) an orderer org, a client org and `devchannel`.
    #[arg(long, env = "ORDERER_GENERAL_LOCALMSPDIR")]
    pub msp_dir: Option<PathBuf>,

    /// The MSP ID of the orderer's organization (required with --msp-dir).
    #[arg(long, env = "ORDERER_GENERAL_LOCALMSPID")]
    pub msp_id: Option<String>,

    /// Join the channel of this genesis (config) block at start, unless already
    /// joined. Repeatable.
    #[arg(long = "genesis-block")]
    pub genesis_blocks: Vec<PathBuf>,
}

impl StartArgs {
    /// `--listen`, else Fabric's two environment variables, else Fabric's default.
    pub fn listen_address(&self) -> String {
        if let Some(listen) = &self.listen {
            return listen.clone();
        }
        let host =
            std::env::var("ORDERER_GENERAL_LISTENADDRESS").unwrap_or_else(|_| "127.0.0.1".into());
        let port = std::env::var("ORDERER_GENERAL_LISTENPORT").unwrap_or_else(|_| "7050".into());
        format!("{host}:{port}")
    }
}
