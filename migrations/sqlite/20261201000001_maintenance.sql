-- One-time maintenance steps the server runs at start (e.g. re-sealing secrets into a new
-- format), recorded once finished so that they never run again on this database.
CREATE TABLE maintenance_runs (
    name         TEXT PRIMARY KEY,
    finished_at  BIGINT NOT NULL
);
