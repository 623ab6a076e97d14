-- (PostgreSQL: same as the SQLite migration of this version.)
-- Several reviewers per organization: invitations, quorum approvals, allowed email domains.

-- An invitation is bound to one address and one role; the link carries a token stored only
-- as its SHA-256. It is used once, within 7 days, unless revoked first.
CREATE TABLE invitations (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    email            TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'approver', 'auditor')),
    token_hash       TEXT NOT NULL UNIQUE,
    invited_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    accepted_at      BIGINT,
    revoked_at       BIGINT
);
CREATE INDEX invitations_org_idx ON invitations (organization_id, created_at);

-- How many distinct reviewers must approve a request for this tool.
ALTER TABLE tools ADD COLUMN approvals_required BIGINT NOT NULL DEFAULT 1 CHECK (approvals_required BETWEEN 1 AND 3);

-- One approval vote per reviewer per request; the key makes a second vote impossible.
CREATE TABLE request_votes (
    request_id       TEXT NOT NULL REFERENCES access_requests (id) ON DELETE CASCADE,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    voter_id         TEXT NOT NULL,
    voter_label      TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (request_id, voter_id)
);

-- Comma-separated email domains new members must belong to (NULL: any).
ALTER TABLE organizations ADD COLUMN allowed_domains TEXT;

-- A deleted organization keeps its audit log; everything else that grants access is gone.
ALTER TABLE organizations ADD COLUMN deleted_at BIGINT;

-- The tool's quorum when the request was made: lowering the quorum later cannot shrink what a
-- pending request needs (raising it still applies).
ALTER TABLE access_requests ADD COLUMN approvals_required BIGINT NOT NULL DEFAULT 1;
