-- Duplicate suppression joins the cap reservation: a reservation names the buyer and the consumer (by SHA-256 of
-- phone and email) it sells, so `reserve` can refuse a second sale of that consumer to that buyer while the first is
-- still pending, and `commit` records the purchase in `consumer_bought`. The new columns are NULL for a reservation
-- that names no consumer (and for reservations made before this migration); `suppress_since_unix_ms` is also NULL when
-- the campaign has no suppression window.
ALTER TABLE reservation ADD COLUMN buyer_id TEXT;
ALTER TABLE reservation ADD COLUMN phone_sha256 TEXT;
ALTER TABLE reservation ADD COLUMN email_sha256 TEXT;
ALTER TABLE reservation ADD COLUMN reserved_at_unix_ms INTEGER;
ALTER TABLE reservation ADD COLUMN suppress_since_unix_ms INTEGER;

-- Pending sales of one consumer to one buyer, by either hash.
CREATE INDEX reservation_by_buyer_phone ON reservation (buyer_id, phone_sha256) WHERE buyer_id IS NOT NULL;
CREATE INDEX reservation_by_buyer_email ON reservation (buyer_id, email_sha256) WHERE buyer_id IS NOT NULL;
