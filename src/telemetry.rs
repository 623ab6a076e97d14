//! Structured logs: JSON when stderr is not a terminal, readable text when it is.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_http=info";

/// Added to every filter, the operator's too: the MCP SDK logs each message at info and the
/// requests and results themselves (a fetched credential, a proxied body) at debug.
const ALWAYS: &str = "rmcp=warn";

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
    let chosen = filter
        .map(str::to_owned)
        .or_else(|| std::env::var("AGENTKEY_LOG").ok())
        .filter(|f| EnvFilter::try_new(f).is_ok())
        .unwrap_or_else(|| DEFAULT_FILTER.to_owned());
    let filter = EnvFilter::new(format!("{chosen},{ALWAYS}"));
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
