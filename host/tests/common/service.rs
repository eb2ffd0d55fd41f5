//! A real `pingpost serve` for end-to-end tests: [`TestService::start`] takes the config file's TOML (the `[server]`
//! table's `listen` and `data_dir` are set here: port 0 on 127.0.0.1, a fresh temp dir), starts
//! [`RunningService`] on a [`ManualClock`] and seeded ids, and drives it with a real HTTP client.
//!
//! Include it with `#[path = "common/service.rs"] mod service_harness;`.

#![allow(dead_code)] // Each test binary uses a different part of this helper.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pingpost::auction::SeededIds;
use pingpost::clock::ManualClock;
use pingpost::plugin::{Limits, RuntimeConfig};
use pingpost::service::settings::ServeConfig;
use pingpost::service::{RunningService, ServiceParts};
use serde_json::Value;

/// 2026-11-25 15:00 UTC (a Wednesday): where every test service's clock starts.
pub const START: i64 = 1_795_618_800_000;

/// The path of a plugin built from `plugins/` (e.g. `config-buyer`), quoted for a TOML file.
pub fn plugin_path(package: &str) -> String {
    let path = pingpost_plugins::wasm(package).unwrap_or_else(|e| panic!("building plugin {package}: {e:#}"));
    toml::Value::String(path.display().to_string()).to_string()
}

/// The `[plugins]` table most test exchanges use: the standard redactor as `standard` and the config-driven buyer as
/// `config-buyer`, both built from `plugins/`.
pub fn standard_plugins() -> String {
    format!(
        "[plugins]\nstandard = {}\nconfig-buyer = {}\n",
        plugin_path("standard-redactor"),
        plugin_path("config-buyer")
    )
}

/// `[[api_keys]]` tables for a test config, one per `(role, owner, key)`; an operator key has no owner.
pub fn api_keys(keys: &[(&str, Option<&str>, &str)]) -> String {
    keys.iter()
        .map(|(role, owner, key)| {
            let owner = owner.map(|o| format!("owner = \"{o}\"\n")).unwrap_or_default();
            format!("[[api_keys]]\nrole = \"{role}\"\n{owner}key = \"{key}\"\n\n")
        })
        .collect()
}

/// The start of a test exchange: `keys` (from [`api_keys`]), the standard plugins, and publisher `pub-1` with a 5 s
/// ping deadline and `publisher` (more lines of its table: at least `post_deadline_ms`).
pub fn exchange_head(keys: &str, publisher: &str) -> String {
    format!(
        "\n{keys}\n{plugins}\n[[publishers]]\nid = \"pub-1\"\nping_deadline_ms = 5000\n{publisher}\n",
        plugins = standard_plugins()
    )
}

/// A buyer `buyer_id` (New York time) and its Wasm campaign `campaign_id` on `config-buyer` bidding `price_cents`,
/// kept for pick-up.
pub fn wasm_buyer_tables(buyer_id: &str, campaign_id: &str, price_cents: u32) -> String {
    let config = format!("{{ base_price_cents = {price_cents} }}");
    let target = format!(
        "target = {{ kind = \"wasm\", plugin = \"config-buyer\", config = {config}, delivery = {{ kind = \"pickup\" }} }}\n"
    );
    campaign_tables(buyer_id, campaign_id, &target)
}

/// A buyer `buyer_id` (New York time) and its HTTP campaign `campaign_id` pinging `ping_url` and posting to
/// `post_url`, as `[[buyers]]` and `[[campaigns]]` tables.
pub fn http_buyer_tables(buyer_id: &str, campaign_id: &str, ping_url: &str, post_url: &str, timeout_ms: u64) -> String {
    let target = format!(
        "[campaigns.target]\nkind = \"http\"\nping_url = \"{ping_url}\"\npost_url = \"{post_url}\"\ntimeout_ms = {timeout_ms}\n"
    );
    campaign_tables(buyer_id, campaign_id, &target)
}

/// Buyer `buyer_id` (New York time) and its campaign `campaign_id` reached by `target` (the campaign table's rest).
fn campaign_tables(buyer_id: &str, campaign_id: &str, target: &str) -> String {
    format!(
        "\n[[buyers]]\nid = \"{buyer_id}\"\ntime_zone = \"America/New_York\"\n\n[[campaigns]]\nid = \"{campaign_id}\"\nbuyer_id = \"{buyer_id}\"\n{target}"
    )
}

/// The bytes of a plugin built from `plugins/`.
pub fn plugin_bytes(package: &str) -> Vec<u8> {
    pingpost_plugins::wasm_bytes(package).unwrap_or_else(|e| panic!("building plugin {package}: {e:#}"))
}

