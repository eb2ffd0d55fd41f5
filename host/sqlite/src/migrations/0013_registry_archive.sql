-- What the operator deleted from the registry (a publisher, buyer, campaign or vertical), kept with the config it had
-- when it was deleted: the exchange no longer has it, its history (sales, traces, audit) still names it.
CREATE TABLE registry_archive (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    config_json TEXT NOT NULL,
    archived_at_unix_ms INTEGER NOT NULL
);
CREATE INDEX registry_archive_by_kind ON registry_archive (kind, seq);
