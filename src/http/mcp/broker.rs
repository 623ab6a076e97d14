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
    ReadResourceResult, Resource, ResourceContents, ServerCapabilities, ServerConfig,
    SubscriptionFilter,
};
use rmcp::service::{RequestContext, RoleServer, SubscriptionContext};
use serde::Serialize;
use serde_json::{Map, Value};

use app::model::{
    Access, ErrorBody, RequestAccessBody, SuggestGuideBody, SuggestToolBody, ToolList,
};
use app::server::ServiceError;
use app::server::events::EventKind;
use app::server::service::{agent_auth, catalog, grants, guides, suggestions, vend};

use super::Caller;
use super::tools::{self, Name};
use crate::http::AppState;
use crate::http::agent_api::{refund_unweighed, spend};
use crate::http::body::{Fields, FromJsonBody};
use crate::http::error::ApiError;
use crate::http::limits::Tier;

/// Where a tool's usage guide is read as a resource.
const GUIDE_PREFIX: &str = "agentkey://tools/";
const GUIDE_SUFFIX: &str = "/guide";

pub struct Broker {
    state: AppState,
}

impl Broker {
    pub fn new(state: AppState) -> Self {
        Broker { state }
    }
}

fn caller(extensions: &rmcp::model::Extensions) -> Result<Caller, ErrorData> {
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
    let mut object = match serde_json::to_value(&body) {
        Ok(Value::Object(object)) => object,
        _ => Map::new(),
    };
    object.insert("status".into(), status.into());
    CallToolResult::error(vec![ContentBlock::text(Value::Object(object).to_string())])
}

fn answer<T: Serialize>(value: &T) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(value) => CallToolResult::structured(value),
        Err(err) => refusal(ServiceError::Internal(anyhow::anyhow!("MCP answer: {err}")).into()),
    }
}

/// What an agent's grants make visible: the tools it can use now, and its guides.
struct Exposure {
    tools: Vec<Name>,
    guides: Vec<(String, String)>,
}

fn exposure(list: &ToolList) -> Exposure {
    let approved: Vec<_> = list
        .tools
        .iter()
        .filter(|t| t.your_access == Access::Approved)
        .collect();
    let fetches = approved
        .iter()
        .any(|t| t.delivery.fetches() && t.proxy_rules.is_none() && !t.proxy_read_only);
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
    async fn exposure(&self, caller: &Caller) -> Result<Exposure, ErrorData> {
        catalog::list_for_agent(&self.state.services, &caller.agent)
            .await
            .map(|list| exposure(&list))
            .map_err(|err| ErrorData::internal_error(err.body().error, None))
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
                grants::validate_request(&body)?;
                let rate = spend(state, Tier::Request, agent)?;
                let created = grants::request_access(svc, agent, &tool_id, &body).await;
                refund_unweighed(state, Tier::Request, agent, rate, &created);
                let mut created = created?;
                created.message = format!(
                    "{} Do not ask again: call list_tools now and then (every 30 to 60 seconds at most) and read `your_access` of tool {tool_id}.",
                    created.message.split(';').next().unwrap_or_default()
                );
                Ok(answer(&created))
            }
            Name::SuggestTool => {
                let mut f = Fields::new(args);
                let body = SuggestToolBody::from_fields(&mut f);
                let body = f.finish(body, SUGGEST_HINT)?;
                suggestions::validate_suggestion(&body)?;
                spend(state, Tier::Suggest, agent)?;
                Ok(answer(&suggestions::suggest_tool(svc, agent, &body).await?))
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
                guides::validate_guide(&body)?;
                let rate = spend(state, Tier::Instruction, agent)?;
                let created = guides::suggest_guide(svc, agent, &tool_id, &body).await;
                refund_unweighed(state, Tier::Instruction, agent, rate, &created);
                Ok(answer(&created?))
            }
        }
    }
}

const REQUEST_HINT: &str =
    "Arguments: {\"tool_id\": \"an id from list_tools\", \"reason\": \"5–500 characters\"}.";
