//! The per-organization hash chain: each row's hash covers its fields and the previous hash.

use sha2::{Digest, Sha256};

use crate::model::{ChainReport, OrgId};
use crate::server::clock;
use crate::server::crypto::hex;
use crate::server::store::{self, Store, audit::AuditRow};

/// Hash that precedes an organization's first row.
pub fn genesis(org_id: &str) -> String {
    hex(&Sha256::new()
        .chain_update(b"agentkey/audit-genesis/v1|")
        .chain_update(org_id.as_bytes())
        .finalize())
}

/// SHA-256 over every stored field except `hash`, each length-prefixed so that no two rows
/// encode alike.
pub fn row_hash(row: &AuditRow) -> String {
    let mut h = Sha256::new();
    h.update(b"agentkey/audit/v1");
    let mut field = |value: Option<&str>| match value {
        None => h.update([0_u8]),
        Some(text) => {
            h.update([1_u8]);
            h.update((text.len() as u64).to_be_bytes());
            h.update(text.as_bytes());
        }
    };
    let seq = row.seq.to_string();
    let created = row.created_at.to_string();
    field(Some(&row.prev_hash));
    field(Some(&row.organization_id));
    field(Some(&seq));
    field(Some(&row.id));
    field(Some(&created));
    field(Some(&row.actor_type));
    field(Some(&row.actor_id));
    field(Some(&row.actor_label));
    field(Some(&row.action));
    field(row.target_type.as_deref());
    field(row.target_id.as_deref());
    field(row.agent_id.as_deref());
    field(row.tool_id.as_deref());
    field(row.ip.as_deref());
    field(row.user_agent.as_deref());
    field(Some(&row.metadata));
    hex(&h.finalize())
}

const PAGE: i64 = 2_000;

/// Walks an organization's chain from genesis and reports the first broken link: a gap in
/// seq, a row whose prev_hash is not its predecessor's hash, a row whose content no longer
/// matches its hash, or a head that does not match the last row (a truncated tail). Reads
/// only: it also checks copies (a backup before a restore).
pub async fn verify(store: &Store, org_id: &OrgId) -> anyhow::Result<ChainReport> {
    verify_from(store, org_id, 0, genesis(org_id), Walk::Whole).await
}

/// How far a walk goes and whether it records where it got to.
#[derive(Clone, Copy)]
pub enum Walk {
    /// To the head, recording nothing.
    Whole,
    /// To the head, or at most this many rows (the rest for the next walk), recording the
    /// checkpoint where it stopped.
    Checkpointed(Option<i64>),
}

/// The dashboard's check: confirms that the row at the last checkpoint still has the hash it
/// had when verified, then walks only the rows after it. Its cost follows the rows added since
/// the last check, not the length of the log; the full walk is [`verify`]. With a `budget`, it
/// walks at most that many rows and reports the chain intact as far as it got.
pub async fn verify_since_checkpoint(
    store: &Store,
    org_id: &OrgId,
    budget: Option<i64>,
) -> anyhow::Result<ChainReport> {
    let walk = Walk::Checkpointed(budget);
    let Some((seq, hash)) = store::audit::find_checkpoint(store.reader(), org_id).await? else {
        return verify_from(store, org_id, 0, genesis(org_id), walk).await;
    };
    let row = store::audit::scan_rows(store.reader(), org_id, seq - 1, 1).await?;
    if !row
        .first()
        .is_some_and(|r| r.seq == seq && r.hash == hash && row_hash(r) == hash)
    {
        return Ok(ChainReport {
            organization_id: org_id.to_owned().into(),
            rows_checked: seq - 1,
            broken_at_seq: Some(seq),
            problem: Some(format!(
                "row {seq} is not what it was when the chain was last verified (edited, rewritten or removed)"
            )),
        });
    }
    verify_from(store, org_id, seq, hash, walk).await
}

