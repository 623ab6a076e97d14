//! The MCP server handler: each tool is one service call, with the same rate tier, audit rows
//! and refusals as its REST route. A refusal is a tool error whose text is the REST error
//! body (`status`, `error`, `hint` and its fields); protocol errors are kept for calls that
//! cannot be routed (an unknown tool name, a caller the gate did not authenticate).

use std::borrow::Cow;

use rmcp::handler::server::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
    CustomResult, ErrorData, Implementation, JsonObject, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig, SubscriptionFilter,
};
use rmcp::service::{RequestContext, RoleServer, SubscriptionContext};
use serde::Serialize;
use serde_json::{Map, Value};

use app::model::{
    Access, ErrorBody, RequestAccessBody, SuggestGuideBody, SuggestToolBody, ToolList,
};
use app::server::ServiceError;
use app::server::service::{catalog, vend};

use super::Caller;
use super::tools::{self, Name};
use crate::http::AppState;
use crate::http::agent_api::{guide, request, spend, suggest};
use crate::http::body::{Fields, FromJsonBody};
use crate::http::error::ApiError;
use crate::http::limits::Tier;

pub struct Broker {
    pub(super) state: AppState,
    listeners: std::sync::Arc<super::listen::Listeners>,
}

impl Broker {
    pub fn new(state: AppState, listeners: std::sync::Arc<super::listen::Listeners>) -> Self {
        Broker { state, listeners }
    }
}

pub(super) fn caller(extensions: &rmcp::model::Extensions) -> Result<Caller, ErrorData> {
    extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| ErrorData::internal_error("the caller was not authenticated", None))
}

/// A refusal as the model reads it: the REST error body with its HTTP status.
pub(super) fn refusal(err: ApiError) -> CallToolResult {
    let (status, body) = err.parts();
    refusal_of(status.as_u16(), body)
}

pub(super) fn refusal_of(status: u16, body: ErrorBody) -> CallToolResult {
    let mut object = error_object(status, body);
    mcp_hint(&mut object);
    CallToolResult::error(vec![ContentBlock::text(Value::Object(object).to_string())])
}

fn error_object(status: u16, body: ErrorBody) -> Map<String, Value> {
    let mut object = match serde_json::to_value(&body) {
        Ok(Value::Object(object)) => object,
        _ => Map::new(),
    };
    object.insert("status".into(), status.into());
    object
}

/// A refusal that points at the other delivery names REST routes and "your usual
/// Authorization header", which an MCP model does not have: it names the tool to use instead.
fn mcp_hint(object: &mut Map<String, Value>) {
    let instead = match object.get("delivery").and_then(Value::as_str) {
        Some("proxy" | "both") if object.contains_key("proxy_url") => {
            "Use call_tool_api with this tool_id: AgentKey adds the credential and you never see it."
        }
        Some("fetch") => "Use get_credential with this tool_id, then call the tool yourself.",
        _ => return,
    };
    object.insert("hint".into(), instead.into());
}

/// A protocol error (for methods that are not tools) from a refusal: its message and hint,
/// with the status and any wait in `data`.
pub(super) fn protocol_error(err: ApiError) -> ErrorData {
    let (status, body) = err.parts();
    let message = match &body.hint {
        Some(hint) => format!("{} {hint}", body.error),
        None => body.error.clone(),
    };
    let data = Value::Object(error_object(status.as_u16(), body));
    if status.is_server_error() {
        ErrorData::internal_error(message, Some(data))
    } else if status == axum::http::StatusCode::NOT_FOUND {
        ErrorData::resource_not_found(message, Some(data))
    } else {
        ErrorData::invalid_params(message, Some(data))
    }
}

fn answer<T: Serialize>(value: &T) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(value) => CallToolResult::structured(value),
        Err(err) => refusal(ServiceError::Internal(anyhow::anyhow!("MCP answer: {err}")).into()),
    }
}

/// What an agent's grants make visible: the tools it can use now, and its guides.
pub(super) struct Exposure {
    pub(super) tools: Vec<Name>,
    pub(super) guides: Vec<(String, String)>,
}

fn exposure(list: &ToolList) -> Exposure {
    let approved: Vec<_> = list
        .tools
        .iter()
        .filter(|t| t.your_access == Access::Approved)
        .collect();
    // Whether a narrowed grant may still fetch is the credential route's to say (its refusal
    // names call_tool_api); the list only follows deliveries.
    let fetches = approved.iter().any(|t| t.delivery.fetches());
    let proxies = approved.iter().any(|t| t.delivery.proxies());
    let tools = tools::ALL
        .into_iter()
        .filter(|n| match n {
            Name::GetCredential => fetches,
            Name::CallToolApi => proxies,
            Name::SuggestInstructions => !approved.is_empty(),
            _ => true,
        })
        .collect();
    let guides = approved
        .iter()
        .map(|t| (t.id.clone(), t.name.clone()))
        .collect();
    Exposure { tools, guides }
}

impl Broker {
    pub(super) async fn exposure(&self, caller: &Caller) -> Result<Exposure, ErrorData> {
        catalog::list_for_agent(&self.state.services, &caller.agent)
            .await
            .map(|list| exposure(&list))
            .map_err(|err| protocol_error(err.into()))
    }

