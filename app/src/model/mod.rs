//! Typed JSON shapes shared by the agent REST API, the CLI and the dashboard.
//!
//! Plain serde types with no server dependencies, so the same definitions compile into the WASM
//! bundle. Timestamps cross the wire as RFC 3339 strings in UTC.

mod admin;
mod agent_api;
mod dashboard;
mod duration;
mod enums;
mod error;
mod ids;
mod lifecycle;
mod members;
mod notify;

pub use admin::*;
pub use agent_api::*;
pub use dashboard::*;
pub use duration::*;
pub use enums::*;
pub use error::*;
pub use ids::*;
pub use lifecycle::*;
pub use members::*;
pub use notify::*;
