//! Mixed Raft clusters: the real Fabric v2.5.12 orderer (`$FABRIC_REF/bin/orderer`,
//! joined with Fabric's `osnadmin`, no system channel) and ours as consenters of one
//! etcdraft channel, over loopback with mutual TLS (certificates made here, their CA
//! added to the channel's orderer MSP as a TLS root, as Fabric checks consenter
//! certificates against it). Envelopes broadcast to every node are ordered once; every
//! node holds the same chain (headers and data, compared block by block over
//! Deliver); the leader, whichever it is, is killed with SIGKILL, the survivors order
//! on, and the killed node, restarted, catches up. A consenter change that would
//! cost the quorum is refused by a follower of the other kind, which knows the nodes
//! alive only from the leader's `ClusterMetadata`. Skipped when `FABRIC_REF` is unset.

use crate::common::*;
use crate::raft::{
    Node, cluster_genesis, edit_orderer_group, free_port, make_nodes, payload_seeds, raft_metadata,
    same_chain, send_until_ordered, start_node,
};
use fabric_protos::common::OrdererAddresses;
use fabric_protos::msp::{FabricMspConfig, MspConfig};
use fabric_protos::orderer::BatchTimeout;
use fabric_protos::orderer::seek_info::SeekBehavior;
use orderer::comm::ClientTls;
use prost::Message;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CH: &str = "mychannel";
const WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Fabric,
    Ours,
}

/// [`cluster_genesis`] with the nodes' TLS CA among the orderer orgs' TLS roots and
/// a BatchTimeout of 200ms; with `snapshots`, a block per envelope, a snapshot every
/// 8 KB of blocks, and the nodes as the orgs' orderer endpoints (where Fabric's block
/// puller looks).
fn genesis(nodes: &[Node], ca: &Path, snapshots: bool) -> Vec<u8> {
    let ca_pem = std::fs::read(ca).unwrap();
    let base = cluster_genesis(nodes);
    let base = if snapshots {
        crate::raft_catchup::snapshotting_genesis(nodes)
    } else {
        base
    };
    let endpoints = OrdererAddresses {
        addresses: nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect(),
    };
    edit_orderer_group(&base, |orderer| {
        let timeout = orderer.values.get_mut("BatchTimeout").unwrap();
        timeout.value = BatchTimeout {
            timeout: "200ms".into(),
        }
        .encode_to_vec()
        .into();
        for org in orderer.groups.values_mut() {
            let value = org.values.get_mut("MSP").unwrap();
            let mut msp = MspConfig::decode(value.value.clone()).unwrap();
            let mut fabric = FabricMspConfig::decode(msp.config.clone()).unwrap();
            fabric.tls_root_certs.push(ca_pem.clone().into());
            msp.config = fabric.encode_to_vec().into();
            value.value = msp.encode_to_vec().into();
            if snapshots && let Some(value) = org.values.get_mut("Endpoints") {
                value.value = endpoints.encode_to_vec().into();
            }
        }
    })
}

