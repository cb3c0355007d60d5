//! Channel config updates end to end: Fabric's own update envelopes, our CLI, stale
//! and unauthorized updates, Readers revoked mid-stream, and restarts.

use crate::common::*;
use fabric_protos::common::{
    Block, Config, ConfigEnvelope, Envelope, Payload, Policy, SignaturePolicy,
    SignaturePolicyEnvelope, Status, signature_policy,
};
use fabric_protos::msp::{MspPrincipal, MspRole, msp_principal, msp_role};
use fabric_protos::orderer::deliver_response;
use fabric_protos::orderer::seek_info::SeekBehavior::BlockUntilReady;
use orderer::client::configupdate;
use orderer::identity::Signer;
use prost::Message;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn update_file(name: &str) -> Envelope {
    let raw = std::fs::read(fabric().join("updates").join(name)).unwrap();
    Envelope::decode(raw.as_slice()).unwrap()
}

fn config_of(block: &Block) -> Config {
    configupdate::config_from_block(block).unwrap()
}

fn last_update_of(block: &Block) -> Envelope {
    let env = Envelope::decode(block.data.as_ref().unwrap().data[0].clone()).unwrap();
    let payload = Payload::decode(env.payload).unwrap();
    ConfigEnvelope::decode(payload.data)
        .unwrap()
        .last_update
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn fabric_update_envelopes_as_the_real_orderer_answered() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::fixture(dir.path());
    let user = user1();
    const CH: &str = "mychannel";

    let refused = broadcast(
        &orderer,
        vec![update_file("update-batchsize-signed-by-org1-admin.env")],
    )
    .await;
    assert_eq!(statuses(&refused), vec![Status::BadRequest as i32]);
    assert_eq!(
        refused[0].info,
        "error applying config update to existing channel 'mychannel': error authorizing update: error validating DeltaSet: policy for [Value]  /Channel/Orderer/BatchSize not satisfied: implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Admins' sub-policies to be satisfied"
    );

    let accepted = broadcast(
        &orderer,
        vec![update_file("update-batchsize-signed-by-orderer-admin.env")],
    )
    .await;
    assert_eq!(
        statuses(&accepted),
        vec![Status::Success as i32],
        "{accepted:?}"
    );
    let ours = &wait_blocks(&orderer, &user, CH, 1, 1, WAIT).await[0];
    let theirs = Block::decode(
        std::fs::read(fabric().join("updates/config-block-1.block"))
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    assert_eq!(
        config_of(ours),
        config_of(&theirs),
        "same config, sequence, versions as Fabric's block 1"
    );
    assert_eq!(last_update_of(ours), last_update_of(&theirs));
    assert_eq!(
        orderer::protoutil::last_config(ours),
        1,
        "a config block points at itself"
    );

    // MaxMessageCount is now 10 and BatchTimeout 1 s: 25 envelopes cut 10, 10, 5.
    let sent = (0..25).map(|i| tx(&user, CH, 32, i)).collect();
    assert!(
        broadcast(&orderer, sent)
            .await
            .iter()
            .all(|r| r.status == Status::Success as i32)
    );
    let blocks = wait_blocks(&orderer, &user, CH, 2, 4, WAIT).await;
    assert_eq!(
        blocks.iter().map(tx_count).collect::<Vec<_>>(),
        vec![10, 10, 5]
    );
    assert!(
        blocks
            .iter()
            .all(|b| orderer::protoutil::last_config(b) == 1)
    );
    let config = ordering_core::config::ChannelConfig::from_config_block(
        &ours.encode_to_vec(),
        &ordering_core::NativeCrypto,
    )
    .unwrap();
    let (line, ok) = orderer::client::check_block(&blocks[0], None, &config);
    assert!(ok, "{line}");
    drop(orderer);

    // A restart comes back with the config in force.
    let orderer = Orderer::fixture(dir.path());
    let sent = (0..10).map(|i| tx(&user, CH, 32, 100 + i)).collect();
    assert!(
        broadcast(&orderer, sent)
            .await
            .iter()
            .all(|r| r.status == Status::Success as i32)
    );
    let block = &wait_blocks(&orderer, &user, CH, 5, 5, Duration::from_millis(900)).await[0];
    assert_eq!(
        tx_count(block),
        10,
        "cut by the new MaxMessageCount, before any timeout"
    );
}

/// `orderer channel ...` as a person runs it, against the dev default.
fn cli(orderer: &Orderer, args: &[&str]) -> std::process::Output {
    let user_msp = orderer
        .data_dir
        .join("crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp");
    Command::new(env!("CARGO_BIN_EXE_orderer"))
        .arg("channel")
        .args(args)
        .args([
            "--orderer",
            &orderer.addr,
            "--msp-dir",
            user_msp.to_str().unwrap(),
        ])
        .output()
        .unwrap()
}

fn signer_arg(orderer: &Orderer, msp: &str, id: &str) -> String {
    format!(
        "{}:{id}",
        orderer.data_dir.join("crypto").join(msp).display()
    )
}

const DEV_ORDERER_ADMIN: &str = "ordererOrganizations/example.com/users/Admin@example.com/msp";
const DEV_CLIENT: &str = "peerOrganizations/org1.example.com/users/User1@org1.example.com/msp";

#[tokio::test(flavor = "multi_thread")]
async fn cli_updates_take_effect_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::dev(dir.path());
    let user = dev_user(dir.path());
    const CH: &str = "devchannel";
    let admin = signer_arg(&orderer, DEV_ORDERER_ADMIN, "OrdererMSP");
    let client = signer_arg(&orderer, DEV_CLIENT, "Org1MSP");

    // Made before any change: submitted after the first update, it is stale.
    let stale = dir.path().join("stale.env");
    let out = cli(
        &orderer,
        &[
            "update",
            "--max-message-count",
            "7",
            "--signer",
            &admin,
            "--output",
            stale.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = cli(
        &orderer,
        &[
            "update",
            "--max-message-count",
            "3",
            "--batch-timeout",
            "500ms",
            "--signer",
            &client,
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("BAD_REQUEST")
            && err.contains("policy for [Value]  /Channel/Orderer/BatchSize not satisfied"),
        "{err}"
    );

    let out = cli(
        &orderer,
        &[
            "update",
            "--max-message-count",
            "3",
            "--batch-timeout",
            "500ms",
            "--signer",
            &admin,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_blocks(&orderer, &user, CH, 1, 1, WAIT).await[0]
            .data
            .as_ref()
            .unwrap()
            .data
            .len()
            == 1
    );

    let out = cli(&orderer, &["submit", "--input", stale.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("BAD_REQUEST")
            && err.contains("error applying config update to existing channel"),
        "{err}"
    );

    let sent = (0..7).map(|i| tx(&user, CH, 32, i)).collect();
    assert!(
        broadcast(&orderer, sent)
            .await
            .iter()
            .all(|r| r.status == Status::Success as i32)
    );
    let blocks = wait_blocks(&orderer, &user, CH, 2, 4, WAIT).await;
    assert_eq!(
        blocks.iter().map(tx_count).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );

    // fetch-config writes the config block now in force.
    let file = dir.path().join("config.block");
    let out = cli(
        &orderer,
        &["fetch-config", "--output", file.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let block = Block::decode(std::fs::read(&file).unwrap().as_slice()).unwrap();
    assert_eq!(block.header.unwrap().number, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn deliver_ends_forbidden_when_readers_no_longer_include_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::fixture(dir.path());
    let user = user1();
    const CH: &str = "mychannel";

    // A follower tails the channel.
    let mut client = orderer.client().await;
    let follow = seek_envelope(
        &user,
        CH,
        Some(oldest()),
        Some(specified(u64::MAX)),
        BlockUntilReady,
    );
    let mut inbound = client
        .deliver(tokio_stream::iter(vec![follow]))
        .await
        .unwrap()
        .into_inner();
    let first = inbound.message().await.unwrap().unwrap();
    assert!(matches!(
        first.r#type,
        Some(deliver_response::Type::Block(_))
    ));

    // Org1's admin makes Org1's Readers admin-only.
    let genesis = Block::decode(
        std::fs::read(fabric().join("blocks/mychannel-etcdraft-genesis.block"))
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    let original = config_of(&genesis);
    let mut updated = original.clone();
    let org1 = updated
        .channel_group
        .as_mut()
        .unwrap()
        .groups
        .get_mut("Application")
        .unwrap()
        .groups
        .get_mut("Org1MSP")
        .unwrap();
    org1.policies.get_mut("Readers").unwrap().policy = Some(admin_only("Org1MSP"));
    let update = configupdate::compute_update(CH, &original, &updated).unwrap();
    let org1_admin = Signer::from_msp_dir(&fixture_msp(ORG1_ADMIN_MSP), "Org1MSP").unwrap();
    let mut envelope = configupdate::unsigned_update(&update);
    configupdate::add_signature(&mut envelope, &org1_admin);
    let answers = broadcast(
        &orderer,
        vec![configupdate::update_envelope(CH, &envelope, &org1_admin)],
    )
    .await;
    assert_eq!(
        statuses(&answers),
        vec![Status::Success as i32],
        "{answers:?}"
    );

    // The new config is in force before block 1 (the config block) is visible: the
    // client is no reader any more, so the stream ends instead of sending it.
    let end = tokio::time::timeout(WAIT, inbound.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        end.r#type,
        Some(deliver_response::Type::Status(Status::Forbidden as i32))
    );

    // A new request from the same client is refused at once; the admin still reads.
    let request = seek_envelope(&user, CH, Some(oldest()), Some(newest()), BlockUntilReady);
    assert_eq!(deliver(&orderer, request).await.1, Some(Status::Forbidden));
    let request = seek_envelope(
        &org1_admin,
        CH,
        Some(oldest()),
        Some(newest()),
        BlockUntilReady,
    );
    assert_eq!(deliver(&orderer, request).await.1, Some(Status::Success));
}

/// `OR('MSP.admin')` as configtxgen writes it.
fn admin_only(msp_id: &str) -> Policy {
    let role = MspRole {
        msp_identifier: msp_id.into(),
        role: msp_role::MspRoleType::Admin as i32,
    };
    let envelope = SignaturePolicyEnvelope {
        version: 0,
        rule: Some(SignaturePolicy {
            r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf {
                n: 1,
                rules: vec![SignaturePolicy {
                    r#type: Some(signature_policy::Type::SignedBy(0)),
                }],
            })),
        }),
        identities: vec![MspPrincipal {
            principal_classification: msp_principal::Classification::Role as i32,
            principal: role.encode_to_vec().into(),
        }],
    };
    Policy {
        r#type: fabric_protos::common::policy::PolicyType::Signature as i32,
        value: envelope.encode_to_vec().into(),
    }
}
