-- How far each organization's audit chain has been verified: the dashboard's chain status walks
-- only the rows after this point (after checking that the row here still has this hash), so it
-- costs the same with a thousand rows or ten million. `agentkey audit verify` still walks the
-- whole chain, and moves the checkpoint when it passes.
CREATE TABLE audit_checkpoints (
    organization_id  TEXT PRIMARY KEY REFERENCES organizations (id),
    seq              BIGINT NOT NULL,
    hash             TEXT NOT NULL,
    checked_at       BIGINT NOT NULL
);
