//! First start: fills an empty registry from the config file, in one transaction — every plugin the exchange names
//! becomes version 1 of an operator-owned plugin (validated, compiled and instantiated now), then the publishers,
//! buyers and campaigns — and creates the file's API keys. A first start that failed part-way stored nothing and
//! seeds on the next start. On later starts the registry is the truth and the file's exchange is ignored (keys named in the
//! file but missing from the registry are still added).

use anyhow::{Context, Result};

use super::keys::hash_key;
use super::settings::{ApiKeySeed, ServeConfig};
use pingpost_engine::exchange_file::ExchangeFile;
use pingpost_runtime::Runtime;
use pingpost_sqlite::SqliteStore;
use pingpost_sqlite::registry::{PluginUpload, Principal, Role};

/// What seeding did, for the start-up log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Seeded {
    pub plugins: usize,
    pub publishers: usize,
    pub buyers: usize,
    pub campaigns: usize,
    pub keys: usize,
}

/// Seeds the registry from `config` if it is empty, and adds the config's keys the registry does not have.
pub fn seed(store: &SqliteStore, runtime: &Runtime, config: &ServeConfig, now_unix_ms: i64) -> Result<Seeded> {
    let mut seeded = Seeded::default();
    if let Some(file) = &config.seed
        && store.registry_needs_seed()?
    {
        seed_exchange(store, runtime, file, now_unix_ms, &mut seeded)?;
    }
    let known: Vec<String> = store.keys()?.into_iter().map(|k| k.principal.id).collect();
    let mut operators = 0;
    for key in &config.api_keys {
        let id = key_id(key, &mut operators);
        if known.contains(&id) {
            continue;
        }
        let hash = match (&key.key, &key.key_sha256) {
            (Some(key), _) => hash_key(key),
            (None, Some(hash)) => hash.to_ascii_lowercase(),
            (None, None) => unreachable!("checked when the config was read"),
        };
        let principal = Principal { id, role: key.role, owner_id: key.owner.clone() };
        store
            .insert_principal(&principal, &hash, now_unix_ms)
            .with_context(|| format!("adding API key {:?}", principal.id))?;
        seeded.keys += 1;
    }
    if let Some(key) = &config.settings.operator_key {
        let id = "operator:bootstrap".to_owned();
        if !known.contains(&id) {
            let principal = Principal { id, role: Role::Operator, owner_id: None };
            store
                .insert_principal(&principal, &hash_key(key), now_unix_ms)
                .context("adding the bootstrap operator key")?;
            seeded.keys += 1;
        }
    }
    Ok(seeded)
}

fn key_id(key: &ApiKeySeed, operators: &mut usize) -> String {
    if let Some(id) = &key.id {
        return id.clone();
    }
    match &key.owner {
        Some(owner) => format!("{}:{owner}", key.role.as_str()),
        None => {
            *operators += 1;
            format!("operator:{operators}")
        }
    }
}

fn seed_exchange(
    store: &SqliteStore,
    runtime: &Runtime,
    file: &ExchangeFile,
    now_unix_ms: i64,
    seeded: &mut Seeded,
) -> Result<()> {
    let mut plugins = Vec::new();
    for (name, path) in &file.plugin_files {
        let bytes = std::fs::read(path).with_context(|| format!("reading plugin {name:?} from {}", path.display()))?;
        let plugin =
            runtime.load(&bytes).with_context(|| format!("plugin {name:?} ({}) was refused", path.display()))?;
        plugin
            .check_instantiates()
            .with_context(|| format!("plugin {name:?} ({}) cannot start within its limits", path.display()))?;
        plugins.push(PluginUpload {
            name: name.clone(),
            world: plugin.world(),
            owner_role: Role::Operator,
            owner_id: None,
            sha256: plugin.id().to_owned(),
            wasm: bytes,
            uploaded_by: "seed".to_owned(),
            at_unix_ms: now_unix_ms,
        });
    }
    seeded.plugins = plugins.len();
    store.seed_registry(plugins, &file.config, now_unix_ms).context("seeding the registry from the config file")?;
    seeded.publishers = file.config.publishers.len();
    seeded.buyers = file.config.buyers.len();
    seeded.campaigns = file.config.campaigns.len();
    Ok(())
}
