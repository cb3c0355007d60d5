//! A Raft cluster of three of our orderers: real processes over loopback, TLS on
//! every connection with certificates made here, the consenters known by their TLS
//! certificates. Without a quorum Broadcast answers Fabric's SERVICE_UNAVAILABLE "no
//! Raft leader"; with one, envelopes sent to any node are ordered once, every node
//! writes the same blocks (each signed by itself, with the Raft metadata), the
//! cluster carries on when its leader is killed, and the killed node, restarted from
//! its WAL, catches up.

use crate::common::*;
use fabric_protos::common::{Block, ConfigEnvelope, ConfigGroup, Envelope, Payload, Status};
use fabric_protos::orderer::ConsensusType;
use fabric_protos::orderer::etcdraft::{BlockMetadata, ConfigMetadata, Consenter};
use orderer::comm::ClientTls;
use prost::Message;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CH: &str = "mychannel";

/// One node's TLS files and client port.
pub(crate) struct Node {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) pem: String,
    pub(crate) port: u16,
}

pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A TLS CA and one certificate per node (server and client use), in `dir`.
pub(crate) fn make_nodes(dir: &Path, count: usize) -> (PathBuf, Vec<Node>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "tlsca.cluster");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = params.self_signed(&ca_key).unwrap();
    let ca_file = dir.join("tlsca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let nodes = (0..count)
        .map(|i| {
            let key = KeyPair::generate().unwrap();
            let mut params =
                CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()]).unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, format!("orderer{i}.cluster"));
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
            let (cert_file, key_file) = (
                dir.join(format!("node{i}.crt")),
                dir.join(format!("node{i}.key")),
            );
            std::fs::write(&cert_file, cert.pem()).unwrap();
            std::fs::write(&key_file, key.serialize_pem()).unwrap();
            Node {
                cert: cert_file,
                key: key_file,
                pem: cert.pem(),
                port: free_port(),
            }
        })
        .collect();
    (ca_file, nodes)
}

/// The fixture `mychannel` genesis block with `nodes` as its etcdraft consenters
/// (TickInterval 100ms, so elections take about a second).
pub(crate) fn cluster_genesis(nodes: &[Node]) -> Vec<u8> {
    let raw = std::fs::read(fabric().join("blocks/mychannel-etcdraft-genesis.block")).unwrap();
    edit_orderer_group(&raw, |orderer| {
        let value = orderer.values.get_mut("ConsensusType").unwrap();
        let mut consensus = ConsensusType::decode(value.value.clone()).unwrap();
        let mut metadata = ConfigMetadata::decode(consensus.metadata.clone()).unwrap();
        metadata.consenters = nodes
            .iter()
            .map(|node| Consenter {
                host: "127.0.0.1".into(),
                port: node.port.into(),
                client_tls_cert: node.pem.clone().into_bytes().into(),
                server_tls_cert: node.pem.clone().into_bytes().into(),
            })
            .collect();
        metadata.options.as_mut().unwrap().tick_interval = "100ms".into();
        consensus.metadata = metadata.encode_to_vec().into();
        value.value = consensus.encode_to_vec().into();
    })
}

/// The genesis block `raw` with its config's Orderer group changed by `edit`, and
/// its data hash made again.
pub(crate) fn edit_orderer_group(raw: &[u8], edit: impl FnOnce(&mut ConfigGroup)) -> Vec<u8> {
    let mut block = Block::decode(raw).unwrap();
    let data = block.data.as_mut().unwrap();
    let mut envelope = Envelope::decode(data.data[0].clone()).unwrap();
    let mut payload = Payload::decode(envelope.payload.clone()).unwrap();
    let mut config_envelope = ConfigEnvelope::decode(payload.data.clone()).unwrap();
    let config = config_envelope.config.as_mut().unwrap();
    let orderer = config
        .channel_group
        .as_mut()
        .unwrap()
        .groups
        .get_mut("Orderer")
        .unwrap();
    edit(orderer);
    payload.data = config_envelope.encode_to_vec().into();
    envelope.payload = payload.encode_to_vec().into();
    data.data[0] = envelope.encode_to_vec().into();
    let hash = Sha256::digest(&data.data[0]);
    block.header.as_mut().unwrap().data_hash = hash.to_vec().into();
    block.encode_to_vec()
}

