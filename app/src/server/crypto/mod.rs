//! AES-256-GCM envelope encryption.
//!
//! A master key (KEK) wraps one data key (DEK) per organization. Every secret blob is sealed by
//! its organization's DEK with associated data naming the organization, table, row, column and
//! the version of the write, so a blob copied to another row, column or organization does not
//! open, nor does an older blob written back over a newer one. Blob text:
//! `v2.<data key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. Blobs of the `v1` format (bound
//! to the slot without its version) are re-sealed at start by `service::keys`.

mod keyring;
mod legacy;

pub use keyring::Keyring;
pub use legacy::{is_legacy, open_legacy, seal_legacy};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload, rand_core::RngCore};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Format of data keys wrapped by the master key.
const WRAP_VERSION: &str = "v1";
/// Format of secret blobs: bound to their slot and its version.
const BLOB_VERSION: &str = "v2";
const NONCE_LEN: usize = 12;

/// Why a key or blob was refused. Deliberately vague: never says which byte was wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("master key must be base64 of exactly 32 bytes")]
    BadMasterKey,
    #[error("blob is not in the expected format")]
    Malformed,
    #[error("no data key {0} is loaded")]
    UnknownKey(String),
    #[error("decryption failed: wrong key, tampered data or blob moved from another row")]
    Refused,
}

/// The key-encryption key. Zeroized on drop; `Debug` shows only its id.
pub struct MasterKey {
    key: Zeroizing<[u8; 32]>,
    id: String,
}

impl MasterKey {
    /// Parses base64 (standard or url-safe) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text))
                .map_err(|_| CryptoError::BadMasterKey)?,
        );
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::BadMasterKey)?;
        Ok(Self::from_bytes(key))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = [0_u8; 32];
        OsRng.fill_bytes(&mut key);
        Self::from_bytes(key)
    }

    fn from_bytes(key: [u8; 32]) -> Self {
        let key = Zeroizing::new(key);
        let digest = Sha256::new()
            .chain_update(b"agentkey/kek-id/v1")
            .chain_update(key.as_slice())
            .finalize();
        let id = hex(&digest[..8]);
        MasterKey { key, id }
    }

    /// Public identifier of this key (a hash prefix), stored beside wrapped data keys.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as standard base64, for writing the key file.
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(STANDARD.encode(self.key.as_slice()))
    }

    /// Wraps a data key for `org_id`.
    pub fn wrap(&self, org_id: &str, dek: &DataKey) -> String {
        let aad = format!("agentkey/dek/{WRAP_VERSION}|{org_id}|{}", dek.id);
        let sealed = seal_raw(&self.key, aad.as_bytes(), dek.key.as_slice());
        format!("{WRAP_VERSION}.{}.{sealed}", self.id)
    }

    /// Unwraps a data key stored by [`MasterKey::wrap`].
    pub fn unwrap_key(
        &self,
        org_id: &str,
        dek_id: &str,
        wrapped: &str,
    ) -> Result<DataKey, CryptoError> {
        let (kek_id, body) = split_blob(wrapped, WRAP_VERSION)?;
        if kek_id != self.id {
            return Err(CryptoError::Refused);
        }
        let aad = format!("agentkey/dek/{WRAP_VERSION}|{org_id}|{dek_id}");
        let plain = Zeroizing::new(open_raw(&self.key, aad.as_bytes(), body)?);
        let key: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Refused)?;
        Ok(DataKey {
            id: dek_id.to_owned(),
            key: Zeroizing::new(key),
        })
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// An organization's data key. Zeroized on drop.
pub struct DataKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl DataKey {
    /// A fresh random data key with a new id.
    pub fn generate() -> Self {
        let mut key = [0_u8; 32];
        OsRng.fill_bytes(&mut key);
        DataKey {
            id: uuid::Uuid::now_v7().to_string(),
            key: Zeroizing::new(key),
        }
    }

    /// The key's id, carried in every blob it seals.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Where a blob lives, and which write of that place it is: bound into the associated data.
#[derive(Clone, Copy, Debug)]
pub struct Slot<'a> {
    pub org_id: &'a str,
    pub table: &'a str,
    pub row_id: &'a str,
    pub column: &'a str,
    /// The version the row records for this value (a tool's or a grant's
    /// `credential_version`); a blob sealed for another version does not open.
    pub version: i64,
}

fn aad(dek_id: &str, slot: Slot<'_>) -> String {
    format!(
        "agentkey/{BLOB_VERSION}|{dek_id}|{}|{}|{}|{}|{}",
        slot.org_id, slot.table, slot.row_id, slot.column, slot.version
    )
}

/// Seals `plaintext` into a blob bound to `slot`.
pub fn seal(dek: &DataKey, slot: Slot<'_>, plaintext: &SecretString) -> String {
    seal_as(dek, BLOB_VERSION, aad(&dek.id, slot), plaintext)
}

fn seal_as(dek: &DataKey, format: &str, aad: String, plaintext: &SecretString) -> String {
    let sealed = seal_raw(
        &dek.key,
        aad.as_bytes(),
        plaintext.expose_secret().as_bytes(),
    );
    format!("{format}.{}.{sealed}", dek.id)
}

/// The data key id a blob was sealed with (either format).
pub fn blob_key_id(blob: &str) -> Result<&str, CryptoError> {
    split_blob(blob, BLOB_VERSION)
        .or_else(|_| split_blob(blob, legacy::FORMAT))
        .map(|(id, _)| id)
}

