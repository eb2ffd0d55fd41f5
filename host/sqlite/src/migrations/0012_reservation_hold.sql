-- A standing two-step quote holds what its post will spend: a hold is a reservation with an expiry, counted against
-- the caps and the buyer's suppression window like any reservation until its post takes it or it expires. NULL for
-- an ordinary reservation (a post in flight), which a restart releases; an unexpired hold survives a restart with its
-- ping.
ALTER TABLE reservation ADD COLUMN expires_at_unix_ms INTEGER;

-- The expiry sweep.
CREATE INDEX reservation_hold_by_expiry ON reservation (expires_at_unix_ms) WHERE expires_at_unix_ms IS NOT NULL;
