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
