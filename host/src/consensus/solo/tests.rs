//! The solo chain without network or clock: [`SoloChain`] driven by a fake clock over
//! an in-memory ledger, with the real (natively linked) core and the real message
//! processor for config updates; then a deterministic simulation of random inputs.

use super::*;
use crate::client::configupdate::BatchEdits;
use crate::consensus::memory::*;
use crate::identity::Signer;
use crate::msgprocessor::Message;
use crate::testkit::*;
use fabric_protos::common::{Block, Envelope, HeaderType};
use ordering_core::NativeCrypto;
use ordering_core::config::ChannelConfig;
use prost::Message as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::Ordering;
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

/// A fake clock: `mono` moves only when a test says so.
fn at(mono: Duration) -> Now {
    Now {
        mono,
        unix_nanos: crate::protoutil::now_unix_nanos(),
    }
}

fn chain() -> SoloChain<Memory> {
    SoloChain::new(
        Memory::new(solo_genesis()),
        Arc::new(CoreComponent::native()),
    )
    .unwrap()
}

/// An encoded transaction (see [`tx`]).
fn raw_tx(signer: &Signer, seed: u64, size: usize) -> Bytes {
    tx(signer, seed, size).encode_to_vec().into()
}

/// A batch-settings update against the config in force, through the processor as
/// Broadcast would send it: (CONFIG envelope, update, config sequence).
fn config_update(chain: &SoloChain<Memory>, edits: &BatchEdits) -> (Bytes, Bytes, u64) {
    let processor = &chain.support().processor;
    let (config_block, _) = processor.validators().config();
    let submitted = batch_update(&config_block, edits, &orderer_admin());
    let now = crate::protoutil::now_unix_nanos();
    let chdr = crate::protoutil::channel_header(&submitted).unwrap();
    match processor.process(&chdr, &submitted, now) {
        Ok(Message::Config {
            envelope,
            update,
            config_seq,
        }) => (envelope, update, config_seq),
        other => panic!("the update was not accepted: {other:?}"),
    }
}

fn sequence(chain: &SoloChain<Memory>) -> u64 {
    chain.support().processor.validators().sequence()
}

/// The envelopes of block `n`.
fn data(chain: &SoloChain<Memory>, n: usize) -> Vec<Bytes> {
    chain.support().blocks[n].data.clone().unwrap().data
}

fn is_config(block: &Block) -> bool {
    let envelope = Envelope::decode(block.data.as_ref().unwrap().data[0].clone()).unwrap();
    crate::protoutil::channel_header(&envelope).unwrap().r#type == HeaderType::Config as i32
}

#[test]
fn the_batch_timer_cuts_what_pends() {
    let mut chain = chain();
    let user = user1();
    let txs: Vec<Bytes> = (0..3).map(|i| raw_tx(&user, i, 100)).collect();
    chain.order(&txs[0], 0, at(SECOND)).unwrap();
    assert_eq!(chain.deadline(), Some(3 * SECOND), "BatchTimeout 2s");
    chain.order(&txs[1], 0, at(2 * SECOND)).unwrap();
    chain.order(&txs[2], 0, at(2 * SECOND)).unwrap();
    assert_eq!(chain.deadline(), Some(3 * SECOND), "kept, not restarted");
    chain
        .tick(at(3 * SECOND - Duration::from_millis(1)))
        .unwrap();
    assert_eq!(
        chain.support().blocks.len(),
        1,
        "nothing cut before the deadline"
    );
    chain.tick(at(3 * SECOND)).unwrap();
    assert_eq!(chain.support().blocks.len(), 2);
    assert_eq!(data(&chain, 1), txs);
    assert_eq!(chain.deadline(), None, "nothing pends");
}

#[test]
fn max_message_count_cuts_at_once() {
    let mut chain = chain();
    let user = user1();
    let txs: Vec<Bytes> = (0..501).map(|i| raw_tx(&user, i, 10)).collect();
    for envelope in &txs {
        chain.order(envelope, 0, at(Duration::ZERO)).unwrap();
    }
    assert_eq!(chain.support().blocks.len(), 2, "MaxMessageCount 500");
    assert_eq!(data(&chain, 1), txs[..500]);
    assert_eq!(
        chain.deadline(),
        Some(2 * SECOND),
        "the 501st started a new batch"
    );
}

