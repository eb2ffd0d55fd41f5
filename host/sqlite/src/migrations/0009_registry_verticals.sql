-- Verticals join publishers, buyers and campaigns in the registry: the operator's definitions, with each one's extras
-- schema. A registry without any has the built-in verticals. SQLite cannot change a CHECK, so the table is rebuilt.
CREATE TABLE registry_entity_v9 (
    kind TEXT NOT NULL CHECK (kind IN ('vertical', 'publisher', 'buyer', 'campaign')),
    id TEXT NOT NULL,
    position INTEGER NOT NULL,
    config_json TEXT NOT NULL,
    updated_at_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
INSERT INTO registry_entity_v9 (kind, id, position, config_json, updated_at_unix_ms)
    SELECT kind, id, position, config_json, updated_at_unix_ms FROM registry_entity;
DROP TABLE registry_entity;
ALTER TABLE registry_entity_v9 RENAME TO registry_entity;
