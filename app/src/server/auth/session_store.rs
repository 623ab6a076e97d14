//! tower-sessions records kept in the AgentKey database, so sessions survive restarts and are
//! shared by every instance on the same database.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

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

/// A save within this much of the stored expiry, with the data unchanged, is skipped: a page
/// view costs a session read, not a write (the idle expiry may lag by up to this much).
pub const REWRITE_AFTER_MS: i64 = 60_000;

/// Sessions whose stored state this process remembers; past this, it starts over.
const SEEN_MAX: usize = 10_000;

/// The SQL-backed session store.
#[derive(Clone, Debug)]
pub struct SqlSessionStore {
    store: Store,
    /// What this process last read or wrote of each session (by id hash): its data's hash
    /// and its expiry, as stored.
    seen: Arc<Mutex<HashMap<String, (u64, i64)>>>,
}

impl SqlSessionStore {
    pub fn new(store: Store) -> Self {
        SqlSessionStore {
            store,
            seen: Arc::default(),
        }
    }

    fn remember(&self, id_hash: &str, stored: Option<(u64, i64)>) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        match stored {
            Some(state) => {
                if seen.len() >= SEEN_MAX && !seen.contains_key(id_hash) {
                    seen.clear();
                }
                seen.insert(id_hash.to_owned(), state);
            }
            None => {
                seen.remove(id_hash);
            }
        }
    }

    fn stored(&self, id_hash: &str) -> Option<(u64, i64)> {
        self.seen.lock().ok()?.get(id_hash).copied()
    }
}

/// Whether a save must reach the database: the data changed, or the expiry moved by more than
/// [`REWRITE_AFTER_MS`] from what is stored (or nothing is known of the row).
pub fn needs_write(stored: Option<(u64, i64)>, data: u64, expires_at: i64) -> bool {
    stored.is_none_or(|(was, until)| was != data || (expires_at - until).abs() > REWRITE_AFTER_MS)
}

/// A hash of session data that does not depend on the map's iteration order.
fn data_hash(data: &HashMap<String, Value>) -> u64 {
    let sorted: BTreeMap<&String, &Value> = data.iter().collect();
    let mut hasher = DefaultHasher::new();
    serde_json::to_string(&sorted)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

fn backend(err: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(err.to_string())
}

fn text<'a>(data: &'a HashMap<String, Value>, key: &str) -> Option<&'a str> {
    data.get(key).and_then(Value::as_str)
}

/// The row written for a record.
fn row_of(record: &Record) -> session_store::Result<(String, String, i64)> {
    let data = serde_json::to_string(&record.data).map_err(backend)?;
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
    /// A new session never overwrites another one: on an id collision a new id is drawn.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
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
                self.remember(&row.0, Some((data_hash(&record.data), row.2)));
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    /// tower-sessions saves after every request of an idle-expiring session; only a change of
    /// data, or an expiry more than a minute ahead of the stored one, is written.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let row = row_of(record)?;
        let hash = data_hash(&record.data);
        if !needs_write(self.stored(&row.0), hash, row.2) {
            return Ok(());
        }
        store::auth::upsert_session(
            self.store.writer(),
            &write_of(record, &row),
            clock::now_ms(),
        )
        .await
        .map_err(backend)?;
        self.remember(&row.0, Some((hash, row.2)));
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(row) =
            store::auth::find_session(self.store.reader(), &id_hash(id), clock::now_ms())
                .await
                .map_err(backend)?
        else {
            return Ok(None);
        };
        let data: HashMap<String, Value> = serde_json::from_str(&row.data).map_err(backend)?;
        self.remember(&id_hash(id), Some((data_hash(&data), row.expires_at)));
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
        let hash = id_hash(id);
        self.remember(&hash, None);
        store::auth::delete_session(self.store.writer(), &hash)
            .await
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_is_written_only_for_new_data_or_an_expiry_a_minute_on() {
        let until = 1_000_000;
        assert!(needs_write(None, 7, until), "nothing known of the row");
        assert!(!needs_write(Some((7, until)), 7, until + 30_000));
        assert!(!needs_write(Some((7, until)), 7, until + REWRITE_AFTER_MS));
        assert!(needs_write(
            Some((7, until)),
            7,
            until + REWRITE_AFTER_MS + 1
        ));
        assert!(needs_write(Some((7, until)), 8, until), "the data changed");
    }

    #[test]
    fn the_data_hash_ignores_the_maps_order() {
        let a: HashMap<String, Value> =
            (0..20).map(|i| (format!("k{i}"), Value::from(i))).collect();
        let b: HashMap<String, Value> = (0..20)
            .rev()
            .map(|i| (format!("k{i}"), Value::from(i)))
            .collect();
        assert_eq!(data_hash(&a), data_hash(&b));
        let mut c = a.clone();
        c.insert("k0".into(), Value::from("changed"));
        assert_ne!(data_hash(&a), data_hash(&c));
    }
}
