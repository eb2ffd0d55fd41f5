//! Store costs per sale: reserve + commit against a capped campaign, and the duplicate check-and-record of a new
//! consumer, on the SQLite store (a real file: WAL, `synchronous=NORMAL`) and the in-memory store in the same run;
//! plus reserve + commit from two threads at once on one SQLite store (one connection behind a mutex). Results and
//! the command are in BENCHMARKS.md ("Storage").

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use pingpost::auction::store::CapWindows;
use pingpost::auction::{AuctionStore, Caps, ConsumerKeys, MemoryStore};
use pingpost::storage::SqliteStore;

/// Caps that every window checks but the benchmark never reaches.
fn caps() -> Caps {
    Caps {
        leads_per_hour: Some(u32::MAX - 1),
        leads_per_day: Some(u32::MAX - 1),
        leads_per_month: Some(u32::MAX - 1),
        spend_per_day_cents: Some(u64::MAX / 2),
        spend_per_month_cents: Some(u64::MAX / 2),
    }
}

fn windows() -> CapWindows {
    CapWindows { hour: "2026-03-14T09".into(), day: "2026-03-14".into(), month: "2026-03".into() }
}

/// A store under test, by name.
type Named = (&'static str, Arc<dyn AuctionStore>);

/// The stores under test; the temp dir lives as long as the SQLite store.
fn stores() -> (tempfile::TempDir, Vec<Named>) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sqlite = SqliteStore::open(dir.path().join("bench.db")).expect("the database opens");
    (dir, vec![("memory", Arc::new(MemoryStore::new())), ("sqlite", Arc::new(sqlite))])
}

fn sale(store: &dyn AuctionStore, caps: &Caps, windows: &CapWindows) {
    let reservation = store.reserve("campaign-1", caps, windows, 1_250, None).expect("reserves");
    store.commit(&reservation, 1_200).expect("commits");
}

fn reserve_commit(c: &mut Criterion) {
    let (_dir, stores) = stores();
    let (caps, windows) = (caps(), windows());
    let mut group = c.benchmark_group("storage/reserve_commit");
    for (name, store) in &stores {
        group.bench_function(*name, |b| b.iter(|| sale(black_box(store.as_ref()), &caps, &windows)));
    }
    group.finish();
}

fn reserve_commit_two_threads(c: &mut Criterion) {
    let (_dir, stores) = stores();
    let mut group = c.benchmark_group("storage/reserve_commit_2_threads");
    for (name, store) in &stores {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..2 {
                        let (store, caps, windows) = (store.clone(), caps(), windows());
                        scope.spawn(move || {
                            for _ in 0..iters.div_ceil(2) {
                                sale(store.as_ref(), &caps, &windows);
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    group.finish();
}

fn check_and_record_lead(c: &mut Criterion) {
    let (_dir, stores) = stores();
    let next = AtomicU64::new(0);
    let new_consumer = || {
        let n = next.fetch_add(1, Ordering::Relaxed);
        ConsumerKeys::of(&format!("+1{n:010}"), &format!("consumer{n}@example.com"))
    };
    let mut group = c.benchmark_group("storage/check_and_record_lead");
    for (name, store) in &stores {
        group.bench_function(*name, |b| {
            b.iter_batched(
                new_consumer,
                |keys| {
                    let seen = store.check_and_record_lead("publisher-1", &keys, 0, 1_000).expect("checks");
                    assert!(seen.is_none(), "every consumer is new");
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = reserve_commit, reserve_commit_two_threads, check_and_record_lead
}
criterion_main!(benches);
