//! The `v1` blob format, written before the credential version was bound into the associated
//! data: opened only to be re-sealed at start (`service::keys::reseal_legacy_blobs`).

use secrecy::SecretString;

use super::{CryptoError, DataKey, Slot, open_as, seal_as, split_blob};

/// The format's prefix.
pub(super) const FORMAT: &str = "v1";

fn aad(dek_id: &str, slot: Slot<'_>) -> String {
    format!(
        "agentkey/{FORMAT}|{dek_id}|{}|{}|{}|{}",
        slot.org_id, slot.table, slot.row_id, slot.column
    )
}

/// True for a blob of the format without the version binding.
pub fn is_legacy(blob: &str) -> bool {
    split_blob(blob, FORMAT).is_ok()
}

/// Opens a legacy blob (bound to the slot without its version), to re-seal it.
pub fn open_legacy(dek: &DataKey, slot: Slot<'_>, blob: &str) -> Result<SecretString, CryptoError> {
    open_as(dek, blob, FORMAT, aad(dek.id(), slot))
}

/// Seals in the legacy format, as releases before the version binding did (kept so the
/// re-seal can be tested against real legacy blobs).
pub fn seal_legacy(dek: &DataKey, slot: Slot<'_>, plaintext: &SecretString) -> String {
    seal_as(dek, FORMAT, aad(dek.id(), slot), plaintext)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::super::{blob_key_id, open, seal};
    use super::*;

    fn slot(row: &str) -> Slot<'_> {
        Slot {
            org_id: "org-1",
            table: "tools",
            row_id: row,
            column: "credential_blob",
            version: 1,
        }
    }

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn blob_of_an_earlier_version_is_refused_and_legacy_blobs_open_only_as_legacy() {
        let dek = DataKey::generate();
        let first = seal(&dek, slot("row-1"), &secret("old"));
        let next = Slot {
            version: 2,
            ..slot("row-1")
        };
        assert_eq!(open(&dek, next, &first).err(), Some(CryptoError::Refused));
        let legacy = seal_legacy(&dek, slot("row-1"), &secret("legacy"));
        assert!(is_legacy(&legacy) && !is_legacy(&first));
        assert_eq!(
            open(&dek, slot("row-1"), &legacy).err(),
            Some(CryptoError::Malformed)
        );
        assert_eq!(
            open_legacy(&dek, next, &legacy).map(|s| s.expose_secret().to_owned()),
            Ok("legacy".into()),
            "the legacy format never bound the version"
        );
        assert_eq!(
            open_legacy(&dek, slot("row-2"), &legacy).err(),
            Some(CryptoError::Refused)
        );
        assert_eq!(blob_key_id(&legacy), blob_key_id(&first));
    }
}
