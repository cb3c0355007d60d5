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

    /// Admin listener (core component status, load, rollback, dry-run), HOST:PORT.
    #[arg(
        long,
        env = "ORDERER_ADMIN_LISTENADDRESS",
        default_value = "127.0.0.1:9443"
    )]
    pub admin_listen: String,

    /// The ordering core component (a .wasm file of the `ordering-core` world) every
    /// channel starts with. Default: the built-in core.
    #[arg(long = "core", env = "ORDERER_CORE_FILE")]
    pub core_file: Option<PathBuf>,

    /// Link the built-in core natively instead of running it as a wasm component:
    /// to measure what wasm costs. Components can still be swapped in later.
    #[arg(long, env = "ORDERER_CORE_NATIVE", conflicts_with = "core_file")]
    pub native_core: bool,

    /// Wall-clock budget of one call into the core component, in milliseconds.
    #[arg(long, env = "ORDERER_CORE_CALLDEADLINEMS", default_value_t = 200)]
    pub core_call_deadline_ms: u64,

    /// Memory one core instance may grow to, in MiB.
    #[arg(long, env = "ORDERER_CORE_MEMORYLIMITMIB", default_value_t = 256)]
    pub core_memory_limit_mib: usize,

    /// This many faults of a component within --core-fault-window-secs roll the
    /// channel back to its previous component.
    #[arg(long, env = "ORDERER_CORE_FAULTTHRESHOLD", default_value_t = 5)]
    pub core_fault_threshold: usize,

    #[arg(long, env = "ORDERER_CORE_FAULTWINDOWSECS", default_value_t = 60)]
    pub core_fault_window_secs: u64,

    /// How many recent accepted envelopes each channel keeps for dry runs.
    #[arg(long, env = "ORDERER_CORE_DRYRUNENVELOPES", default_value_t = 1000)]
    pub core_dry_run_envelopes: usize,
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

impl StartArgs {
    /// The ordering core's limits and swap settings.
    pub fn core_settings(&self) -> crate::hotswap::CoreSettings {
        crate::hotswap::CoreSettings {
            limits: crate::component::CoreLimits {
                call_deadline: std::time::Duration::from_millis(self.core_call_deadline_ms),
                memory_bytes: self.core_memory_limit_mib << 20,
            },
            fault_threshold: self.core_fault_threshold,
            fault_window: std::time::Duration::from_secs(self.core_fault_window_secs),
            recent_envelopes: self.core_dry_run_envelopes,
            ..Default::default()
        }
    }
}
