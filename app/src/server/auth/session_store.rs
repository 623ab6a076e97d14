//! tower-sessions records kept in the AgentKey database, so sessions survive restarts and are
//! shared by every instance on the same database.

use std::collections::HashMap;

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

/// The SQL-backed session store.
#[derive(Clone, Debug)]
pub struct SqlSessionStore {
    store: Store,
}

impl SqlSessionStore {
    pub fn new(store: Store) -> Self {
        SqlSessionStore { store }
    }
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
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let row = row_of(record)?;
        store::auth::upsert_session(
            self.store.writer(),
            &write_of(record, &row),
            clock::now_ms(),
        )
        .await
        .map_err(backend)
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
