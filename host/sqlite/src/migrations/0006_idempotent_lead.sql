-- The lead an idempotent publisher request runs, named when it begins, so a request a crash left in progress can be
-- resolved on the next start from what the store holds: its recorded outcome, its sales, or released for a retry
-- (and its consumer's duplicate record, made by that request, forgotten).
ALTER TABLE idempotency ADD COLUMN lead_id TEXT;
ALTER TABLE idempotency ADD COLUMN publisher_id TEXT;
ALTER TABLE idempotency ADD COLUMN phone_sha256 TEXT;
ALTER TABLE idempotency ADD COLUMN email_sha256 TEXT;
-- Requests still in progress (normally none, or the few in flight).
CREATE INDEX idempotency_in_progress ON idempotency (created_at_unix_ms) WHERE status IS NULL;
