//! Hot swap and fault containment through the library API (`Registrar`), on the
//! fixture's solo channel: the real ledger, chain task, validator pool and Broadcast
//! processing, without gRPC.
//!
//! Timings are printed (`cargo test --release -p orderer hotswap -- --nocapture`).

use super::*;
use crate::broadcast;
use crate::component::{BUILTIN_CORE, CoreLimits};
use crate::identity::Signer;
use crate::multichannel::{ChainSupport, Registrar};
use crate::protoutil::channel_header;
use fabric_protos::common::{Block, Envelope, HeaderType, Status};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

const CHANNEL: &str = "mychannel";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/fabric")
}

fn signer(path: &str, msp_id: &str) -> Signer {
    Signer::from_msp_dir(&fixtures().join("crypto").join(path).join("msp"), msp_id)
        .expect("fixture signer")
}

fn user1() -> Signer {
    signer(
        "peerOrganizations/org1.example.com/users/User1@org1.example.com",
        "Org1MSP",
    )
}

fn wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn max_tx_size() -> Vec<u8> {
    wasm(test_components::MAX_TX_SIZE)
}

fn rate_limit() -> Vec<u8> {
    wasm(test_components::RATE_LIMIT)
}

/// What the admin API does, by channel name.
trait Admin {
    async fn load_core(&self, channel: &str, wasm: Vec<u8>) -> Result<CoreState, String>;
    async fn rollback(&self, channel: &str) -> Result<CoreState, String>;
    async fn dry_run(&self, channel: &str, wasm: Vec<u8>) -> Result<Vec<DryRunVerdict>, String>;
    fn core_state(&self, channel: &str) -> Option<CoreState>;
}

fn support(registrar: &Registrar, channel: &str) -> Result<Arc<ChainSupport>, String> {
    registrar
        .get(channel)
        .ok_or_else(|| format!("channel {channel} does not exist"))
}

impl Admin for Registrar {
    async fn load_core(&self, channel: &str, wasm: Vec<u8>) -> Result<CoreState, String> {
        let support = support(self, channel)?;
        load(&*support, self.cache(), self.settings().limits, wasm).await
    }

    async fn rollback(&self, channel: &str) -> Result<CoreState, String> {
        rollback(&*support(self, channel)?, None).await
    }

    async fn dry_run(&self, channel: &str, wasm: Vec<u8>) -> Result<Vec<DryRunVerdict>, String> {
        let support = support(self, channel)?;
        dry_run(&*support, self.cache(), self.settings().limits, wasm).await
    }

    fn core_state(&self, channel: &str) -> Option<CoreState> {
        self.get(channel).map(|support| support.core.state())
    }
}

/// A registrar on a fresh (or reused) data folder serving the fixture's solo channel.
fn registrar(dir: &Path, settings: CoreSettings) -> Arc<Registrar> {
    let orderer = signer(
        "ordererOrganizations/example.com/orderers/orderer0.example.com",
        "OrdererMSP",
    );
    let registrar =
        Registrar::new(dir.to_path_buf(), Arc::new(orderer), BUILTIN_CORE, settings).unwrap();
    registrar.open_existing().unwrap();
    let genesis = std::fs::read(fixtures().join("blocks/mychannel-solo-genesis.block")).unwrap();
    registrar.join(&genesis).unwrap();
    registrar
}

/// A signed transaction with `size` bytes of data, unique per `seed`.
fn tx(signer: &Signer, seed: u64, size: usize) -> Envelope {
    let mut data = seed.to_be_bytes().to_vec();
    data.resize(size.max(8), 0x5a);
    signer.signed_envelope(
        HeaderType::EndorserTransaction,
        CHANNEL,
        Bytes::from(data),
        SystemTime::now(),
    )
}

fn height(registrar: &Registrar) -> u64 {
    registrar.get(CHANNEL).unwrap().ledger.height()
}

