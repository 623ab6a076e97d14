-- AgentKey core schema (PostgreSQL). The same tables and columns as the SQLite schema, so that
-- `agentkey migrate-data` copies rows unchanged and the audit hash chain (which hashes the
-- stored values) verifies identically on both. Times are integer milliseconds since the epoch
-- (UTC); ids are UUID v7 text. Allowed values are CHECK-ed here as well as in code.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE memberships (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    user_id          TEXT NOT NULL REFERENCES users (id),
    role             TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'approver', 'auditor')),
    created_at       BIGINT NOT NULL,
    UNIQUE (organization_id, user_id)
);

-- One data key (DEK) per organization, wrapped by the master key (KEK).
CREATE TABLE data_keys (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    kek_id           TEXT NOT NULL,
    wrapped_key      TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    rewrapped_at     BIGINT
);
CREATE INDEX data_keys_org_idx ON data_keys (organization_id, created_at);

CREATE TABLE agents (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    key_hash         TEXT NOT NULL UNIQUE,
    key_prefix       TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    last_used_at     BIGINT
);
CREATE INDEX agents_org_idx ON agents (organization_id, created_at);

CREATE TABLE tools (
    id                      TEXT PRIMARY KEY,
    organization_id         TEXT NOT NULL REFERENCES organizations (id),
    config_key              TEXT NOT NULL,
    name                    TEXT NOT NULL,
    normalized_name         TEXT NOT NULL,
    description             TEXT NOT NULL DEFAULT '',
    url                     TEXT,
    domain                  TEXT,
    auth_type               TEXT NOT NULL CHECK (auth_type IN ('api_key', 'oauth_token', 'bot_token', 'other')),
    credential_mode         TEXT NOT NULL CHECK (credential_mode IN ('shared', 'per_agent')),
    credential_blob         TEXT,
    credential_version      BIGINT NOT NULL DEFAULT 0,
    credential_rotated_at   BIGINT,
    credential_expires_at   BIGINT,
    instructions            TEXT NOT NULL DEFAULT '',
    instructions_version    BIGINT NOT NULL DEFAULT 0,
    created_by              TEXT NOT NULL,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    UNIQUE (organization_id, config_key)
);
CREATE INDEX tools_org_idx ON tools (organization_id, created_at);
CREATE INDEX tools_org_name_idx ON tools (organization_id, normalized_name);
CREATE INDEX tools_org_domain_idx ON tools (organization_id, domain);

CREATE TABLE guide_versions (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    tool_id          TEXT NOT NULL REFERENCES tools (id) ON DELETE CASCADE,
    version          BIGINT NOT NULL,
    instructions     TEXT NOT NULL,
    source           TEXT NOT NULL CHECK (source IN ('tool_create', 'manual', 'suggestion_accept', 'restore')),
    created_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    UNIQUE (tool_id, version)
);

-- Requests keep history: a re-request is a new row. At most one live (pending or approved)
-- row per agent and tool, enforced by the partial unique index.
CREATE TABLE access_requests (
    id                  TEXT PRIMARY KEY,
    organization_id     TEXT NOT NULL REFERENCES organizations (id),
    agent_id            TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    tool_id             TEXT NOT NULL REFERENCES tools (id) ON DELETE CASCADE,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'revoked', 'expired')),
    reason              TEXT NOT NULL,
    origin              TEXT NOT NULL CHECK (origin IN ('agent', 'suggestion', 'admin')),
    suggestion_id       TEXT,
    decided_by          TEXT,
    decided_at          BIGINT,
    decision_note       TEXT,
    credential_blob     TEXT,
    credential_version  BIGINT NOT NULL DEFAULT 0,
    expires_at          BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE UNIQUE INDEX access_requests_live_idx ON access_requests (agent_id, tool_id)
    WHERE status IN ('pending', 'approved');
CREATE INDEX access_requests_agent_tool_idx ON access_requests (agent_id, tool_id, id);
CREATE INDEX access_requests_org_status_idx ON access_requests (organization_id, status, id);
CREATE INDEX access_requests_tool_idx ON access_requests (tool_id, status);

