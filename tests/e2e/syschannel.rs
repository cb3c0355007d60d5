//! The Fabric 2.x system channel on the real binary: bootstrapped from the fixture
//! system channel genesis block, it is sent every envelope the real Fabric v2.5.12
//! orderer was sent (`testdata/fabric/syschannel`, in the recorded order, each on
//! its own stream). It must give every recorded answer (Broadcast statuses and
//! texts, Deliver statuses and block counts, the channel participation API's HTTP
//! answers), write blocks laid out as Fabric's, and keep it all across a restart.
//! Both recorded flows: solo over plaintext, and single-node etcdraft with TLS on.

use crate::common::*;
use crate::participation::{call, get, join};
use fabric_protos::common::{
    Block, ChannelHeader, Config, ConfigEnvelope, Envelope, HeaderType, Payload, Status,
};
use fabric_protos::orderer::seek_info::SeekBehavior;
use hyper::Method;
use orderer::identity::Signer;
use ordering_core::NativeCrypto;
use ordering_core::blockheader::header_hash;
use prost::Message;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SYSTEM: &str = "system-channel";
const APP: &str = "appchannel";
const CHANNELS: &str = "/participation/v1/channels";
const WAIT: Duration = Duration::from_secs(20);

fn syschannel(rel: &str) -> PathBuf {
    fabric().join("syschannel").join(rel)
}

/// One recorded flow: its genesis block, where its answers and blocks are, and
/// whether the orderer ran with General.TLS on.
#[derive(Clone, Copy)]
struct Flow {
    genesis: &'static str,
    recorded: &'static str,
    tls: bool,
}

const SOLO: Flow = Flow {
    genesis: "system-solo-genesis.block",
    recorded: "",
    tls: false,
};

const ETCDRAFT: Flow = Flow {
    genesis: "system-etcdraft-genesis.block",
    recorded: "etcdraft/",
    tls: true,
};

impl Flow {
    /// A file the recording wrote (answers, blocks).
    fn recorded(&self, name: &str) -> Vec<u8> {
        read(&format!("{}{name}", self.recorded))
    }

    fn is_etcdraft(&self) -> bool {
        self.tls
    }
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(syschannel(rel)).unwrap()
}

fn envelope_file(name: &str) -> Envelope {
    let rel = if name.starts_with("appchannel") {
        name.to_string()
    } else {
        format!("envelopes/{name}")
    };
    Envelope::decode(read(&rel).as_slice()).unwrap()
}

fn signer(msp: &str, msp_id: &str) -> Signer {
    Signer::from_msp_dir(&fixture_msp(msp), msp_id).unwrap()
}

fn signer_named(label: &str) -> Signer {
    match label {
        "app_client" => user1(),
        "app_admin" => signer(ORG1_ADMIN_MSP, "Org1MSP"),
        "ord_admin" => signer(
            "ordererOrganizations/example.com/users/Admin@example.com/msp",
            "OrdererMSP",
        ),
        "orderer_node" => signer(ORDERER0_MSP, "OrdererMSP"),
        other => panic!("no identity {other}"),
    }
}

/// The recorder squeezed whitespace in the texts it kept.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn start(data_dir: &Path) -> Orderer {
    start_flow(data_dir, SOLO)
}

fn start_flow(data_dir: &Path, flow: Flow) -> Orderer {
    let msp = fixture_msp(ORDERER0_MSP);
    let genesis = syschannel(flow.genesis);
    let env = if flow.tls {
        crate::tls::tls_env()
    } else {
        vec![]
    };
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut orderer = Orderer::spawn_with_env(
        data_dir,
        &[
            "--msp-dir",
            msp.to_str().unwrap(),
            "--msp-id",
            "OrdererMSP",
            "--bootstrap-file",
            genesis.to_str().unwrap(),
        ],
        &env,
    );
    if flow.tls {
        orderer.tls = Some(crate::tls::client_tls(None));
    }
    orderer
}

/// The etcdraft `BlockMetadata` a block carries in its SIGNATURES metadata.
fn raft_metadata(block: &Block) -> fabric_protos::orderer::etcdraft::BlockMetadata {
    use fabric_protos::common::{Metadata, OrdererBlockMetadata};
    let slot = &block.metadata.as_ref().unwrap().metadata[0];
    let value = Metadata::decode(slot.as_ref()).unwrap().value;
    let orderer = OrdererBlockMetadata::decode(value).unwrap();
    let consenter = Metadata::decode(orderer.consenter_metadata).unwrap();
    fabric_protos::orderer::etcdraft::BlockMetadata::decode(consenter.value).unwrap()
}

