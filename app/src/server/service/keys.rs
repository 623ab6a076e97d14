//! Master-key handling: loading every data key at start, and rotating the master key.

use crate::model::OrgId;
use anyhow::{Context, bail};

use secrecy::SecretString;

use crate::server::crypto::{CryptoError, Keyring, MasterKey, Slot};
use crate::server::store::{self, Store};
use crate::server::{Services, clock};

/// Unwraps every organization's data key with `master`. Refuses (with the organization
/// named) when the master key cannot unwrap existing data, so a wrong key never starts.
pub async fn load_keyring(store: &Store, master: MasterKey) -> anyhow::Result<Keyring> {
    let rows = store::keys::list_data_keys(store.reader())
        .await
        .context("failed to read data keys")?;
    let ring = Keyring::new(master);
    for row in rows {
        if row.kek_id != ring.master().id() {
            bail!(
                "the master key (id {}) is not the one that protects organization {} (expects key id {}); \
                 set AGENTKEY_MASTER_KEY to the original key",
                ring.master().id(),
                row.organization_id,
                row.kek_id
            );
        }
        let dek = ring
            .master()
            .unwrap_key(&row.organization_id, &row.id, &row.wrapped_key)
            .with_context(|| {
                format!(
                    "the master key cannot unwrap the data key of organization {}",
                    row.organization_id
                )
            })?;
        ring.insert(&row.organization_id, dek);
    }
    Ok(ring)
}

/// Drops from memory the data keys of organizations deleted meanwhile (by any instance: their
/// rows are gone from `data_keys`); returns how many organizations were dropped. The
/// maintenance worker runs it every minute, so no instance keeps a deleted organization's key
/// until its restart, even if it missed the deletion's notification.
pub async fn forget_deleted_orgs(svc: &Services) -> anyhow::Result<usize> {
    let held = svc.keys.organizations();
    if held.is_empty() {
        return Ok(0);
    }
    let live: std::collections::HashSet<String> = store::keys::list_data_keys(svc.store.reader())
        .await
        .context("failed to read data keys")?
        .into_iter()
        .map(|row| row.organization_id.into_string())
        .collect();
    let gone: Vec<&String> = held.iter().filter(|org| !live.contains(*org)).collect();
    for org in &gone {
        svc.keys.forget(org);
    }
    if !gone.is_empty() {
        svc.vend_cache.clear();
        tracing::info!(
            organizations = gone.len(),
            "dropped the data keys of deleted organizations"
        );
    }
    Ok(gone.len())
}

/// Whether any data key exists (a fresh database has none).
pub async fn has_data_keys(store: &Store) -> anyhow::Result<bool> {
    Ok(!store::keys::list_data_keys(store.reader())
        .await?
        .is_empty())
}

/// Re-wraps every data key from `old` to `new` in one transaction; secrets are untouched.
/// Returns how many data keys were re-wrapped.
pub async fn rotate_master(
    store: &Store,
    old: &MasterKey,
    new: &MasterKey,
) -> anyhow::Result<usize> {
    let now = clock::now_ms();
    let mut tx = store.begin().await?;
    let rows = store::keys::list_data_keys(&mut *tx).await?;
    for row in &rows {
        let dek = old
            .unwrap_key(&row.organization_id, &row.id, &row.wrapped_key)
            .with_context(|| {
                format!(
                    "the current master key cannot unwrap organization {}",
                    row.organization_id
                )
            })?;
        let wrapped = new.wrap(&row.organization_id, &dek);
        store::keys::update_data_key_wrapping(&mut tx, &row.id, new.id(), &wrapped, now).await?;
    }
    tx.commit()
        .await
        .context("failed to commit re-wrapped data keys")?;
    Ok(rows.len())
}

