//! Reading agent request bodies: JSON only (415), at most 8 KiB (413, also for bodies without
//! a length), valid JSON (400), then typed fields with per-field errors (400).

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Map, Value};

use app::model::{FieldError, RequestAccessBody, SuggestGuideBody, SuggestToolBody};
use app::server::ServiceError;

use super::error::ApiError;

/// Largest accepted agent request body.
pub const MAX_BODY: usize = 8 * 1024;

/// A body type read field by field, so errors can name the field.
pub trait FromJsonBody: Sized {
    fn from_fields(f: &mut Fields<'_>) -> Self;
}

/// Typed access to a JSON object's fields, collecting errors.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// Reads the fields of `obj` (a body, or an MCP tool's arguments).
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        Fields {
            obj,
            errors: Vec::new(),
        }
    }

    /// `typed` when every field read so far was valid, else a 400 listing the fields.
    pub fn finish<T>(self, typed: T, hint: &str) -> Result<T, ServiceError> {
        if self.errors.is_empty() {
            Ok(typed)
        } else {
            Err(ServiceError::validation(self.errors, hint))
        }
    }

    /// A required string field.
    pub fn string(&mut self, name: &str) -> String {
        match self.obj.get(name) {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => {
                self.fail(name, "is required");
                String::new()
            }
            Some(other) => {
                self.fail(name, &format!("must be a string, not {}", kind(other)));
                String::new()
            }
        }
    }

    /// An optional string field (`null` counts as absent).
    pub fn optional_string(&mut self, name: &str) -> Option<String> {
        match self.obj.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            None | Some(Value::Null) => None,
            Some(other) => {
                self.fail(name, &format!("must be a string, not {}", kind(other)));
                None
            }
        }
    }

    fn fail(&mut self, field: &str, message: &str) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        });
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl FromJsonBody for RequestAccessBody {
    fn from_fields(f: &mut Fields<'_>) -> Self {
        RequestAccessBody {
            reason: f.string("reason"),
            duration: f.optional_string("duration"),
        }
    }
}

impl FromJsonBody for SuggestToolBody {
    fn from_fields(f: &mut Fields<'_>) -> Self {
        SuggestToolBody {
            name: f.string("name"),
            url: f.optional_string("url"),
            reason: f.string("reason"),
        }
    }
}

impl FromJsonBody for SuggestGuideBody {
    fn from_fields(f: &mut Fields<'_>) -> Self {
        SuggestGuideBody {
            learned: f.string("learned"),
            why: f.string("why"),
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn too_large() -> ApiError {
    ApiError::status(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body is too large.",
        &format!(
            "Bodies are limited to {MAX_BODY} bytes; shorten the text fields (GET this URL for the limits)."
        ),
    )
}

/// Reads and types a JSON body under the agent API's rules. `hint` is the route's schema hint.
pub async fn read_json<T: FromJsonBody>(
    headers: &HeaderMap,
    body: Body,
    hint: &str,
) -> Result<T, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json.",
            "Send the body as JSON with the header `Content-Type: application/json`.",
        ));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let bytes = http_body_util::Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|err| {
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                too_large()
            } else if super::serve::is_body_timeout(err.as_ref()) {
                ApiError::status(
                    StatusCode::REQUEST_TIMEOUT,
                    "The request body did not arrive in time.",
                    "Send the whole body right after the headers and retry.",
                )
            } else {
                ApiError::status(
                    StatusCode::BAD_REQUEST,
                    "The request body could not be read.",
                    "Send the whole body and retry.",
                )
            }
        })?
        .to_bytes();
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| {
        ApiError::status(
            StatusCode::BAD_REQUEST,
            "Malformed JSON request body.",
            &format!("The body is not valid JSON. {hint}"),
        )
    })?;
    let Value::Object(obj) = &value else {
        return Err(ServiceError::validation(
            vec![FieldError {
                field: "body".into(),
                message: "must be a JSON object".into(),
            }],
            hint,
        )
        .into());
    };
    let mut fields = Fields::new(obj);
    let typed = T::from_fields(&mut fields);
    Ok(fields.finish(typed, hint)?)
}
