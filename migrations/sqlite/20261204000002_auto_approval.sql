-- Fewer needless approvals: agents carry labels (`team:payments env:staging`, space-separated,
-- lower case), and a tool's rules approve requests from agents carrying all of a rule's labels,
-- for at most the rule's duration (and, on a proxied tool, read-only). A tool that always needs
-- a human, or needs several approvals, is never approved by a rule.
ALTER TABLE agents ADD COLUMN labels TEXT NOT NULL DEFAULT '';
ALTER TABLE tools ADD COLUMN always_human BIGINT NOT NULL DEFAULT 0;

CREATE TABLE auto_approval_rules (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    tool_id          TEXT NOT NULL REFERENCES tools (id) ON DELETE CASCADE,
    labels           TEXT NOT NULL,
    max_duration     TEXT NOT NULL,
    read_only        BIGINT NOT NULL DEFAULT 1,
    created_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX auto_approval_rules_tool_idx ON auto_approval_rules (tool_id);
CREATE INDEX auto_approval_rules_org_idx ON auto_approval_rules (organization_id);
