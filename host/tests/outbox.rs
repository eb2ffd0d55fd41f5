//! The webhook outbox end to end, over real SQLite files and real HTTP receivers on 127.0.0.1: a Wasm campaign's
//! webhook sale is delivered once with the body an HTTP buyer's post gets; a receiver that is down or failing is
//! retried with exponential backoff and gets the lead when it comes back; the worker gives up after its attempts and
//! keeps the delivery visible; a restart resumes a pending delivery; a delivery only ever goes to its sale's URL; a
//! new sale wakes the worker at once; shutdown is prompt.

#[path = "common/auction_fixture.rs"]
mod auction_fixture;
mod common;
#[path = "common/http_buyer_server.rs"]
mod http_buyer_server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auction_fixture::{NOW, build_on, config, lead, publisher, wasm_campaign};
use http_buyer_server::{BuyerServer, Reply};
use pingpost::auction::store::CapWindows;
use pingpost::auction::{
    AuctionStore, CampaignTarget, Caps, Delivery, HttpBuyerClient, OutcomeStatus, SaleDelivery, SaleRecord,
    SelectionMode,
};
use pingpost::clock::{ManualClock, SharedClock, SystemClock};
use pingpost::service::metrics::Metrics;
use pingpost::service::outbox::{AttemptOutcome, OutboxSettings, OutboxWorker};
use pingpost::storage::{DeliveryStatus, MarkError, OutboxDelivery, PiiAccess, SqliteStore};
use serde_json::{Value, json};

fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("exchange.db");
    (dir, path)
}

fn open(path: &std::path::Path) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(path).expect("the database opens"))
}

fn client() -> HttpBuyerClient {
    HttpBuyerClient::with_default_client().expect("HTTP client")
}

/// Short backoffs so a test sees several attempts: 100 ms, 200 ms, 400 ms, 400 ms...
fn fast() -> OutboxSettings {
    OutboxSettings {
        base_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        max_attempts: 10,
        request_timeout: Duration::from_secs(5),
        batch_size: 8,
        idle_poll: Duration::from_millis(50),
    }
}

/// Commits a webhook sale of lead `n` to `campaign_id` at `sold_at_unix_ms`, to be delivered to `url`.
async fn sell_to_webhook(store: &SqliteStore, campaign_id: &str, n: u32, url: &str, sold_at_unix_ms: i64) -> u64 {
    let windows = CapWindows { hour: "2026-11-25T10".into(), day: "2026-11-25".into(), month: "2026-11".into() };
    let reservation =
        store.reserve(campaign_id, &Caps::default(), &windows, 1_500, None, None).await.expect("reserves");
    let sale = SaleRecord {
        lead_id: format!("p_{n}"),
        campaign_id: campaign_id.to_owned(),
        buyer_id: format!("buyer-of-{campaign_id}"),
        publisher_id: "pub-1".into(),
        price_cents: 1_500,
        payout_cents: 1_500,
        sold_at_unix_ms,
        buyer_ref: Some(format!("ref-{n}")),
        lead: lead(n),
        delivery: SaleDelivery::Webhook { url: url.to_owned() },
    };
    store.commit(&reservation, 1_500, &sale).await.expect("commits")
}

/// A receiver answering every post with `status` while `up` says so, 503 otherwise.
async fn receiver(up: Arc<AtomicBool>) -> BuyerServer {
    BuyerServer::start(
        |_: &Value| Reply::raw(404, "no pings here"),
        move |_: &Value| {
            if up.load(Ordering::SeqCst) { Reply::raw(204, "") } else { Reply::raw(503, "down for maintenance") }
        },
    )
    .await
}

