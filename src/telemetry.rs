//! Structured logs: JSON when stderr is not a terminal, readable text when it is.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

// The MCP SDK logs every stateless message at info (with the client's details): warn only.
const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_http=info,rmcp=warn";

/// Installs the global subscriber writing to stderr. `AGENTKEY_LOG` overrides the filter,
/// `AGENTKEY_LOG_FORMAT=json|text` the format.
pub fn init() {
    let json = match std::env::var("AGENTKEY_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => !std::io::stderr().is_terminal(),
    };
    init_with(std::io::stderr, json, None);
}

/// Installs a subscriber with a chosen writer (tests capture logs this way). Returns false if
/// one was already installed.
pub fn init_with<W>(writer: W, json: bool, filter: Option<&str>) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = match filter {
        Some(f) => EnvFilter::new(f),
        None => EnvFilter::try_from_env("AGENTKEY_LOG")
            .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(true);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
            .is_ok()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
            .is_ok()
    }
}
