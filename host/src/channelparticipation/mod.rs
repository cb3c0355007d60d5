//! Fabric's channel participation API (orderer/common/channelparticipation,
//! `osnadmin channel join|list|remove`) on the admin listener, as Fabric v2.5 serves
//! it without a system channel: routes, methods, `Accept` negotiation, status codes,
//! headers, JSON field names and error texts are Fabric's, so `osnadmin` works
//! against it unmodified. Fabric 3.x's `osnadmin channel update` (PUT with a config
//! update envelope) is served too.

mod joinblock;
mod multipart;
#[cfg(test)]
mod tests;
mod update;

use crate::consensus::{ChannelStatus, ConsensusRelation};
use crate::multichannel::{
    ChannelIdError, ChannelInfo, JoinError, Joined, Registrar, RemoveError, validate_channel_id,
};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use fabric_protos::common::Block;
use futures::StreamExt;
use prost::Message;
use serde::Serialize;
use std::sync::Arc;

pub const URL_BASE_V1: &str = "/participation/v1/";
pub const URL_BASE_V1_CHANNELS: &str = "/participation/v1/channels";
/// The multipart field that carries the config block.
const FORM_DATA_CONFIG_BLOCK_KEY: &str = "config-block";
/// Fabric's default `ChannelParticipation.MaxRequestBodySize`.
pub const DEFAULT_MAX_REQUEST_BODY_SIZE: usize = 1024 * 1024;

#[derive(Clone)]
struct Api {
    registrar: Arc<Registrar>,
    max_request_body_size: usize,
}

/// The routes under `/participation/v1/`; every method is routed here, so that
/// the ones Fabric does not allow get Fabric's 405 answer.
pub fn router(registrar: Arc<Registrar>, max_request_body_size: usize) -> Router {
    let api = Api {
        registrar,
        max_request_body_size,
    };
    Router::new()
        .route("/participation/v1", any(to_base))
        .route(URL_BASE_V1, any(base))
        .route(URL_BASE_V1_CHANNELS, any(channels))
        .route("/participation/v1/channels/{channel}", any(channel))
        .with_state(api)
}

/// ChannelParticipation.Enabled false: as Fabric's handler, every path under
/// `/participation/v1/` answers 503.
pub fn disabled_router() -> Router {
    async fn disabled() -> Response {
        let message = "channel participation API is disabled";
        error(StatusCode::SERVICE_UNAVAILABLE, message)
    }
    Router::new()
        .route(URL_BASE_V1, any(disabled))
        .route("/participation/v1/{*rest}", any(disabled))
}

#[derive(Serialize)]
struct ChannelInfoShort {
    name: String,
    url: String,
}

/// Fabric's `types.ChannelList`: `null`, not `[]`, when there is no channel.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChannelList {
    system_channel: Option<ChannelInfoShort>,
    channels: Option<Vec<ChannelInfoShort>>,
}

/// Fabric's `types.ChannelInfo`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChannelInfoJson {
    name: String,
    url: String,
    consensus_relation: ConsensusRelation,
    status: ChannelStatus,
    height: u64,
    /// Ours, beside Fabric's fields (osnadmin ignores them): etcdraft channels'
    /// Raft ID of this node and the leader it knows of (0: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    raft_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raft_leader: Option<u64>,
}

fn url(channel: &str) -> String {
    format!("{URL_BASE_V1_CHANNELS}/{channel}")
}

impl From<ChannelInfo> for ChannelInfoJson {
    fn from(info: ChannelInfo) -> Self {
        ChannelInfoJson {
            url: url(&info.name),
            name: info.name,
            consensus_relation: info.relation,
            status: info.status,
            height: info.height,
            raft_id: info.raft.map(|r| r.id),
            raft_leader: info.raft.map(|r| r.leader),
        }
    }
}

/// `/participation/v1`: Go's ServeMux sends the subtree's root to its slash form.
async fn to_base(method: Method) -> Response {
    redirect(StatusCode::MOVED_PERMANENTLY, URL_BASE_V1, &method)
}

