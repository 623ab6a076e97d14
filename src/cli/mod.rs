//! The command line: `serve`, `migrate`, and admin commands that call the same service
//! functions as the API, so the whole flow can be run before the dashboard exists.
//! Tables for people, `--json` for scripts; secrets are read from stdin, never from argv.

mod admin;
mod audit;
mod data;
mod delivery;
mod lifecycle;
mod output;
mod requests;
mod secrets;
mod suggestions;
mod tools;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use app::server::Services;
use app::server::service::{actor::AdminCtx, orgs};

use crate::config::Settings;
use crate::startup;

/// Self-hosted credential broker for AI agents.
#[derive(Debug, Parser)]
#[command(name = "agentkey", version, about, long_about = None)]
pub struct Cli {
    /// TOML config file (defaults → this file → AGENTKEY_* environment).
    #[arg(long, global = true, env = "AGENTKEY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Organization id or name (default: the only one).
    #[arg(long, global = true)]
    pub org: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (agent API, status page) until SIGTERM or Ctrl-C.
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Organizations.
    #[command(subcommand)]
    Admin(admin::AdminCmd),
    /// Agents: create (key shown once), list, rotate, suspend, reactivate, delete.
    #[command(subcommand)]
    Agent(admin::AgentCmd),
    /// Catalog tools and their credentials and usage guides.
    #[command(subcommand)]
    Tool(tools::ToolCmd),
    /// Access requests: list, approve, deny, revoke.
    #[command(subcommand)]
    Request(requests::RequestCmd),
    /// Tool and guide suggestions from agents.
    #[command(subcommand)]
    Suggestion(suggestions::SuggestionCmd),
    /// Master key management.
    #[command(subcommand)]
    Keys(audit::KeysCmd),
    /// The audit log: verify the hash chain, show recent events.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Write a consistent copy of the live database to a new SQLite file and check it
    /// (integrity, row counts, every organization's audit chain). From PostgreSQL this is a
    /// logical export of AgentKey's tables from one snapshot; restore it with `migrate-data`.
    /// The master key is not in it: back that up apart.
    Backup {
        /// The file to create (refused if it exists).
        to: std::path::PathBuf,
    },
    /// Replace the embedded SQLite database with a backup, offline: refused while a server
    /// runs on it, unless the backup passes its integrity check and every audit chain, and
    /// unless the master key opens its secrets. The replaced database is kept beside it.
    Restore {
        /// The backup file (made by `agentkey backup`).
        from: std::path::PathBuf,
    },
    /// Copy everything from one database to another (SQLite ↔ PostgreSQL), then verify row
    /// counts and every audit chain. The target must be empty; the master key stays the same.
    MigrateData {
        /// Source database URL, e.g. sqlite://data/agentkey.db
        #[arg(long)]
        from: String,
        /// Target database URL, e.g. postgres://agentkey@db.internal/agentkey (migrated first)
        #[arg(long)]
        to: String,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            let app = startup::Application::build(&settings).await?;
            tracing::info!(addr = %app.addr(), database = %app.services().store.location(), "AgentKey is listening");
            eprintln!(
                "AgentKey is listening on http://{} (dashboard at /, agent API under /api, MCP at /mcp)",
                app.addr()
            );
            if let Some(problem) = settings.base_url_problem()
                && settings.base_url_configured
            {
                eprintln!("warning: {problem}");
            }
            let bootstrap = app::server::service::auth::bootstrap_link(app.services())
                .await
                .map_err(output::service_error)?;
            if let Some(link) = bootstrap {
                // The one way into an empty instance; it works once and only until the next start.
                tracing::warn!(
                    "no members yet: open the one-time setup link printed on the console to create the first organization"
                );
                eprintln!(
                    "\nNo one can sign in yet. Open this one-time link to create the first organization and its owner:\n\n    {link}\n"
                );
            }
            app.run_until(startup::shutdown_signal()).await
        }
        Command::Migrate => {
            let store = app::server::store::Store::connect(&settings.database_url).await?;
            store.migrate().await?;
            store.close().await;
            eprintln!("database {} is up to date", store.location());
            Ok(())
        }
        Command::Keys(cmd) => audit::keys(&settings, cmd).await,
        Command::Backup { to } => data::backup(&settings, &to, cli.json).await,
        Command::Restore { from } => data::restore(&settings, &from, cli.json).await,
        Command::MigrateData { from, to } => data::migrate_data(&from, &to, cli.json).await,
        command => {
            if matches!(
                command,
                Command::Agent(admin::AgentCmd::Create { .. } | admin::AgentCmd::Rotate { .. })
            ) && let Some(problem) = settings.base_url_problem()
            {
                eprintln!("warning: {problem}");
            }
            let services = startup::open(&settings).await?;
            // Changes made here reach the servers' open dashboards (PostgreSQL: NOTIFY).
            let mut changes = services.events.collect();
            let result = dispatch(&services, &cli.org, cli.json, command).await;
            if let Some(changes) = changes.as_mut() {
                app::server::events::flush(&services, changes).await;
            }
            finish(&services).await;
            result
        }
    }
}

async fn dispatch(
    services: &Services,
    org: &Option<String>,
    json: bool,
    command: Command,
) -> anyhow::Result<()> {
    let out = output::Out { json };
    if let Command::Admin(cmd) = command {
        return admin::admin(services, &out, cmd).await;
    }
    let org = orgs::resolve(services, org.as_deref())
        .await
        .map_err(output::service_error)?;
    let ctx = AdminCtx::operator(&org.id);
    match command {
        Command::Agent(cmd) => admin::agent(services, &ctx, &out, cmd).await,
        Command::Tool(cmd) => tools::tool(services, &ctx, &out, cmd).await,
        Command::Request(cmd) => requests::request(services, &ctx, &out, cmd).await,
        Command::Suggestion(cmd) => suggestions::suggestion(services, &ctx, &out, cmd).await,
        Command::Audit(cmd) => audit::audit(services, &ctx, &out, cmd).await,
        Command::Serve
        | Command::Migrate
        | Command::Keys(_)
        | Command::Admin(_)
        | Command::Backup { .. }
        | Command::Restore { .. }
        | Command::MigrateData { .. } => {
            unreachable!("handled above")
        }
    }
}

async fn finish(services: &Services) {
    services.shutdown().await;
    services.store.close().await;
}

/// Parses `30s`, `15m`, `12h`, `7d` into milliseconds.
pub fn parse_duration_ms(text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    let (num, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: i64 = num
        .parse()
        .with_context(|| format!("invalid duration {text:?}; use e.g. 30m, 12h or 7d"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => anyhow::bail!("invalid duration {text:?}; use e.g. 30m, 12h or 7d"),
    };
    n.checked_mul(unit_ms)
        .filter(|ms| *ms > 0)
        .context("duration out of range")
}
