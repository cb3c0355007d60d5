//! `orderer start` settings, each from the first of: an explicit flag, an `ORDERER_*`
//! environment variable, orderer.yaml (`--config`, else Fabric's search from
//! `$FABRIC_CFG_PATH`), the default. The file and the environment are read by
//! [`crate::localconfig`] exactly as Fabric reads them; without a file, a key no
//! variable sets takes the embedded dev default's value (./orderer-data, a generated
//! MSP), so `orderer start` alone needs no file.

#[cfg(test)]
mod tests;

use crate::comm::{ServerLimits, ServerTlsFiles};
use crate::localconfig::{ConfigError, Loaded, LocalConfig, Source, Tls};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct StartArgs {
    /// Fabric's orderer.yaml [default: orderer.yaml in $FABRIC_CFG_PATH, then ., then
    /// /etc/hyperledger/fabric; none found: the dev default and ORDERER_* variables]
    #[arg(long)]
    pub config: Option<PathBuf>,

    /// Client gRPC listener, HOST:PORT [General.ListenAddress and General.ListenPort;
    /// default 127.0.0.1:7050]
    #[arg(long)]
    pub listen: Option<String>,

    /// Ledger and dev-default folder [FileLedger.Location; default ./orderer-data]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,

    /// The orderer's MSP folder (signcerts/, keystore/) [General.LocalMSPDir]. Without
    /// it and without a file, the embedded dev default generates (or reuses) an orderer
    /// org, a client org and `devchannel`.
    #[arg(long)]
    pub msp_dir: Option<PathBuf>,

    /// The MSP ID of the orderer's organization [General.LocalMSPID].
    #[arg(long)]
    pub msp_id: Option<String>,

    /// Join the channel of this genesis (config) block at start, unless already
    /// joined. Repeatable.
    #[arg(long = "genesis-block")]
    pub genesis_blocks: Vec<PathBuf>,

    /// Start a system channel from this genesis block when the ledger has no channel
    /// yet (Fabric 2.x; channels are then created through it, as `peer channel
    /// create` does) [General.BootstrapMethod: file and General.BootstrapFile]
    #[arg(long)]
    pub bootstrap_file: Option<PathBuf>,

    /// Admin listener (core component status, load, rollback, dry-run), HOST:PORT
    /// [Admin.ListenAddress; default 127.0.0.1:9443]
    #[arg(long)]
    pub admin_listen: Option<String>,

    /// Operations listener (/metrics, /healthz, /logspec, /version), HOST:PORT
    /// [Operations.ListenAddress; default 127.0.0.1:8443]
    #[arg(long)]
    pub operations_listen: Option<String>,

    /// Serve the admin listener on a non-loopback address without Admin.TLS: whoever
    /// reaches it can replace the ordering core. Refused without this flag.
    #[arg(long)]
    pub admin_insecure: bool,

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

    /// Load a component only with a detached signature (`orderer core sign`) by an
    /// admin of this orderer's org, as the channel config names them.
    #[arg(long, env = "ORDERER_CORE_REQUIRESIGNED")]
    pub require_signed_components: bool,
}

/// What `orderer start` runs with, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The orderer.yaml read, if any.
    pub file: Option<PathBuf>,
    pub listen: String,
    pub data_dir: PathBuf,
    /// The orderer's MSP folder and ID; `None`: the embedded dev default.
    pub msp: Option<(PathBuf, String)>,
    /// General.TLS, when enabled.
    pub tls: Option<ServerTlsFiles>,
    pub admin_listen: String,
    /// Admin.TLS, when enabled (client certificates are then required).
    pub admin_tls: Option<ServerTlsFiles>,
    pub admin_insecure: bool,
    /// The system channel's genesis block, when bootstrapping from one.
    pub bootstrap_file: Option<PathBuf>,
    /// etcdraft's write-ahead logs, one folder per channel (Consensus.WALDir).
    pub wal_dir: PathBuf,
    /// etcdraft's snapshots, one folder per channel (Consensus.SnapDir).
    pub snap_dir: PathBuf,
    pub operations_listen: String,
    /// Operations.TLS, when enabled.
    pub operations_tls: Option<ServerTlsFiles>,
    /// Metrics.Provider: `prometheus`, `disabled`, or what else was written.
    pub metrics_provider: String,
    /// ChannelParticipation.Enabled: off, the participation API answers 503.
    pub participation_enabled: bool,
    /// ChannelParticipation.MaxRequestBodySize, bytes.
    pub max_request_body_size: usize,
    /// The client listener's gRPC limits (General.MaxRecvMsgSize, MaxSendMsgSize,
    /// Keepalive.ServerInterval and ServerTimeout).
    pub grpc: ServerLimits,
    /// Settings given a value this orderer does not implement, as `Key (where)`: the
    /// start-up warning.
    pub unimplemented: Vec<String>,
    /// `ORDERER_*` variables Fabric would not read with this file (their section is
    /// not in it): also worth a warning.
    pub ignored_env: Vec<String>,
}

