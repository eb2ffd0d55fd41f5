-- The books: an append-only, double-entry journal in integer cents. An event (a sale, a return, a payment, an
-- adjustment, a payout, a reversal) is one `ledger_event` row and its postings, one `ledger_entry` per account, which
-- sum to zero; a sale's and a return's are written in the transaction of the sale or return itself. Neither table is
-- ever updated or deleted from (the triggers refuse it): a correction is a new event.
CREATE TABLE ledger_event (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('sale', 'return', 'payment', 'adjustment', 'payout', 'reversal')),
    at_unix_ms INTEGER NOT NULL,
    principal_id TEXT NOT NULL,
    lead_id TEXT,
    sale_id INTEGER REFERENCES sale (id),
    reverses_event_id INTEGER REFERENCES ledger_event (id),
    reference TEXT,
    memo TEXT
);
-- A sale posts once, and is returned (reversed) at most once.
CREATE UNIQUE INDEX ledger_event_of_sale ON ledger_event (sale_id, kind) WHERE sale_id IS NOT NULL;
-- A reference (a bank transfer's id) is recorded once per kind: a retried payment finds the first.
CREATE UNIQUE INDEX ledger_event_by_reference ON ledger_event (kind, reference) WHERE reference IS NOT NULL;
-- An event is reversed at most once.
CREATE UNIQUE INDEX ledger_event_reversed ON ledger_event (reverses_event_id) WHERE reverses_event_id IS NOT NULL;

CREATE TABLE ledger_entry (
    event_id INTEGER NOT NULL REFERENCES ledger_event (id),
    account TEXT NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents <> 0),
    PRIMARY KEY (event_id, account)
) WITHOUT ROWID;
CREATE INDEX ledger_entry_by_account ON ledger_entry (account, event_id);

-- Each account's balance, kept as a running total in the transaction that appends its entries (so a sale's funds
-- check reads one row); always equal to the sum of the account's entries (the store's tests check it).
CREATE TABLE ledger_account (
    account TEXT PRIMARY KEY NOT NULL,
    balance_cents INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER ledger_event_no_update BEFORE UPDATE ON ledger_event
BEGIN SELECT RAISE(ABORT, 'the journal is append-only: record a new event instead'); END;
CREATE TRIGGER ledger_event_no_delete BEFORE DELETE ON ledger_event
BEGIN SELECT RAISE(ABORT, 'the journal is append-only: record a new event instead'); END;
CREATE TRIGGER ledger_entry_no_update BEFORE UPDATE ON ledger_entry
BEGIN SELECT RAISE(ABORT, 'the journal is append-only: record a new event instead'); END;
CREATE TRIGGER ledger_entry_no_delete BEFORE DELETE ON ledger_entry
BEGIN SELECT RAISE(ABORT, 'the journal is append-only: record a new event instead'); END;
