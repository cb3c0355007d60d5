//! Changing a Raft cluster's consenters by config update, end to end (real processes,
//! mutual TLS): the orderer org's admin adds a fourth node, which joins through the
//! participation API with the config block that added it (it pulls the blocks before
//! it from the others, then Raft brings it up to date), and orders with the others;
//! then the admin removes one of the first three, which stops, and the other three
//! order on.

use crate::common::*;
use crate::raft::*;
use crate::raft_catchup::chain_of;
use fabric_protos::common::{Block, ChannelHeader, Envelope, HeaderType, Payload, Status};
use fabric_protos::orderer::ConsensusType;
use fabric_protos::orderer::etcdraft::{ConfigMetadata, Consenter};
use orderer::client::configupdate;
use orderer::identity::Signer;
use prost::Message;
use std::time::{Duration, Instant};

const CH: &str = "mychannel";
const ORDERER_ADMIN_MSP: &str = "ordererOrganizations/example.com/users/Admin@example.com/msp";

fn is_config(block: &Block) -> bool {
    let Some(data) = block.data.as_ref().and_then(|d| d.data.first()) else {
        return false;
    };
    let payload = Payload::decode(Envelope::decode(data.clone()).unwrap().payload).unwrap();
    let header = ChannelHeader::decode(payload.header.unwrap().channel_header).unwrap();
    header.r#type == HeaderType::Config as i32
}

