//! AgentKey's application library, shared by the server and the browser.
//!
//! `model` holds the typed JSON shapes used by the agent REST API and the dashboard alike;
//! `ui` and `api` are the Leptos pages and server functions; `server` (feature `ssr` only) holds
//! the store, crypto and service functions, and never reaches the WASM bundle.
#![recursion_limit = "256"]

pub mod api;
pub mod model;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod server;

pub use ui::App;
#[cfg(feature = "hydrate")]
pub use ui::install_panic_notice;