fn block_data(registrar: &Registrar, number: u64) -> Vec<Bytes> {
    let raw = registrar
        .get(CHANNEL)
        .unwrap()
        .ledger
        .get(number)
        .unwrap()
        .unwrap();
    Block::decode(raw).unwrap().data.unwrap().data
}

async fn wait_for_height(registrar: &Registrar, height: u64, within: Duration) {
    let mut watch = registrar.get(CHANNEL).unwrap().ledger.watch_height();
    tokio::time::timeout(within, watch.wait_for(|h| *h >= height))
        .await
        .unwrap_or_else(|_| panic!("height {height} not reached within {within:?}"))
        .unwrap();
}

async fn wait_for_core(registrar: &Registrar, name: &str, within: Duration) -> CoreState {
    let deadline = Instant::now() + within;
    loop {
        let state = registrar.core_state(CHANNEL).unwrap();
        if state.name == name {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "still on {} after {within:?}",
            state.name
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_keeps_the_pending_batch() {
    let dir = tempfile::tempdir().unwrap();
    let registrar = registrar(dir.path(), CoreSettings::default());
    // Compiled beforehand, so the swap lands well inside the 2 s batch timeout even
    // on a busy machine.
    registrar
        .cache()
        .load(&max_tx_size(), CoreLimits::default())
        .unwrap();
    let user1 = user1();
    let sent: Vec<Envelope> = (0..10).map(|i| tx(&user1, i, 100)).collect();
    for envelope in &sent {
        broadcast::process(&registrar, envelope.clone())
            .await
            .expect("accepted");
    }
    let requested = Instant::now();
    let state = registrar.load_core(CHANNEL, max_tx_size()).await.unwrap();
    let in_force = requested.elapsed();
    assert_eq!(state.name, "max-tx-size");
    assert_eq!(state.previous.len(), 1);
    assert_eq!(state.previous[0].name, "ordering-core");
    // No early cut: the ten are pending in the new component.
    assert_eq!(height(&registrar), 1);

    // The batch timer (2 s in the fixture) cuts ONE block with all ten, in order.
    wait_for_height(&registrar, 2, Duration::from_secs(5)).await;
    let expected: Vec<Bytes> = sent.iter().map(|e| e.encode_to_vec().into()).collect();
    assert_eq!(block_data(&registrar, 1), expected);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(height(&registrar), 2, "no second block, no duplicates");

    // The new component is the one validating.
    let big = tx(&user1, 99, 20 * 1024);
    let rejection = broadcast::process(&registrar, big).await.unwrap_err();
    assert_eq!(rejection.status, Status::BadRequest);
    assert!(rejection.info.contains("max-tx-size"), "{}", rejection.info);
    eprintln!(
        "swap with 10 pending (compile, cold cache): in force {in_force:?} after the request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_under_load_loses_and_fails_nothing() {
    const TASKS: u64 = 4;
    const PER_TASK: u64 = 600;
    let dir = tempfile::tempdir().unwrap();
    let registrar = registrar(dir.path(), CoreSettings::default());
    // Warm the cache so the swaps below measure switching, not compiling.
    let policy = max_tx_size();
    registrar.dry_run(CHANNEL, policy.clone()).await.unwrap();

    let user1 = Arc::new(user1());
    let answered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut senders = Vec::new();
    for task in 0..TASKS {
        let registrar = registrar.clone();
        let user1 = user1.clone();
        let answered = answered.clone();
        senders.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0..PER_TASK {
                let envelope = tx(&user1, task * PER_TASK + i, 200);
                if let Err(r) = broadcast::process(&registrar, envelope).await {
                    failures.push(r);
                }
                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            failures
        }));
    }
    let mut swaps = Vec::new();
    let total = TASKS * PER_TASK;
    let mut answered_at_swaps = Vec::new();
    for i in 0..5 {
        // Swap at 1/7, 2/7, ... 5/7 of the load, while it runs.
        while answered.load(std::sync::atomic::Ordering::Relaxed) < total * (i + 1) / 7 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        answered_at_swaps.push(answered.load(std::sync::atomic::Ordering::Relaxed));
        let requested = Instant::now();
        let state = if i % 2 == 0 {
            registrar.load_core(CHANNEL, policy.clone()).await
        } else {
            registrar.load_core(CHANNEL, BUILTIN_CORE.to_vec()).await
        }
        .unwrap();
        swaps.push(requested.elapsed());
        assert_eq!(
            state.name,
            if i % 2 == 0 {
                "max-tx-size"
            } else {
                "ordering-core"
            }
        );
    }
    let after_last_swap = answered.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        after_last_swap < total,
        "the load ended before the last swap was in force ({after_last_swap})"
    );
    for sender in senders {
        let failures = sender.await.unwrap();
        assert!(failures.is_empty(), "failed answers: {failures:?}");
    }
    assert_eq!(answered.load(std::sync::atomic::Ordering::Relaxed), total);

    // Every accepted envelope is in exactly one block.
    let mut seen = HashSet::new();
    let mut count = 0;
    let mut number = 1;
    let deadline = Instant::now() + Duration::from_secs(10);
    while count < total {
        assert!(
            Instant::now() < deadline,
            "only {count} of {total} in blocks"
        );
        wait_for_height(&registrar, number + 1, Duration::from_secs(5)).await;
        for envelope in block_data(&registrar, number) {
            assert!(seen.insert(envelope), "duplicate in block {number}");
            count += 1;
        }
        number += 1;
    }
    assert_eq!(count, total);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(height(&registrar), number, "nothing more was cut");
    let state = registrar.core_state(CHANNEL).unwrap();
    assert_eq!(state.name, "max-tx-size");
    assert_eq!(state.faults_total, 0);
    eprintln!(
        "{total} envelopes over {TASKS} tasks (answered when each swap was \
         requested: {answered_at_swaps:?}), 5 swaps (cached) in force after {swaps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_goes_back_one_component_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let registrar = registrar(dir.path(), CoreSettings::default());
    let builtin = registrar.core_state(CHANNEL).unwrap();
    assert_eq!(builtin.name, "ordering-core");
    assert!(builtin.previous.is_empty());
    assert!(builtin.since.ends_with('Z'), "{}", builtin.since);

    registrar.load_core(CHANNEL, max_tx_size()).await.unwrap();
    // Loading what is in force changes nothing.
    let same = registrar.load_core(CHANNEL, max_tx_size()).await.unwrap();
    assert_eq!(same.previous.len(), 1);
    let state = registrar.load_core(CHANNEL, rate_limit()).await.unwrap();
    assert_eq!(state.name, "rate-limit");
    let names: Vec<&str> = state.previous.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["max-tx-size", "ordering-core"]);

    let requested = Instant::now();
    let state = registrar.rollback(CHANNEL).await.unwrap();
    let took = requested.elapsed();
    assert_eq!(state.name, "max-tx-size");
    assert_eq!(state.previous.len(), 1);
    let state = registrar.rollback(CHANNEL).await.unwrap();
    assert_eq!(state.name, "ordering-core");
    assert_eq!(state.sha256, builtin.sha256);
    assert!(state.previous.is_empty());
    let err = registrar.rollback(CHANNEL).await.unwrap_err();
    assert!(err.contains("no previous component"), "{err}");

    // A load that fails changes nothing.
    let err = registrar
        .load_core(CHANNEL, b"not a component".to_vec())
        .await
        .unwrap_err();
    assert!(err.contains("compiling"), "{err}");
    assert_eq!(
        registrar.core_state(CHANNEL).unwrap().sha256,
        builtin.sha256
    );
    assert!(
        registrar
            .load_core("nochannel", max_tx_size())
            .await
            .is_err()
    );

    // The channel still orders.
    broadcast::process(&registrar, tx(&user1(), 1, 100))
        .await
        .unwrap();
    wait_for_height(&registrar, 2, Duration::from_secs(5)).await;
    eprintln!("rollback in force after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_components_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let policy = max_tx_size();
    {
        let registrar = registrar(dir.path(), CoreSettings::default());
        let stats = registrar.cache().stats();
        assert_eq!(
            (stats.compiled, stats.deserialized),
            (1, 0),
            "the built-in core"
        );

        let cold = Instant::now();
        registrar.load_core(CHANNEL, policy.clone()).await.unwrap();
        let cold = cold.elapsed();
        assert_eq!(registrar.cache().stats().compiled, 2);
        registrar.rollback(CHANNEL).await.unwrap();

        let warm = Instant::now();
        let state = registrar.load_core(CHANNEL, policy.clone()).await.unwrap();
        let warm = warm.elapsed();
        let stats = registrar.cache().stats();
        assert_eq!((stats.compiled, stats.deserialized), (2, 1), "a cache hit");
        let artifact = registrar.cache().path(&state.sha256);
        assert!(artifact.exists(), "{}", artifact.display());
        let name = artifact.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(&state.sha256) && name.ends_with(".cwasm"),
            "{name}"
        );
        eprintln!("load + swap: compiling {cold:?}, from the disk cache {warm:?}");
    }
    // A restart compiles nothing: the built-in core comes from the cache too.
    let restarted = Instant::now();
    let registrar = registrar(dir.path(), CoreSettings::default());
    let restarted = restarted.elapsed();
    let stats = registrar.cache().stats();
    assert_eq!((stats.compiled, stats.deserialized), (0, 1));
    registrar.load_core(CHANNEL, policy).await.unwrap();
    assert_eq!(registrar.cache().stats().compiled, 0);
    eprintln!("restart (registrar with the channel reopened) {restarted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_reports_what_the_candidate_would_reject() {
    let dir = tempfile::tempdir().unwrap();
    let registrar = registrar(dir.path(), CoreSettings::default());
    let user1 = user1();
    let sizes = [100, 20 * 1024, 200, 30 * 1024, 300];
    let mut big = Vec::new();
    for (i, size) in sizes.into_iter().enumerate() {
        let envelope = tx(&user1, i as u64, size);
        if size > 16 * 1024 {
            big.push((i, envelope.clone()));
        }
        broadcast::process(&registrar, envelope).await.unwrap();
    }
    // The chain records what it orders; it has seen all five once it cut them.
    wait_for_height(&registrar, 2, Duration::from_secs(5)).await;
    let before = registrar.core_state(CHANNEL).unwrap();

    let verdicts = registrar.dry_run(CHANNEL, max_tx_size()).await.unwrap();
    let indices: Vec<usize> = verdicts.iter().map(|v| v.index).collect();
    assert_eq!(indices, big.iter().map(|(i, _)| *i).collect::<Vec<_>>());
    for (verdict, (_, envelope)) in verdicts.iter().zip(&big) {
        assert_eq!(verdict.status, Status::BadRequest as i32);
        assert_eq!(verdict.status_name, "BAD_REQUEST");
        assert!(
            verdict.info.contains("exceeds the maximum"),
            "{}",
            verdict.info
        );
        let chdr = channel_header(envelope).unwrap();
        assert_eq!(verdict.tx_id, chdr.tx_id);
    }
    // The built-in core rejects none of them; nothing changed.
    assert!(
        registrar
            .dry_run(CHANNEL, BUILTIN_CORE.to_vec())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(registrar.core_state(CHANNEL).unwrap(), before);
    assert!(registrar.dry_run(CHANNEL, b"junk".to_vec()).await.is_err());
}

#[test]
fn recent_envelopes_keep_the_last_n() {
    let recent = RecentEnvelopes::new(3);
    for i in 0..5u8 {
        recent.push(Bytes::from(vec![i]), u64::from(i));
    }
    let kept: Vec<u8> = recent.snapshot().iter().map(|(e, _)| e[0]).collect();
    assert_eq!(kept, [2, 3, 4]);
}

#[test]
fn rfc3339_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_798_761_600), "2027-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400 + 3661), "2000-02-29T01:01:01Z");
}

/// A broken component answers every message it faults on with INTERNAL_SERVER_ERROR
/// and a clear info, each fault is counted, and after K of them the channel is back
/// on the previous component by itself. `deadline_ms` is the call deadline.
async fn fault_then_roll_back(path: &str, name: &str, expect: &str, deadline_ms: u64) {
    const K: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let settings = CoreSettings {
        limits: CoreLimits {
            call_deadline: Duration::from_millis(deadline_ms),
            memory_bytes: 128 << 20,
        },
        fault_threshold: K,
        ..Default::default()
    };
    let registrar = registrar(dir.path(), settings);
    let state = registrar.load_core(CHANNEL, wasm(path)).await.unwrap();
    assert_eq!(state.name, name);
    let user1 = user1();
    for i in 0..K as u64 {
        let started = Instant::now();
        let rejection = broadcast::process(&registrar, tx(&user1, i, 100))
            .await
            .unwrap_err();
        assert_eq!(rejection.status, Status::InternalServerError, "{rejection}");
        assert!(
            rejection
                .info
                .starts_with(&format!("ordering core fault: {name} ")),
            "{}",
            rejection.info
        );
        assert!(rejection.info.contains(expect), "{}", rejection.info);
        if i == 0 {
            assert_eq!(registrar.core_state(CHANNEL).unwrap().faults, 1);
            eprintln!(
                "{name}: answered in {:?}: {}",
                started.elapsed(),
                rejection.info
            );
        }
    }
    let state = wait_for_core(&registrar, "ordering-core", Duration::from_secs(5)).await;
    assert!(state.previous.is_empty());
    assert_eq!(state.faults_total, K as u64);
    // Served again by the good component; nothing was written for the faulted ones.
    broadcast::process(&registrar, tx(&user1, 100, 100))
        .await
        .unwrap();
    wait_for_height(&registrar, 2, Duration::from_secs(5)).await;
    assert_eq!(block_data(&registrar, 1).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_loop_hits_the_deadline_and_rolls_back() {
    fault_then_roll_back(
        test_components::BROKEN_LOOP,
        "broken-loop",
        "deadline of 100 ms per call exceeded",
        100,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_panic_traps_and_rolls_back() {
    fault_then_roll_back(
        test_components::BROKEN_PANIC,
        "broken-panic",
        "(a panic in the component)",
        100,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_alloc_hits_the_memory_limit_and_rolls_back() {
    fault_then_roll_back(
        test_components::BROKEN_ALLOC,
        "broken-alloc",
        "memory limit of 128 MiB per instance exceeded",
        // Room enough that the memory limit, not the clock, stops it on a busy machine.
        5000,
    )
    .await;
}

/// A message too big for the channel is answered as Fabric's size filter does before
/// it enters the core: it could otherwise blow an instance's memory limit and count
/// as a fault of the component (any client could force a rollback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_refused_before_the_core() {
    let dir = tempfile::tempdir().unwrap();
    let registrar = registrar(dir.path(), CoreSettings::default());
    for _ in 0..6 {
        let envelope = tx(&user1(), 1, 90 << 20);
        let size = envelope.payload.len() + envelope.signature.len();
        let rejection = broadcast::process(&registrar, envelope).await.unwrap_err();
        assert_eq!(rejection.status, Status::BadRequest);
        assert_eq!(
            rejection.info,
            format!("message payload is {size} bytes and exceeds maximum allowed 10485760 bytes")
        );
    }
    assert_eq!(registrar.core_state(CHANNEL).unwrap().faults_total, 0);
}
