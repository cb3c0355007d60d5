//! The ordering core natively and through the wasm component, side by side: each group
//! has a `native` and a `wasm` function, so the ratio is the cost of running in wasm.
//! Both builds use the host's crypto (`RingCrypto`), so the ratio does not measure the
//! crypto library. Channel and envelopes are the dev default's (`orderer start`):
//! `devchannel` (solo, 500 messages per block), ~3,096-byte EndorserTransaction envelopes
//! signed by User1@org1.example.com, as `orderer broadcast -s 2000` sends them.
//!
//! `cargo bench -p orderer --bench core` (about a minute on 2 cores).

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use fabric_protos::common::{Block, Envelope, HeaderType};
use orderer::bootstrap::{self, genesis::MAX_MESSAGE_COUNT};
use orderer::component::{CoreBlock, CoreChannel, CoreComponent, RingCrypto};
use orderer::identity::Signer;
use ordering_core::blockbuilder::BuiltBlock;
use ordering_core::channel::Channel;
use ordering_core::{Crypto, Rejection};
use prost::Message;

/// Payload data per envelope: ~3,096-byte envelopes with the dev client's certificate.
const DATA_BYTES: usize = 2000;
const BATCH: usize = MAX_MESSAGE_COUNT as usize;

/// The dev default's genesis block and a batch of signed envelopes.
struct Fixture {
    genesis: Vec<u8>,
    tip_header: Vec<u8>,
    /// `BATCH` distinct envelopes, so a block holds no repeats.
    envelopes: Vec<Vec<u8>>,
    /// The signer's SEC1 public key, for timing the ECDSA verify on its own.
    public_key: Vec<u8>,
    now: u64,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let network = bootstrap::ensure_dev_network(dir.path(), "127.0.0.1:7050")
            .expect("dev default network");
        let genesis = std::fs::read(&network.genesis_block_path).expect("genesis block");
        let tip_header = Block::decode(genesis.as_slice())
            .expect("genesis block")
            .header
            .expect("genesis header")
            .encode_to_vec();
        let signer = Signer::from_msp_dir(&network.client_msp_dir, &network.client_msp_id)
            .expect("dev client identity");
        let now = SystemTime::now();
        let envelopes: Vec<Vec<u8>> = (0..BATCH)
            .map(|i| {
                let data: Vec<u8> = (0..DATA_BYTES).map(|j| (i + j) as u8).collect();
                signer
                    .signed_envelope(
                        HeaderType::EndorserTransaction,
                        &network.channel_id,
                        Bytes::from(data),
                        now,
                    )
                    .encode_to_vec()
            })
            .collect();
        let public_key = signer
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        Fixture {
            genesis,
            tip_header,
            envelopes,
            public_key,
            now: now
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_nanos() as u64,
        }
    }

    fn native(&self) -> Channel<RingCrypto> {
        Channel::open(RingCrypto, &self.genesis, &self.tip_header).expect("native open")
    }

    fn wasm(&self, component: &CoreComponent) -> CoreChannel {
        component
            .open_channel(&self.genesis, &self.tip_header)
            .expect("wasm open")
    }
}

/// What the benches call, on either build of the core.
trait Core {
    type Block;
    /// Ok: the config sequence the envelope was validated under.
    fn validate(&mut self, envelope: &[u8], now: u64) -> Result<u64, Rejection>;
    fn order(&mut self, envelope: &[u8], config_seq: u64, now: u64) -> Vec<Self::Block>;
    fn cut(&mut self) -> Option<Self::Block>;
}

impl<C: Crypto> Core for Channel<C> {
    type Block = BuiltBlock;

    fn validate(&mut self, envelope: &[u8], now: u64) -> Result<u64, Rejection> {
        Channel::validate(self, envelope, now).map(|v| v.config_seq)
    }

    fn order(&mut self, envelope: &[u8], config_seq: u64, now: u64) -> Vec<BuiltBlock> {
        Channel::order(self, envelope, config_seq, now).blocks
    }

    fn cut(&mut self) -> Option<BuiltBlock> {
        Channel::cut(self)
    }
}

impl Core for CoreChannel {
    type Block = CoreBlock;

    fn validate(&mut self, envelope: &[u8], now: u64) -> Result<u64, Rejection> {
        CoreChannel::validate(self, envelope, now).map(|v| v.config_seq)
    }

    fn order(&mut self, envelope: &[u8], config_seq: u64, now: u64) -> Vec<CoreBlock> {
        CoreChannel::order(self, envelope, config_seq, now)
            .expect("wasm order")
            .blocks
    }

    fn cut(&mut self) -> Option<CoreBlock> {
        CoreChannel::cut(self).expect("wasm cut")
    }
}

/// `RingCrypto` whose ECDSA verify answers "valid" without the arithmetic (nor the
/// SHA-256 of the message inside it): what validation costs around the signature.
/// Only for envelopes whose signature is valid anyway.
struct SkipEcdsa;

impl Crypto for SkipEcdsa {
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        RingCrypto.sha256(data)
    }

    fn verify_p256(&self, _: &[u8], _: &[u8], _: &[u8]) -> bool {
        true
    }
}

