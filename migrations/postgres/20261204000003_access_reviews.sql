-- Access reviews: a snapshot of the live grants (all, one tool's, or one agent's), each
-- assigned to a reviewer who marks keep or revoke with a note. Closing applies the decisions;
-- grants nobody confirmed are revoked or kept as the review says. Rows keep names, so the
-- evidence stays readable after agents and tools are gone.
CREATE TABLE access_reviews (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    scope            TEXT NOT NULL CHECK (scope IN ('all', 'tool', 'agent')),
    scope_id         TEXT,
    scope_name       TEXT NOT NULL,
    unconfirmed      TEXT NOT NULL CHECK (unconfirmed IN ('revoke', 'keep')),
    status           TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    started_by       TEXT NOT NULL,
    started_at       BIGINT NOT NULL,
    closed_by        TEXT,
    closed_at        BIGINT
);
CREATE INDEX access_reviews_org_idx ON access_reviews (organization_id, started_at);

CREATE TABLE access_review_items (
    id               TEXT PRIMARY KEY,
    review_id        TEXT NOT NULL REFERENCES access_reviews (id) ON DELETE CASCADE,
    organization_id  TEXT NOT NULL,
    request_id       TEXT NOT NULL,
    agent_id         TEXT NOT NULL,
    agent_name       TEXT NOT NULL,
    tool_id          TEXT NOT NULL,
    tool_name        TEXT NOT NULL,
    granted_at       BIGINT,
    expires_at       BIGINT,
    reviewer         TEXT NOT NULL,
    decision         TEXT CHECK (decision IN ('keep', 'revoke')),
    note             TEXT,
    decided_by       TEXT,
    decided_at       BIGINT,
    outcome          TEXT CHECK (outcome IN ('kept', 'revoked', 'already_ended'))
);
CREATE INDEX access_review_items_review_idx ON access_review_items (review_id);
