//! The Florida scenario as a `pingpost serve` config file: its 18 campaigns either all as Wasm plugins or all as
//! HTTP buyers on loopback, plus the `[server]` table and the API keys the load generator uses.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The publisher the leads are sent as.
pub const PUBLISHER_KEY: &str = "bench-publisher-key";
/// The operator that swaps plugin versions.
pub const OPERATOR_KEY: &str = "bench-operator-key";

/// Which kind of buyer the 18 campaigns are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Wasm,
    Http,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Wasm => "wasm",
            Kind::Http => "http",
        }
    }
}

/// Which buyer logic a campaign runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logic {
    ConfigBuyer,
    ScorecardBuyer,
}

impl Logic {
    fn plugin_name(self) -> &'static str {
        match self {
            Logic::ConfigBuyer => "config-buyer",
            Logic::ScorecardBuyer => "scorecard-buyer",
        }
    }
}

/// One campaign of the scenario: its table in the exchange file (target replaced per kind) and its buyer logic.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: String,
    pub logic: Logic,
    /// The campaign's JSON config for its buyer logic.
    pub config: String,
    table: toml::Table,
}

/// The rules of the four HTTP buyers of `examples/florida/src/http_buyers.rs` as config-buyer configs with the same
/// filters and the same flat price.
const HTTP_EQUIVALENTS: [(&str, &str); 4] = [
    (
        "sunshine-health-direct",
        r#"{"verticals": ["health-insurance"], "states": ["FL"], "min_age": 50, "max_age": 64, "base_price_cents": 2600}"#,
    ),
    (
        "atlantic-brokers",
        r#"{"verticals": ["health-insurance"], "states": ["FL", "GA", "SC", "NC", "VA"], "min_age": 18, "max_age": 64, "base_price_cents": 2200}"#,
    ),
    (
        "everglades-insure",
        r#"{"verticals": ["health-insurance"], "min_age": 21, "max_age": 70, "base_price_cents": 1250}"#,
    ),
    (
        "medicare-advantage-now",
        r#"{"verticals": ["health-insurance"], "min_age": 65, "max_age": 99, "base_price_cents": 3100}"#,
    ),
];

/// The Florida example's folder.
pub fn florida_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/florida")
}

/// The scenario read from `examples/florida/exchange.toml`: the file's tables and its 18 campaigns.
pub struct Scenario {
    file: toml::Table,
    pub campaigns: Vec<Campaign>,
}

impl Scenario {
    pub fn florida() -> Result<Self> {
        let dir = florida_dir();
        let path = dir.join("exchange.toml");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut file: toml::Table = text.parse().with_context(|| format!("parsing {}", path.display()))?;
        let Some(toml::Value::Array(tables)) = file.remove("campaigns") else {
            bail!("{}: no [[campaigns]]", path.display());
        };
        let mut campaigns = Vec::new();
        for value in tables {
            let toml::Value::Table(table) = value else { bail!("a [[campaigns]] entry is not a table") };
            let id = table.get("id").and_then(|v| v.as_str()).context("a campaign without id")?.to_owned();
            let target = table.get("target").and_then(|v| v.as_table()).with_context(|| format!("{id}: no target"))?;
            let (logic, config) = match target.get("kind").and_then(|v| v.as_str()) {
                Some("wasm") => {
                    let logic = match target.get("plugin").and_then(|v| v.as_str()) {
                        Some("config-buyer") => Logic::ConfigBuyer,
                        Some("scorecard-buyer") => Logic::ScorecardBuyer,
                        other => bail!("{id}: unknown plugin {other:?}"),
                    };
                    let file = target.get("config_file").and_then(|v| v.as_str()).context("no config_file")?;
                    let config = std::fs::read_to_string(dir.join(file)).with_context(|| format!("reading {file}"))?;
                    (logic, config)
                }
                Some("http") => {
                    let (_, config) = HTTP_EQUIVALENTS
                        .iter()
                        .find(|(campaign, _)| *campaign == id)
                        .with_context(|| format!("{id}: no config-buyer equivalent of this HTTP buyer"))?;
                    (Logic::ConfigBuyer, (*config).to_owned())
                }
                other => bail!("{id}: unknown target kind {other:?}"),
            };
            campaigns.push(Campaign { id, logic, config, table });
        }
        if campaigns.len() != 18 {
            bail!("expected the 18 Florida campaigns, found {}", campaigns.len());
        }
        Ok(Scenario { file, campaigns })
    }

