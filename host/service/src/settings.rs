//! The service's configuration file: one TOML file holds the `[server]` settings, the `[[api_keys]]` to create on a
//! first start, and (optionally) an exchange — `[plugins]`, `[[publishers]]`, `[[buyers]]`, `[[campaigns]]`, the
//! format of [`ExchangeFile`] — that seeds the registry of an empty database.
//!
//! Instead of the exchange's tables, `exchange = "exchange.toml"` may name an exchange file (relative to this one).
//!
//! Every `[server]` setting can also be set by an environment variable `PINGPOST_<NAME>` (upper case; a nested
//! table's field joins with `__`, e.g. `PINGPOST_OUTBOX__MAX_ATTEMPTS=5`), which wins over the file. The value is read
//! as a TOML value when it parses as one (`5`, `true`) and as a string otherwise (`127.0.0.1:8080`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::outbox::OutboxSettings;

use pingpost_engine::exchange_file::{ExchangeFile, syntax};
use pingpost_sqlite::StoreOptions;
use pingpost_sqlite::registry::Role;

/// The prefix of the environment variables that override `[server]` settings.
pub const ENV_PREFIX: &str = "PINGPOST_";

/// The `[server]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeSettings {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// Where the database (`pingpost.db`) and the compiled-plugin cache (`cache/`) live; relative paths start from
    /// the working directory.
    pub data_dir: PathBuf,
    /// Largest JSON request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest plugin upload, in bytes.
    pub max_plugin_bytes: usize,
    /// The most plugin bytes (every stored version) one publisher or buyer may keep; operators have no quota.
    pub max_plugin_bytes_per_owner: u64,
    /// Plugin uploads one API key may make per minute (as a burst, then at that rate).
    pub plugin_uploads_per_minute: u32,
    /// Versions kept of each plugin: after an upload is kept, older ones (never the live one) are deleted.
    pub plugin_versions_kept: u32,
    /// Auctions (leads, pings, posts) running at once; the next lead is answered `503 overloaded`.
    pub max_auctions_in_flight: usize,
    /// How far behind (a timer firing late, in ms) the async workers may be before leads are answered `503
    /// overloaded` rather than accepted and timed out.
    pub max_scheduling_delay_ms: u64,
    /// Connections open at once; at the cap new ones wait in the kernel's backlog (lowered to fit `ulimit -n`).
    pub max_connections: usize,
    /// A connection that does not send a request's headers within this many ms — the first request, or the next one
    /// on a kept-alive connection — is closed; 0 waits for ever. Behind a load balancer, keep it above the balancer's
    /// idle timeout.
    pub header_read_timeout_ms: u64,
    /// A request that takes longer is answered 503 `timeout`.
    pub request_timeout_ms: u64,
    /// A request body that takes longer to arrive is answered 408 `body_timeout` (keep it under the request timeout).
    pub body_read_timeout_ms: u64,
    /// Sustained leads, pings and posts per second allowed to one publisher.
    pub publisher_requests_per_second: u32,
    /// Requests a publisher may send at once above the sustained rate.
    pub publisher_burst: u32,
    /// How long a sold lead's personal data is kept, in days; then it is purged (the sale's record stays).
    pub pii_retention_days: u32,
    /// How long after the sale a buyer may return a lead, in days.
    pub return_window_days: u32,
    /// How long a sale's payout is held before it may be paid out to the publisher, in days (the return window, so a
    /// payout is never paid for a lead that may still be returned).
    pub payout_hold_days: u32,
    /// How often the retention purge runs, in seconds.
    pub purge_interval_secs: u64,
    /// How often two-step pings that expired without a post are closed and their lead cleared, in seconds.
    pub expired_ping_sweep_secs: u64,
    /// A key that acts as an operator (bootstrap). Prefer `PINGPOST_OPERATOR_KEY` over writing it in the file.
    pub operator_key: Option<String>,
    /// Once the store's write-ahead log (`pingpost.db-wal`) holds more than this many MiB, it is checkpointed and
    /// started over. Each restart holds writes back for the syncs it needs (5–30 ms on a slow disk), so a larger
    /// value means fewer such pauses for a larger file; at least 1, 1024 by default.
    pub wal_restart_mib: u32,
    /// The highest bid a campaign may make unless its own `max_bid_cents` says otherwise, in cents; a higher bid is
    /// an error answer, never a sale.
    pub max_bid_cents: u32,
    /// Webhook deliveries of sold leads (`[server.outbox]`).
    pub outbox: OutboxConfig,
}

/// The `[server.outbox]` table: how sold leads are retried to buyers' webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// The wait after the first failed attempt, doubled after each further failure.
    pub base_backoff_ms: u64,
    /// The longest wait between two attempts.
    pub max_backoff_ms: u64,
    /// Attempts before a delivery is given up (kept, visible to operators).
    pub max_attempts: u32,
    /// How long one delivery POST may take.
    pub request_timeout_ms: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        let defaults = OutboxSettings::default();
        OutboxConfig {
            base_backoff_ms: defaults.base_backoff.as_millis() as u64,
            max_backoff_ms: defaults.max_backoff.as_millis() as u64,
            max_attempts: defaults.max_attempts,
            request_timeout_ms: defaults.request_timeout.as_millis() as u64,
        }
    }
}

