-- The auction engine's store (`AuctionStore`): cap counters, pending reservations, consumer look-ups by hash,
-- two-step pings and pick-ups. Only hashed consumer keys are kept for look-ups; pings and pick-ups hold the lead
-- as JSON because the exchange must post or deliver it (the PII retention job purges them).

-- Leads and spend of one campaign in one cap window (`period` is hour, day or month; `window_label` its
-- label in the buyer's local time).
CREATE TABLE cap_counter (
    campaign_id TEXT NOT NULL,
    period TEXT NOT NULL CHECK (period IN ('hour', 'day', 'month')),
    window_label TEXT NOT NULL,
    leads INTEGER NOT NULL CHECK (leads >= 0),
    spend_cents INTEGER NOT NULL CHECK (spend_cents >= 0),
    PRIMARY KEY (campaign_id, period, window_label)
) WITHOUT ROWID;

-- Sales counted against caps but neither committed nor released. AUTOINCREMENT: an id is never reused, so a stale
-- reservation can never commit or release someone else's.
CREATE TABLE reservation (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id TEXT NOT NULL,
    hour_window TEXT NOT NULL,
    day_window TEXT NOT NULL,
    month_window TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0)
);

-- When a publisher last sent a consumer (duplicate check), by SHA-256 of phone or email.
CREATE TABLE consumer_seen (
    publisher_id TEXT NOT NULL,
    key_sha256 TEXT NOT NULL,
    seen_at_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (publisher_id, key_sha256)
) WITHOUT ROWID;

-- When a buyer last bought a consumer (suppression), by SHA-256 of phone or email.
CREATE TABLE consumer_bought (
    buyer_id TEXT NOT NULL,
    key_sha256 TEXT NOT NULL,
    bought_at_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (buyer_id, key_sha256)
) WITHOUT ROWID;

-- Two-step pings. `record_json` (the `PingRecord`, lead included) is cleared once the ping is posted or expired;
-- the row stays so the id can be neither claimed again nor reused.
CREATE TABLE ping (
    ping_id TEXT PRIMARY KEY NOT NULL,
    publisher_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'posted', 'expired')),
    created_at_unix_ms INTEGER NOT NULL,
    expires_at_unix_ms INTEGER NOT NULL,
    record_json TEXT,
    CHECK ((state = 'open') = (record_json IS NOT NULL))
) WITHOUT ROWID;

-- Leads sold to pick-up campaigns, waiting for the buyer, in sale order.
CREATE TABLE pickup (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id TEXT NOT NULL,
    buyer_id TEXT NOT NULL,
    ping_id TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    sold_at_unix_ms INTEGER NOT NULL,
    lead_json TEXT NOT NULL
);
CREATE INDEX pickup_by_campaign ON pickup (campaign_id, id);
