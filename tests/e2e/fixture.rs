//! Booting from Fabric's own genesis block with Fabric's own orderer identity, and
//! the signature filter against real identities.

use crate::common::*;
use fabric_protos::common::{Envelope, HeaderType, SignatureHeader, Status};
use orderer::identity::Signer;
use prost::Message;
use std::time::{Duration, SystemTime};

const CH: &str = "mychannel";
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn fabric_genesis_fabric_identity_and_the_signature_filter() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::fixture(dir.path());
    let user = user1();
    let admin = Signer::from_msp_dir(&fixture_msp(ORG1_ADMIN_MSP), "Org1MSP").unwrap();

    let answers = broadcast(
        &orderer,
        vec![tx(&user, CH, 100, 1), tx(&admin, CH, 100, 2)],
    )
    .await;
    assert_eq!(
        statuses(&answers),
        vec![Status::Success as i32; 2],
        "{answers:?}"
    );

    // Block 0 is Fabric's genesis block, byte for byte; block 1 is signed by orderer0.
    let blocks = wait_blocks(&orderer, &user, CH, 0, 1, WAIT).await;
    let genesis = std::fs::read(fabric().join("blocks/mychannel-etcdraft-genesis.block")).unwrap();
    assert_eq!(blocks[0].encode_to_vec(), genesis);
    let metadata = fabric_protos::common::Metadata::decode(
        blocks[1].metadata.as_ref().unwrap().metadata[0].clone(),
    )
    .unwrap();
    let shdr = SignatureHeader::decode(metadata.signatures[0].signature_header.clone()).unwrap();
    let orderer0 = Signer::from_msp_dir(&fixture_msp(ORDERER0_MSP), "OrdererMSP").unwrap();
    assert_eq!(shdr.creator, orderer0.serialized_identity());
    assert_eq!(shdr.nonce.len(), 24);
    let config = ordering_core::config::ChannelConfig::from_config_block(
        &genesis,
        &ordering_core::NativeCrypto,
    )
    .unwrap();
    let (line, ok) = orderer::client::check_block(&blocks[1], None, &config);
    assert!(ok, "{line}");

    // A payload changed after signing.
    let mut forged = tx(&user, CH, 100, 3);
    let mut payload = forged.payload.to_vec();
    let last = payload.len() - 1;
    payload[last] ^= 0x55;
    forged.payload = payload.into();
    assert_forbidden(&orderer, forged).await;

    // The same signature with S replaced by n - S (valid ECDSA, but high-S).
    assert_forbidden(&orderer, high_s(tx(&user, CH, 100, 4))).await;

    // A real, correctly signing identity of an MSP this channel does not know.
    let dev = tempfile::tempdir().unwrap();
    orderer::bootstrap::generate_crypto(dev.path()).unwrap();
    let stranger = Signer::from_msp_dir(
        &dev.path()
            .join("peerOrganizations/org1.example.com/users/User1@org1.example.com/msp"),
        "Org1MSP",
    )
    .unwrap();
    assert_forbidden(&orderer, tx(&stranger, CH, 100, 5)).await;
    let renamed = Signer::from_msp_dir(&fixture_msp(USER1_MSP), "Org9MSP").unwrap();
    assert_forbidden(&orderer, tx(&renamed, CH, 100, 6)).await;

    // Config envelopes are not accepted from clients.
    let config_tx = user.signed_envelope(
        HeaderType::Config,
        CH,
        bytes::Bytes::new(),
        SystemTime::now(),
    );
    let answers = broadcast(&orderer, vec![config_tx]).await;
    assert_eq!(statuses(&answers), vec![Status::BadRequest as i32]);
}

async fn assert_forbidden(orderer: &Orderer, envelope: Envelope) {
    let answers = broadcast(orderer, vec![envelope]).await;
    assert_eq!(
        statuses(&answers),
        vec![Status::Forbidden as i32],
        "{answers:?}"
    );
    assert!(
        answers[0].info.contains("permission denied"),
        "{}",
        answers[0].info
    );
}

/// Replaces the DER signature (r, s) by (r, n - s).
fn high_s(mut envelope: Envelope) -> Envelope {
    use p256::ecdsa::Signature;
    let sig = Signature::from_der(&envelope.signature).unwrap();
    let (r, s) = sig.split_scalars();
    let flipped = Signature::from_scalars(r, -*s).unwrap();
    assert!(flipped.normalize_s().is_some(), "the twin must be high-S");
    envelope.signature = flipped.to_der().as_bytes().to_vec().into();
    envelope
}