/// Waits until `orderer` has a config block after block `after`; that block.
pub(crate) async fn wait_config_block(orderer: &Orderer, after: u64) -> Block {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let chain = chain_of(orderer).await;
        if let Some(block) = chain
            .iter()
            .rev()
            .find(|b| b.header.as_ref().unwrap().number > after && is_config(b))
        {
            return block.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no config block: {}",
            orderer.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The orderer admin's config update of the consenter set in `config_block`,
/// sent to `orderer`: Broadcast's answer.
pub(crate) async fn update_consenters(
    orderer: &Orderer,
    config_block: &Block,
    edit: impl FnOnce(&mut Vec<Consenter>),
) -> (i32, String) {
    let original = configupdate::config_from_block(config_block).unwrap();
    let mut updated = original.clone();
    let group = updated.channel_group.as_mut().unwrap();
    let value = group
        .groups
        .get_mut("Orderer")
        .unwrap()
        .values
        .get_mut("ConsensusType")
        .unwrap();
    let mut consensus = ConsensusType::decode(value.value.clone()).unwrap();
    let mut metadata = ConfigMetadata::decode(consensus.metadata.clone()).unwrap();
    edit(&mut metadata.consenters);
    consensus.metadata = metadata.encode_to_vec().into();
    value.value = consensus.encode_to_vec().into();
    let update = configupdate::compute_update(CH, &original, &updated).unwrap();
    let admin = Signer::from_msp_dir(&fixture_msp(ORDERER_ADMIN_MSP), "OrdererMSP").unwrap();
    let mut envelope = configupdate::unsigned_update(&update);
    configupdate::add_signature(&mut envelope, &admin);
    let answers = broadcast(
        orderer,
        vec![configupdate::update_envelope(CH, &envelope, &admin)],
    )
    .await;
    (answers[0].status, answers[0].info.clone())
}

/// [`update_consenters`] until it is accepted: refused only while the node does not
/// yet know enough nodes alive (the leader's count reaches followers after a few
/// ticks, as Fabric's does).
async fn update_when_alive(
    orderer: &Orderer,
    config_block: &Block,
    edit: impl Fn(&mut Vec<Consenter>),
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, info) = update_consenters(orderer, config_block, &edit).await;
        if status == Status::Success as i32 {
            return;
        }
        assert!(
            info.contains("configuration will result in quorum loss") && Instant::now() < deadline,
            "{status}: {info}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub(crate) fn consenter(node: &Node) -> Consenter {
    Consenter {
        host: "127.0.0.1".into(),
        port: node.port.into(),
        client_tls_cert: node.pem.clone().into_bytes().into(),
        server_tls_cert: node.pem.clone().into_bytes().into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fourth_node_is_added_and_onboards_then_one_is_removed_by_config_updates() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, nodes) = make_nodes(dir.path(), 4);
    let genesis = dir.path().join("genesis.block");
    std::fs::write(&genesis, cluster_genesis(&nodes[..3])).unwrap();
    let mut orderers: Vec<Option<Orderer>> = (0..3)
        .map(|i| {
            let data = dir.path().join(format!("n{i}"));
            Some(start_node(&data, &nodes[i], &genesis, &ca))
        })
        .collect();
    for seed in 1..4 {
        send_until_ordered(orderers[seed as usize % 3].as_ref().unwrap(), seed).await;
    }
    let genesis_block = Block::decode(std::fs::read(&genesis).unwrap().as_slice()).unwrap();
    let first = orderers[0].as_ref().unwrap();

    // Two changes at once are refused, as Fabric refuses them.
    let (status, info) = update_consenters(first, &genesis_block, |c| {
        c.push(consenter(&nodes[3]));
        c.remove(0);
        c.remove(0);
    })
    .await;
    assert_eq!(status, Status::BadRequest as i32, "{info}");
    assert!(
        info.contains("update of more than one consenter at a time is not supported"),
        "{info}"
    );

    // The admin adds node 3: Raft ID 4, next ID 5, in every node's config block.
    update_when_alive(first, &genesis_block, |c| c.push(consenter(&nodes[3]))).await;
    let added = wait_config_block(first, 0).await;
    let number = added.header.as_ref().unwrap().number;
    let metadata = raft_metadata(&added);
    assert_eq!(metadata.consenter_ids, vec![1, 2, 3, 4]);
    assert_eq!(metadata.next_consenter_id, 5);

    // Node 3 starts with no channel and joins at that config block, as osnadmin would.
    let data = dir.path().join("n3");
    let command = start_command(&data, &nodes[3], None);
    let mut fourth = Orderer::run(command, &data);
    fourth.tls = Some(orderer::comm::ClientTls::from_files(&ca, None, None).unwrap());
    let joined = crate::participation::join(&fourth, &added.encode_to_vec()).await;
    assert_eq!(joined.status, 201, "{}", joined.body);
    assert!(
        joined.body.contains("\"consensusRelation\":\"consenter\""),
        "{}",
        joined.body
    );
    // It pulls blocks 0..number from the others, then orders: a Broadcast to it is
    // forwarded to the leader and ordered, and every node has the same chain.
    send_until_ordered(&fourth, 10).await;
    assert!(
        fourth
            .log()
            .contains(&format!("joining at config block [{number}]")),
        "{}",
        fourth.log()
    );
    let info =
        crate::participation::get(&fourth, &format!("/participation/v1/channels/{CH}")).await;
    assert!(info.body.contains("\"status\":\"active\""), "{}", info.body);
    let height = chain_of(&fourth).await.len() as u64;
    orderers.push(Some(fourth));
    let all: Vec<&Orderer> = orderers.iter().flatten().collect();
    same_chain(&all, height - 1).await;

    // The admin removes node 0 (sending to node 1): node 0 stops, the other three
    // order on without it.
    let second = orderers[1].as_ref().unwrap();
    update_when_alive(second, &added, |c| {
        c.remove(0);
    })
    .await;
    let removed = wait_config_block(second, number).await;
    let metadata = raft_metadata(&removed);
    assert_eq!(metadata.consenter_ids, vec![2, 3, 4]);
    assert_eq!(metadata.next_consenter_id, 5);
    let deadline = Instant::now() + Duration::from_secs(20);
    let gone = orderers[0].as_ref().unwrap();
    // A follower stops when it writes the config block, the leader once its
    // ConfChange applies.
    while !gone
        .log()
        .contains("Detected our own eviction from the channel")
        && !gone
            .log()
            .contains("This node is being removed from replica set")
    {
        assert!(Instant::now() < deadline, "{}", gone.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for seed in 20..24 {
        send_until_ordered(orderers[1 + seed as usize % 3].as_ref().unwrap(), seed).await;
    }
    let rest: Vec<&Orderer> = orderers[1..].iter().flatten().collect();
    // Acknowledged envelopes are in blocks once the batch timeout cuts them.
    let deadline = Instant::now() + Duration::from_secs(30);
    let seeds = loop {
        let chain = chain_of(rest[2]).await;
        let normal: Vec<Block> = (chain.iter())
            .filter(|b| b.header.as_ref().unwrap().number == 0 || !is_config(b))
            .cloned()
            .collect();
        let seeds = payload_seeds(&normal);
        if seeds.contains(&23) || Instant::now() > deadline {
            same_chain(&rest, chain.len() as u64 - 1).await;
            break seeds;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for seed in [1, 2, 3, 10, 20, 21, 22, 23] {
        assert_eq!(seeds.iter().filter(|s| **s == seed).count(), 1, "{seeds:?}");
    }
    // The removed node's Broadcast is refused: its chain has stopped.
    let (status, _) = send(gone, 30).await;
    assert_ne!(status, Status::Success as i32);
}
