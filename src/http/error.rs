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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Service(err) => err.into_response(),
            ApiError::Status(status, body) => (status, Json(body)).into_response(),
            ApiError::Limited(info) => {
                let body = ErrorBody::new("Rate limit exceeded.").hint(format!(
                    "Wait {} seconds (see Retry-After) before calling again; do not retry in a tight loop.",
                    info.retry_after_secs()
                ));
                let mut res = (StatusCode::TOO_MANY_REQUESTS, info, Json(body)).into_response();
                res.headers_mut()
                    .insert("retry-after", HeaderValue::from(info.retry_after_secs()));
                res
            }
        }
    }
}
