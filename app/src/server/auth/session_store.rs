//! tower-sessions records kept in the AgentKey database, so sessions survive restarts and are
//! shared by every instance on the same database.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use crate::server::clock;
use crate::server::crypto::token_hash;
use crate::server::store::{self, Store, auth::SessionWrite};

/// Session data keys that the store copies into columns.
pub const USER_KEY: &str = "uid";
pub const IP_KEY: &str = "ip";
pub const USER_AGENT_KEY: &str = "ua";

/// SHA-256 of a session id: what the database keys sessions by.
pub fn id_hash(id: &Id) -> String {
    token_hash(&id.to_string())
}

/// A save within this much of the expiry it loaded, with the data unchanged, is skipped: a
/// page view costs a session read, not a write (the stored idle expiry lags by up to this).
pub const REWRITE_AFTER_MS: i64 = 60_000;

/// Keys `load` adds to a record for `save` to read back: the hash of the data and the expiry
/// as loaded by this request. Never stored (see [`stored_data`]).
const LOADED_HASH: &str = "agentkey.loaded_hash";
const LOADED_EXPIRY: &str = "agentkey.loaded_expiry";

/// The SQL-backed session store. It keeps nothing between requests: what a save must write
/// is decided from what the same request loaded, so several instances agree.
#[derive(Clone, Debug)]
pub struct SqlSessionStore {
    store: Store,
}

impl SqlSessionStore {
    pub fn new(store: Store) -> Self {
        SqlSessionStore { store }
    }
}

/// What a save writes: nothing, the expiry alone, or the data too.
#[derive(Debug, PartialEq, Eq)]
pub enum Write {
    Nothing,
    Expiry,
    All,
}

/// The request did not change the data it loaded (`loaded` is `Some` and equal): only an
/// expiry more than [`REWRITE_AFTER_MS`] past the loaded one is written. Else everything is.
pub fn write_of_save(loaded: Option<(u64, i64)>, data: u64, expires_at: i64) -> Write {
    match loaded {
        Some((hash, _)) if hash != data => Write::All,
        Some((_, until)) if (expires_at - until).abs() <= REWRITE_AFTER_MS => Write::Nothing,
        Some(_) => Write::Expiry,
        None => Write::All,
    }
}

/// The record's data without the keys `load` added.
fn stored_data(data: &HashMap<String, Value>) -> BTreeMap<&String, &Value> {
    data.iter()
        .filter(|(k, _)| *k != LOADED_HASH && *k != LOADED_EXPIRY)
        .collect()
}

/// A hash of session data that does not depend on the map's iteration order.
fn data_hash(data: &HashMap<String, Value>) -> u64 {
    let mut hasher = DefaultHasher::new();
    serde_json::to_string(&stored_data(data))
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

/// The hash and expiry `load` noted in the record.
fn loaded_state(data: &HashMap<String, Value>) -> Option<(u64, i64)> {
    let hash = data.get(LOADED_HASH)?.as_str()?.parse().ok()?;
    Some((hash, data.get(LOADED_EXPIRY)?.as_i64()?))
}

fn backend(err: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(err.to_string())
}

fn text<'a>(data: &'a HashMap<String, Value>, key: &str) -> Option<&'a str> {
    data.get(key).and_then(Value::as_str)
}

/// The row written for a record.
fn row_of(record: &Record) -> session_store::Result<(String, String, i64)> {
    let data = serde_json::to_string(&stored_data(&record.data)).map_err(backend)?;
    let expires_at =
        i64::try_from(record.expiry_date.unix_timestamp_nanos() / 1_000_000).map_err(backend)?;
    Ok((id_hash(&record.id), data, expires_at))
}

fn write_of<'a>(record: &'a Record, row: &'a (String, String, i64)) -> SessionWrite<'a> {
    SessionWrite {
        id_hash: &row.0,
        user_id: text(&record.data, USER_KEY),
        data: &row.1,
        ip: text(&record.data, IP_KEY),
        user_agent: text(&record.data, USER_AGENT_KEY),
        expires_at: row.2,
    }
}

#[async_trait]
impl SessionStore for SqlSessionStore {
    /// A new session never overwrites another one: on an id collision a new id is drawn. A
    /// session with nothing in it is not stored (a stale or forged cookie on any request
    /// would otherwise add a row each time).
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        if stored_data(&record.data).is_empty() {
            return Ok(());
        }
        loop {
            let row = row_of(record)?;
            if store::auth::insert_session(
                self.store.writer(),
                &write_of(record, &row),
                clock::now_ms(),
            )
            .await
            .map_err(backend)?
            {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    /// tower-sessions saves after every request (always-save moves the idle expiry on); only
    /// changed data, or an expiry a minute past the loaded one, is written, and only to a row
    /// that still exists: a session ended meanwhile stays ended.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let row = row_of(record)?;
        let now = clock::now_ms();
        match write_of_save(loaded_state(&record.data), data_hash(&record.data), row.2) {
            Write::Nothing => Ok(()),
            Write::Expiry => store::auth::touch_session(self.store.writer(), &row.0, row.2, now)
                .await
                .map_err(backend),
            Write::All => {
                store::auth::update_session(self.store.writer(), &write_of(record, &row), now)
                    .await
                    .map(|_| ())
                    .map_err(backend)
            }
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(row) =
            store::auth::find_session(self.store.reader(), &id_hash(id), clock::now_ms())
                .await
                .map_err(backend)?
        else {
            return Ok(None);
        };
        let mut data: HashMap<String, Value> = serde_json::from_str(&row.data).map_err(backend)?;
        let hash = data_hash(&data);
        data.insert(LOADED_HASH.to_owned(), Value::from(hash.to_string()));
        data.insert(LOADED_EXPIRY.to_owned(), Value::from(row.expires_at));
        let expiry_date =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(row.expires_at) * 1_000_000)
                .map_err(backend)?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        store::auth::delete_session(self.store.writer(), &id_hash(id))
            .await
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_writes_changed_data_or_an_expiry_a_minute_on_and_nothing_else() {
        let until = 1_000_000;
        assert_eq!(write_of_save(None, 7, until), Write::All, "nothing loaded");
        assert_eq!(
            write_of_save(Some((7, until)), 7, until + 30_000),
            Write::Nothing
        );
        assert_eq!(
            write_of_save(Some((7, until)), 7, until + REWRITE_AFTER_MS),
            Write::Nothing
        );
        assert_eq!(
            write_of_save(Some((7, until)), 7, until + REWRITE_AFTER_MS + 1),
            Write::Expiry
        );
        assert_eq!(
            write_of_save(Some((7, until)), 8, until),
            Write::All,
            "the data changed"
        );
    }

    #[test]
    fn the_data_hash_ignores_the_maps_order_and_the_loaded_notes() {
        let a: HashMap<String, Value> =
            (0..20).map(|i| (format!("k{i}"), Value::from(i))).collect();
        let mut b: HashMap<String, Value> = (0..20)
            .rev()
            .map(|i| (format!("k{i}"), Value::from(i)))
            .collect();
        b.insert(LOADED_HASH.into(), Value::from("1"));
        b.insert(LOADED_EXPIRY.into(), Value::from(5));
        assert_eq!(data_hash(&a), data_hash(&b));
        assert_eq!(stored_data(&b).len(), 20);
        let mut c = a.clone();
        c.insert("k0".into(), Value::from("changed"));
        assert_ne!(data_hash(&a), data_hash(&c));
    }
}
