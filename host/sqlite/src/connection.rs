//! The store's connections: how long one waits for another's lock, how many statements each keeps prepared, and
//! how SQLite's and serde's errors become the engine's [`StoreError`], naming the step that failed.

use std::time::Duration;

use rusqlite::Connection;

use pingpost_engine::store::StoreError;

/// How long a write waits for another connection's write lock before it fails.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a connection waiting for a lock tries again (see [`wait_briefly_when_busy`]).
const BUSY_RETRY: Duration = Duration::from_micros(100);

/// A busy handler for the writer and the checkpointer: retry every [`BUSY_RETRY`] for up to [`BUSY_TIMEOUT`].
/// SQLite's own `busy_timeout` sleeps 1, 2, 5, 10 … 100 ms between tries, so a lock held for 2 ms (the checkpointer's
/// WAL restart) could keep the writer asleep for 10 ms, and a restart waiting on a reader slept up to 100 ms while it
/// held the writer back.
pub(crate) fn wait_briefly_when_busy(conn: &mut Connection) -> rusqlite::Result<()> {
    fn retry(attempts: i32) -> bool {
        let waited = BUSY_RETRY * u32::try_from(attempts).unwrap_or(0);
        if waited >= BUSY_TIMEOUT {
            return false;
        }
        std::thread::sleep(BUSY_RETRY);
        true
    }
    conn.busy_handler(Some(retry))
}

/// Prepared statements kept per connection (every statement of the store fits).
pub(crate) const STATEMENT_CACHE: usize = 64;

/// Maps a SQLite error to the store's, naming the step.
pub(crate) fn backend(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |err| StoreError::backend(what, err)
}

/// Maps a failure to write JSON to the store's, naming the step.
pub(crate) fn json_error(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |err| StoreError::backend(what, err)
}

/// Maps stored JSON that does not read back to the store's: the data is not what the store wrote.
pub(crate) fn unreadable_json(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |err| StoreError::corrupt(what, format!("stored JSON does not read back: {err}"))
}
