-- Sales with their lead (PII until the retention purge), the webhook delivery outbox, the PII audit and one record
-- per auction. Pick-ups become sales with delivery 'pickup'; the pickup table of migration 1 is folded in and dropped.

-- Every sale, written in the transaction that commits its cap reservation. `lead_json` is the full lead, cleared
-- (the row stays) by the retention purge; `webhook_url` is set exactly for delivery 'webhook'.
CREATE TABLE sale (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lead_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    buyer_id TEXT NOT NULL,
    publisher_id TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    sold_at_unix_ms INTEGER NOT NULL,
    buyer_ref TEXT,
    delivery TEXT NOT NULL CHECK (delivery IN ('posted', 'pickup', 'webhook')),
    webhook_url TEXT,
    lead_json TEXT,
    returned_at_unix_ms INTEGER,
    return_reason TEXT,
    CHECK ((delivery = 'webhook') = (webhook_url IS NOT NULL)),
    CHECK ((returned_at_unix_ms IS NULL) = (return_reason IS NULL))
);
CREATE INDEX sale_by_campaign ON sale (campaign_id, id);
CREATE INDEX sale_by_buyer ON sale (buyer_id, id);
CREATE INDEX sale_by_publisher ON sale (publisher_id, id);
CREATE INDEX sale_by_lead ON sale (lead_id);
-- The retention purge's scan: only sales still holding PII.
CREATE INDEX sale_with_pii ON sale (sold_at_unix_ms) WHERE lead_json IS NOT NULL;

-- Pick-ups recorded before this migration; the publisher is known only for two-step pings.
INSERT INTO sale (lead_id, campaign_id, buyer_id, publisher_id, price_cents, sold_at_unix_ms, delivery, lead_json)
SELECT p.ping_id, p.campaign_id, p.buyer_id, COALESCE((SELECT g.publisher_id FROM ping g WHERE g.ping_id = p.ping_id), ''),
    p.price_cents, p.sold_at_unix_ms, 'pickup', p.lead_json
FROM pickup p ORDER BY p.id;
DROP TABLE pickup;

-- The webhook outbox: one row per webhook sale, inserted with it. `pending` rows are POSTed when due
-- (`next_attempt_at_unix_ms`) to `url` (the campaign's webhook when the lead was sold, never another), then become
-- `delivered`, or `failed` once the worker gives up (kept for operators).
CREATE TABLE delivery (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sale_id INTEGER NOT NULL UNIQUE REFERENCES sale (id),
    url TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at_unix_ms INTEGER NOT NULL,
    next_attempt_at_unix_ms INTEGER NOT NULL,
    last_error TEXT,
    delivered_at_unix_ms INTEGER
);
CREATE INDEX delivery_due ON delivery (next_attempt_at_unix_ms) WHERE status = 'pending';

-- Who received which lead's PII, and how: 'post' (an HTTP buyer accepted the post), 'webhook' (the outbox delivered
-- it), 'api' (read through the service). Written in the transaction that hands the PII over.
CREATE TABLE pii_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    principal_id TEXT NOT NULL,
    lead_id TEXT NOT NULL,
    campaign_id TEXT,
    how TEXT NOT NULL CHECK (how IN ('post', 'webhook', 'api')),
    at_unix_ms INTEGER NOT NULL
);
CREATE INDEX pii_audit_by_lead ON pii_audit (lead_id, id);

-- One row per auction (a two-step lead's post replaces its ping's row): its status and the outcome + trace JSON the
-- service serialised (redacted: the trace holds no PII).
CREATE TABLE auction (
    lead_id TEXT PRIMARY KEY NOT NULL,
    publisher_id TEXT NOT NULL,
    status TEXT NOT NULL,
    received_at_unix_ms INTEGER NOT NULL,
    outcome_json TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX auction_by_publisher ON auction (publisher_id, received_at_unix_ms);
CREATE INDEX reservation_by_age ON reservation (reserved_at_unix_ms);
