//! Seeds the history benchmark's long audit log through SQL: rows a busy year would leave,
//! chained as the server chains them, with the checkpoint its maintenance pass would have
//! moved.

use sqlx::{AnyConnection, Connection};

use app::model::{AgentId, OrgId, ToolId};
use app::server::audit::chain;
use app::server::store::audit::{AuditRow, insert_rows};

/// Appends chained rows to the organization's log until it holds `total`, with the server
/// stopped; returns the count. The rows look like a busy year: mostly fetches by every agent
/// of every tool, some requests and decisions, times spread up to a minute ago.
pub async fn append_rows(db: &mut AnyConnection, total: i64) -> anyhow::Result<i64> {
    sqlx::raw_sql("PRAGMA synchronous = OFF")
        .execute(&mut *db)
        .await?;
    let (org, mut seq, mut prev): (String, i64, String) =
        sqlx::query_as("SELECT organization_id, seq, hash FROM audit_heads")
            .fetch_one(&mut *db)
            .await?;
    let agents: Vec<(String, String)> = sqlx::query_as("SELECT id, name FROM agents ORDER BY name")
        .fetch_all(&mut *db)
        .await?;
    let tools: Vec<(String, String)> = sqlx::query_as("SELECT id, name FROM tools ORDER BY name")
        .fetch_all(&mut *db)
        .await?;
    let now = app::server::clock::now_ms();
    let first_at = now - 365 * 86_400_000;
    let step = ((now - 60_000 - first_at) / (total - seq).max(1)).max(1);
    // Written through the server's own insert, which takes up to 512 rows per statement.
    const PER_INSERT: usize = 512;
    let mut tx = db.begin().await?;
    let mut batch: Vec<AuditRow> = Vec::with_capacity(PER_INSERT);
    let mut in_tx = 0;
    while seq < total {
        seq += 1;
        let n = seq as usize;
        let (agent_id, agent_name) = &agents[n % agents.len()];
        let (tool_id, tool_name) = &tools[(n / agents.len()) % tools.len()];
        let action = match n % 50 {
            0 => "grant.requested",
            1 => "grant.approved",
            2..=9 => "proxy.called",
            _ => "credential.vended",
        };
        let mut row = AuditRow {
            id: uuid::Uuid::now_v7().to_string(),
            organization_id: OrgId::new(org.as_str()),
            seq,
            created_at: first_at + (seq - 1) * step,
            actor_type: "agent".into(),
            actor_id: agent_id.clone(),
            actor_label: agent_name.clone(),
            action: action.into(),
            target_type: Some("tool".into()),
            target_id: Some(tool_id.clone()),
            agent_id: Some(AgentId::new(agent_id.as_str())),
            tool_id: Some(ToolId::new(tool_id.as_str())),
            ip: Some("127.0.0.1".into()),
            user_agent: Some("agentkey-bench-history".into()),
            metadata: format!(r#"{{"tool_name":"{tool_name}","credential_version":1}}"#),
            prev_hash: std::mem::take(&mut prev),
            hash: String::new(),
        };
        row.hash = chain::row_hash(&row);
        prev = row.hash.clone();
        batch.push(row);
        if batch.len() == PER_INSERT {
            insert_rows(&mut tx, &batch).await?;
            batch.clear();
            in_tx += PER_INSERT;
            if in_tx >= 200_000 {
                tx.commit().await?;
                tx = db.begin().await?;
                in_tx = 0;
            }
        }
    }
    insert_rows(&mut tx, &batch).await?;
    sqlx::query("UPDATE audit_heads SET seq = $1, hash = $2 WHERE organization_id = $3")
        .bind(seq)
        .bind(&prev)
        .bind(&org)
        .execute(&mut *tx)
        .await?;
    // A year of history has been checked as it grew: the maintenance worker moves the
    // checkpoint every minute, so the dashboard walks at most a minute of rows.
    sqlx::query(
        "INSERT INTO audit_checkpoints (organization_id, seq, hash, checked_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (organization_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, checked_at = excluded.checked_at",
    )
    .bind(&org)
    .bind(seq)
    .bind(&prev)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::raw_sql("PRAGMA synchronous = FULL")
        .execute(&mut *db)
        .await?;
    // Measured after the writes reached the disk, not while the kernel still flushes them.
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut *db)
        .await?;
    Ok(seq)
}
