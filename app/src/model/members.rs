//! Members, invitations and roles as the dashboard shows them.

use serde::{Deserialize, Serialize};

use super::Role;

/// One member of the organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberEntry {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    pub joined_at: String,
    /// This is the signed-in person.
    pub you: bool,
}

/// An invitation that has not been used yet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvitationView {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub created_at: String,
    pub expires_at: String,
}

/// The members page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MembersView {
    pub members: Vec<MemberEntry>,
    pub invitations: Vec<InvitationView>,
    /// Email domains new members must use; empty: any.
    pub allowed_domains: Vec<String>,
    /// The caller may invite (owners and admins).
    pub can_invite: bool,
    /// The caller may change roles and remove members (owners).
    pub can_manage: bool,
}

/// What the invitation page shows before the person accepts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvitationPeek {
    pub valid: bool,
    pub org_name: Option<String>,
    pub email: Option<String>,
    pub role: Option<Role>,
}

impl Role {
    /// May decide requests and suggestions.
    pub fn can_decide(self) -> bool {
        self != Role::Auditor
    }

    /// May change agents, tools, credentials and notifications.
    pub fn can_administer(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// What the role may do, in one line (shown beside the role picker).
    pub fn summary(self) -> &'static str {
        match self {
            Role::Owner => {
                "everything, including members, roles, allowed domains and deleting the organization"
            }
            Role::Admin => {
                "agents, tools, credentials, notifications, catalog import/export and decisions"
            }
            Role::Approver => {
                "decide requests and suggestions; read agents, tools and the audit log"
            }
            Role::Auditor => "read everything except secrets, including audit export",
        }
    }
}
