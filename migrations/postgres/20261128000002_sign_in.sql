-- (PostgreSQL: same as the SQLite migration of this version.)
-- Dashboard sign-in: one-time magic-link tokens and server-side sessions.

-- A token is stored only as its SHA-256; the link carries the token itself. `email` is NULL
-- for the bootstrap token, which creates the first organization and its owner.
CREATE TABLE sign_in_tokens (
    id            TEXT PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    purpose       TEXT NOT NULL CHECK (purpose IN ('sign_in', 'bootstrap')),
    email         TEXT,
    requested_ip  TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    consumed_at   BIGINT
);
CREATE INDEX sign_in_tokens_email_idx ON sign_in_tokens (email, created_at);

-- Sessions of the dashboard (tower-sessions records). The cookie value is a bearer secret, so
-- the row is keyed by its SHA-256. `user_id` is copied out of the data so that a person can
-- list and end their sessions and removing a member can end theirs at once.
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     TEXT REFERENCES users (id),
    data        TEXT NOT NULL,
    ip          TEXT,
    user_agent  TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expiry_idx ON sessions (expires_at);
