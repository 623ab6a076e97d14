//! The command line (placeholder while the full CLI is written).

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::startup;

#[derive(Debug, Parser)]
#[command(name = "agentkey", version, about = "Self-hosted credential broker for AI agents")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(None)?;
    match cli.command {
        Command::Serve => {
            let app = startup::Application::build(&settings).await?;
            tracing::info!(addr = %app.addr(), "listening");
            app.run_until(startup::shutdown_signal()).await
        }
    }
}
