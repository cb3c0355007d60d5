//! The crash loop's short form (`scripts/crash-loop.sh` is the soak): five cycles of
//! load over several Broadcast streams with two Deliver followers, `kill -9` at a
//! random moment (cycle 2 during a config update, cycle 4 during a component hot swap),
//! restart on the same ledger. After every cycle: the orderer reopened within
//! [`REOPEN_LIMIT`], and the whole ledger, read back through Deliver, holds blocks
//! 0, 1, 2, ... each once, with data hashes, hash chain and orderer signatures that
//! verify, and every block a follower received in any cycle, byte for byte.
//! `CRASH_SEED=N` repeats a run (the seed is printed).

use crate::common::*;
use fabric_protos::common::{Block, Status};
use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use fabric_protos::orderer::deliver_response;
use fabric_protos::orderer::seek_info::SeekBehavior::BlockUntilReady;
use orderer::identity::Signer;
use prost::Message;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CH: &str = "devchannel";
const CYCLES: u32 = 5;
/// Restart (process start) until the client port answers.
const REOPEN_LIMIT: Duration = Duration::from_secs(5);
const WAIT: Duration = Duration::from_secs(20);

/// xorshift64*: enough randomness for kill moments, repeatable from the seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// A Deliver follower from `start` on, collecting every block until the stream breaks.
async fn follow(
    orderer: &Orderer,
    user: &Signer,
    start: fabric_protos::orderer::SeekPosition,
) -> (tokio::task::JoinHandle<()>, Arc<Mutex<Vec<Block>>>) {
    let received: Arc<Mutex<Vec<Block>>> = Arc::default();
    let request = seek_envelope(
        user,
        CH,
        Some(start),
        Some(specified(u64::MAX)),
        BlockUntilReady,
    );
    let mut client = orderer.client().await;
    let mut inbound = client
        .deliver(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let sink = received.clone();
    let task = tokio::spawn(async move {
        while let Ok(Some(resp)) = inbound.message().await {
            if let Some(deliver_response::Type::Block(b)) = resp.r#type {
                sink.lock().unwrap().push(b);
            }
        }
    });
    (task, received)
}

/// Broadcast streams that send batches until aborted (or the orderer is gone).
fn load(addr: String, user: Arc<Signer>, streams: u32) -> Vec<tokio::task::JoinHandle<()>> {
    (0..streams)
        .map(|stream| {
            let addr = addr.clone();
            let user = user.clone();
            tokio::spawn(async move {
                for round in 0u32.. {
                    let size = if stream % 2 == 0 { 200 } else { 3000 };
                    let batch: Vec<_> = (0..200)
                        .map(|i| tx(&user, CH, size, (round * 13 + i + stream) as u8))
                        .collect();
                    let Ok(mut c) = AtomicBroadcastClient::connect(format!("http://{addr}")).await
                    else {
                        return;
                    };
                    let Ok(answers) = c.broadcast(tokio_stream::iter(batch)).await else {
                        return;
                    };
                    let mut answers = answers.into_inner();
                    while let Ok(Some(_)) = answers.message().await {}
                }
            })
        })
        .collect()
}