impl OutboxConfig {
    /// The worker's settings.
    pub fn worker_settings(&self) -> OutboxSettings {
        OutboxSettings {
            base_backoff: Duration::from_millis(self.base_backoff_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms),
            max_attempts: self.max_attempts.max(1),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            ..OutboxSettings::default()
        }
    }
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            max_body_bytes: 64 * 1024,
            max_plugin_bytes: 16 * 1024 * 1024,
            max_plugin_bytes_per_owner: 256 * 1024 * 1024,
            plugin_uploads_per_minute: 30,
            plugin_versions_kept: 10,
            max_auctions_in_flight: 4_096,
            max_scheduling_delay_ms: 100,
            max_connections: 4_096,
            header_read_timeout_ms: 30_000,
            request_timeout_ms: 10_000,
            body_read_timeout_ms: 5_000,
            publisher_requests_per_second: 10_000,
            publisher_burst: 1_000,
            pii_retention_days: 30,
            return_window_days: 7,
            payout_hold_days: 7,
            purge_interval_secs: 3_600,
            expired_ping_sweep_secs: 5,
            operator_key: None,
            wal_restart_mib: (StoreOptions::default().wal_restart_bytes >> 20) as u32,
            max_bid_cents: pingpost_engine::DEFAULT_MAX_BID_CENTS,
            outbox: OutboxConfig::default(),
        }
    }
}

impl ServeSettings {
    /// The database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("pingpost.db")
    }

    /// The compiled-plugin cache.
    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.join("cache")
    }

    /// How the store is opened.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions { wal_restart_bytes: u64::from(self.wal_restart_mib) << 20 }
    }
}

/// An API key to create on a first start (an empty registry). Give `key` (demo and tests) or, better, only its
/// `key_sha256` so the file holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySeed {
    /// The key holder's id; default `<role>:<owner>` (or `operator:<n>`).
    #[serde(default)]
    pub id: Option<String>,
    pub role: Role,
    /// The publisher or buyer id; absent for operators.
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_sha256: Option<String>,
}

/// Everything the configuration file says.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub settings: ServeSettings,
    pub api_keys: Vec<ApiKeySeed>,
    /// The exchange that seeds an empty registry, if the file describes one.
    pub seed: Option<ExchangeFile>,
}

/// Why the configuration could not be read; names the file (or variable) and the setting.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct SettingsError {
    /// The file, or `environment` for a variable.
    pub source_name: String,
    pub message: String,
}

impl ServeConfig {
    /// Defaults and environment only (no file).
    pub fn from_env(env: impl IntoIterator<Item = (String, String)>) -> Result<Self, SettingsError> {
        Self::from_table(Path::new("."), toml::Table::new(), env)
    }

    /// Reads the file at `path`, then applies the environment's `PINGPOST_*` variables.
    pub fn read(path: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, SettingsError> {
        let file_error = |message: String| SettingsError { source_name: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(format!("cannot read: {e}")))?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| file_error(syntax(&e, &text)))?;
        Self::from_table(path, table, env)
    }

    /// The configuration in `table` (read from `path`) with the environment applied.
    pub fn from_table(
        path: &Path,
        mut table: toml::Table,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let file_error = |message: String| SettingsError { source_name: path.display().to_string(), message };
        let mut server = match table.remove("server") {
            None => toml::Table::new(),
            Some(toml::Value::Table(server)) => server,
            Some(other) => return Err(file_error(format!("server: expected a table, found {}", other.type_str()))),
        };
        apply_env(&mut server, env)?;
        let settings: ServeSettings =
            serde_path_to_error::deserialize(toml::Value::Table(server)).map_err(|e| SettingsError {
                source_name: path.display().to_string(),
                message: format!("server.{}: {} (file or {ENV_PREFIX}* variable)", e.path(), e.inner().message()),
            })?;
        if settings.wal_restart_mib == 0 {
            return Err(SettingsError {
                source_name: path.display().to_string(),
                message: format!("server.wal_restart_mib: must be at least 1 (file or {ENV_PREFIX}* variable)"),
            });
        }
        let api_keys: Vec<ApiKeySeed> = match table.remove("api_keys") {
            None => Vec::new(),
            Some(value) => serde_path_to_error::deserialize(value)
                .map_err(|e| file_error(format!("api_keys{}: {}", e.path(), e.inner().message())))?,
        };
        for (index, seed) in api_keys.iter().enumerate() {
            if seed.key.is_some() == seed.key_sha256.is_some() {
                return Err(file_error(format!("api_keys[{index}]: give exactly one of `key` and `key_sha256`")));
            }
            if (seed.role == Role::Operator) != seed.owner.is_none() {
                return Err(file_error(format!(
                    "api_keys[{index}]: a {} key {}",
                    seed.role.as_str(),
                    if seed.role == Role::Operator {
                        "has no owner"
                    } else {
                        "needs its owner (publisher or buyer id)"
                    }
                )));
            }
        }
        let seed = if let Some(exchange) = table.remove("exchange") {
            let toml::Value::String(relative) = exchange else {
                return Err(file_error("exchange: expected the path of an exchange file".into()));
            };
            if let Some(other) = table.keys().next() {
                return Err(file_error(format!(
                    "{other}: describe the exchange either in the file named by `exchange` or here, not both"
                )));
            }
            let exchange_path = path.parent().unwrap_or(Path::new(".")).join(relative);
            Some(ExchangeFile::read(&exchange_path).map_err(|e| SettingsError {
                source_name: path.display().to_string(),
                message: format!("exchange: {e}"),
            })?)
        } else if table.is_empty() {
            None
        } else {
            Some(ExchangeFile::from_table(path, table).map_err(|e| SettingsError {
                source_name: path.display().to_string(),
                message: format!("{}{}", e.at.map(|at| format!("{at}: ")).unwrap_or_default(), e.message),
            })?)
        };
        Ok(ServeConfig { settings, api_keys, seed })
    }
}

