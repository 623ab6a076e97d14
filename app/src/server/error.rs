//! The one error type of the service layer and its HTTP mapping.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::model::{ErrorBody, FieldError};
use crate::server::store::StoreError;

/// Result of a service function.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// What went wrong, already phrased for the caller. Each variant names its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 400: the input is invalid; `details` lists the fields.
    #[error("{0}")]
    Invalid(ErrorBody),
    /// 401: no or unknown credentials.
    #[error("{0}")]
    Unauthenticated(ErrorBody),
    /// 403: authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(ErrorBody),
    /// 404: no such object in the caller's organization.
    #[error("{0}")]
    NotFound(ErrorBody),
    /// 409: the object's state does not allow this.
    #[error("{0}")]
    Conflict(ErrorBody),
    /// 502: a service this one depends on (the model endpoint) failed; the body says how.
    #[error("{0}")]
    BadGateway(ErrorBody),
    /// 503: the feature is not set up on this server; the hint says how to turn it on.
    #[error("{0}")]
    Unavailable(ErrorBody),
    /// 429: a budget is spent; `retry_after` seconds until it refills.
    #[error("{body}")]
    Exhausted { body: ErrorBody, retry_after: u64 },
    /// 500: a fault on our side; the body says nothing more, the log has the cause.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ServiceError {
    /// A 400 from a list of field errors; the message says the first in plain words ("Name
    /// must be at least 2 characters.") and counts the rest.
    pub fn validation(details: Vec<FieldError>, hint: &str) -> Self {
        let message = match details.as_slice() {
            [] => "The request is not valid.".to_owned(),
            [one] => format!("{}.", one.plain()),
            [one, rest @ ..] => format!(
                "{}; {} more field{} to fix.",
                one.plain(),
                rest.len(),
                if rest.len() == 1 { "" } else { "s" }
            ),
        };
        ServiceError::Invalid(ErrorBody::new(message).hint(hint).details(details))
    }

    /// A 400 for one field.
    pub fn field(field: &str, message: impl Into<String>, hint: &str) -> Self {
        Self::validation(
            vec![FieldError {
                field: field.to_owned(),
                message: message.into(),
            }],
            hint,
        )
    }

    /// 404 with a message and hint.
    pub fn not_found(error: &str, hint: &str) -> Self {
        ServiceError::NotFound(ErrorBody::new(error).hint(hint))
    }

    /// 409 with a message and hint.
    pub fn conflict(error: &str, hint: &str) -> Self {
        ServiceError::Conflict(ErrorBody::new(error).hint(hint))
    }

    /// 403 with a message and hint.
    pub fn forbidden(error: &str, hint: &str) -> Self {
        ServiceError::Forbidden(ErrorBody::new(error).hint(hint))
    }

    /// The same error with `prefix` before its message (a 5xx keeps its generic body).
    pub fn prefixed(self, prefix: &str) -> Self {
        let add = |mut body: ErrorBody| {
            body.error = format!("{prefix}{}", body.error);
            body
        };
        match self {
            ServiceError::Invalid(b) => ServiceError::Invalid(add(b)),
            ServiceError::Unauthenticated(b) => ServiceError::Unauthenticated(add(b)),
            ServiceError::Forbidden(b) => ServiceError::Forbidden(add(b)),
            ServiceError::NotFound(b) => ServiceError::NotFound(add(b)),
            ServiceError::Conflict(b) => ServiceError::Conflict(add(b)),
            ServiceError::BadGateway(b) => ServiceError::BadGateway(add(b)),
            ServiceError::Unavailable(b) => ServiceError::Unavailable(add(b)),
            ServiceError::Exhausted { body, retry_after } => ServiceError::Exhausted {
                body: add(body),
                retry_after,
            },
            internal @ ServiceError::Internal(_) => internal,
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ServiceError::Invalid(_) => StatusCode::BAD_REQUEST,
            ServiceError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Exhausted { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body sent to the caller; internal errors get a generic one.
    pub fn body(&self) -> ErrorBody {
        match self {
            ServiceError::Invalid(b)
            | ServiceError::Unauthenticated(b)
            | ServiceError::Forbidden(b)
            | ServiceError::NotFound(b)
            | ServiceError::Conflict(b)
            | ServiceError::BadGateway(b)
            | ServiceError::Unavailable(b)
            | ServiceError::Exhausted { body: b, .. } => b.clone(),
            ServiceError::Internal(_) => ErrorBody::new("Internal server error.")
                .hint("Retry shortly; if it persists, tell the AgentKey operator the time of the failure."),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Invalid(message) => ServiceError::field(
                "text",
                message,
                "Remove NUL (\\u0000) characters from the text.",
            ),
            // Services that expect these decide on them before `?`; reaching here means the
            // row vanished or collided in a way the service did not foresee.
            other => ServiceError::Internal(
                anyhow::Error::new(other).context("database operation failed"),
            ),
        }
    }
}

/// Transaction control (`commit`, `rollback`) reports the driver's error directly.
impl From<sqlx::Error> for ServiceError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::from(err).into()
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        if let ServiceError::Internal(err) = &self {
            // Logged once here, at the boundary; the request id comes from the span.
            tracing::error!(error = format!("{err:#}"), "request failed");
        }
        let mut res = (self.status(), axum::Json(self.body())).into_response();
        if let ServiceError::Exhausted { retry_after, .. } = &self {
            res.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(*retry_after));
        }
        res
    }
}
