//! The store's read connections: a few connections to the database file, each behind its own mutex. Under WAL a
//! reader sees the last committed state and runs alongside the [writer](super::writer) (and the other readers), so
//! a lead's eligibility look-ups or an API listing never wait for a write batch. The connections are opened
//! read-write only so that a reader can run a checkpoint (the retention purge's `wal_checkpoint(TRUNCATE)`); every
//! write goes through the writer.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

use rusqlite::Connection;

use super::connection::{BUSY_TIMEOUT, STATEMENT_CACHE};
use pingpost_engine::store::StoreError;

/// Read connections per store: the service has two worker threads plus the blocking pool's occasional readers.
pub const READERS: usize = 4;

/// A small fixed pool of read connections.
#[derive(Debug)]
pub struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl Readers {
    /// Opens [`READERS`] connections to the (already created and migrated) database at `path`.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conns = (0..READERS)
            .map(|_| {
                let conn = Connection::open(path)?;
                conn.busy_timeout(BUSY_TIMEOUT)?;
                conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                Ok(Mutex::new(conn))
            })
            .collect::<rusqlite::Result<_>>()?;
        Ok(Readers { conns, next: AtomicUsize::new(0) })
    }

    /// A free connection if one is, else waits for one (taking them in turn so no connection is favoured).
    pub fn get(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        for offset in 0..self.conns.len() {
            match self.conns[(start + offset) % self.conns.len()].try_lock() {
                Ok(conn) => return Ok(conn),
                Err(TryLockError::WouldBlock | TryLockError::Poisoned(_)) => continue,
            }
        }
        self.conns[start]
            .lock()
            .map_err(|_| StoreError::Unavailable("a thread panicked while holding a read connection".into()))
    }
}
