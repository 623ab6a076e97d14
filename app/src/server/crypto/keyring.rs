//! The keyring: the master key and every organization's unwrapped data key, held in memory.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use secrecy::SecretString;

use super::{CryptoError, DataKey, MasterKey, Slot, blob_key_id, open, seal};

/// A data key and the organization it belongs to.
type OwnedKey = (String, Arc<DataKey>);

/// The master key plus every organization's unwrapped data key, loaded at start and kept in
/// memory so that opening a blob costs no database round trip.
#[derive(Clone)]
pub struct Keyring {
    master: Arc<MasterKey>,
    /// data key id → its organization and the key
    keys: Arc<RwLock<HashMap<String, OwnedKey>>>,
    /// organization id → its current data key id
    current: Arc<RwLock<HashMap<String, String>>>,
}

impl Keyring {
    /// A keyring holding only the master key.
    pub fn new(master: MasterKey) -> Self {
        Keyring {
            master: Arc::new(master),
            keys: Arc::default(),
            current: Arc::default(),
        }
    }

    /// The master key.
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// Adds an unwrapped data key; the newest one added for an org becomes its current key.
    pub fn insert(&self, org_id: &str, dek: DataKey) {
        let id = dek.id.clone();
        write_lock(&self.keys).insert(id.clone(), (org_id.to_owned(), Arc::new(dek)));
        write_lock(&self.current).insert(org_id.to_owned(), id);
    }

    /// Drops every data key of an organization from memory (the organization was deleted).
    pub fn forget(&self, org_id: &str) {
        write_lock(&self.current).remove(org_id);
        write_lock(&self.keys).retain(|_, (owner, _)| owner != org_id);
    }

    /// The organizations whose keys are in memory.
    pub fn organizations(&self) -> Vec<String> {
        let mut orgs: Vec<String> = read_lock(&self.keys)
            .values()
            .map(|(owner, _)| owner.clone())
            .collect();
        orgs.sort_unstable();
        orgs.dedup();
        orgs
    }

    /// The current data key of an organization.
    pub fn current(&self, org_id: &str) -> Option<Arc<DataKey>> {
        let id = read_lock(&self.current).get(org_id)?.clone();
        read_lock(&self.keys).get(&id).map(|(_, key)| key.clone())
    }

    /// Seals with the organization's current data key.
    pub fn seal(&self, slot: Slot<'_>, plaintext: &SecretString) -> Result<String, CryptoError> {
        let dek = self
            .current(slot.org_id)
            .ok_or_else(|| CryptoError::UnknownKey(slot.org_id.to_owned()))?;
        Ok(seal(&dek, slot, plaintext))
    }

    /// Opens a blob with the data key it names.
    pub fn open(&self, slot: Slot<'_>, blob: &str) -> Result<SecretString, CryptoError> {
        let dek = self.key_of(blob)?;
        open(&dek, slot, blob)
    }

    /// Opens a legacy blob (see [`super::open_legacy`]) with the data key it names.
    pub fn open_legacy(&self, slot: Slot<'_>, blob: &str) -> Result<SecretString, CryptoError> {
        let dek = self.key_of(blob)?;
        super::open_legacy(&dek, slot, blob)
    }

    /// Seals in the legacy format with the organization's current data key (tests of the
    /// re-seal write real legacy blobs with it).
    pub fn seal_legacy(
        &self,
        slot: Slot<'_>,
        plaintext: &SecretString,
    ) -> Result<String, CryptoError> {
        let dek = self
            .current(slot.org_id)
            .ok_or_else(|| CryptoError::UnknownKey(slot.org_id.to_owned()))?;
        Ok(super::seal_legacy(&dek, slot, plaintext))
    }

    fn key_of(&self, blob: &str) -> Result<Arc<DataKey>, CryptoError> {
        let id = blob_key_id(blob)?;
        read_lock(&self.keys)
            .get(id)
            .map(|(_, key)| key.clone())
            .ok_or_else(|| CryptoError::UnknownKey(id.to_owned()))
    }
}

fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
