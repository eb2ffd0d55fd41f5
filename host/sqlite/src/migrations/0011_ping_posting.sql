-- A claimed ping keeps its record while its post runs (`posting`), so a post a crash cut short can run again after
-- the restart: an interrupted post with no sale goes back to `open`, one with a sale to `posted`. SQLite cannot
-- change a CHECK, so the table is rebuilt.
CREATE TABLE ping_v11 (
    ping_id TEXT PRIMARY KEY NOT NULL,
    publisher_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'posting', 'posted', 'expired')),
    created_at_unix_ms INTEGER NOT NULL,
    expires_at_unix_ms INTEGER NOT NULL,
    record_json TEXT,
    CHECK ((state IN ('open', 'posting')) = (record_json IS NOT NULL))
) WITHOUT ROWID;
INSERT INTO ping_v11 (ping_id, publisher_id, state, created_at_unix_ms, expires_at_unix_ms, record_json)
    SELECT ping_id, publisher_id, state, created_at_unix_ms, expires_at_unix_ms, record_json FROM ping;
DROP TABLE ping;
ALTER TABLE ping_v11 RENAME TO ping;
CREATE INDEX ping_open_by_expiry ON ping (expires_at_unix_ms) WHERE state = 'open';
CREATE INDEX ping_posting ON ping (ping_id) WHERE state = 'posting';
