//! Snapshots and catch-up on a cluster of three of our orderers (real processes,
//! mutual TLS): with a small SnapshotIntervalSize the nodes take snapshots and compact
//! their logs; a node that was down meanwhile gets a snapshot from the leader and
//! pulls the blocks it lacks over Deliver from the others; a node whose WAL and
//! snapshots are gone joins again from its ledger; a node restarted after its own
//! snapshots starts from them.

use crate::common::*;
use crate::raft::*;
use fabric_protos::common::Block;
use fabric_protos::orderer::etcdraft::ConfigMetadata;
use fabric_protos::orderer::seek_info::SeekBehavior;
use fabric_protos::orderer::{BatchSize, ConsensusType};
use prost::Message;
use std::path::Path;
use std::time::{Duration, Instant};

const CH: &str = "mychannel";

/// `cluster_genesis` with a block per envelope and a snapshot every 8 KB of blocks.
pub(crate) fn snapshotting_genesis(nodes: &[Node]) -> Vec<u8> {
    edit_orderer_group(&cluster_genesis(nodes), |orderer| {
        let value = orderer.values.get_mut("ConsensusType").unwrap();
        let mut consensus = ConsensusType::decode(value.value.clone()).unwrap();
        let mut metadata = ConfigMetadata::decode(consensus.metadata.clone()).unwrap();
        metadata.options.as_mut().unwrap().snapshot_interval_size = 8 * 1024;
        consensus.metadata = metadata.encode_to_vec().into();
        value.value = consensus.encode_to_vec().into();
        let value = orderer.values.get_mut("BatchSize").unwrap();
        let mut batch = BatchSize::decode(value.value.clone()).unwrap();
        batch.max_message_count = 1;
        value.value = batch.encode_to_vec().into();
    })
}

/// Every block `orderer` has now.
pub(crate) async fn chain_of(orderer: &Orderer) -> Vec<Block> {
    let request = seek_envelope(
        &user1(),
        CH,
        Some(oldest()),
        Some(newest()),
        SeekBehavior::FailIfNotReady,
    );
    deliver(orderer, request).await.0
}

