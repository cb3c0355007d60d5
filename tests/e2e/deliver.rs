//! Deliver: every seek position, behaviour and error case of Fabric's deliver handler.

use crate::common::*;
use fabric_protos::common::{Envelope, HeaderType, Status};
use fabric_protos::orderer::seek_info::SeekBehavior::{BlockUntilReady, FailIfNotReady};
use fabric_protos::orderer::{DeliverResponse, deliver_response};
use prost::Message;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const CH: &str = "devchannel";
const WAIT: Duration = Duration::from_secs(20);

/// A dev orderer with blocks 0 (genesis) and 1 (one transaction).
async fn two_blocks(dir: &std::path::Path) -> (Orderer, orderer::identity::Signer) {
    let orderer = Orderer::dev(dir);
    let user = dev_user(dir);
    let answers = broadcast(&orderer, vec![tx(&user, CH, 10, 1)]).await;
    assert_eq!(statuses(&answers), vec![Status::Success as i32]);
    wait_blocks(&orderer, &user, CH, 1, 1, WAIT).await;
    (orderer, user)
}

fn numbers(blocks: &[fabric_protos::common::Block]) -> Vec<u64> {
    blocks
        .iter()
        .map(|b| b.header.as_ref().unwrap().number)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn seek_positions_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (orderer, user) = two_blocks(dir.path()).await;
    let ask = |start, stop, behavior| seek_envelope(&user, CH, start, stop, behavior);

    let (blocks, status) = deliver(
        &orderer,
        ask(Some(oldest()), Some(newest()), BlockUntilReady),
    )
    .await;
    assert_eq!(
        (numbers(&blocks), status),
        (vec![0, 1], Some(Status::Success))
    );

    let (blocks, status) = deliver(
        &orderer,
        ask(Some(newest()), Some(newest()), BlockUntilReady),
    )
    .await;
    assert_eq!((numbers(&blocks), status), (vec![1], Some(Status::Success)));

    let (blocks, status) = deliver(
        &orderer,
        ask(Some(oldest()), Some(oldest()), BlockUntilReady),
    )
    .await;
    assert_eq!((numbers(&blocks), status), (vec![0], Some(Status::Success)));

    // Start beyond the height: NOT_FOUND at once, even with BLOCK_UNTIL_READY.
    let (blocks, status) = deliver(
        &orderer,
        ask(Some(specified(5)), Some(specified(5)), BlockUntilReady),
    )
    .await;
    assert_eq!((numbers(&blocks), status), (vec![], Some(Status::NotFound)));

    // FAIL_IF_NOT_READY: what exists, then NOT_FOUND.
    let (blocks, status) = deliver(
        &orderer,
        ask(Some(oldest()), Some(specified(10)), FailIfNotReady),
    )
    .await;
    assert_eq!(
        (numbers(&blocks), status),
        (vec![0, 1], Some(Status::NotFound))
    );

    let (_, status) = deliver(
        &orderer,
        ask(Some(specified(1)), Some(specified(0)), BlockUntilReady),
    )
    .await;
    assert_eq!(status, Some(Status::BadRequest), "stop before start");
    let (_, status) = deliver(&orderer, ask(None, Some(newest()), BlockUntilReady)).await;
    assert_eq!(status, Some(Status::BadRequest), "missing start");
    let (_, status) = deliver(&orderer, ask(Some(oldest()), None, BlockUntilReady)).await;
    assert_eq!(status, Some(Status::BadRequest), "missing stop");

    let unknown = seek_envelope(
        &user,
        "nosuchchannel",
        Some(oldest()),
        Some(newest()),
        BlockUntilReady,
    );
    assert_eq!(deliver(&orderer, unknown).await.1, Some(Status::NotFound));
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamp_window_and_access() {
    let dir = tempfile::tempdir().unwrap();
    let (orderer, user) = two_blocks(dir.path()).await;
    let seek = fabric_protos::orderer::SeekInfo {
        start: Some(oldest()),
        stop: Some(newest()),
        ..Default::default()
    }
    .encode_to_vec();
    let stale = SystemTime::now() - Duration::from_secs(16 * 60);
    let old = user.signed_envelope(HeaderType::DeliverSeekInfo, CH, seek.clone().into(), stale);
    assert_eq!(deliver(&orderer, old).await.1, Some(Status::BadRequest));
    let fresh = SystemTime::now() - Duration::from_secs(14 * 60);
    let ok = user.signed_envelope(HeaderType::DeliverSeekInfo, CH, seek.clone().into(), fresh);
    assert_eq!(deliver(&orderer, ok).await.1, Some(Status::Success));

    let mut forged = user.signed_envelope(
        HeaderType::DeliverSeekInfo,
        CH,
        seek.clone().into(),
        SystemTime::now(),
    );
    let mut sig = forged.signature.to_vec();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    forged.signature = sig.into();
    assert_eq!(deliver(&orderer, forged).await.1, Some(Status::Forbidden));

    // A real identity from another network (Fabric's fixture Org1) is not a member here.
    let stranger = user1().signed_envelope(
        HeaderType::DeliverSeekInfo,
        CH,
        seek.into(),
        SystemTime::now(),
    );
    assert_eq!(deliver(&orderer, stranger).await.1, Some(Status::Forbidden));

    let garbage = Envelope {
        payload: bytes::Bytes::from_static(b"\x0a\x03abc"),
        ..Default::default()
    };
    assert_eq!(deliver(&orderer, garbage).await.1, Some(Status::BadRequest));
}

#[tokio::test(flavor = "multi_thread")]
async fn waits_for_blocks_and_serves_many_requests_per_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (orderer, user) = two_blocks(dir.path()).await;
    let mut client = orderer.client().await;
    let (requests, rx) = mpsc::channel(4);
    let mut inbound = client
        .deliver(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut next = async || -> DeliverResponse { inbound.message().await.unwrap().unwrap() };

    // Request 1: the genesis block only.
    requests
        .send(seek_envelope(
            &user,
            CH,
            Some(specified(0)),
            Some(specified(0)),
            BlockUntilReady,
        ))
        .await
        .unwrap();
    assert!(matches!(
        next().await.r#type,
        Some(deliver_response::Type::Block(_))
    ));
    assert_eq!(
        next().await.r#type,
        Some(deliver_response::Type::Status(Status::Success as i32))
    );

    // Request 2 on the same stream: the next block to be committed; it waits for it.
    requests
        .send(seek_envelope(
            &user,
            CH,
            Some(next_commit()),
            Some(specified(2)),
            BlockUntilReady,
        ))
        .await
        .unwrap();
    let answers = broadcast(&orderer, vec![tx(&user, CH, 10, 9)]).await;
    assert_eq!(statuses(&answers), vec![Status::Success as i32]);
    let block = tokio::time::timeout(WAIT, next())
        .await
        .expect("block 2 arrives");
    match block.r#type {
        Some(deliver_response::Type::Block(b)) => assert_eq!(b.header.unwrap().number, 2),
        other => panic!("expected block 2, got {other:?}"),
    }
    assert_eq!(
        next().await.r#type,
        Some(deliver_response::Type::Status(Status::Success as i32))
    );

    // A client that hangs up while waiting does not disturb the orderer.
    requests
        .send(seek_envelope(
            &user,
            CH,
            Some(specified(3)),
            Some(specified(u64::MAX)),
            BlockUntilReady,
        ))
        .await
        .unwrap();
    drop(requests);
    drop(inbound);
    let (blocks, status) = deliver(
        &orderer,
        seek_envelope(&user, CH, Some(oldest()), Some(newest()), BlockUntilReady),
    )
    .await;
    assert_eq!(
        (numbers(&blocks), status),
        (vec![0, 1, 2], Some(Status::Success))
    );
}