/// Validate of a returning client's envelope: the identity cache is warm (creator
/// parsed and chain-checked once per config), the signature is checked every time.
fn validate<C: Core>(g: &mut BenchmarkGroup<WallTime>, side: &str, core: &mut C, fx: &Fixture) {
    let envelope = &fx.envelopes[0];
    core.validate(envelope, fx.now).expect("accepted");
    g.bench_function(side, |b| {
        b.iter(|| core.validate(black_box(envelope), fx.now))
    });
}

/// `order` of one envelope that stays pending: time runs of orders, and cut (untimed)
/// before the batch is full so no timed call builds a block.
fn order<C: Core>(g: &mut BenchmarkGroup<WallTime>, side: &str, core: &mut C, fx: &Fixture) {
    let seq = core.validate(&fx.envelopes[0], fx.now).expect("accepted");
    g.bench_function(side, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let run = left.min(BATCH - 1);
                let start = Instant::now();
                for envelope in &fx.envelopes[..run] {
                    black_box(core.order(black_box(envelope), seq, fx.now));
                }
                total += start.elapsed();
                core.cut();
                left -= run;
            }
            total
        })
    });
}

/// The call that builds a block of `n` envelopes: `cut` with `n` pending (the batch
/// timer), or, for `n` = MaxMessageCount, the `order` of the n-th (the cutter cuts).
/// Ordering the rest is untimed; the block is dropped outside the timing.
fn block<C: Core>(
    g: &mut BenchmarkGroup<WallTime>,
    side: &str,
    core: &mut C,
    fx: &Fixture,
    n: usize,
) {
    let by_count = n == BATCH;
    let pending = if by_count { n - 1 } else { n };
    let seq = core.validate(&fx.envelopes[0], fx.now).expect("accepted");
    g.bench_function(side, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                for envelope in &fx.envelopes[..pending] {
                    core.order(envelope, seq, fx.now);
                }
                let start = Instant::now();
                let blocks = if by_count {
                    core.order(black_box(&fx.envelopes[n - 1]), seq, fx.now)
                } else {
                    core.cut().into_iter().collect()
                };
                total += start.elapsed();
                assert_eq!(blocks.len(), 1, "one block of {n}");
            }
            total
        })
    });
}

fn benches(c: &mut Criterion) {
    let fx = Fixture::new();
    let component = CoreComponent::builtin().expect("built-in core");
    let envelope = &fx.envelopes[0];
    // PERFORMANCE.md's envelope: ~3,096 B (the DER signature's length varies by a byte or two).
    assert!(
        (3090..3100).contains(&envelope.len()),
        "{} B",
        envelope.len()
    );

    let mut g = c.benchmark_group("validate");
    validate(&mut g, "native", &mut fx.native(), &fx);
    validate(&mut g, "wasm", &mut fx.wasm(&component), &fx);
    g.finish();

    let mut g = c.benchmark_group("validate_without_ecdsa");
    let mut native = Channel::open(SkipEcdsa, &fx.genesis, &fx.tip_header).expect("open");
    validate(&mut g, "native", &mut native, &fx);
    let skip = CoreComponent::builtin()
        .expect("built-in core")
        .with_crypto(SkipEcdsa);
    validate(&mut g, "wasm", &mut fx.wasm(&skip), &fx);
    g.finish();

    // The ECDSA verify both builds run natively (in the wasm build, behind the import).
    let parsed = Envelope::decode(envelope.as_slice()).expect("envelope");
    let mut g = c.benchmark_group("ecdsa_verify");
    g.bench_function("ring", |b| {
        b.iter(|| {
            RingCrypto.verify_p256(
                black_box(&fx.public_key),
                black_box(&parsed.payload),
                black_box(&parsed.signature),
            )
        })
    });
    g.finish();

    let mut g = c.benchmark_group("order");
    order(&mut g, "native", &mut fx.native(), &fx);
    order(&mut g, "wasm", &mut fx.wasm(&component), &fx);
    g.finish();

    // A call that does no work: the fixed cost of entering and leaving the component.
    let mut g = c.benchmark_group("empty_call");
    let native = fx.native();
    g.bench_function("native", |b| {
        b.iter(|| black_box(&native).config_sequence())
    });
    let mut wasm = fx.wasm(&component);
    g.bench_function("wasm", |b| b.iter(|| wasm.config_sequence().expect("call")));
    g.finish();

    for n in [10, BATCH] {
        let mut g = c.benchmark_group(format!("block_{n}"));
        g.throughput(Throughput::Elements(n as u64));
        if n == BATCH {
            // ~1 ms timed, plus ~500 untimed orders, per iteration.
            g.sampling_mode(SamplingMode::Flat).sample_size(20);
        }
        block(&mut g, "native", &mut fx.native(), &fx, n);
        block(&mut g, "wasm", &mut fx.wasm(&component), &fx, n);
        g.finish();
    }
}

fn config() -> Criterion {
    // Thirteen benchmarks of a few seconds each: the whole run takes about a minute.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion::criterion_group! {
    name = core;
    config = config();
    targets = benches
}
criterion::criterion_main!(core);
