//! `/healthz` as Fabric's (fabric-lib-go healthz): every registered checker runs on
//! each GET; 200 `{"status":"OK","time":...}` when none fails, else 503 with
//! `"status":"Service Unavailable"` and one `failed_checks` entry per failure.

use crate::protoutil::rfc3339_nano;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;

/// One failed check, as Fabric's `FailedCheck`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedCheck {
    pub component: String,
    pub reason: String,
}

/// Something whose health `/healthz` reports. One checker may report several
/// failures (one per channel, say), unlike Fabric's one error per component.
pub trait HealthChecker: Send + Sync {
    fn check(&self) -> Vec<FailedCheck>;
}

#[derive(Serialize)]
struct HealthStatus {
    status: &'static str,
    time: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failed_checks: Vec<FailedCheck>,
}

/// The answer to `method /healthz` given `checkers`.
pub fn answer(method: &Method, checkers: &[Arc<dyn HealthChecker>]) -> Response {
    if method != Method::GET {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let failed_checks: Vec<FailedCheck> = checkers.iter().flat_map(|c| c.check()).collect();
    let (code, status) = if failed_checks.is_empty() {
        (StatusCode::OK, "OK")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
    };
    let body = HealthStatus {
        status,
        time: now_rfc3339(),
        failed_checks,
    };
    let json = serde_json::to_vec(&body).expect("plain data serializes");
    (code, [(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// Now as Go's `time.Time` marshals to JSON: RFC 3339 with nanoseconds, in UTC.
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339_nano(now.as_secs(), now.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    struct Fixed(Vec<FailedCheck>);
    impl HealthChecker for Fixed {
        fn check(&self) -> Vec<FailedCheck> {
            self.0.clone()
        }
    }

    async fn json(response: Response) -> (StatusCode, serde_json::Value) {
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn ok_without_failures_503_with_them() {
        let healthy: Arc<dyn HealthChecker> = Arc::new(Fixed(vec![]));
        let (status, body) = json(answer(&Method::GET, std::slice::from_ref(&healthy))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "OK");
        assert!(body.get("failed_checks").is_none(), "{body}");
        assert!(body["time"].as_str().unwrap().ends_with('Z'), "{body}");

        let failing: Arc<dyn HealthChecker> = Arc::new(Fixed(vec![FailedCheck {
            component: "consensus".into(),
            reason: "channel c: chain halted".into(),
        }]));
        let (status, body) = json(answer(&Method::GET, &[healthy, failing])).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "Service Unavailable");
        assert_eq!(
            body["failed_checks"],
            serde_json::json!([{"component": "consensus", "reason": "channel c: chain halted"}])
        );
    }

    #[test]
    fn time_as_go_marshals_it() {
        assert_eq!(rfc3339_nano(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_709_251_199, 120_000_000),
            "2024-02-29T23:59:59.12Z"
        );
        assert_eq!(
            rfc3339_nano(951_868_800, 5),
            "2000-03-01T00:00:00.000000005Z"
        );
    }

    #[test]
    fn other_methods_are_405() {
        let response = answer(&Method::POST, &[]);
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
