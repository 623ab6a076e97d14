//! The exposure ledger: which agent received (fetch) or had used for it (proxy) which version
//! of which secret, first and last.

use super::{StoreResult, Tx};
use crate::model::{AgentId, OrgId, RequestId, ToolId};

/// One use of a secret, as the audit writer records it with the entry that audits it.
pub struct Seen<'a> {
    pub org_id: &'a OrgId,
    pub tool_id: &'a ToolId,
    pub agent_id: &'a AgentId,
    pub agent_name: &'a str,
    pub request_id: &'a RequestId,
    pub shared: bool,
    pub version: i64,
    pub proxied: bool,
}

/// Records a use at `now`: the first time stays, the last moves.
pub async fn record(tx: &mut Tx, seen: &Seen<'_>, now: i64) -> StoreResult<()> {
    let (fetched, proxied) = if seen.proxied {
        (None, Some(now))
    } else {
        (Some(now), None)
    };
    sqlx::query(
        "INSERT INTO credential_exposures (organization_id, tool_id, agent_id, agent_name, request_id, secret, version, \
         fetched_first_at, fetched_last_at, proxied_first_at, proxied_last_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $9) \
         ON CONFLICT (tool_id, agent_id, request_id, secret, version) DO UPDATE SET agent_name = excluded.agent_name, \
         fetched_first_at = COALESCE(credential_exposures.fetched_first_at, excluded.fetched_first_at), \
         fetched_last_at = COALESCE(excluded.fetched_last_at, credential_exposures.fetched_last_at), \
         proxied_first_at = COALESCE(credential_exposures.proxied_first_at, excluded.proxied_first_at), \
         proxied_last_at = COALESCE(excluded.proxied_last_at, credential_exposures.proxied_last_at)",
    )
    .bind(seen.org_id)
    .bind(seen.tool_id)
    .bind(seen.agent_id)
    .bind(seen.agent_name)
    .bind(seen.request_id)
    .bind(if seen.shared { "shared" } else { "agent" })
    .bind(seen.version)
    .bind(fetched)
    .bind(proxied)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