/// The orderer.yaml keys (or sections) `orderer start` implements; any other key
/// given a value of its own is named in the start-up warning.
pub const IMPLEMENTED: &[&str] = &[
    "General.ListenAddress",
    "General.ListenPort",
    "General.TLS.Enabled",
    "General.TLS.PrivateKey",
    "General.TLS.Certificate",
    "General.TLS.ClientAuthRequired",
    "General.TLS.ClientRootCAs",
    "General.BootstrapMethod",
    "General.BootstrapFile",
    "General.GenesisFile",
    "General.GenesisMethod",
    "General.LocalMSPDir",
    "General.LocalMSPID",
    "FileLedger.Location",
    // Fabric ignores it too.
    "FileLedger.Prefix",
    "Admin.ListenAddress",
    "Admin.TLS.Enabled",
    "Admin.TLS.PrivateKey",
    "Admin.TLS.Certificate",
    "Admin.TLS.ClientAuthRequired",
    "Admin.TLS.ClientRootCAs",
    // Fabric's admin server does not use these two either.
    "Admin.TLS.RootCAs",
    "Admin.TLS.TLSHandshakeTimeShift",
    "Operations.ListenAddress",
    "Operations.TLS.Enabled",
    "Operations.TLS.PrivateKey",
    "Operations.TLS.Certificate",
    "Operations.TLS.ClientAuthRequired",
    "Operations.TLS.ClientRootCAs",
    // Fabric's operations server does not use these two either.
    "Operations.TLS.RootCAs",
    "Operations.TLS.TLSHandshakeTimeShift",
    "Metrics.Provider",
    "ChannelParticipation.Enabled",
    "ChannelParticipation.MaxRequestBodySize",
    "Consensus.WALDir",
    "Consensus.SnapDir",
    "General.MaxRecvMsgSize",
    "General.MaxSendMsgSize",
    // ServerMinInterval is not: hyper's HTTP/2 server has no ping policy to enforce.
    "General.Keepalive.ServerInterval",
    "General.Keepalive.ServerTimeout",
];

const DEFAULT_DATA_DIR: &str = "./orderer-data";
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9443";
/// Fabric's sample orderer.yaml's.
const DEFAULT_OPERATIONS_LISTEN: &str = "127.0.0.1:8443";
/// Fabric's sample value, used when neither a file nor a variable sets it.
const DEFAULT_MAX_REQUEST_BODY_SIZE: usize = 1024 * 1024;

/// A setting `orderer start` cannot run with, on one line.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `at` is the file or the variable that set `key`.
    #[error("{at}: {key}: {problem}")]
    Invalid {
        at: String,
        key: String,
        problem: String,
    },
    #[error("{0}")]
    Flags(String),
}