/// `orderer <args>` from the CLI, running while the orderer is killed.
fn cli(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_orderer"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The whole ledger through Deliver, checked: numbers 0.. each once, every block
/// verified (data hash, previous hash, orderer signature).
async fn verified_ledger(orderer: &Orderer, user: &Signer) -> Vec<Block> {
    let request = seek_envelope(user, CH, Some(oldest()), Some(newest()), BlockUntilReady);
    let (blocks, status) = tokio::time::timeout(WAIT, deliver(orderer, request))
        .await
        .expect("the ledger is read back in time");
    assert_eq!(status, Some(Status::Success));
    let config = ordering_core::config::ChannelConfig::from_config_block(
        &blocks[0].encode_to_vec(),
        &ordering_core::NativeCrypto,
    )
    .unwrap();
    let mut previous = None;
    for (i, block) in blocks.iter().enumerate() {
        let header = block.header.clone().unwrap();
        assert_eq!(
            header.number, i as u64,
            "block numbers run 0, 1, 2, ... once each"
        );
        let (line, ok) = orderer::client::check_block(block, previous, &config);
        assert!(ok, "{line}");
        previous = Some((
            header.number,
            ordering_core::blockheader::header_hash(&header, &ordering_core::NativeCrypto),
        ));
    }
    blocks
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_loop_of_kill_dash_nine_loses_and_tears_nothing() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash loop: CRASH_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let mut orderer = Orderer::dev(dir.path());
    let user = Arc::new(dev_user(dir.path()));
    let user_msp = dir
        .path()
        .join("crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp");
    let admin = format!(
        "{}:OrdererMSP",
        dir.path()
            .join("crypto/ordererOrganizations/example.com/users/Admin@example.com/msp")
            .display()
    );

    // Every block a follower received, in any cycle.
    let mut received: BTreeMap<u64, Block> = BTreeMap::new();
    let mut heights = vec![];
    for cycle in 1..=CYCLES {
        let mut followers = vec![];
        for start in [newest(), next_commit()] {
            followers.push(follow(&orderer, &user, start).await);
        }
        let loaders = load(orderer.addr.clone(), user.clone(), 4);

        // Kill once blocks are flowing, at a random moment after that.
        let deadline = Instant::now() + WAIT;
        while followers[1].1.lock().unwrap().is_empty() {
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: no block cut under load"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(800))).await;
        let during = match cycle {
            2 => {
                let count = (50 + rng.below(400)).to_string();
                Some(cli(&[
                    "channel",
                    "update",
                    "--orderer",
                    &orderer.addr,
                    "--msp-dir",
                    user_msp.to_str().unwrap(),
                    "--max-message-count",
                    &count,
                    "--signer",
                    &admin,
                ]))
            }
            4 => Some(cli(&[
                "core",
                "load",
                "--admin",
                &orderer.admin,
                test_components::MAX_TX_SIZE,
            ])),
            _ => None,
        };
        if during.is_some() {
            tokio::time::sleep(Duration::from_millis(rng.below(60))).await;
        }
        orderer.kill();
        for task in loaders {
            task.abort();
        }
        if let Some(mut child) = during {
            child.wait().unwrap();
        }
        let mut this_cycle = 0;
        for (task, blocks) in followers {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("a follower's stream ends when the orderer dies")
                .unwrap();
            for block in blocks.lock().unwrap().drain(..) {
                this_cycle += 1;
                let number = block.header.as_ref().unwrap().number;
                if let Some(other) = received.insert(number, block.clone()) {
                    assert_eq!(other, block, "two followers got different blocks {number}");
                }
            }
        }
        assert!(
            this_cycle > 0,
            "cycle {cycle}: the followers received blocks"
        );

        let started = Instant::now();
        orderer = Orderer::dev(dir.path());
        let reopen = started.elapsed();
        assert!(
            reopen < REOPEN_LIMIT,
            "cycle {cycle}: the restart took {reopen:?}"
        );

        let ledger = verified_ledger(&orderer, &user).await;
        for (&number, block) in &received {
            let now = ledger.get(number as usize).unwrap_or_else(|| {
                panic!("cycle {cycle}: block {number}, received by a follower, is lost")
            });
            assert_eq!(
                now.encode_to_vec(),
                block.encode_to_vec(),
                "cycle {cycle}: block {number} differs from what a follower received"
            );
        }
        println!(
            "cycle {cycle}: reopened in {reopen:?}, height {}, {} blocks received by followers so far, all present",
            ledger.len(),
            received.len()
        );
        heights.push(ledger.len());
    }
    assert!(
        heights.windows(2).all(|w| w[0] <= w[1]) && heights[0] > 1,
        "the ledger only grows across crashes: {heights:?}"
    );

    // The chain goes on after the last crash.
    let answers = broadcast(&orderer, vec![tx(&user, CH, 10, 1)]).await;
    assert_eq!(statuses(&answers), vec![Status::Success as i32]);
    let height = *heights.last().unwrap() as u64;
    wait_blocks(&orderer, &user, CH, height, height, WAIT).await;
    verified_ledger(&orderer, &user).await;
}

/// `orderer deliver --save` / `--expect`, the crash loop's ledger check: a follower's
/// record passes against the same ledger and fails, naming the block, when a block it
/// names is missing or has other bytes.
#[tokio::test(flavor = "multi_thread")]
async fn deliver_expect_names_missing_and_changed_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::dev(dir.path());
    let user = dev_user(dir.path());
    let answers = broadcast(&orderer, vec![tx(&user, CH, 10, 1)]).await;
    assert_eq!(statuses(&answers), vec![Status::Success as i32]);
    wait_blocks(&orderer, &user, CH, 1, 1, WAIT).await;

    let user_msp = dir
        .path()
        .join("crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp");
    let deliver = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_orderer"))
            .args(["deliver", "--orderer", &orderer.addr, "--msp-dir"])
            .arg(&user_msp)
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success(), stdout)
    };
    let saved = dir.path().join("follower.txt");
    let saved_arg = saved.to_str().unwrap();
    let (ok, _) = deliver(&["--save", saved_arg]);
    assert!(ok);
    let record = std::fs::read_to_string(&saved).unwrap();
    assert_eq!(record.lines().count(), 2, "{record}");

    let (ok, stdout) = deliver(&["--expect", saved_arg]);
    assert!(ok, "{stdout}");
    assert!(
        stdout.ends_with(
            "2 blocks delivered; 2 blocks saved by followers: 2 present byte for byte, 0 missing, 0 different\n"
        ),
        "{stdout}"
    );

    // Block 1 with other bytes, and a block 2 the ledger does not have.
    let block1 = record.lines().nth(1).unwrap();
    let (number, hash) = block1.split_once(' ').unwrap();
    let flipped = if hash.starts_with('0') { "1" } else { "0" };
    let tampered = format!(
        "{}\n{number} {flipped}{}\n2 {hash}\n",
        record.lines().next().unwrap(),
        &hash[1..]
    );
    std::fs::write(&saved, tampered).unwrap();
    let (ok, stdout) = deliver(&["--expect", saved_arg]);
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("block 1 DIFFERS"), "{stdout}");
    assert!(stdout.contains("block 2 MISSING"), "{stdout}");
    assert!(stdout.contains("1 missing, 1 different"), "{stdout}");
}