/// Walks the chain from the row after `after_seq`, whose predecessor hashes to `prev`, as
/// `walk` says. `rows_checked` counts from genesis.
///
/// The head is read first and the walk ends at it: a head and its rows are committed together,
/// so every row up to a head once read is there to be read, while rows appended during the walk
/// (a live server) lie beyond it and wait for the next walk. Reading the head last instead
/// would find it ahead of the rows read before, and report a sound chain broken.
async fn verify_from(
    store: &Store,
    org_id: &OrgId,
    after_seq: i64,
    mut prev: String,
    walk: Walk,
) -> anyhow::Result<ChainReport> {
    let (save, budget) = match walk {
        Walk::Whole => (false, None),
        Walk::Checkpointed(budget) => (true, budget),
    };
    let broken = |seq: i64, checked: i64, problem: String| ChainReport {
        organization_id: org_id.to_owned().into(),
        rows_checked: checked,
        broken_at_seq: Some(seq),
        problem: Some(problem),
    };
    let Some((head_seq, head_hash)) = store::audit::find_head(store.reader(), org_id).await? else {
        return Ok(broken(
            0,
            after_seq,
            "organization has no chain head".into(),
        ));
    };
    if head_seq < after_seq {
        return Ok(broken(
            head_seq + 1,
            head_seq,
            format!(
                "chain head (seq {head_seq}) is behind a row already verified (seq {after_seq}): head edited"
            ),
        ));
    }
    // The rows end before the head, or the last one is not what the head says.
    let head_mismatch = |checked: i64| {
        let problem = format!(
            "chain head (seq {head_seq}) does not match the last row (seq {checked}): rows removed or head edited"
        );
        broken(checked + 1, checked, problem)
    };
    let end = match budget {
        Some(most) => head_seq.min(after_seq.saturating_add(most)),
        None => head_seq,
    };
    let mut checked = after_seq;
    while checked < end {
        let rows =
            store::audit::scan_rows(store.reader(), org_id, checked, PAGE.min(end - checked))
                .await?;
        if rows.is_empty() {
            return Ok(head_mismatch(checked));
        }
        for row in rows {
            let expected_seq = checked + 1;
            if row.seq != expected_seq {
                return Ok(broken(
                    expected_seq,
                    checked,
                    format!("row {expected_seq} is missing"),
                ));
            }
            if row.prev_hash != prev {
                return Ok(broken(
                    row.seq,
                    checked,
                    "prev_hash does not match the previous row".into(),
                ));
            }
            if row_hash(&row) != row.hash {
                return Ok(broken(
                    row.seq,
                    checked,
                    "row content does not match its hash (edited)".into(),
                ));
            }
            prev = row.hash;
            checked = expected_seq;
        }
    }
    if checked == head_seq {
        if prev != head_hash {
            return Ok(head_mismatch(checked));
        }
        // Rows past the head: the newest row is read before the head again, so a row appended
        // meanwhile comes with a head at least as far.
        let newest = store::audit::newest_seq(store.reader(), org_id).await?;
        let now_head = store::audit::find_head(store.reader(), org_id).await?;
        if let (Some(newest), Some((now_seq, _))) = (newest, now_head)
            && newest > now_seq
        {
            let problem = format!(
                "rows after the chain head (seq {now_seq}) up to seq {newest}: head edited back"
            );
            return Ok(broken(now_seq + 1, checked, problem));
        }
    }
    // A walk that stopped short of the head (its budget) leaves the head to the next one.
    if save && checked > after_seq {
        save_checkpoint(store, org_id, checked, &prev).await?;
    }
    Ok(intact(org_id, checked))
}

fn intact(org_id: &OrgId, checked: i64) -> ChainReport {
    ChainReport {
        organization_id: org_id.to_owned().into(),
        rows_checked: checked,
        broken_at_seq: None,
        problem: None,
    }
}

async fn save_checkpoint(
    store: &Store,
    org_id: &OrgId,
    seq: i64,
    hash: &str,
) -> anyhow::Result<()> {
    let mut tx = store.begin().await?;
    store::audit::save_checkpoint(&mut tx, org_id, seq, hash, clock::now_ms()).await?;
    tx.commit().await?;
    Ok(())
}
