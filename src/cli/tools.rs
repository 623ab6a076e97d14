//! `agentkey tool …` and `agentkey suggestion …`.

use anyhow::Context;
use clap::{Subcommand, ValueEnum};

use app::model::{AuthType, CredentialMode};
use app::server::Services;
use app::server::clock;
use app::server::service::{actor::AdminCtx, tools};

use super::delivery::{DeliveryFlags, describe};
use super::output::{Out, or_dash, service_error, table};
use super::secrets::read_stdin;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    Shared,
    PerAgent,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Auth {
    ApiKey,
    OauthToken,
    BotToken,
    Other,
}

#[derive(Debug, Subcommand)]
pub enum ToolCmd {
    /// Add a tool. Pending suggestions for it are resolved and their backers get requests.
    Create {
        #[arg(long)]
        name: String,
        /// Product URL or bare domain (identifies the tool).
        #[arg(long)]
        url: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long, value_enum, default_value = "api-key")]
        auth_type: Auth,
        /// shared: one secret for every approved agent; per-agent: a secret per approval.
        #[arg(long, value_enum, default_value = "shared")]
        mode: Mode,
        /// Read the shared secret from stdin.
        #[arg(long)]
        credential_stdin: bool,
        /// Usage guide text given to agents with the credential.
        #[arg(long, default_value = "")]
        instructions: String,
        /// Read the usage guide from a file.
        #[arg(long, conflicts_with = "instructions")]
        instructions_file: Option<std::path::PathBuf>,
        /// The suggestion this tool answers.
        #[arg(long)]
        from_suggestion: Option<String>,
        /// When the secret expires (RFC 3339), for health warnings.
        #[arg(long)]
        expires_at: Option<String>,
        #[command(flatten)]
        delivery: DeliveryFlags,
    },
    /// Change a tool's name, description, URL, or how agents use it (flags not given keep
    /// their value).
    Update {
        /// Tool id (see `agentkey tool list`).
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        url: Option<String>,
        #[command(flatten)]
        delivery: DeliveryFlags,
    },
    /// List the catalog (never shows secrets).
    List,
    /// Set or rotate a shared tool's secret, read from stdin.
    SetCredential {
        /// Tool id (see `agentkey tool list`).
        id: String,
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Save a new usage-guide version.
    Guide {
        /// Tool id (see `agentkey tool list`).
        id: String,
        #[arg(long)]
        text: Option<String>,
        #[arg(long, conflicts_with = "text")]
        file: Option<std::path::PathBuf>,
    },
    /// Show the usage-guide versions.
    GuideHistory {
        /// Tool id (see `agentkey tool list`).
        id: String,
    },
    /// Restore an earlier usage-guide version as a new version.
    GuideRestore {
        /// Tool id (see `agentkey tool list`).
        id: String,
        /// The version to restore (see `agentkey tool guide-history`).
        version: i64,
    },
    /// Set the longest grant an approval may give and the length used when an agent asks for
    /// none (30m, 8h, 7d, standing; leave out for none).
    Durations {
        /// Tool id (see `agentkey tool list`).
        id: String,
        #[arg(long)]
        max: Option<String>,
        #[arg(long)]
        default: Option<String>,
    },
    /// Which agents received (fetch) or used through the proxy which version of the tool's
    /// secret, first and last.
    Exposure {
        /// Tool id (see `agentkey tool list`).
        id: String,
    },
    /// Delete a tool; every agent loses access at once.
    Delete {
        /// Tool id (see `agentkey tool list`).
        id: String,
        #[arg(long)]
        yes: bool,
    },
}

fn parse_time(text: Option<&str>) -> anyhow::Result<Option<i64>> {
    text.map(|t| {
        clock::parse_iso(t)
            .with_context(|| format!("invalid time {t:?}; use RFC 3339, e.g. 2027-01-31T00:00:00Z"))
    })
    .transpose()
}

fn read_text(text: Option<String>, file: Option<std::path::PathBuf>) -> anyhow::Result<String> {
    match (text, file) {
        (Some(t), _) => Ok(t),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read {}", path.display())),
        (None, None) => anyhow::bail!("give the guide with --text or --file"),
    }
}

