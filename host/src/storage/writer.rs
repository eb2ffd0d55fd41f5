//! Group commit: one thread owns the store's write connection and runs every queued write of the process in one
//! `BEGIN IMMEDIATE … COMMIT`, each write inside its own `SAVEPOINT`.
//!
//! Why: a small SQLite write transaction costs ~100 µs here, most of it the commit (the changed pages written as WAL
//! frames) and the hot pages every write touches (cap counters, index roots). One connection behind a mutex pays it
//! once per call; the writer pays it once per batch, and a batch is whatever queued while the previous one committed
//! (no timer, no linger: batches grow with concurrency and are single writes when the store is idle).
//!
//! Guarantees:
//! - **Order.** Writes run one at a time in the order they were queued, so each sees every write queued before it:
//!   a check-and-reserve or check-and-record is exactly as serialised as with one transaction per call (and
//!   `BEGIN IMMEDIATE` still holds SQLite's write lock across processes).
//! - **Isolation of failures.** A write that returns `Err` (or panics) is rolled back to its savepoint: none of its
//!   changes are committed, while the other writes of the batch are.
//! - **Durability before the answer.** Every caller is answered only after its batch's `COMMIT` succeeded; if the
//!   batch cannot be committed every write of it gets the backend error, never a success that was not committed.
//! - **Shutdown.** Dropping the [`Writer`] stops the thread after it has run (and answered) everything queued.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::auction::store::StoreError;

/// Writes run in one transaction at most; the rest wait for the next batch.
pub const MAX_BATCH: usize = 256;

/// What the writer has done since it started: `jobs / batches` is the mean batch size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriterStats {
    /// Transactions run (committed or not).
    pub batches: u64,
    /// Writes run.
    pub jobs: u64,
    /// The most writes one transaction held.
    pub largest_batch: u64,
}

#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    jobs: AtomicU64,
    largest_batch: AtomicU64,
}

/// The thread that owns the write connection, and the queue to it.
#[derive(Debug)]
pub struct Writer {
    queue: Option<mpsc::Sender<Box<dyn Job>>>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread on `conn` (configured and migrated by the caller).
    pub fn start(conn: Connection) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel::<Box<dyn Job>>();
        let counters = Arc::new(Counters::default());
        let thread = {
            let counters = counters.clone();
            std::thread::Builder::new().name("pingpost-writer".into()).spawn(move || run(conn, jobs, &counters))?
        };
        Ok(Writer { queue: Some(queue), counters, thread: Some(thread) })
    }

    /// Queues `body` and waits (without holding a thread) until its batch is committed; returns what `body`
    /// returned, or the backend error if its batch could not be committed.
    pub async fn write<T, E, F>(&self, what: &'static str, body: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        self.queue(what, body, Reply::Async(answer))?;
        answered.await.unwrap_or_else(|_| Err(stopped(what).into()))
    }

    /// [`Writer::write`] for synchronous callers: blocks the calling thread until the batch is committed.
    pub fn write_blocking<T, E, F>(&self, what: &'static str, body: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let (answer, answered) = mpsc::sync_channel(1);
        self.queue(what, body, Reply::Blocking(answer))?;
        answered.recv().unwrap_or_else(|_| Err(stopped(what).into()))
    }

    /// Queues `body` without waiting for it: for writes no caller waits on (the service's auction records). They
    /// keep their place in the queue's order like any other write; a failure, theirs or their batch's, is logged.
    pub fn submit<F>(&self, what: &'static str, body: F)
    where
        F: FnOnce(&Transaction<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        if let Err(error) = self.send(what, Box::new(Submitted { what, body: Some(body), failed: None })) {
            tracing::error!(%error, "a write was not queued");
        }
    }

    /// Batches and writes run so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            jobs: self.counters.jobs.load(Ordering::Relaxed),
            largest_batch: self.counters.largest_batch.load(Ordering::Relaxed),
        }
    }

    fn queue<T, E, F>(&self, what: &'static str, body: F, reply: Reply<Result<T, E>>) -> Result<(), StoreError>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        self.send(what, Box::new(Queued { what, body: Some(body), outcome: None, reply }))
    }

    /// Puts `job` on the writer's queue.
    fn send(&self, what: &'static str, job: Box<dyn Job>) -> Result<(), StoreError> {
        let queue = self.queue.as_ref().ok_or_else(|| stopped(what))?;
        queue.send(job).map_err(|_| stopped(what))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has run what was queued before.
        drop(self.queue.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the store's writer thread panicked");
        }
    }
}

