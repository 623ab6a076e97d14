//! What an agent's grants make readable and what announces their changes: usage guides as
//! resources, and the 2026-07-28 `subscriptions/listen` stream, which says when the agent's
//! tool or resource list changed. Streams are bounded per agent and in time, and a burst of
//! events costs one check.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rmcp::model::{
    ErrorData, ListResourcesResult, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents,
};
use rmcp::service::SubscriptionContext;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use app::server::events::{EventKind, OrgEvent};
use app::server::service::{agent_auth, vend};

use super::Caller;
use super::broker::{Broker, Exposure, caller, protocol_error};
use crate::http::AppState;
use crate::http::agent_api::spend;
use crate::http::limits::Tier;

/// Where a tool's usage guide is read as a resource.
const GUIDE_PREFIX: &str = "agentkey://tools/";
const GUIDE_SUFFIX: &str = "/guide";

/// Open subscriptions one agent may hold at once.
pub const MAX_STREAMS_PER_AGENT: usize = 4;
/// A subscription ends after this long; the client opens a new one.
const MAX_STREAM: Duration = Duration::from_secs(3600);

fn guide_uri(tool_id: &str) -> String {
    format!("{GUIDE_PREFIX}{tool_id}{GUIDE_SUFFIX}")
}

/// The guides of the tools the agent holds a grant for.
pub(super) fn guides(exposure: Exposure) -> ListResourcesResult {
    ListResourcesResult::with_all_items(
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
    )
}

pub(super) async fn read_guide(
    state: &AppState,
    caller: &Caller,
    uri: &str,
) -> Result<ReadResourceResponse, ErrorData> {
    let tool_id = uri
        .strip_prefix(GUIDE_PREFIX)
        .and_then(|rest| rest.strip_suffix(GUIDE_SUFFIX))
        .ok_or_else(|| {
            ErrorData::resource_not_found(
                "No such resource: usage guides are agentkey://tools/{tool_id}/guide for tools you hold a grant for (see resources/list).",
                None,
            )
        })?;
    spend(state, Tier::Read, &caller.agent).map_err(protocol_error)?;
    let guide = vend::guide(&state.services, &caller.agent, tool_id)
        .await
        .map_err(|err| protocol_error(err.into()))?;
    let mut contents = ResourceContents::text(guide.instructions, uri);
    if let ResourceContents::TextResourceContents { mime_type, .. } = &mut contents {
        *mime_type = Some("text/markdown".into());
    }
    Ok(ReadResourceResult::new(vec![contents]).into())
}

/// How many subscriptions each agent holds open.
#[derive(Default)]
pub struct Listeners(Mutex<HashMap<String, usize>>);

/// One open subscription; counted until dropped.
struct Slot<'a> {
    listeners: &'a Listeners,
    agent: String,
}

impl Listeners {
    fn claim(&self, agent: &str) -> Option<Slot<'_>> {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(agent.to_owned()).or_default();
        if *count >= MAX_STREAMS_PER_AGENT {
            return None;
        }
        *count += 1;
        Some(Slot {
            listeners: self,
            agent: agent.to_owned(),
        })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut open = self
            .listeners
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.agent) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.agent);
            }
        }
    }
}

/// Whether an event may change what `caller` can use.
fn concerns(event: &Result<OrgEvent, RecvError>, caller: &Caller) -> bool {
    match event {
        Ok(e) => {
            e.kind == EventKind::Resync
                || (e.org_id == caller.agent.org_id.as_str()
                    && !matches!(
                        e.kind,
                        EventKind::CredentialVended | EventKind::SuggestionChanged
                    ))
        }
        Err(RecvError::Lagged(_)) => true,
        Err(RecvError::Closed) => false,
    }
}

/// Runs one subscription: after each burst of events that may concern the agent, checks its
/// key again (a suspended or deleted agent's stream ends) and announces what changed.
pub(super) async fn listen(
    broker: &Broker,
    listeners: &Listeners,
    ctx: SubscriptionContext,
) -> Result<(), ErrorData> {
    let caller = caller(&ctx.request_context().extensions)?;
    let Some(_slot) = listeners.claim(caller.agent.agent_id.as_str()) else {
        return Err(ErrorData::invalid_request(
            format!(
                "At most {MAX_STREAMS_PER_AGENT} subscriptions per agent may be open; close one first."
            ),
            None,
        ));
    };
    spend(&broker.state, Tier::Read, &caller.agent).map_err(protocol_error)?;
    let svc = &broker.state.services;
    let mut events = svc.events.subscribe();
    let mut seen = broker.exposure(&caller).await?;
    let deadline = tokio::time::sleep(MAX_STREAM);
    tokio::pin!(deadline);
    loop {
        let event = tokio::select! {
            () = ctx.cancelled() => return Ok(()),
            () = &mut deadline => return Ok(()),
            event = events.recv() => event,
        };
        if matches!(event, Err(RecvError::Closed)) {
            return Ok(());
        }
        let mut relevant = concerns(&event, &caller);
        // The rest of a burst is answered by the same check.
        loop {
            match events.try_recv() {
                Ok(next) => relevant |= concerns(&Ok(next), &caller),
                Err(TryRecvError::Lagged(_)) => relevant = true,
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        if !relevant {
            continue;
        }
        agent_auth::authenticate_hash(svc, &caller.agent.key_hash, caller.agent.meta.clone())
            .await
            .map_err(|err| protocol_error(err.into()))?;
        let now = broker.exposure(&caller).await?;
        if now.tools != seen.tools {
            let _ = ctx.sink().notify_tool_list_changed().await;
        }
        if now.guides != seen.guides {
            let _ = ctx.sink().notify_resource_list_changed().await;
        }
        seen = now;
    }
}