/// Waits until `orderer` has a block holding the envelope `seed`.
async fn wait_seed(orderer: &Orderer, seed: u8) -> Vec<Block> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let blocks = chain_of(orderer).await;
        if payload_seeds(&blocks).contains(&seed) {
            return blocks;
        }
        assert!(
            Instant::now() < deadline,
            "envelope {seed} not delivered: {}",
            orderer.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn metric(orderer: &Orderer, name: &str) -> f64 {
    let (_, metrics) = crate::operations::get(orderer, "/metrics").await;
    let series = format!("consensus_etcdraft_{name}{{channel=\"{CH}\"}}");
    crate::operations::sample(&metrics, &series)
}

/// Waits until the metric `name` of `orderer` is `value`.
async fn wait_metric(orderer: &Orderer, name: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(orderer, name).await != value {
        assert!(
            Instant::now() < deadline,
            "{name} is {}, not {value}",
            metric(orderer, name).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn leader_of(orderers: &[Option<Orderer>]) -> usize {
    let last = |o: &Orderer| {
        let log = o.log();
        log.rfind("Start accepting requests as Raft leader")
            .map(|at| (at, log.rfind("Raft leader changed").unwrap_or(0)))
    };
    (0..orderers.len())
        .find(|i| {
            orderers[*i]
                .as_ref()
                .and_then(last)
                .is_some_and(|(serving, changed)| serving > changed)
        })
        .expect("a serving leader")
}

fn start(dir: &Path, i: usize, nodes: &[Node], genesis: &Path, ca: &Path) -> Orderer {
    start_node(&dir.join(format!("n{i}")), &nodes[i], genesis, ca)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_behind_the_snapshots_catches_up_by_pulling_blocks_and_one_without_a_wal_joins_again()
 {
    let dir = tempfile::tempdir().unwrap();
    let (ca, nodes) = make_nodes(dir.path(), 3);
    let genesis = dir.path().join("genesis.block");
    std::fs::write(&genesis, snapshotting_genesis(&nodes)).unwrap();
    let mut orderers: Vec<Option<Orderer>> = (0..3)
        .map(|i| Some(start(dir.path(), i, &nodes, &genesis, &ca)))
        .collect();
    send_until_ordered(orderers[0].as_ref().unwrap(), 1).await;

    // A follower goes down; the others order 40 blocks of about 1.3 KB: several
    // snapshots, each compacting the log past what the follower has.
    let leader = leader_of(&orderers);
    let behind = (leader + 1) % 3;
    orderers[behind].take().unwrap().kill();
    let up: Vec<usize> = (0..3).filter(|i| *i != behind).collect();
    for seed in 2..42u8 {
        send_until_ordered(orderers[up[seed as usize % 2]].as_ref().unwrap(), seed).await;
    }
    wait_seed(orderers[up[0]].as_ref().unwrap(), 41).await;
    for i in &up {
        let orderer = orderers[*i].as_ref().unwrap();
        assert!(
            orderer.log().contains("taking snapshot at block"),
            "{}",
            orderer.log()
        );
        assert!(metric(orderer, "snapshot_block_number").await > 20.0);
    }
    // The leader counts who it hears from: itself and one follower.
    wait_metric(orderers[leader].as_ref().unwrap(), "active_nodes", 2.0).await;

    // Back again: too far behind for the log, so a snapshot and pulled blocks.
    orderers[behind] = Some(start(dir.path(), behind, &nodes, &genesis, &ca));
    let back = orderers[behind].as_ref().unwrap();
    let blocks = wait_seed(back, 41).await;
    let log = back.log();
    assert!(log.contains("restart=true"), "{log}");
    assert!(
        log.contains("Catching up with snapshot taken at block"),
        "{log}"
    );
    assert!(
        log.contains("Finished syncing with cluster up to and including block"),
        "{log}"
    );
    send_until_ordered(back, 42).await;
    let all: Vec<&Orderer> = orderers.iter().flatten().collect();
    let height = wait_seed(all[0], 42).await.len() as u64;
    let chain = same_chain(&all, height - 1).await;
    assert!(chain.len() > blocks.len());
    let mut seeds = payload_seeds(&chain);
    seeds.sort();
    assert_eq!(seeds, (1..=42).collect::<Vec<u8>>(), "each envelope once");
    // Every block the node pulled or wrote verifies, signed by itself.
    let check = orderer::client::check_block;
    let config = ordering_core::config::ChannelConfig::from_config_block(
        &std::fs::read(&genesis).unwrap(),
        &ordering_core::NativeCrypto,
    )
    .unwrap();
    let mine = chain_of(back).await;
    let mut previous = None;
    for block in &mine {
        let (line, ok) = check(block, previous, &config);
        assert!(ok, "{line}");
        let header = block.header.clone().unwrap();
        let hash = ordering_core::blockheader::header_hash(&header, &ordering_core::NativeCrypto);
        previous = Some((header.number, hash));
    }
    wait_metric(orderers[leader].as_ref().unwrap(), "active_nodes", 3.0).await;

    // Its WAL and snapshots lost: it joins again from its ledger (Fabric's join).
    orderers[behind].take().unwrap().kill();
    let data = dir.path().join(format!("n{behind}/etcdraft"));
    std::fs::remove_dir_all(&data).unwrap();
    for seed in 43..60u8 {
        send_until_ordered(orderers[up[0]].as_ref().unwrap(), seed).await;
    }
    orderers[behind] = Some(start(dir.path(), behind, &nodes, &genesis, &ca));
    let joined = orderers[behind].as_ref().unwrap();
    assert!(
        joined.log().contains("join an existing channel"),
        "{}",
        joined.log()
    );
    wait_seed(joined, 59).await;
    send_until_ordered(joined, 60).await;
    wait_seed(joined, 60).await;

    // The leader restarts from its own snapshot and compacted WAL.
    let leader = leader_of(&orderers);
    orderers[leader].take().unwrap().kill();
    let wal = dir.path().join(format!("n{leader}/etcdraft/wal/{CH}/wal"));
    let wal_bytes = std::fs::metadata(&wal).unwrap().len();
    assert!(
        wal_bytes < 40 * 1024,
        "the WAL is compacted: {wal_bytes} bytes after 60 blocks"
    );
    orderers[leader] = Some(start(dir.path(), leader, &nodes, &genesis, &ca));
    send_until_ordered(orderers[leader].as_ref().unwrap(), 61).await;
    let all: Vec<&Orderer> = orderers.iter().flatten().collect();
    let height = wait_seed(all[0], 61).await.len() as u64;
    for orderer in &all {
        wait_seed(orderer, 61).await;
    }
    let chain = same_chain(&all, height - 1).await;
    let mut seeds = payload_seeds(&chain);
    seeds.sort();
    assert_eq!(seeds, (1..=61).collect::<Vec<u8>>(), "each envelope once");
}
