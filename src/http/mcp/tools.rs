//! The MCP tools AgentKey offers: names, what the model reads about each, their input and
//! output schemas (generated from the Rust types the answers are built from) and their
//! annotations. Listed in a fixed order; which of them an agent sees follows its grants.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use app::model::{CredentialResponse, RequestCreated, SuggestionCreated, ToolList};

/// Arguments of `request_access`.
#[derive(JsonSchema)]
#[expect(
    dead_code,
    reason = "read field by field for REST-identical errors; here for the schema"
)]
pub struct RequestAccessArgs {
    /// The `id` of a tool from `list_tools`.
    tool_id: String,
    /// Why you need it, for the human who decides (5–500 characters).
    reason: String,
    /// How long you need it: 30m, 8h, 7d or standing (optional; the tool's default).
    duration: Option<String>,
}

/// Arguments of `suggest_tool`.
#[derive(JsonSchema)]
#[expect(
    dead_code,
    reason = "read field by field for REST-identical errors; here for the schema"
)]
pub struct SuggestToolArgs {
    /// The tool's name, e.g. "Linear".
    name: String,
    /// Its site or API domain, e.g. "linear.app" (optional; used to spot duplicates).
    url: Option<String>,
    /// What you would do with it (5–500 characters).
    reason: String,
}

/// Arguments of the tools that name one catalog tool.
#[derive(JsonSchema)]
#[expect(
    dead_code,
    reason = "read field by field for REST-identical errors; here for the schema"
)]
pub struct ToolIdArgs {
    /// The `id` of a tool from `list_tools`.
    tool_id: String,
}

/// Arguments of `call_tool_api`.
#[derive(JsonSchema)]
#[expect(
    dead_code,
    reason = "read field by field for REST-identical errors; here for the schema"
)]
pub struct CallApiArgs {
    /// The `id` of a proxy-mode tool from `list_tools` you hold a grant for.
    tool_id: String,
    /// The HTTP method: GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS.
    method: String,
    /// The path of the tool's own API, from its root, e.g. "/repos/acme/app/issues".
    path: String,
    /// Query parameters, e.g. {"state": "open"}.
    query: Option<BTreeMap<String, String>>,
    /// Extra request headers, e.g. {"Accept": "application/json"}; never a credential.
    headers: Option<BTreeMap<String, String>>,
    /// The request body: a JSON value (sent as JSON) or a string (sent as it is).
    body: Option<Value>,
}

/// Arguments of `suggest_instructions`.
#[derive(JsonSchema)]
#[expect(
    dead_code,
    reason = "read field by field for REST-identical errors; here for the schema"
)]
pub struct SuggestGuideArgs {
    /// The `id` of a tool you hold a grant for.
    tool_id: String,
    /// What the next agent should know about this tool (5–2000 characters).
    learned: String,
    /// Why it matters (5–2000 characters).
    why: String,
}

/// What `call_tool_api` returns: the tool API's answer, as AgentKey passed it back.
#[derive(Serialize, JsonSchema)]
pub struct ApiAnswer {
    /// The HTTP status the tool's API answered with.
    pub status: u16,
    /// Its response headers (any echo of the secret replaced by `[redacted]`).
    pub headers: BTreeMap<String, String>,
    /// The body as text, when it is UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The body in base64, when it is not text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

/// A schema as MCP wants it: an object, inline (no `$ref`), without a `$schema` key (2020-12
/// is the default) so that every client's validator reads it.
fn schema<T: JsonSchema>(output: bool) -> Arc<JsonObject> {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    if output {
        settings = settings.for_serialize();
    }
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut object = match schema.to_value() {
        Value::Object(object) => object,
        _ => JsonObject::new(),
    };
    // The tool's description speaks to the model; the type's doc comment is for developers.
    object.remove("title");
    object.remove("description");
    object.insert("type".into(), "object".into());
    let mut root = Value::Object(object);
    objects_only(&mut root);
    match root {
        Value::Object(object) => Arc::new(object),
        _ => Arc::new(JsonObject::new()),
    }
}

/// Replaces boolean subschemas (`true` for "any JSON value") with `{}`: clients check that
/// every property's schema is an object.
fn objects_only(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, sub) in map.iter_mut() {
                let holds_schemas = key == "properties" || key == "$defs";
                if key == "items" && sub.is_boolean() {
                    *sub = Value::Object(JsonObject::new());
                } else if holds_schemas && let Value::Object(schemas) = sub {
                    for schema in schemas.values_mut() {
                        if schema.is_boolean() {
                            *schema = Value::Object(JsonObject::new());
                        }
                    }
                }
                objects_only(sub);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(objects_only),
        _ => {}
    }
}

/// A tool in the fixed order of [`ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    ListTools,
    RequestAccess,
    SuggestTool,
    GetCredential,
    CallToolApi,
    SuggestInstructions,
}

pub const ALL: [Name; 6] = [
    Name::ListTools,
    Name::RequestAccess,
    Name::SuggestTool,
    Name::GetCredential,
    Name::CallToolApi,
    Name::SuggestInstructions,
];