/// Overrides `server` with every `PINGPOST_*` variable of `env`.
fn apply_env(server: &mut toml::Table, env: impl IntoIterator<Item = (String, String)>) -> Result<(), SettingsError> {
    for (name, value) in env {
        let Some(setting) = name.strip_prefix(ENV_PREFIX) else { continue };
        let path: Vec<String> = setting.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            return Err(SettingsError { source_name: "environment".into(), message: format!("{name}: empty name") });
        }
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        let (last, parents) = path.split_last().expect("split yields at least one part");
        let mut table = &mut *server;
        for parent in parents {
            let entry = table.entry(parent.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = match entry {
                toml::Value::Table(inner) => inner,
                _ => {
                    return Err(SettingsError {
                        source_name: "environment".into(),
                        message: format!("{name}: server.{parent} is not a table"),
                    });
                }
            };
        }
        table.insert(last.clone(), parsed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_without_a_file() {
        let config = ServeConfig::from_env(env(&[("HOME", "/root")])).expect("defaults");
        assert_eq!(config.settings, ServeSettings::default());
        assert!(config.seed.is_none() && config.api_keys.is_empty());
        assert_eq!(config.settings.database_path(), PathBuf::from("data/pingpost.db"));
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let table: toml::Table = "[server]\nlisten = \"127.0.0.1:9000\"\nmax_body_bytes = 10\n".parse().unwrap();
        let config = ServeConfig::from_table(
            Path::new("x.toml"),
            table,
            env(&[
                ("PINGPOST_MAX_BODY_BYTES", "2048"),
                ("PINGPOST_DATA_DIR", "/tmp/pp data"),
                ("PINGPOST_OUTBOX__MAX_ATTEMPTS", "3"),
                ("PINGPOST_WAL_RESTART_MIB", "512"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.settings.store_options().wal_restart_bytes, 1 << 29);
        assert_eq!(config.settings.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.settings.max_body_bytes, 2048);
        assert_eq!(config.settings.data_dir, PathBuf::from("/tmp/pp data"));
        assert_eq!(config.settings.outbox.max_attempts, 3);
    }

    #[test]
    fn unknown_or_mistyped_settings_are_named() {
        let err = ServeConfig::from_env(env(&[("PINGPOST_MAX_BODY_BITES", "1")])).unwrap_err();
        assert!(err.message.contains("max_body_bites"), "{err}");
        let err = ServeConfig::from_env(env(&[("PINGPOST_LISTEN", "not an address")])).unwrap_err();
        assert!(err.message.contains("server.listen"), "{err}");
        let table: toml::Table = "[server]\npii_retention_days = \"a month\"\n".parse().unwrap();
        let err = ServeConfig::from_table(Path::new("x.toml"), table, env(&[])).unwrap_err();
        assert!(err.to_string().starts_with("x.toml: server.pii_retention_days"), "{err}");
        let err = ServeConfig::from_env(env(&[("PINGPOST_WAL_RESTART_MIB", "0")])).unwrap_err();
        assert!(err.message.starts_with("server.wal_restart_mib: must be at least 1"), "{err}");
    }

    #[test]
    fn api_key_seeds_are_checked() {
        let table: toml::Table = "[[api_keys]]\nrole = \"publisher\"\nkey = \"k\"\n".parse().expect("toml");
        let err = ServeConfig::from_table(Path::new("x.toml"), table, env(&[])).unwrap_err();
        assert!(err.message.contains("needs its owner"), "{err}");
        let table: toml::Table =
            "[[api_keys]]\nrole = \"operator\"\nkey = \"k\"\nkey_sha256 = \"ab\"\n".parse().expect("toml");
        let err = ServeConfig::from_table(Path::new("x.toml"), table, env(&[])).unwrap_err();
        assert!(err.message.contains("exactly one"), "{err}");
    }
}