#[test]
fn a_config_update_cuts_what_pends_then_goes_alone_and_takes_effect() {
    let mut chain = chain();
    let user = user1();
    chain.order(&raw_tx(&user, 1, 100), 0, at(SECOND)).unwrap();
    chain.order(&raw_tx(&user, 2, 100), 0, at(SECOND)).unwrap();
    let edits = BatchEdits {
        max_message_count: Some(3),
        timeout: Some("500ms".into()),
        ..Default::default()
    };
    let (config, update, seq) = config_update(&chain, &edits);
    chain.configure(config, &update, seq, at(SECOND)).unwrap();
    let blocks = &chain.support().blocks;
    assert_eq!(blocks.len(), 3);
    assert_eq!(data(&chain, 1).len(), 2, "pending cut first");
    assert!(
        is_config(&blocks[2]) && data(&chain, 2).len() == 1,
        "then the config alone"
    );
    assert_eq!(sequence(&chain), 1);
    assert_eq!(chain.deadline(), None);

    chain
        .order(&raw_tx(&user, 3, 100), 1, at(10 * SECOND))
        .unwrap();
    assert_eq!(
        chain.deadline(),
        Some(10 * SECOND + Duration::from_millis(500)),
        "the new BatchTimeout"
    );
    for i in 4..6 {
        chain
            .order(&raw_tx(&user, i, 100), 1, at(10 * SECOND))
            .unwrap();
    }
    assert_eq!(chain.support().blocks.len(), 4, "the new MaxMessageCount");
    assert_eq!(data(&chain, 3).len(), 3);
}

#[test]
fn a_stale_config_update_is_made_again_or_dropped() {
    let mut chain = chain();
    let user = user1();
    let count = |n| BatchEdits {
        max_message_count: Some(n),
        ..Default::default()
    };
    let timeout = BatchEdits {
        timeout: Some("1s".into()),
        ..Default::default()
    };
    // All three validated under sequence 0.
    let first = config_update(&chain, &count(7));
    let conflicting = config_update(&chain, &count(9));
    let other_value = config_update(&chain, &timeout);
    chain
        .configure(first.0, &first.1, first.2, at(SECOND))
        .unwrap();
    assert_eq!(sequence(&chain), 1);

    chain.order(&raw_tx(&user, 1, 100), 1, at(SECOND)).unwrap();
    let deadline = chain.deadline();
    assert!(deadline.is_some());
    chain
        .configure(conflicting.0, &conflicting.1, conflicting.2, at(SECOND))
        .unwrap();
    assert_eq!(sequence(&chain), 1, "BatchSize changed since: dropped");
    assert_eq!(chain.support().blocks.len(), 2);
    assert_eq!(
        chain.deadline(),
        deadline,
        "the pending batch keeps its timer"
    );

    chain
        .configure(other_value.0, &other_value.1, other_value.2, at(SECOND))
        .unwrap();
    assert_eq!(
        sequence(&chain),
        2,
        "BatchTimeout did not change: made again"
    );
    assert_eq!(chain.support().blocks.len(), 4, "pending, then the config");
    let config =
        ChannelConfig::from_config_block(&chain.support().blocks[3].encode_to_vec(), &NativeCrypto)
            .unwrap();
    assert_eq!(
        config.batch_size.max_message_count, 7,
        "both changes in force"
    );
}

#[test]
fn a_swap_moves_the_pending_batch_and_keeps_its_timer() {
    let mut chain = chain();
    let user = user1();
    let txs: Vec<Bytes> = (0..4).map(|i| raw_tx(&user, i, 100)).collect();
    for envelope in &txs {
        chain.order(envelope, 0, at(SECOND)).unwrap();
    }
    chain
        .swap(Arc::new(CoreComponent::native()), at(2 * SECOND))
        .unwrap()
        .unwrap();
    assert_eq!(chain.support().blocks.len(), 1, "no early cut");
    assert_eq!(chain.deadline(), Some(3 * SECOND));
    chain.tick(at(3 * SECOND)).unwrap();
    assert_eq!(data(&chain, 1), txs, "the batch survived, in order");
}

#[test]
fn halt_stops_the_chain() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let solo = Solo::new(
            Memory::new(solo_genesis()),
            Arc::new(CoreComponent::native()),
        )
        .unwrap();
        solo.start();
        solo.wait_ready().await.unwrap();
        solo.order(raw_tx(&user1(), 1, 10), 0).await.unwrap();
        assert!(!solo.errored());
        solo.halt();
        tokio::time::timeout(Duration::from_secs(5), solo.halted())
            .await
            .expect("halted");
        assert!(solo.errored());
        assert_eq!(
            solo.order(raw_tx(&user1(), 2, 10), 0).await,
            Err(ChainError::Stopped)
        );
    });
}

