//! WAL checkpoints off the request path. SQLite's automatic checkpoint runs inside whichever commit crosses the
//! threshold — with its fsync, while that commit holds the store's lock — so a request now and then pays for
//! everyone's writes. The store turns the automatic checkpoint off and this thread, on its own connection, runs a
//! `PASSIVE` checkpoint (it never blocks the writer) every [`INTERVAL`], until the store is dropped.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::sqlite::BUSY_TIMEOUT;

/// How often the WAL is checkpointed.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// The running checkpoint thread; dropping it stops the thread.
#[derive(Debug)]
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the WAL of the database at `path`.
    pub fn start(path: &Path) -> std::io::Result<Self> {
        let conn = Connection::open(path).map_err(std::io::Error::other)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(std::io::Error::other)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("pingpost-checkpoint".into()).spawn(move || {
            // Until stopped (or the store is gone): one passive checkpoint per tick.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(%error, "WAL checkpoint failed; retrying");
                }
            }
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        })?;
        Ok(Checkpointer { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::SqliteStore;

    #[test]
    fn committed_pages_reach_the_database_file_without_a_checkpoint_in_any_commit() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("c.db");
        let store = SqliteStore::open(&path).expect("opens");
        let before = std::fs::metadata(&path).expect("the file").len();
        store
            .write("filling", |tx| {
                tx.execute_batch("CREATE TABLE filler (x BLOB)")
                    .map_err(crate::storage::sqlite::backend("creating"))?;
                for _ in 0..64 {
                    tx.execute("INSERT INTO filler VALUES (zeroblob(16384))", [])
                        .map_err(crate::storage::sqlite::backend("inserting"))?;
                }
                Ok::<_, crate::auction::StoreError>(())
            })
            .expect("writes");
        // The store's write connection never checkpoints (wal_autocheckpoint=0): only the checkpointer moves the
        // 1 MiB written to the WAL into the file. Wait for it, generously (a loaded CI machine).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::fs::metadata(&path).expect("the file").len() < before + (1 << 20) {
            assert!(std::time::Instant::now() < deadline, "the checkpointer did not copy the WAL into the file");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
