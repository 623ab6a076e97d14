//! The one error body every JSON endpoint returns: `{error, hint?, details?, …}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One invalid field of a request body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    /// The problem as a sentence without its full stop: "Name must be at least 2 characters".
    /// A message that is already a sentence (it starts with a capital) stands alone.
    pub fn plain(&self) -> String {
        if self.message.starts_with(|c: char| c.is_uppercase()) {
            return self.message.trim_end_matches('.').to_owned();
        }
        format!("{} {}", field_label(&self.field), self.message)
    }
}

/// A field's name in words: `webhook_url` is "Webhook URL", `proxy.allow` is "Proxy allow".
pub fn field_label(field: &str) -> String {
    let words: Vec<String> = field
        .split(['_', '.', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| match w {
            "url" => "URL".to_owned(),
            "id" => "ID".to_owned(),
            "ip" => "IP".to_owned(),
            w => w.to_owned(),
        })
        .collect();
    let text = words.join(" ");
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "The field".to_owned(),
    }
}

/// Error body: a sentence for humans and agents, a hint saying what to do next, per-field
/// details for validation errors, and route-specific extra fields (e.g. `tool_id` on a 409).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldError>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ErrorBody {
    /// An error with a message only.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            hint: None,
            details: None,
            extra: Map::new(),
        }
    }

    /// Adds the next-step hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds per-field validation details.
    pub fn details(mut self, details: Vec<FieldError>) -> Self {
        self.details = Some(details);
        self
    }

    /// Adds a route-specific field such as `tool_id` or `retry_after`.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)
    }
}

/// The error of every dashboard server function, as the browser receives it: the status the
/// UI decides on, the sentence and hint it shows, and the fields it marks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// The HTTP status of the answer; [`RpcError::UNREACHED`] when no answer was read.
    pub status: u16,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

impl RpcError {
    /// Status of an error that did not come from the server (network, unreadable answer).
    pub const UNREACHED: u16 = 0;

    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            hint: None,
            fields: Vec::new(),
        }
    }

    /// Adds the next-step hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The error body of a service error, with its status.
    pub fn from_body(status: u16, body: ErrorBody) -> Self {
        Self {
            status,
            message: body.error,
            hint: body.hint,
            fields: body.details.unwrap_or_default(),
        }
    }

    /// The session is gone: the page goes to sign-in.
    pub fn is_signed_out(&self) -> bool {
        self.status == 401
    }

    /// The message for one field, when the error names it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.field == name)
            .map(|f| f.message.as_str())
    }

    /// Message and hint, as one text for a toast or an inline message.
    pub fn text(&self) -> String {
        match &self.hint {
            Some(hint) => format!("{} {hint}", self.message),
            None => self.message.clone(),
        }
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl std::error::Error for RpcError {}

/// Failures of the server-function machinery itself (transport, encoding, arguments).
impl leptos::server_fn::error::FromServerFnError for RpcError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        use leptos::server_fn::error::ServerFnErrorErr as E;
        match value {
            E::Request(_) => Self::new(Self::UNREACHED, "The server could not be reached.")
                .hint("Check your connection and retry."),
            // On the server this is the request that could not be read (its body stopped
            // arriving, or was too large); in the browser, the server's answer.
            #[cfg(feature = "ssr")]
            E::Deserialization(_) => Self::new(400, "The request could not be read.")
                .hint("Send the whole form again."),
            #[cfg(not(feature = "ssr"))]
            E::Deserialization(_) => Self::new(
                Self::UNREACHED,
                "The server's answer could not be read.",
            )
            .hint("Reload the page: the dashboard may have been upgraded."),
            E::Args(detail) | E::MissingArg(detail) => Self::new(
                400,
                format!("The request's fields could not be read ({detail})."),
            )
            .hint("Send every field the form has, numbers as digits."),
            _ => Self::new(500, "Internal server error.").hint(
                "Retry shortly; if it persists, tell the AgentKey operator the time of the failure.",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};

    use super::*;

    #[test]
    fn machinery_failures_get_a_status_the_ui_can_act_on() {
        let offline = RpcError::from_server_fn_error(ServerFnErrorErr::Request("reset".into()));
        assert_eq!(offline.status, RpcError::UNREACHED);
        assert!(!offline.is_signed_out());
        let args = RpcError::from_server_fn_error(ServerFnErrorErr::Args("approvals".into()));
        assert_eq!(args.status, 400);
        assert!(args.text().contains("approvals"), "{}", args.text());
        let other = RpcError::from_server_fn_error(ServerFnErrorErr::ServerError("x".into()));
        assert_eq!(other.status, 500);
        assert!(
            !other.text().contains('x'),
            "no internal detail: {}",
            other.text()
        );
    }

    #[test]
    fn field_problems_read_as_plain_sentences() {
        let plain = |field: &str, message: &str| {
            FieldError {
                field: field.into(),
                message: message.into(),
            }
            .plain()
        };
        assert_eq!(
            plain("name", "must be at least 2 characters"),
            "Name must be at least 2 characters"
        );
        assert_eq!(plain("webhook_url", "is refused"), "Webhook URL is refused");
        assert_eq!(
            plain("docs_url", "Could not read the docs page."),
            "Could not read the docs page"
        );
        assert_eq!(field_label(""), "The field");
    }

    #[test]
    fn a_service_body_keeps_its_hint_and_fields() {
        let body = ErrorBody::new("Validation error (email: not an address).")
            .hint("Enter an address.")
            .details(vec![FieldError {
                field: "email".into(),
                message: "not an address".into(),
            }]);
        let err = RpcError::from_body(400, body);
        assert_eq!(err.field("email"), Some("not an address"));
        assert_eq!(err.field("name"), None);
        assert_eq!(
            err.text(),
            "Validation error (email: not an address). Enter an address."
        );
        let signed_out = RpcError::new(401, "You are signed out.");
        assert!(signed_out.is_signed_out());
    }
}
