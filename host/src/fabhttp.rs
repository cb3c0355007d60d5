//! What Fabric's HTTP servers (common/fabhttp, core/middleware) share, for the admin
//! and the operations listeners.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// As fabhttp's WithRequestID: every answer carries a fresh random (version 4) UUID
/// in `X-Request-Id`.
pub async fn request_id(mut response: Response) -> Response {
    let mut id: [u8; 16] = rand::random();
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    let [a, b, c, d, e] = [&id[..4], &id[4..6], &id[6..8], &id[8..10], &id[10..]].map(hex::encode);
    if let Ok(value) = HeaderValue::from_str(&format!("{a}-{b}-{c}-{d}-{e}")) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Go's `http.NotFound`, which Fabric's servers answer for a path they do not serve.
pub async fn not_found() -> Response {
    let mut response = (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