/// `/participation/v1/`: GET is redirected to the channel list; gorilla/mux answers
/// other methods 405 with no body.
async fn base(method: Method) -> Response {
    if method == Method::GET {
        redirect(StatusCode::FOUND, URL_BASE_V1_CHANNELS, &method)
    } else {
        StatusCode::METHOD_NOT_ALLOWED.into_response()
    }
}

async fn channels(
    State(api): State<Api>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match method {
        Method::GET => list(&api, &headers),
        // Fabric's route matches Content-Type against `multipart/form-data*`.
        Method::POST
            if header_values(&headers, header::CONTENT_TYPE)
                .iter()
                .any(|v| v.contains("multipart/form-dat")) =>
        {
            join(&api, &headers, body).await
        }
        Method::PUT
            if header_values(&headers, header::CONTENT_TYPE)
                .iter()
                .any(|v| v.contains("multipart/form-dat")) =>
        {
            update::update(&api, &headers, body).await
        }
        Method::POST | Method::PUT => {
            let values = header_values(&headers, header::CONTENT_TYPE).join(" ");
            error(
                StatusCode::BAD_REQUEST,
                format!("unsupported Content-Type: [{values}]"),
            )
        }
        other => not_allowed(format!("invalid request method: {other}"), "GET, POST, PUT"),
    }
}

async fn channel(
    State(api): State<Api>,
    method: Method,
    Path(channel): Path<String>,
    headers: HeaderMap,
) -> Response {
    match method {
        Method::GET => info(&api, &headers, &channel),
        Method::DELETE => remove(&api, &headers, &channel).await,
        other => not_allowed(format!("invalid request method: {other}"), "GET, DELETE"),
    }
}

fn list(api: &Api, headers: &HeaderMap) -> Response {
    if let Err(refused) = negotiate(headers) {
        return refused.into_response();
    }
    let system = api.registrar.system_channel_id();
    let channels: Vec<ChannelInfoShort> = (api.registrar.channel_names().into_iter())
        .filter(|name| Some(name) != system.as_ref())
        .map(|name| ChannelInfoShort {
            url: url(&name),
            name,
        })
        .collect();
    let list = ChannelList {
        system_channel: system.map(|name| ChannelInfoShort {
            url: url(&name),
            name,
        }),
        channels: (!channels.is_empty()).then_some(channels),
    };
    no_store(json(StatusCode::OK, &list))
}

fn info(api: &Api, headers: &HeaderMap, channel: &str) -> Response {
    if let Err(refused) = negotiate(headers).and_then(|()| check_channel_id(channel)) {
        return refused.into_response();
    }
    match api.registrar.channel_info(channel) {
        Some(info) => no_store(json(StatusCode::OK, &ChannelInfoJson::from(info))),
        None => error(StatusCode::NOT_FOUND, RemoveError::NotExist),
    }
}

async fn join(api: &Api, headers: &HeaderMap, body: Body) -> Response {
    let (file, truncated) = form_file(api, headers, body, FORM_DATA_CONFIG_BLOCK_KEY).await;
    let response = match file.map(|f| decode_block(&f)) {
        Ok(Ok(block)) => join_block(api, block).await,
        Ok(Err(message)) => error(StatusCode::BAD_REQUEST, message),
        Err(response) => response,
    };
    close_if(truncated, response)
}

/// The request's one multipart file part `key` (after `Accept` negotiation), or the
/// answer to send instead; and whether the body was longer than the limit.
async fn form_file(
    api: &Api,
    headers: &HeaderMap,
    body: Body,
    key: &str,
) -> (Result<Vec<u8>, Response>, bool) {
    if let Err(refused) = negotiate(headers) {
        return (Err(refused.into_response()), false);
    }
    let content_type = header_values(headers, header::CONTENT_TYPE)
        .into_iter()
        .next()
        .unwrap_or_default();
    let boundary = match boundary(&content_type) {
        Ok(boundary) => boundary,
        Err(message) => return (Err(error(StatusCode::BAD_REQUEST, message)), false),
    };
    let Ok((data, truncated)) = read_limited(body, api.max_request_body_size).await else {
        let e = multipart::FormError::Read(multipart::ReadError::UnexpectedEof);
        return (
            Err(error(StatusCode::BAD_REQUEST, format!("{READ_FORM}: {e}"))),
            false,
        );
    };
    let body = multipart::Body {
        data: &data,
        truncated,
    };
    let file = read_file_part(&body, &boundary, key).map_err(|m| error(StatusCode::BAD_REQUEST, m));
    (file, truncated)
}