/// The error of a write the writer could not take or answer.
fn stopped(what: &'static str) -> StoreError {
    StoreError::Backend(format!("{what}: the store's writer has stopped"))
}

/// A queued write, its body's type erased.
trait Job: Send {
    /// Runs the body inside the job's savepoint; `false` when it failed (its savepoint is then rolled back).
    fn run(&mut self, tx: &Transaction<'_>) -> bool;
    /// Answers the caller once the batch's fate is known: `Ok` committed, `Err` not (and why).
    fn answer(self: Box<Self>, committed: Result<(), &str>);
}

/// Where a job's answer goes.
enum Reply<R> {
    Async(oneshot::Sender<R>),
    Blocking(mpsc::SyncSender<R>),
}

struct Queued<T, E, F> {
    what: &'static str,
    body: Option<F>,
    outcome: Option<Result<T, E>>,
    reply: Reply<Result<T, E>>,
}

impl<T, E, F> Job for Queued<T, E, F>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
{
    fn run(&mut self, tx: &Transaction<'_>) -> bool {
        let Some(body) = self.body.take() else {
            return false;
        };
        let what = self.what;
        let outcome = catch_unwind(AssertUnwindSafe(|| body(tx)))
            .unwrap_or_else(|_| Err(StoreError::Backend(format!("{what}: the write panicked")).into()));
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn answer(self: Box<Self>, committed: Result<(), &str>) {
        let what = self.what;
        let result = match (committed, self.outcome) {
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(StoreError::Backend(format!("{what}: the write did not run")).into()),
            (Err(error), _) => Err(StoreError::Backend(format!("{what}: {error}")).into()),
        };
        // A caller that stopped waiting (a dropped request) no longer needs the answer.
        match self.reply {
            Reply::Async(answer) => drop(answer.send(result)),
            Reply::Blocking(answer) => drop(answer.send(result)),
        }
    }
}

/// A write nobody waits for ([`Writer::submit`]): its failure, or its batch's, is logged.
struct Submitted<F> {
    what: &'static str,
    body: Option<F>,
    failed: Option<String>,
}

impl<F> Job for Submitted<F>
where
    F: FnOnce(&Transaction<'_>) -> Result<(), StoreError> + Send + 'static,
{
    fn run(&mut self, tx: &Transaction<'_>) -> bool {
        let Some(body) = self.body.take() else {
            return false;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| body(tx)))
            .unwrap_or_else(|_| Err(StoreError::Backend("the write panicked".to_owned())));
        self.failed = outcome.err().map(|error| error.to_string());
        self.failed.is_none()
    }

    fn answer(self: Box<Self>, committed: Result<(), &str>) {
        let what = self.what;
        if let Some(error) = self.failed.as_deref().or(committed.err()) {
            tracing::error!(what, error, "a queued write was not written");
        }
    }
}

/// The writer thread: takes what is queued (up to [`MAX_BATCH`]), writes it as one batch, until the queue closes.
fn run(mut conn: Connection, jobs: mpsc::Receiver<Box<dyn Job>>, counters: &Counters) {
    let mut batch = VecDeque::with_capacity(MAX_BATCH);
    while let Ok(first) = jobs.recv() {
        batch.push_back(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push_back(job),
                Err(_) => break,
            }
        }
        while !batch.is_empty() {
            write_batch(&mut conn, &mut batch, counters);
        }
    }
}

/// Runs jobs from the front of `batch` in one transaction and answers them after it ends. Normally that is every
/// job; if SQLite aborts the transaction midway (it does on some errors, such as a full disk), the jobs run so far
/// are answered with the error and the rest stay queued for a new transaction.
fn write_batch(conn: &mut Connection, batch: &mut VecDeque<Box<dyn Job>>, counters: &Counters) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => {
            let error = format!("beginning a batch: {error}");
            let jobs = batch.len();
            for job in batch.drain(..) {
                job.answer(Err(&error));
            }
            count(counters, jobs);
            return;
        }
    };
    let mut ran = Vec::with_capacity(batch.len());
    let mut aborted = None;
    while let Some(mut job) = batch.pop_front() {
        let step = savepoint(&tx, "SAVEPOINT job").and_then(|()| {
            if job.run(&tx) {
                savepoint(&tx, "RELEASE job")
            } else {
                savepoint(&tx, "ROLLBACK TO job").and_then(|()| savepoint(&tx, "RELEASE job"))
            }
        });
        ran.push(job);
        match step {
            Err(error) => aborted = Some(error),
            Ok(()) if tx.is_autocommit() => aborted = Some("SQLite rolled the batch back".to_owned()),
            Ok(()) => continue,
        }
        break;
    }
    let committed = match aborted {
        // Dropping the transaction rolls back whatever is left of it.
        Some(error) => Err(format!("the batch was rolled back: {error}")),
        None => tx.commit().map_err(|error| format!("committing the batch: {error}")),
    };
    count(counters, ran.len());
    for job in ran {
        job.answer(committed.as_ref().map(|_| ()).map_err(String::as_str));
    }
}

