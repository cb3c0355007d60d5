//! `orderer`: a Hyperledger Fabric compatible ordering service whose filters, block
//! cutter and block builder run as a WebAssembly component, plus a client for people.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use orderer::operations::{self, logspec};
use orderer::{admin, bootstrap, client, comm, component, config, identity, multichannel, server};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "orderer",
    version,
    about = "A Fabric-compatible ordering service with a wasm ordering core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the orderer (no flags: the embedded dev default).
    Start(config::StartArgs),
    /// Send signed envelopes and report acks/s and status counts on one line.
    Broadcast(client::bench::LoadArgs),
    /// Measure an orderer: acks/s, delivered/s, ack latency, its CPU and peak RSS.
    Bench(client::bench::BenchArgs),
    /// What many channels cost an orderer: join N copies of a genesis block, then
    /// report the join time, memory and threads per channel, and idle CPU.
    BenchChannels(client::manychannels::ManyChannelsArgs),
    /// Fetch blocks, verifying the hash chain and the orderer signatures.
    Deliver(client::DeliverArgs),
    /// Read or update a channel's config (fetch-config, update, sign, submit); join,
    /// list and remove channels (the channel participation API).
    Channel(client::channel::ChannelArgs),
    /// The core component a channel runs: status, load, rollback, dry-run.
    Core(client::core::CoreArgs),
}

fn main() {
    let cli = Cli::parse();
    let (filter, spec, origin) = match logspec::initial(&|key| std::env::var(key).ok()) {
        Ok(initial) => initial,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    logspec::init(filter, spec);
    if origin == logspec::Origin::OrdererLogOverFabric {
        tracing::warn!("ORDERER_LOG is set, so FABRIC_LOGGING_SPEC is ignored");
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Start(args) => start(args).await,
            Command::Broadcast(args) => client::bench::broadcast(args).await,
            Command::Bench(args) => client::bench::bench(args).await,
            Command::BenchChannels(args) => client::manychannels::run(args).await,
            Command::Deliver(args) => client::deliver(args).await,
            Command::Channel(args) => client::channel::run(args).await,
            Command::Core(args) => client::core::run(args).await,
        }
    });
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn start(args: config::StartArgs) -> Result<()> {
    let settings = args.settings(&|key| std::env::var(key).ok())?;
    if let Some(file) = &settings.file {
        tracing::info!("configuration file {}", file.display());
    }
    if !settings.unimplemented.is_empty() {
        tracing::warn!(
            "not implemented, ignored: {}",
            settings.unimplemented.join(", ")
        );
    }
    if !settings.ignored_env.is_empty() {
        tracing::warn!(
            "ignored as Fabric ignores them (their section is not in the file): {}",
            settings.ignored_env.join(", ")
        );
    }
    // TLS files are read before anything is written, so a bad one changes nothing.
    // The client listener's final config trusts the channels' TLS CAs too (below,
    // once the channels are open); this one checks the files first.
    // (ClientRootCAs may be empty: the channels' CAs may be all a client chains to.)
    settings
        .tls
        .as_ref()
        .map(|tls| tls.server_config_with(&[b"h2"], Some(Arc::new(comm::trust::NoChannels))))
        .transpose()?;
    let operations_tls = settings
        .operations_tls
        .as_ref()
        .map(|tls| tls.server_config(&[b"http/1.1"]))
        .transpose()?;
    let admin_tls = settings
        .admin_tls
        .as_ref()
        .map(|tls| tls.server_config(&[b"http/1.1"]))
        .transpose()?;
    let data_dir = settings.data_dir.clone();
    let listen = settings.listen.clone();
    let mut genesis_blocks = args.genesis_blocks.clone();
    let (msp_dir, msp_id) = match settings.msp.clone() {
        Some(msp) => msp,
        None => {
            let dev = bootstrap::ensure_dev_network(&data_dir, &listen)?;
            println!("dev default: channel {}", dev.channel_id);
            println!(
                "dev default: client identity {} at {}",
                dev.client_msp_id,
                dev.client_msp_dir.display()
            );
            genesis_blocks.push(dev.genesis_block_path.clone());
            (dev.orderer_msp_dir, dev.orderer_msp_id)
        }
    };
    let signer = Arc::new(identity::Signer::from_msp_dir(&msp_dir, &msp_id)?);
    orderer::keyfile::check_keystore(&msp_dir);
    let listeners = [&settings.tls, &settings.admin_tls, &settings.operations_tls];
    for tls in listeners.into_iter().flatten() {
        let setting = format!("{}.PrivateKey", tls.section);
        orderer::keyfile::check_permissions(&setting, &tls.private_key);
    }
    let core_settings = args.core_settings();
    let registrar = if args.native_core {
        let cache = component::ComponentCache::new(data_dir.join("components"));
        let core = component::CoreComponent::native();
        multichannel::Registrar::with_core(data_dir.clone(), signer, core, cache, core_settings)
    } else {
        let (core_wasm, what) = match &args.core_file {
            Some(path) => (
                std::fs::read(path)
                    .with_context(|| format!("core component {}", path.display()))?,
                format!("core component {}", path.display()),
            ),
            None => (
                component::BUILTIN_CORE.to_vec(),
                "the built-in core component".to_string(),
            ),
        };
        tokio::task::block_in_place(|| {
            multichannel::Registrar::new(data_dir.clone(), signer, &core_wasm, core_settings)
        })
        .context(what)?
    };
    if let Some(tls) = &settings.tls {
        registrar.set_raft_settings(
            orderer::consensus::etcdraft::consenter::RaftSettings::from_tls(
                tls,
                settings.wal_dir.clone(),
                settings.snap_dir.clone(),
            )?,
        );
    }
    let core = registrar.default_core();
    tracing::info!(
        "ordering core {} {} ({}, {})",
        core.name(),
        core.version(),
        core.sha256(),
        if core.is_native() {
            "linked natively"
        } else {
            "wasm component"
        }
    );
    registrar.open_existing()?;
    if let Some(path) = &settings.bootstrap_file {
        let bytes = std::fs::read(path)
            .with_context(|| format!("General.BootstrapFile {}", path.display()))?;
        match registrar
            .bootstrap(&bytes)
            .with_context(|| format!("General.BootstrapFile {}", path.display()))?
        {
            Some(channel) => tracing::info!(
                channel,
                "bootstrapped system channel from {}",
                path.display()
            ),
            None => tracing::info!("not bootstrapping the system channel: the ledger has channels"),
        }
    }
    for path in &genesis_blocks {
        let bytes =
            std::fs::read(path).with_context(|| format!("genesis block {}", path.display()))?;
        let (channel, joined) = registrar
            .join(&bytes)
            .with_context(|| format!("genesis block {}", path.display()))?;
        if matches!(joined, multichannel::Joined::New) {
            tracing::info!(channel, "joined channel from {}", path.display());
        }
    }

    let channel_roots = Arc::new(server::RegistrarRoots(registrar.clone()));
    let client_tls = settings
        .tls
        .as_ref()
        .map(|tls| tls.server_config_with(&[b"h2"], Some(channel_roots)))
        .transpose()?;
    let tcp = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listen address {listen}"))?;
    let mutual_tls = settings
        .tls
        .as_ref()
        .is_some_and(|tls| tls.client_root_cas.is_some());
    match (&client_tls, mutual_tls) {
        (None, _) => {}
        (Some(_), false) => tracing::info!("client listener: TLS"),
        (Some(_), true) => tracing::info!("client listener: mutual TLS"),
    }
    let listener = comm::Listener::new(tcp, client_tls, "client");
    let addr = listener.local_addr();
    // The registrar logged each channel as it opened; this is the summary a person reads.
    for (channel, height) in registrar.channels() {
        println!("serving channel {channel} (height {height}) on {addr}");
    }
    start_operations(&settings, operations_tls, &registrar).await?;
    let admin_tcp = tokio::net::TcpListener::bind(&settings.admin_listen)
        .await
        .with_context(|| format!("admin listen address {}", settings.admin_listen))?;
    let admin_addr = admin_tcp.local_addr()?;
    if admin_tls.is_none() && !admin_addr.ip().is_loopback() && !settings.admin_insecure {
        bail!(
            "Admin.ListenAddress {admin_addr}: not a loopback address and Admin.TLS.Enabled is \
             false, so whoever reaches it could replace the ordering core; enable Admin.TLS \
             or start with --admin-insecure"
        );
    }
    if admin_tls.is_some() {
        tracing::info!("admin listener: mutual TLS");
    }
    println!("admin API on {admin_addr}");
    let admin = comm::Listener::new(admin_tcp, admin_tls, "admin");
    let participation = admin::Participation {
        enabled: settings.participation_enabled,
        max_request_body_size: settings.max_request_body_size,
    };
    tokio::spawn(admin::serve(admin, registrar.clone(), participation));
    println!("listening on {addr}");
    server::serve(listener, registrar, mutual_tls, settings.grpc).await
}

