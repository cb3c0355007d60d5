//! The channel participation API on the real binary's admin listener: join the
//! fixture genesis blocks, list, info, the error answers, remove while a Deliver
//! stream is open, restart, rejoin; and Fabric's own `osnadmin` against it.

use crate::common::*;
use bytes::Bytes;
use fabric_protos::common::{HeaderType, Status};
use fabric_protos::orderer::seek_info::SeekBehavior::BlockUntilReady;
use fabric_protos::orderer::seek_info::SeekErrorResponse;
use fabric_protos::orderer::{SeekInfo, deliver_response};
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use std::path::Path;
use std::time::{Duration, SystemTime};

const CH: &str = "mychannel";
const CHANNELS: &str = "/participation/v1/channels";
const WAIT: Duration = Duration::from_secs(20);
const BOUNDARY: &str = "e2e0boundary0123";

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

pub(crate) async fn call(
    orderer: &Orderer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", orderer.admin));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client
        .request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .expect("admin listener answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

pub(crate) async fn get(orderer: &Orderer, path: &str) -> Answer {
    call(orderer, Method::GET, path, &[], vec![]).await
}

/// POST a multipart form with the block as its `config-block` file, as osnadmin does.
pub(crate) async fn join(orderer: &Orderer, block: &[u8]) -> Answer {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"config-block\"; filename=\"config.block\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(block);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let headers = [("content-type", content_type.as_str())];
    call(orderer, Method::POST, CHANNELS, &headers, body).await
}

fn block(name: &str) -> Vec<u8> {
    std::fs::read(fabric().join("blocks").join(name)).unwrap()
}

/// Our orderer as Fabric's orderer0 with no channel: channels come through the API.
fn orderer0(data_dir: &Path) -> Orderer {
    let msp = fixture_msp(ORDERER0_MSP);
    Orderer::spawn(
        data_dir,
        &["--msp-dir", msp.to_str().unwrap(), "--msp-id", "OrdererMSP"],
    )
}

fn info_json(relation: &str, height: u64) -> String {
    format!(
        "{{\"name\":\"{CH}\",\"url\":\"{CHANNELS}/{CH}\",\"consensusRelation\":\"{relation}\",\"status\":\"active\",\"height\":{height}}}\n"
    )
}

fn error_json(text: &str) -> String {
    format!("{{\"error\":\"{text}\"}}\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn join_list_info_and_the_error_answers() {
    let dir = tempfile::tempdir().unwrap();
    let orderer = orderer0(dir.path());

    let empty = get(&orderer, CHANNELS).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.header("content-type"), "application/json");
    assert_eq!(empty.body, "{\"systemChannel\":null,\"channels\":null}\n");

    let joined = join(&orderer, &block("mychannel-solo-genesis.block")).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    assert_eq!(joined.header("location"), format!("{CHANNELS}/{CH}"));
    assert_eq!(joined.body, info_json("other", 1));

    let list = get(&orderer, CHANNELS).await;
    let channels = format!(
        "{{\"systemChannel\":null,\"channels\":[{{\"name\":\"{CH}\",\"url\":\"{CHANNELS}/{CH}\"}}]}}\n"
    );
    assert_eq!(
        (list.status, list.body.as_str()),
        (StatusCode::OK, channels.as_str())
    );
    let info = get(&orderer, &format!("{CHANNELS}/{CH}")).await;
    assert_eq!(
        (info.status, info.body),
        (StatusCode::OK, info_json("other", 1))
    );

    // The same channel again (here its etcdraft genesis block): Fabric's 405.
    let again = join(&orderer, &block("mychannel-etcdraft-genesis.block")).await;
    assert_eq!(again.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(again.header("allow"), "GET, DELETE");
    assert_eq!(
        again.body,
        error_json("cannot join: channel already exists")
    );

    let not_config = join(&orderer, &block("mychannel-etcdraft-block-1.block")).await;
    assert_eq!(not_config.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        not_config.body,
        error_json("invalid join block: block is not a config block")
    );
    let garbage = join(&orderer, &[1, 2, 3, 4]).await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        garbage.body,
        error_json(
            "cannot unmarshal file part config-block into a block: proto: cannot parse invalid wire-format data"
        )
    );

    let unknown = get(&orderer, &format!("{CHANNELS}/nosuchchannel")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body, error_json("channel does not exist"));
    let remove_unknown = call(
        &orderer,
        Method::DELETE,
        &format!("{CHANNELS}/nosuchchannel"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(remove_unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        remove_unknown.body,
        error_json("cannot remove: channel does not exist")
    );

    let html = call(
        &orderer,
        Method::GET,
        CHANNELS,
        &[("accept", "text/html")],
        vec![],
    )
    .await;
    assert_eq!(html.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(
        html.body,
        error_json("response Content-Type is application/json only")
    );

    // The joined channel orders.
    let user = user1();
    let answers = broadcast(&orderer, vec![tx(&user, CH, 100, 1)]).await;
    assert_eq!(statuses(&answers), vec![Status::Success as i32]);
    wait_blocks(&orderer, &user, CH, 1, 1, WAIT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn remove_ends_deliver_and_survives_restart_then_rejoin() {
    let dir = tempfile::tempdir().unwrap();
    let mut orderer = orderer0(dir.path());
    let joined = join(&orderer, &block("mychannel-etcdraft-genesis.block")).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    assert_eq!(joined.body, info_json("consenter", 1));

    // Followers wait for blocks that will never come; one asked for BEST_EFFORT,
    // which a halted chain alone does not end.
    let user = user1();
    let strict = seek_envelope(
        &user,
        CH,
        Some(oldest()),
        Some(specified(u64::MAX)),
        BlockUntilReady,
    );
    let best_effort = SeekInfo {
        start: Some(oldest()),
        stop: Some(specified(u64::MAX)),
        behavior: BlockUntilReady as i32,
        error_response: SeekErrorResponse::BestEffort as i32,
        ..Default::default()
    };
    let best_effort = user.signed_envelope(
        HeaderType::DeliverSeekInfo,
        CH,
        best_effort.encode_to_vec().into(),
        SystemTime::now(),
    );
    let mut streams = Vec::new();
    for follow in [strict, best_effort] {
        let mut client = orderer.client().await;
        let mut stream = client
            .deliver(tokio_stream::iter(vec![follow]))
            .await
            .unwrap()
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        assert!(matches!(
            first.r#type,
            Some(deliver_response::Type::Block(_))
        ));
        streams.push(stream);
    }

    let removed = call(
        &orderer,
        Method::DELETE,
        &format!("{CHANNELS}/{CH}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(
        (removed.status, removed.body.as_str()),
        (StatusCode::NO_CONTENT, "")
    );
    for mut stream in streams {
        let ended = tokio::time::timeout(WAIT, stream.message())
            .await
            .expect("the Deliver stream ends")
            .unwrap()
            .and_then(|r| r.r#type);
        let unavailable = deliver_response::Type::Status(Status::ServiceUnavailable as i32);
        assert_eq!(ended, Some(unavailable));
    }
    assert!(!dir.path().join("chains").join(CH).exists());
    let (_, status) = deliver(
        &orderer,
        seek_envelope(&user, CH, Some(oldest()), Some(newest()), BlockUntilReady),
    )
    .await;
    assert_eq!(status, Some(Status::NotFound));

    orderer.kill();
    let orderer = orderer0(dir.path());
    let list = get(&orderer, CHANNELS).await;
    assert_eq!(list.body, "{\"systemChannel\":null,\"channels\":null}\n");
    assert_eq!(
        get(&orderer, &format!("{CHANNELS}/{CH}")).await.status,
        StatusCode::NOT_FOUND
    );

    // Rejoined, it starts again from its genesis block and orders.
    let joined = join(&orderer, &block("mychannel-solo-genesis.block")).await;
    assert_eq!(
        (joined.status, joined.body),
        (StatusCode::CREATED, info_json("other", 1))
    );
    let answers = broadcast(&orderer, vec![tx(&user, CH, 100, 2)]).await;
    assert_eq!(statuses(&answers), vec![Status::Success as i32]);
    let blocks = wait_blocks(&orderer, &user, CH, 0, 1, WAIT).await;
    assert_eq!(tx_count(&blocks[1]), 1);
    let info = get(&orderer, &format!("{CHANNELS}/{CH}")).await;
    assert_eq!(info.body, info_json("other", 2));
}
