//! Who is acting, and what they may do.

use crate::model::{ActorType, AgentId, OrgId, Role, UserId};
use crate::server::error::ServiceError;

/// Transport facts recorded with every audited action.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The acting party as the audit log names it.
#[derive(Clone, Debug)]
pub struct Actor {
    pub kind: ActorType,
    pub id: String,
    pub label: String,
}

/// What an admin-side action needs permission for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    ManageAgents,
    ManageTools,
    ManageCredentials,
    Decide,
    ManageNotifications,
    /// Invite people (owners and admins; only owners may invite owners).
    InviteMembers,
    /// Change roles, remove members, allowed domains (owners only).
    ManageMembers,
    ReadAll,
}

impl Role {
    /// The permission matrix, enforced here for every entry point (README: Roles).
    pub fn allows(self, p: Permission) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => p != Permission::ManageMembers,
            Role::Approver => matches!(p, Permission::Decide | Permission::ReadAll),
            Role::Auditor => matches!(p, Permission::ReadAll),
        }
    }
}

/// A member (or the operator's CLI) acting inside one organization.
#[derive(Clone, Debug)]
pub struct AdminCtx {
    pub org_id: OrgId,
    pub actor: Actor,
    pub role: Role,
    pub meta: RequestMeta,
}

impl AdminCtx {
    /// The operator at the server's console: full rights, labelled `cli:<user>` in the log.
    pub fn operator(org_id: &str) -> Self {
        let user = std::env::var("USER").unwrap_or_else(|_| "operator".into());
        AdminCtx {
            org_id: OrgId::new(org_id),
            actor: Actor {
                kind: ActorType::Human,
                id: format!("cli:{user}"),
                label: format!("cli:{user}"),
            },
            role: Role::Owner,
            meta: RequestMeta {
                ip: None,
                user_agent: Some("agentkey-cli".into()),
            },
        }
    }

    /// The acting member's user id (the operator's is its `cli:` label).
    pub fn user_id(&self) -> UserId {
        UserId::new(self.actor.id.clone())
    }

    /// Refuses with 403 unless the role allows `p`.
    pub fn require(&self, p: Permission) -> Result<(), ServiceError> {
        if self.role.allows(p) {
            Ok(())
        } else {
            Err(ServiceError::forbidden(
                "Your role does not allow this action.",
                "Ask an owner or admin of the organization.",
            ))
        }
    }
}

/// An authenticated agent.
#[derive(Clone, Debug)]
pub struct AgentCtx {
    pub org_id: OrgId,
    pub agent_id: AgentId,
    pub agent_name: String,
    pub description: String,
    pub created_at: i64,
    pub key_hash: String,
    pub meta: RequestMeta,
}

impl AgentCtx {
    /// The agent as an audit actor.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: ActorType::Agent,
            id: self.agent_id.to_string(),
            label: self.agent_name.clone(),
        }
    }
}
