//! Organization-scoped change events, published after commit. In-process for now; the live
//! dashboard streams them and a PostgreSQL backend will fan them out with NOTIFY.

use serde::Serialize;
use tokio::sync::broadcast;

/// What changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    AgentChanged,
    ToolChanged,
    RequestChanged,
    SuggestionChanged,
    CredentialVended,
}

impl EventKind {
    /// The name sent on the live stream.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::AgentChanged => "agent_changed",
            EventKind::ToolChanged => "tool_changed",
            EventKind::RequestChanged => "request_changed",
            EventKind::SuggestionChanged => "suggestion_changed",
            EventKind::CredentialVended => "credential_vended",
        }
    }
}

/// One change in one organization.
#[derive(Clone, Debug, Serialize)]
pub struct OrgEvent {
    pub org_id: String,
    pub kind: EventKind,
}

/// The event bus.
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<OrgEvent>,
}

impl Events {
    pub fn new() -> Self {
        Events { tx: broadcast::channel(1024).0 }
    }

    /// Publishes; having no subscriber is fine.
    pub fn publish(&self, org_id: &str, kind: EventKind) {
        let _ = self.tx.send(OrgEvent { org_id: org_id.to_owned(), kind });
    }

    /// A new subscription receiving events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<OrgEvent> {
        self.tx.subscribe()
    }
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}