/// Loads an organization's data keys that this process has not seen yet (created by another
/// process, e.g. `agentkey admin create-org` while the server runs).
async fn load_org_keys(svc: &Services, org_id: &OrgId) -> anyhow::Result<()> {
    for row in store::keys::list_data_keys_for_org(svc.store.reader(), org_id).await? {
        let dek = svc
            .keys
            .master()
            .unwrap_key(&row.organization_id, &row.id, &row.wrapped_key)
            .with_context(|| {
                format!("the master key cannot unwrap the data key of organization {org_id}")
            })?;
        svc.keys.insert(org_id, dek);
    }
    Ok(())
}

/// Runs `op` on the keyring, loading the organization's data keys first when it names one that
/// is not loaded yet (another instance created it, or this process has not used it).
async fn with_org_keys<T>(
    svc: &Services,
    org_id: &str,
    op: impl Fn(&Keyring) -> Result<T, CryptoError>,
) -> anyhow::Result<T> {
    match op(&svc.keys) {
        Err(CryptoError::UnknownKey(_)) => {
            load_org_keys(svc, &OrgId::new(org_id)).await?;
            Ok(op(&svc.keys)?)
        }
        other => Ok(other?),
    }
}

/// Seals with the organization's data key, loading it first if needed.
pub async fn seal(svc: &Services, slot: Slot<'_>, secret: &SecretString) -> anyhow::Result<String> {
    with_org_keys(svc, slot.org_id, |keys| keys.seal(slot, secret)).await
}

/// Opens a blob, loading the organization's data keys first if needed.
pub async fn open(svc: &Services, slot: Slot<'_>, blob: &str) -> anyhow::Result<SecretString> {
    with_org_keys(svc, slot.org_id, |keys| keys.open(slot, blob)).await
}

/// The maintenance step recorded once every legacy blob was re-sealed.
const RESEAL_STEP: &str = "reseal_blobs_v2";

/// Re-seals every blob of the legacy format (bound to its slot but not to the version its
/// row records) into the current format, bound to that version, so that a blob written back
/// over a newer one no longer opens. Runs at start, before anything is served, until one pass
/// has re-sealed everything; it is then recorded and never runs again on this database, so a
/// legacy blob written in later (a replay of a pre-upgrade secret) is refused, not adopted.
/// Safe with several instances (a blob is replaced only while it is still the one read at
/// its version). Returns how many blobs were re-sealed.
pub async fn reseal_legacy_blobs(svc: &Services) -> anyhow::Result<usize> {
    if store::keys::maintenance_done(svc.store.reader(), RESEAL_STEP).await? {
        return Ok(0);
    }
    let mut resealed = 0;
    let mut left = 0;
    for &sealed in store::keys::SEALED_COLUMNS {
        let (table, column, _) = sealed;
        for row in store::keys::legacy_blobs(svc.store.reader(), sealed).await? {
            let slot = Slot {
                org_id: &row.organization_id,
                table,
                row_id: &row.id,
                column,
                version: row.version,
            };
            let opened =
                with_org_keys(svc, slot.org_id, |keys| keys.open_legacy(slot, &row.blob)).await;
            let secret = match opened {
                Ok(secret) => secret,
                Err(err) => {
                    // Left as it is: it would not open for a fetch either.
                    tracing::warn!(table, id = %row.id, error = %err, "a legacy blob does not open; not re-sealed");
                    left += 1;
                    continue;
                }
            };
            let blob = seal(svc, slot, &secret).await?;
            let mut tx = svc.store.begin().await?;
            if store::keys::replace_blob(&mut tx, sealed, &row.id, &row.blob, row.version, &blob)
                .await?
            {
                resealed += 1;
            }
            tx.commit().await?;
        }
    }
    if left == 0 {
        let mut tx = svc.store.begin().await?;
        store::keys::record_maintenance(&mut tx, RESEAL_STEP, clock::now_ms()).await?;
        tx.commit().await?;
    }
    if resealed > 0 {
        tracing::info!(resealed, "re-sealed secrets bound to their version");
        svc.vend_cache.clear();
    }
    Ok(resealed)
}
