//! Errors of the HTTP layer: service errors, transport refusals and rate limits, all as
//! `{error, hint}` JSON.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use app::model::ErrorBody;
use app::server::ServiceError;

use super::limits::RateInfo;

/// Any refusal a handler returns.
#[derive(Debug)]
pub enum ApiError {
    /// From a service function.
    Service(ServiceError),
    /// A transport-level refusal (404 route, 405, 413, 415, malformed JSON…).
    Status(StatusCode, ErrorBody),
    /// 429 with rate headers and `Retry-After`.
    Limited(RateInfo),
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        ApiError::Service(err)
    }
}

impl ApiError {
    /// A refusal with a status, message and hint.
    pub fn status(status: StatusCode, error: &str, hint: &str) -> Self {
        ApiError::Status(status, ErrorBody::new(error).hint(hint))
    }
}

impl ApiError {
    /// The status and body the caller reads (a transport without headers, MCP, gets the wait
    /// of a 429 in `retry_after_seconds`).
    pub fn parts(self) -> (StatusCode, ErrorBody) {
        match self {
            ApiError::Service(err) => {
                if let ServiceError::Internal(cause) = &err {
                    tracing::error!(error = format!("{cause:#}"), "request failed");
                }
                let mut body = err.body();
                if let ServiceError::Exhausted { retry_after, .. } = &err {
                    body = body.with("retry_after_seconds", *retry_after);
                }
                (err.status(), body)
            }
            ApiError::Status(status, body) => (status, body),
            ApiError::Limited(info) => (StatusCode::TOO_MANY_REQUESTS, limited_body(&info)),
        }
    }
}

fn limited_body(info: &RateInfo) -> ErrorBody {
    ErrorBody::new("Rate limit exceeded.")
        .hint(format!(
            "Wait {} seconds (see Retry-After) before calling again; do not retry in a tight loop.",
            info.retry_after_secs()
        ))
        .with("retry_after_seconds", info.retry_after_secs())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Service(err) => err.into_response(),
            ApiError::Status(status, body) => (status, Json(body)).into_response(),
            ApiError::Limited(info) => {
                let mut res = (
                    StatusCode::TOO_MANY_REQUESTS,
                    info,
                    Json(limited_body(&info)),
                )
                    .into_response();
                res.headers_mut()
                    .insert("retry-after", HeaderValue::from(info.retry_after_secs()));
                res
            }
        }
    }
}