/// Random inputs over a fake clock (messages of random sizes, some validated under
/// an older config, batch-setting updates, some of them stale, timer expiries and
/// swaps), then the invariants: every envelope ordered is in exactly one block, in
/// the order it was ordered; config blocks hold their config alone; normal blocks
/// respect the batch limits in force; numbers and the hash chain are continuous.
/// `SOLO_SIMULATION_SEEDS=N` runs N seeds instead of 6.
#[test]
fn simulation_keeps_every_envelope_once_in_order() {
    let user = user1();
    let seeds = std::env::var("SOLO_SIMULATION_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(6u64);
    for seed in 0..seeds {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut chain = chain();
        let mut clock = Duration::ZERO;
        let mut ordered = Vec::new();
        // Updates validated but not yet ordered: they go stale as others get in.
        let mut held = Vec::new();
        let mut next_tx = 0u64;
        for _ in 0..1500 {
            let seq = sequence(&chain);
            match rng.gen_range(0..100) {
                0..=74 => {
                    let size = if rng.gen_bool(0.05) {
                        30_000
                    } else {
                        rng.gen_range(10..3000)
                    };
                    let envelope = raw_tx(&user, seed << 32 | next_tx, size);
                    next_tx += 1;
                    // Some were validated under an older config: the core checks them again.
                    let under = if seq > 0 && rng.gen_bool(0.1) {
                        seq - 1
                    } else {
                        seq
                    };
                    chain.order(&envelope, under, at(clock)).unwrap();
                    ordered.push(envelope);
                }
                75..=89 => clock += Duration::from_millis(rng.gen_range(1..1500)),
                90..=91 => {
                    let edits = BatchEdits {
                        max_message_count: Some(rng.gen_range(1..40)),
                        preferred_max_bytes: Some(rng.gen_range(4_000..64_000)),
                        timeout: Some(format!("{}ms", rng.gen_range(50..3000))),
                        ..Default::default()
                    };
                    held.push(config_update(&chain, &edits));
                }
                92..=95 if !held.is_empty() => {
                    let (config, update, under) = held.remove(rng.gen_range(0..held.len()));
                    chain.configure(config, &update, under, at(clock)).unwrap();
                }
                96..=97 => chain
                    .swap(Arc::new(CoreComponent::native()), at(clock))
                    .unwrap()
                    .unwrap(),
                _ => {}
            }
            chain.tick(at(clock)).unwrap();
        }
        chain.tick(at(clock + 10 * SECOND)).unwrap();
        assert_eq!(chain.deadline(), None, "seed {seed}: everything cut");
        assert_eq!(chain.support().faults.0.load(Ordering::Relaxed), 0);

        let blocks = &chain.support().blocks;
        let mut seen = Vec::new();
        let mut config =
            ChannelConfig::from_config_block(&blocks[0].encode_to_vec(), &NativeCrypto).unwrap();
        for (n, block) in blocks.iter().enumerate().skip(1) {
            let envelopes = &block.data.as_ref().unwrap().data;
            if is_config(block) {
                assert_eq!(envelopes.len(), 1, "seed {seed}: config block {n} alone");
                config = ChannelConfig::from_config_block(&block.encode_to_vec(), &NativeCrypto)
                    .unwrap();
                continue;
            }
            let batch = &config.batch_size;
            assert!(
                envelopes.len() as u32 <= batch.max_message_count,
                "seed {seed}: block {n} over MaxMessageCount"
            );
            // A message's size as the cutter counts it: payload plus signature.
            let size: usize = envelopes
                .iter()
                .map(|e| Envelope::decode(e.clone()).unwrap())
                .map(|e| e.payload.len() + e.signature.len())
                .sum();
            assert!(
                envelopes.len() == 1 || size <= batch.preferred_max_bytes as usize,
                "seed {seed}: block {n} over PreferredMaxBytes"
            );
            seen.extend(envelopes.iter().cloned());
        }
        assert_eq!(
            seen.len(),
            ordered.len(),
            "seed {seed}: envelopes lost or doubled"
        );
        assert!(
            seen == ordered,
            "seed {seed}: every envelope once, in order"
        );
    }
}
