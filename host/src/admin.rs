//! The admin listener: Fabric's channel participation API (`/participation/v1/...`,
//! in `channelparticipation`), and which core component each channel runs and
//! swapping it while serving (`/core/v1/channels/{channel}`), with JSON answers.

use crate::channelparticipation::{self, DEFAULT_MAX_REQUEST_BODY_SIZE};
use crate::hotswap;
use crate::multichannel::Registrar;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// Components are a few MB; Fabric's participation API takes 1 MB config blocks,
/// a component needs more room.
const MAX_COMPONENT_BYTES: usize = 64 * 1024 * 1024;

/// ChannelParticipation's settings.
#[derive(Debug, Clone, Copy)]
pub struct Participation {
    pub enabled: bool,
    pub max_request_body_size: usize,
}

impl Default for Participation {
    /// Fabric's sample orderer.yaml's.
    fn default() -> Self {
        Participation {
            enabled: true,
            max_request_body_size: DEFAULT_MAX_REQUEST_BODY_SIZE,
        }
    }
}

pub fn router(registrar: Arc<Registrar>) -> Router {
    router_with(registrar, Participation::default())
}

pub fn router_with(registrar: Arc<Registrar>, participation: Participation) -> Router {
    let participation_routes = if participation.enabled {
        channelparticipation::router(registrar.clone(), participation.max_request_body_size)
    } else {
        channelparticipation::disabled_router()
    };
    Router::new()
        .route("/core/v1/channels/{channel}", get(status).put(load))
        .route("/core/v1/channels/{channel}/rollback", post(rollback))
        .route("/core/v1/channels/{channel}/dry-run", post(dry_run))
        .layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES))
        .with_state(registrar)
        .merge(participation_routes)
        .fallback(crate::fabhttp::not_found)
        .layer(axum::middleware::from_fn(crate::audit::log_changes))
        .layer(axum::middleware::map_response(crate::fabhttp::request_id))
}

/// Serves until the process ends. With Admin.TLS on, `listener` has refused every
/// client without a certificate chaining to Admin.TLS.ClientRootCAs at the handshake.
pub async fn serve(
    listener: crate::comm::Listener,
    registrar: Arc<Registrar>,
    participation: Participation,
) -> anyhow::Result<()> {
    let app = router_with(registrar, participation);
    let app = app.into_make_service_with_connect_info::<crate::comm::PeerInfo>();
    axum::serve(listener, app).await?;
    Ok(())
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

/// 200 with the JSON of `result`, or `failure` with its error.
fn answer<T: serde::Serialize>(result: Result<T, String>, failure: StatusCode) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => error(failure, e),
    }
}

/// The 404 answer for a channel this orderer does not serve.
fn unknown(channel: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("channel {channel} does not exist"),
    )
}

async fn status(State(registrar): State<Arc<Registrar>>, Path(name): Path<String>) -> Response {
    let Some(support) = registrar.get(&name) else {
        return unknown(&name);
    };
    Json(support.core.state()).into_response()
}

async fn load(
    State(registrar): State<Arc<Registrar>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(support) = registrar.get(&name) else {
        return unknown(&name);
    };
    if let Err(refusal) = check_signature(&registrar, &*support, &headers, &body) {
        return error(StatusCode::FORBIDDEN, refusal);
    }
    let limits = registrar.settings().limits;
    let loaded = hotswap::load(&*support, registrar.cache(), limits, body.to_vec()).await;
    answer(loaded, StatusCode::BAD_REQUEST)
}

async fn rollback(State(registrar): State<Arc<Registrar>>, Path(name): Path<String>) -> Response {
    let Some(support) = registrar.get(&name) else {
        return unknown(&name);
    };
    let rolled_back = hotswap::rollback(&*support, None).await;
    answer(rolled_back, StatusCode::BAD_REQUEST)
}

async fn dry_run(
    State(registrar): State<Arc<Registrar>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let Some(support) = registrar.get(&name) else {
        return unknown(&name);
    };
    let limits = registrar.settings().limits;
    let verdicts = hotswap::dry_run(&*support, registrar.cache(), limits, body.to_vec()).await;
    answer(verdicts, StatusCode::BAD_REQUEST)
}

/// A component's signature ([`hotswap::signature`]): required with
/// `--require-signed-components`, and checked whenever one is sent.
fn check_signature(
    registrar: &Registrar,
    channel: &impl hotswap::Swappable,
    headers: &HeaderMap,
    wasm: &[u8],
) -> Result<(), String> {
    let Some(given) = headers.get(hotswap::signature::HEADER) else {
        if registrar.settings().require_signed {
            return Err("this orderer loads only signed components \
                        (--require-signed-components): sign it with `orderer core sign` \
                        and load it with --signature"
                .into());
        }
        return Ok(());
    };
    let sig = hex::decode(given.as_bytes())
        .map_err(|e| format!("the {} header is not hex: {e}", hotswap::signature::HEADER))?;
    let (config_block, _) = channel.config_and_tip();
    let msp_id = registrar.local_msp_id();
    let signer = hotswap::signature::verify(&config_block, msp_id, wasm, &sig)?;
    tracing::info!(
        channel = channel.channel_id(),
        "core swap: component signed by {signer}"
    );
    Ok(())
}
