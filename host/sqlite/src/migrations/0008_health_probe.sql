-- One row the service rewrites to learn whether the store can write again after a failure (a full disk).
CREATE TABLE health_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at_unix_ms INTEGER NOT NULL
);
