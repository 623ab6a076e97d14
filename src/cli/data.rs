//! `agentkey backup` and `agentkey migrate-data`: the service copies and verifies, this
//! presents the result.

use app::server::service::backup;

use crate::config::Settings;

/// `agentkey backup FILE`.
pub async fn backup(settings: &Settings, to: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let report = backup::backup(&settings.database_url, to).await?;
    let backup::Verified {
        organizations,
        audit_rows,
    } = report.verified;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "file": to.display().to_string(), "bytes": report.bytes,
                "organizations": organizations, "audit_rows_verified": audit_rows,
                "rows_exported": report.exported.as_ref().map(|c| c.rows()),
            })
        );
        return Ok(());
    }
    let source = if report.exported.is_some() {
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
        "Backup written to {}{source} ({} bytes): integrity ok, {organizations} organization(s), {audit_rows} audit rows verified.\n\
         It holds encrypted secrets only; keep {key} in a separate, safe place.",
        to.display(),
        report.bytes,
    );
    Ok(())
}

/// `agentkey restore FILE`: the master key comes from where the server reads it, and is never
/// generated here.
pub async fn restore(
    settings: &Settings,
    from: &std::path::Path,
    json: bool,
) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    backup::require_embedded(&settings.database_url)?;
    let master = match &settings.master_key {
        Some(text) => {
            app::server::crypto::MasterKey::from_base64(text.expose_secret()).map_err(|_| {
                anyhow::anyhow!("AGENTKEY_MASTER_KEY must be base64 of exactly 32 bytes")
            })?
        }
        None if settings.master_key_file.exists() => {
            crate::startup::read_key_file(&settings.master_key_file)?
        }
        None => anyhow::bail!(
            "no master key: the restored secrets need the key the backup was made under \
             (AGENTKEY_MASTER_KEY, or the key file {})",
            settings.master_key_file.display()
        ),
    };
    let now = app::server::clock::iso(app::server::clock::now_ms() / 1000 * 1000)
        .replace([':', '-'], "")
        .replace(".000", "");
    let report = backup::restore(&settings.database_url, from, &master, &now).await?;
    let backup::Verified {
        organizations,
        audit_rows,
    } = report.verified;
    let previous = report.previous.as_ref().map(|p| p.display().to_string());
    if json {
        println!(
            "{}",
            serde_json::json!({
                "database": report.database.display().to_string(), "previous": previous,
                "organizations": organizations, "audit_rows_verified": audit_rows,
            })
        );
        return Ok(());
    }
    println!(
        "Restored {} into {}: integrity ok, {organizations} organization(s), {audit_rows} audit rows verified.{}",
        from.display(),
        report.database.display(),
        previous.map_or(String::new(), |p| format!(
            " The database it replaced is kept at {p}."
        ))
    );
    Ok(())
}

/// `agentkey migrate-data --from URL --to URL`.
pub async fn migrate_data(from: &str, to: &str, json: bool) -> anyhow::Result<()> {
    let report = backup::migrate_data(from, to).await?;
    let backup::Verified {
        organizations,
        audit_rows,
    } = report.verified;
    if json {
        let tables: serde_json::Map<String, serde_json::Value> = report
            .copied
            .tables
            .iter()
            .map(|(t, n)| (t.clone(), (*n).into()))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "from": report.from, "to": report.to, "tables": tables,
                "rows": report.copied.rows(), "organizations": organizations,
                "audit_rows_verified": audit_rows,
            })
        );
        return Ok(());
    }
    println!(
        "Copied {} rows in {} tables from {} to {}: row counts match, {organizations} organization(s), {audit_rows} audit rows verified.\n\
         Run the target with the same master key as the source (on SQLite it is the master.key file beside the database).",
        report.copied.rows(),
        report.copied.tables.len(),
        report.from,
        report.to,
    );
    Ok(())
}