    /// The protocol's list methods read the catalog: they spend the `read` tier as
    /// `GET /api/tools` does.
    async fn listed(&self, caller: &Caller) -> Result<Exposure, ErrorData> {
        spend(&self.state, Tier::Read, &caller.agent).map_err(protocol_error)?;
        self.exposure(caller).await
    }

    async fn call(&self, name: Name, args: &JsonObject, caller: &Caller) -> CallToolResult {
        match self.run(name, args, caller).await {
            Ok(result) => result,
            Err(err) => refusal(err),
        }
    }

    async fn run(
        &self,
        name: Name,
        args: &JsonObject,
        caller: &Caller,
    ) -> Result<CallToolResult, ApiError> {
        let state = &self.state;
        let svc = &state.services;
        let agent = &caller.agent;
        match name {
            Name::ListTools => {
                spend(state, Tier::Read, agent)?;
                Ok(answer(&catalog::list_for_agent(svc, agent).await?))
            }
            Name::RequestAccess => {
                let mut f = Fields::new(args);
                let tool_id = f.string("tool_id");
                let body = RequestAccessBody::from_fields(&mut f);
                let (tool_id, body) = f.finish((tool_id, body), REQUEST_HINT)?;
                let (_, mut created) =
                    request::request_access(state, agent, &tool_id, &body).await?;
                created.message = format!(
                    "A human will review your request. Do not ask again: call list_tools now and then (every 30 to 60 seconds at most) and read `your_access` of tool {tool_id}."
                );
                Ok(answer(&created))
            }
            Name::SuggestTool => {
                let mut f = Fields::new(args);
                let body = SuggestToolBody::from_fields(&mut f);
                let body = f.finish(body, SUGGEST_HINT)?;
                Ok(answer(&suggest::suggest_tool(state, agent, &body).await?.1))
            }
            Name::GetCredential => {
                let mut f = Fields::new(args);
                let tool_id = f.string("tool_id");
                let tool_id = f.finish(tool_id, TOOL_ID_HINT)?;
                spend(state, Tier::Credential, agent)?;
                Ok(answer(&vend::fetch(svc, agent, &tool_id).await?))
            }
            Name::CallToolApi => super::call_api::call(state, args, caller).await,
            Name::SuggestInstructions => {
                let mut f = Fields::new(args);
                let tool_id = f.string("tool_id");
                let body = SuggestGuideBody::from_fields(&mut f);
                let (tool_id, body) = f.finish((tool_id, body), GUIDE_HINT)?;
                Ok(answer(
                    &guide::suggest_guide(state, agent, &tool_id, &body).await?.1,
                ))
            }
        }
    }
}

const REQUEST_HINT: &str =
    "Arguments: {\"tool_id\": \"an id from list_tools\", \"reason\": \"5–500 characters\"}.";
const SUGGEST_HINT: &str = "Arguments: {\"name\": \"Linear\", \"url\": \"linear.app\" (optional), \"reason\": \"5–500 characters\"}.";
const TOOL_ID_HINT: &str = "Arguments: {\"tool_id\": \"an id from list_tools\"}.";
const GUIDE_HINT: &str = "Arguments: {\"tool_id\": \"an id from list_tools\", \"learned\": \"5–2000 characters\", \"why\": \"5–2000 characters\"}.";

impl ServerHandler for Broker {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_resources()
                .enable_resources_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("agentkey", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "AgentKey holds this organization's credentials for external tools. Call list_tools first; request_access for a tool you need (a human decides); once approved, use call_tool_api for proxy-mode tools (the secret never reaches you) or get_credential for fetch-mode ones. Each approved tool's usage guide is a resource.",
        )
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(&[
            ProtocolVersion::V_2025_06_18,
            ProtocolVersion::V_2025_11_25,
            ProtocolVersion::V_2026_07_28,
        ])
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = caller(&ctx.extensions)?;
        let exposure = self.listed(&caller).await?;
        Ok(ListToolsResult::with_all_items(
            exposure.tools.into_iter().map(tools::definition).collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = caller(&ctx.extensions)?;
        let Some(name) = Name::parse(&request.name) else {
            let known: Vec<&str> = tools::ALL.iter().map(|n| n.as_str()).collect();
            return Err(ErrorData::invalid_params(
                format!(
                    "Unknown tool {:?}; AgentKey's tools are {}.",
                    request.name.chars().take(80).collect::<String>(),
                    known.join(", ")
                ),
                None,
            ));
        };
        let args = request.arguments.unwrap_or_default();
        Ok(self.call(name, &args, &caller).await.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let caller = caller(&ctx.extensions)?;
        let exposure = self.listed(&caller).await?;
        Ok(super::listen::guides(exposure))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = caller(&ctx.extensions)?;
        super::listen::read_guide(&self.state, &caller, &request.uri).await
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        Err(ErrorData::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            format!(
                "Method not found: {:?}. This server answers initialize, ping, tools/list, tools/call, resources/list and resources/read.",
                request.method.chars().take(80).collect::<String>()
            ),
            None,
        ))
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.supported_by(&self.get_info().capabilities))
    }

    /// 2026-07-28 subscriptions: see [`super::listen`].
    async fn listen(&self, ctx: SubscriptionContext) -> Result<(), ErrorData> {
        super::listen::listen(self, &self.listeners, ctx).await
    }
}