/// `wasm` with a custom section appended: the same code as a new, distinct upload (another SHA-256, so another
/// version), for tests of versions, activation and rollback.
pub fn repackaged(wasm: &[u8], tag: &str) -> Vec<u8> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"pingpost-test";
    let mut payload = Vec::new();
    leb128(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut bytes = wasm.to_vec();
    bytes.push(0);
    leb128(payload.len(), &mut bytes);
    bytes.extend_from_slice(&payload);
    bytes
}

/// A running service and a client for it.
pub struct TestService {
    pub base_url: String,
    pub service: RunningService,
    pub clock: Arc<ManualClock>,
    pub client: reqwest::Client,
    data: tempfile::TempDir,
}

/// An HTTP answer: status, content type, the body as text and (when it is JSON) parsed.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub text: String,
    pub body: Value,
}

impl Answer {
    /// The error body's `code` (`""` when there is none).
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The error body's `field` (`""` when there is none).
    pub fn field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or("")
    }

    /// The error body's `message` (`""` when there is none).
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

impl TestService {
    /// Starts the service with the config file `toml` (its `[server]` may set anything but `listen` and `data_dir`).
    pub async fn start(toml: &str) -> TestService {
        let data = tempfile::tempdir().expect("a temp data dir");
        let mut table: toml::Table = toml.parse().unwrap_or_else(|e| panic!("the test config is not TOML: {e}"));
        let server = table.entry("server").or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let server = server.as_table_mut().expect("[server] is a table");
        server.insert("listen".into(), "127.0.0.1:0".into());
        server.insert("data_dir".into(), data.path().display().to_string().into());
        let config_path = data.path().join("exchange.toml");
        let config = ServeConfig::from_table(Path::new(&config_path), table, std::iter::empty())
            .unwrap_or_else(|e| panic!("the test config is refused: {e}"));
        let clock = Arc::new(ManualClock::new(START));
        // A generous plugin deadline: debug builds on a busy 2-core machine.
        let limits = Limits { deadline: Duration::from_secs(20), ..Limits::default() };
        let parts = ServiceParts {
            clock: clock.clone(),
            ids: Arc::new(SeededIds::new(7)),
            runtime: RuntimeConfig { limits, ..RuntimeConfig::default() },
        };
        let service =
            RunningService::start(config, parts).await.unwrap_or_else(|e| panic!("the service starts: {e:#}"));
        let base_url = format!("http://{}", service.addr);
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("an HTTP client");
        TestService { base_url, service, clock, client, data }
    }

    /// The service's data directory (database, plugin cache).
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Stops the service gracefully.
    pub async fn shutdown(self) {
        self.service.shutdown().await.expect("the service shuts down");
    }

    /// `GET path` with `key` (`""`: no key).
    pub async fn get(&self, key: &str, path: &str) -> Answer {
        self.send(key, self.client.get(self.url(path))).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, key: &str, path: &str, body: &Value) -> Answer {
        self.send(key, self.client.post(self.url(path)).json(body)).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, key: &str, path: &str, body: &Value) -> Answer {
        self.send(key, self.client.put(self.url(path)).json(body)).await
    }

    /// `PATCH path` with a JSON merge patch.
    pub async fn patch(&self, key: &str, path: &str, body: &Value) -> Answer {
        let request = self.client.patch(self.url(path)).header("content-type", "application/merge-patch+json");
        self.send(key, request.body(body.to_string())).await
    }

    /// `POST path` with raw bytes (a plugin upload).
    pub async fn post_bytes(&self, key: &str, path: &str, bytes: Vec<u8>) -> Answer {
        self.send(key, self.client.post(self.url(path)).header("content-type", "application/wasm").body(bytes)).await
    }

    /// `PUT path` with raw bytes (a plugin upload).
    pub async fn put_bytes(&self, key: &str, path: &str, bytes: Vec<u8>) -> Answer {
        self.send(key, self.client.put(self.url(path)).header("content-type", "application/wasm").body(bytes)).await
    }

    /// `PUT path` with a body sent as it is (e.g. malformed JSON).
    pub async fn put_text(&self, key: &str, path: &str, body: &str) -> Answer {
        let request = self.client.put(self.url(path)).header("content-type", "application/json").body(body.to_owned());
        self.send(key, request).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, key: &str, path: &str) -> Answer {
        self.send(key, self.client.delete(self.url(path))).await
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends `request` with `key` (`""`: no key) and reads the answer.
    pub async fn send(&self, key: &str, request: reqwest::RequestBuilder) -> Answer {
        let request = if key.is_empty() { request } else { request.bearer_auth(key) };
        let response = request.send().await.expect("the request reaches the service");
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let text = response.text().await.expect("the body is readable");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, content_type, text, body }
    }
}