impl Name {
    pub fn as_str(self) -> &'static str {
        match self {
            Name::ListTools => "list_tools",
            Name::RequestAccess => "request_access",
            Name::SuggestTool => "suggest_tool",
            Name::GetCredential => "get_credential",
            Name::CallToolApi => "call_tool_api",
            Name::SuggestInstructions => "suggest_instructions",
        }
    }

    pub fn parse(text: &str) -> Option<Name> {
        ALL.into_iter().find(|n| n.as_str() == text)
    }
}

struct Annotated {
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    open_world: bool,
}

fn tool(
    name: Name,
    title: &str,
    description: &str,
    input: Arc<JsonObject>,
    output: Arc<JsonObject>,
    a: Annotated,
) -> Tool {
    Tool::new(name.as_str(), description.to_owned(), input)
        .with_title(title)
        .with_raw_output_schema(output)
        .with_annotations(
            ToolAnnotations::with_title(title)
                .read_only(a.read_only)
                .destructive(a.destructive)
                .idempotent(a.idempotent)
                .open_world(a.open_world),
        )
}

static DEFINITIONS: LazyLock<Vec<Tool>> = LazyLock::new(|| {
    let quiet = |read_only| Annotated {
        read_only,
        destructive: false,
        idempotent: read_only,
        open_world: false,
    };
    vec![
        tool(
            Name::ListTools,
            "List tools and your access",
            "The catalog of tools this organization offers, each with your access to it (`your_access`: none, pending, approved, denied, revoked or expired), how it is delivered (`delivery`: fetch, proxy or both), the reason of a denial or revocation, and when an approved grant expires. Call it first, and again to see whether a pending request was decided (every 30 to 60 seconds at most).",
            schema::<Empty>(false),
            schema::<ToolList>(true),
            quiet(true),
        ),
        tool(
            Name::RequestAccess,
            "Request access to a tool",
            "Ask a human for access to a catalog tool, with a justification they will read. The answer is `pending`: a reviewer decides, usually within minutes to hours; do not ask again, check `your_access` with `list_tools` now and then. A denial's reason is shown there; you may ask again with a better reason.",
            schema::<RequestAccessArgs>(false),
            schema::<RequestCreated>(true),
            quiet(false),
        ),
        tool(
            Name::SuggestTool,
            "Suggest a tool for the catalog",
            "Propose a tool that is not in the catalog yet. Other agents may back the same suggestion; when a human adds the tool, you get a pending access request for it automatically.",
            schema::<SuggestToolArgs>(false),
            schema::<SuggestionCreated>(true),
            quiet(false),
        ),
        tool(
            Name::GetCredential,
            "Get a tool's credential",
            "Returns the secret of a fetch-mode tool you hold an approved grant for, with the company's usage guide. Warning: the secret enters this conversation (and any log or transcript of it); prefer call_tool_api for tools that offer proxy delivery. Never store or repeat the secret; fetch it again when it stops working (it may have been rotated).",
            schema::<ToolIdArgs>(false),
            schema::<CredentialResponse>(true),
            quiet(true),
        ),
        tool(
            Name::CallToolApi,
            "Call a tool's API through AgentKey",
            "Calls the API of a proxy-mode tool you hold a grant for: AgentKey adds the credential, sends the request to the tool's own base URL and returns the status, headers and body. The secret never reaches you. `path` is the API's own path (as in its documentation); your grant may allow only some methods and paths (`proxy_rules` in list_tools).",
            schema::<CallApiArgs>(false),
            schema::<ApiAnswer>(true),
            Annotated {
                read_only: false,
                destructive: true,
                idempotent: false,
                open_world: true,
            },
        ),
        tool(
            Name::SuggestInstructions,
            "Suggest an addition to a tool's usage guide",
            "Tell the humans something the next agent should know about a tool you use (a pitfall, a required header, a rate limit). A reviewer may add it to the tool's usage guide.",
            schema::<SuggestGuideArgs>(false),
            schema::<SuggestionCreated>(true),
            quiet(false),
        ),
    ]
});

/// No arguments.
#[derive(JsonSchema)]
pub struct Empty {}

/// The definition of `name`.
pub fn definition(name: Name) -> Tool {
    DEFINITIONS
        .iter()
        .find(|t| t.name == name.as_str())
        .cloned()
        .unwrap_or_else(|| Tool::new(name.as_str(), "", Arc::new(JsonObject::new())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_one_definition_in_the_fixed_order() {
        let names: Vec<String> = DEFINITIONS.iter().map(|t| t.name.to_string()).collect();
        let fixed: Vec<&str> = ALL.iter().map(|n| n.as_str()).collect();
        assert_eq!(names, fixed);
        for name in ALL {
            assert_eq!(Name::parse(name.as_str()), Some(name));
            let tool = definition(name);
            assert!(tool.output_schema.is_some(), "{}", name.as_str());
            assert!(tool.annotations.is_some());
        }
    }
}
