//! Group commit: one thread owns the store's write connection and runs every queued write of the process in one
//! `BEGIN IMMEDIATE … COMMIT`, each write inside its own `SAVEPOINT`.
//!
//! Why: a small SQLite write transaction costs ~100 µs here, most of it the commit (the changed pages written as WAL
//! frames) and the hot pages every write touches (cap counters, index roots). One connection behind a mutex pays it
//! once per call; the writer pays it once per batch, and a batch is whatever queued while the previous one committed.
//!
//! Only a write somebody waits on makes the writer commit ([`Writer::write`], [`Writer::write_blocking`]): as soon as
//! one has run and nothing more is queued, the batch commits (no linger: a waited write is never held back). Writes
//! nobody waits on for durability ([`Writer::submit`], [`Writer::write_early`]) leave the transaction open for the
//! next waited write to commit them with its own, or for at most [`HOLD`] when none comes: under load they ride along
//! with a sale's commit instead of paying for one of their own.
//!
//! Guarantees:
//! - **Order.** Writes run one at a time in the order they were queued, so each sees every write queued before it:
//!   a check-and-reserve or check-and-record is exactly as serialised as with one transaction per call (and
//!   `BEGIN IMMEDIATE` still holds SQLite's write lock across processes).
//! - **Isolation of failures.** A write that returns `Err` (or panics) is rolled back to its savepoint: none of its
//!   changes are committed, while the other writes of the batch are.
//! - **Durability before the answer.** A caller of `write` or `write_blocking` is answered only after its batch's
//!   `COMMIT` succeeded; if the batch cannot be committed every such write gets the backend error, never a success
//!   that was not committed. A caller of `write_early` is answered when its write has run, before that commit: its
//!   changes are visible to every later write at once, and durable no later than the next waited write's answer
//!   (commits follow the queue's order). If its batch then fails to commit, the failure is logged.
//! - **Shutdown.** Dropping the [`Writer`] stops the thread after it has run (and answered) everything queued.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, TransactionBehavior};
use serde::Serialize;
use tokio::sync::oneshot;

use pingpost_engine::store::StoreError;

/// Writes run in one transaction at most; the rest wait for the next batch.
pub const MAX_BATCH: usize = 256;

/// How long writes nobody waits on for durability may stay uncommitted when no waited write comes to commit them
/// (so also how much of them a crash can lose, and how late a reader may see them).
pub const HOLD: Duration = Duration::from_millis(5);

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
    /// Why the last batch could not be committed; `None` once one is.
    failing: std::sync::Mutex<Option<String>>,
    /// Whether `failing` holds a reason: read per lead without taking the lock.
    failed: std::sync::atomic::AtomicBool,
}

/// The thread that owns the write connection, and the queue to it.
#[derive(Debug)]
pub struct Writer {
    queue: Option<mpsc::Sender<Box<dyn Job>>>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread on `conn` (configured and migrated by the caller), holding writes nobody waits on
    /// uncommitted for at most `hold` ([`HOLD`] in the store).
    pub fn start(conn: Connection, hold: Duration) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel::<Box<dyn Job>>();
        let counters = Arc::new(Counters::default());
        let thread = {
            let counters = counters.clone();
            std::thread::Builder::new()
                .name("pingpost-writer".into())
                .spawn(move || run(conn, jobs, hold, &counters))?
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
        self.awaited(what, body, false).await
    }

