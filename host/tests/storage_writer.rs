//! Group commit in the SQLite store, on real database files: many auctions writing at once share transactions, yet a
//! cap is never oversold across a batch, and every caller is answered only once its write is committed (a new
//! connection sees it). The writer's own rules (a failing write inside a batch, a failing commit, draining on drop)
//! are unit tests in `storage/writer.rs`.

use std::sync::Arc;

use pingpost::auction::store::{CapKind, CapWindows, ReserveError};
use pingpost::auction::{AuctionStore, Caps, ConsumerKeys};
use pingpost::storage::SqliteStore;
use tokio::sync::Barrier;

fn windows() -> CapWindows {
    CapWindows { hour: "2026-03-14T09".into(), day: "2026-03-14".into(), month: "2026-03".into() }
}

/// Runs `per_task` calls of `call(store, task, i)` in each of `tasks` tasks started together; returns their answers.
async fn concurrently<T, F, Fut>(store: &Arc<SqliteStore>, tasks: usize, per_task: usize, call: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<SqliteStore>, usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let (start, call) = (Arc::new(Barrier::new(tasks)), Arc::new(call));
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let (store, start, call) = (store.clone(), start.clone(), call.clone());
            tokio::spawn(async move {
                start.wait().await;
                let mut answers = Vec::with_capacity(per_task);
                for i in 0..per_task {
                    answers.push(call(store.clone(), task, i).await);
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::new();
    for handle in handles {
        answers.extend(handle.await.expect("a task"));
    }
    answers
}

fn open() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("writer.db")).expect("opens"));
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_reservations_against_a_cap_of_n_sell_exactly_n_even_when_batched_together() {
    let (_dir, store) = open();
    let caps = Caps { leads_per_day: Some(100), ..Caps::default() };
    let before = store.writer_stats();
    let answers = concurrently(&store, 64, 10, move |store, _, _| async move {
        store.reserve("capped", &caps, &windows(), 150, None, None).await
    })
    .await;
    let sold = answers.iter().filter(|a| a.is_ok()).count();
    let refused = answers.iter().filter(|a| **a == Err(ReserveError::CapReached(CapKind::LeadsPerDay))).count();
    assert_eq!((sold, refused), (100, 540));
    let usage = store.usage("capped", &windows()).await.expect("usage");
    assert_eq!((usage.leads_day, usage.spend_day_cents), (100, 100 * 150));
    let stats = store.writer_stats();
    assert!(stats.jobs - before.jobs > stats.batches - before.batches, "the reservations shared batches: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writes_of_64_concurrent_callers_share_transactions() {
    let (_dir, store) = open();
    let before = store.writer_stats();
    let answers = concurrently(&store, 64, 20, |store, task, i| async move {
        let keys = ConsumerKeys::of(&format!("+1555{task:03}{i:04}"), &format!("c{task}-{i}@example.com"));
        store.check_and_record_lead("pub-1", &keys, 0, 1_000).await
    })
    .await;
    assert!(answers.iter().all(|a| *a == Ok(None)), "every consumer is new");
    // The checks are answered before their commit; a write that waits for its commit ends the last batch.
    store.reserve("uncapped", &Caps::default(), &windows(), 150, None, None).await.expect("reserves");
    let stats = store.writer_stats();
    let (jobs, batches) = (stats.jobs - before.jobs, stats.batches - before.batches);
    assert_eq!(jobs, 64 * 20 + 1);
    assert!(batches < jobs && stats.largest_batch > 1, "{jobs} writes in {batches} transactions: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_is_answered_only_once_its_write_is_committed() {
    let (dir, store) = open();
    let path = dir.path().join("writer.db");
    let seen = concurrently(&store, 32, 4, move |store, _, _| {
        let path = path.clone();
        async move {
            let reservation =
                store.reserve("c1", &Caps::default(), &windows(), 100, None, None).await.expect("reserves");
            // A connection opened after the answer, outside the store, sees the reservation at once.
            let fresh = rusqlite::Connection::open(&path).expect("a fresh connection");
            let id = i64::try_from(reservation.id).expect("an id SQLite holds");
            fresh
                .query_row("SELECT COUNT(*) FROM reservation WHERE id = ?1", [id], |row| row.get::<_, i64>(0))
                .expect("reads")
        }
    })
    .await;
    assert_eq!(seen, vec![1; 32 * 4]);
}