/// Waits (up to 10 s) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The only delivery in the store.
fn only_delivery(store: &SqliteStore) -> OutboxDelivery {
    let mut all = store.deliveries(None).expect("deliveries");
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

#[tokio::test]
async fn a_webhook_sale_is_delivered_once_with_the_body_an_http_buyers_post_gets_and_audited() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    let hook = BuyerServer::scripted(Reply::raw(404, "no pings here"), Reply::json(json!({"ok": true}))).await;
    let mut campaign = wasm_campaign("hooked", "b1", 1234);
    if let CampaignTarget::Wasm { delivery, .. } = &mut campaign.target {
        *delivery = Delivery::Webhook { url: hook.post_url() };
    }
    let clock = Arc::new(ManualClock::new(NOW));
    let exchange = build_on(
        config(publisher(SelectionMode::Exclusive), &["b1"], vec![campaign]),
        store.clone() as Arc<dyn AuctionStore>,
        clock.clone(),
    );
    let worker = OutboxWorker::new(store.clone(), client(), clock.clone(), fast()).spawn();

    let outcome = exchange.run_lead(lead(11)).await;
    assert_eq!(outcome.status, OutcomeStatus::Sold, "{:?}", outcome.reason);
    eventually("the webhook got the lead", || !hook.posts().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.shutdown().await;

    let posts = hook.posts();
    assert_eq!(posts.len(), 1, "delivered exactly once");
    let sale = &store.sales_of_campaign("hooked").await.expect("sales")[0];
    let expected = json!({
        "ping_id": outcome.ping_id,
        "campaign_id": "hooked",
        "price_cents": 1234,
        "buyer_ref": null,
        "lead": serde_json::to_value(sale.lead.as_ref().expect("the sale keeps its lead")).expect("json"),
    });
    assert_eq!(posts[0], expected, "the same body an HTTP buyer's post carries");
    assert_eq!(posts[0]["lead"]["consumer"]["first_name"], "Zenobia");
    let delivery = only_delivery(&store);
    assert_eq!(
        (delivery.status, delivery.attempts, delivery.delivered_at_unix_ms),
        (DeliveryStatus::Delivered, 1, Some(NOW))
    );
    let audit = store.pii_audit(&outcome.ping_id).expect("audit");
    assert_eq!(
        audit.iter().map(|e| (e.principal_id.as_str(), e.how)).collect::<Vec<_>>(),
        [("b1", PiiAccess::Webhook)]
    );
}

/// A receiver on `addr` that accepts every post and counts them; the server stops when the task is aborted.
async fn accept_on(addr: SocketAddr, count: Arc<AtomicUsize>) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the receiver's port again");
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("receiver");
    })
}

#[tokio::test]
async fn a_receiver_that_is_down_is_retried_with_exponential_backoff_and_gets_the_lead_when_it_comes_back() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    // A port nobody listens on (yet): connections are refused.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    let url = format!("http://{addr}/hook");
    let clock = Arc::new(ManualClock::new(NOW));
    let worker = OutboxWorker::new(store.clone(), client(), clock.clone(), fast());
    sell_to_webhook(&store, "c1", 1, &url, NOW).await;

    // Each failure waits twice as long as the one before, up to the maximum; nothing is attempted before it is due.
    let mut at = NOW;
    for wait in [100, 200, 400, 400] {
        let attempts = worker.run_once().await.expect("runs");
        assert!(matches!(&attempts[..], [(_, AttemptOutcome::Retry { at_unix_ms, .. })] if *at_unix_ms == at + wait));
        at += wait;
        clock.set(at - 1);
        assert_eq!(worker.run_once().await.expect("runs"), vec![], "not due before its backoff");
        clock.set(at);
    }
    let pending = only_delivery(&store);
    assert_eq!((pending.status, pending.attempts), (DeliveryStatus::Pending, 4));
    assert!(pending.last_error.as_deref().is_some_and(|e| e.contains("transport")), "{:?}", pending.last_error);

    let received = Arc::new(AtomicUsize::new(0));
    let server = accept_on(addr, received.clone()).await;
    let attempts = worker.run_once().await.expect("runs");
    assert!(matches!(&attempts[..], [(_, AttemptOutcome::Delivered)]), "{attempts:?}");
    assert_eq!(received.load(Ordering::SeqCst), 1);
    let delivered = only_delivery(&store);
    assert_eq!((delivered.status, delivered.attempts, delivered.last_error), (DeliveryStatus::Delivered, 5, None));
    clock.advance(60_000);
    assert_eq!(worker.run_once().await.expect("runs"), vec![], "a delivered lead is not sent again");
    server.abort();
}

