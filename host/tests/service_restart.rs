//! Durability across a crash: the real `pingpost serve` binary is killed with SIGKILL while a sold lead's webhook
//! delivery is still failing; after a restart on the same data directory the delivery resumes and reaches the buyer —
//! once, to that buyer only — and the registry, keys and records are still there. And an idempotent lead cut off at
//! each step of its sale (the buyer holding the ping, the buyer holding the post, the sale committed, the record
//! written) is never stuck `409 idempotency_in_progress`: the retry after the restart runs it again, or gets the sale
//! it made. And a kill under load leaves every sale with exactly its ledger entries.

#[path = "common/http_buyer_server.rs"]
mod http_buyer_server;
#[path = "common/service.rs"]
mod service_harness;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_buyer_server::{BuyerServer, Reply};
use serde_json::{Value, json};
use service_harness::{api_keys, http_buyer_tables, standard_plugins};

const PUBLISHER: &str = "pub-key";
const OPERATOR: &str = "op-key";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port()
}

/// The config file: `[server]` on `port` and `data_dir` (plus `server`), the keys and plugins, publisher `pub-1`
/// (plus `publisher`), then `rest`.
fn config_file(port: u16, data_dir: &std::path::Path, server: &str, publisher: &str, rest: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
data_dir = {data_dir}
{server}
{keys}

{plugins}
[[publishers]]
id = "pub-1"
ping_deadline_ms = 5000
post_deadline_ms = 10000
{publisher}
{rest}"#,
        data_dir = toml::Value::String(data_dir.display().to_string()),
        keys = api_keys(&[("operator", None, OPERATOR), ("publisher", Some("pub-1"), PUBLISHER)]),
        plugins = standard_plugins(),
    )
}

fn config(port: u16, data_dir: &std::path::Path, webhook: &str) -> String {
    let outbox = "[server.outbox]\nbase_backoff_ms = 100\nmax_backoff_ms = 400\n";
    let buyer = format!(
        r#"
[[buyers]]
id = "acme"
time_zone = "America/New_York"

[[campaigns]]
id = "acme-health"
buyer_id = "acme"
target = {{ kind = "wasm", plugin = "config-buyer", config = {{ base_price_cents = 2000 }}, delivery = {{ kind = "webhook", url = "{webhook}" }} }}
"#
    );
    config_file(port, data_dir, outbox, "", &buyer)
}

fn serve(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pingpost"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pingpost serve starts")
}

