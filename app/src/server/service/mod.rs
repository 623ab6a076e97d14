//! Service functions: every behaviour lives here once, taking an authenticated actor.
//! REST handlers, server functions, the CLI and tests call these.

pub mod actor;
pub mod agent_auth;
pub mod agents;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod catalog;
pub mod catalog_io;
pub mod dashboard;
pub mod grants;
pub mod guides;
pub mod keys;
pub mod lifecycle;
pub mod members;
pub mod normalize;
pub mod notifications;
pub mod onboarding;
pub mod orgs;
pub mod proxy;
pub mod status;
pub mod suggestions;
pub mod tools;
pub mod usage;
pub mod validate;
pub mod vend;

/// A new UUID v7 as text (sortable by creation time).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// True when `text` is a UUID in canonical hyphenated form.
pub fn is_uuid(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::try_parse(text).is_ok()
}
