//! Restarts: a clean restart keeps the chain; `kill -9` under load loses no block
//! a client had received and leaves no torn block.

use crate::common::*;
use fabric_protos::common::{Block, Status};
use fabric_protos::orderer::deliver_response;
use fabric_protos::orderer::seek_info::SeekBehavior::BlockUntilReady;
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CH: &str = "devchannel";
const WAIT: Duration = Duration::from_secs(20);

fn verify_chain(blocks: &[Block], config: &ordering_core::config::ChannelConfig) {
    let mut previous = None;
    for (i, block) in blocks.iter().enumerate() {
        let header = block.header.clone().unwrap();
        assert_eq!(header.number, i as u64);
        let (line, ok) = orderer::client::check_block(block, previous, config);
        assert!(ok, "{line}");
        previous = Some((
            header.number,
            ordering_core::blockheader::header_hash(&header, &ordering_core::NativeCrypto),
        ));
    }
}

fn config_of(blocks: &[Block]) -> ordering_core::config::ChannelConfig {
    ordering_core::config::ChannelConfig::from_config_block(
        &blocks[0].encode_to_vec(),
        &ordering_core::NativeCrypto,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut orderer = Orderer::dev(dir.path());
    let user = dev_user(dir.path());
    broadcast(&orderer, vec![tx(&user, CH, 10, 1)]).await;
    let before = wait_blocks(&orderer, &user, CH, 0, 1, WAIT).await;
    orderer.kill();

    let orderer = Orderer::dev(dir.path());
    let again = wait_blocks(&orderer, &user, CH, 0, 1, WAIT).await;
    assert_eq!(before, again);
    let answers = broadcast(&orderer, vec![tx(&user, CH, 10, 2)]).await;
    assert_eq!(statuses(&answers), vec![Status::Success as i32]);
    let all = wait_blocks(&orderer, &user, CH, 0, 2, WAIT).await;
    verify_chain(&all, &config_of(&all));
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_dash_nine_under_load_loses_nothing_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let mut orderer = Orderer::dev(dir.path());
    let user = Arc::new(dev_user(dir.path()));

    // A follower records every block the orderer delivered before it died.
    let received: Arc<Mutex<Vec<Block>>> = Arc::default();
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
    let sink = received.clone();
    let follower = tokio::spawn(async move {
        while let Ok(Some(resp)) = inbound.message().await {
            if let Some(deliver_response::Type::Block(b)) = resp.r#type {
                sink.lock().unwrap().push(b);
            }
        }
    });

    // Load: streams of 600 small envelopes (MaxMessageCount 500 cuts often), until
    // the kill; the kill comes once the follower has seen a few blocks.
    let addr = orderer.addr.clone();
    let loader_user = user.clone();
    let load = tokio::spawn(async move {
        for round in 0u32.. {
            let batch: Vec<_> = (0..600)
                .map(|i| tx(&loader_user, CH, 64, (round * 7 + i) as u8))
                .collect();
            let Ok(mut c) =
                fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient::connect(
                    format!("http://{addr}"),
                )
                .await
            else {
                return;
            };
            tokio::spawn(async move {
                if let Ok(answers) = c.broadcast(tokio_stream::iter(batch)).await {
                    let mut answers = answers.into_inner();
                    while let Ok(Some(_)) = answers.message().await {}
                }
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let deadline = tokio::time::Instant::now() + WAIT;
    while received.lock().unwrap().len() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no blocks cut under load"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    orderer.kill();
    load.abort();
    let _ = follower.await;
    let received = received.lock().unwrap().clone();

    let orderer = Orderer::dev(dir.path());
    let request = seek_envelope(&user, CH, Some(oldest()), Some(newest()), BlockUntilReady);
    let (after, status) = deliver(&orderer, request).await;
    assert_eq!(status, Some(Status::Success));
    assert!(
        after.len() >= received.len(),
        "{} blocks after restart, {} delivered before",
        after.len(),
        received.len()
    );
    assert_eq!(
        &after[..received.len()],
        &received[..],
        "every delivered block survives, byte for byte"
    );
    verify_chain(&after, &config_of(&after));

    // The chain goes on from the recovered tip.
    let answers = broadcast(&orderer, vec![tx(&user, CH, 10, 7)]).await;
    assert_eq!(statuses(&answers), vec![Status::Success as i32]);
    let height = after.len() as u64;
    let all = wait_blocks(&orderer, &user, CH, 0, height, WAIT).await;
    verify_chain(&all, &config_of(&all));
}