    /// Why the last batch could not begin or commit (a full disk, an I/O error); `None` while batches commit.
    pub fn failing(&self) -> Option<String> {
        if !self.counters.failed.load(Ordering::Acquire) {
            return None;
        }
        self.counters.failing.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// [`Writer::write`] for synchronous callers: blocks the calling thread until the batch is committed.
    pub fn write_blocking<T, E, F>(&self, what: &'static str, body: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let (answer, answered) = mpsc::sync_channel(1);
        self.queue(what, body, Reply::Blocking(answer), false)?;
        answered.recv().unwrap_or_else(|_| Err(stopped(what).into()))
    }

    /// Queues `body` and waits until it has run, not for its commit: for a write whose caller needs its result
    /// now but can let its durability ride on the next waited write (the dedupe claim of a lead, made durable no later
    /// than the lead's sale). Its changes are visible to every write queued after it; they are lost if the process
    /// dies (or the batch fails to commit) before a commit, which comes within [`HOLD`].
    pub async fn write_early<T, E, F>(&self, what: &'static str, body: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        self.awaited(what, body, true).await
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

    /// Queues `body` and awaits its answer: after its commit, or once it has run when `early`.
    async fn awaited<T, E, F>(&self, what: &'static str, body: F, early: bool) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        self.queue(what, body, Reply::Async(answer), early)?;
        answered.await.unwrap_or_else(|_| Err(stopped(what).into()))
    }

    fn queue<T, E, F>(
        &self,
        what: &'static str,
        body: F,
        reply: Reply<Result<T, E>>,
        early: bool,
    ) -> Result<(), StoreError>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        self.send(what, Box::new(Queued { what, body: Some(body), outcome: None, reply: Some(reply), early }))
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
    StoreError::Unavailable(format!("{what}: the store's writer has stopped"))
}

/// A queued write, its body's type erased.
trait Job: Send {
    /// Runs the body inside the job's savepoint; `false` when it failed (its savepoint is then rolled back).
    fn run(&mut self, tx: &Transaction<'_>) -> bool;
    /// Whether its caller waits for the commit (so the batch should commit as soon as nothing more is queued).
    fn awaits_commit(&self) -> bool;
    /// Called once its savepoint is released or rolled back: a job answered early answers here.
    fn ran(&mut self) {}
    /// Answers the caller once the batch's fate is known: `Ok` committed, `Err` not (and why).
    fn answer(self: Box<Self>, committed: Result<(), &StoreError>);
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
    /// Taken when the answer is sent.
    reply: Option<Reply<Result<T, E>>>,
    /// Answered when it has run ([`Writer::write_early`]) rather than once committed.
    early: bool,
}

impl<R> Reply<R> {
    fn send(self, result: R) {
        // A caller that stopped waiting (a dropped request) no longer needs the answer.
        match self {
            Reply::Async(answer) => drop(answer.send(result)),
            Reply::Blocking(answer) => drop(answer.send(result)),
        }
    }
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
            .unwrap_or_else(|_| Err(StoreError::Unavailable(format!("{what}: the write panicked")).into()));
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn awaits_commit(&self) -> bool {
        !self.early
    }

    fn ran(&mut self) {
        if self.early
            && let (Some(reply), Some(outcome)) = (self.reply.take(), self.outcome.take())
        {
            reply.send(outcome);
        }
    }

    fn answer(self: Box<Self>, committed: Result<(), &StoreError>) {
        let what = self.what;
        let Some(reply) = self.reply else {
            // Answered when it ran; only a failed commit is left to tell.
            if let Err(error) = committed {
                tracing::error!(what, %error, "a write answered before its commit was not committed");
            }
            return;
        };
        let result = match (committed, self.outcome) {
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(StoreError::Unavailable(format!("{what}: the write did not run")).into()),
            (Err(error), _) => Err(error.doing(what).into()),
        };
        reply.send(result);
    }
}

/// A write nobody waits for ([`Writer::submit`]): its failure, or its batch's, is logged.
struct Submitted<F> {
    what: &'static str,
    body: Option<F>,
    failed: Option<StoreError>,
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
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the write panicked".to_owned())));
        self.failed = outcome.err();
        self.failed.is_none()
    }

    fn awaits_commit(&self) -> bool {
        false
    }

    fn answer(self: Box<Self>, committed: Result<(), &StoreError>) {
        let what = self.what;
        if let Some(error) = self.failed.as_ref().or(committed.err()) {
            tracing::error!(what, %error, "a queued write was not written");
        }
    }
}

/// The writer thread: writes batches until the queue closes and everything queued is written.
fn run(mut conn: Connection, jobs: mpsc::Receiver<Box<dyn Job>>, hold: Duration, counters: &Counters) {
    while let Ok(first) = jobs.recv() {
        write_batch(&mut conn, first, &jobs, hold, counters);
    }
}

/// Runs `first` and the jobs that follow it in one transaction, and answers them after it ends. The batch commits
/// when it has run a job somebody waits on and nothing more is queued, when it holds [`MAX_BATCH`] jobs, or `hold`
/// after it began when no waited job came. If SQLite aborts the transaction midway (it does on some errors, such as
/// a full disk), the jobs run so far are answered with the error and the rest are left queued for a new transaction.
fn write_batch(
    conn: &mut Connection,
    first: Box<dyn Job>,
    jobs: &mpsc::Receiver<Box<dyn Job>>,
    hold: Duration,
    counters: &Counters,
) {
    let began = Instant::now();
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => {
            let error = StoreError::backend("beginning a batch", error);
            set_failing(counters, Some(error.to_string()));
            first.answer(Err(&error));
            count(counters, 1);
            return;
        }
    };
    let mut ran: Vec<Box<dyn Job>> = Vec::new();
    let mut awaited = false;
    let mut aborted = None;
    let mut next = Some(first);
    while let Some(mut job) = next.take() {
        let step = savepoint(&tx, "SAVEPOINT job").and_then(|()| {
            if job.run(&tx) {
                savepoint(&tx, "RELEASE job")
            } else {
                savepoint(&tx, "ROLLBACK TO job").and_then(|()| savepoint(&tx, "RELEASE job"))
            }
        });
        match step {
            Err(error) => aborted = Some(error),
            Ok(()) if tx.is_autocommit() => {
                aborted = Some(StoreError::Unavailable("SQLite rolled the batch back".to_owned()));
            }
            Ok(()) => job.ran(),
        }
        awaited |= job.awaits_commit();
        ran.push(job);
        if aborted.is_some() || ran.len() >= MAX_BATCH {
            break;
        }
        // With a waited job in it the batch commits as soon as nothing more is queued; otherwise it waits for more
        // until `hold` is over.
        let left = (began + hold).saturating_duration_since(Instant::now());
        next = match (awaited, left.is_zero()) {
            (true, _) => jobs.try_recv().ok(),
            (false, true) => None,
            (false, false) => jobs.recv_timeout(left).ok(),
        };
    }
    let committed = match aborted {
        // Dropping the transaction rolls back whatever is left of it.
        Some(error) => Err(error.doing("the batch was rolled back")),
        None => tx.commit().map_err(|error| StoreError::backend("committing the batch", error)),
    };
    count(counters, ran.len());
    set_failing(counters, committed.as_ref().err().map(StoreError::to_string));
    for job in ran {
        job.answer(committed.as_ref().map(|_| ()));
    }
}

/// Runs one savepoint statement (cached: every job runs the same three).
fn savepoint(tx: &Transaction<'_>, sql: &str) -> Result<(), StoreError> {
    tx.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(|_| ())
        .map_err(|error| StoreError::backend(sql, error))
}

/// Records why batches fail (`None`: they commit again).
fn set_failing(counters: &Counters, reason: Option<String>) {
    let mut failing = counters.failing.lock().unwrap_or_else(|p| p.into_inner());
    counters.failed.store(reason.is_some(), Ordering::Release);
    *failing = reason;
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
        writer_holding(HOLD, schema)
    }