/// Fabric's orderer for `node`: channel participation, no system channel, the
/// cluster on the TLS client listener (its TLS certificate also its cluster client
/// certificate), Prometheus metrics. Joins `genesis` with osnadmin when `join`
/// (not on a restart: the channel is in its ledger already).
fn start_fabric(
    reference: &Path,
    dir: &Path,
    node: &Node,
    genesis: &Path,
    ca: &Path,
    join: bool,
) -> Orderer {
    std::fs::create_dir_all(dir).unwrap();
    let (admin, operations) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let msp = fixture_msp(ORDERER0_MSP);
    let env = [
        ("FABRIC_CFG_PATH", path(&reference.join("src/sampleconfig"))),
        ("FABRIC_LOGGING_SPEC", "info".into()),
        ("ORDERER_GENERAL_LISTENADDRESS", "127.0.0.1".into()),
        ("ORDERER_GENERAL_LISTENPORT", node.port.to_string()),
        ("ORDERER_GENERAL_BOOTSTRAPMETHOD", "none".into()),
        ("ORDERER_GENERAL_LOCALMSPDIR", path(&msp)),
        ("ORDERER_GENERAL_LOCALMSPID", "OrdererMSP".into()),
        ("ORDERER_GENERAL_TLS_ENABLED", "true".into()),
        ("ORDERER_GENERAL_TLS_CERTIFICATE", path(&node.cert)),
        ("ORDERER_GENERAL_TLS_PRIVATEKEY", path(&node.key)),
        ("ORDERER_GENERAL_TLS_ROOTCAS", format!("[{}]", path(ca))),
        ("ORDERER_GENERAL_CLUSTER_ROOTCAS", format!("[{}]", path(ca))),
        ("ORDERER_FILELEDGER_LOCATION", path(&dir.join("ledger"))),
        ("ORDERER_CONSENSUS_WALDIR", path(&dir.join("etcdraft/wal"))),
        (
            "ORDERER_CONSENSUS_SNAPDIR",
            path(&dir.join("etcdraft/snapshot")),
        ),
        ("ORDERER_ADMIN_LISTENADDRESS", admin.clone()),
        ("ORDERER_ADMIN_TLS_ENABLED", "false".into()),
        ("ORDERER_CHANNELPARTICIPATION_ENABLED", "true".into()),
        ("ORDERER_OPERATIONS_LISTENADDRESS", operations.clone()),
        ("ORDERER_METRICS_PROVIDER", "prometheus".into()),
    ];
    let log_file = dir.join("orderer.log");
    // A restart appends to the log of the earlier run.
    const SERVING: &str = "Beginning to serve requests";
    let served = |log: &str| log.matches(SERVING).count();
    let before = served(&std::fs::read_to_string(&log_file).unwrap_or_default());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_file)
        .unwrap();
    let child = Command::new(reference.join("bin/orderer"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start Fabric's orderer");
    let orderer = Orderer::adopt(
        child,
        &format!("127.0.0.1:{}", node.port),
        &admin,
        &operations,
        dir,
        Some(ClientTls::from_files(ca, None, None).unwrap()),
    );
    let deadline = Instant::now() + WAIT;
    while served(&orderer.log()) == before {
        assert!(
            Instant::now() < deadline,
            "Fabric's orderer did not start:\n{}",
            orderer.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    if join {
        let out = Command::new(reference.join("bin/osnadmin"))
            .args(["channel", "join", "-o", &admin, "--channelID", CH])
            .arg("--config-block")
            .arg(genesis)
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && printed.starts_with("Status: 201"),
            "osnadmin channel join: {printed}{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            orderer.log()
        );
    }
    orderer
}

/// One consenter of the mixed cluster.
struct Member {
    kind: Kind,
    dir: PathBuf,
    orderer: Option<Orderer>,
}

struct Cluster {
    reference: PathBuf,
    ca: PathBuf,
    genesis: PathBuf,
    nodes: Vec<Node>,
    members: Vec<Member>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start(reference: PathBuf, kinds: &[Kind], snapshots: bool) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        // One spare node, with a certificate of the same CA, to add by config update.
        let (ca, nodes) = make_nodes(dir.path(), kinds.len() + 1);
        let genesis = dir.path().join("genesis.block");
        let consenters = &nodes[..kinds.len()];
        std::fs::write(&genesis, self::genesis(consenters, &ca, snapshots)).unwrap();
        let members = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| Member {
                kind: *kind,
                dir: dir.path().join(format!("n{i}-{kind:?}").to_lowercase()),
                orderer: None,
            })
            .collect();
        let mut cluster = Cluster {
            reference,
            ca,
            genesis,
            nodes,
            members,
            _dir: dir,
        };
        for i in 0..kinds.len() {
            cluster.launch(i, true);
        }
        cluster
    }

    fn launch(&mut self, i: usize, first: bool) {
        let member = &self.members[i];
        let orderer = match member.kind {
            Kind::Fabric => start_fabric(
                &self.reference,
                &member.dir,
                &self.nodes[i],
                &self.genesis,
                &self.ca,
                first,
            ),
            Kind::Ours => start_node(&member.dir, &self.nodes[i], &self.genesis, &self.ca),
        };
        self.members[i].orderer = Some(orderer);
    }

    fn running(&self) -> Vec<&Orderer> {
        self.members
            .iter()
            .filter_map(|m| m.orderer.as_ref())
            .collect()
    }

    fn name(&self, i: usize) -> String {
        format!("node {} ({:?}, Raft ID {})", i, self.members[i].kind, i + 1)
    }

    /// The running node that reports itself leader (consensus_etcdraft_is_leader).
    async fn leader(&self) -> usize {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut leaders = Vec::new();
            for (i, member) in self.members.iter().enumerate() {
                let Some(orderer) = &member.orderer else {
                    continue;
                };
                let (_, metrics) = crate::operations::get(orderer, "/metrics").await;
                let series = format!("consensus_etcdraft_is_leader{{channel=\"{CH}\"}}");
                if crate::operations::sample(&metrics, &series) == 1.0 {
                    leaders.push(i);
                }
            }
            if let [leader] = leaders[..] {
                return leader;
            }
            assert!(Instant::now() < deadline, "no single leader: {leaders:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn logs(&self) -> String {
        self.members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let log = std::fs::read_to_string(m.dir.join("orderer.log")).ok()?;
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                Some(format!("==== {} ====\n{}", self.name(i), tail.join("\n")))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// Waits until `orderer`'s chain holds every one of `seeds`; its height then.
async fn wait_for_seeds(orderer: &Orderer, seeds: &[u8]) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let (blocks, _) = deliver(
            orderer,
            seek_envelope(
                &user1(),
                CH,
                Some(oldest()),
                Some(newest()),
                SeekBehavior::FailIfNotReady,
            ),
        )
        .await;
        let got = payload_seeds(&blocks);
        if seeds.iter().all(|s| got.contains(s)) {
            return blocks.len() as u64;
        }
        assert!(
            Instant::now() < deadline,
            "{} lacks some of {seeds:?}: has {got:?}",
            orderer.addr
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `orderer deliver` (our CLI) on `orderer`'s chain: every block's data hash, hash
/// chain and orderer signature (Fabric's or ours) verified.
fn verify_with_cli(cluster: &Cluster, orderer: &Orderer, height: u64) {
    let msp = fixture_msp(USER1_MSP);
    let out = Command::new(env!("CARGO_BIN_EXE_orderer"))
        .args(["deliver", "--orderer", &orderer.addr, "--channel", CH])
        .args(["--msp-id", "Org1MSP", "--msp-dir", msp.to_str().unwrap()])
        .args(["--tls-ca", cluster.ca.to_str().unwrap()])
        .args(["--start", "oldest", "--stop", &(height - 1).to_string()])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    let blocks: Vec<&str> = printed
        .lines()
        .filter(|l| l.starts_with("block "))
        .collect();
    assert!(
        out.status.success()
            && blocks.len() as u64 == height
            && blocks.iter().all(|l| l.ends_with(" verified")),
        "orderer deliver from {}: {printed}{}",
        orderer.addr,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every running node holds blocks 0..height-1 with the same headers and data, the
/// envelopes `seeds` each exactly once, and the Raft metadata of three consenters.
async fn check_chains(cluster: &Cluster, seeds: &[u8]) -> u64 {
    let running = cluster.running();
    let mut height = 0;
    for orderer in &running {
        height = height.max(wait_for_seeds(orderer, seeds).await);
    }
    let chain = same_chain(&running, height - 1).await;
    let got = payload_seeds(&chain);
    for seed in seeds {
        assert_eq!(
            got.iter().filter(|s| *s == seed).count(),
            1,
            "envelope {seed} ordered once: {got:?}"
        );
    }
    for orderer in &running {
        let blocks = wait_blocks(orderer, &user1(), CH, 1, height - 1, WAIT).await;
        for block in &blocks {
            let metadata = raft_metadata(block);
            assert_eq!(metadata.consenter_ids, vec![1, 2, 3], "{}", orderer.addr);
            assert_eq!(metadata.next_consenter_id, 4);
        }
        verify_with_cli(cluster, orderer, height);
    }
    height
}

async fn scenario(kinds: &[Kind]) {
    let Some(reference) = std::env::var_os("FABRIC_REF") else {
        println!("skipped: FABRIC_REF is not set");
        return;
    };
    let started = Instant::now();
    let mut cluster = Cluster::start(PathBuf::from(reference), kinds, false);
    println!("cluster {kinds:?} started in {:?}", started.elapsed());

    // Envelopes through every node: followers (Fabric's and ours) forward them.
    let mut seeds = Vec::new();
    for seed in 1..=6u8 {
        let i = seed as usize % kinds.len();
        send_until_ordered(cluster.members[i].orderer.as_ref().unwrap(), seed).await;
        seeds.push(seed);
    }
    let height = check_chains(&cluster, &seeds).await;
    println!(
        "{} envelopes ordered, height {height}, identical on all three",
        seeds.len()
    );

    // Twice: kill -9 the leader, whichever it is; the two others elect a leader and
    // order on; the killed node restarts from its WAL and ledger and catches up.
    for round in 0..2u8 {
        let leader = cluster.leader().await;
        cluster.members[leader].orderer.as_mut().unwrap().kill();
        cluster.members[leader].orderer = None;
        // Send once the survivors have elected a leader: a follower that still takes
        // the dead node for its leader could forward an envelope into a dying stream.
        let new_leader = cluster.leader().await;
        let survivors: Vec<usize> = (0..kinds.len()).filter(|i| *i != leader).collect();
        for (n, i) in survivors.iter().enumerate() {
            let seed = 100 + 10 * round + n as u8;
            send_until_ordered(cluster.members[*i].orderer.as_ref().unwrap(), seed).await;
            seeds.push(seed);
        }
        let height = check_chains(&cluster, &seeds).await;
        println!(
            "{} killed; the survivors elected {} and ordered on: height {height}",
            cluster.name(leader),
            cluster.name(new_leader)
        );

        cluster.launch(leader, false);
        let seed = 105 + 10 * round;
        send_until_ordered(cluster.members[leader].orderer.as_ref().unwrap(), seed).await;
        seeds.push(seed);
        let height = check_chains(&cluster, &seeds).await;
        println!(
            "{} restarted and caught up: height {height} identical on all three",
            cluster.name(leader)
        );
    }
    println!("{kinds:?} done in {:?}", started.elapsed());
    if std::env::var_os("RAFT_FABRIC_LOGS").is_some() {
        println!("{}", cluster.logs());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_fabric_orderers_and_one_of_ours() {
    scenario(&[Kind::Fabric, Kind::Fabric, Kind::Ours]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_fabric_orderer_and_two_of_ours() {
    scenario(&[Kind::Fabric, Kind::Ours, Kind::Ours]).await;
}

/// Snapshots across implementations: node `behind` is down while the others order 40
/// blocks (a snapshot every 8 KB, so several, each compacting the leader's log); on
/// its restart the leader sends it a snapshot, and it pulls the blocks it lacks over
/// Deliver from the others (ours from Fabric's orderers, Fabric's from ours).
async fn snapshot_scenario(kinds: &[Kind], behind: usize) {
    let Some(reference) = std::env::var_os("FABRIC_REF") else {
        println!("skipped: FABRIC_REF is not set");
        return;
    };
    let mut cluster = Cluster::start(PathBuf::from(reference), kinds, true);
    let mut seeds = vec![1u8];
    send_until_ordered(cluster.members[0].orderer.as_ref().unwrap(), 1).await;
    check_chains(&cluster, &seeds).await;
    cluster.members[behind].orderer.as_mut().unwrap().kill();
    cluster.members[behind].orderer = None;
    cluster.leader().await;
    let up: Vec<usize> = (0..kinds.len()).filter(|i| *i != behind).collect();
    for seed in 2..42u8 {
        let to = cluster.members[up[seed as usize % 2]].orderer.as_ref();
        send_until_ordered(to.unwrap(), seed).await;
        seeds.push(seed);
    }
    let height = check_chains(&cluster, &seeds).await;
    let snapshots = |i: usize| {
        let log = cluster.members[i].orderer.as_ref().unwrap().log();
        log.matches("taking snapshot at block").count()
    };
    let taken: Vec<usize> = up.iter().map(|i| snapshots(*i)).collect();
    assert!(taken.iter().all(|n| *n >= 2), "snapshots taken: {taken:?}");
    println!(
        "{} down; the others ordered to height {height}, snapshots taken {taken:?}",
        cluster.name(behind)
    );

    cluster.launch(behind, false);
    let height = check_chains(&cluster, &seeds).await;
    let log = cluster.members[behind].orderer.as_ref().unwrap().log();
    let line = log
        .lines()
        .find(|l| l.contains("Catching up with snapshot taken at block"))
        .unwrap_or_else(|| panic!("no catch-up from a snapshot:\n{log}"));
    assert!(
        log.contains("Finished syncing with cluster up to and including block"),
        "{log}"
    );
    println!(
        "{} restarted: {}; caught up, height {height} identical on all three",
        cluster.name(behind),
        &line[line.find("Catching").unwrap()..]
    );
    send_until_ordered(cluster.members[behind].orderer.as_ref().unwrap(), 42).await;
    seeds.push(42);
    let height = check_chains(&cluster, &seeds).await;
    println!("ordered through it: height {height}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ours_catches_up_from_a_fabric_leaders_snapshot_by_pulling_from_fabric() {
    snapshot_scenario(&[Kind::Fabric, Kind::Fabric, Kind::Ours], 2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fabric_catches_up_from_our_leaders_snapshot_by_pulling_from_ours() {
    snapshot_scenario(&[Kind::Fabric, Kind::Ours, Kind::Ours], 0).await;
}

/// Makes a node of `kind` the leader: kills other leaders and restarts them.
async fn lead_by(cluster: &mut Cluster, kind: Kind) -> usize {
    for _ in 0..6 {
        let leader = cluster.leader().await;
        if cluster.members[leader].kind == kind {
            return leader;
        }
        cluster.members[leader].orderer.as_mut().unwrap().kill();
        cluster.members[leader].orderer = None;
        cluster.leader().await;
        cluster.launch(leader, false);
    }
    panic!("no {kind:?} leader after six elections");
}

/// With a `leader_kind` leader, one follower of the other kind and the third node
/// killed, adding a consenter is refused by that follower as Fabric words it, counting
/// the two alive the leader told it of (with no word from the leader it would count
/// none); with the third node back, the same change is accepted and ordered everywhere.
async fn quorum_scenario(kinds: &[Kind], leader_kind: Kind) {
    use crate::raft_membership::{consenter, update_consenters, wait_config_block};
    use fabric_protos::common::{Block, Status};
    let Some(reference) = std::env::var_os("FABRIC_REF") else {
        println!("skipped: FABRIC_REF is not set");
        return;
    };
    let mut cluster = Cluster::start(PathBuf::from(reference), kinds, false);
    send_until_ordered(cluster.members[0].orderer.as_ref().unwrap(), 1).await;
    let leader = lead_by(&mut cluster, leader_kind).await;
    let follower = (0..kinds.len())
        .find(|i| cluster.members[*i].kind != leader_kind)
        .unwrap();
    let cut = 3 - leader - follower;
    cluster.members[cut].orderer.as_mut().unwrap().kill();
    cluster.members[cut].orderer = None;
    let genesis = Block::decode(std::fs::read(&cluster.genesis).unwrap().as_slice()).unwrap();
    let spare = consenter(&cluster.nodes[kinds.len()]);
    let add = |c: &mut Vec<_>| c.push(spare.clone());

    // The leader's next quorum check (ElectionTick 10 x 100 ms) finds the node gone,
    // four ticks later it tells the followers.
    let lost = "2 out of 3 nodes are alive, configuration will result in quorum loss";
    let deadline = Instant::now() + WAIT;
    let info = loop {
        let orderer = cluster.members[follower].orderer.as_ref().unwrap();
        let (status, info) = update_consenters(orderer, &genesis, add).await;
        assert_ne!(status, Status::Success as i32, "added without a quorum");
        if info.contains(lost) {
            break info;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {info}",
            cluster.name(follower)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "{} killed; {} under {} refused the change: {info}",
        cluster.name(cut),
        cluster.name(follower),
        cluster.name(leader)
    );

    cluster.launch(cut, false);
    let deadline = Instant::now() + WAIT;
    loop {
        let orderer = cluster.members[follower].orderer.as_ref().unwrap();
        let (status, info) = update_consenters(orderer, &genesis, add).await;
        if status == Status::Success as i32 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {info}",
            cluster.name(follower)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut height = 0;
    for orderer in cluster.running() {
        let block = wait_config_block(orderer, 0).await;
        let metadata = raft_metadata(&block);
        assert_eq!(metadata.consenter_ids, vec![1, 2, 3, 4], "{}", orderer.addr);
        height = height.max(block.header.unwrap().number + 1);
    }
    same_chain(&cluster.running(), height - 1).await;
    println!(
        "{} restarted; the fourth consenter was added through {}: config block {} identical on all three",
        cluster.name(cut),
        cluster.name(follower),
        height - 1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fabric_follower_refuses_a_quorum_losing_change_by_our_leaders_count() {
    quorum_scenario(&[Kind::Fabric, Kind::Ours, Kind::Fabric], Kind::Ours).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn our_follower_refuses_a_quorum_losing_change_by_a_fabric_leaders_count() {
    quorum_scenario(&[Kind::Ours, Kind::Fabric, Kind::Ours], Kind::Fabric).await;
}
