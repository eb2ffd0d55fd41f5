//! The books at the store: a sale's postings are written in the sale's own atomic step, a buyer's funds are checked
//! in that step too (so racing auctions never take it past its credit limit), a return reverses the sale's postings,
//! the journal refuses every update and delete, and over thousands of random concurrent events the journal sums to
//! zero and every balance equals what the raw sales, returns and payments say.

#[path = "common/auction_fixture.rs"]
mod auction_fixture;
mod common;

use std::sync::{Arc, Mutex};

use auction_fixture::lead;
use pingpost::auction::ledger::{Account, EventKind, NewEvent, Posting};
use pingpost::auction::store::{CapWindows, Purchase, ReserveError};
use pingpost::auction::{AuctionStore, Caps, MemoryStore, SaleDelivery, SaleRecord};
use pingpost::storage::SqliteStore;
use pingpost::storage::sales::SaleRef;
use proptest::prelude::*;

fn windows() -> CapWindows {
    CapWindows { hour: "2026-11-25T10".into(), day: "2026-11-25".into(), month: "2026-11".into() }
}

/// What the publisher earns of a sale at `price_cents` in these tests (a 15 % margin, rounded toward the publisher).
fn payout(price_cents: u32) -> u32 {
    price_cents - price_cents * 15 / 100
}

/// A pick-up sale of lead `n` to buyer `buyer`'s campaign `c<buyer>` at `price_cents`.
fn sale(n: u32, buyer: &str, price_cents: u32) -> SaleRecord {
    SaleRecord {
        lead_id: format!("p_{n}"),
        campaign_id: format!("c-{buyer}"),
        buyer_id: buyer.to_owned(),
        publisher_id: "pub-1".into(),
        price_cents,
        payout_cents: payout(price_cents),
        sold_at_unix_ms: 1_000 + i64::from(n),
        buyer_ref: None,
        lead: lead(n),
        delivery: SaleDelivery::Pickup,
    }
}

/// `buyer` buying an unknown consumer, under `credit_limit_cents`.
fn purchase(buyer: &str, credit_limit_cents: Option<u64>) -> Purchase {
    Purchase {
        buyer_id: buyer.to_owned(),
        keys: None,
        at_unix_ms: 1_000,
        suppress_since_unix_ms: None,
        credit_limit_cents,
    }
}

/// The postings of a payment of `amount_cents` from `buyer`.
fn payment(buyer: &str, amount_cents: i64) -> Vec<Posting> {
    vec![
        Posting { account: Account::buyer(buyer), amount_cents },
        Posting { account: Account::Cash, amount_cents: -amount_cents },
    ]
}

fn sqlite() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = SqliteStore::open(dir.path().join("books.db")).expect("opens");
    (dir, Arc::new(store))
}

/// Forty racing sales at 100 against funds of 1000 paid in plus a credit limit of 500: exactly fifteen sell, the rest
/// are refused naming what is available, and the buyer ends exactly at its limit.
async fn racing_sales_stop_at_the_credit_limit(store: Arc<dyn AuctionStore>) -> Vec<Result<u64, ReserveError>> {
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let record = sale(n, "acme", 100);
                store.sell("c-acme", &Caps::default(), &windows(), Some(&purchase("acme", Some(500))), &record).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("the task ran"));
    }
    results
}

