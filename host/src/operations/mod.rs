//! The operations listener (Fabric's core/operations System): `/metrics`
//! ([`metrics`]), `/healthz` ([`health`]), `/logspec` ([`logspec`]) and `/version`,
//! on its own listener (`Operations.ListenAddress`, `Operations.TLS`).
//!
//! As Fabric's: with Operations.TLS on, `/metrics` and `/logspec` need a verified
//! client certificate (401 otherwise; fabhttp's RequireCert), `/healthz` and
//! `/version` do not; without ClientAuthRequired a client may connect without a
//! certificate, and one it sends must chain to ClientRootCAs.

pub mod health;
pub mod logspec;
pub mod metrics;
#[cfg(test)]
mod tests;

use crate::comm::{Listener, PeerInfo};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use health::HealthChecker;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use metrics::metrics;

/// Our version, reported where Fabric reports its own (`/version`, `fabric_version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit built, when the build says (`ORDERER_COMMIT_SHA` at build time); else
/// Fabric's text for a build without one.
pub const COMMIT_SHA: &str = match option_env!("ORDERER_COMMIT_SHA") {
    Some(sha) => sha,
    None => "development build",
};

/// What the operations listener serves.
pub struct Operations {
    /// Operations.TLS.Enabled: `/metrics` and `/logspec` need a client certificate.
    pub tls: bool,
    /// Metrics.Provider is `prometheus`: `/metrics` is served (else 404, as Fabric).
    pub prometheus: bool,
    pub checkers: Vec<Arc<dyn HealthChecker>>,
    /// Run before each scrape: sets the gauges that describe state.
    pub on_scrape: Option<Box<dyn Fn() + Send + Sync>>,
}

pub fn router(operations: Operations) -> Router {
    let mut router = Router::new()
        .route("/healthz", any(healthz))
        .route("/logspec", any(logspec))
        .route("/version", any(version));
    if operations.prometheus {
        router = router.route("/metrics", any(scrape));
    }
    router
        .fallback(crate::fabhttp::not_found)
        .layer(axum::middleware::from_fn(crate::audit::log_changes))
        .layer(axum::middleware::map_response(crate::fabhttp::request_id))
        .with_state(Arc::new(operations))
}

/// Serves until the process ends.
pub async fn serve(listener: Listener, operations: Operations) -> anyhow::Result<()> {
    metrics()
        .fabric_version
        .with_label_values(&[VERSION])
        .set(1.0);
    let app = router(operations).into_make_service_with_connect_info::<PeerInfo>();
    axum::serve(listener, app).await?;
    Ok(())
}

type Ops = State<Arc<Operations>>;

/// fabhttp's RequireCert: with TLS on, a request without a verified client
/// certificate is refused (logged, as Fabric logs it).
fn refused(
    operations: &Operations,
    peer: &PeerInfo,
    method: &Method,
    path: &str,
) -> Option<Response> {
    if !operations.tls || peer.cert_hash.is_some() {
        return None;
    }
    tracing::warn!(
        "client request not authorized, client must pass a valid client certificate for this operation: {method} {path} from {}",
        peer.addr
    );
    Some(StatusCode::UNAUTHORIZED.into_response())
}

async fn scrape(
    State(ops): Ops,
    ConnectInfo(peer): ConnectInfo<PeerInfo>,
    method: Method,
) -> Response {
    if let Some(refusal) = refused(&ops, &peer, &method, "/metrics") {
        return refusal;
    }
    if let Some(refresh) = &ops.on_scrape {
        refresh();
    }
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], metrics().render()).into_response()
}

async fn healthz(State(ops): Ops, method: Method) -> Response {
    health::answer(&method, &ops.checkers)
}

#[derive(Serialize, Deserialize)]
struct LogSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    spec: String,
}

/// httpadmin's SpecHandler: JSON written by Go's json.Encoder (a newline at the end).
fn spec_answer(status: StatusCode, body: &impl Serialize) -> Response {
    let mut json = serde_json::to_vec(body).expect("plain data serializes");
    json.push(b'\n');
    (status, [(header::CONTENT_TYPE, "application/json")], json).into_response()
}

fn spec_error(message: impl std::fmt::Display) -> Response {
    let body = serde_json::json!({ "error": message.to_string() });
    spec_answer(StatusCode::BAD_REQUEST, &body)
}

async fn logspec(
    State(ops): Ops,
    ConnectInfo(peer): ConnectInfo<PeerInfo>,
    method: Method,
    body: Bytes,
) -> Response {
    if let Some(refusal) = refused(&ops, &peer, &method, "/logspec") {
        return refusal;
    }
    match method {
        Method::GET => spec_answer(
            StatusCode::OK,
            &LogSpec {
                spec: logspec::current(),
            },
        ),
        Method::PUT => {
            let spec: LogSpec = match serde_json::from_slice(&body) {
                Ok(spec) => spec,
                Err(e) => return spec_error(e),
            };
            match logspec::activate(&spec.spec) {
                Ok(()) => {
                    tracing::info!(
                        "logging spec is now {:?} (PUT /logspec from {})",
                        logspec::current(),
                        peer.addr
                    );
                    StatusCode::NO_CONTENT.into_response()
                }
                Err(e) => spec_error(e),
            }
        }
        other => spec_error(format!("invalid request method: {other}")),
    }
}

/// core/operations' VersionInfoHandler.
async fn version(method: Method) -> Response {
    let (status, body) = match method {
        Method::GET => (
            StatusCode::OK,
            serde_json::json!({ "CommitSHA": COMMIT_SHA, "Version": VERSION }),
        ),
        other => (
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "Error": format!("invalid request method: {other}") }),
        ),
    };
    let json = serde_json::to_vec(&body).expect("plain data serializes");
    (status, [(header::CONTENT_TYPE, "application/json")], json).into_response()
}