/// The multipart boundary a Content-Type names (empty when none); Err with Fabric's
/// answer text.
fn boundary(content_type: &str) -> Result<String, String> {
    match multipart::parse_media_type(content_type) {
        Ok((_, mut params)) => Ok(params.remove("boundary").unwrap_or_default()),
        Err(e) => Err(format!("cannot parse Mime media type: {e}")),
    }
}

/// A join request's Content-Type and body (`data` what arrived within the size
/// limit, `truncated` whether more was sent) taken as `join` takes them, up to the
/// join block's checks: the channel it is for, or Fabric's answer text.
#[cfg(feature = "fuzzing")]
pub(crate) fn parse_join(
    content_type: &str,
    data: &[u8],
    truncated: bool,
) -> Result<String, String> {
    let body = multipart::Body { data, truncated };
    let file = read_file_part(&body, &boundary(content_type)?, FORM_DATA_CONFIG_BLOCK_KEY)?;
    let block = decode_block(&file)?;
    joinblock::validate_join_block(&block).map_err(|e| format!("invalid join block: {e}"))
}

/// As Go's MaxBytesReader: the rest of a body over the limit is not read.
fn close_if(truncated: bool, mut response: Response) -> Response {
    if truncated {
        (response.headers_mut()).insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn join_block(api: &Api, block: Block) -> Response {
    if let Err(e) = joinblock::validate_join_block(&block) {
        return error(StatusCode::BAD_REQUEST, format!("invalid join block: {e}"));
    }
    let registrar = api.registrar.clone();
    let bytes = block.encode_to_vec();
    // Writing the ledger and opening the channel's core instances block.
    let joined = tokio::task::spawn_blocking(move || registrar.join(&bytes)).await;
    let (channel, joined) = match joined {
        Ok(Ok(joined)) => joined,
        Ok(Err(e)) => return join_error(e),
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot join: {e}"),
            );
        }
    };
    if matches!(joined, Joined::AlreadyMember) {
        let message = "cannot join: channel already exists";
        return not_allowed(message.into(), "GET, DELETE");
    }
    tracing::info!(
        channel,
        "joined channel through the channel participation API"
    );
    let Some(info) = api.registrar.channel_info(&channel) else {
        // Removed again before we could answer.
        return error(StatusCode::NOT_FOUND, RemoveError::NotExist);
    };
    let mut response = json(StatusCode::CREATED, &ChannelInfoJson::from(info));
    if let Ok(location) = HeaderValue::from_str(&url(&channel)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

const READ_FORM: &str = "cannot read form from request body";

/// The form's one file part `key`, as Fabric's `multipartFormDataBodyTo*` read it;
/// Err with Fabric's answer text.
fn read_file_part(
    body: &multipart::Body<'_>,
    boundary: &str,
    key: &str,
) -> Result<Vec<u8>, String> {
    let mut form = multipart::read_form(body, boundary).map_err(|e| format!("{READ_FORM}: {e}"))?;
    let Some(file) = form.files.remove(key) else {
        return Err(format!("form does not contains part key: {key}"));
    };
    if !form.files.is_empty() || !form.values.is_empty() {
        return Err("form contains too many parts".into());
    }
    Ok(file)
}

/// The block of the `config-block` file part; Err with Fabric's answer text.
fn decode_block(file: &[u8]) -> Result<Block, String> {
    // Go's protobuf text for what does not decode (prost's differ).
    Block::decode(file).map_err(|_| {
        format!(
            "cannot unmarshal file part {FORM_DATA_CONFIG_BLOCK_KEY} into a block: proto: cannot parse invalid wire-format data"
        )
    })
}

/// The body up to `limit` bytes, and whether more was sent (Go's `MaxBytesReader`).
async fn read_limited(body: Body, limit: usize) -> Result<(Vec<u8>, bool), axum::Error> {
    let mut stream = body.into_data_stream();
    let mut data = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if data.len() + chunk.len() > limit {
            data.extend_from_slice(&chunk[..limit - data.len()]);
            return Ok((data, true));
        }
        data.extend_from_slice(&chunk);
    }
    Ok((data, false))
}

/// Fabric's `sendJoinError`.
fn join_error(e: JoinError) -> Response {
    if matches!(e, JoinError::SystemChannelExists) {
        return not_allowed(format!("cannot join: {e}"), "GET");
    }
    let status = match e {
        JoinError::AppChannelsExist => StatusCode::FORBIDDEN,
        JoinError::PendingRemoval => StatusCode::CONFLICT,
        JoinError::RemovalFailure => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, format!("cannot join: {e}"))
}

async fn remove(api: &Api, headers: &HeaderMap, channel: &str) -> Response {
    if let Err(refused) = negotiate(headers).and_then(|()| check_channel_id(channel)) {
        return refused.into_response();
    }
    let Err(e) = api.registrar.remove(channel).await else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let status = match e {
        RemoveError::SystemChannelExists => {
            return not_allowed(format!("cannot remove: {e}"), "GET");
        }
        RemoveError::NotExist => StatusCode::NOT_FOUND,
        RemoveError::PendingRemoval => StatusCode::CONFLICT,
        RemoveError::SoloSystemChannel { .. } => StatusCode::BAD_REQUEST,
        RemoveError::Ledger { .. } => {
            tracing::error!(channel, "removing the channel: {e}");
            StatusCode::BAD_REQUEST
        }
    };
    error(status, format!("cannot remove: {e}"))
}

/// A request refused before the registrar is asked.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("response Content-Type is application/json only")]
    NotAcceptable,
    #[error("invalid channel ID: {0}")]
    ChannelId(#[from] ChannelIdError),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let status = match self {
            Refused::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Refused::ChannelId(_) => StatusCode::BAD_REQUEST,
        };
        error(status, self)
    }
}

