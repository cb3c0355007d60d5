//! Fabric 3.x's channel update (`osnadmin channel update`): PUT
//! `/participation/v1/channels` with a multipart `config-update-envelope` file, a
//! CONFIG_UPDATE envelope. The channel's message processor checks it exactly as for
//! Broadcast, the chain orders the CONFIG envelope the orderer signs for it, and the
//! answer is 201 with the channel's info (its height before the config block).

use super::{Api, ChannelInfoJson, close_if, error, form_file, json, not_allowed, url};
use crate::consensus::ChannelStatus;
use crate::msgprocessor::Message;
use crate::protoutil::now_unix_nanos;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use fabric_protos::common::{
    ChannelHeader, ConfigUpdate, ConfigUpdateEnvelope, Envelope, HeaderType, Payload,
};
use prost::Message as _;

const FORM_DATA_CONFIG_UPDATE_ENVELOPE_KEY: &str = "config-update-envelope";

pub(super) async fn update(api: &Api, headers: &HeaderMap, body: Body) -> Response {
    let (file, truncated) =
        form_file(api, headers, body, FORM_DATA_CONFIG_UPDATE_ENVELOPE_KEY).await;
    let response = match file {
        Err(response) => response,
        Ok(file) => match Envelope::decode(file.as_slice()) {
            Err(_) => error(
                StatusCode::BAD_REQUEST,
                format!(
                    "cannot unmarshal file part {FORM_DATA_CONFIG_UPDATE_ENVELOPE_KEY} into an envelope: proto: cannot parse invalid wire-format data"
                ),
            ),
            Ok(envelope) => match validate_update_envelope(&envelope) {
                Err(e) => error(
                    StatusCode::BAD_REQUEST,
                    format!("invalid config update envelope: {e}"),
                ),
                Ok((channel, chdr)) => apply(api, &channel, &chdr, &envelope).await,
            },
        },
    };
    close_if(truncated, response)
}

/// Fabric's `ValidateUpdateConfigEnvelope`: a CONFIG_UPDATE envelope naming a
/// channel; the channel its ConfigUpdate is for, and the envelope's channel header.
fn validate_update_envelope(envelope: &Envelope) -> Result<(String, ChannelHeader), String> {
    let payload = Payload::decode(envelope.payload.as_ref()).map_err(|_| "bad payload")?;
    let header = payload.header.as_ref().ok_or("bad header")?;
    if header.channel_header.is_empty() {
        return Err("bad header".into());
    }
    let chdr = ChannelHeader::decode(header.channel_header.as_ref())
        .map_err(|_| "could not unmarshall channel header")?;
    if chdr.r#type != HeaderType::ConfigUpdate as i32 {
        return Err("bad type".into());
    }
    if chdr.channel_id.is_empty() {
        return Err("empty channel id".into());
    }
    let update_env = ConfigUpdateEnvelope::decode(payload.data.as_ref())
        .map_err(|e| format!("error unmarshalling ConfigUpdateEnvelope: {e}"))?;
    let update = ConfigUpdate::decode(update_env.config_update.as_ref())
        .map_err(|e| format!("error unmarshalling ConfigUpdate: {e}"))?;
    Ok((update.channel_id, chdr))
}

/// Fabric's `Registrar.UpdateChannel` and the handler's `sendUpdateError`.
async fn apply(api: &Api, channel: &str, chdr: &ChannelHeader, envelope: &Envelope) -> Response {
    let registrar = &api.registrar;
    if registrar.system_channel_id().is_some() {
        return not_allowed("cannot update: system channel exists".into(), "GET");
    }
    let Some(support) = registrar.get(channel) else {
        return match registrar.channel_info(channel) {
            Some(info) if info.status == ChannelStatus::Failed => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot update: channel removal failure",
            ),
            Some(_) => error(
                StatusCode::CONFLICT,
                "cannot update: channel pending removal",
            ),
            None => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "cannot update: channel does not exist",
            ),
        };
    };
    let failed = |e: String| {
        error(
            StatusCode::BAD_REQUEST,
            format!("cannot update: failed update config of channel {channel}: {e}"),
        )
    };
    let message = match support.processor.process(chdr, envelope, now_unix_nanos()) {
        Ok(Message::Config {
            envelope,
            update,
            config_seq,
        }) => (envelope, update, config_seq),
        Ok(Message::Normal { .. }) => return failed("not a config update".into()),
        Err(rejection) => return failed(rejection.info),
    };
    let (config, update, config_seq) = message;
    if let Err(e) = support.chain.configure(config, update, config_seq).await {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "cannot update: failed update config of channel {channel} with SERVICE_UNAVAILABLE: rejected by Configure: {e}"
            ),
        );
    }
    tracing::info!(
        channel,
        "config update through the channel participation API"
    );
    let Some(info) = registrar.channel_info(channel) else {
        return error(StatusCode::NOT_FOUND, "channel does not exist");
    };
    let mut response = json(StatusCode::CREATED, &ChannelInfoJson::from(info));
    if let Ok(location) = HeaderValue::from_str(&url(channel)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}
