//! Store costs per sale: reserve + commit (which records the sale, lead included) against a capped campaign, and the
//! duplicate check-and-record of a new consumer, on the SQLite store (a real file: WAL, `synchronous=NORMAL`) and the
//! in-memory store in the same run; reserve + commit from 1, 2 and 64 concurrent tasks (auctions) on a two-worker
//! runtime, so the SQLite store's group commit batches the writes of callers waiting at once. Results and the command
//! are in BENCHMARKS.md ("Storage").

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use pingpost::auction::store::CapWindows;
use pingpost::auction::{AuctionStore, Caps, ConsumerKeys, MemoryStore, SaleDelivery, SaleRecord};
use pingpost::model::{Consent, Consumer, Lead};
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

/// A store under test, by name, and how to get it again: the memory store is replaced by a fresh one every
/// [`SALES_PER_STORE`] sales, since it keeps every sale (lead included) in memory; the SQLite store is the same file.
type Named = (&'static str, Box<dyn Fn() -> Arc<dyn AuctionStore>>);

/// Sales committed into one store instance before a reserve + commit benchmark asks for the next.
const SALES_PER_STORE: u64 = 50_000;

/// The stores under test; the temp dir lives as long as the SQLite store.
fn stores() -> (tempfile::TempDir, Vec<Named>) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sqlite: Arc<dyn AuctionStore> =
        Arc::new(SqliteStore::open(dir.path().join("bench.db")).expect("the database opens"));
    let memory = || -> Arc<dyn AuctionStore> { Arc::new(MemoryStore::new()) };
    (dir, vec![("memory", Box::new(memory)), ("sqlite", Box::new(move || sqlite.clone()))])
}

/// The runtime the benchmark's callers run on: two workers, as the service has.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
}

/// Times `iters` sales split over `tasks` concurrent tasks (auctions), `SALES_PER_STORE` at a time on one store from
/// `store_for` (getting the store is not timed).
fn time_sales(store_for: &dyn Fn() -> Arc<dyn AuctionStore>, iters: u64, tasks: u64) -> Duration {
    let rt = runtime();
    let sold = Arc::new((caps(), windows(), sale_record()));
    let mut elapsed = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let chunk = (iters - done).min(SALES_PER_STORE);
        let store = store_for();
        let start = Instant::now();
        rt.block_on(async {
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let (store, sold) = (store.clone(), sold.clone());
                    tokio::spawn(async move {
                        let (caps, windows, record) = &*sold;
                        for _ in 0..chunk.div_ceil(tasks) {
                            sale(black_box(store.as_ref()), caps, windows, record).await;
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.await.expect("a selling task");
            }
        });
        elapsed += start.elapsed();
        done += chunk;
    }
    elapsed
}

/// The sale record every benchmarked commit writes (a pick-up, so the lead is stored with it).
fn sale_record() -> SaleRecord {
    SaleRecord {
        lead_id: "p_bench".into(),
        campaign_id: "campaign-1".into(),
        buyer_id: "buyer-1".into(),
        publisher_id: "pub-1".into(),
        price_cents: 1_200,
        payout_cents: 1_020,
        sold_at_unix_ms: 1_773_482_400_000,
        buyer_ref: None,
        lead: Lead {
            vertical: "health-insurance".into(),
            publisher_id: "pub-1".into(),
            source_id: "src-1".into(),
            sub_id: String::new(),
            consumer: Consumer {
                first_name: "Ana".into(),
                last_name: "Lopez".into(),
                phone: "+13055550001".into(),
                email: "ana@example.com".into(),
                street: "1 Ocean Dr".into(),
                city: "Miami".into(),
                state: "FL".into(),
                zip5: "33139".into(),
                date_of_birth: "1980-02-29".into(),
                gender: None,
            },
            consent: Consent { tcpa_text: Some("I agree".into()), ..Consent::default() },
            extra: Default::default(),
        },
        delivery: SaleDelivery::Pickup,
    }
}

async fn sale(store: &dyn AuctionStore, caps: &Caps, windows: &CapWindows, record: &SaleRecord) {
    let reservation = store.reserve("campaign-1", caps, windows, 1_250, None, None).await.expect("reserves");
    store.commit(&reservation, 1_200, record).await.expect("commits");
}

fn reserve_commit(c: &mut Criterion) {
    let (_dir, stores) = stores();
    for tasks in [1, 2, 64] {
        let mut group = c.benchmark_group(format!("storage/reserve_commit_{tasks}_tasks"));
        for (name, store_for) in &stores {
            group.bench_function(*name, |b| b.iter_custom(|iters| time_sales(store_for.as_ref(), iters, tasks)));
        }
        group.finish();
    }
}

fn check_and_record_lead(c: &mut Criterion) {
    let (_dir, stores) = stores();
    let rt = runtime();
    let next = AtomicU64::new(0);
    let new_consumer = || {
        let n = next.fetch_add(1, Ordering::Relaxed);
        ConsumerKeys::of(&format!("+1{n:010}"), &format!("consumer{n}@example.com"))
    };
    let mut group = c.benchmark_group("storage/check_and_record_lead");
    for (name, store_for) in &stores {
        let store = store_for();
        group.bench_function(*name, |b| {
            b.iter_batched(
                new_consumer,
                |keys| {
                    let seen =
                        rt.block_on(store.check_and_record_lead("publisher-1", &keys, 0, 1_000)).expect("checks");
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
    targets = reserve_commit, check_and_record_lead
}
criterion_main!(benches);
