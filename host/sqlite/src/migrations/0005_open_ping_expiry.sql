-- Open two-step pings by expiry, for the sweep that closes the expired ones and clears their lead.
CREATE INDEX ping_open_by_expiry ON ping (expires_at_unix_ms) WHERE state = 'open';
