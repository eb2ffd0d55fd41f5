//! WAL checkpoints off the request path. SQLite's automatic checkpoint runs inside whichever commit crosses the
//! threshold — with its fsync, while that commit holds the store's lock — so a request now and then pays for
//! everyone's writes. The store turns the automatic checkpoint off and this thread, on its own connection, runs a
//! `PASSIVE` checkpoint (it never blocks the writer) every [`INTERVAL`], until the store is dropped.
//!
//! The interval is short (10 ms) on purpose: a checkpoint syncs the WAL and then the database file, and the writes
//! those syncs flush hold up the service while they run, in proportion to how much they flush. Every 250 ms (15 MB of
//! WAL at 2,500 leads/s) that made bursts of slow leads four times a second, the largest term of the p99 (14.8–26.5 ms);
//! every 10–20 ms it is 4.9–5.6 ms (BENCHMARKS.md, "Checkpoints and the WAL"). Under load the checkpoints run back to
//! back, each as long as its syncs. A checkpoint with nothing to copy touches no file, but waking 100 times a second
//! still cost an idle server 1% of a core, so while the WAL does not grow the interval doubles up to
//! [`IDLE_INTERVAL`], and the first checkpoint that finds new frames brings it back to [`INTERVAL`].
//!
//! Passive checkpoints alone let the WAL grow without end under steady load: SQLite starts the WAL over only when a
//! writer begins while every frame has been copied, and with a commit every millisecond that never happens (a load
//! test left a 1.3 GB WAL after 8 s). So once the WAL holds more than the store's restart size after a passive checkpoint,
//! the checkpointer runs a `RESTART` checkpoint: it holds the writer back while it copies what the passive one left
//! (the frames written while it ran) and makes the next commit start the WAL from its beginning. The store's
//! `journal_size_limit` then cuts the file back.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::connection::wait_briefly_when_busy;

/// How often the WAL is checkpointed while it grows.
pub const INTERVAL: Duration = Duration::from_millis(10);

/// How often the WAL is checkpointed at most while nothing is written.
pub const IDLE_INTERVAL: Duration = Duration::from_millis(100);

/// The wait before the next checkpoint: [`INTERVAL`] after one that found new frames, else twice the last wait, up to
/// [`IDLE_INTERVAL`].
fn next_interval(last: Duration, grew: bool) -> Duration {
    if grew { INTERVAL } else { (last * 2).min(IDLE_INTERVAL) }
}

/// The running checkpoint thread; dropping it stops the thread.
#[derive(Debug)]
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the WAL of the database at `path`, restarting it once it holds more than
    /// `restart_frames` frames (the store's [`StoreOptions::wal_restart_bytes`] in pages).
    ///
    /// [`StoreOptions::wal_restart_bytes`]: super::StoreOptions::wal_restart_bytes
    pub fn start(path: &Path, restart_frames: i64) -> std::io::Result<Self> {
        let mut conn = Connection::open(path).map_err(std::io::Error::other)?;
        wait_briefly_when_busy(&mut conn).map_err(std::io::Error::other)?;
        // Synced before a restart (see `restart`). Kept open until the thread ends, when the store drops it after its
        // connections: closing a descriptor of the file drops every POSIX lock this process holds on it, SQLite's too.
        let db_file = std::fs::File::open(path)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("pingpost-checkpoint".into()).spawn(move || {
            // Until stopped (or the store is gone): one passive checkpoint per tick, and a restart when the WAL is
            // long.
            let (mut interval, mut last_frames) = (INTERVAL, 0);
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                let frames = match checkpoint(&conn, "PASSIVE") {
                    Ok(wal) if wal.frames > restart_frames => {
                        restart(&conn, &db_file, wal);
                        -1
                    }
                    Ok(wal) => wal.frames,
                    Err(error) => {
                        tracing::warn!(%error, "WAL checkpoint failed; retrying");
                        -1
                    }
                };
                interval = next_interval(interval, frames != last_frames);
                last_frames = frames;
            }
            let _ = checkpoint(&conn, "PASSIVE");
        })?;
        Ok(Checkpointer { stop: Some(stop), thread: Some(thread) })
    }
}

/// What a checkpoint reports about the WAL.
#[derive(Debug, Clone, Copy)]
struct Wal {
    /// Frames in the WAL (-1 when the database is not in WAL mode).
    frames: i64,
    /// Of those, frames copied into the database file.
    copied: i64,
}

/// Runs a checkpoint in `mode`.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<Wal> {
    // The row is (busy, frames in the WAL, frames checkpointed).
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok(Wal { frames: row.get(1)?, copied: row.get(2)? })
    })
}

/// Frames a `RESTART` checkpoint may have left to copy: it copies them while the writer waits.
const CATCH_UP_FRAMES: i64 = 256;

