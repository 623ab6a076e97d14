//! `agentkey audit …` and `agentkey keys …`.

use anyhow::Context;
use clap::Subcommand;

use app::server::Services;
use app::server::crypto::MasterKey;
use app::server::service::{actor::AdminCtx, audit, keys};
use app::server::store::{Backend, Store, audit::AuditFilter, copy};

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

/// `agentkey backup FILE`: copy, then prove the copy is usable before saying so. SQLite is
/// copied whole (`VACUUM INTO`); PostgreSQL is exported table by table into a new SQLite file.
pub async fn backup(settings: &Settings, to: &std::path::Path, json: bool) -> anyhow::Result<()> {
    if to.exists() {
        anyhow::bail!("{} already exists; choose a new file name", to.display());
    }
    if settings.is_embedded() {
        let source = app::server::store::sqlite_path(&settings.database_url);
        if !std::path::Path::new(source).exists() {
            anyhow::bail!("there is no database at {source} to back up (AGENTKEY_DATABASE_URL)");
        }
    }
    let store = Store::connect(&settings.database_url).await?;
    let copied = match store.backend() {
        Backend::Sqlite => store.backup_to(to).await.map(|()| None),
        Backend::Postgres => export_to_file(&store, to).await.map(Some),
    };
    store.close().await;
    let copied = copied?;
    let copy = Store::connect(&format!("sqlite://{}", to.display())).await?;
    let checked = check_copy(&copy).await;
    copy.close().await;
    let (orgs, rows) = checked?;
    let size = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    let table_rows = copied.as_ref().map(copy::CopyReport::rows);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "file": to.display().to_string(), "bytes": size, "organizations": orgs,
                "audit_rows_verified": rows, "rows_exported": table_rows,
            })
        );
    } else {
        let source = if copied.is_some() {
            " (logical export from PostgreSQL; restore with `agentkey migrate-data`)"
        } else {
            ""
        };
        let key = if settings.is_embedded() || settings.master_key_file_named {
            format!(
                "the master key ({}) or AGENTKEY_MASTER_KEY",
                settings.master_key_file.display()
            )
        } else {
            "the master key (AGENTKEY_MASTER_KEY)".to_owned()
        };
        println!(
            "Backup written to {}{source} ({size} bytes): integrity ok, {orgs} organization(s), {rows} audit rows verified.\n\
             It holds encrypted secrets only; keep {key} in a separate, safe place.",
            to.display(),
        );
    }
    Ok(())
}

/// Exports a PostgreSQL database into a new SQLite file; removes the file if that fails.
async fn export_to_file(store: &Store, to: &std::path::Path) -> anyhow::Result<copy::CopyReport> {
    let result = async {
        let target = Store::connect(&format!("sqlite://{}", to.display())).await?;
        let copied = async {
            target.migrate().await?;
            copy::copy_all(store, &target).await
        }
        .await;
        target.close().await;
        copied
    }
    .await;
    if result.is_err() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", to.display()));
        }
    }
    result
}

/// Integrity and every organization's audit chain (deleted ones included) of a copy:
/// (organizations, audit rows verified).
async fn check_copy(copy: &Store) -> anyhow::Result<(usize, i64)> {
    let integrity = copy.integrity_check().await?;
    if integrity != "ok" {
        anyhow::bail!("the copy failed its integrity check: {integrity}");
    }
    let mut rows = 0;
    let orgs = app::server::store::orgs::list_all_organization_ids(copy.reader()).await?;
    for org in &orgs {
        let report = app::server::audit::chain::verify(copy, org).await?;
        if let Some(seq) = report.broken_at_seq {
            anyhow::bail!("the copy's audit chain of organization {org} is broken at row {seq}");
        }
        rows += report.rows_checked;
    }
    Ok((orgs.len(), rows))
}

/// `agentkey migrate-data --from URL --to URL`: migrate the target, copy, verify.
pub async fn migrate_data(from: &str, to: &str, json: bool) -> anyhow::Result<()> {
    // Opening a SQLite URL creates the file: a mistyped source must not leave an empty one.
    let source_file = app::server::store::sqlite_path(from);
    if Backend::of_url(from) == Backend::Sqlite && !std::path::Path::new(source_file).exists() {
        anyhow::bail!("the source database {source_file} does not exist");
    }
    let source = Store::connect(from)
        .await
        .context("cannot open the source (--from)")?;
    let target = Store::connect(to)
        .await
        .context("cannot open the target (--to)")?;
    let result = async {
        target.migrate().await?;
        let report = copy::copy_all(&source, &target).await?;
        let checked = check_copy(&target).await?;
        anyhow::Ok((report, checked))
    }
    .await;
    source.close().await;
    target.close().await;
    let (report, (orgs, audit_rows)) = result?;
    if json {
        let tables: serde_json::Map<String, serde_json::Value> = report
            .tables
            .iter()
            .map(|(t, n)| (t.clone(), (*n).into()))
            .collect();
        println!(
            "{}",
            serde_json::json!({ "from": source.location(), "to": target.location(), "tables": tables, "rows": report.rows(), "organizations": orgs, "audit_rows_verified": audit_rows })
        );
    } else {
        println!(
            "Copied {} rows in {} tables from {} to {}: row counts match, {orgs} organization(s), {audit_rows} audit rows verified.\n\
             Run the target with the same master key as the source (on SQLite it is the master.key file beside the database).",
            report.rows(),
            report.tables.len(),
            source.location(),
            target.location()
        );
    }
    Ok(())
}