/// Fabric's `negotiateContentType`: JSON only, anything that admits it is fine.
fn negotiate(headers: &HeaderMap) -> Result<(), Refused> {
    let accept = header_values(headers, header::ACCEPT)
        .into_iter()
        .next()
        .unwrap_or_default();
    let acceptable = accept.is_empty()
        || accept.split(',').any(|option| {
            ["application/json", "application/*", "*/*"]
                .iter()
                .any(|t| option.contains(t))
        });
    if acceptable {
        Ok(())
    } else {
        Err(Refused::NotAcceptable)
    }
}

fn check_channel_id(channel: &str) -> Result<(), Refused> {
    Ok(validate_channel_id(channel)?)
}

fn header_values(headers: &HeaderMap, name: header::HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// Go's `json.Encoder` output, as Fabric sends it: `<`, `>`, `&`, U+2028 and U+2029
/// escaped, and a closing newline.
fn go_json<T: Serialize>(value: &T) -> String {
    let plain = serde_json::to_string(value).expect("plain data serializes");
    let mut out = String::with_capacity(plain.len() + 1);
    for c in plain.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let mut response = (status, go_json(value)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[derive(Serialize)]
struct ErrorResponse {
    error: String,
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    let body = ErrorResponse {
        error: message.to_string(),
    };
    json(status, &body)
}

fn not_allowed(message: String, allow: &'static str) -> Response {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, message);
    (response.headers_mut()).insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn no_store(mut response: Response) -> Response {
    (response.headers_mut()).insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Go's `http.Redirect`: a short HTML body for GET and HEAD.
fn redirect(status: StatusCode, location: &'static str, method: &Method) -> Response {
    let mut response = if *method == Method::GET || *method == Method::HEAD {
        let reason = status.canonical_reason().unwrap_or_default();
        let mut response =
            (status, format!("<a href=\"{location}\">{reason}</a>.\n\n")).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    } else {
        status.into_response()
    };
    (response.headers_mut()).insert(header::LOCATION, HeaderValue::from_static(location));
    response
}
