//! The API through the admin router (no socket) over a real registrar on the native
//! core, held to Fabric's restapi_test.go cases and the answers of the real orderer.

use super::multipart::{self, FormError, ReadError};
use super::*;
use crate::component::{ComponentCache, CoreComponent};
use crate::hotswap::CoreSettings;
use crate::identity::Signer;
use axum::http::Request;
use http_body_util::BodyExt;
use std::path::{Path, PathBuf};
use tower::ServiceExt;

const BOUNDARY: &str = "c0ffee0123456789";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/fabric")
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(path)).unwrap()
}

fn registrar(dir: &Path) -> Arc<Registrar> {
    let msp = fixtures()
        .join("crypto/ordererOrganizations/example.com/orderers/orderer0.example.com/msp");
    let signer = Signer::from_msp_dir(&msp, "OrdererMSP").unwrap();
    let cache = ComponentCache::new(dir.join("components"));
    let registrar = Registrar::with_core(
        dir.to_path_buf(),
        Arc::new(signer),
        CoreComponent::native(),
        cache,
        CoreSettings::default(),
    );
    registrar.open_existing().unwrap();
    registrar
}

/// A multipart body as Go's `multipart.Writer` makes it: `(name, file name, bytes)`.
fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, (name, file, data)) in parts.iter().enumerate() {
        let sep = if i == 0 { "" } else { "\r\n" };
        body.extend_from_slice(format!("{sep}--{BOUNDARY}\r\n").as_bytes());
        let disposition = match file {
            Some(file) => format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(data);
    }
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn join_form(block: &[u8]) -> Vec<u8> {
    form(&[("config-block", Some("config.block"), block)])
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    /// Fabric's error answer: this status, JSON, `{"error": text}`.
    fn assert_error(&self, status: StatusCode, text: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.header(header::CONTENT_TYPE), "application/json");
        assert_eq!(self.body, format!("{{\"error\":\"{text}\"}}\n"));
    }
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn request(method: &str, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap()
}

fn post(content_type: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(URL_BASE_V1_CHANNELS)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap()
}

fn multipart_post(body: Vec<u8>) -> Request<Body> {
    post(&format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

const SOLO_INFO: &str = "{\"name\":\"mychannel\",\"url\":\"/participation/v1/channels/mychannel\",\"consensusRelation\":\"other\",\"status\":\"active\",\"height\":1}\n";

#[tokio::test(flavor = "multi_thread")]
async fn join_list_info_remove_as_fabric_answers() {
    let dir = tempfile::tempdir().unwrap();
    let registrar = registrar(dir.path());
    let router = crate::admin::router(registrar.clone());

    let empty = send(&router, request("GET", URL_BASE_V1_CHANNELS)).await;
    assert_eq!(empty.status, StatusCode::OK);
    let id = empty.header(header::HeaderName::from_static("x-request-id"));
    let groups: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
    assert_eq!(&id[14..15], "4", "{id}");
    assert_eq!(empty.header(header::CONTENT_TYPE), "application/json");
    assert_eq!(empty.header(header::CACHE_CONTROL), "no-store");
    assert_eq!(empty.body, "{\"systemChannel\":null,\"channels\":null}\n");

    let solo = fixture("blocks/mychannel-solo-genesis.block");
    let joined = send(&router, multipart_post(join_form(&solo))).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    assert_eq!(
        joined.header(header::LOCATION),
        "/participation/v1/channels/mychannel"
    );
    assert_eq!(joined.header(header::CONTENT_TYPE), "application/json");
    assert_eq!(joined.body, SOLO_INFO);

    let again = send(&router, multipart_post(join_form(&solo))).await;
    again.assert_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "cannot join: channel already exists",
    );
    assert_eq!(again.header(header::ALLOW), "GET, DELETE");

    let list = send(&router, request("GET", URL_BASE_V1_CHANNELS)).await;
    assert_eq!(
        list.body,
        "{\"systemChannel\":null,\"channels\":[{\"name\":\"mychannel\",\"url\":\"/participation/v1/channels/mychannel\"}]}\n"
    );
    let info = send(
        &router,
        request("GET", "/participation/v1/channels/mychannel"),
    )
    .await;
    assert_eq!(
        (info.status, info.body.as_str()),
        (StatusCode::OK, SOLO_INFO)
    );
    assert_eq!(info.header(header::CACHE_CONTROL), "no-store");

    let removed = send(
        &router,
        request("DELETE", "/participation/v1/channels/mychannel"),
    )
    .await;
    assert_eq!(
        (removed.status, removed.body.as_str()),
        (StatusCode::NO_CONTENT, "")
    );
    assert!(!dir.path().join("chains/mychannel").exists());
    send(
        &router,
        request("GET", "/participation/v1/channels/mychannel"),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "channel does not exist");
    send(
        &router,
        request("DELETE", "/participation/v1/channels/mychannel"),
    )
    .await
    .assert_error(
        StatusCode::NOT_FOUND,
        "cannot remove: channel does not exist",
    );

    // Rejoined as the single-consenter etcdraft channel: Fabric's consenter.
    let raft = fixture("blocks/mychannel-etcdraft-genesis.block");
    let joined = send(&router, multipart_post(join_form(&raft))).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    assert!(
        joined
            .body
            .contains("\"consensusRelation\":\"consenter\",\"status\":\"active\",\"height\":1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn methods_paths_and_accept_as_fabric_routes_them() {
    let dir = tempfile::tempdir().unwrap();
    let router = crate::admin::router(registrar(dir.path()));
    for method in ["HEAD", "OPTIONS", "PATCH", "PUT", "TRACE", "POST"] {
        let answer = send(&router, request(method, "/participation/v1/channels/ch-id")).await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(answer.header(header::ALLOW), "GET, DELETE", "{method}");
        if method != "HEAD" {
            let text = format!("invalid request method: {method}");
            answer.assert_error(StatusCode::METHOD_NOT_ALLOWED, &text);
        }
    }
    for method in ["OPTIONS", "PATCH", "TRACE", "DELETE"] {
        let answer = send(&router, request(method, URL_BASE_V1_CHANNELS)).await;
        answer.assert_error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("invalid request method: {method}"),
        );
        // Fabric 3.x's: PUT is the channel update.
        assert_eq!(answer.header(header::ALLOW), "GET, POST, PUT");
    }
    let answer = send(&router, request("PUT", URL_BASE_V1_CHANNELS)).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "unsupported Content-Type: []");
    for path in [
        "/oops",
        "/participation/v1/oops",
        "/participation/v1/channels/no/slash",
    ] {
        let answer = send(&router, request("GET", path)).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::NOT_FOUND, "404 page not found\n")
        );
    }
    let base = send(&router, request("GET", URL_BASE_V1)).await;
    assert_eq!(base.status, StatusCode::FOUND);
    assert_eq!(base.header(header::LOCATION), URL_BASE_V1_CHANNELS);

    send(&router, request("GET", "/participation/v1/channels/Oops"))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "invalid channel ID: 'Oops' contains illegal characters",
        );
    send(
        &router,
        request("DELETE", "/participation/v1/channels/My-Channel"),
    )
    .await
    .assert_error(
        StatusCode::BAD_REQUEST,
        "invalid channel ID: 'My-Channel' contains illegal characters",
    );
    send(
        &router,
        request("GET", "/participation/v1/channels/nosuchchannel"),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "channel does not exist");

    let with_accept = |accept: &str, path: &str| {
        Request::builder()
            .uri(path)
            .header(header::ACCEPT, accept)
            .body(Body::empty())
            .unwrap()
    };
    for accept in [
        "application/json",
        "application/*",
        "*/*",
        "text/html, application/json;q=0.9",
    ] {
        let answer = send(&router, with_accept(accept, URL_BASE_V1_CHANNELS)).await;
        assert_eq!(answer.status, StatusCode::OK, "{accept}");
    }
    for path in [URL_BASE_V1_CHANNELS, "/participation/v1/channels/ok"] {
        send(&router, with_accept("text/html", path))
            .await
            .assert_error(
                StatusCode::NOT_ACCEPTABLE,
                "response Content-Type is application/json only",
            );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_join_requests_get_fabrics_texts() {
    let dir = tempfile::tempdir().unwrap();
    let registrar = registrar(dir.path());
    let router = crate::admin::router(registrar.clone());
    let bad = |text: &'static str| (StatusCode::BAD_REQUEST, text);
    let cases: Vec<(Request<Body>, (StatusCode, &str))> = vec![
        (
            post("text/plain", vec![]),
            bad("unsupported Content-Type: [text/plain]"),
        ),
        (
            post("multipart/form-data", join_form(b"")),
            bad("cannot read form from request body: multipart: boundary is empty"),
        ),
        (
            post("multipart/form-data; boundary", vec![]),
            bad("cannot parse Mime media type: mime: invalid media parameter"),
        ),
        (
            multipart_post(form(&[("bad-key", Some("join-config.block"), b"")])),
            bad("form does not contains part key: config-block"),
        ),
        (
            multipart_post(form(&[
                ("config-block", Some("join-config.block"), b""),
                ("not-wanted", None, b"something"),
            ])),
            bad("form contains too many parts"),
        ),
        (
            multipart_post(join_form(&[1, 2, 3, 4])),
            bad(
                "cannot unmarshal file part config-block into a block: proto: cannot parse invalid wire-format data",
            ),
        ),
        (
            multipart_post(join_form(b"")),
            bad("invalid join block: block is not a config block"),
        ),
        (
            multipart_post(join_form(&fixture(
                "blocks/mychannel-etcdraft-block-1.block",
            ))),
            bad("invalid join block: block is not a config block"),
        ),
        (
            multipart_post(join_form(&vec![0x0a; 2 * DEFAULT_MAX_REQUEST_BODY_SIZE])),
            bad("cannot read form from request body: http: request body too large"),
        ),
        (
            multipart_post(join_form(&fixture("syschannel/system-solo-genesis.block"))),
            bad(
                "cannot join: joining a system channel (a config block with consortiums) is not supported yet: this orderer runs without a system channel",
            ),
        ),
    ];
    for (request, (status, text)) in cases {
        send(&router, request).await.assert_error(status, text);
    }
    let too_large = multipart_post(join_form(&vec![0; DEFAULT_MAX_REQUEST_BODY_SIZE]));
    assert_eq!(
        send(&router, too_large).await.header(header::CONNECTION),
        "close"
    );

    // A config block past the genesis block onboards a Raft node; a solo channel has
    // no other orderers to pull from.
    let mut later =
        Block::decode(fixture("blocks/mychannel-solo-genesis.block").as_slice()).unwrap();
    later.header.as_mut().unwrap().number = 3;
    let answer = send(&router, multipart_post(join_form(&later.encode_to_vec()))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(
        answer
            .body
            .starts_with("{\"error\":\"cannot join: joining at block 3 (not the genesis block) is for etcdraft channels with several consenters; this solo channel"),
        "{}",
        answer.body
    );
    assert!(!dir.path().join("chains/mychannel").exists());

    // With a channel joined, a system channel block is Fabric's 403.
    let appchannel = fixture("syschannel/appchannel-block-0.block");
    let joined = send(&router, multipart_post(join_form(&appchannel))).await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    send(
        &router,
        multipart_post(join_form(&fixture("syschannel/system-solo-genesis.block"))),
    )
    .await
    .assert_error(
        StatusCode::FORBIDDEN,
        "cannot join: application channels already exist",
    );

    // Fabric's MaxRequestBodySize 1 case: the limit is hit before the first part.
    let tiny = channelparticipation_router(registrar, 1);
    send(&tiny, multipart_post(join_form(&[1, 2, 3, 4])))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "cannot read form from request body: multipart: NextPart: http: request body too large",
        );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_listener_takes_the_settings_of_channel_participation() {
    let dir = tempfile::tempdir().unwrap();
    let registrar = registrar(dir.path());
    let disabled = crate::admin::Participation {
        enabled: false,
        max_request_body_size: 1 << 20,
    };
    let router = crate::admin::router_with(registrar.clone(), disabled);
    for path in [
        URL_BASE_V1,
        URL_BASE_V1_CHANNELS,
        "/participation/v1/channels/mychannel",
    ] {
        send(&router, request("GET", path)).await.assert_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "channel participation API is disabled",
        );
    }
    // The fixture genesis block is 12 KB: a 1 KB MaxRequestBodySize refuses it.
    let small = crate::admin::Participation {
        enabled: true,
        max_request_body_size: 1024,
    };
    let router = crate::admin::router_with(registrar, small);
    let solo = fixture("blocks/mychannel-solo-genesis.block");
    let refused = send(&router, multipart_post(join_form(&solo))).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("http: request body too large"),
        "{}",
        refused.body
    );
}