/// The operations listener: /metrics (Metrics.Provider prometheus), /healthz,
/// /logspec, /version.
async fn start_operations(
    settings: &config::Settings,
    tls: Option<Arc<rustls::ServerConfig>>,
    registrar: &Arc<multichannel::Registrar>,
) -> Result<()> {
    let prometheus = match settings.metrics_provider.as_str() {
        "prometheus" => true,
        // statsd is named in the start-up warning of what is not implemented.
        "disabled" | "statsd" => false,
        other => {
            tracing::warn!("Metrics.Provider: unknown provider type {other:?}; metrics disabled");
            false
        }
    };
    let tcp = tokio::net::TcpListener::bind(&settings.operations_listen)
        .await
        .with_context(|| format!("operations listen address {}", settings.operations_listen))?;
    let operations_addr = tcp.local_addr()?;
    let with_tls = if tls.is_some() { " (TLS)" } else { "" };
    println!("operations API on {operations_addr}{with_tls}");
    let ops = operations::Operations {
        tls: tls.is_some(),
        prometheus,
        checkers: vec![Arc::new(server::RegistrarHealth(registrar.clone()))],
        on_scrape: Some(Box::new({
            let registrar = registrar.clone();
            move || server::refresh_gauges(&registrar)
        })),
    };
    let listener = comm::Listener::new(tcp, tls, "operations");
    tokio::spawn(operations::serve(listener, ops));
    Ok(())
}