    /// [`writer_on_table`] with writes nobody waits on held uncommitted for up to `hold`.
    fn writer_holding(hold: Duration, schema: &str) -> (tempfile::TempDir, Writer, Connection) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).expect("opens");
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER NOT NULL)").expect("creates");
        conn.execute_batch(schema).expect("creates the rest");
        let reader = Connection::open(&path).expect("opens a reader");
        (dir, Writer::start(conn, hold).expect("starts"), reader)
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
            tx.execute("INSERT INTO t (n) VALUES (?1)", [n]).map_err(|e| StoreError::backend("inserting", e))?;
            then()
        };
        writer.queue("inserting", body, Reply::Async(answer), false).expect("queues");
        answered
    }

    #[tokio::test]
    async fn a_write_that_fails_inside_a_batch_leaves_nothing_while_the_rest_of_the_batch_commits() {
        let (_dir, writer, reader) = writer_on_table("");
        // The first job holds the writer until every other job is queued, so they all run in the next batch.
        let (open_gate, gate) = mpsc::channel::<()>();
        let (held, _) = oneshot::channel();
        let hold = move |_: &Transaction<'_>| gate.recv().map_err(|_| StoreError::Unavailable("gate dropped".into()));
        writer.queue("holding", hold, Reply::Async(held), false).expect("queues");
        let answers: Vec<_> = (0..20)
            .map(|n| {
                queue_insert(&writer, n, move || match n {
                    3 | 11 => Err(StoreError::Unavailable(format!("job {n} refused after its insert"))),
                    7 => panic!("job 7 panics after its insert"),
                    _ => Ok(()),
                })
            })
            .collect();
        open_gate.send(()).expect("opens the gate");
        for (n, answer) in answers.into_iter().enumerate() {
            let answer = answer.await.expect("answered");
            match n {
                3 | 11 => assert_eq!(answer, Err(StoreError::Unavailable(format!("job {n} refused after its insert")))),
                7 => assert_eq!(answer, Err(StoreError::Unavailable("inserting: the write panicked".into()))),
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
                tx.execute("INSERT INTO t (n) VALUES (?1)", [n]).map_err(|e| StoreError::backend("inserting", e))?;
                if n == 2 { Err(StoreError::Unavailable("refused after its insert".into())) } else { Ok(()) }
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
    async fn writes_nobody_waits_on_to_commit_stay_uncommitted_until_a_waited_write_commits_them() {
        // An hour's hold: only a waited write can end the batch.
        let (_dir, writer, reader) = writer_holding(Duration::from_secs(3600), "");
        let insert = |n: i64, fail: bool| {
            move |tx: &Transaction<'_>| {
                tx.execute("INSERT INTO t (n) VALUES (?1)", [n]).map_err(|e| StoreError::backend("inserting", e))?;
                if fail { Err(StoreError::Unavailable(format!("{n} refused after its insert"))) } else { Ok(n) }
            }
        };
        writer.submit("inserting 1", move |tx| insert(1, false)(tx).map(drop));
        // Answered once run, though nothing is committed yet; a failing one gets its own error at once.
        assert_eq!(writer.write_early("inserting 2", insert(2, false)).await, Ok(2));
        assert_eq!(
            writer.write_early("inserting 3", insert(3, true)).await,
            Err(StoreError::Unavailable("3 refused after its insert".into()))
        );
        assert_eq!(rows(&reader), Vec::<i64>::new(), "nothing committed before a waited write");
        assert_eq!(writer.stats().batches, 0, "the batch is still open");
        // The waited write commits the batch: its own insert and the held ones, without the failed one.
        assert_eq!(writer.write("inserting 4", insert(4, false)).await, Ok(4));
        assert_eq!(rows(&reader), vec![1, 2, 4]);
        assert_eq!(writer.stats(), WriterStats { batches: 1, jobs: 4, largest_batch: 4 });
    }

    #[tokio::test]
    async fn writes_nobody_waits_on_are_committed_once_the_hold_is_over() {
        let (_dir, writer, reader) = writer_holding(Duration::from_millis(20), "");
        writer.submit("inserting 1", |tx| {
            tx.execute("INSERT INTO t (n) VALUES (1)", []).map(drop).map_err(|e| StoreError::backend("inserting", e))
        });
        // Generous for a loaded CI machine; without the hold's end it would never be committed.
        let deadline = Instant::now() + Duration::from_secs(20);
        while rows(&reader).is_empty() {
            assert!(Instant::now() < deadline, "the held write was never committed");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(rows(&reader), vec![1]);
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
        let hold = move |_: &Transaction<'_>| gate.recv().map_err(|_| StoreError::Unavailable("gate dropped".into()));
        writer.queue("holding", hold, Reply::Async(held), false).expect("queues");
        let fine = queue_insert(&writer, 1, || Ok(()));
        let (orphan, orphaned) = oneshot::channel();
        let body = |tx: &Transaction<'_>| {
            tx.execute("INSERT INTO child (parent_id) VALUES (42)", []).map_err(|e| StoreError::backend("inserting", e))
        };
        writer.queue("orphaning", body, Reply::Async(orphan), false).expect("queues");
        open_gate.send(()).expect("opens the gate");
        let fine = fine.await.expect("answered");
        assert!(
            matches!(&fine, Err(StoreError::Backend { what, .. }) if what == "inserting: committing the batch"),
            "{fine:?}"
        );
        assert!(orphaned.await.expect("answered").is_err());
        assert_eq!(rows(&reader), Vec::<i64>::new(), "nothing of the failed batch is visible");
    }
}