fn channelparticipation_router(registrar: Arc<Registrar>, limit: usize) -> Router {
    super::router(registrar, limit)
}

#[test]
fn a_removed_or_joining_ledger_left_by_a_crash_does_not_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("chains.staging");
    for leftover in ["join-mychannel", "removed-mychannel-1"] {
        let ledger = crate::ledger::Ledger::open(&staging.join(leftover)).unwrap();
        ledger
            .append(fixture("blocks/mychannel-solo-genesis.block").into())
            .unwrap();
    }
    let registrar = registrar(dir.path());
    assert!(registrar.channel_names().is_empty());
    assert!(!staging.exists());
}

#[test]
fn media_types_parse_as_go_parses_them() {
    let (kind, params) =
        multipart::parse_media_type("Multipart/Form-Data; boundary=\"a b\\\"c\" ; X=1;").unwrap();
    assert_eq!(kind, "multipart/form-data");
    assert_eq!(params["boundary"], "a b\"c");
    assert_eq!(params["x"], "1");
    for (text, error) in [
        ("", "mime: no media type"),
        ("a b", "mime: expected slash after first token"),
        ("a/", "mime: expected token after slash"),
        ("a/b c", "mime: unexpected content after media subtype"),
        ("a/b; c", "mime: invalid media parameter"),
        ("a/b; c=\"open", "mime: invalid media parameter"),
        ("a/b; c=1; c=2", "mime: duplicate parameter name"),
    ] {
        let got = multipart::parse_media_type(text).unwrap_err().to_string();
        assert_eq!(got, error, "{text:?}");
    }
}