-- Tool suggestions: identity is the domain when there is one, else the normalized name; the
-- partial unique indexes make concurrent identical suggestions collapse into one row.
CREATE TABLE tool_suggestions (
    id                 TEXT PRIMARY KEY,
    organization_id    TEXT NOT NULL REFERENCES organizations (id),
    name               TEXT NOT NULL,
    normalized_name    TEXT NOT NULL,
    url                TEXT,
    domain             TEXT,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'dismissed', 'accepted')),
    dismissed_until    BIGINT,
    dismissal_reason   TEXT,
    converted_tool_id  TEXT REFERENCES tools (id) ON DELETE SET NULL,
    decided_by         TEXT,
    decided_at         BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX tool_suggestions_domain_idx ON tool_suggestions (organization_id, domain)
    WHERE domain IS NOT NULL AND status <> 'accepted';
CREATE UNIQUE INDEX tool_suggestions_name_idx ON tool_suggestions (organization_id, normalized_name)
    WHERE domain IS NULL AND status <> 'accepted';
CREATE INDEX tool_suggestions_org_status_idx ON tool_suggestions (organization_id, status);

CREATE TABLE tool_suggestion_supporters (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    suggestion_id    TEXT NOT NULL REFERENCES tool_suggestions (id) ON DELETE CASCADE,
    agent_id         TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    reason           TEXT NOT NULL,
    first_at         BIGINT NOT NULL,
    last_at          BIGINT NOT NULL,
    UNIQUE (suggestion_id, agent_id)
);

CREATE TABLE guide_suggestions (
    id                   TEXT PRIMARY KEY,
    organization_id      TEXT NOT NULL REFERENCES organizations (id),
    tool_id              TEXT NOT NULL REFERENCES tools (id) ON DELETE CASCADE,
    base_version         BIGINT NOT NULL,
    learned              TEXT NOT NULL,
    normalized_learned   TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('pending', 'dismissed', 'accepted')),
    dismissal_reason     TEXT,
    accepted_version     BIGINT,
    decided_by           TEXT,
    decided_at           BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    UNIQUE (tool_id, base_version, normalized_learned)
);
CREATE INDEX guide_suggestions_org_status_idx ON guide_suggestions (organization_id, status);

CREATE TABLE guide_suggestion_supporters (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    suggestion_id    TEXT NOT NULL REFERENCES guide_suggestions (id) ON DELETE CASCADE,
    agent_id         TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    reason           TEXT NOT NULL,
    first_at         BIGINT NOT NULL,
    last_at          BIGINT NOT NULL,
    UNIQUE (suggestion_id, agent_id)
);

-- Append-only audit log, hash-chained per organization (seq 1, 2, …).
CREATE TABLE audit_log (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    seq              BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    actor_type       TEXT NOT NULL,
    actor_id         TEXT NOT NULL,
    actor_label      TEXT NOT NULL,
    action           TEXT NOT NULL,
    target_type      TEXT,
    target_id        TEXT,
    agent_id         TEXT,
    tool_id          TEXT,
    ip               TEXT,
    user_agent       TEXT,
    metadata         TEXT NOT NULL,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL,
    UNIQUE (organization_id, seq)
);
CREATE INDEX audit_log_org_time_idx ON audit_log (organization_id, created_at);
CREATE INDEX audit_log_org_action_idx ON audit_log (organization_id, action, created_at);
CREATE INDEX audit_log_agent_idx ON audit_log (agent_id, created_at);
CREATE INDEX audit_log_tool_idx ON audit_log (tool_id, created_at);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, created_at);
CREATE INDEX audit_log_target_idx ON audit_log (target_id);

-- Append-only, enforced by the database for every role but the owner that can drop triggers.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- The chain head per organization: last seq and hash. Updating it in the appending transaction
-- serializes appends per organization; `audit verify` also checks it against the last row, so
-- a truncated tail is detected.
CREATE TABLE audit_heads (
    organization_id  TEXT PRIMARY KEY REFERENCES organizations (id),
    seq              BIGINT NOT NULL,
    hash             TEXT NOT NULL
);