impl StartArgs {
    /// Reads orderer.yaml and the environment `env` (`|k| std::env::var(k).ok()`),
    /// and resolves every setting.
    pub fn settings(
        &self,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, SettingsError> {
        let loaded = LocalConfig::load(self.config.as_deref(), env)?;
        self.resolve(&loaded)
    }

    /// Flags over `loaded` (file and environment) over defaults.
    pub fn resolve(&self, loaded: &Loaded) -> Result<Settings, SettingsError> {
        let c = &loaded.config;
        let given = |key: &str| loaded.file.is_some() || setting(loaded, key).is_some();
        let invalid = |key: &str, problem: String| SettingsError::Invalid {
            at: origin(loaded, key),
            key: key.into(),
            problem,
        };

        let listen = self
            .listen
            .clone()
            .unwrap_or_else(|| join_host_port(&c.general.listen_address, c.general.listen_port));
        let data_dir = match &self.data_dir {
            Some(dir) => dir.clone(),
            None if given("FileLedger.Location") => PathBuf::from(&c.file_ledger.location),
            None => PathBuf::from(DEFAULT_DATA_DIR),
        };
        let msp_dir = self.msp_dir.clone().or_else(|| {
            given("General.LocalMSPDir").then(|| PathBuf::from(&c.general.local_msp_dir))
        });
        let msp_id = self
            .msp_id
            .clone()
            .or_else(|| given("General.LocalMSPID").then(|| c.general.local_msp_id.clone()));
        let msp = match (msp_dir, msp_id) {
            (Some(dir), Some(id)) => Some((dir, id)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(SettingsError::Flags(
                    "--msp-id (General.LocalMSPID) is required with --msp-dir".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(SettingsError::Flags(
                    "--msp-dir (General.LocalMSPDir) is required with --msp-id".into(),
                ));
            }
        };

        let mut bootstrap_file = self.bootstrap_file.clone();
        if bootstrap_file.is_none()
            && (given("General.BootstrapMethod") || given("General.GenesisMethod"))
        {
            match c.general.bootstrap_method.as_str() {
                "none" => {}
                "file" => bootstrap_file = Some(PathBuf::from(&c.general.bootstrap_file)),
                other => {
                    let problem = format!("unknown bootstrap method {other:?} (none or file)");
                    return Err(invalid("General.BootstrapMethod", problem));
                }
            }
        }

        let tls = server_tls(loaded, "General.TLS", &c.general.tls)?;
        let etcdraft = loaded.etcdraft()?;
        let wal_dir = match etcdraft.wal_dir {
            dir if given("Consensus.WALDir") && !dir.is_empty() => PathBuf::from(dir),
            _ => data_dir.join("etcdraft/wal"),
        };
        let snap_dir = match etcdraft.snap_dir {
            dir if given("Consensus.SnapDir") && !dir.is_empty() => PathBuf::from(dir),
            _ => data_dir.join("etcdraft/snapshot"),
        };
        let admin_listen = match &self.admin_listen {
            Some(address) => address.clone(),
            None if given("Admin.ListenAddress") && !c.admin.listen_address.is_empty() => {
                c.admin.listen_address.clone()
            }
            None => DEFAULT_ADMIN_LISTEN.into(),
        };
        let admin_tls = server_tls(loaded, "Admin.TLS", &c.admin.tls)?;
        let operations_listen = match &self.operations_listen {
            Some(address) => address.clone(),
            None if given("Operations.ListenAddress")
                && !c.operations.listen_address.is_empty() =>
            {
                c.operations.listen_address.clone()
            }
            None => DEFAULT_OPERATIONS_LISTEN.into(),
        };
        // Without ClientAuthRequired, Fabric's operations server still verifies a
        // certificate a client sends (VerifyClientCertIfGiven).
        let operations_tls =
            server_tls(loaded, "Operations.TLS", &c.operations.tls)?.map(|mut tls| {
                if tls.client_root_cas.is_none() {
                    let roots = c.operations.tls.client_root_cas.iter().map(PathBuf::from);
                    tls.client_root_cas = Some(roots.collect());
                    tls.client_auth_optional = true;
                }
                tls
            });
        let metrics_provider = if given("Metrics.Provider") {
            c.metrics.provider.clone()
        } else {
            "prometheus".into()
        };
        let participation_enabled =
            !given("ChannelParticipation.Enabled") || c.channel_participation.enabled;
        let max_request_body_size = if given("ChannelParticipation.MaxRequestBodySize") {
            c.channel_participation.max_request_body_size as usize
        } else {
            DEFAULT_MAX_REQUEST_BODY_SIZE
        };

        let grpc = grpc_limits(loaded)?;

        let mut unimplemented: Vec<String> = loaded
            .unimplemented(IMPLEMENTED)
            .into_iter()
            .map(|s| match &s.source {
                Source::Env(var) => format!("{} ({var})", s.key),
                Source::File => s.key.clone(),
            })
            .collect();
        // The key is implemented, this one value is not: no metrics then.
        if metrics_provider == "statsd" {
            let at = origin(loaded, "Metrics.Provider");
            unimplemented.push(format!("Metrics.Provider statsd ({at}; metrics disabled)"));
        }
        Ok(Settings {
            file: loaded.file.clone(),
            listen,
            data_dir,
            msp,
            tls,
            admin_listen,
            admin_tls,
            admin_insecure: self.admin_insecure,
            bootstrap_file,
            wal_dir,
            snap_dir,
            operations_listen,
            operations_tls,
            metrics_provider,
            participation_enabled,
            max_request_body_size,
            grpc,
            unimplemented,
            ignored_env: loaded.ignored_env.clone(),
        })
    }
}

/// As Fabric's orderer: a zero size or duration keeps internal/pkg/comm's default.
fn grpc_limits(loaded: &Loaded) -> Result<ServerLimits, SettingsError> {
    let g = &loaded.config.general;
    let defaults = ServerLimits::default();
    let size = |key: &str, value: i32, default: usize| match value {
        0 => Ok(default),
        n => usize::try_from(n).map_err(|_| SettingsError::Invalid {
            at: origin(loaded, key),
            key: key.into(),
            problem: format!("{n} is not a size in bytes (0 for the default, 100 MiB)"),
        }),
    };
    let duration = |value: Duration, default| if value.is_zero() { default } else { value };
    Ok(ServerLimits {
        max_recv_msg_size: size(
            "General.MaxRecvMsgSize",
            g.max_recv_msg_size,
            defaults.max_recv_msg_size,
        )?,
        max_send_msg_size: size(
            "General.MaxSendMsgSize",
            g.max_send_msg_size,
            defaults.max_send_msg_size,
        )?,
        keepalive_interval: duration(g.keepalive.server_interval, defaults.keepalive_interval),
        keepalive_timeout: duration(g.keepalive.server_timeout, defaults.keepalive_timeout),
    })
}

/// A listener's TLS files when `section` (General.TLS, Admin.TLS) enables TLS.
fn server_tls(
    loaded: &Loaded,
    section: &str,
    tls: &Tls,
) -> Result<Option<ServerTlsFiles>, SettingsError> {
    if !tls.enabled {
        return Ok(None);
    }
    for key in ["Certificate", "PrivateKey"] {
        let key = format!("{section}.{key}");
        if setting(loaded, &key).is_none() {
            return Err(SettingsError::Invalid {
                at: origin(loaded, &format!("{section}.Enabled")),
                key,
                problem: format!("must be set when {section}.Enabled is true"),
            });
        }
    }
    let paths = |files: &[String]| files.iter().map(PathBuf::from).collect::<Vec<_>>();
    Ok(Some(ServerTlsFiles {
        section: section.into(),
        certificate: PathBuf::from(&tls.certificate),
        private_key: PathBuf::from(&tls.private_key),
        client_root_cas: tls
            .client_auth_required
            .then(|| paths(&tls.client_root_cas)),
        client_auth_optional: false,
    }))
}

/// Where `key` got its value, if anywhere.
fn setting<'a>(loaded: &'a Loaded, key: &str) -> Option<&'a Source> {
    loaded
        .settings
        .iter()
        .find(|s| s.key.eq_ignore_ascii_case(key))
        .map(|s| &s.source)
}

/// The variable that set `key`, else the file, for error messages.
fn origin(loaded: &Loaded, key: &str) -> String {
    match (setting(loaded, key), &loaded.file) {
        (Some(Source::Env(var)), _) => var.clone(),
        (_, Some(file)) => file.display().to_string(),
        (_, None) => "defaults".into(),
    }
}

/// Go's `net.JoinHostPort`: IPv6 hosts in brackets.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
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
            require_signed: self.require_signed_components,
            ..Default::default()
        }
    }
}