/// Runs one savepoint statement (cached: every job runs the same three).
fn savepoint(tx: &Transaction<'_>, sql: &str) -> Result<(), String> {
    tx.prepare_cached(sql).and_then(|mut stmt| stmt.execute([])).map(|_| ()).map_err(|error| error.to_string())
}

fn count(counters: &Counters, jobs: usize) {
    let jobs = jobs as u64;
    counters.batches.fetch_add(1, Ordering::Relaxed);
    counters.jobs.fetch_add(jobs, Ordering::Relaxed);
    counters.largest_batch.fetch_max(jobs, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer on a fresh WAL database with one table `t (n)` and whatever `schema` adds, and a second connection
    /// to read it back.
    fn writer_on_table(schema: &str) -> (tempfile::TempDir, Writer, Connection) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).expect("opens");
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER NOT NULL)").expect("creates");
        conn.execute_batch(schema).expect("creates the rest");
        let reader = Connection::open(&path).expect("opens a reader");
        (dir, Writer::start(conn).expect("starts"), reader)
    }

    fn rows(reader: &Connection) -> Vec<i64> {
        let mut stmt = reader.prepare("SELECT n FROM t ORDER BY n").expect("prepares");
        stmt.query_map([], |row| row.get(0)).expect("reads").collect::<Result<_, _>>().expect("rows")
    }

    /// Queues a job inserting `n`, answered on the returned receiver.
    fn queue_insert(
        writer: &Writer,
        n: i64,
        then: impl FnOnce() -> Result<(), StoreError> + Send + 'static,
    ) -> oneshot::Receiver<Result<(), StoreError>> {
        let (answer, answered) = oneshot::channel();
        let body = move |tx: &Transaction<'_>| {
            tx.execute("INSERT INTO t (n) VALUES (?1)", [n]).map_err(|e| StoreError::Backend(e.to_string()))?;
            then()
        };
        writer.queue("inserting", body, Reply::Async(answer)).expect("queues");
        answered
    }

    #[tokio::test]
    async fn a_write_that_fails_inside_a_batch_leaves_nothing_while_the_rest_of_the_batch_commits() {
        let (_dir, writer, reader) = writer_on_table("");
        // The first job holds the writer until every other job is queued, so they all run in the next batch.
        let (open_gate, gate) = mpsc::channel::<()>();
        let (held, _) = oneshot::channel();
        let hold = move |_: &Transaction<'_>| gate.recv().map_err(|_| StoreError::Backend("gate dropped".into()));
        writer.queue("holding", hold, Reply::Async(held)).expect("queues");
        let answers: Vec<_> = (0..20)
            .map(|n| {
                queue_insert(&writer, n, move || match n {
                    3 | 11 => Err(StoreError::Backend(format!("job {n} refused after its insert"))),
                    7 => panic!("job 7 panics after its insert"),
                    _ => Ok(()),
                })
            })
            .collect();
        open_gate.send(()).expect("opens the gate");
        for (n, answer) in answers.into_iter().enumerate() {
            let answer = answer.await.expect("answered");
            match n {
                3 | 11 => assert_eq!(answer, Err(StoreError::Backend(format!("job {n} refused after its insert")))),
                7 => assert_eq!(answer, Err(StoreError::Backend("inserting: the write panicked".into()))),
                _ => assert_eq!(answer, Ok(()), "job {n}"),
            }
        }
        let committed: Vec<i64> = (0..20).filter(|n| ![3, 7, 11].contains(n)).collect();
        assert_eq!(rows(&reader), committed);
        let stats = writer.stats();
        assert_eq!(stats.jobs, 21);
        assert!(stats.largest_batch >= 20, "the twenty writes shared one transaction: {stats:?}");
    }

    #[tokio::test]
    async fn a_submitted_write_keeps_its_place_in_the_order_and_its_failure_touches_no_other_write() {
        let (_dir, writer, reader) = writer_on_table("");
        let insert = |n: i64| {
            move |tx: &Transaction<'_>| {
                tx.execute("INSERT INTO t (n) VALUES (?1)", [n]).map_err(|e| StoreError::Backend(e.to_string()))?;
                if n == 2 { Err(StoreError::Backend("refused after its insert".into())) } else { Ok(()) }
            }
        };
        writer.submit("inserting 1", insert(1));
        writer.submit("inserting 2", insert(2));
        writer.submit("inserting 3", insert(3));
        // Answered only after everything submitted before it: the submitted writes are committed by then.
        assert_eq!(queue_insert(&writer, 4, || Ok(())).await.expect("answered"), Ok(()));
        assert_eq!(rows(&reader), vec![1, 3, 4]);
    }

    #[tokio::test]
    async fn dropping_the_writer_writes_and_answers_everything_queued_first() {
        let (_dir, writer, reader) = writer_on_table("");
        let answers: Vec<_> = (0..1_000).map(|n| queue_insert(&writer, n, || Ok(()))).collect();
        drop(writer);
        for answer in answers {
            assert_eq!(answer.await.expect("answered"), Ok(()));
        }
        assert_eq!(rows(&reader), (0..1_000).collect::<Vec<i64>>());
    }

    #[tokio::test]
    async fn when_the_commit_fails_every_write_of_the_batch_gets_the_error() {
        // A deferred foreign key violation is only detected at COMMIT, so the whole batch fails there.
        let (_dir, writer, reader) = writer_on_table(
            "PRAGMA foreign_keys = ON; CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
        );
        let (open_gate, gate) = mpsc::channel::<()>();
        let (held, _) = oneshot::channel();
        let hold = move |_: &Transaction<'_>| gate.recv().map_err(|_| StoreError::Backend("gate dropped".into()));
        writer.queue("holding", hold, Reply::Async(held)).expect("queues");
        let fine = queue_insert(&writer, 1, || Ok(()));
        let (orphan, orphaned) = oneshot::channel();
        let body = |tx: &Transaction<'_>| {
            tx.execute("INSERT INTO child (parent_id) VALUES (42)", []).map_err(|e| StoreError::Backend(e.to_string()))
        };
        writer.queue("orphaning", body, Reply::Async(orphan)).expect("queues");
        open_gate.send(()).expect("opens the gate");
        let fine = fine.await.expect("answered");
        assert!(
            matches!(&fine, Err(StoreError::Backend(m)) if m.starts_with("inserting: committing the batch")),
            "{fine:?}"
        );
        assert!(orphaned.await.expect("answered").is_err());
        assert_eq!(rows(&reader), Vec::<i64>::new(), "nothing of the failed batch is visible");
    }
}
