//! End-to-end harness: the real `orderer` binary on an ephemeral loopback port, a
//! real ledger folder, and real gRPC clients signing with real MSP identities.
#![allow(dead_code)]

use bytes::Bytes;
use fabric_protos::common::{Block, Envelope, HeaderType, Status};
use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use fabric_protos::orderer::seek_info::SeekBehavior;
use fabric_protos::orderer::{
    BroadcastResponse, SeekInfo, SeekPosition, SeekSpecified, deliver_response, seek_position,
};
use orderer::comm::ClientTls;
use orderer::identity::Signer;
use prost::Message;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};
use tonic::transport::Channel;

pub fn fabric() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/fabric")
}

pub fn fixture_msp(path: &str) -> PathBuf {
    fabric().join("crypto").join(path)
}

pub const ORDERER0_MSP: &str = "ordererOrganizations/example.com/orderers/orderer0.example.com/msp";
pub const USER1_MSP: &str = "peerOrganizations/org1.example.com/users/User1@org1.example.com/msp";
pub const ORG1_ADMIN_MSP: &str =
    "peerOrganizations/org1.example.com/users/Admin@org1.example.com/msp";

/// A running orderer process; killed (SIGKILL) when dropped.
pub struct Orderer {
    child: Child,
    pub addr: String,
    /// The admin listener (core component API).
    pub admin: String,
    /// The operations listener (/metrics, /healthz, /logspec, /version).
    pub operations: String,
    pub data_dir: PathBuf,
    pub stdout: Vec<String>,
    /// How [`Orderer::client`] connects: plaintext, or TLS with this.
    pub tls: Option<ClientTls>,
}

impl Orderer {
    pub fn spawn(data_dir: &Path, extra: &[&str]) -> Orderer {
        Orderer::spawn_with_env(data_dir, extra, &[])
    }

    /// [`Orderer::spawn`] with environment variables (orderer.yaml keys as Fabric's
    /// `ORDERER_*` names).
    pub fn spawn_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Orderer {
        Orderer::run(Orderer::command(data_dir, extra, env), data_dir)
    }

