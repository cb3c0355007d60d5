//! The same inputs give the same answers and the same blocks in the native core and in
//! the wasm component the orderer runs, and in the core linked into the host
//! (`--native-core`) (DESIGN.md: "Deterministic and sans-IO").
//!
//! Both open the fixture channel at its genesis block and get the same envelopes at the
//! same `now`: the envelopes of the fixture blocks 1-3, a batch of freshly signed ones,
//! and a few that must be rejected. Every verdict, rejection and built block (number,
//! DER header, encoded bytes) must be byte-identical.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use bytes::Bytes;
use fabric_protos::common::{Block, Envelope, HeaderType};
use ordering_core::channel::Channel;
use ordering_core::{NativeCrypto, Rejection};
use prost::Message;

use crate::component::{CoreChannel, CoreComponent};
use crate::identity::Signer;

const CHANNEL: &str = "mychannel";
const FRESH: usize = 1_200;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/fabric")
}

fn read_block(name: &str) -> Vec<u8> {
    let path = fixtures().join("blocks").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn user1() -> Signer {
    let msp = fixtures()
        .join("crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp");
    Signer::from_msp_dir(&msp, "Org1MSP").expect("User1 signer")
}

/// 2027-01-01T00:00:00Z: inside the fixture certificates' validity (2026-2036).
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_600)
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// One input, labelled for assertion messages.
struct Input {
    label: String,
    envelope: Vec<u8>,
    /// The batch timer fires after this input (on both sides).
    timer_after: bool,
}

fn inputs() -> Vec<Input> {
    let mut inputs = Vec::new();
    for n in 1..=3 {
        let block =
            Block::decode(read_block(&format!("mychannel-etcdraft-block-{n}.block")).as_slice())
                .unwrap();
        for (i, envelope) in block.data.unwrap().data.into_iter().enumerate() {
            inputs.push(Input {
                label: format!("block {n} envelope {i}"),
                envelope: envelope.to_vec(),
                timer_after: false,
            });
        }
    }

    let user1 = user1();
    let sign = |channel: &str, data: Vec<u8>| {
        user1
            .signed_envelope(
                HeaderType::EndorserTransaction,
                channel,
                Bytes::from(data),
                now(),
            )
            .encode_to_vec()
    };
    let tampered = |mut envelope: Vec<u8>| {
        let mut env = Envelope::decode(envelope.as_slice()).unwrap();
        let mut payload = env.payload.to_vec();
        let last = payload.len() - 1;
        payload[last] ^= 0x01;
        env.payload = payload.into();
        envelope.clear();
        env.encode(&mut envelope).unwrap();
        envelope
    };

    // The first 1,000 are small, so MaxMessageCount (500) cuts; after them every 50th
    // is 900 KB, so PreferredMaxBytes (2 MB) cuts, and the batch timer fires twice.
    for i in 0..FRESH {
        let len = if i >= 1_000 && i % 40 == 0 {
            900 * 1024 + i
        } else {
            16 + (i * 7919) % 1024
        };
        let data = (0..len).map(|b| (b ^ i) as u8).collect();
        inputs.push(Input {
            label: format!("fresh {i}"),
            envelope: sign(CHANNEL, data),
            timer_after: i == 1_020 || i == 1_190,
        });
        if i % 300 == 150 {
            inputs.push(Input {
                label: format!("tampered after fresh {i}"),
                envelope: tampered(sign(CHANNEL, vec![7; 100])),
                timer_after: false,
            });
        }
    }

    let rejected = [
        ("empty", Vec::new()),
        ("garbage", vec![0xff; 64]),
        ("empty payload", Envelope::default().encode_to_vec()),
        ("other channel", sign("otherchannel", vec![1; 32])),
        ("tampered", tampered(sign(CHANNEL, vec![2; 32]))),
        ("tampered signature", {
            let mut env = Envelope::decode(sign(CHANNEL, vec![3; 32]).as_slice()).unwrap();
            let mut sig = env.signature.to_vec();
            sig[10] ^= 0x80;
            env.signature = sig.into();
            env.encode_to_vec()
        }),
    ];
    for (label, envelope) in rejected {
        inputs.push(Input {
            label: label.into(),
            envelope,
            timer_after: false,
        });
    }
    inputs
}

/// A block as both sides report it: number, DER header, encoded bytes.
type Built = (u64, Vec<u8>, Vec<u8>);

fn native_built(b: ordering_core::blockbuilder::BuiltBlock) -> Built {
    (b.number, b.header_der, b.encoded)
}