#[tokio::test]
async fn the_running_worker_retries_a_failing_receiver_on_its_backoff_until_it_answers() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    let answers = Arc::new(AtomicUsize::new(0));
    let hook = {
        let answers = answers.clone();
        BuyerServer::start(
            |_: &Value| Reply::raw(404, ""),
            move |_: &Value| {
                if answers.fetch_add(1, Ordering::SeqCst) < 2 { Reply::raw(500, "oops") } else { Reply::raw(200, "") }
            },
        )
        .await
    };
    let clock: SharedClock = Arc::new(SystemClock);
    let worker = OutboxWorker::new(store.clone(), client(), clock.clone(), fast()).spawn();
    let started = Instant::now();
    sell_to_webhook(&store, "c1", 1, &hook.post_url(), clock.now_unix_ms()).await;
    eventually("delivered", || {
        store.deliveries(Some(DeliveryStatus::Delivered)).map(|d| d.len() == 1).unwrap_or(false)
    })
    .await;
    worker.shutdown().await;
    assert_eq!(hook.posts().len(), 3, "two failures, then the delivery");
    assert!(started.elapsed() >= Duration::from_millis(300), "waited 100 ms, then 200 ms: {:?}", started.elapsed());
    assert_eq!(only_delivery(&store).attempts, 3);
}

#[tokio::test]
async fn the_worker_gives_up_after_its_attempts_and_keeps_the_delivery_visible() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    let hook = receiver(Arc::new(AtomicBool::new(false))).await;
    let clock = Arc::new(ManualClock::new(NOW));
    let settings = OutboxSettings { max_attempts: 3, ..fast() };
    let metrics = Arc::new(Metrics::new());
    let worker = OutboxWorker::new(store.clone(), client(), clock.clone(), settings).with_metrics(metrics.clone());
    sell_to_webhook(&store, "c1", 1, &hook.post_url(), NOW).await;
    for _ in 0..2 {
        assert!(matches!(worker.run_once().await.expect("runs")[..], [(_, AttemptOutcome::Retry { .. })]));
        clock.advance(1_000);
    }
    let last = worker.run_once().await.expect("runs");
    assert!(matches!(&last[..], [(_, AttemptOutcome::GaveUp { error })] if error.contains("503")), "{last:?}");
    clock.advance(3_600_000);
    assert_eq!(worker.run_once().await.expect("runs"), vec![]);
    assert_eq!(hook.posts().len(), 3);
    let audit = store.pii_audit("p_1").expect("audit");
    assert_eq!(
        audit.iter().map(|e| (e.principal_id.as_str(), e.how)).collect::<Vec<_>>(),
        [("buyer-of-c1", PiiAccess::Webhook); 3],
        "every attempt handed the lead over, though none was answered 2xx"
    );
    let failed = store.deliveries(Some(DeliveryStatus::Failed)).expect("deliveries");
    assert_eq!(
        failed.iter().map(|d| (d.attempts, d.url.as_str())).collect::<Vec<_>>(),
        [(3, hook.post_url().as_str())]
    );
    assert!(failed[0].lead.is_none(), "a listing carries no PII");
    assert_eq!(store.deliveries(Some(DeliveryStatus::Pending)).map(|d| d.len()), Ok(0));
    assert_eq!(store.mark_delivered(failed[0].id, NOW), Err(MarkError::NotPending(failed[0].id)));
    let scrape = metrics.render(std::iter::empty());
    for line in [
        r#"pingpost_outbox_deliveries_total{result="retry"} 2"#,
        r#"pingpost_outbox_deliveries_total{result="gave_up"} 1"#,
        r#"pingpost_outbox_deliveries_total{result="delivered"} 0"#,
    ] {
        assert!(scrape.lines().any(|l| l == line), "{line} missing from\n{scrape}");
    }
}

