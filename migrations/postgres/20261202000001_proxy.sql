-- Proxy mode: a tool can hand its credential out (fetch), use it on the agent's behalf
-- (proxy) or both. Existing tools keep today's behaviour.
ALTER TABLE tools ADD COLUMN delivery TEXT NOT NULL DEFAULT 'fetch'
    CHECK (delivery IN ('fetch', 'proxy', 'both'));
-- Base URL the proxy forwards to (https on a public address).
ALTER TABLE tools ADD COLUMN upstream_url TEXT;
-- Where the secret goes: 'Header-Name: template' or '?param=template'.
ALTER TABLE tools ADD COLUMN inject_rule TEXT;
-- Allow-list of proxied calls, one 'METHOD /path-pattern' per line; empty allows everything.
ALTER TABLE tools ADD COLUMN allow_rules TEXT NOT NULL DEFAULT '';
-- Default calls-per-day budget of a grant (NULL: none).
ALTER TABLE tools ADD COLUMN calls_per_day BIGINT;
-- Bumped on every change of the proxy settings above, so a call planned against the old
-- settings is planned again.
ALTER TABLE tools ADD COLUMN proxy_version BIGINT NOT NULL DEFAULT 0;

-- How an approval narrowed a grant's proxied use: GET/HEAD only, a subset of the tool's rules
-- (one per line; NULL: all of them), a calls-per-day budget (NULL: the tool's default).
ALTER TABLE access_requests ADD COLUMN proxy_read_only BIGINT NOT NULL DEFAULT 0;
ALTER TABLE access_requests ADD COLUMN proxy_rules TEXT;
ALTER TABLE access_requests ADD COLUMN calls_per_day BIGINT;

-- Proxied calls per grant and UTC day, claimed in the transaction that audits each call.
CREATE TABLE grant_usage (
    request_id  TEXT NOT NULL REFERENCES access_requests (id) ON DELETE CASCADE,
    day         BIGINT NOT NULL,
    calls       BIGINT NOT NULL,
    PRIMARY KEY (request_id, day)
);
