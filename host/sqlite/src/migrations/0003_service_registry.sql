-- The service's registry: who may call the API (API keys, hashed), what the exchange is made of (publishers, buyers,
-- campaigns, as the engine's config JSON), the uploaded plugins and their versions, and idempotent publisher requests.

-- An API key's holder. Only the SHA-256 of the key is kept; the key itself is shown once, when it is made.
CREATE TABLE principal (
    id TEXT PRIMARY KEY NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('operator', 'publisher', 'buyer')),
    -- The publisher or buyer id the key acts for; NULL for operators.
    owner_id TEXT,
    key_sha256 TEXT NOT NULL UNIQUE,
    created_at_unix_ms INTEGER NOT NULL,
    revoked_at_unix_ms INTEGER,
    CHECK ((role = 'operator') = (owner_id IS NULL))
) WITHOUT ROWID;

-- Publishers, buyers and campaigns: the engine's config types as JSON, in creation order.
CREATE TABLE registry_entity (
    kind TEXT NOT NULL CHECK (kind IN ('publisher', 'buyer', 'campaign')),
    id TEXT NOT NULL,
    position INTEGER NOT NULL,
    config_json TEXT NOT NULL,
    updated_at_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;

-- A named plugin: its world, who owns it and which version is live.
CREATE TABLE plugin (
    name TEXT PRIMARY KEY NOT NULL,
    world TEXT NOT NULL CHECK (world IN ('buyer', 'redactor')),
    owner_role TEXT NOT NULL CHECK (owner_role IN ('operator', 'publisher', 'buyer')),
    owner_id TEXT,
    active_version INTEGER,
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at_unix_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Every uploaded version, kept for rollback. `wasm` is the upload as received.
CREATE TABLE plugin_version (
    name TEXT NOT NULL REFERENCES plugin (name),
    version INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    wasm BLOB NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;

-- Activations in order: a rollback goes back to the version active before the current one.
CREATE TABLE plugin_activation (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL REFERENCES plugin (name),
    version INTEGER NOT NULL,
    activated_by TEXT NOT NULL,
    activated_at_unix_ms INTEGER NOT NULL
);

-- The first answer to a request sent with an `Idempotency-Key`, so a retry gets it back instead of a second sale.
-- `status` is NULL while the first request is still running.
CREATE TABLE idempotency (
    principal_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    status INTEGER,
    body TEXT,
    created_at_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (principal_id, key)
) WITHOUT ROWID;