fn assert_fifteen_sold(results: &[Result<u64, ReserveError>]) {
    let sold = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(sold, 15, "{results:?}");
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(refused, &ReserveError::InsufficientFunds { available_cents: 0 });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_sales_never_take_a_buyer_past_its_credit_limit_in_either_store() {
    let memory = Arc::new(MemoryStore::new());
    memory.record(EventKind::Payment, "operator:1", payment("acme", 1_000), 0).expect("paid");
    assert_fifteen_sold(&racing_sales_stop_at_the_credit_limit(memory.clone()).await);
    assert_eq!(memory.balance(&Account::buyer("acme")).unwrap(), -500);
    let journal = memory.journal().unwrap();
    assert_eq!(journal.len(), 16);
    assert_eq!(journal.iter().flat_map(|e| &e.postings).map(|p| p.amount_cents).sum::<i64>(), 0);

    let (_dir, sqlite) = sqlite();
    sqlite.record_event(NewEvent::new(EventKind::Payment, "operator:1", 0, payment("acme", 1_000))).expect("paid");
    assert_fifteen_sold(&racing_sales_stop_at_the_credit_limit(sqlite.clone()).await);
    assert_eq!(sqlite.balance(&Account::buyer("acme"), None).unwrap(), -500);
    let funds = sqlite.buyer_funds("acme").unwrap();
    assert_eq!((funds.balance_cents, funds.held_cents, funds.available_cents(500)), (-500, 0, 0));
    let check = sqlite.check_journal().unwrap();
    assert_eq!((check.events, check.sum_cents, check.accounts_off.len()), (16, 0, 0), "{check:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_sales_and_quotes_hold_funds_until_they_sell_or_are_given_back() {
    let (_dir, store) = sqlite();
    let caps = Caps::default();
    let limited = purchase("acme", Some(1_000));
    // A post in flight and a standing quote hold 900 of the 1000.
    let reserved = store.reserve("c-acme", &caps, &windows(), 400, Some(&limited), None).await.expect("reserved");
    let held = store.hold("c-acme", &caps, &windows(), 500, Some(&limited), 60_000).await.expect("held");
    assert_eq!(store.funds("acme").await.unwrap().held_cents, 900);
    let refused = store.reserve("c-acme", &caps, &windows(), 200, Some(&limited), None).await;
    assert_eq!(refused.unwrap_err(), ReserveError::InsufficientFunds { available_cents: 100 });
    // Given back, the reservation frees its 400; the hold sells at its price and is spent.
    store.release(&reserved).await.expect("released");
    store.sell_hold(&held, Some(&limited), &sale(1, "acme", 500)).await.expect("sold");
    let funds = store.funds("acme").await.unwrap();
    assert_eq!((funds.balance_cents, funds.held_cents), (-500, 0));
    // Without a limit nothing is refused, and the buyer's balance goes as negative as it buys.
    let unlimited = purchase("zenith", None);
    store.sell("c-zenith", &caps, &windows(), Some(&unlimited), &sale(2, "zenith", 90_000)).await.expect("sold");
    assert_eq!(store.balance(&Account::buyer("zenith"), None).unwrap(), -90_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_reverses_its_sale_once_and_the_journal_refuses_updates_and_deletes() {
    let (dir, store) = sqlite();
    let sale_id = store.sell("c-acme", &Caps::default(), &windows(), None, &sale(1, "acme", 2_000)).await.unwrap();
    store.return_sale("acme", SaleRef::Id(sale_id), "bad phone", 2_000, 86_400_000).expect("returned");
    assert!(store.return_sale("acme", SaleRef::Id(sale_id), "again", 2_000, 86_400_000).is_err());
    let events = store.journal(None, None, 100).unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Sale, EventKind::Return]);
    assert_eq!(events[1].reverses_event_id, Some(events[0].event_id));
    assert_eq!(events[1].memo.as_deref(), Some("bad phone"));
    for account in [Account::buyer("acme"), Account::publisher("pub-1"), Account::Margin] {
        assert_eq!(store.balance(&account, None).unwrap(), 0, "{account}");
    }
    // Balance at a past time: between the sale and the return.
    assert_eq!(store.balance(&Account::buyer("acme"), Some(1_500)).unwrap(), -2_000);

    let conn = rusqlite::Connection::open(dir.path().join("books.db")).expect("opens the file");
    for sql in [
        "UPDATE ledger_entry SET amount_cents = 1",
        "DELETE FROM ledger_entry",
        "UPDATE ledger_event SET memo = 'changed'",
        "DELETE FROM ledger_event",
    ] {
        let error = conn.execute(sql, []).expect_err(sql).to_string();
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
    // A sale's postings go in once: a second sale event of one sale is refused by the database itself.
    let twice = conn.execute(
        "INSERT INTO ledger_event (kind, at_unix_ms, principal_id, sale_id) VALUES ('sale', 1, 'x', ?1)",
        [sale_id as i64],
    );
    assert!(twice.is_err(), "a second sale event was accepted");
}

/// One random event of the property test.
#[derive(Debug, Clone)]
enum Op {
    /// A Wasm sale (reserve and commit in one step).
    Sell { buyer: usize, price: u32 },
    /// An HTTP post: reserved, then committed (the buyer took it) or released.
    Post { buyer: usize, price: u32, accepted: bool },
    /// A two-step quote's hold, then sold or given back.
    Quote { buyer: usize, price: u32, posted: bool },
    /// The return of an earlier sale (the `pick`-th, modulo how many there are), or a late one.
    Return { pick: usize, late: bool },
    /// Money received from a buyer.
    Pay { buyer: usize, amount: u32 },
}

const BUYERS: [&str; 3] = ["acme", "zenith", "open"];
/// Credit limits: two small ones, one buyer not limited.
const LIMITS: [Option<u64>; 3] = [Some(2_000), Some(0), None];
const RETURN_WINDOW_MS: i64 = 1_000_000;

fn op() -> impl Strategy<Value = Op> {
    let buyer = 0..BUYERS.len();
    let price = 1..800u32;
    prop_oneof![
        3 => (buyer.clone(), price.clone()).prop_map(|(buyer, price)| Op::Sell { buyer, price }),
        2 => (buyer.clone(), price.clone(), any::<bool>()).prop_map(|(buyer, price, accepted)| Op::Post { buyer, price, accepted }),
        2 => (buyer.clone(), price, any::<bool>()).prop_map(|(buyer, price, posted)| Op::Quote { buyer, price, posted }),
        1 => (any::<usize>(), prop::bool::weighted(0.2)).prop_map(|(pick, late)| Op::Return { pick, late }),
        1 => (buyer, 1..3_000u32).prop_map(|(buyer, amount)| Op::Pay { buyer, amount }),
    ]
}

/// What the test saw happen: sales (id, buyer, price) and payments (buyer, amount).
#[derive(Debug, Default)]
struct Seen {
    sales: Vec<(u64, usize, u32)>,
    payments: Vec<(usize, i64)>,
    /// Sales refused for want of funds.
    refused: usize,
}

/// Runs `op` (number `n`) against the store; a refusal (funds, caps) is an expected outcome, a store failure is not.
async fn run(store: &SqliteStore, n: u32, op: Op, seen: &Mutex<Seen>) {
    let caps = Caps { leads_per_day: Some(5_000), spend_per_day_cents: Some(2_000_000), ..Caps::default() };
    let expect_refusal = |result: Result<u64, ReserveError>| match result {
        Ok(id) => Some(id),
        Err(ReserveError::InsufficientFunds { .. }) => {
            seen.lock().unwrap().refused += 1;
            None
        }
        Err(ReserveError::CapReached(_)) => None,
        Err(other) => panic!("the store failed: {other}"),
    };
    let record = |buyer: usize, price: u32| sale(n, BUYERS[buyer], price);
    let sold = match op {
        Op::Sell { buyer, price } => {
            let (campaign, who) = (format!("c-{}", BUYERS[buyer]), purchase(BUYERS[buyer], LIMITS[buyer]));
            expect_refusal(store.sell(&campaign, &caps, &windows(), Some(&who), &record(buyer, price)).await)
                .map(|id| (id, buyer, price))
        }
        Op::Post { buyer, price, accepted } => {
            let (campaign, who) = (format!("c-{}", BUYERS[buyer]), purchase(BUYERS[buyer], LIMITS[buyer]));
            match store.reserve(&campaign, &caps, &windows(), price, Some(&who), None).await {
                Ok(reservation) if accepted => {
                    let id = store.commit(&reservation, price, &record(buyer, price)).await.expect("commits");
                    Some((id, buyer, price))
                }
                Ok(reservation) => {
                    store.release(&reservation).await.expect("releases");
                    None
                }
                Err(error) => expect_refusal(Err(error)).map(|_| unreachable!()),
            }
        }
        Op::Quote { buyer, price, posted } => {
            let (campaign, who) = (format!("c-{}", BUYERS[buyer]), purchase(BUYERS[buyer], LIMITS[buyer]));
            match store.hold(&campaign, &caps, &windows(), price, Some(&who), i64::MAX).await {
                Ok(hold) if posted => {
                    let id = store.sell_hold(&hold, Some(&who), &record(buyer, price)).await.expect("sells the hold");
                    Some((id, buyer, price))
                }
                Ok(hold) => {
                    store.release(&hold).await.expect("releases");
                    None
                }
                Err(error) => expect_refusal(Err(error)).map(|_| unreachable!()),
            }
        }
        Op::Return { pick, late } => {
            let target = {
                let seen = seen.lock().unwrap();
                (!seen.sales.is_empty()).then(|| seen.sales[pick % seen.sales.len()])
            };
            if let Some((sale_id, buyer, _)) = target {
                let now = if late { 10 * RETURN_WINDOW_MS } else { 2_000 };
                // Refused when late or already returned: either way nothing moves.
                let _ = store.return_sale(BUYERS[buyer], SaleRef::Id(sale_id), "bad phone", now, RETURN_WINDOW_MS);
            }
            None
        }
        Op::Pay { buyer, amount } => {
            let postings = payment(BUYERS[buyer], i64::from(amount));
            store.record_event(NewEvent::new(EventKind::Payment, "operator:1", 1_500, postings)).expect("records");
            seen.lock().unwrap().payments.push((buyer, i64::from(amount)));
            None
        }
    };
    if let Some(sale) = sold {
        seen.lock().unwrap().sales.push(sale);
    }
}

proptest! {
    // 4 cases × 2,500 events: 10,000 random events, eight tasks racing in each case.
    #![proptest_config(ProptestConfig { cases: 4, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_books_balance_and_agree_with_the_raw_records_over_random_concurrent_events(
        ops in prop::collection::vec(op(), 2_500)
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
        let (_dir, store) = sqlite();
        let seen = Arc::new(Mutex::new(Seen::default()));
        runtime.block_on(async {
            let chunks: Vec<Vec<(u32, Op)>> = (0..8)
                .map(|t| ops.iter().cloned().enumerate().skip(t).step_by(8).map(|(n, op)| (n as u32, op)).collect())
                .collect();
            let tasks: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    let (store, seen) = (store.clone(), seen.clone());
                    tokio::spawn(async move {
                        for (n, op) in chunk {
                            run(&store, n, op, &seen).await;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("a task ran to the end");
            }
        });
        let seen = seen.lock().unwrap();
        // The funds were tight enough to refuse sales, and loose enough to make many.
        prop_assert!(seen.refused > 50 && seen.sales.len() > 500, "{} sold, {} refused", seen.sales.len(), seen.refused);

        // The journal sums to zero and every running balance is the sum of its postings.
        let check = store.check_journal().unwrap();
        prop_assert_eq!(check.sum_cents, 0);
        prop_assert!(check.accounts_off.is_empty(), "{:?}", check);
        prop_assert_eq!(store.pending_reservations().unwrap(), 0);

        // Every balance equals what the raw sales (less returns) and payments say.
        let mut sales = Vec::new();
        for buyer in BUYERS {
            sales.extend(runtime.block_on(store.sales_of_campaign(&format!("c-{buyer}"))).unwrap());
        }
        prop_assert_eq!(sales.len(), seen.sales.len());
        let kept: Vec<_> = sales.iter().filter(|s| s.returned.is_none()).collect();
        for (index, buyer) in BUYERS.iter().enumerate() {
            let paid: i64 = seen.payments.iter().filter(|(b, _)| *b == index).map(|(_, a)| a).sum();
            let spent: i64 = kept.iter().filter(|s| s.buyer_id == *buyer).map(|s| i64::from(s.price_cents)).sum();
            let balance = store.balance(&Account::buyer(buyer), None).unwrap();
            prop_assert_eq!(balance, paid - spent, "buyer {}", buyer);
            // No buyer ever went past its limit (no sale here confirms a higher price than it reserved).
            if let Some(limit) = LIMITS[index] {
                prop_assert!(balance + limit as i64 >= 0, "{} at {} with limit {}", buyer, balance, limit);
            }
        }
        let payouts: i64 = kept.iter().map(|s| i64::from(payout(s.price_cents))).sum();
        let margin: i64 = kept.iter().map(|s| i64::from(s.price_cents - payout(s.price_cents))).sum();
        prop_assert_eq!(store.balance(&Account::publisher("pub-1"), None).unwrap(), payouts);
        prop_assert_eq!(store.balance(&Account::Margin, None).unwrap(), margin);

        // Each sale posted once, each returned sale was reversed once.
        let mut journal = Vec::new();
        let mut after = None;
        loop {
            let page = store.journal(None, after, 1_000).unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.event_id);
            journal.extend(page);
        }
        for stored in &sales {
            let of_sale = |kind| journal.iter().filter(|e| e.kind == kind && e.sale_id == Some(stored.sale_id)).count();
            prop_assert_eq!(of_sale(EventKind::Sale), 1, "sale {}", stored.sale_id);
            prop_assert_eq!(of_sale(EventKind::Return), usize::from(stored.returned.is_some()), "sale {}", stored.sale_id);
        }
    }
}
