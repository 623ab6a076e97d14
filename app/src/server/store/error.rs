//! The store's error: the few cases a service decides on, mapped once from the driver's error.

/// What a store function reports: the cases a service decides on, and everything else. Mapped
/// once, here, from the driver's error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A statement that must find a row found none.
    #[error("no such row")]
    NotFound,
    /// A unique constraint refused the write (SQLite reports no constraint name, so callers
    /// know from the statement which identity it was).
    #[error("a unique constraint refused the write")]
    Unique,
    /// The database refused the text itself (PostgreSQL: a NUL character or an invalid byte
    /// sequence, which SQLite would have stored).
    #[error("the database refused the text: {0}")]
    Invalid(&'static str),
    /// Anything else: a fault, not the caller's input.
    #[error(transparent)]
    Other(sqlx::Error),
}

/// Result of a store function.
pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
                StoreError::Unique
            }
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("22021" | "22P05")) =>
            {
                StoreError::Invalid("contains a NUL character or an invalid byte sequence")
            }
            _ => StoreError::Other(err),
        }
    }
}
