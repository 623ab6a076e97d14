-- The audit views list newest first by seq. Filtered by an agent, a tool or an exact action,
-- they are now served by an index that ends in seq, in order, instead of reading every match
-- and sorting it (costly on a long log). The target and actor indexes go: no query filtered by
-- target, and the actor filter (an id or a label) never used its index. Two fewer b-trees for
-- every row appended. On a long log, this migration builds three indexes once, at startup,
-- holding the audit table's lock until it ends (one transaction): appends and audit reads of
-- instances still running wait for it, so upgrade every instance together.
DROP INDEX audit_log_target_idx;
DROP INDEX audit_log_actor_idx;
DROP INDEX audit_log_org_action_idx;
DROP INDEX audit_log_agent_idx;
DROP INDEX audit_log_tool_idx;
CREATE INDEX audit_log_action_seq_idx ON audit_log (organization_id, action, seq);
CREATE INDEX audit_log_agent_seq_idx ON audit_log (agent_id, seq);
CREATE INDEX audit_log_tool_seq_idx ON audit_log (tool_id, seq);
