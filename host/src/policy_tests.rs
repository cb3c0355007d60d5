//! The example filter policies (`filter-plugins/`), built by tests/components as components of
//! the same WIT world, loaded in place of the built-in core: each says who it is and
//! acts on the fixture channel as its native tests say, inside wasm.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use bytes::Bytes;
use fabric_protos::common::{Block, Envelope, HeaderType, Status};
use prost::Message;

use crate::component::{CoreChannel, CoreComponent};
use crate::identity::Signer;

const CHANNEL: &str = "mychannel";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/fabric")
}

fn signer(org_path: &str, msp_id: &str) -> Signer {
    let msp = fixtures().join("crypto").join(org_path).join("msp");
    Signer::from_msp_dir(&msp, msp_id).expect("fixture signer")
}

fn user1() -> Signer {
    signer(
        "peerOrganizations/org1.example.com/users/User1@org1.example.com",
        "Org1MSP",
    )
}

fn orderer_admin() -> Signer {
    signer(
        "ordererOrganizations/example.com/users/Admin@example.com",
        "OrdererMSP",
    )
}

/// 2027-01-01T00:00:00Z: inside the fixture certificates' validity (2026-2036).
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_600)
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn load(path: &str) -> CoreComponent {
    let wasm = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    CoreComponent::new(&wasm).unwrap_or_else(|e| panic!("{path}: {e:#}"))
}

/// The fixture channel at its genesis block.
fn open(component: &CoreComponent) -> Result<CoreChannel> {
    let path = fixtures().join("blocks/mychannel-etcdraft-genesis.block");
    let genesis = std::fs::read(&path)?;
    let tip = Block::decode(genesis.as_slice())?
        .header
        .unwrap()
        .encode_to_vec();
    Ok(component.open_channel(&genesis, &tip)?)
}

fn envelope(signer: &Signer, data: Vec<u8>) -> Vec<u8> {
    signer
        .signed_envelope(
            HeaderType::EndorserTransaction,
            CHANNEL,
            Bytes::from(data),
            now(),
        )
        .encode_to_vec()
}

/// Fabric's size of a message: payload + signature.
fn size_of(envelope: &[u8]) -> u64 {
    let env = Envelope::decode(envelope).unwrap();
    (env.payload.len() + env.signature.len()) as u64
}

#[test]
fn builtin_core_describes_itself() -> Result<()> {
    let (name, version) = CoreComponent::builtin()?.describe()?;
    assert_eq!(name, "ordering-core");
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    Ok(())
}