    /// The config file text for a server whose data lives in `data_dir`: every campaign a Wasm plugin, or (HTTP)
    /// every campaign the buyer at `http_base(campaign id)` (`http://127.0.0.1:PORT`).
    pub fn config_toml(
        &self,
        kind: Kind,
        data_dir: &Path,
        http_base: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String> {
        let mut file = self.file.clone();
        let mut plugins = toml::Table::new();
        for (name, package) in [
            ("standard", "standard-redactor"),
            ("config-buyer", "config-buyer"),
            ("scorecard-buyer", "scorecard-buyer"),
        ] {
            let path = pingpost_plugins::wasm(package)?;
            plugins.insert(name.to_owned(), toml::Value::String(path.display().to_string()));
        }
        file.insert("plugins".into(), toml::Value::Table(plugins));
        let mut campaigns = Vec::new();
        for campaign in &self.campaigns {
            let mut table = campaign.table.clone();
            let mut target = toml::Table::new();
            match kind {
                Kind::Wasm => {
                    target.insert("kind".into(), "wasm".into());
                    target.insert("plugin".into(), campaign.logic.plugin_name().into());
                    target.insert("config".into(), campaign.config.clone().into());
                    let mut delivery = toml::Table::new();
                    delivery.insert("kind".into(), "pickup".into());
                    target.insert("delivery".into(), toml::Value::Table(delivery));
                }
                Kind::Http => {
                    let base = http_base(&campaign.id).with_context(|| format!("{}: no HTTP buyer", campaign.id))?;
                    target.insert("kind".into(), "http".into());
                    target.insert("ping_url".into(), format!("{base}/ping").into());
                    target.insert("post_url".into(), format!("{base}/post").into());
                    target.insert("timeout_ms".into(), toml::Value::Integer(200));
                }
            }
            table.insert("target".into(), toml::Value::Table(target));
            campaigns.push(toml::Value::Table(table));
        }
        file.insert("campaigns".into(), toml::Value::Array(campaigns));

        let mut server = toml::Table::new();
        server.insert("data_dir".into(), data_dir.display().to_string().into());
        // The load test measures the exchange, not the per-publisher rate limiter: lift it above any rate we send.
        server.insert("publisher_requests_per_second".into(), toml::Value::Integer(1_000_000));
        server.insert("publisher_burst".into(), toml::Value::Integer(100_000));
        file.insert("server".into(), toml::Value::Table(server));

        let key = |role: &str, owner: Option<&str>, key: &str| {
            let mut t = toml::Table::new();
            t.insert("role".into(), role.into());
            if let Some(owner) = owner {
                t.insert("owner".into(), owner.into());
            }
            t.insert("key".into(), key.into());
            toml::Value::Table(t)
        };
        let publisher = self.publisher_id()?;
        file.insert(
            "api_keys".into(),
            toml::Value::Array(vec![
                key("publisher", Some(&publisher), PUBLISHER_KEY),
                key("operator", None, OPERATOR_KEY),
            ]),
        );
        toml::to_string(&file).context("writing the serve config")
    }

    /// The scenario's (only) publisher.
    pub fn publisher_id(&self) -> Result<String> {
        self.file
            .get("publishers")
            .and_then(|p| p.as_array())
            .and_then(|p| p.first())
            .and_then(|p| p.get("id"))
            .and_then(|id| id.as_str())
            .map(str::to_owned)
            .context("the scenario has no publisher")
    }
}
