-- Set once, by the transaction that seeded the registry from the config file: a registry never seeded and holding no
-- publisher, buyer or campaign is seeded on the next start (a first start that failed part-way is tried again).
CREATE TABLE registry_seed (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seeded_at_unix_ms INTEGER NOT NULL
);
-- A registry with publishers, buyers or campaigns was seeded (or configured through the API) before this table.
INSERT INTO registry_seed (id, seeded_at_unix_ms)
SELECT 1, MIN(updated_at_unix_ms) FROM registry_entity HAVING COUNT(*) > 0;