const SUGGEST_HINT: &str = "Arguments: {\"name\": \"Linear\", \"url\": \"linear.app\" (optional), \"reason\": \"5–500 characters\"}.";
const TOOL_ID_HINT: &str = "Arguments: {\"tool_id\": \"an id from list_tools\"}.";
const GUIDE_HINT: &str = "Arguments: {\"tool_id\": \"an id from list_tools\", \"learned\": \"5–2000 characters\", \"why\": \"5–2000 characters\"}.";

fn guide_uri(tool_id: &str) -> String {
    format!("{GUIDE_PREFIX}{tool_id}{GUIDE_SUFFIX}")
}

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
        let exposure = self.exposure(&caller).await?;
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
        let exposure = self.exposure(&caller).await?;
        Ok(ListResourcesResult::with_all_items(
            exposure
                .guides
                .into_iter()
                .map(|(id, name)| {
                    Resource::new(guide_uri(&id), format!("{name} usage guide"))
                        .with_description(format!(
                            "How this organization uses {name}: read it before calling the tool."
                        ))
                        .with_mime_type("text/markdown")
                })
                .collect(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = caller(&ctx.extensions)?;
        let not_found = || {
            ErrorData::resource_not_found(
                "No such resource: usage guides are agentkey://tools/{tool_id}/guide for tools you hold a grant for (see resources/list).",
                None,
            )
        };
        let tool_id = request
            .uri
            .strip_prefix(GUIDE_PREFIX)
            .and_then(|rest| rest.strip_suffix(GUIDE_SUFFIX))
            .ok_or_else(not_found)?;
        spend(&self.state, Tier::Read, &caller.agent)
            .map_err(|err| ErrorData::invalid_request(err.parts().1.error, None))?;
        match vend::guide(&self.state.services, &caller.agent, tool_id).await {
            Ok(guide) => {
                let mut contents = ResourceContents::text(guide.instructions, &request.uri);
                if let ResourceContents::TextResourceContents { mime_type, .. } = &mut contents {
                    *mime_type = Some("text/markdown".into());
                }
                Ok(ReadResourceResult::new(vec![contents]).into())
            }
            Err(ServiceError::Internal(err)) => {
                tracing::error!(error = format!("{err:#}"), "MCP guide read failed");
                Err(ErrorData::internal_error("Internal server error.", None))
            }
            Err(err) => {
                let body = err.body();
                let message = match &body.hint {
                    Some(hint) => format!("{} {hint}", body.error),
                    None => body.error,
                };
                Err(ErrorData::invalid_params(message, None))
            }
        }
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

    /// 2026-07-28 subscriptions: the tool and resource lists change when the agent's grants
    /// do; each change of what it may use is announced once.
    async fn listen(&self, ctx: SubscriptionContext) -> Result<(), ErrorData> {
        let caller = caller(&ctx.request_context().extensions)?;
        let svc = &self.state.services;
        let mut events = svc.events.subscribe();
        let mut seen = self.exposure(&caller).await?;
        loop {
            let event = tokio::select! {
                () = ctx.cancelled() => return Ok(()),
                event = events.recv() => event,
            };
            let relevant = match event {
                Ok(e) => {
                    e.org_id == caller.agent.org_id.as_str()
                        && !matches!(
                            e.kind,
                            EventKind::CredentialVended | EventKind::SuggestionChanged
                        )
                        || e.kind == EventKind::Resync
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            };
            if !relevant {
                continue;
            }
            // A suspended or deleted agent's subscription ends.
            agent_auth::authenticate_hash(svc, &caller.agent.key_hash, caller.agent.meta.clone())
                .await
                .map_err(|err| ErrorData::invalid_request(err.body().error, None))?;
            let now = self.exposure(&caller).await?;
            if now.tools != seen.tools {
                let _ = ctx.sink().notify_tool_list_changed().await;
            }
            if now.guides != seen.guides {
                let _ = ctx.sink().notify_resource_list_changed().await;
            }
            seen = now;
        }
    }
}
