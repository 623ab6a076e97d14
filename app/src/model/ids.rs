//! Ids of the domain's objects, one type each, so that a function taking an organization, an
//! agent and a tool cannot be called with two of them swapped. On the wire and in the database
//! they are the same text as before (UUID v7 strings; the operator's CLI acts as `cli:<user>`).

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "ssr", derive(sqlx::Type), sqlx(transparent))]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps text that already is an id of this kind: read from the database, or
            /// checked by [`Self::parse`] earlier.
            pub fn new(text: impl Into<String>) -> Self {
                Self(text.into())
            }

            /// A new UUID v7 (ordered by creation time).
            #[cfg(feature = "ssr")]
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }

            /// The id in untrusted text (a path segment, a form field), when it is a UUID in
            /// canonical hyphenated form; anything else names no object.
            #[cfg(feature = "ssr")]
            pub fn parse(text: &str) -> Option<Self> {
                let canonical = text.len() == 36 && uuid::Uuid::try_parse(text).is_ok();
                canonical.then(|| Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        /// An id reads as its text wherever text is expected (logs, audit metadata, messages);
        /// the other way round needs [`Self::new`] or [`Self::parse`].
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl From<$name> for serde_json::Value {
            fn from(id: $name) -> serde_json::Value {
                serde_json::Value::String(id.0)
            }
        }

        impl From<&$name> for serde_json::Value {
            fn from(id: &$name) -> serde_json::Value {
                serde_json::Value::String(id.0.clone())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

id_type!(
    /// An organization.
    OrgId
);
id_type!(
    /// A registered agent.
    AgentId
);
id_type!(
    /// A catalog tool.
    ToolId
);
id_type!(
    /// An access request (a grant once approved).
    RequestId
);
id_type!(
    /// A member of an organization (a user), or the operator's CLI (`cli:<user>`).
    UserId
);
id_type!(
    /// A tool suggestion or a guide suggestion (their backers share one table shape).
    SuggestionId
);
