//! Whole-database copies, run offline by the operator: `agentkey backup` and
//! `agentkey migrate-data`. Each copies, then proves the copy usable (integrity, every
//! organization's audit chain) before reporting success; a failed copy leaves no file behind.

use std::path::Path;

use anyhow::Context;

use crate::server::audit::chain;
use crate::server::store::{Backend, Store, copy, orgs, sqlite_path};

/// What a verified copy holds.
#[derive(Debug)]
pub struct Verified {
    pub organizations: usize,
    pub audit_rows: i64,
}

/// A finished backup.
#[derive(Debug)]
pub struct BackupReport {
    pub bytes: u64,
    /// Rows per table when the source was exported table by table (PostgreSQL); `None` for a
    /// whole-file SQLite copy.
    pub exported: Option<copy::CopyReport>,
    pub verified: Verified,
}

/// A finished migration between two databases.
#[derive(Debug)]
pub struct MigrateReport {
    pub from: String,
    pub to: String,
    pub copied: copy::CopyReport,
    pub verified: Verified,
}

/// Backs `database_url` up into the new SQLite file `to`. SQLite is copied whole
/// (`VACUUM INTO`); PostgreSQL is exported table by table into a migrated SQLite file.
pub async fn backup(database_url: &str, to: &Path) -> anyhow::Result<BackupReport> {
    if to.exists() {
        anyhow::bail!("{} already exists; choose a new file name", to.display());
    }
    if Backend::of_url(database_url) == Backend::Sqlite {
        let source = sqlite_path(database_url);
        if !Path::new(source).exists() {
            anyhow::bail!("there is no database at {source} to back up (AGENTKEY_DATABASE_URL)");
        }
    }
    let store = Store::connect(database_url).await?;
    let copied = match store.backend() {
        Backend::Sqlite => store.backup_to(to).await.map(|()| None),
        Backend::Postgres => export_to_file(&store, to).await.map(Some),
    };
    store.close().await;
    let exported = copied?;
    let copy = Store::connect(&format!("sqlite://{}", to.display())).await?;
    let checked = verify_copy(&copy).await;
    copy.close().await;
    let verified = checked?;
    let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport {
        bytes,
        exported,
        verified,
    })
}

/// Copies every table of `from` into `to` (migrated first), then verifies the target.
pub async fn migrate_data(from: &str, to: &str) -> anyhow::Result<MigrateReport> {
    // Opening a SQLite URL creates the file: a mistyped source must not leave an empty one.
    let source_file = sqlite_path(from);
    if Backend::of_url(from) == Backend::Sqlite && !Path::new(source_file).exists() {
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
        let copied = copy::copy_all(&source, &target).await?;
        let verified = verify_copy(&target).await?;
        anyhow::Ok((copied, verified))
    }
    .await;
    source.close().await;
    target.close().await;
    let (copied, verified) = result?;
    Ok(MigrateReport {
        from: source.location().to_owned(),
        to: target.location().to_owned(),
        copied,
        verified,
    })
}

/// Exports a PostgreSQL database into a new SQLite file; removes the file if that fails.
async fn export_to_file(store: &Store, to: &Path) -> anyhow::Result<copy::CopyReport> {
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

/// Integrity and every organization's audit chain (deleted organizations included).
async fn verify_copy(copy: &Store) -> anyhow::Result<Verified> {
    let integrity = copy.integrity_check().await?;
    if integrity != "ok" {
        anyhow::bail!("the copy failed its integrity check: {integrity}");
    }
    let mut audit_rows = 0;
    let ids = orgs::list_all_organization_ids(copy.reader()).await?;
    for org in &ids {
        let report = chain::verify(copy, org).await?;
        if let Some(seq) = report.broken_at_seq {
            anyhow::bail!("the copy's audit chain of organization {org} is broken at row {seq}");
        }
        audit_rows += report.rows_checked;
    }
    Ok(Verified {
        organizations: ids.len(),
        audit_rows,
    })
}