/// On etcdraft, each of our blocks carries the Raft metadata Fabric's block of the
/// same number carries (consenter ids, next id, Raft index).
fn check_raft_metadata(flow: Flow, ours: &[Block], recorded: &str) {
    if !flow.is_etcdraft() {
        return;
    }
    for block in ours {
        let number = block.header.as_ref().unwrap().number;
        let fabric = Block::decode(
            flow.recorded(&format!("{recorded}-block-{number}.block"))
                .as_slice(),
        )
        .unwrap();
        assert_eq!(
            raft_metadata(block),
            raft_metadata(&fabric),
            "{recorded} block {number}"
        );
    }
}

async fn all_blocks(orderer: &Orderer, signer: &Signer, channel: &str) -> (Vec<Block>, Status) {
    let request = seek_envelope(
        signer,
        channel,
        Some(oldest()),
        Some(newest()),
        SeekBehavior::FailIfNotReady,
    );
    let (blocks, status) = deliver(orderer, request).await;
    (blocks, status.expect("a final status"))
}

fn header_type(envelope: &[u8]) -> (i32, String) {
    let envelope = Envelope::decode(envelope).unwrap();
    let payload = Payload::decode(envelope.payload).unwrap();
    let chdr = ChannelHeader::decode(payload.header.unwrap().channel_header).unwrap();
    (chdr.r#type, chdr.channel_id)
}

fn payload_data(envelope: &[u8]) -> bytes::Bytes {
    let envelope = Envelope::decode(envelope).unwrap();
    Payload::decode(envelope.payload).unwrap().data
}

fn data_hash(block: &Block) -> String {
    let mut hasher = Sha256::new();
    for d in &block.data.as_ref().unwrap().data {
        hasher.update(d);
    }
    hex::encode(hasher.finalize())
}

fn nonempty_metadata(block: &Block) -> Vec<usize> {
    let slots = &block.metadata.as_ref().unwrap().metadata;
    assert_eq!(slots.len(), 5);
    (0..5).filter(|i| !slots[*i].is_empty()).collect()
}

fn reference_config(answers: &Value, channel: &str) -> Config {
    use base64ct::{Base64, Encoding};
    let b64 = answers["reference"][format!("config_{channel}")]
        .as_str()
        .unwrap();
    Config::decode(Base64::decode_vec(b64).unwrap().as_slice()).unwrap()
}

/// Block 0 of a created channel and the system channel's block that created it.
fn check_creation(answers: &Value, system_block: &Block, genesis: &Block, previous: &Block) {
    let channel = header_type(&genesis.data.as_ref().unwrap().data[0]).1;
    // The system block: one ORDERER_TRANSACTION, signed, chained, last config 0.
    let header = system_block.header.as_ref().unwrap();
    let previous_hash = header_hash(previous.header.as_ref().unwrap(), &NativeCrypto);
    assert_eq!(header.previous_hash.as_ref(), previous_hash);
    assert_eq!(hex::encode(&header.data_hash), data_hash(system_block));
    let data = &system_block.data.as_ref().unwrap().data;
    assert_eq!(data.len(), 1);
    assert_eq!(
        header_type(&data[0]),
        (HeaderType::OrdererTransaction as i32, SYSTEM.into())
    );
    assert_eq!(nonempty_metadata(system_block), vec![0]);
    // The genesis block: exactly the CONFIG envelope the transaction carried.
    let inner = payload_data(&data[0]);
    let genesis_header = genesis.header.as_ref().unwrap();
    assert_eq!(genesis_header.number, 0);
    assert!(genesis_header.previous_hash.is_empty());
    assert_eq!(genesis.data.as_ref().unwrap().data, vec![inner.clone()]);
    assert_eq!(hex::encode(&genesis_header.data_hash), data_hash(genesis));
    assert_eq!(nonempty_metadata(genesis), Vec::<usize>::new());
    assert_eq!(
        header_type(&inner),
        (HeaderType::Config as i32, channel.clone())
    );
    let config_envelope = ConfigEnvelope::decode(payload_data(&inner)).unwrap();
    assert_eq!(
        config_envelope.config.unwrap(),
        reference_config(answers, &channel)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_recorded_system_channel_flow_gets_fabrics_answers() {
    replay(SOLO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_recorded_etcdraft_system_channel_flow_over_tls_gets_fabrics_answers() {
    replay(ETCDRAFT).await;
}

async fn replay(flow: Flow) {
    let answers: Value = serde_json::from_slice(&flow.recorded("answers.json")).unwrap();
    let spec: Value = serde_json::from_slice(&read("spec.json")).unwrap();
    let unknown = spec["case_channels"]["unknown"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let orderer = start_flow(dir.path(), flow);
    let ord_admin = signer_named("ord_admin");
    let mut checked = 0;

    for case in answers["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let expected = &case["expected"];
        if let Some(file) = case["envelope"].as_str() {
            let responses = broadcast(&orderer, vec![envelope_file(file)]).await;
            let want = if expected["acks"] == "SUCCESS" {
                "SUCCESS"
            } else {
                expected["status"].as_str().unwrap()
            };
            let got = Status::try_from(responses[0].status).unwrap();
            assert_eq!(got.as_str_name(), want, "{name}: {}", responses[0].info);
            if let Some(info) = case["info"].as_str() {
                assert_eq!(squeeze(&responses[0].info), info, "{name}");
            }
            checked += 1;
        }
        match name {
            "sys.block0_is_genesis_file" => {
                let (blocks, _) = all_blocks(&orderer, &ord_admin, SYSTEM).await;
                assert_eq!(blocks[0].encode_to_vec(), read(flow.genesis));
            }
            "create.app_channel_exists" | "sys.height_after_create" => {
                let channel = if name.starts_with("create") {
                    APP
                } else {
                    SYSTEM
                };
                let want = expected["height"].as_u64().unwrap();
                let blocks = wait_blocks(&orderer, &ord_admin, channel, 0, want - 1, WAIT).await;
                assert_eq!(blocks.len() as u64, want, "{name}");
            }
            "sys.block1_orderer_transaction" => {
                let system = wait_blocks(&orderer, &ord_admin, SYSTEM, 0, 1, WAIT).await;
                let app = wait_blocks(&orderer, &ord_admin, APP, 0, 0, WAIT).await;
                check_creation(&answers, &system[1], &app[0], &system[0]);
                check_raft_metadata(flow, &system[1..], "system");
            }
            "app.three_client_txs" => {
                let envelopes = (0..3)
                    .map(|i| envelope_file(&format!("app-tx-{i}.env")))
                    .collect();
                let responses = broadcast(&orderer, envelopes).await;
                assert_eq!(statuses(&responses), vec![Status::Success as i32; 3]);
                let blocks = wait_blocks(&orderer, &user1(), APP, 1, 1, WAIT).await;
                // Client envelopes only: Fabric's data hash is reproducible.
                assert_eq!(data_hash(&blocks[0]), expected["blocks"][0]["data_hash"]);
                assert_eq!(tx_count(&blocks[0]), 3);
                check_raft_metadata(flow, &blocks, "appchannel");
            }
            "sys.endorser_tx_by_orderer_admin" => {
                let blocks = wait_blocks(&orderer, &ord_admin, SYSTEM, 2, 2, WAIT).await;
                assert_eq!(data_hash(&blocks[0]), expected["blocks"][0]["data_hash"]);
                check_raft_metadata(flow, &blocks, "system");
            }
            "create.bad_outer_signature_result" => {
                let system = wait_blocks(&orderer, &ord_admin, SYSTEM, 2, 3, WAIT).await;
                let created = wait_blocks(&orderer, &ord_admin, "badsig-channel", 0, 0, WAIT).await;
                check_creation(&answers, &system[1], &created[0], &system[0]);
                check_raft_metadata(flow, &system[1..], "system");
            }
            "create.rejections_changed_nothing" | "sys.rejections_changed_nothing" => {
                // Both come after the creation of appchannel and before any other block.
                let (system, _) = all_blocks(&orderer, &ord_admin, SYSTEM).await;
                assert_eq!(system.len(), 2, "{name}");
                let (app, _) = all_blocks(&orderer, &ord_admin, APP).await;
                assert_eq!(app.len(), 2, "{name}");
                let (_, status) = all_blocks(&orderer, &ord_admin, unknown).await;
                assert_eq!(status, Status::NotFound, "{name}");
            }
            _ if name.starts_with("deliver.") => {
                let (channel, who) = match name.strip_prefix("deliver.").unwrap() {
                    "unknown_channel" => (unknown, "app_client"),
                    rest => {
                        let (ch, who) = rest.split_once("_by_").unwrap();
                        (if ch == "sys" { SYSTEM } else { APP }, who)
                    }
                };
                let (blocks, status) = all_blocks(&orderer, &signer_named(who), channel).await;
                assert_eq!(status.as_str_name(), expected["status"], "{name}");
                assert_eq!(
                    blocks.len() as u64,
                    expected["nblocks"].as_u64().unwrap(),
                    "{name}"
                );
                checked += 1;
            }
            _ if name.starts_with("admin.") => {
                let answer = match name.strip_prefix("admin.").unwrap() {
                    "list_start" | "list_after_create" => get(&orderer, CHANNELS).await,
                    "info_system_channel" => get(&orderer, &format!("{CHANNELS}/{SYSTEM}")).await,
                    "info_app_channel" => get(&orderer, &format!("{CHANNELS}/{APP}")).await,
                    "info_unknown_channel" => get(&orderer, &format!("{CHANNELS}/{unknown}")).await,
                    "join_app_channel_block" => {
                        let block =
                            std::fs::read(fabric().join("blocks/mychannel-etcdraft-genesis.block"))
                                .unwrap();
                        join(&orderer, &block).await
                    }
                    "join_created_channel_block" => {
                        join(&orderer, &read("appchannel-block-0.block")).await
                    }
                    "join_system_channel_block" => join(&orderer, &read(flow.genesis)).await,
                    "remove_app_channel" | "remove_system_channel" => {
                        let channel = if name.ends_with("app_channel") {
                            APP
                        } else {
                            SYSTEM
                        };
                        call(
                            &orderer,
                            Method::DELETE,
                            &format!("{CHANNELS}/{channel}"),
                            &[],
                            vec![],
                        )
                        .await
                    }
                    other => panic!("unknown admin case {other}"),
                };
                assert_eq!(
                    answer.status.as_u16() as u64,
                    expected["http"].as_u64().unwrap(),
                    "{name}"
                );
                if let Some(body) = case["body"].as_str() {
                    assert_eq!(answer.body, body, "{name}");
                }
                if let Some(allow) = expected["allow"].as_str() {
                    assert_eq!(answer.header("allow"), allow, "{name}");
                }
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(checked >= 35, "only {checked} answers compared");

    // A restart reopens the system channel and the channels it created. The etcdraft
    // flow ended by removing the system channel: the channels it created carry on.
    drop(orderer);
    let orderer = start_flow(dir.path(), flow);
    assert!(
        orderer
            .log()
            .contains("not bootstrapping the system channel"),
        "{}",
        orderer.log()
    );
    for (channel, height) in [(SYSTEM, 4), (APP, 2), ("badsig-channel", 1)] {
        let (blocks, status) = all_blocks(&orderer, &ord_admin, channel).await;
        let want = if channel == SYSTEM && flow.is_etcdraft() {
            (Status::NotFound, 0)
        } else {
            (Status::Success, height)
        };
        assert_eq!((status, blocks.len()), want, "{channel}");
    }
    let responses = broadcast(&orderer, vec![tx(&user1(), APP, 100, 1)]).await;
    assert_eq!(statuses(&responses), vec![Status::Success as i32]);
    let list = get(&orderer, CHANNELS).await;
    let system = if flow.is_etcdraft() {
        r#""systemChannel":null"#
    } else {
        r#""systemChannel":{"name":"system-channel""#
    };
    assert!(list.body.contains(system), "{}", list.body);
    assert!(
        list.body.contains(r#""name":"badsig-channel""#),
        "{}",
        list.body
    );
}

/// `orderer channel create` with arguments as `peer channel create` takes them.
fn channel_create(
    orderer: &Orderer,
    channel: &str,
    tx: &Path,
    msp: &str,
    out: &Path,
) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_orderer"))
        .args([
            "channel",
            "create",
            "--orderer",
            &orderer.addr,
            "--channel",
            channel,
        ])
        .arg("--msp-dir")
        .arg(fixture_msp(msp))
        .args(["--msp-id", "Org1MSP", "--tx-file"])
        .arg(tx)
        .arg("--output-block")
        .arg(out)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn orderer_channel_create_signs_sends_and_fetches_the_genesis_block() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = start(dir.path());
    let out = dir.path().join("appchannel.block");
    // configtxgen's output carries no signature: a client of Org1 is not enough.
    let unsigned = syschannel("appchannel-create.tx");
    let refused = channel_create(&orderer, APP, &unsigned, USER1_MSP, &out);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("channel creation rejected: BAD_REQUEST: error validating channel creation transaction for new channel 'appchannel'"),
        "{stderr}"
    );
    assert!(!out.exists());

    let created = channel_create(&orderer, APP, &unsigned, ORG1_ADMIN_MSP, &out);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let written = std::fs::read(&out).unwrap();
    let (blocks, _) = all_blocks(&orderer, &user1(), APP).await;
    assert_eq!(written, blocks[0].encode_to_vec());
    let responses = broadcast(&orderer, vec![tx(&user1(), APP, 100, 1)]).await;
    assert_eq!(statuses(&responses), vec![Status::Success as i32]);

    // The transaction names another channel than --channel.
    let mismatch = channel_create(&orderer, "other", &unsigned, ORG1_ADMIN_MSP, &out);
    assert!(!mismatch.status.success());
    assert!(
        String::from_utf8_lossy(&mismatch.stderr)
            .contains("creates channel \"appchannel\", not --channel \"other\""),
        "{}",
        String::from_utf8_lossy(&mismatch.stderr)
    );
}

/// Fabric v2.5.12's own `peer channel create` (`$FABRIC_REF/bin/peer`, as the fixture's
/// capture run ran it) creates a channel on our orderer, and `osnadmin channel list`
/// prints what it printed against Fabric's orderer.
#[tokio::test(flavor = "multi_thread")]
async fn fabric_peer_channel_create_and_osnadmin_against_our_system_channel() {
    let Some(reference) = std::env::var_os("FABRIC_REF").map(PathBuf::from) else {
        eprintln!(
            "skipped: FABRIC_REF is not set (Fabric's peer and osnadmin come from its build)"
        );
        return;
    };
    let answers: Value = serde_json::from_slice(&read("answers.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let orderer = start(dir.path());

    let osnadmin = |args: &[&str]| {
        let out = std::process::Command::new(reference.join("bin/osnadmin"))
            .args(["channel", "list", "-o", &orderer.admin])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
            + String::from_utf8_lossy(&out.stderr).trim()
    };
    let recorded = |name: &str| {
        let case = answers["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap();
        case["osnadmin_cli"]["output"].as_str().unwrap().to_string()
    };
    assert_eq!(osnadmin(&[]), recorded("admin.list_start"));
    assert_eq!(
        osnadmin(&["-c", SYSTEM]),
        recorded("admin.info_system_channel")
    );

    let block = dir.path().join("appchannel.block");
    let out = std::process::Command::new(reference.join("bin/peer"))
        .args(["channel", "create", "-o", &orderer.addr, "-c", APP, "-f"])
        .arg(syschannel("appchannel-create.tx"))
        .args(["--timeout", "15s", "--outputBlock"])
        .arg(&block)
        .env("FABRIC_CFG_PATH", reference.join("src/sampleconfig"))
        .env("CORE_PEER_LOCALMSPID", "Org1MSP")
        .env("CORE_PEER_MSPCONFIGPATH", fixture_msp(ORG1_ADMIN_MSP))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "peer channel create: {stderr}");
    eprintln!(
        "peer channel create: {}",
        stderr.lines().last().unwrap_or_default()
    );
    let (blocks, _) = all_blocks(&orderer, &user1(), APP).await;
    assert_eq!(std::fs::read(&block).unwrap(), blocks[0].encode_to_vec());
    check_creation(
        &answers,
        &all_blocks(&orderer, &signer_named("ord_admin"), SYSTEM)
            .await
            .0[1],
        &blocks[0],
        &all_blocks(&orderer, &signer_named("ord_admin"), SYSTEM)
            .await
            .0[0],
    );
    assert_eq!(osnadmin(&[]), recorded("admin.list_after_create"));
}
