-- Grants that end by themselves. Durations are stored as text: `30m`, `8h`, `7d` or `standing`.

-- The longest grant an approval of the tool may give (NULL: no limit), and the length used
-- when the agent asks for none (NULL: the maximum when there is one, else standing).
ALTER TABLE tools ADD COLUMN max_duration TEXT;
ALTER TABLE tools ADD COLUMN default_duration TEXT;

-- What the agent asked for, and what the deciding approval gave.
ALTER TABLE access_requests ADD COLUMN requested_duration TEXT;
ALTER TABLE access_requests ADD COLUMN granted_duration TEXT;
-- A renewal asked for on a live grant: set while it waits, cleared when decided.
ALTER TABLE access_requests ADD COLUMN renewal_requested_at BIGINT;
ALTER TABLE access_requests ADD COLUMN renewal_reason TEXT;
ALTER TABLE access_requests ADD COLUMN renewal_duration TEXT;
ALTER TABLE access_requests ADD COLUMN renewals BIGINT NOT NULL DEFAULT 0;
-- Why the latest renewal was denied (the grant then runs out), for the agent.
ALTER TABLE access_requests ADD COLUMN renewal_note TEXT;
-- Reminders already sent: for the grant's current expiry, and for a request waiting over a day.
ALTER TABLE access_requests ADD COLUMN expiry_reminded_at BIGINT;
ALTER TABLE access_requests ADD COLUMN waiting_reminded_at BIGINT;
-- What the maintenance worker picks: grants by expiry, pending requests by age.
CREATE INDEX access_requests_due_idx ON access_requests (status, expires_at);
CREATE INDEX access_requests_waiting_idx ON access_requests (status, created_at);
CREATE INDEX access_requests_renewals_idx ON access_requests (organization_id) WHERE renewal_requested_at IS NOT NULL;

-- A pending request nobody decides expires after this many hours; a grant nobody used for
-- this many days is revoked (NULL: never).
ALTER TABLE organizations ADD COLUMN pending_expiry_hours BIGINT NOT NULL DEFAULT 168;
ALTER TABLE organizations ADD COLUMN idle_revoke_days BIGINT;

-- Which agent received (fetch) or used through the proxy (proxy) which version of which
-- secret, first and last (last to the minute). `secret` is `shared` (the tool's, `version` its
-- credential version) or `agent` (the grant's own). It outlives the agent and the grant: it is
-- what tells, after a revoke, whether a secret should be rotated.
CREATE TABLE credential_exposures (
    organization_id  TEXT NOT NULL,
    tool_id          TEXT NOT NULL REFERENCES tools (id) ON DELETE CASCADE,
    agent_id         TEXT NOT NULL,
    agent_name       TEXT NOT NULL,
    request_id       TEXT NOT NULL,
    secret           TEXT NOT NULL CHECK (secret IN ('shared', 'agent')),
    version          BIGINT NOT NULL,
    fetched_first_at BIGINT,
    fetched_last_at  BIGINT,
    proxied_first_at BIGINT,
    proxied_last_at  BIGINT,
    PRIMARY KEY (tool_id, agent_id, request_id, secret, version)
);
CREATE INDEX credential_exposures_request_idx ON credential_exposures (request_id);