pub(crate) fn start_node(dir: &Path, node: &Node, genesis: &Path, ca: &Path) -> Orderer {
    let mut orderer = Orderer::run(start_command(dir, node, Some(genesis)), dir);
    orderer.tls = Some(ClientTls::from_files(ca, None, None).unwrap());
    orderer
}

/// The start command of `node`, with the channel's genesis block or none.
pub(crate) fn start_command(dir: &Path, node: &Node, genesis: Option<&Path>) -> Command {
    let msp = fixture_msp(ORDERER0_MSP);
    let env = [
        ("ORDERER_GENERAL_TLS_ENABLED", "true"),
        (
            "ORDERER_GENERAL_TLS_CERTIFICATE",
            node.cert.to_str().unwrap(),
        ),
        ("ORDERER_GENERAL_TLS_PRIVATEKEY", node.key.to_str().unwrap()),
    ];
    let mut args = vec!["--msp-dir", msp.to_str().unwrap(), "--msp-id", "OrdererMSP"];
    if let Some(genesis) = genesis {
        args.extend(["--genesis-block", genesis.to_str().unwrap()]);
    }
    Orderer::command_on(dir, &format!("127.0.0.1:{}", node.port), &args, &env)
}

/// Broadcasts one envelope to `orderer`: its status and info.
pub(crate) async fn send(orderer: &Orderer, seed: u8) -> (i32, String) {
    let responses = broadcast(orderer, vec![tx(&user1(), CH, 64, seed)]).await;
    let response = responses.first().expect("an answer");
    (response.status, response.info.clone())
}

/// Sends until `orderer` answers SUCCESS (a leader is known and serving).
pub(crate) async fn send_until_ordered(orderer: &Orderer, seed: u8) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, info) = send(orderer, seed).await;
        if status == Status::Success as i32 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no SUCCESS within 30 s: {status} {info}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) fn payload_seeds(blocks: &[Block]) -> Vec<u8> {
    blocks
        .iter()
        .skip(1)
        .flat_map(|b| b.data.clone().unwrap().data)
        .map(|e| {
            let e = Envelope::decode(e).unwrap();
            Payload::decode(e.payload).unwrap().data[0]
        })
        .collect()
}

pub(crate) fn raft_metadata(block: &Block) -> BlockMetadata {
    use fabric_protos::common::{Metadata, OrdererBlockMetadata};
    let slot = &block.metadata.as_ref().unwrap().metadata[0];
    let value = Metadata::decode(slot.clone()).unwrap().value;
    let orderer = OrdererBlockMetadata::decode(value).unwrap();
    BlockMetadata::decode(Metadata::decode(orderer.consenter_metadata).unwrap().value).unwrap()
}

