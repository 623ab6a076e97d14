//! `agentkey admin …` and `agentkey agent …`.

use clap::Subcommand;

use app::model::{AgentStatus, IssuedKey};
use app::server::Services;
use app::server::service::{actor::AdminCtx, agents, orgs};

use super::output::{Out, or_dash, service_error, table};

#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Create an organization (with its data key and audit chain).
    CreateOrg {
        /// Display name, 2–120 characters.
        #[arg(long)]
        name: String,
        /// Email of the first owner (signs in to the dashboard later).
        #[arg(long)]
        owner_email: Option<String>,
    },
    /// List organizations.
    ListOrgs,
}

#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    /// Register an agent; prints its key once with ready-to-paste snippets.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List agents.
    List,
    /// Replace an agent's key (the old one stops working at once).
    Rotate {
        /// Agent id (see `agentkey agent list`).
        id: String,
    },
    /// Suspend an agent: every call gets 403 until reactivated; grants are kept.
    Suspend {
        /// Agent id (see `agentkey agent list`).
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reactivate a suspended agent.
    Reactivate {
        /// Agent id (see `agentkey agent list`).
        id: String,
    },
    /// Delete an agent and its grants (the audit log keeps its history).
    Delete {
        /// Agent id (see `agentkey agent list`).
        id: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

pub async fn admin(services: &Services, out: &Out, cmd: AdminCmd) -> anyhow::Result<()> {
    match cmd {
        AdminCmd::CreateOrg { name, owner_email } => {
            let org = orgs::create(services, &name, owner_email.as_deref())
                .await
                .map_err(service_error)?;
            out.show(&org, |o| {
                format!("Organization created: {} ({})\n", o.name, o.id)
            })
        }
        AdminCmd::ListOrgs => {
            let list = orgs::list(services).await.map_err(service_error)?;
            out.show(&list, |l| {
                table(
                    &["id", "name", "created"],
                    l.iter()
                        .map(|o| vec![o.id.clone(), o.name.clone(), o.created_at.clone()])
                        .collect(),
                )
            })
        }
    }
}

pub async fn agent(
    services: &Services,
    ctx: &AdminCtx,
    out: &Out,
    cmd: AgentCmd,
) -> anyhow::Result<()> {
    match cmd {
        AgentCmd::Create { name, description } => {
            let issued = agents::create(services, ctx, &name, &description)
                .await
                .map_err(service_error)?;
            out.show(&issued, |i| issued_text("Agent created", i))
        }
        AgentCmd::List => {
            let list = agents::list(services, ctx).await.map_err(service_error)?;
            out.show(&list, |l| {
                let rows = l
                    .iter()
                    .map(|a| {
                        vec![
                            a.id.clone(),
                            a.name.clone(),
                            a.status.to_string(),
                            format!("{}…", a.key_prefix),
                            or_dash(a.last_used_at.as_deref()),
                        ]
                    })
                    .collect();
                table(&["id", "name", "status", "key", "last used"], rows)
            })
        }
        AgentCmd::Rotate { id } => {
            let issued = agents::rotate_key(services, ctx, &id)
                .await
                .map_err(service_error)?;
            out.show(&issued, |i| {
                issued_text("Key rotated; the old key no longer works", i)
            })
        }
        AgentCmd::Suspend { id, reason } => {
            let agent = agents::set_status(
                services,
                ctx,
                &id,
                AgentStatus::Suspended,
                reason.as_deref(),
            )
            .await
            .map_err(service_error)?;
            out.show(&agent, |a| {
                format!("Suspended {} ({}); its calls now get 403.\n", a.name, a.id)
            })
        }
        AgentCmd::Reactivate { id } => {
            let agent = agents::set_status(services, ctx, &id, AgentStatus::Active, None)
                .await
                .map_err(service_error)?;
            out.show(&agent, |a| format!("Reactivated {} ({}).\n", a.name, a.id))
        }
        AgentCmd::Delete { id, yes } => {
            let agent = agents::get(services, ctx, &id)
                .await
                .map_err(service_error)?;
            if !yes {
                anyhow::bail!(
                    "deleting {} removes its key and grants; run again with --yes to confirm",
                    agent.name
                );
            }
            agents::delete(services, ctx, &id)
                .await
                .map_err(service_error)?;
            out.show(&agent, |a| format!("Deleted {} ({}).\n", a.name, a.id))
        }
    }
}

fn issued_text(title: &str, i: &IssuedKey) -> String {
    let s = &i.snippets;
    format!(
        "{title}: {} ({})\n\nAPI key — shown only now, store it in the agent's environment:\n\n  {}\n\n\
         ---- environment ----\n{}\n\n---- CLAUDE.md ----\n{}\n---- AGENTS.md ----\n{}\n---- .cursorrules ----\n{}\n\
         ---- system prompt ----\n{}\n\n---- curl ----\n{}{}",
        i.agent.name,
        i.agent.id,
        i.api_key,
        s.env,
        s.claude_md,
        s.agents_md,
        s.cursorrules,
        s.system_prompt,
        s.curl,
        s.mcp
            .iter()
            .map(|m| format!("\n---- MCP: {} ({}) ----\n{}", m.client, m.place, m.text))
            .collect::<String>()
    )
}