    /// The start command [`Orderer::spawn_with_env`] runs: ephemeral ports, `data_dir`.
    pub fn command(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Command {
        Orderer::command_on(data_dir, "127.0.0.1:0", extra, env)
    }

    /// [`Orderer::command`] with the client listener on `listen`.
    pub fn command_on(
        data_dir: &Path,
        listen: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Command {
        std::fs::create_dir_all(data_dir).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_orderer"));
        command
            .args([
                "start",
                "--listen",
                listen,
                "--admin-listen",
                "127.0.0.1:0",
                "--operations-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            // No orderer.yaml from the developer's environment.
            .env_remove("FABRIC_CFG_PATH")
            .env_remove("ORDERER_GENERAL_LOCALMSPDIR")
            .env_remove("ORDERER_GENERAL_LOCALMSPID")
            .env_remove("ORDERER_LOG")
            .env_remove("FABRIC_LOGGING_SPEC")
            .envs(env.iter().copied());
        command
    }

    /// Runs `command` (an orderer start) and waits until it listens; its stderr goes
    /// to `<data_dir>/orderer.log`.
    pub fn run(mut command: Command, data_dir: &Path) -> Orderer {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("orderer.log"))
            .unwrap();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the orderer");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stdout = Vec::new();
        let mut admin = String::new();
        let mut operations = String::new();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let log = std::fs::read_to_string(data_dir.join("orderer.log")).unwrap_or_default();
                panic!("orderer exited before listening; stdout {stdout:?}; log:\n{log}");
            };
            stdout.push(line.clone());
            if let Some(addr) = line.strip_prefix("operations API on ") {
                operations = addr.trim_end_matches(" (TLS)").trim().to_string();
            }
            if let Some(addr) = line.strip_prefix("admin API on ") {
                admin = addr.trim().to_string();
            }
            if let Some(addr) = line.strip_prefix("listening on ") {
                break addr.trim().to_string();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Orderer {
            child,
            addr,
            admin,
            operations,
            data_dir: data_dir.to_path_buf(),
            stdout,
            tls: None,
        }
    }

    /// Another orderer process (e.g. Fabric's), already serving on `addr`, whose log
    /// is `<data_dir>/orderer.log`; killed (SIGKILL) when dropped like ours.
    pub fn adopt(
        child: Child,
        addr: &str,
        admin: &str,
        operations: &str,
        data_dir: &Path,
        tls: Option<ClientTls>,
    ) -> Orderer {
        Orderer {
            child,
            addr: addr.to_string(),
            admin: admin.to_string(),
            operations: operations.to_string(),
            data_dir: data_dir.to_path_buf(),
            stdout: Vec::new(),
            tls,
        }
    }

    /// The orderer's log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("orderer.log")).unwrap_or_default()
    }

    /// The embedded dev default (generated crypto, `devchannel`).
    pub fn dev(data_dir: &Path) -> Orderer {
        Orderer::spawn(data_dir, &[])
    }

    /// Booted as Fabric's orderer0 on the fixture `mychannel` (etcdraft, one consenter).
    pub fn fixture(data_dir: &Path) -> Orderer {
        Orderer::fixture_on(data_dir, &fixture_msp(ORDERER0_MSP), &[], &[])
    }

    /// [`Orderer::fixture`] with orderer0's MSP folder at `msp`, more flags and
    /// environment variables.
    pub fn fixture_on(
        data_dir: &Path,
        msp: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Orderer {
        let genesis = fabric().join("blocks/mychannel-etcdraft-genesis.block");
        let mut flags = vec![
            "--msp-dir",
            msp.to_str().unwrap(),
            "--msp-id",
            "OrdererMSP",
            "--genesis-block",
            genesis.to_str().unwrap(),
        ];
        flags.extend(extra);
        Orderer::spawn_with_env(data_dir, &flags, env)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn client(&self) -> AtomicBroadcastClient<Channel> {
        self.try_client(self.tls.clone()).await.expect("connect")
    }

    /// A client connected with `tls` (or plaintext), or the connection's error.
    pub async fn try_client(
        &self,
        tls: Option<ClientTls>,
    ) -> Result<AtomicBroadcastClient<Channel>, tonic::transport::Error> {
        let scheme = orderer::comm::client::scheme(tls.as_ref());
        let connector = orderer::comm::client::Connector {
            address: self.addr.clone(),
            tls,
        };
        let channel = Channel::from_shared(format!("{scheme}://{}", self.addr))
            .unwrap()
            .connect_with_connector(connector)
            .await?;
        Ok(AtomicBroadcastClient::new(channel)
            .max_decoding_message_size(100 << 20)
            .max_encoding_message_size(100 << 20))
    }
}

impl Drop for Orderer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn user1() -> Signer {
    Signer::from_msp_dir(&fixture_msp(USER1_MSP), "Org1MSP").unwrap()
}

pub fn dev_user(data_dir: &Path) -> Signer {
    let msp =
        data_dir.join("crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp");
    Signer::from_msp_dir(&msp, "Org1MSP").unwrap()
}

/// A signed ENDORSER_TRANSACTION envelope whose payload data is `size` bytes.
pub fn tx(signer: &Signer, channel: &str, size: usize, seed: u8) -> Envelope {
    let data: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_add(seed)).collect();
    signer.signed_envelope(
        HeaderType::EndorserTransaction,
        channel,
        Bytes::from(data),
        SystemTime::now(),
    )
}

/// Sends envelopes on one Broadcast stream; returns every response received.
pub async fn broadcast(orderer: &Orderer, envelopes: Vec<Envelope>) -> Vec<BroadcastResponse> {
    let mut client = orderer.client().await;
    let mut inbound = client
        .broadcast(tokio_stream::iter(envelopes))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Ok(Some(resp)) = inbound.message().await {
        out.push(resp);
    }
    out
}

pub fn statuses(responses: &[BroadcastResponse]) -> Vec<i32> {
    responses.iter().map(|r| r.status).collect()
}

pub fn specified(number: u64) -> SeekPosition {
    SeekPosition {
        r#type: Some(seek_position::Type::Specified(SeekSpecified { number })),
    }
}

pub fn newest() -> SeekPosition {
    SeekPosition {
        r#type: Some(seek_position::Type::Newest(Default::default())),
    }
}

pub fn oldest() -> SeekPosition {
    SeekPosition {
        r#type: Some(seek_position::Type::Oldest(Default::default())),
    }
}

pub fn next_commit() -> SeekPosition {
    SeekPosition {
        r#type: Some(seek_position::Type::NextCommit(Default::default())),
    }
}

pub fn seek_envelope(
    signer: &Signer,
    channel: &str,
    start: Option<SeekPosition>,
    stop: Option<SeekPosition>,
    behavior: SeekBehavior,
) -> Envelope {
    let seek = SeekInfo {
        start,
        stop,
        behavior: behavior as i32,
        ..Default::default()
    };
    signer.signed_envelope(
        HeaderType::DeliverSeekInfo,
        channel,
        seek.encode_to_vec().into(),
        SystemTime::now(),
    )
}

/// Sends one Deliver request; returns the blocks and the final status (None if the
/// stream ended without one).
pub async fn deliver(orderer: &Orderer, request: Envelope) -> (Vec<Block>, Option<Status>) {
    let mut client = orderer.client().await;
    let mut inbound = client
        .deliver(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let mut blocks = Vec::new();
    while let Ok(Some(resp)) = inbound.message().await {
        match resp.r#type {
            Some(deliver_response::Type::Block(b)) => blocks.push(b),
            Some(deliver_response::Type::Status(s)) => return (blocks, Status::try_from(s).ok()),
            None => {}
        }
    }
    (blocks, None)
}

/// Blocks `start..=stop`, waiting up to `within` for them to be cut.
pub async fn wait_blocks(
    orderer: &Orderer,
    signer: &Signer,
    channel: &str,
    start: u64,
    stop: u64,
    within: Duration,
) -> Vec<Block> {
    let request = seek_envelope(
        signer,
        channel,
        Some(specified(start)),
        Some(specified(stop)),
        SeekBehavior::BlockUntilReady,
    );
    let (blocks, status) = tokio::time::timeout(within, deliver(orderer, request))
        .await
        .unwrap_or_else(|_| panic!("blocks {start}..={stop} not cut within {within:?}"));
    assert_eq!(status, Some(Status::Success));
    blocks
}

pub fn tx_count(block: &Block) -> usize {
    block.data.as_ref().map_or(0, |d| d.data.len())
}
