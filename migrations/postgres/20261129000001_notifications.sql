-- (PostgreSQL: same as the SQLite migration of this version.)
-- Notifications: one channel per kind per organization, and a transactional outbox that a
-- background worker drains. An outbox row is written in the same transaction as the event it
-- announces, so an alert exists exactly when its event committed.

CREATE TABLE notification_channels (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    kind             TEXT NOT NULL CHECK (kind IN ('slack', 'discord', 'email')),
    -- The webhook URL, sealed like any other secret (NULL for email, which goes to members).
    target_blob      TEXT,
    -- What the dashboard shows instead of the URL.
    target_hint      TEXT,
    -- Comma-separated event names this channel receives.
    events           TEXT NOT NULL,
    last_status      TEXT CHECK (last_status IN ('delivered', 'failed')),
    last_at          BIGINT,
    last_error       TEXT,
    updated_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (organization_id, kind)
);

-- `id` doubles as the idempotency key sent with every attempt (header or Message-ID), so a
-- receiver can drop the duplicate that at-least-once delivery may produce.
CREATE TABLE notification_outbox (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    channel          TEXT NOT NULL CHECK (channel IN ('slack', 'discord', 'email')),
    recipient        TEXT,
    event            TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    -- A worker holds the row until then; a crashed worker's rows come back after it passes.
    locked_until     BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    delivered_at     BIGINT
);
CREATE INDEX notification_outbox_due_idx ON notification_outbox (status, next_attempt_at);
CREATE INDEX notification_outbox_org_idx ON notification_outbox (organization_id, status, created_at);

-- Members choose for themselves whether alerts reach their mailbox.
ALTER TABLE memberships ADD COLUMN email_alerts BIGINT NOT NULL DEFAULT 0;
