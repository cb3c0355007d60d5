//! Broadcast round trips and the block cutter, on the embedded dev default.

use crate::common::*;
use fabric_protos::common::{Envelope, Status};
use fabric_protos::orderer::seek_info::SeekBehavior;
use ordering_core::NativeCrypto;
use ordering_core::blockheader::header_hash;
use prost::Message;
use std::time::Duration;

const CH: &str = "devchannel";
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn broadcast_then_deliver_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::dev(dir.path());
    let user = dev_user(dir.path());
    let sent: Vec<Envelope> = (0..3).map(|i| tx(&user, CH, 100, i)).collect();
    let responses = broadcast(&orderer, sent.clone()).await;
    assert_eq!(statuses(&responses), vec![Status::Success as i32; 3]);

    let blocks = wait_blocks(&orderer, &user, CH, 0, 1, WAIT).await;
    let data = &blocks[1].data.as_ref().unwrap().data;
    let expected: Vec<Vec<u8>> = sent.iter().map(|e| e.encode_to_vec()).collect();
    assert_eq!(
        data.iter().map(|d| d.to_vec()).collect::<Vec<_>>(),
        expected
    );
    let genesis_hash = header_hash(blocks[0].header.as_ref().unwrap(), &NativeCrypto);
    assert_eq!(
        blocks[1].header.as_ref().unwrap().previous_hash[..],
        genesis_hash[..]
    );
    assert_eq!(blocks[1].metadata.as_ref().unwrap().metadata.len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn cuts_by_max_message_count() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::dev(dir.path());
    let user = dev_user(dir.path());
    let sent: Vec<Envelope> = (0..1000).map(|i| tx(&user, CH, 16, i as u8)).collect();
    let responses = broadcast(&orderer, sent).await;
    assert!(responses.iter().all(|r| r.status == Status::Success as i32));
    let blocks = wait_blocks(&orderer, &user, CH, 1, 2, WAIT).await;
    assert_eq!(
        blocks.iter().map(tx_count).collect::<Vec<_>>(),
        vec![500, 500]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cuts_by_preferred_bytes_and_isolates_oversize() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::dev(dir.path());
    let user = dev_user(dir.path());
    // PreferredMaxBytes is 2 MB: two 900 KB messages fit, the third starts a new
    // batch; a 3 MiB message cuts what is pending and goes alone.
    let kb = 1000;
    let sent = vec![
        tx(&user, CH, 900 * kb, 1),
        tx(&user, CH, 900 * kb, 2),
        tx(&user, CH, 900 * kb, 3),
        tx(&user, CH, 3 << 20, 4),
        tx(&user, CH, 10, 5),
    ];
    let responses = broadcast(&orderer, sent.clone()).await;
    assert_eq!(statuses(&responses), vec![Status::Success as i32; 5]);
    let blocks = wait_blocks(&orderer, &user, CH, 1, 4, WAIT).await;
    assert_eq!(
        blocks.iter().map(tx_count).collect::<Vec<_>>(),
        vec![2, 1, 1, 1]
    );
    assert_eq!(
        blocks[2].data.as_ref().unwrap().data[0].to_vec(),
        sent[3].encode_to_vec()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cuts_by_batch_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::dev(dir.path());
    let user = dev_user(dir.path());
    let responses = broadcast(&orderer, vec![tx(&user, CH, 10, 1), tx(&user, CH, 10, 2)]).await;
    assert_eq!(statuses(&responses), vec![Status::Success as i32; 2]);
    // Nothing is cut before the 2 s BatchTimeout...
    let early = seek_envelope(
        &user,
        CH,
        Some(specified(1)),
        Some(specified(1)),
        SeekBehavior::FailIfNotReady,
    );
    let (blocks, status) = deliver(&orderer, early).await;
    assert!(blocks.is_empty());
    assert_eq!(status, Some(Status::NotFound));
    // ...and the timer cuts both messages into one block.
    let blocks = wait_blocks(&orderer, &user, CH, 1, 1, WAIT).await;
    assert_eq!(tx_count(&blocks[0]), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn rejections_carry_fabric_status_and_close_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = Orderer::dev(dir.path());
    let user = dev_user(dir.path());

    let unknown = broadcast(
        &orderer,
        vec![tx(&user, "nosuchchannel", 10, 1), tx(&user, CH, 10, 2)],
    )
    .await;
    assert_eq!(
        statuses(&unknown),
        vec![Status::BadRequest as i32],
        "stream closes after a rejection"
    );
    assert!(
        unknown[0].info.contains("system channel is not defined"),
        "{}",
        unknown[0].info
    );

    let empty = broadcast(&orderer, vec![Envelope::default()]).await;
    assert_eq!(statuses(&empty), vec![Status::BadRequest as i32]);
    assert!(!empty[0].info.is_empty());

    let mut garbage = tx(&user, CH, 10, 3);
    garbage.payload = bytes::Bytes::from_static(b"\xff\xff\xff not a payload");
    let garbage = broadcast(&orderer, vec![garbage]).await;
    assert_eq!(statuses(&garbage), vec![Status::BadRequest as i32]);

    // AbsoluteMaxBytes (10 MB) counts payload + signature: exactly the limit is
    // accepted, one byte more is not.
    let limit = 10 * 1024 * 1024;
    let at_limit = sized_tx(&user, limit);
    let over = sized_tx(&user, limit + 1);
    let answers = broadcast(&orderer, vec![at_limit]).await;
    assert_eq!(
        statuses(&answers),
        vec![Status::Success as i32],
        "{answers:?}"
    );
    let answers = broadcast(&orderer, vec![over]).await;
    assert_eq!(statuses(&answers), vec![Status::BadRequest as i32]);
    assert!(
        answers[0].info.contains("exceeds maximum allowed"),
        "{}",
        answers[0].info
    );
}

/// An envelope whose len(payload) + len(signature) is exactly `size`.
fn sized_tx(user: &orderer::identity::Signer, size: usize) -> Envelope {
    let mut data = size - 2000;
    loop {
        let env = tx(user, CH, data, 0);
        let got = env.payload.len() + env.signature.len();
        if got == size {
            return env;
        }
        // The signature's DER length varies by a byte or two: adjust and re-sign.
        data = (data as i64 + size as i64 - got as i64) as usize;
    }
}
