//! Closed sets of values stored as text and sent as snake_case strings.

use serde::{Deserialize, Serialize};

/// Declares a string-backed enum with `as_str` and `parse`, the one mapping used by the
/// database, the JSON API and the CLI.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and serialized text.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stored text; `None` for anything else.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // Rows decode the column straight into the enum: a value outside the set is a decode
        // error (the row is corrupt), never a silent default.
        #[cfg(feature = "ssr")]
        impl sqlx::Type<sqlx::Any> for $name {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <String as sqlx::Type<sqlx::Any>>::type_info()
            }

            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Any>>::compatible(ty)
            }
        }

        #[cfg(feature = "ssr")]
        impl<'r> sqlx::Decode<'r, sqlx::Any> for $name {
            fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <String as sqlx::Decode<sqlx::Any>>::decode(value)?;
                $name::parse(&text)
                    .ok_or_else(|| format!("{text:?} is not a {}", stringify!($name)).into())
            }
        }

        #[cfg(feature = "ssr")]
        impl<'q> sqlx::Encode<'q, sqlx::Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Any>>::encode(self.as_str(), buf)
            }
        }
    };
}

text_enum!(
    /// How an agent presents a tool's credential.
    AuthType { ApiKey => "api_key", OauthToken => "oauth_token", BotToken => "bot_token", Other => "other" }
);

text_enum!(
    /// The text format of a catalog export (an import reads either).
    CatalogFormat { Json => "json", Yaml => "yaml" }
);

text_enum!(
    /// Whether one secret serves every approved agent or each grant carries its own.
    CredentialMode { Shared => "shared", PerAgent => "per_agent" }
);

text_enum!(
    /// How an approved agent uses a tool's credential: it receives the secret (`fetch`),
    /// AgentKey uses it on the agent's behalf without ever handing it out (`proxy`), or either.
    Delivery { Fetch => "fetch", Proxy => "proxy", Both => "both" }
);

impl Default for Delivery {
    /// What a tool saved before proxy mode existed does.
    fn default() -> Self {
        Delivery::Fetch
    }
}

impl Delivery {
    /// Whether the credential route hands the secret out.
    pub fn fetches(self) -> bool {
        self != Delivery::Proxy
    }

    /// Whether the proxy route forwards calls.
    pub fn proxies(self) -> bool {
        self != Delivery::Fetch
    }
}

text_enum!(
    /// Lifecycle of one access request row. A re-request is a new row.
    RequestStatus { Pending => "pending", Approved => "approved", Denied => "denied", Revoked => "revoked", Expired => "expired" }
);

text_enum!(
    /// What an agent sees about its own access to a catalog tool.
    Access { None => "none", Pending => "pending", Approved => "approved", Denied => "denied", Revoked => "revoked", Expired => "expired" }
);

text_enum!(
    /// Who opened an access request: the agent itself, an admin granting directly, or the
    /// backing of a suggestion when its tool was added.
    RequestOrigin {
        Agent => "agent",
        Admin => "admin",
        Suggestion => "suggestion",
    }
);

text_enum!(
    /// State of one row of the notification outbox.
    DeliveryStatus {
        Pending => "pending",
        Delivered => "delivered",
        Dead => "dead",
    }
);

text_enum!(
    /// Whether an agent's key is accepted.
    AgentStatus { Active => "active", Suspended => "suspended" }
);

text_enum!(
    /// State of a tool suggestion or a guide suggestion.
    SuggestionStatus { Pending => "pending", Dismissed => "dismissed", Accepted => "accepted" }
);

text_enum!(
    /// Who performed an audited action.
    ActorType { Human => "human", Agent => "agent", System => "system" }
);

text_enum!(
    /// A member's role in an organization (only `owner` is granted until teams land).
    Role { Owner => "owner", Admin => "admin", Approver => "approver", Auditor => "auditor" }
);

impl From<RequestStatus> for Access {
    fn from(status: RequestStatus) -> Self {
        match status {
            RequestStatus::Pending => Access::Pending,
            RequestStatus::Approved => Access::Approved,
            RequestStatus::Denied => Access::Denied,
            RequestStatus::Revoked => Access::Revoked,
            RequestStatus::Expired => Access::Expired,
        }
    }
}

text_enum!(
    /// Where alerts go.
    ChannelKind { Slack => "slack", Discord => "discord", Email => "email" }
);

text_enum!(
    /// What reviewers can be alerted about: new work, and optionally decisions.
    AlertEvent {
        AccessRequested => "access_requested",
        ToolSuggested => "tool_suggested",
        GuideSuggested => "guide_suggested",
        Decided => "decided",
        Reminder => "reminder",
    }
);

text_enum!(
    /// Something about a tool's secret that needs a human's attention.
    ToolHealth {
        NoSecret => "no_secret",
        RotationDue => "rotation_due",
        ExpiringSoon => "expiring_soon",
    }
);

impl ToolHealth {
    /// A secret is due for rotation this many days after it was last set (the label says so).
    pub const ROTATE_AFTER_DAYS: i64 = 90;
    /// A secret's expiry is announced this many days ahead.
    pub const EXPIRY_WARNING_DAYS: i64 = 14;

    /// Shown beside the tool, in the dashboard and the CLI.
    pub fn label(self) -> &'static str {
        match self {
            ToolHealth::NoSecret => "no secret",
            ToolHealth::RotationDue => "rotated over 90 days ago",
            ToolHealth::ExpiringSoon => "expires soon",
        }
    }

    /// `warn` for a chore, `danger` for access about to break.
    pub fn severity(self) -> &'static str {
        match self {
            ToolHealth::ExpiringSoon => "danger",
            _ => "warn",
        }
    }
}

impl ChannelKind {
    /// Name shown to people.
    pub fn label(self) -> &'static str {
        match self {
            ChannelKind::Slack => "Slack",
            ChannelKind::Discord => "Discord",
            ChannelKind::Email => "Email",
        }
    }
}

impl AlertEvent {
    /// Name shown to people.
    pub fn label(self) -> &'static str {
        match self {
            AlertEvent::AccessRequested => "New access request",
            AlertEvent::ToolSuggested => "New or reopened tool suggestion",
            AlertEvent::GuideSuggested => "New guide suggestion",
            AlertEvent::Decided => "Decisions (approved, denied, revoked)",
            AlertEvent::Reminder => "Reminders (grants about to end, requests waiting over a day)",
        }
    }

    /// Events a channel receives unless someone changes it: new work, not decisions.
    pub const DEFAULT: &'static [AlertEvent] = &[
        AlertEvent::AccessRequested,
        AlertEvent::ToolSuggested,
        AlertEvent::GuideSuggested,
        AlertEvent::Reminder,
    ];
}