/// Opens a blob sealed for `slot`; refuses other slots, other versions, other keys, the
/// legacy format and any tampering.
pub fn open(dek: &DataKey, slot: Slot<'_>, blob: &str) -> Result<SecretString, CryptoError> {
    open_as(dek, blob, BLOB_VERSION, aad(&dek.id, slot))
}

fn open_as(
    dek: &DataKey,
    blob: &str,
    format: &str,
    aad: String,
) -> Result<SecretString, CryptoError> {
    let (dek_id, body) = split_blob(blob, format)?;
    if dek_id != dek.id {
        return Err(CryptoError::UnknownKey(dek_id.to_owned()));
    }
    let plain = Zeroizing::new(open_raw(&dek.key, aad.as_bytes(), body)?);
    let text = std::str::from_utf8(&plain).map_err(|_| CryptoError::Refused)?;
    Ok(SecretString::from(text.to_owned()))
}

fn split_blob<'b>(blob: &'b str, format: &str) -> Result<(&'b str, &'b str), CryptoError> {
    let mut parts = blob.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(f), Some(id), Some(body)) if f == format && !id.is_empty() && !body.is_empty() => {
            Ok((id, body))
        }
        _ => Err(CryptoError::Malformed),
    }
}

fn seal_raw(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> String {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    // Encryption with a valid key and nonce only fails for absurd lengths (> 64 GiB).
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    URL_SAFE_NO_PAD.encode(out)
}

fn open_raw(key: &[u8; 32], aad: &[u8], body: &str) -> Result<Vec<u8>, CryptoError> {
    let raw = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CryptoError::Malformed)?;
    if raw.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ct) = raw.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| CryptoError::Refused)
}

/// Lower-case hex.
/// SHA-256 hex of a high-entropy bearer token (agent key, sign-in link, session id): how such
/// tokens are stored and looked up. No salt is needed at 128+ random bits.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot<'a>(row: &'a str) -> Slot<'a> {
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
    fn sealed_blob_round_trips_and_hides_the_plaintext() {
        let dek = DataKey::generate();
        let blob = seal(&dek, slot("row-1"), &secret("ghp_topsecret"));
        assert!(blob.starts_with("v2."));
        assert!(!blob.contains("topsecret"));
        assert_eq!(
            open(&dek, slot("row-1"), &blob).map(|s| s.expose_secret().to_owned()),
            Ok("ghp_topsecret".into())
        );
    }

    #[test]
    fn blob_moved_to_another_row_is_refused() {
        let dek = DataKey::generate();
        let blob = seal(&dek, slot("row-1"), &secret("s3cret"));
        assert_eq!(
            open(&dek, slot("row-2"), &blob).err(),
            Some(CryptoError::Refused)
        );
        let other_column = Slot {
            column: "other",
            ..slot("row-1")
        };
        assert_eq!(
            open(&dek, other_column, &blob).err(),
            Some(CryptoError::Refused)
        );
    }

    #[test]
    fn tampered_blob_is_refused() {
        let dek = DataKey::generate();
        let blob = seal(&dek, slot("row-1"), &secret("s3cret"));
        let (head, body) = blob.rsplit_once('.').expect("three parts");
        let mut raw = URL_SAFE_NO_PAD.decode(body).expect("base64");
        raw[NONCE_LEN + 1] ^= 0x01;
        let tampered = format!("{head}.{}", URL_SAFE_NO_PAD.encode(raw));
        assert_eq!(
            open(&dek, slot("row-1"), &tampered).err(),
            Some(CryptoError::Refused)
        );
    }

    #[test]
    fn wrong_data_key_is_refused() {
        let dek = DataKey::generate();
        let blob = seal(&dek, slot("row-1"), &secret("s3cret"));
        let impostor = DataKey {
            id: dek.id.clone(),
            key: Zeroizing::new([7; 32]),
        };
        assert_eq!(
            open(&impostor, slot("row-1"), &blob).err(),
            Some(CryptoError::Refused)
        );
    }

    #[test]
    fn data_key_unwraps_only_with_its_master_key_and_org() {
        let kek = MasterKey::generate();
        let dek = DataKey::generate();
        let wrapped = kek.wrap("org-1", &dek);
        assert!(kek.unwrap_key("org-1", dek.id(), &wrapped).is_ok());
        assert_eq!(
            kek.unwrap_key("org-2", dek.id(), &wrapped).err(),
            Some(CryptoError::Refused)
        );
        let other = MasterKey::generate();
        assert_eq!(
            other.unwrap_key("org-1", dek.id(), &wrapped).err(),
            Some(CryptoError::Refused)
        );
    }

    #[test]
    fn master_key_parsing_requires_exactly_32_bytes() {
        let kek = MasterKey::generate();
        let text = kek.to_base64();
        assert_eq!(
            MasterKey::from_base64(text.expose_secret()).map(|k| k.id().to_owned()),
            Ok(kek.id().to_owned())
        );
        assert_eq!(
            MasterKey::from_base64("c2hvcnQ=").err(),
            Some(CryptoError::BadMasterKey)
        );
        assert_eq!(
            MasterKey::from_base64("not base64!").err(),
            Some(CryptoError::BadMasterKey)
        );
        assert!(!format!("{kek:?}").contains(text.expose_secret()));
    }
}
