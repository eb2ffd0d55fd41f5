//! Durability across a crash: the real `pingpost serve` binary is killed with SIGKILL while a sold lead's webhook
//! delivery is still failing; after a restart on the same data directory the delivery resumes and reaches the buyer —
//! once, to that buyer only — and the registry, keys and records are still there.

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
use service_harness::{api_keys, standard_plugins};

const PUBLISHER: &str = "pub-key";
const OPERATOR: &str = "op-key";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port()
}

fn config(port: u16, data_dir: &std::path::Path, webhook: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
data_dir = {data_dir}

[server.outbox]
base_backoff_ms = 100
max_backoff_ms = 400

{keys}

{plugins}
[[publishers]]
id = "pub-1"
ping_deadline_ms = 5000
post_deadline_ms = 10000

[[buyers]]
id = "acme"
time_zone = "America/New_York"

[[campaigns]]
id = "acme-health"
buyer_id = "acme"
target = {{ kind = "wasm", plugin = "config-buyer", config = {{ base_price_cents = 2000 }}, delivery = {{ kind = "webhook", url = "{webhook}" }} }}
"#,
        data_dir = toml::Value::String(data_dir.display().to_string()),
        keys = api_keys(&[("operator", None, OPERATOR), ("publisher", Some("pub-1"), PUBLISHER)]),
        plugins = standard_plugins(),
    )
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
    let dir = tempfile::tempdir().expect("a temp dir");
    let port = free_port();
    let config_path = dir.path().join("serve.toml");
    std::fs::write(&config_path, config(port, &dir.path().join("data"), &webhook.post_url())).expect("writes");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let mut first = serve(&config_path);
    wait_healthy(&client, &base).await;
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
    let mut second = serve(&config_path);
    wait_healthy(&client, &base).await;

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
