//! Whole-database copies, run offline by the operator: `agentkey backup` and
//! `agentkey migrate-data`. Each copies, then proves the copy usable (integrity, every
//! organization's audit chain) before reporting success; a failed copy leaves no file behind.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::server::audit::chain;
use crate::server::crypto::MasterKey;
use crate::server::store::{Backend, Store, copy, keys, lock, orgs, sqlite_path};

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

/// A finished restore.
#[derive(Debug)]
pub struct RestoreReport {
    pub database: PathBuf,
    /// Where the database it replaced is kept (`None` when there was none).
    pub previous: Option<PathBuf>,
    pub verified: Verified,
}

/// Replaces the embedded SQLite database with the backup `from`, offline. Refused, with the
/// live database untouched, unless: no server runs on it, the backup passes its integrity
/// check and every organization's audit chain, and `master` opens every data key in it. The
/// database it replaces is kept beside it as `<name>.before-restore-<time>`.
pub async fn restore(
    database_url: &str,
    from: &Path,
    master: &MasterKey,
    now: &str,
) -> anyhow::Result<RestoreReport> {
    require_embedded(database_url)?;
    let live = PathBuf::from(sqlite_path(database_url));
    if !from.is_file() {
        anyhow::bail!("there is no backup at {}", from.display());
    }
    if live.exists() && std::fs::canonicalize(&live)? == std::fs::canonicalize(from)? {
        anyhow::bail!(
            "{} is the live database itself; name a backup file",
            from.display()
        );
    }
    if let Some(dir) = live.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let _alone = lock::hold_alone(&live)?;

    // The backup, checked as it is (not migrated).
    let backup = Store::connect(&format!("sqlite://{}", from.display()))
        .await
        .with_context(|| format!("cannot open the backup {}", from.display()))?;
    let checked = async {
        let verified = verify_copy(&backup).await?;
        check_master_key(&backup, master).await?;
        anyhow::Ok(verified)
    }
    .await;
    backup.close().await;
    let verified = checked.with_context(|| format!("{} is not restorable", from.display()))?;

    let previous = if live.exists() {
        // Everything the live database holds goes into its main file before it moves.
        let current = Store::connect(database_url).await?;
        let flushed = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(current.writer())
            .await;
        current.close().await;
        flushed.context("failed to checkpoint the live database")?;
        let kept = sibling(&live, &format!(".before-restore-{now}"));
        for suffix in ["", "-wal", "-shm"] {
            let file = sibling(&live, suffix);
            if file.exists() {
                std::fs::rename(&file, sibling(&kept, suffix))
                    .with_context(|| format!("failed to move {} aside", file.display()))?;
            }
        }
        Some(kept)
    } else {
        None
    };
    let put_back = || {
        if let Some(kept) = &previous {
            let _ = std::fs::rename(kept, &live);
        }
    };
    let staged = sibling(&live, ".restoring");
    let copied = std::fs::copy(from, &staged)
        .and_then(|_| std::fs::File::open(&staged)?.sync_all())
        .and_then(|()| std::fs::rename(&staged, &live));
    if let Err(err) = copied {
        let _ = std::fs::remove_file(&staged);
        put_back();
        return Err(err).context("failed to put the backup in place; the database is unchanged");
    }
    let reopened = async {
        let restored = Store::connect(database_url).await?;
        let integrity = restored.integrity_check().await;
        restored.close().await;
        match integrity? {
            ok if ok == "ok" => anyhow::Ok(()),
            other => anyhow::bail!("the restored database failed its integrity check: {other}"),
        }
    }
    .await;
    if let Err(err) = reopened {
        put_back();
        return Err(err.context("the restore was undone; the database is unchanged"));
    }
    Ok(RestoreReport {
        database: live,
        previous,
        verified,
    })
}

/// A restore replaces the embedded SQLite file; PostgreSQL loads backups with `migrate-data`.
pub fn require_embedded(database_url: &str) -> anyhow::Result<()> {
    if Backend::of_url(database_url) != Backend::Sqlite {
        anyhow::bail!(
            "`agentkey restore` replaces the embedded SQLite database; load a backup into PostgreSQL with \
             `agentkey migrate-data --from sqlite://FILE --to postgres://…` (into an empty database)"
        );
    }
    Ok(())
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Every data key of the backup opens with `master` (else its secrets would be lost).
async fn check_master_key(backup: &Store, master: &MasterKey) -> anyhow::Result<()> {
    for row in keys::list_data_keys(backup.reader()).await? {
        let opened = row.kek_id == master.id()
            && master
                .unwrap_key(&row.organization_id, &row.id, &row.wrapped_key)
                .is_ok();
        if !opened {
            anyhow::bail!(
                "the current master key (id {}) does not open the data key of organization {} (sealed with key id {}); \
                 restore with the master key the backup was made under",
                master.id(),
                row.organization_id,
                row.kek_id
            );
        }
    }
    Ok(())
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
