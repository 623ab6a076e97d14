//! Operator commands for tool and guide suggestions: list them with their backers, dismiss
//! them, accept a guide fact.

use anyhow::Context;
use app::model::SuggestionStatus;
use app::server::Services;
use app::server::service::{actor::AdminCtx, guides, suggestions};
use clap::Subcommand;

use super::output::{Out, or_dash, service_error, table};

#[derive(Debug, Subcommand)]
pub enum SuggestionCmd {
    /// List tool suggestions (or guide suggestions with --guides) and their backers.
    List {
        #[arg(long, default_value = "pending")]
        status: String,
        #[arg(long)]
        guides: bool,
    },
    /// Dismiss a tool suggestion (24 h cooldown); the reason is shown to agents.
    Dismiss {
        /// Suggestion id (see `agentkey suggestion list`).
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Accept a guide suggestion into a new guide version.
    AcceptGuide {
        /// Suggestion id (see `agentkey suggestion list`).
        id: String,
        /// Full replacement guide text instead of appending the fact.
        #[arg(long)]
        text: Option<String>,
    },
    /// Dismiss a guide suggestion with a reason.
    DismissGuide {
        /// Suggestion id (see `agentkey suggestion list`).
        id: String,
        #[arg(long)]
        reason: String,
    },
}

pub async fn suggestion(
    services: &Services,
    ctx: &AdminCtx,
    out: &Out,
    cmd: SuggestionCmd,
) -> anyhow::Result<()> {
    match cmd {
        SuggestionCmd::List {
            status,
            guides: true,
        } => {
            let status = SuggestionStatus::parse(&status)
                .context("status must be pending, dismissed or accepted")?;
            let list = guides::list(services, ctx, status)
                .await
                .map_err(service_error)?;
            out.show(&list, |l| {
                let rows = l
                    .iter()
                    .map(|g| {
                        vec![
                            g.id.clone(),
                            g.tool_name.clone(),
                            g.supporters.len().to_string(),
                            g.learned.chars().take(70).collect(),
                        ]
                    })
                    .collect();
                table(&["id", "tool", "backers", "learned"], rows)
            })
        }
        SuggestionCmd::List {
            status,
            guides: false,
        } => {
            let status = SuggestionStatus::parse(&status)
                .context("status must be pending, dismissed or accepted")?;
            let list = suggestions::list(services, ctx, status)
                .await
                .map_err(service_error)?;
            out.show(&list, |l| {
                let rows = l
                    .iter()
                    .map(|s| {
                        let reasons: Vec<String> = s
                            .supporters
                            .iter()
                            .map(|b| format!("{}: {}", b.agent_name, b.reason))
                            .collect();
                        vec![
                            s.id.clone(),
                            s.name.clone(),
                            or_dash(s.url.as_deref()),
                            s.supporters.len().to_string(),
                            reasons.join(" | "),
                        ]
                    })
                    .collect();
                table(&["id", "name", "url", "backers", "reasons"], rows)
            })
        }
        SuggestionCmd::Dismiss { id, reason } => {
            let s = suggestions::dismiss(services, ctx, &id, &reason)
                .await
                .map_err(service_error)?;
            out.show(&s, |s| {
                format!(
                    "Dismissed {}; it cannot be suggested again until {}.\n",
                    s.name,
                    or_dash(s.dismissed_until.as_deref())
                )
            })
        }
        SuggestionCmd::AcceptGuide { id, text } => {
            let tool = guides::accept(services, ctx, &id, text.as_deref())
                .await
                .map_err(service_error)?;
            out.show(&tool, |t| {
                format!(
                    "Accepted into the guide of {} (version {}).\n",
                    t.name, t.instructions_version
                )
            })
        }
        SuggestionCmd::DismissGuide { id, reason } => {
            guides::dismiss(services, ctx, &id, &reason)
                .await
                .map_err(service_error)?;
            out.show(&serde_json::json!({ "dismissed": id }), |_| {
                "Dismissed.\n".to_owned()
            })
        }
    }
}
