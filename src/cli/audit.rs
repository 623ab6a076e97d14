//! `agentkey audit …` and `agentkey keys …`.

use anyhow::Context;
use clap::Subcommand;

use app::server::Services;
use app::server::crypto::MasterKey;
use app::server::service::{actor::AdminCtx, audit, keys};
use app::server::store::{Store, audit::AuditFilter};

use super::output::{Out, or_dash, service_error, table};
use crate::config::Settings;
use crate::startup;

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain; reports the first broken row. Exit status 1 when broken.
    Verify,
    /// Show the newest events.
    Tail {
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        tool: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Re-wrap every organization's data key under a new master key (secrets untouched).
    /// With AGENTKEY_MASTER_KEY set, the new key comes from AGENTKEY_NEW_MASTER_KEY;
    /// with the embedded key file, a new key is generated and the file replaced.
    RotateMaster,
}

pub async fn audit(
    services: &Services,
    ctx: &AdminCtx,
    out: &Out,
    cmd: AuditCmd,
) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::Verify => {
            let report = audit::verify(services, ctx).await.map_err(service_error)?;
            out.show(&report, |r| match r.broken_at_seq {
                None => format!("Audit chain intact: {} rows verified.\n", r.rows_checked),
                Some(seq) => format!(
                    "Audit chain BROKEN at row {seq}: {}\n",
                    r.problem.as_deref().unwrap_or("")
                ),
            })?;
            if report.broken_at_seq.is_some() {
                anyhow::bail!("audit chain verification failed");
            }
            Ok(())
        }
        AuditCmd::Tail {
            limit,
            action,
            agent,
            tool,
        } => {
            let filter = AuditFilter {
                action,
                agent_id: agent,
                tool_id: tool,
                ..AuditFilter::default()
            };
            let events = audit::list(services, ctx, &filter, limit)
                .await
                .map_err(service_error)?;
            out.show(&events, |e| {
                let rows = e
                    .iter()
                    .rev()
                    .map(|ev| {
                        vec![
                            ev.seq.to_string(),
                            ev.created_at.clone(),
                            ev.action.clone(),
                            ev.actor_label.clone(),
                            or_dash(ev.target_id.as_deref()),
                            or_dash(ev.ip.as_deref()),
                        ]
                    })
                    .collect();
                table(&["seq", "at", "action", "actor", "target", "ip"], rows)
            })
        }
    }
}

pub async fn keys(settings: &Settings, cmd: KeysCmd) -> anyhow::Result<()> {
    let KeysCmd::RotateMaster = cmd;
    let store = Store::connect(&settings.database_url).await?;
    store.migrate().await?;
    let old = startup::resolve_master_key(settings, &store).await?;
    let result = if settings.master_key.is_some() {
        let text = std::env::var("AGENTKEY_NEW_MASTER_KEY").context(
            "set AGENTKEY_NEW_MASTER_KEY to the new key (base64 of 32 bytes, e.g. `openssl rand -base64 32`)",
        )?;
        let new = MasterKey::from_base64(&text)
            .context("AGENTKEY_NEW_MASTER_KEY must be base64 of exactly 32 bytes")?;
        let n = keys::rotate_master(&store, &old, &new).await?;
        eprintln!(
            "Re-wrapped {n} data key(s) under key {}. Set AGENTKEY_MASTER_KEY to the new key before the next start.",
            new.id()
        );
        Ok(())
    } else {
        rotate_key_file(settings, &store, &old).await
    };
    store.close().await;
    result
}

/// File-based rotation: the new key is written beside the old one first, the data keys are
/// re-wrapped in one transaction, then the new file replaces the old. A crash in between is
/// finished at the next start (see `startup::open`).
async fn rotate_key_file(
    settings: &Settings,
    store: &Store,
    old: &MasterKey,
) -> anyhow::Result<()> {
    let path = &settings.master_key_file;
    let pending = startup::pending_key_path(path);
    if pending.exists() {
        anyhow::bail!(
            "{} exists: a previous rotation did not finish; start the server once to complete it",
            pending.display()
        );
    }
    let new = MasterKey::generate();
    startup::write_key_file(&pending, &new)?;
    let n = match keys::rotate_master(store, old, &new).await {
        Ok(n) => n,
        Err(err) => {
            let _ = std::fs::remove_file(&pending);
            return Err(err);
        }
    };
    std::fs::rename(&pending, path)
        .with_context(|| format!("failed to replace {}", path.display()))?;
    eprintln!(
        "Re-wrapped {n} data key(s); {} now holds key {} (was {}). Back it up.",
        path.display(),
        new.id(),
        old.id()
    );
    Ok(())
}