#[test]
fn max_tx_size_limits_org1() -> Result<()> {
    const ORG1_LIMIT: u64 = 16 * 1024;
    let component = load(test_components::MAX_TX_SIZE);
    assert_eq!(
        component.describe()?,
        (
            "max-tx-size".to_string(),
            env!("CARGO_PKG_VERSION").to_string()
        )
    );
    let mut channel = open(&component)?;
    let t = unix_nanos(now());
    let user1 = user1();

    let under = envelope(&user1, vec![1; 15 * 1024]);
    assert!(size_of(&under) <= ORG1_LIMIT);
    let verdict = channel.validate(&under, t).expect("under the Org1 limit");
    let cut = channel.order(&under, verdict.config_seq, t)?;
    assert!(cut.pending && cut.blocks.is_empty());

    let over = envelope(&user1, vec![1; 17 * 1024]);
    let size = size_of(&over);
    assert!(size > ORG1_LIMIT);
    let err = channel.validate(&over, t).unwrap_err();
    assert_eq!(err.status, Status::BadRequest);
    assert_eq!(
        err.info,
        format!(
            "message of {size} bytes from Org1MSP exceeds the maximum of {ORG1_LIMIT} bytes \
             for Org1MSP (policy max-tx-size {})",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(!channel.is_faulted());

    // OrdererMSP has no entry in the table: the same size passes.
    let admin = orderer_admin();
    channel
        .validate(&envelope(&admin, vec![1; 17 * 1024]), t)
        .expect("no limit for OrdererMSP");

    // Fabric's filters still come first.
    let other = user1
        .signed_envelope(
            HeaderType::EndorserTransaction,
            "otherchannel",
            Bytes::from(vec![1; 17 * 1024]),
            now(),
        )
        .encode_to_vec();
    assert_eq!(
        channel.validate(&other, t).unwrap_err().info,
        ordering_core::filters::ERR_NO_SYSTEM_CHANNEL
    );

    // What was accepted is ordered as by the built-in core.
    let block = channel.cut()?.expect("the pending message");
    assert_eq!(block.number, 1);
    let data = Block::decode(block.encoded.as_slice())?.data.unwrap().data;
    assert_eq!(data, vec![Bytes::from(under)]);
    Ok(())
}

#[test]
fn rate_limit_per_creator_on_the_hosts_time() -> Result<()> {
    const BURST: usize = 200;
    let component = load(test_components::RATE_LIMIT);
    assert_eq!(
        component.describe()?,
        (
            "rate-limit".to_string(),
            env!("CARGO_PKG_VERSION").to_string()
        )
    );
    let mut channel = open(&component)?;
    let t = unix_nanos(now());
    let user1 = user1();
    let envelopes: Vec<Vec<u8>> = (0..BURST + 2)
        .map(|i| envelope(&user1, i.to_be_bytes().to_vec()))
        .collect();

    for (i, env) in envelopes[..BURST].iter().enumerate() {
        channel
            .validate(env, t)
            .unwrap_or_else(|r| panic!("message {i} within the burst: {r}"));
    }
    let err = channel.validate(&envelopes[BURST], t).unwrap_err();
    assert_eq!(err.status, Status::ServiceUnavailable);
    assert!(
        err.info.starts_with(
            "rate limit exceeded for Org1MSP/User1@org1.example.com: at most 100 messages/s \
             (burst 200) per creator on channel mychannel; retry in 10 ms"
        ),
        "{}",
        err.info
    );
    assert!(!channel.is_faulted());

    // Another creator has its own bucket.
    channel.validate(&envelope(&orderer_admin(), vec![9]), t)?;

    // `now` advances 10 ms: one more message, then refused again.
    let later = t + 10_000_000;
    channel.validate(&envelopes[BURST], later)?;
    assert_eq!(
        channel
            .validate(&envelopes[BURST + 1], later)
            .unwrap_err()
            .status,
        Status::ServiceUnavailable
    );
    // A second later: 100 more.
    let second = later + 1_000_000_000;
    for env in &envelopes[..100] {
        channel.validate(env, second)?;
    }
    assert!(channel.validate(&envelopes[100], second).is_err());
    Ok(())
}

/// The broken components load and say who they are (the fault-containment tests
/// make them misbehave).
#[test]
fn broken_components_load() -> Result<()> {
    for (path, name) in [
        (test_components::BROKEN_LOOP, "broken-loop"),
        (test_components::BROKEN_PANIC, "broken-panic"),
        (test_components::BROKEN_ALLOC, "broken-alloc"),
    ] {
        let component = load(path);
        assert_eq!(component.describe()?.0, name);
        open(&component)?;
    }
    Ok(())
}

/// A panic in a policy is a trap: the message gets INTERNAL_SERVER_ERROR, the orderer
/// carries on. (Loop and alloc need the host's deadline and memory limit.)
#[test]
fn broken_panic_traps_into_a_rejection() -> Result<()> {
    let component = load(test_components::BROKEN_PANIC);
    let mut channel = open(&component)?;
    let err = channel
        .validate(&envelope(&user1(), vec![1]), unix_nanos(now()))
        .unwrap_err();
    assert_eq!(err.status, Status::InternalServerError);
    assert!(channel.is_faulted());
    Ok(())
}
