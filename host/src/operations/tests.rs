use super::logspec::{Spec, SpecError, target_of};
use super::*;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

fn peer(with_cert: bool) -> PeerInfo {
    PeerInfo {
        addr: "127.0.0.1:5000".parse().unwrap(),
        cert_hash: with_cert.then_some([7; 32]),
        cert: None,
    }
}

fn ops(tls: bool, prometheus: bool) -> Operations {
    Operations {
        tls,
        prometheus,
        checkers: vec![],
        on_scrape: None,
    }
}

async fn call(
    operations: Operations,
    method: &str,
    path: &str,
    body: &str,
    with_cert: bool,
) -> (StatusCode, String) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body.to_string()))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(peer(with_cert)));
    let response = router(operations).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[test]
fn specs_parse_as_fabric_and_print_as_fabric() {
    let spec = Spec::parse("info:orderer.consensus=debug").unwrap();
    assert_eq!(spec.to_fabric(), "orderer.consensus=debug:info");
    assert!(
        spec.directives().contains("orderer::consensus=debug"),
        "{}",
        spec.directives()
    );
    let spec = Spec::parse("WARNING:b,a=ERROR").unwrap();
    assert_eq!(spec.to_fabric(), "a=error:b=error:warn");
    // An empty segment resets the default to info, as Fabric's ActivateSpec.
    assert_eq!(Spec::parse("debug:").unwrap().to_fabric(), "info");
    assert_eq!(Spec::parse("").unwrap().to_fabric(), "info");
}

#[test]
fn bad_specs_get_fabrics_texts() {
    assert_eq!(
        Spec::parse("info:verbose").unwrap_err().to_string(),
        "invalid logging specification 'info:verbose': bad segment 'verbose'"
    );
    assert!(matches!(
        Spec::parse("=debug"),
        Err(SpecError::NoLogger { .. })
    ));
    assert_eq!(
        Spec::parse("a..b=debug").unwrap_err().to_string(),
        "invalid logging specification 'a..b=debug': bad logger name 'a..b'"
    );
    assert!(matches!(
        Spec::parse("a=b=c"),
        Err(SpecError::BadSegment { .. })
    ));
}

#[test]
fn fabric_logger_names_map_to_our_targets() {
    assert_eq!(
        target_of("orderer.common.broadcast"),
        ["orderer::broadcast"]
    );
    assert_eq!(
        target_of("orderer.consensus.solo"),
        ["orderer::consensus::solo"]
    );
    assert_eq!(
        target_of("common.ledger.blkstorage"),
        ["orderer::ledger::blkstorage"]
    );
    assert_eq!(target_of("orderer.hotswap"), ["orderer::hotswap"]);
    assert_eq!(target_of("wasmtime"), ["wasmtime"]);
}

#[test]
fn dependencies_stay_quiet_unless_named() {
    let directives = Spec::parse("debug").unwrap().directives();
    assert!(directives.starts_with("debug,"), "{directives}");
    assert!(directives.contains("h2=warn"), "{directives}");
    let directives = Spec::parse("error:h2=debug").unwrap().directives();
    assert!(directives.contains("wasmtime=error"), "{directives}");
    assert!(
        directives.contains("h2=debug") && !directives.contains("h2=error"),
        "{directives}"
    );
}

#[tokio::test]
async fn version_as_fabric() {
    let (status, body) = call(ops(false, true), "GET", "/version", "", false).await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["Version"], VERSION);
    assert_eq!(json["CommitSHA"], COMMIT_SHA);
    let (status, body) = call(ops(false, true), "POST", "/version", "", false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, r#"{"Error":"invalid request method: POST"}"#);
}

#[tokio::test]
async fn metrics_are_served_only_with_prometheus() {
    let (status, body) = call(ops(false, true), "GET", "/metrics", "", false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("# TYPE broadcast_processed_count counter"),
        "{body}"
    );
    let (status, _) = call(ops(false, false), "GET", "/metrics", "", false).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(ops(false, true), "GET", "/nothing", "", false).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::NOT_FOUND, "404 page not found\n")
    );
}

#[tokio::test]
async fn with_tls_metrics_and_logspec_need_a_client_certificate() {
    for path in ["/metrics", "/logspec"] {
        let (status, _) = call(ops(true, true), "GET", path, "", false).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let (status, _) = call(ops(true, true), "GET", path, "", true).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    for path in ["/healthz", "/version"] {
        let (status, _) = call(ops(true, true), "GET", path, "", false).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn logspec_errors_as_fabric() {
    let (status, body) = call(
        ops(false, true),
        "PUT",
        "/logspec",
        r#"{"spec":"info:x=loud"}"#,
        false,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        "{\"error\":\"invalid logging specification 'info:x=loud': bad segment 'x=loud'\"}\n"
    );
    let (status, body) = call(ops(false, true), "POST", "/logspec", "", false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, "{\"error\":\"invalid request method: POST\"}\n");
    let (status, _) = call(ops(false, true), "PUT", "/logspec", "not json", false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // No subscriber is installed by the unit tests, so a good spec only parses.
    let (status, _) = call(
        ops(false, true),
        "PUT",
        "/logspec",
        r#"{"spec":"debug"}"#,
        false,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}