/// Starts a long WAL over. Passive checkpoints first copy what was written while the last one ran, until little is
/// left (or a few rounds have not got there), and the database file is synced, so the `RESTART` that holds the writer
/// back has little to copy and little to sync. (A passive checkpoint that cannot copy the whole WAL does not sync the
/// file: left to the `RESTART`, that sync was of everything copied since the last one, and held the writer for
/// ~100 ms under load.)
fn restart(conn: &Connection, db_file: &std::fs::File, mut wal: Wal) {
    let started = Instant::now();
    for _ in 0..8 {
        if wal.frames - wal.copied <= CATCH_UP_FRAMES {
            break;
        }
        match checkpoint(conn, "PASSIVE") {
            Ok(now) => wal = now,
            Err(error) => return tracing::warn!(%error, "WAL checkpoint failed; retrying"),
        }
    }
    if let Err(error) = db_file.sync_data() {
        tracing::warn!(%error, "syncing the database file before a WAL restart failed");
    }
    let caught_up = started.elapsed();
    match checkpoint(conn, "RESTART") {
        Ok(_) => tracing::debug!(frames = wal.frames, ?caught_up, took = ?started.elapsed(), "WAL restarted"),
        Err(error) => tracing::warn!(%error, frames = wal.frames, "WAL restart failed; retrying"),
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
    use crate::SqliteStore;

    #[test]
    fn committed_pages_reach_the_database_file_without_a_checkpoint_in_any_commit() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("c.db");
        let store = SqliteStore::open(&path).expect("opens");
        let before = std::fs::metadata(&path).expect("the file").len();
        store
            .write("filling", |tx| {
                tx.execute_batch("CREATE TABLE filler (x BLOB)").map_err(crate::connection::backend("creating"))?;
                for _ in 0..64 {
                    tx.execute("INSERT INTO filler VALUES (zeroblob(16384))", [])
                        .map_err(crate::connection::backend("inserting"))?;
                }
                Ok::<_, pingpost_engine::StoreError>(())
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

    #[test]
    fn the_interval_backs_off_while_the_wal_does_not_grow_and_snaps_back_when_it_does() {
        use super::{IDLE_INTERVAL, INTERVAL, next_interval};
        let mut interval = INTERVAL;
        let mut waits = Vec::new();
        for _ in 0..6 {
            interval = next_interval(interval, false);
            waits.push(interval.as_millis());
        }
        assert_eq!(waits, [20, 40, 80, 100, 100, 100]);
        assert_eq!(next_interval(IDLE_INTERVAL, true), INTERVAL);
    }

    /// How long the restart tests write without a pause.
    const WRITING: std::time::Duration = std::time::Duration::from_millis(1_250);

    /// The WAL's checkpoint sequence number (header bytes 12..16, big-endian): SQLite increments it each time the WAL
    /// starts over.
    fn wal_restarts(wal: &std::path::Path) -> u32 {
        let header = std::fs::read(wal).expect("the WAL");
        u32::from_be_bytes(header[12..16].try_into().expect("a WAL header"))
    }

    #[test]
    fn a_wal_written_without_pause_is_restarted_and_cut_back() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("w.db");
        let writer = rusqlite::Connection::open(&path).expect("opens");
        // Small pages keep the test's writes small; the limit is what the store sets too, scaled down.
        writer
            .execute_batch(
                "PRAGMA page_size = 512; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                 PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 65536;
                 CREATE TABLE t (n INTEGER NOT NULL);",
            )
            .expect("sets up");
        let wal = dir.path().join("w.db-wal");
        let first = wal_restarts(&wal);
        let _checkpointer = super::Checkpointer::start(&path, 64).expect("starts");
        // Commit without a pause for over a second (a hundred checkpoint intervals, and time for a slow disk's syncs):
        // no passive checkpoint ever finds the WAL fully copied, so without the restart it would only grow.
        let started = std::time::Instant::now();
        let mut commits = 0i64;
        while started.elapsed() < WRITING {
            writer.execute("INSERT INTO t VALUES (?1)", [commits]).expect("commits");
            commits += 1;
        }
        // Each commit appended at least one frame (a 24-byte header and a 512-byte page): a WAL never started over
        // holds at least that much.
        let never_restarted = u64::try_from(commits).expect("a count") * (24 + 512);
        let now = std::fs::metadata(&wal).expect("the WAL").len();
        assert!(wal_restarts(&wal) > first, "the WAL never started over in {commits} commits");
        assert!(now < never_restarted, "the WAL holds {now} bytes after {commits} commits: it was not cut back");
    }

    #[test]
    fn the_store_restarts_its_wal_at_the_size_it_was_opened_with() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("s.db");
        let options = crate::StoreOptions { wal_restart_bytes: 1 << 20 };
        let store = SqliteStore::open_with(&path, options).expect("opens");
        let wal = dir.path().join("s.db-wal");
        store
            .write("creating", |tx| {
                tx.execute_batch("CREATE TABLE filler (x BLOB)").map_err(crate::connection::backend("creating"))
            })
            .expect("creates");
        let first = wal_restarts(&wal);
        // 64 KiB a commit, without a pause, for over a second: far past 1 MiB (the default would take 1 GiB).
        let started = std::time::Instant::now();
        while started.elapsed() < WRITING {
            store
                .write("filling", |tx| {
                    tx.execute("INSERT INTO filler VALUES (zeroblob(65536))", [])
                        .map_err(crate::connection::backend("inserting"))
                })
                .expect("writes");
        }
        assert!(wal_restarts(&wal) > first, "the WAL never started over past 1 MiB");
    }
}