fn wasm_built(b: crate::component::CoreBlock) -> Built {
    (b.number, b.header_der, b.encoded)
}

fn tx_count(encoded: &[u8]) -> usize {
    Block::decode(encoded).unwrap().data.unwrap().data.len()
}

#[test]
fn native_and_wasm_cores_agree_byte_for_byte() -> Result<()> {
    let genesis = read_block("mychannel-etcdraft-genesis.block");
    let tip = Block::decode(genesis.as_slice())?
        .header
        .unwrap()
        .encode_to_vec();
    let mut native = Channel::open(NativeCrypto, &genesis, &tip).expect("native open");
    let component = CoreComponent::builtin()?;
    let mut wasm: CoreChannel = component.open_channel(&genesis, &tip)?;
    // The same core linked into the host (`--native-core`), with the host's crypto.
    let mut linked: CoreChannel = CoreComponent::native().open_channel(&genesis, &tip)?;

    assert_eq!(native.batch_timeout_ms(), wasm.batch_timeout_ms()?);

    let now = unix_nanos(now());
    let inputs = inputs();
    let (mut accepted, mut rejected, mut blocks, mut full_blocks) = (0, 0, 0, 0);
    let mut rejections: Vec<(String, Rejection)> = Vec::new();
    for input in &inputs {
        let label = &input.label;
        let native_verdict = native.validate(&input.envelope, now);
        let wasm_verdict = wasm.validate(&input.envelope, now);
        assert_eq!(
            format!("{:?}", linked.validate(&input.envelope, now)),
            format!("{wasm_verdict:?}"),
            "{label}: linked core's verdict differs"
        );
        let config_seq = match (native_verdict, wasm_verdict) {
            (Ok(n), Ok(w)) => {
                assert_eq!(
                    (n.config_seq, n.is_config_update),
                    (w.config_seq, w.is_config_update),
                    "{label}: verdicts differ"
                );
                n.config_seq
            }
            (Err(n), Err(w)) => {
                assert_eq!(n, w, "{label}: rejections differ");
                rejections.push((label.clone(), n));
                rejected += 1;
                continue;
            }
            (n, w) => panic!("{label}: native {n:?}, wasm {w:?}"),
        };
        accepted += 1;
        assert!(!wasm.is_faulted(), "{label}: the component faulted");

        let n = native.order(&input.envelope, config_seq, now);
        let w = wasm.order(&input.envelope, config_seq, now)?;
        let l = linked.order(&input.envelope, config_seq, now)?;
        assert_eq!(l.pending, w.pending, "{label}: linked pending differs");
        let l: Vec<Built> = l.blocks.into_iter().map(wasm_built).collect();
        assert_eq!(n.dropped, None, "{label}: dropped natively");
        assert_eq!(n.pending, w.pending, "{label}: pending differs");
        let n: Vec<Built> = n.blocks.into_iter().map(native_built).collect();
        let w: Vec<Built> = w.blocks.into_iter().map(wasm_built).collect();
        assert_eq!(n, w, "{label}: cut blocks differ");
        assert_eq!(l, w, "{label}: linked core's blocks differ");
        blocks += n.len();
        full_blocks += n.iter().filter(|b| tx_count(&b.2) == 500).count();

        if input.timer_after {
            let n = native.cut().map(native_built);
            let w = wasm.cut()?.map(wasm_built);
            assert_eq!(n, w, "{label}: timer cut differs");
            assert_eq!(
                linked.cut()?.map(wasm_built),
                w,
                "{label}: linked timer cut"
            );
            blocks += usize::from(n.is_some());
        }
    }
    let n = native.cut().map(native_built);
    let w = wasm.cut()?.map(wasm_built);
    assert_eq!(n, w, "final cut differs");
    assert_eq!(linked.cut()?.map(wasm_built), w, "linked final cut differs");
    blocks += usize::from(n.is_some());
    assert_eq!(native.cut().map(native_built), wasm.cut()?.map(wasm_built));

    // The run exercised what it claims to: the fixture and fresh envelopes were
    // accepted, every deliberately bad one refused, and many blocks were cut.
    assert_eq!(accepted + rejected, inputs.len());
    assert!(accepted > FRESH, "accepted only {accepted}");
    let expected_rejects = 6 + FRESH / 300;
    assert_eq!(rejected, expected_rejects, "rejections: {rejections:#?}");
    assert!(blocks >= 6, "only {blocks} blocks cut");
    assert_eq!(full_blocks, 2, "blocks cut by MaxMessageCount");
    assert_eq!(native.next_block_number(), 1 + blocks as u64);
    Ok(())
}
