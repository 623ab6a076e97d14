-- Tool and agent names are unique per organization, whatever their case (issue 17): tools by
-- their normalized name (the catalog's identity: lower-case, punctuation folded), agents by a
-- lower-case key. Both are computed by AgentKey on every write; existing rows get theirs here.
-- Existing duplicates keep the oldest row's name; later ones get the last group of their id
-- appended ("GitHub (9f2c41d0a7b3)"), so nothing is lost and every name stays unique.

UPDATE tools
SET name = name || ' (' || substr(id, 25, 12) || ')',
    normalized_name = normalized_name || ' ' || substr(id, 25, 12)
WHERE id IN (
    SELECT id FROM (
        SELECT id, ROW_NUMBER() OVER (
            PARTITION BY organization_id, normalized_name ORDER BY created_at, id
        ) AS n
        FROM tools
    ) ranked
    WHERE n > 1
);
DROP INDEX tools_org_name_idx;
CREATE UNIQUE INDEX tools_org_name_idx ON tools (organization_id, normalized_name);

ALTER TABLE agents ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
UPDATE agents SET name_key = lower(trim(name));
UPDATE agents
SET name = name || ' (' || substr(id, 25, 12) || ')',
    name_key = name_key || ' (' || substr(id, 25, 12) || ')'
WHERE id IN (
    SELECT id FROM (
        SELECT id, ROW_NUMBER() OVER (
            PARTITION BY organization_id, name_key ORDER BY created_at, id
        ) AS n
        FROM agents
    ) ranked
    WHERE n > 1
);
CREATE UNIQUE INDEX agents_org_name_key_idx ON agents (organization_id, name_key);