#[test]
fn forms_read_as_go_reads_them() {
    let read = |data: &[u8], truncated: bool| {
        multipart::read_form(&multipart::Body { data, truncated }, BOUNDARY)
    };
    let body = form(&[(
        "config-block",
        Some("c.block"),
        b"\r\n--c0ffee0123456789x\r\n",
    )]);
    let got = read(&body, false).unwrap();
    assert_eq!(got.files["config-block"], b"\r\n--c0ffee0123456789x\r\n");
    assert!(got.values.is_empty());

    // Bare \n line ends, a preamble, a part without a name, an empty file first.
    let lf = format!(
        "preamble\n--{BOUNDARY}\nContent-Disposition: form-data\n\nskipped\n--{BOUNDARY}\nContent-Disposition: form-data; name=\"v\"\n\n--{BOUNDARY}--"
    );
    let got = read(lf.as_bytes(), false).unwrap();
    assert!(got.files.is_empty());
    assert_eq!(got.values.iter().collect::<Vec<_>>(), ["v"]);

    let cut = &body[..body.len() - 10];
    assert_eq!(
        read(cut, false),
        Err(FormError::Read(ReadError::UnexpectedEof))
    );
    assert_eq!(read(cut, true), Err(FormError::Read(ReadError::TooLarge)));
    assert_eq!(read(b"", false), Err(FormError::NextPart(ReadError::Eof)));
    let headers_cut = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"a\"");
    assert!(
        read(headers_cut.as_bytes(), false)
            .unwrap()
            .files
            .is_empty()
    );
    let malformed = format!("--{BOUNDARY}\r\nno colon\r\n\r\n");
    assert_eq!(
        read(malformed.as_bytes(), false),
        Err(FormError::MalformedHeader("no colon".into()))
    );
    let stray = format!("--{BOUNDARY}\r\n\r\ndata\r\n--{BOUNDARY}\r\n\r\n\r\n--{BOUNDARY}x\r\n");
    assert!(matches!(
        read(stray.as_bytes(), false),
        Err(FormError::Read(ReadError::UnexpectedEof))
    ));
}