pub async fn tool(
    services: &Services,
    ctx: &AdminCtx,
    out: &Out,
    cmd: ToolCmd,
) -> anyhow::Result<()> {
    match cmd {
        ToolCmd::Create {
            name,
            url,
            description,
            auth_type,
            mode,
            credential_stdin,
            instructions,
            instructions_file,
            from_suggestion,
            expires_at,
            delivery,
        } => {
            let instructions = match instructions_file {
                Some(path) => std::fs::read_to_string(&path)
                    .with_context(|| format!("failed to read {}", path.display()))?,
                None => instructions,
            };
            let input = tools::NewTool {
                name,
                description,
                url,
                auth_type: match auth_type {
                    Auth::ApiKey => AuthType::ApiKey,
                    Auth::OauthToken => AuthType::OauthToken,
                    Auth::BotToken => AuthType::BotToken,
                    Auth::Other => AuthType::Other,
                },
                credential_mode: match mode {
                    Mode::Shared => CredentialMode::Shared,
                    Mode::PerAgent => CredentialMode::PerAgent,
                },
                credential: if credential_stdin {
                    Some(read_stdin("tool secret")?)
                } else {
                    None
                },
                credential_expires_at: parse_time(expires_at.as_deref())?,
                instructions,
                source_suggestion_id: from_suggestion,
                delivery: delivery.delivery(),
                proxy: delivery.over(&Default::default()),
            };
            let created = tools::create(services, ctx, input)
                .await
                .map_err(service_error)?;
            out.show(&created, |c| {
                let mut text = format!("Tool created: {} ({}), key {}\n", c.tool.name, c.tool.id, c.tool.config_key);
                text.push_str(&describe(&c.tool));
                if !c.tool.credential_configured && c.tool.credential_mode == CredentialMode::Shared {
                    text.push_str("No secret yet: set it with `agentkey tool set-credential <id>` (reads stdin).\n");
                }
                if !c.opened_requests.is_empty() {
                    text.push_str(&format!(
                        "Resolved {} suggestion(s); opened {} pending request(s) for their backers.\n",
                        c.resolved_suggestions.len(),
                        c.opened_requests.len()
                    ));
                }
                text
            })
        }
        ToolCmd::Update {
            id,
            name,
            description,
            url,
            delivery,
        } => {
            let mut tool = tools::get(services, ctx, &id)
                .await
                .map_err(service_error)?;
            if name.is_none() && description.is_none() && url.is_none() && delivery.is_empty() {
                anyhow::bail!(
                    "nothing to change: give --name, --description, --url or a delivery flag (see --help)"
                );
            }
            if name.is_some() || description.is_some() || url.is_some() {
                tool = tools::update_details(
                    services,
                    ctx,
                    &id,
                    name.as_deref().unwrap_or(&tool.name),
                    description.as_deref().unwrap_or(&tool.description),
                    url.as_deref().or(tool.url.as_deref()).unwrap_or(""),
                )
                .await
                .map_err(service_error)?;
            }
            if !delivery.is_empty() {
                let settings = delivery.over(&tool.proxy);
                let mode = delivery.delivery().unwrap_or(tool.delivery);
                tool = tools::set_proxy(services, ctx, &id, Some(mode), &settings)
                    .await
                    .map_err(service_error)?;
            }
            out.show(&tool, |t| {
                format!("Tool {} saved.\n{}", t.name, describe(t))
            })
        }
        ToolCmd::List => {
            let list = tools::list(services, ctx).await.map_err(service_error)?;
            out.show(&list, |l| {
                let rows = l
                    .iter()
                    .map(|t| {
                        let secret = match (t.credential_mode, t.credential_configured) {
                            (CredentialMode::PerAgent, _) => "per agent".to_owned(),
                            (_, true) => format!("set (v{})", t.credential_version),
                            (_, false) => "MISSING".to_owned(),
                        };
                        vec![
                            t.id.clone(),
                            t.name.clone(),
                            t.auth_type.to_string(),
                            secret,
                            format!("v{}", t.instructions_version),
                            t.delivery.to_string(),
                            or_dash(t.url.as_deref()),
                            t.health
                                .iter()
                                .map(|h| h.label())
                                .collect::<Vec<_>>()
                                .join(", "),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "id", "name", "auth", "secret", "guide", "delivery", "url", "health",
                    ],
                    rows,
                )
            })
        }
        ToolCmd::SetCredential { id, expires_at } => {
            let expires = parse_time(expires_at.as_deref())?;
            let secret = read_stdin("tool secret")?;
            let tool = tools::set_credential(services, ctx, &id, secret, expires)
                .await
                .map_err(service_error)?;
            out.show(&tool, |t| {
                format!(
                    "Secret of {} stored (version {}); agents get it on their next fetch.\n",
                    t.name, t.credential_version
                )
            })
        }
        ToolCmd::Guide { id, text, file } => {
            let text = read_text(text, file)?;
            let tool = tools::update_guide(services, ctx, &id, &text)
                .await
                .map_err(service_error)?;
            out.show(&tool, |t| {
                format!(
                    "Usage guide of {} saved as version {}.\n",
                    t.name, t.instructions_version
                )
            })
        }
        ToolCmd::GuideHistory { id } => {
            let versions = tools::guide_history(services, ctx, &id)
                .await
                .map_err(service_error)?;
            out.show(&versions, |v| {
                let rows = v
                    .iter()
                    .map(|g| {
                        vec![
                            g.version.to_string(),
                            g.source.clone(),
                            g.created_by.clone(),
                            g.created_at.clone(),
                            g.instructions.chars().take(60).collect(),
                        ]
                    })
                    .collect();
                table(&["version", "source", "by", "at", "text"], rows)
            })
        }
        ToolCmd::GuideRestore { id, version } => {
            let tool = tools::restore_guide(services, ctx, &id, version)
                .await
                .map_err(service_error)?;
            out.show(&tool, |t| {
                format!(
                    "Restored version {version} of {} as version {}.\n",
                    t.name, t.instructions_version
                )
            })
        }
        ToolCmd::Durations { id, max, default } => {
            super::lifecycle::durations(services, ctx, out, &id, max, default).await
        }
        ToolCmd::Exposure { id } => super::lifecycle::exposure(services, ctx, out, &id).await,
        ToolCmd::Delete { id, yes } => {
            let tool = tools::get(services, ctx, &id)
                .await
                .map_err(service_error)?;
            let (approved, pending) = tools::delete_impact(services, ctx, &id)
                .await
                .map_err(service_error)?;
            if !yes {
                anyhow::bail!(
                    "deleting {} ends {approved} approved grant(s) and {pending} pending request(s); run again with --yes to confirm",
                    tool.name
                );
            }
            let (approved, pending) = tools::delete(services, ctx, &id)
                .await
                .map_err(service_error)?;
            let summary = serde_json::json!({ "tool_id": tool.id, "approved_revoked": approved, "pending_closed": pending });
            out.show(&summary, |_| format!("Deleted {} ({approved} grant(s) ended, {pending} pending request(s) closed).\n", tool.name))
        }
    }
}
