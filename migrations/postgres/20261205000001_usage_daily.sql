-- Fetches and proxied calls per tool, agent and UTC day (days since 1970-01-01), for the
-- dashboard's activity charts: a read touches at most days × tools × agents rows, however
-- long the audit log grows. The audit writer adds to it once a minute. No foreign keys: a
-- count for a tool or agent deleted meanwhile must not fail the audit batch that writes it;
-- readers join to the live rows.
CREATE TABLE usage_daily (
    organization_id TEXT NOT NULL,
    tool_id         TEXT NOT NULL,
    agent_id        TEXT NOT NULL,
    day             BIGINT NOT NULL,
    fetches         BIGINT NOT NULL DEFAULT 0,
    proxied         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tool_id, agent_id, day)
);
CREATE INDEX usage_daily_org_day_idx ON usage_daily (organization_id, day);

-- The history so far, from the audit log.
INSERT INTO usage_daily (organization_id, tool_id, agent_id, day, fetches, proxied)
SELECT organization_id, tool_id, agent_id, created_at / 86400000,
       SUM(CASE WHEN action = 'credential.vended' THEN 1 ELSE 0 END),
       SUM(CASE WHEN action = 'proxy.called' THEN 1 ELSE 0 END)
FROM audit_log
WHERE action IN ('credential.vended', 'proxy.called') AND tool_id IS NOT NULL AND agent_id IS NOT NULL
GROUP BY organization_id, tool_id, agent_id, created_at / 86400000;