#[tokio::test]
async fn a_pending_delivery_survives_a_crash_and_a_new_worker_on_the_reopened_file_delivers_it() {
    let (_dir, path) = temp_db();
    let up = Arc::new(AtomicBool::new(false));
    let hook = receiver(up.clone()).await;
    let clock: SharedClock = Arc::new(SystemClock);
    {
        let store = open(&path);
        let worker = OutboxWorker::new(store.clone(), client(), clock.clone(), fast()).spawn();
        sell_to_webhook(&store, "c1", 1, &hook.post_url(), clock.now_unix_ms()).await;
        eventually("a failed attempt", || !hook.posts().is_empty()).await;
        // The process dies: the worker and the store go without a shutdown.
        drop(worker);
        drop(store);
    }
    up.store(true, Ordering::SeqCst);
    let store = open(&path);
    assert_eq!(only_delivery(&store).status, DeliveryStatus::Pending);
    let worker = OutboxWorker::new(store.clone(), client(), clock.clone(), fast()).spawn();
    eventually("delivered after the restart", || {
        store.deliveries(Some(DeliveryStatus::Delivered)).map(|d| d.len() == 1).unwrap_or(false)
    })
    .await;
    worker.shutdown().await;
    let posts = hook.posts();
    assert!(posts.len() >= 2, "{} posts", posts.len());
    assert!(posts.iter().all(|p| p["ping_id"] == "p_1" && p["lead"]["consumer"]["email"] == lead(1).consumer.email));
}

#[tokio::test]
async fn a_delivery_only_ever_goes_to_the_url_recorded_with_its_sale() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    let a_up = Arc::new(AtomicBool::new(false));
    let (a, b) = (receiver(a_up.clone()).await, receiver(Arc::new(AtomicBool::new(true))).await);
    let clock = Arc::new(ManualClock::new(NOW));
    let worker = OutboxWorker::new(store.clone(), client(), clock.clone(), fast());
    sell_to_webhook(&store, "to-a", 1, &a.post_url(), NOW).await;
    sell_to_webhook(&store, "to-b", 2, &b.post_url(), NOW).await;
    worker.run_once().await.expect("runs");
    for _ in 0..3 {
        clock.advance(1_000);
        worker.run_once().await.expect("runs");
    }
    a_up.store(true, Ordering::SeqCst);
    clock.advance(1_000);
    worker.run_once().await.expect("runs");

    let emails = |server: &BuyerServer| -> Vec<String> {
        server.posts().iter().map(|p| p["lead"]["consumer"]["email"].as_str().unwrap_or_default().to_owned()).collect()
    };
    assert_eq!(emails(&b), [lead(2).consumer.email], "b got its own lead once, never a's");
    let to_a = emails(&a);
    assert_eq!(to_a.len(), 5, "four failures, then the delivery");
    assert!(to_a.iter().all(|email| *email == lead(1).consumer.email));
    assert_eq!(store.deliveries(Some(DeliveryStatus::Delivered)).map(|d| d.len()), Ok(2));
}

#[tokio::test]
async fn a_new_sale_wakes_an_idle_worker_at_once_and_shutdown_is_prompt() {
    let (_dir, path) = temp_db();
    let store = open(&path);
    let hook = receiver(Arc::new(AtomicBool::new(true))).await;
    let clock: SharedClock = Arc::new(SystemClock);
    let settings = OutboxSettings { idle_poll: Duration::from_secs(3_600), ..fast() };
    let worker = OutboxWorker::new(store.clone(), client(), clock.clone(), settings).spawn();
    tokio::time::sleep(Duration::from_millis(200)).await; // idle, with nothing due for an hour
    let sold = Instant::now();
    sell_to_webhook(&store, "c1", 1, &hook.post_url(), clock.now_unix_ms()).await;
    eventually("the sale was delivered", || !hook.posts().is_empty()).await;
    assert!(sold.elapsed() < Duration::from_secs(5), "woken by the sale, not by the hourly poll");
    let stopping = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), worker.shutdown()).await.expect("shutdown is prompt");
    assert!(stopping.elapsed() < Duration::from_secs(5));
}