#[test]
fn channel_ids_follow_fabrics_rule() {
    for ok in ["a", "mychannel", "a.b-c9", &"a".repeat(249)] {
        assert_eq!(validate_channel_id(ok), Ok(()), "{ok}");
    }
    for (bad, text) in [
        ("", "channel ID illegal, cannot be empty"),
        (
            &"a".repeat(250),
            "channel ID illegal, cannot be longer than 249",
        ),
        ("Oops", "'Oops' contains illegal characters"),
        ("9a", "'9a' contains illegal characters"),
        ("a_b", "'a_b' contains illegal characters"),
        ("..", "'..' contains illegal characters"),
    ] {
        assert_eq!(validate_channel_id(bad).unwrap_err().to_string(), text);
    }
}

#[test]
fn go_json_escapes_html_and_ends_with_a_newline() {
    let body = ErrorResponse {
        error: "a<b>&c\u{2028}".into(),
    };
    assert_eq!(
        go_json(&body),
        "{\"error\":\"a\\u003cb\\u003e\\u0026c\\u2028\"}\n"
    );
}

fn put_update(envelope: &[u8]) -> Request<Body> {
    let body = form(&[(
        "config-update-envelope",
        Some("config-update.envelope"),
        envelope,
    )]);
    Request::builder()
        .method("PUT")
        .uri(URL_BASE_V1_CHANNELS)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(body))
        .unwrap()
}

