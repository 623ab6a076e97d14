//! The lock file beside an embedded SQLite database: every server holds it shared for as long
//! as it runs, and a restore must hold it alone, so a database is never swapped under a
//! running server.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// `<database>.lock`.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn open(database: &Path) -> anyhow::Result<File> {
    let path = lock_path(database);
    // The first start creates the database's folder (`data/` by default) before the database.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open the lock file {}: {e}", path.display()))
}

/// Held by a running server (shared: other servers and CLI commands may run beside it).
pub fn hold_shared(database: &Path) -> anyhow::Result<File> {
    let file = open(database)?;
    file.try_lock_shared().map_err(|_| {
        anyhow::anyhow!(
            "{} is being restored; start the server once `agentkey restore` has finished",
            database.display()
        )
    })?;
    Ok(file)
}

/// Held by a restore: refused while any server runs on the database.
pub fn hold_alone(database: &Path) -> anyhow::Result<File> {
    let file = open(database)?;
    file.try_lock().map_err(|_| {
        anyhow::anyhow!(
            "a server is running on {}; stop it (every instance) before restoring",
            database.display()
        )
    })?;
    Ok(file)
}