/// One node's files and address: a temp dir holding `serve.toml` and `data/`, a free port, a client.
struct Node {
    dir: tempfile::TempDir,
    port: u16,
    data_dir: std::path::PathBuf,
    config_path: std::path::PathBuf,
    base: String,
    client: reqwest::Client,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let port = free_port();
        let (data_dir, config_path) = (dir.path().join("data"), dir.path().join("serve.toml"));
        let base = format!("http://127.0.0.1:{port}");
        Node { dir, port, data_dir, config_path, base, client: reqwest::Client::new() }
    }

    fn write_config(&self, text: &str) {
        std::fs::write(&self.config_path, text).expect("writes the config");
    }

    /// Starts `pingpost serve` on the node's config and waits until it is healthy.
    async fn start(&self) -> Child {
        let child = serve(&self.config_path);
        wait_healthy(&self.client, &self.base).await;
        child
    }
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    for _ in 0..600 {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("pingpost serve did not become healthy at {base}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sold_lead_is_delivered_after_kill_9_and_restart() {
    let up = Arc::new(AtomicBool::new(false));
    let receiver_up = up.clone();
    let webhook = BuyerServer::start(
        |_: &Value| Reply::json(json!({})),
        move |_: &Value| {
            if receiver_up.load(Ordering::SeqCst) {
                Reply::json(json!({ "accepted": true }))
            } else {
                Reply::raw(503, "down for maintenance")
            }
        },
    )
    .await;
    let node = Node::new();
    node.write_config(&config(node.port, &node.data_dir, &webhook.post_url()));
    let (base, client) = (&node.base, &node.client);

    let mut first = node.start().await;
    let lead = json!({
        "vertical": "health-insurance",
        "consumer": { "first_name": "Ana", "last_name": "Diaz", "phone": "3055550199", "email": "ana@example.com",
                      "state": "FL", "zip5": "33139", "date_of_birth": "1968-04-02" },
        "consent": { "trusted_form_url": "https://cert.trustedform.com/x", "tcpa_text": "I agree" }
    });
    let answer: Value = client
        .post(format!("{base}/v1/leads"))
        .bearer_auth(PUBLISHER)
        .json(&lead)
        .send()
        .await
        .expect("the lead is sent")
        .json()
        .await
        .expect("a JSON answer");
    assert_eq!(answer["outcome"], "sold", "{answer}");
    // The buyer's webhook is down: the outbox has tried at least once and will retry.
    for _ in 0..100 {
        if !webhook.posts().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!webhook.posts().is_empty(), "the outbox tried to deliver");

    first.kill().expect("SIGKILL");
    first.wait().expect("the killed process is reaped");
    let tries_before_restart = webhook.posts().len();
    up.store(true, Ordering::SeqCst);
    let mut second = node.start().await;

    let mut delivered = false;
    for _ in 0..200 {
        let deliveries: Value = client
            .get(format!("{base}/v1/deliveries?status=delivered"))
            .bearer_auth(OPERATOR)
            .send()
            .await
            .expect("deliveries")
            .json()
            .await
            .expect("JSON");
        if deliveries.as_array().is_some_and(|d| d.len() == 1)
            || deliveries["deliveries"].as_array().is_some_and(|d| d.len() == 1)
        {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.kill().expect("stops");
    second.wait().expect("reaped");

    assert!(delivered, "the delivery resumed after the restart and succeeded");
    let posts = webhook.posts();
    assert_eq!(posts.len(), tries_before_restart + 1, "the restarted exchange delivered once");
    assert!(posts.iter().all(|p| p["campaign_id"] == "acme-health" && p["ping_id"] == answer["lead_id"]));
    assert_eq!(posts.last().expect("a post")["lead"]["consumer"]["phone"], "+13055550199");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sale_has_exactly_its_entries_after_kill_9_under_load() {
    let node = Node::new();
    let buyer = r#"
[[buyers]]
id = "acme"
time_zone = "America/New_York"

[[campaigns]]
id = "acme-health"
buyer_id = "acme"
target = { kind = "wasm", plugin = "config-buyer", config = { base_price_cents = 2000 }, delivery = { kind = "pickup" } }
"#;
    node.write_config(&config_file(node.port, &node.data_dir, "", "margin_bps = 1000", buyer));
    let mut first = node.start().await;
    // Four publishers' connections send distinct leads until the process dies under them.
    let senders: Vec<_> = (0..4)
        .map(|task| {
            let (client, base) = (node.client.clone(), node.base.clone());
            tokio::spawn(async move {
                let mut sold = 0;
                for n in 0.. {
                    let lead = json!({
                        "vertical": "health-insurance",
                        "consumer": { "first_name": "Ana", "last_name": "Diaz", "phone": format!("305{task}{n:06}"),
                                      "email": format!("ana{task}-{n}@example.com"), "state": "FL", "zip5": "33139",
                                      "date_of_birth": "1968-04-02" },
                        "consent": { "trusted_form_url": "https://cert.trustedform.com/x", "tcpa_text": "I agree" }
                    });
                    let sent = client.post(format!("{base}/v1/leads")).bearer_auth(PUBLISHER).json(&lead).send().await;
                    let Ok(response) = sent else { return sold };
                    sold += usize::from(response.status().is_success());
                }
                sold
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    first.kill().expect("SIGKILL");
    first.wait().expect("the killed process is reaped");
    let mut answered_sold = 0;
    for sender in senders {
        answered_sold += sender.await.expect("the sender ran");
    }
    assert!(answered_sold > 0, "leads sold before the kill");

    // After the restart the books balance, and every sale has exactly its one set of entries: none lost with the
    // kill, none twice.
    let mut second = node.start().await;
    let check: Value = node
        .client
        .get(format!("{}/v1/ledger/check", node.base))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .expect("the check")
        .json()
        .await
        .expect("JSON");
    second.kill().expect("stops");
    second.wait().expect("reaped");
    assert_eq!((check["sum_cents"].as_i64(), &check["accounts_off"]), (Some(0), &json!([])), "{check}");
    let conn = rusqlite::Connection::open(node.data_dir.join("pingpost.db")).expect("opens the database");
    let count = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, i64>(0)).expect(sql);
    let sales = count("SELECT COUNT(*) FROM sale");
    assert!(sales as usize >= answered_sold, "{sales} sales recorded, {answered_sold} answered sold");
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM sale s WHERE
                (SELECT COUNT(*) FROM ledger_event e WHERE e.sale_id = s.id AND e.kind = 'sale') <> 1"
        ),
        0,
        "a sale without its entries, or with them twice"
    );
    assert_eq!(count("SELECT COUNT(*) FROM ledger_event WHERE kind = 'sale'"), sales);
    assert_eq!(count("SELECT COUNT(*) FROM ledger_entry"), sales * 3, "buyer, publisher and margin per sale");
    assert_eq!(count("SELECT COALESCE(SUM(amount_cents), 0) FROM ledger_entry"), 0);
}

/// `pub-1` (30-day dedupe, 10 % margin) selling to one HTTP buyer through `buyer`.
fn http_config(port: u16, data_dir: &std::path::Path, buyer: &BuyerServer) -> String {
    let tables = http_buyer_tables("acme", "acme-http", &buyer.ping_url(), &buyer.post_url(), 5000);
    config_file(port, data_dir, "", "dedupe_window_days = 30\nmargin_bps = 1000\n", &tables)
}

fn crash_lead() -> Value {
    json!({
        "vertical": "health-insurance",
        "consumer": { "first_name": "Ana", "last_name": "Diaz", "phone": "3055550177", "email": "ana.d@example.com",
                      "state": "FL", "zip5": "33139", "date_of_birth": "1968-04-02" },
        "consent": { "trusted_form_url": "https://cert.trustedform.com/x", "tcpa_text": "I agree" }
    })
}

/// Sends the crash lead with Idempotency-Key `key`; returns the status and the JSON answer.
async fn send_keyed(client: &reqwest::Client, base: &str, key: &str) -> (u16, Value) {
    let response = client
        .post(format!("{base}/v1/leads"))
        .bearer_auth(PUBLISHER)
        .header("Idempotency-Key", key)
        .json(&crash_lead())
        .send()
        .await
        .expect("the lead is sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Where the exchange is when it is killed.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The buyer holds the ping: the consumer is recorded as seen, nothing reserved.
    Ping,
    /// The buyer holds the post: the sale is reserved and the lead handed over, nothing committed.
    Post,
}

/// A buyer bidding 2000 that, while `hold` says so, answers neither pings (at `Step::Ping`) nor posts (at
/// `Step::Post`) for 30 s; otherwise it takes every lead.
async fn holding_buyer(step: Step, hold: Arc<AtomicBool>) -> BuyerServer {
    let (ping_hold, post_hold) = (hold.clone(), hold);
    BuyerServer::start(
        move |_: &Value| {
            let bid = Reply::json(json!({"decision": "bid", "price_cents": 2000}));
            if matches!(step, Step::Ping) && ping_hold.load(Ordering::SeqCst) {
                bid.delayed(Duration::from_secs(30))
            } else {
                bid
            }
        },
        move |_: &Value| {
            let accept = Reply::json(json!({"result": "accepted", "price_cents": 2000}));
            if matches!(step, Step::Post) && post_hold.load(Ordering::SeqCst) {
                accept.delayed(Duration::from_secs(30))
            } else {
                accept
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_lead_cut_off_by_kill_9_mid_auction_runs_again_on_retry_after_the_restart() {
    for step in [Step::Ping, Step::Post] {
        let hold = Arc::new(AtomicBool::new(true));
        let buyer = holding_buyer(step, hold.clone()).await;
        let node = Node::new();
        node.write_config(&http_config(node.port, &node.data_dir, &buyer));
        let (base, client) = (&node.base, &node.client);

        let mut first = node.start().await;
        let request =
            client.post(format!("{base}/v1/leads")).bearer_auth(PUBLISHER).header("Idempotency-Key", "k-crash");
        // Its connection dies with the process: no answer.
        let cut_off = tokio::spawn(request.json(&crash_lead()).send());
        let reached = || match step {
            Step::Ping => !buyer.pings().is_empty(),
            Step::Post => !buyer.posts().is_empty(),
        };
        for _ in 0..200 {
            if reached() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(reached(), "{step:?}: the buyer holds the lead");
        first.kill().expect("SIGKILL");
        first.wait().expect("reaped");
        let _ = cut_off.await;

        hold.store(false, Ordering::SeqCst);
        let mut second = node.start().await;
        let (status, retry) = send_keyed(client, base, "k-crash").await;
        let (again_status, again) = send_keyed(client, base, "k-crash").await;
        second.kill().expect("stops");
        second.wait().expect("reaped");

        assert_eq!(
            (status, &retry["outcome"]),
            (200, &json!("sold")),
            "{step:?}: the retry ran the auction (not 409 in progress, not a duplicate): {retry}"
        );
        assert_eq!((again_status, &again), (200, &retry), "{step:?}: and its answer is kept");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_step_post_cut_off_by_kill_9_sells_on_its_retry_after_the_restart() {
    let hold = Arc::new(AtomicBool::new(true));
    let buyer = holding_buyer(Step::Post, hold.clone()).await;
    let node = Node::new();
    let tables = http_buyer_tables("acme", "acme-http", &buyer.ping_url(), &buyer.post_url(), 5000);
    let publisher = "margin_bps = 1000\ndefault_bid_ttl_ms = 120000\n";
    node.write_config(&config_file(node.port, &node.data_dir, "", publisher, &tables));
    let (base, client) = (&node.base, &node.client);

    let mut first = node.start().await;
    let pinged: Value = client
        .post(format!("{base}/v1/ping"))
        .bearer_auth(PUBLISHER)
        .json(&crash_lead())
        .send()
        .await
        .expect("pings")
        .json()
        .await
        .expect("a JSON answer");
    assert_eq!(pinged["outcome"], "bid", "{pinged}");
    let post = json!({ "ping_id": pinged["ping_id"] });
    let send_post = || {
        client.post(format!("{base}/v1/post")).bearer_auth(PUBLISHER).header("Idempotency-Key", "k-post").json(&post)
    };
    // The buyer holds the post; the process dies with it.
    let cut_off = tokio::spawn(send_post().send());
    for _ in 0..200 {
        if !buyer.posts().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(buyer.posts().len(), 1, "the buyer holds the post");
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    let _ = cut_off.await;

    hold.store(false, Ordering::SeqCst);
    let mut second = node.start().await;
    let retry = send_post().send().await.expect("posts again");
    let status = retry.status().as_u16();
    let answer: Value = retry.json().await.unwrap_or(Value::Null);
    second.kill().expect("stops");
    second.wait().expect("reaped");
    assert_eq!(
        (status, &answer["outcome"]),
        (200, &json!("sold")),
        "the retried post sells (not 409 already_posted): {answer}"
    );
    assert_eq!(buyer.posts().len(), 2, "posted again after the restart");
}

/// Runs SQL on the stopped exchange's database, as a crash at some step would have left it.
fn leave_as_a_crash_would(data_dir: &std::path::Path, sql: &str) {
    let conn = rusqlite::Connection::open(data_dir.join("pingpost.db")).expect("opens the database");
    conn.execute_batch(sql).expect("edits the database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_lead_a_crash_left_after_its_sale_is_answered_sold_after_the_restart() {
    let buyer = holding_buyer(Step::Post, Arc::new(AtomicBool::new(false))).await;
    let node = Node::new();
    node.write_config(&http_config(node.port, &node.data_dir, &buyer));
    let (base, client, data_dir) = (&node.base, &node.client, &node.data_dir);

    let mut first = node.start().await;
    let (status, sold) = send_keyed(client, base, "k-sold").await;
    assert_eq!((status, &sold["outcome"], &sold["payout_cents"]), (200, &json!("sold"), &json!(1800)), "{sold}");
    let lead_id = sold["lead_id"].as_str().expect("a lead id").to_owned();
    // Reading the lead waits for its record to be written.
    let read = client.get(format!("{base}/v1/leads/{lead_id}")).bearer_auth(PUBLISHER).send().await.expect("reads");
    assert_eq!(read.status().as_u16(), 200);
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");

    // Killed after the record, before the answer was kept; then after the sale, before the record.
    let unanswered = "UPDATE idempotency SET status = NULL, body = NULL;";
    let unrecorded = format!("{unanswered} DELETE FROM auction WHERE lead_id = '{lead_id}';");
    for (step, sql) in [("after the record", unanswered.to_owned()), ("after the sale", unrecorded)] {
        leave_as_a_crash_would(data_dir, &sql);
        let mut next = node.start().await;
        let (status, retry) = send_keyed(client, base, "k-sold").await;
        next.kill().expect("SIGKILL");
        next.wait().expect("reaped");
        assert_eq!((status, &retry), (200, &sold), "{step}: the retry gets the sale the lead made");
    }
    assert_eq!(buyer.posts().len(), 1, "sold once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_that_fails_part_way_seeds_nothing_and_the_next_start_seeds_everything() {
    let buyer = holding_buyer(Step::Post, Arc::new(AtomicBool::new(false))).await;
    let node = Node::new();
    let good = http_config(node.port, &node.data_dir, &buyer);
    // The same file with one more plugin, which does not load: the start fails after the first plugins were read.
    let broken = node.dir.path().join("broken.wasm");
    std::fs::write(&broken, b"\0asm not really").expect("writes");
    let plugin_line = format!("[plugins]\nzz-broken = {:?}\n", broken.display().to_string());
    let campaign = r#"
[[campaigns]]
id = "zz-wasm"
buyer_id = "acme"
target = { kind = "wasm", plugin = "zz-broken", config = {}, delivery = { kind = "pickup" } }
"#;
    let with_broken = good.replacen("[plugins]\n", &plugin_line, 1) + campaign;
    node.write_config(&with_broken);
    let mut first = serve(&node.config_path);
    let mut exited = None;
    for _ in 0..1200 {
        exited = first.try_wait().expect("polls");
        if exited.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(failed) = exited else {
        let _ = first.kill();
        panic!("the start with a broken plugin did not fail");
    };
    assert!(!failed.success(), "a plugin that does not load fails the start");
    let conn = rusqlite::Connection::open(node.data_dir.join("pingpost.db")).expect("the database was made");
    let counts: (i64, i64) = conn
        .query_row("SELECT (SELECT COUNT(*) FROM plugin), (SELECT COUNT(*) FROM registry_entity)", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .expect("counts");
    assert_eq!(counts, (0, 0), "nothing of the failed seed was kept");
    drop(conn);

    node.write_config(&good);
    let mut second = node.start().await;
    let (status, sold) = send_keyed(&node.client, &node.base, "k-after-seed").await;
    second.kill().expect("SIGKILL");
    second.wait().expect("reaped");
    assert_eq!((status, &sold["outcome"]), (200, &json!("sold")), "the exchange was seeded: {sold}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_seeded_store_is_seeded_again_not_served_as_an_empty_exchange() {
    let buyer = holding_buyer(Step::Post, Arc::new(AtomicBool::new(false))).await;
    let node = Node::new();
    node.write_config(&http_config(node.port, &node.data_dir, &buyer));
    let mut first = node.start().await;
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    // What a first start that died between its plugins and its exchange left, before seeding was one transaction.
    leave_as_a_crash_would(&node.data_dir, "DELETE FROM registry_entity; DELETE FROM registry_seed;");

    let mut second = node.start().await;
    let (status, sold) = send_keyed(&node.client, &node.base, "k-reseeded").await;
    second.kill().expect("SIGKILL");
    second.wait().expect("reaped");
    assert_eq!((status, &sold["outcome"]), (200, &json!("sold")), "{sold}");
}