/// Fabric 3.x's `osnadmin channel update`: a config update through the admin API.
#[tokio::test(flavor = "multi_thread")]
async fn a_config_update_envelope_is_applied_as_broadcast_would() {
    use crate::client::configupdate::BatchEdits;
    use crate::testkit::{batch_update, orderer_admin, org1_admin, user1};
    let dir = tempfile::tempdir().unwrap();
    let registrar = registrar(dir.path());
    let router = router(registrar.clone(), DEFAULT_MAX_REQUEST_BODY_SIZE);
    let genesis = fixture("blocks/mychannel-solo-genesis.block");
    let update = |signer: &Signer| {
        let edits = BatchEdits {
            max_message_count: Some(10),
            ..Default::default()
        };
        batch_update(&genesis.clone().into(), &edits, signer).encode_to_vec()
    };

    let answer = send(&router, put_update(&update(&orderer_admin()))).await;
    answer.assert_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "cannot update: channel does not exist",
    );
    registrar.join(&genesis).unwrap();

    let answer = send(&router, put_update(&update(&org1_admin()))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(
        answer.body.starts_with("{\"error\":\"cannot update: failed update config of channel mychannel: error applying config update to existing channel 'mychannel': error authorizing update:"),
        "{}",
        answer.body
    );
    let normal = crate::testkit::tx(&user1(), 1, 10).encode_to_vec();
    let answer = send(&router, put_update(&normal)).await;
    answer.assert_error(
        StatusCode::BAD_REQUEST,
        "invalid config update envelope: bad type",
    );
    let answer = send(&router, put_update(b"\xff\xff")).await;
    answer.assert_error(
        StatusCode::BAD_REQUEST,
        "cannot unmarshal file part config-update-envelope into an envelope: proto: cannot parse invalid wire-format data",
    );

    let answer = send(&router, put_update(&update(&orderer_admin()))).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(
        answer.header(header::LOCATION),
        "/participation/v1/channels/mychannel"
    );
    let support = registrar.get("mychannel").unwrap();
    for _ in 0..200 {
        if support.config().1 == 1 && support.ledger.height() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(support.config().1, 1, "the config block is in force");
    assert_eq!(support.ledger.height(), 2);
}