/// Blocks 0..=stop of every orderer: the same headers and data everywhere.
pub(crate) async fn same_chain(orderers: &[&Orderer], stop: u64) -> Vec<Block> {
    let mut chains = Vec::new();
    for orderer in orderers {
        let blocks = wait_blocks(orderer, &user1(), CH, 0, stop, Duration::from_secs(30)).await;
        chains.push(blocks);
    }
    let strip = |blocks: &[Block]| -> Vec<_> {
        blocks
            .iter()
            .map(|b| (b.header.clone(), b.data.clone()))
            .collect()
    };
    for chain in &chains[1..] {
        assert_eq!(strip(chain), strip(&chains[0]));
    }
    chains.swap_remove(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_of_our_orderers_order_as_one_raft_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, nodes) = make_nodes(dir.path(), 3);
    let genesis = dir.path().join("genesis.block");
    std::fs::write(&genesis, cluster_genesis(&nodes)).unwrap();

    // One node of three: no quorum, no leader.
    let first = start_node(&dir.path().join("n0"), &nodes[0], &genesis, &ca);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, info) = send(&first, 0).await;
    assert_eq!(
        (status, info.as_str()),
        (Status::ServiceUnavailable as i32, "no Raft leader"),
        "{}",
        first.log()
    );

    let mut orderers = vec![first];
    for (i, node) in nodes.iter().enumerate().skip(1) {
        orderers.push(start_node(
            &dir.path().join(format!("n{i}")),
            node,
            &genesis,
            &ca,
        ));
    }
    send_until_ordered(&orderers[0], 1).await;
    // Every node takes envelopes, once it knows the leader: followers forward them.
    for seed in 2..14u8 {
        send_until_ordered(&orderers[seed as usize % 3], seed).await;
    }
    // BatchTimeout 2 s: wait for the last envelope on every node.
    let deadline = Instant::now() + Duration::from_secs(30);
    let blocks = loop {
        let (blocks, _) = deliver(
            &orderers[0],
            seek_envelope(
                &user1(),
                CH,
                Some(oldest()),
                Some(newest()),
                fabric_protos::orderer::seek_info::SeekBehavior::FailIfNotReady,
            ),
        )
        .await;
        if payload_seeds(&blocks).contains(&13) || Instant::now() > deadline {
            break blocks;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let height = blocks.len() as u64;
    let chain = same_chain(&orderers.iter().collect::<Vec<_>>(), height - 1).await;
    let mut seeds = payload_seeds(&chain);
    seeds.sort();
    let before: Vec<u8> = seeds.iter().copied().filter(|s| *s >= 1).collect();
    assert_eq!(
        before,
        (1..14).collect::<Vec<u8>>(),
        "each envelope ordered once"
    );
    for block in &chain[1..] {
        let metadata = raft_metadata(block);
        assert_eq!(metadata.consenter_ids, vec![1, 2, 3]);
        assert_eq!(metadata.next_consenter_id, 4);
    }
    // Fabric's etcdraft metrics: one leader, three nodes, every node at the tip.
    let mut leaders = 0.0;
    for orderer in &orderers {
        let (_, metrics) = crate::operations::get(orderer, "/metrics").await;
        let series = |name: &str| format!("consensus_etcdraft_{name}{{channel=\"{CH}\"}}");
        let value = |name: &str| crate::operations::sample(&metrics, &series(name));
        assert_eq!(value("cluster_size"), 3.0, "{metrics}");
        assert_eq!(value("committed_block_number"), (height - 1) as f64);
        leaders += value("is_leader");
    }
    assert_eq!(leaders, 1.0);
    // Channel info names each node's Raft ID and the one leader they all know.
    let mut known = Vec::new();
    for (i, orderer) in orderers.iter().enumerate() {
        let path = format!("/participation/v1/channels/{CH}");
        let info = crate::participation::get(orderer, &path).await;
        let info: serde_json::Value = serde_json::from_str(&info.body).unwrap();
        assert_eq!(info["raftId"], i as u64 + 1, "{info}");
        known.push(info["raftLeader"].as_u64().unwrap());
    }
    assert!(known.iter().all(|l| *l == known[0] && *l != 0), "{known:?}");

    // Kill the leader: the other two elect one of themselves and carry on.
    let leader = (0..3)
        .find(|i| {
            orderers[*i]
                .log()
                .contains("Start accepting requests as Raft leader")
        })
        .expect("a node logged its leadership");
    assert_eq!(known[0], leader as u64 + 1, "the leader channel info names");
    orderers[leader].kill();
    let survivors: Vec<&Orderer> = (0..3)
        .filter(|i| *i != leader)
        .map(|i| &orderers[i])
        .collect();
    send_until_ordered(survivors[0], 100).await;
    let (blocks, _) = loop {
        let got = deliver(
            survivors[1],
            seek_envelope(
                &user1(),
                CH,
                Some(oldest()),
                Some(newest()),
                fabric_protos::orderer::seek_info::SeekBehavior::FailIfNotReady,
            ),
        )
        .await;
        if payload_seeds(&got.0).contains(&100) {
            break got;
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(30),
            "the survivors did not order"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    same_chain(&survivors, blocks.len() as u64 - 1).await;

    // The old leader restarts from its WAL and ledger: it catches up on what was
    // ordered without it, and orders again with the others.
    let restarted = start_node(
        &dir.path().join(format!("n{leader}")),
        &nodes[leader],
        &genesis,
        &ca,
    );
    assert!(
        restarted.log().contains("restart=true"),
        "{}",
        restarted.log()
    );
    send_until_ordered(&restarted, 101).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let blocks = loop {
        let (blocks, _) = deliver(
            &restarted,
            seek_envelope(
                &user1(),
                CH,
                Some(oldest()),
                Some(newest()),
                fabric_protos::orderer::seek_info::SeekBehavior::FailIfNotReady,
            ),
        )
        .await;
        if payload_seeds(&blocks).contains(&101) {
            break blocks;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted node did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut all = survivors;
    all.push(&restarted);
    let chain = same_chain(&all, blocks.len() as u64 - 1).await;
    let seeds = payload_seeds(&chain);
    for seed in [100, 101] {
        assert_eq!(
            seeds.iter().filter(|s| **s == seed).count(),
            1,
            "{seed} ordered once"
        );
    }
}
