//! The service's registry in the [`SqliteStore`]: API key holders ([`Principal`]), the exchange's publishers, buyers
//! and campaigns (the engine's config types as JSON), uploaded plugins with every version, and the first answers of
//! idempotent requests. Schema: migration 0003.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use super::connection::{backend, json_error, unreadable_json};
use super::sqlite::SqliteStore;
use pingpost_engine::ExchangeConfig;
use pingpost_engine::identity::ConsumerKeys;
use pingpost_engine::store::StoreError;
use pingpost_runtime::World;

/// What an API key may do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    /// Runs the exchange: everything.
    Operator,
    /// Sends leads; reads its own leads; uploads its redactor.
    Publisher,
    /// Reads the leads it bought; returns them; uploads its campaigns' plugins.
    Buyer,
}

impl Role {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    fn parse(text: &str) -> Result<Role, StoreError> {
        text.parse().map_err(|_| StoreError::corrupt("reading the registry", format!("unknown role {text:?}")))
    }
}

/// The holder of an API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Principal {
    pub id: String,
    pub role: Role,
    /// The publisher or buyer the key acts for; `None` for operators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
}

/// A principal as listed, with its key's hash (never the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KeyRecord {
    #[serde(flatten)]
    pub principal: Principal,
    pub key_sha256: String,
    pub created_at_unix_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at_unix_ms: Option<i64>,
}

/// Which part of the exchange's configuration a registry row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum EntityKind {
    Vertical,
    Publisher,
    Buyer,
    Campaign,
}

impl EntityKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A publisher, buyer, campaign or vertical the operator deleted, with the config it had.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ArchivedEntity {
    /// `publisher`, `buyer`, `campaign` or `vertical`.
    pub kind: String,
    pub id: String,
    /// Its config when it was deleted.
    pub config: serde_json::Value,
    pub archived_at_unix_ms: i64,
}

/// One uploaded version of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PluginVersion {
    pub version: u32,
    pub sha256: String,
    pub size_bytes: u64,
    pub uploaded_by: String,
    pub uploaded_at_unix_ms: i64,
}

/// A named plugin, who owns it, which version is live, and every version kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PluginRecord {
    pub name: String,
    pub world: World,
    pub owner_role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// The live version; `None` before the first activation.
    pub active_version: Option<u32>,
    /// A disabled plugin is not run: campaigns and publishers that use it are refused until it is enabled again.
    pub disabled: bool,
    pub versions: Vec<PluginVersion>,
}

/// What to do with a request that carries an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotency {
    /// First time: run it, then [`SqliteStore::idempotency_finish`].
    Run,
    /// Answered before: send this again.
    Replay { status: u16, body: String },
    /// The first request with this key is still running (or was left in progress by a crash: see
    /// [`SqliteStore::idempotency_in_progress`]); it began at `started_at_unix_ms`.
    InProgress { started_at_unix_ms: i64 },
    /// The key was used before with a different request body.
    Mismatch,
}

/// The lead an idempotent publisher request runs, named when the request begins, so one that a crash left in progress
/// can be resolved from what the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentLead {
    /// The id the lead's auction runs under (for a post: the ping's id).
    pub lead_id: String,
    pub publisher_id: String,
    /// The consumer's keys, when the lead can be read: the duplicate record its auction made is forgotten when the
    /// request is released.
    pub keys: Option<ConsumerKeys>,
}

/// A request begun with [`SqliteStore::idempotency_begin`] and not finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InProgressRequest {
    pub principal_id: String,
    /// The scoped key (`<route> <Idempotency-Key>`).
    pub key: String,
    pub started_at_unix_ms: i64,
    pub lead: Option<IdempotentLead>,
}

impl SqliteStore {
    /// Stores a new API key holder by the SHA-256 (hex) of its key.
    pub fn insert_principal(
        &self,
        principal: &Principal,
        key_sha256: &str,
        now_unix_ms: i64,
    ) -> Result<(), StoreError> {
        let (principal, key_sha256) = (principal.clone(), key_sha256.to_owned());
        self.write("adding an API key", move |tx| {
            tx.prepare_cached(
                "INSERT INTO principal (id, role, owner_id, key_sha256, created_at_unix_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(backend("adding an API key"))?
            .execute(params![principal.id, principal.role.as_str(), principal.owner_id, key_sha256, now_unix_ms])
            .map_err(backend("adding an API key"))?;
            Ok(())
        })
    }

    /// Every key holder, revoked ones included.
    pub fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let what = "listing API keys";
        self.read(what, |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, role, owner_id, key_sha256, created_at_unix_ms, revoked_at_unix_ms FROM principal ORDER BY created_at_unix_ms, id",
                )
                .map_err(backend(what))?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, Option<i64>>(5)?,
                    ))
                })
                .map_err(backend(what))?;
            let mut keys = Vec::new();
            for row in rows {
                let (id, role, owner_id, key_sha256, created_at_unix_ms, revoked_at_unix_ms) = row.map_err(backend(what))?;
                keys.push(KeyRecord {
                    principal: Principal { id, role: Role::parse(&role)?, owner_id },
                    key_sha256,
                    created_at_unix_ms,
                    revoked_at_unix_ms,
                });
            }
            Ok(keys)
        })
    }

    /// Revokes a key holder's key; false when there is no such (unrevoked) holder.
    pub fn revoke_principal(&self, id: &str, now_unix_ms: i64) -> Result<bool, StoreError> {
        let what = "revoking an API key";
        let id = id.to_owned();
        self.write(what, move |tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE principal SET revoked_at_unix_ms = ?2 WHERE id = ?1 AND revoked_at_unix_ms IS NULL",
                )
                .map_err(backend(what))?
                .execute(params![id, now_unix_ms])
                .map_err(backend(what))?;
            Ok(changed == 1)
        })
    }

    /// The exchange's configuration as the registry holds it, each kind in creation order.
    pub fn registry_config(&self) -> Result<ExchangeConfig, StoreError> {
        let what = "reading the registry";
        self.read(what, |tx| {
            let mut config = ExchangeConfig::default();
            for json in entity_rows(tx, EntityKind::Vertical)? {
                config.verticals.push(serde_json::from_str(&json).map_err(unreadable_json(what))?);
            }
            for json in entity_rows(tx, EntityKind::Publisher)? {
                config.publishers.push(serde_json::from_str(&json).map_err(unreadable_json(what))?);
            }
            for json in entity_rows(tx, EntityKind::Buyer)? {
                config.buyers.push(serde_json::from_str(&json).map_err(unreadable_json(what))?);
            }
            for json in entity_rows(tx, EntityKind::Campaign)? {
                config.campaigns.push(serde_json::from_str(&json).map_err(unreadable_json(what))?);
            }
            Ok(config)
        })
    }

    /// What was deleted from the registry, oldest first (of one kind, when `kind` is given).
    pub fn archived(&self, kind: Option<EntityKind>) -> Result<Vec<ArchivedEntity>, StoreError> {
        let what = "reading the archive";
        self.read(what, |tx| {
            let mut rows = tx
                .prepare_cached(
                    "SELECT kind, id, config_json, archived_at_unix_ms FROM registry_archive
                     WHERE ?1 IS NULL OR kind = ?1 ORDER BY seq",
                )
                .map_err(backend(what))?;
            let rows = rows
                .query_map([kind.map(EntityKind::as_str)], |row| {
                    Ok((row.get::<_, String>(0)?, row.get(1)?, row.get::<_, String>(2)?, row.get(3)?))
                })
                .map_err(backend(what))?;
            rows.map(|row| {
                let (kind, id, json, archived_at_unix_ms) = row.map_err(backend(what))?;
                let config = serde_json::from_str(&json).map_err(unreadable_json(what))?;
                Ok(ArchivedEntity { kind, id, config, archived_at_unix_ms })
            })
            .collect()
        })
    }

    /// Replaces the registry's verticals, publishers, buyers and campaigns with `config` in one transaction (a config change
    /// the service checked by building an exchange from it first). Existing entities keep their position; those
    /// `config` no longer has are archived ([`SqliteStore::archived`]).
    pub fn save_registry_config(&self, config: &ExchangeConfig, now_unix_ms: i64) -> Result<(), StoreError> {
        let entries = entity_entries(config)?;
        self.write("saving the registry", move |tx| save_entities_in(tx, &entries, now_unix_ms))
    }

    /// Seeds an empty registry in one transaction: each of `plugins` becomes version 1 of its plugin and goes live, then `config`'s publishers, buyers and campaigns are saved and the registry is marked seeded.
    /// A failure (a full disk) leaves the registry as it was: never half-seeded.
    pub fn seed_registry(
        &self,
        plugins: Vec<PluginUpload>,
        config: &ExchangeConfig,
        now_unix_ms: i64,
    ) -> Result<(), StoreError> {
        let what = "seeding the registry";
        let entries = entity_entries(config)?;
        self.write(what, move |tx| {
            for plugin in &plugins {
                let added = add_version_in(tx, plugin, None)?
                    .map_err(|conflict| StoreError::corrupt(what, format!("plugin {:?}: {conflict}", plugin.name)))?;
                activate_in(tx, &plugin.name, added.version, &plugin.uploaded_by, now_unix_ms)?;
            }
            save_entities_in(tx, &entries, now_unix_ms)?;
            tx.prepare_cached("INSERT OR REPLACE INTO registry_seed (id, seeded_at_unix_ms) VALUES (1, ?1)")
                .map_err(backend(what))?
                .execute([now_unix_ms])
                .map_err(backend(what))?;
            Ok(())
        })
    }

    /// Whether the registry must be seeded from the config file: it was never seeded and holds no publisher, buyer
    /// or campaign. That is a first start — or a store a failed first start half-seeded (plugins but nothing else)
    /// before seeding was one transaction, which is seeded again rather than served as an empty exchange.
    pub fn registry_needs_seed(&self) -> Result<bool, StoreError> {
        let what = "checking the registry";
        self.read(what, |tx| {
            let (seeded, entities): (i64, i64) = tx
                .query_row(
                    "SELECT (SELECT COUNT(*) FROM registry_seed), (SELECT COUNT(*) FROM registry_entity)",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .map_err(backend(what))?;
            Ok(seeded == 0 && entities == 0)
        })
    }

    /// Stores an uploaded plugin version, creating the named plugin (with `world` and owner) on its first upload.
    /// Re-uploading bytes identical to a kept version returns that version. Refuses (returns `Err`) an upload whose
    /// world differs from the plugin's, or one that would take the owner's stored bytes past `quota` (counting what
    /// the owner keeps once the plugin's versions are pruned to the quota's `versions_kept`).
    pub fn add_plugin_version(
        &self,
        upload: PluginUpload,
        quota: Option<PluginQuota>,
    ) -> Result<Result<AddedVersion, PluginConflict>, StoreError> {
        self.write("storing a plugin version", move |tx| add_version_in(tx, &upload, quota))
    }

    /// Deletes version `version` of plugin `name` that was just added and then refused (its activation failed), so a
    /// refused upload keeps nothing; the plugin goes too when that was its only version. A version that is live, or
    /// was ever activated, stays (`None`).
    pub fn discard_plugin_version(&self, name: &str, version: u32) -> Result<Option<DeletedVersion>, StoreError> {
        let what = "discarding a refused plugin version";
        let name = name.to_owned();
        self.write(what, move |tx| {
            let discardable = tx
                .prepare_cached(
                    "SELECT 1 FROM plugin_version WHERE name = ?1 AND version = ?2
                        AND NOT EXISTS (SELECT 1 FROM plugin WHERE name = ?1 AND active_version = ?2)
                        AND NOT EXISTS (SELECT 1 FROM plugin_activation WHERE name = ?1 AND version = ?2)",
                )
                .map_err(backend(what))?
                .exists(params![name, version])
                .map_err(backend(what))?;
            let deleted = if discardable { Some(delete_version_in(tx, &name, version)?) } else { None };
            tx.prepare_cached(
                "DELETE FROM plugin WHERE name = ?1 AND active_version IS NULL
                    AND NOT EXISTS (SELECT 1 FROM plugin_version WHERE name = ?1)
                    AND NOT EXISTS (SELECT 1 FROM plugin_activation WHERE name = ?1)",
            )
            .map_err(backend(what))?
            .execute([&name])
            .map_err(backend(what))?;
            Ok(deleted)
        })
    }

    /// Deletes the versions of plugin `name` older than its `keep` newest, except the live one, so what an owner
    /// keeps (and its quota) stays bounded as it uploads. Returns the deleted versions with the SHA-256 of each whose
    /// bytes no version of any plugin keeps any more (its compiled artifact can go).
    pub fn prune_plugin_versions(&self, name: &str, keep: u32) -> Result<Vec<DeletedVersion>, StoreError> {
        let what = "pruning plugin versions";
        let name = name.to_owned();
        self.write(what, move |tx| {
            let old: Vec<u32> = tx
                .prepare_cached(
                    "SELECT version FROM plugin_version WHERE name = ?1
                        AND version NOT IN (SELECT version FROM plugin_version WHERE name = ?1 ORDER BY version DESC LIMIT ?2)
                        AND version IS NOT (SELECT active_version FROM plugin WHERE name = ?1)",
                )
                .map_err(backend(what))?
                .query_map(params![name, keep.max(1)], |row| row.get(0))
                .map_err(backend(what))?
                .collect::<Result<_, _>>()
                .map_err(backend(what))?;
            old.into_iter().map(|version| delete_version_in(tx, &name, version)).collect()
        })
    }

    /// Deletes version `version` of plugin `name`; refused while it is the live version. The plugin's activation
    /// history keeps its rows (a rollback skips versions no longer kept).
    pub fn delete_plugin_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Result<DeletedVersion, VersionDeleteError>, StoreError> {
        let what = "deleting a plugin version";
        let name = name.to_owned();
        self.write(what, move |tx| {
            let Some(head) = plugin_head(tx, &name)? else { return Ok(Err(VersionDeleteError::NotFound)) };
            if head.active_version == Some(version) {
                return Ok(Err(VersionDeleteError::Live));
            }
            let exists = tx
                .prepare_cached("SELECT 1 FROM plugin_version WHERE name = ?1 AND version = ?2")
                .map_err(backend(what))?
                .exists(params![name, version])
                .map_err(backend(what))?;
            if !exists {
                return Ok(Err(VersionDeleteError::NotFound));
            }
            delete_version_in(tx, &name, version).map(Ok)
        })
    }

    /// One named plugin with its versions.
    pub fn plugin(&self, name: &str) -> Result<Option<PluginRecord>, StoreError> {
        self.read("reading a plugin", |tx| {
            let Some(head) = plugin_head(tx, name)? else { return Ok(None) };
            Ok(Some(with_versions(tx, head)?))
        })
    }

    /// Every plugin, by name.
    pub fn plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        let what = "listing plugins";
        self.read(what, |tx| {
            let names: Vec<String> = tx
                .prepare_cached("SELECT name FROM plugin ORDER BY name")
                .map_err(backend(what))?
                .query_map([], |row| row.get(0))
                .map_err(backend(what))?
                .collect::<Result<_, _>>()
                .map_err(backend(what))?;
            let mut plugins = Vec::with_capacity(names.len());
            for name in names {
                if let Some(head) = plugin_head(tx, &name)? {
                    plugins.push(with_versions(tx, head)?);
                }
            }
            Ok(plugins)
        })
    }

    /// The bytes of one version, as uploaded.
    pub fn plugin_wasm(&self, name: &str, version: u32) -> Result<Option<Vec<u8>>, StoreError> {
        let what = "reading a plugin version";
        self.read(what, |tx| {
            tx.prepare_cached("SELECT wasm FROM plugin_version WHERE name = ?1 AND version = ?2")
                .map_err(backend(what))?
                .query_row(params![name, version], |row| row.get(0))
                .optional()
                .map_err(backend(what))
        })
    }

    /// Makes `version` the live version of `name` and records the activation (for rollback).
    pub fn activate_plugin(&self, name: &str, version: u32, by: &str, now_unix_ms: i64) -> Result<(), StoreError> {
        let (name, by) = (name.to_owned(), by.to_owned());
        self.write("activating a plugin version", move |tx| activate_in(tx, &name, version, &by, now_unix_ms))
    }

    /// The version a rollback of `name` goes back to, read off its activations as a stack of what was live: each
    /// rollback goes one activation further back, never forward again.
    pub fn rollback_target(&self, name: &str) -> Result<Option<u32>, StoreError> {
        let what = "finding the rollback version";
        self.read(what, |tx| {
            let Some(head) = plugin_head(tx, name)? else { return Ok(None) };
            let Some(active) = head.active_version else { return Ok(None) };
            let versions = |sql: &str| -> Result<Vec<u32>, StoreError> {
                let mut stmt = tx.prepare_cached(sql).map_err(backend(what))?;
                let rows = stmt.query_map(params![name], |row| row.get(0)).map_err(backend(what))?;
                rows.collect::<Result<_, _>>().map_err(backend(what))
            };
            let activations = versions("SELECT version FROM plugin_activation WHERE name = ?1 ORDER BY id")?;
            let kept: HashSet<u32> =
                versions("SELECT version FROM plugin_version WHERE name = ?1")?.into_iter().collect();
            Ok(undo_target(&activations, &kept, active))
        })
    }

    /// Disables or enables a plugin.
    pub fn set_plugin_disabled(&self, name: &str, disabled: bool) -> Result<(), StoreError> {
        let what = "disabling a plugin";
        let name = name.to_owned();
        self.write(what, move |tx| {
            tx.prepare_cached("UPDATE plugin SET disabled = ?2 WHERE name = ?1")
                .map_err(backend(what))?
                .execute(params![name, disabled])
                .map_err(backend(what))?;
            Ok(())
        })
    }

    /// Starts an idempotent request: decides from what is stored under (`principal_id`, `key`) whether to run it.
    pub fn idempotency_begin(
        &self,
        principal_id: &str,
        key: &str,
        request_sha256: &str,
        now_unix_ms: i64,
        lead: Option<&IdempotentLead>,
    ) -> Result<Idempotency, StoreError> {
        let what = "checking an idempotency key";
        let (principal_id, key, request_sha256) = (principal_id.to_owned(), key.to_owned(), request_sha256.to_owned());
        let lead = lead.cloned();
        self.write(what, move |tx| {
            let stored: Option<(String, Option<u16>, Option<String>, i64)> = tx
                .prepare_cached(
                    "SELECT request_sha256, status, body, created_at_unix_ms FROM idempotency
                     WHERE principal_id = ?1 AND key = ?2",
                )
                .map_err(backend(what))?
                .query_row(params![principal_id, key], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
                .optional()
                .map_err(backend(what))?;
            Ok(match stored {
                None => {
                    let keys = lead.as_ref().and_then(|l| l.keys.as_ref());
                    tx.prepare_cached(
                        "INSERT INTO idempotency (principal_id, key, request_sha256, created_at_unix_ms, lead_id,
                            publisher_id, phone_sha256, email_sha256)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )
                    .map_err(backend(what))?
                    .execute(params![
                        principal_id,
                        key,
                        request_sha256,
                        now_unix_ms,
                        lead.as_ref().map(|l| &l.lead_id),
                        lead.as_ref().map(|l| &l.publisher_id),
                        keys.map(|k| &k.phone_sha256),
                        keys.map(|k| &k.email_sha256),
                    ])
                    .map_err(backend(what))?;
                    Idempotency::Run
                }
                Some((sha, _, _, _)) if sha != request_sha256 => Idempotency::Mismatch,
                Some((_, Some(status), Some(body), _)) => Idempotency::Replay { status, body },
                Some((_, _, _, started_at_unix_ms)) => Idempotency::InProgress { started_at_unix_ms },
            })
        })
    }

    /// The requests begun before `started_before_unix_ms` that have no answer yet, oldest first: after a crash, every
    /// request the dead process was running.
    pub fn idempotency_in_progress(&self, started_before_unix_ms: i64) -> Result<Vec<InProgressRequest>, StoreError> {
        let what = "listing requests in progress";
        self.read(what, |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT principal_id, key, created_at_unix_ms, lead_id, publisher_id, phone_sha256, email_sha256
                     FROM idempotency WHERE status IS NULL AND created_at_unix_ms < ?1 ORDER BY created_at_unix_ms",
                )
                .map_err(backend(what))?;
            let rows = stmt
                .query_map([started_before_unix_ms], |row| {
                    let lead_id: Option<String> = row.get(3)?;
                    let publisher_id: Option<String> = row.get(4)?;
                    let (phone, email): (Option<String>, Option<String>) = (row.get(5)?, row.get(6)?);
                    let keys = phone
                        .zip(email)
                        .map(|(phone_sha256, email_sha256)| ConsumerKeys { phone_sha256, email_sha256 });
                    Ok(InProgressRequest {
                        principal_id: row.get(0)?,
                        key: row.get(1)?,
                        started_at_unix_ms: row.get(2)?,
                        lead: lead_id.zip(publisher_id).map(|(lead_id, publisher_id)| IdempotentLead {
                            lead_id,
                            publisher_id,
                            keys,
                        }),
                    })
                })
                .map_err(backend(what))?;
            rows.collect::<Result<_, _>>().map_err(backend(what))
        })
    }

    /// Releases a request left in progress so a retry runs it again, and forgets the duplicate record its lead's
    /// auction made (the consumer seen in `dedupe_pool` — the publisher's id, or the exchange-wide pool — at or after
    /// the request began), so the retry is not refused as a duplicate of a lead that was never answered. Nothing
    /// happens to a request answered meanwhile.
    pub fn idempotency_release(&self, request: &InProgressRequest, dedupe_pool: &str) -> Result<(), StoreError> {
        let what = "releasing a request left in progress";
        let (request, dedupe_pool) = (request.clone(), dedupe_pool.to_owned());
        self.write(what, move |tx| {
            let released = tx
                .prepare_cached("DELETE FROM idempotency WHERE principal_id = ?1 AND key = ?2 AND status IS NULL")
                .map_err(backend(what))?
                .execute(params![request.principal_id, request.key])
                .map_err(backend(what))?;
            if let Some(IdempotentLead { keys: Some(keys), .. }) = &request.lead
                && released > 0
            {
                tx.prepare_cached(
                    "DELETE FROM consumer_seen WHERE publisher_id = ?1 AND key_sha256 IN (?2, ?3)
                        AND seen_at_unix_ms >= ?4",
                )
                .map_err(backend(what))?
                .execute(params![dedupe_pool, keys.phone_sha256, keys.email_sha256, request.started_at_unix_ms])
                .map_err(backend(what))?;
            }
            Ok(())
        })
    }

    /// Stores the answer of a request begun with [`SqliteStore::idempotency_begin`].
    pub fn idempotency_finish(&self, principal_id: &str, key: &str, status: u16, body: &str) -> Result<(), StoreError> {
        let what = "storing an idempotent answer";
        let (principal_id, key, body) = (principal_id.to_owned(), key.to_owned(), body.to_owned());
        self.write(what, move |tx| {
            tx.prepare_cached("UPDATE idempotency SET status = ?3, body = ?4 WHERE principal_id = ?1 AND key = ?2")
                .map_err(backend(what))?
                .execute(params![principal_id, key, status, body])
                .map_err(backend(what))?;
            Ok(())
        })
    }

    /// Forgets a request begun with [`SqliteStore::idempotency_begin`] that could not produce an answer worth
    /// keeping, so a retry runs it again.
    pub fn idempotency_abandon(&self, principal_id: &str, key: &str) -> Result<(), StoreError> {
        let what = "abandoning an idempotency key";
        let (principal_id, key) = (principal_id.to_owned(), key.to_owned());
        self.write(what, move |tx| {
            tx.prepare_cached("DELETE FROM idempotency WHERE principal_id = ?1 AND key = ?2 AND status IS NULL")
                .map_err(backend(what))?
                .execute(params![principal_id, key])
                .map_err(backend(what))?;
            Ok(())
        })
    }
}

/// Why an upload cannot become a version of an existing plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginConflict {
    #[error("the plugin is a {expected:?} plugin; the upload is a {found:?} plugin")]
    World { expected: World, found: World },
    #[error("the plugin belongs to someone else")]
    Owner,
    #[error(
        "the owner's plugins already hold {used_bytes} bytes; this upload of {upload_bytes} would pass the quota of {quota_bytes}"
    )]
    Quota { used_bytes: u64, upload_bytes: u64, quota_bytes: u64 },
}

/// An upload to store as a version of plugin `name` (validated and compiled by the caller).
#[derive(Debug, Clone)]
pub struct PluginUpload {
    pub name: String,
    pub world: World,
    /// Who owns the plugin when this upload creates it (a version of an existing plugin must match).
    pub owner_role: Role,
    pub owner_id: Option<String>,
    pub sha256: String,
    pub wasm: Vec<u8>,
    pub uploaded_by: String,
    pub at_unix_ms: i64,
}

/// What one owner may keep of its plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginQuota {
    /// Stored bytes, every version of every plugin the owner has.
    pub bytes: u64,
    /// Versions kept of each plugin (older ones are pruned once an upload is kept).
    pub versions_kept: u32,
}

/// A version deleted by [`SqliteStore::prune_plugin_versions`] or [`SqliteStore::delete_plugin_version`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedVersion {
    pub version: u32,
    /// The SHA-256 of its bytes when no version of any plugin keeps them any more (its compiled artifact can go).
    pub unused_sha256: Option<String>,
}

/// Why a plugin version was not deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VersionDeleteError {
    #[error("no such plugin version")]
    NotFound,
    #[error("the version is live: activate another version first")]
    Live,
}

/// Deletes one version inside `tx`.
fn delete_version_in(tx: &Transaction<'_>, name: &str, version: u32) -> Result<DeletedVersion, StoreError> {
    let what = "deleting a plugin version";
    let sha256: String = tx
        .prepare_cached("DELETE FROM plugin_version WHERE name = ?1 AND version = ?2 RETURNING sha256")
        .map_err(backend(what))?
        .query_row(params![name, version], |row| row.get(0))
        .map_err(backend(what))?;
    let still_kept = tx
        .prepare_cached("SELECT 1 FROM plugin_version WHERE sha256 = ?1")
        .map_err(backend(what))?
        .exists([&sha256])
        .map_err(backend(what))?;
    Ok(DeletedVersion { version, unused_sha256: (!still_kept).then_some(sha256) })
}

/// A version stored by [`SqliteStore::add_plugin_version`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddedVersion {
    pub version: u32,
    /// False when the same bytes were already a version of the plugin (that version is returned).
    pub new: bool,
}

/// The rows `config`'s verticals, publishers, buyers and campaigns are saved as.
fn entity_entries(config: &ExchangeConfig) -> Result<Vec<(EntityKind, String, String)>, StoreError> {
    let what = "saving the registry";
    let mut entries: Vec<(EntityKind, String, String)> = Vec::new();
    for v in &config.verticals {
        entries.push((EntityKind::Vertical, v.name.clone(), serde_json::to_string(v).map_err(json_error(what))?));
    }
    for p in &config.publishers {
        entries.push((EntityKind::Publisher, p.id.clone(), serde_json::to_string(p).map_err(json_error(what))?));
    }
    for b in &config.buyers {
        entries.push((EntityKind::Buyer, b.id.clone(), serde_json::to_string(b).map_err(json_error(what))?));
    }
    for c in &config.campaigns {
        entries.push((EntityKind::Campaign, c.id.clone(), serde_json::to_string(c).map_err(json_error(what))?));
    }
    Ok(entries)
}

/// Replaces the registry's entities with `entries` inside `tx`; existing ones keep their position.
fn save_entities_in(
    tx: &Transaction<'_>,
    entries: &[(EntityKind, String, String)],
    now_unix_ms: i64,
) -> Result<(), StoreError> {
    let what = "saving the registry";
    tx.execute("CREATE TEMP TABLE IF NOT EXISTS keep_entity (kind TEXT, id TEXT)", []).map_err(backend(what))?;
    tx.execute("DELETE FROM keep_entity", []).map_err(backend(what))?;
    for (kind, id, json) in entries {
        tx.prepare_cached(
            "INSERT INTO registry_entity (kind, id, position, config_json, updated_at_unix_ms)
                 VALUES (?1, ?2, (SELECT COALESCE(MAX(position), 0) + 1 FROM registry_entity WHERE kind = ?1), ?3, ?4)
                 ON CONFLICT (kind, id) DO UPDATE SET config_json = ?3, updated_at_unix_ms = ?4
                    WHERE config_json IS NOT ?3",
        )
        .map_err(backend(what))?
        .execute(params![kind.as_str(), id, json, now_unix_ms])
        .map_err(backend(what))?;
        tx.prepare_cached("INSERT INTO keep_entity (kind, id) VALUES (?1, ?2)")
            .map_err(backend(what))?
            .execute(params![kind.as_str(), id])
            .map_err(backend(what))?;
    }
    // What the new config no longer has is archived as it was, then removed.
    let gone =
        "NOT EXISTS (SELECT 1 FROM keep_entity k WHERE k.kind = registry_entity.kind AND k.id = registry_entity.id)";
    tx.execute(
        &format!(
            "INSERT INTO registry_archive (kind, id, config_json, archived_at_unix_ms)
                SELECT kind, id, config_json, ?1 FROM registry_entity WHERE {gone} ORDER BY kind, position"
        ),
        [now_unix_ms],
    )
    .map_err(backend(what))?;
    tx.execute(&format!("DELETE FROM registry_entity WHERE {gone}"), []).map_err(backend(what))?;
    tx.execute("DELETE FROM keep_entity", []).map_err(backend(what))?;
    Ok(())
}

/// [`SqliteStore::add_plugin_version`] inside `tx`.
fn add_version_in(
    tx: &Transaction<'_>,
    upload: &PluginUpload,
    quota: Option<PluginQuota>,
) -> Result<Result<AddedVersion, PluginConflict>, StoreError> {
    let what = "storing a plugin version";
    let PluginUpload { name, world, owner_role, owner_id, sha256, wasm, uploaded_by, at_unix_ms: now_unix_ms } = upload;
    let (name, world, owner_role, owner_id) = (name.as_str(), *world, *owner_role, owner_id.as_deref());
    let now_unix_ms = *now_unix_ms;
    match plugin_head(tx, name)? {
        None => {
            tx.prepare_cached(
                    "INSERT INTO plugin (name, world, owner_role, owner_id, created_at_unix_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(backend(what))?
                .execute(params![name, world.name(), owner_role.as_str(), owner_id, now_unix_ms])
                .map_err(backend(what))?;
        }
        Some(head) => {
            if head.world != world {
                return Ok(Err(PluginConflict::World { expected: head.world, found: world }));
            }
            if head.owner_role != owner_role || head.owner_id.as_deref() != owner_id {
                return Ok(Err(PluginConflict::Owner));
            }
        }
    }
    let existing: Option<u32> = tx
        .prepare_cached("SELECT version FROM plugin_version WHERE name = ?1 AND sha256 = ?2")
        .map_err(backend(what))?
        .query_row(params![name, sha256], |row| row.get(0))
        .optional()
        .map_err(backend(what))?;
    if let Some(version) = existing {
        return Ok(Ok(AddedVersion { version, new: false }));
    }
    if let Some(PluginQuota { bytes: quota_bytes, versions_kept }) = quota {
        // The versions of this plugin that pruning deletes once the upload is kept do not count.
        let used: i64 = tx
            .prepare_cached(
                "SELECT COALESCE(SUM(v.size_bytes), 0) FROM plugin_version v JOIN plugin p ON p.name = v.name
                     WHERE p.owner_role = ?1 AND p.owner_id IS ?2
                       AND NOT (v.name = ?3 AND v.version IS NOT p.active_version AND v.version NOT IN
                           (SELECT version FROM plugin_version WHERE name = ?3 ORDER BY version DESC LIMIT ?4))",
            )
            .map_err(backend(what))?
            .query_row(params![owner_role.as_str(), owner_id, name, versions_kept.saturating_sub(1)], |row| row.get(0))
            .map_err(backend(what))?;
        let (used_bytes, upload_bytes) = (used.max(0) as u64, wasm.len() as u64);
        if used_bytes + upload_bytes > quota_bytes {
            return Ok(Err(PluginConflict::Quota { used_bytes, upload_bytes, quota_bytes }));
        }
    }
    let version: u32 = tx
        .prepare_cached("SELECT COALESCE(MAX(version), 0) + 1 FROM plugin_version WHERE name = ?1")
        .map_err(backend(what))?
        .query_row([name], |row| row.get(0))
        .map_err(backend(what))?;
    tx.prepare_cached(
        "INSERT INTO plugin_version (name, version, sha256, size_bytes, wasm, uploaded_by, uploaded_at_unix_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .map_err(backend(what))?
    .execute(params![name, version, sha256, wasm.len() as i64, wasm, uploaded_by, now_unix_ms])
    .map_err(backend(what))?;
    Ok(Ok(AddedVersion { version, new: true }))
}

/// The version to undo back to, given a plugin's activations in order, the versions still `kept` and the `active` one.
///
/// The activations are replayed as a stack of what was live: activating a version the stack holds just below the top
/// (or below only versions since deleted) undoes the activations above it — that is what a rollback does, and
/// activating the previous version by hand means the same — any other activation goes on top. The target is the
/// nearest kept version below the top: so v1, v2, v3 rolls back to v2, then to v1, then has nothing to go back to.
fn undo_target(activations: &[u32], kept: &HashSet<u32>, active: u32) -> Option<u32> {
    let mut live: Vec<u32> = Vec::new();
    for &version in activations {
        // Activating the live version again (the same bytes uploaded again, a repeated request) changes nothing.
        if live.last() == Some(&version) {
            continue;
        }
        let mut undone_to = None;
        for (at, &earlier) in live.iter().enumerate().rev().skip(1) {
            if earlier == version {
                undone_to = Some(at);
                break;
            }
            if kept.contains(&earlier) {
                break;
            }
        }
        match undone_to {
            Some(at) => live.truncate(at + 1),
            None => live.push(version),
        }
    }
    if live.last() != Some(&active) {
        live.push(active);
    }
    live.iter().rev().skip(1).find(|v| **v != active && kept.contains(v)).copied()
}

/// Makes `version` the live version of `name` and records the activation, inside `tx`.
fn activate_in(tx: &Transaction<'_>, name: &str, version: u32, by: &str, now_unix_ms: i64) -> Result<(), StoreError> {
    let what = "activating a plugin version";
    tx.prepare_cached("UPDATE plugin SET active_version = ?2 WHERE name = ?1")
        .map_err(backend(what))?
        .execute(params![name, version])
        .map_err(backend(what))?;
    tx.prepare_cached(
        "INSERT INTO plugin_activation (name, version, activated_by, activated_at_unix_ms) VALUES (?1, ?2, ?3, ?4)",
    )
    .map_err(backend(what))?
    .execute(params![name, version, by, now_unix_ms])
    .map_err(backend(what))?;
    Ok(())
}

fn entity_rows(tx: &Transaction<'_>, kind: EntityKind) -> Result<Vec<String>, StoreError> {
    let what = "reading the registry";
    tx.prepare_cached("SELECT config_json FROM registry_entity WHERE kind = ?1 ORDER BY position")
        .map_err(backend(what))?
        .query_map([kind.as_str()], |row| row.get(0))
        .map_err(backend(what))?
        .collect::<Result<_, _>>()
        .map_err(backend(what))
}

/// A `plugin` row as read: world, owner role, owner id, active version, disabled.
type PluginRow = (String, String, Option<String>, Option<u32>, bool);

fn plugin_head(tx: &Transaction<'_>, name: &str) -> Result<Option<PluginRecord>, StoreError> {
    let what = "reading a plugin";
    let row: Option<PluginRow> = tx
        .prepare_cached("SELECT world, owner_role, owner_id, active_version, disabled FROM plugin WHERE name = ?1")
        .map_err(backend(what))?
        .query_row([name], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)))
        .optional()
        .map_err(backend(what))?;
    let Some((world, owner_role, owner_id, active_version, disabled)) = row else { return Ok(None) };
    let world: World = world
        .parse()
        .map_err(|_| StoreError::corrupt("reading the registry", format!("unknown plugin world {world:?}")))?;
    Ok(Some(PluginRecord {
        name: name.to_owned(),
        world,
        owner_role: Role::parse(&owner_role)?,
        owner_id,
        active_version,
        disabled,
        versions: Vec::new(),
    }))
}

fn with_versions(tx: &Transaction<'_>, mut head: PluginRecord) -> Result<PluginRecord, StoreError> {
    let what = "listing plugin versions";
    head.versions = tx
        .prepare_cached(
            "SELECT version, sha256, size_bytes, uploaded_by, uploaded_at_unix_ms FROM plugin_version
             WHERE name = ?1 ORDER BY version",
        )
        .map_err(backend(what))?
        .query_map([&head.name], |row| {
            Ok(PluginVersion {
                version: row.get(0)?,
                sha256: row.get(1)?,
                size_bytes: row.get::<_, i64>(2)?.max(0) as u64,
                uploaded_by: row.get(3)?,
                uploaded_at_unix_ms: row.get(4)?,
            })
        })
        .map_err(backend(what))?
        .collect::<Result<_, _>>()
        .map_err(backend(what))?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::undo_target;

    fn kept(versions: &[u32]) -> HashSet<u32> {
        versions.iter().copied().collect()
    }

    #[test]
    fn each_rollback_goes_one_activation_further_back() {
        let all = kept(&[1, 2, 3]);
        assert_eq!(undo_target(&[1, 2, 3], &all, 3), Some(2));
        // The first rollback made 2 live again: the next goes to 1, not forward to 3.
        assert_eq!(undo_target(&[1, 2, 3, 2], &all, 2), Some(1));
        assert_eq!(undo_target(&[1, 2, 3, 2, 1], &all, 1), None);
        // A new activation after a rollback goes on top: undoing it comes back to where the rollback left off.
        assert_eq!(undo_target(&[1, 2, 3, 2, 3], &all, 3), Some(2));
        assert_eq!(undo_target(&[1, 2, 1, 3], &all, 3), Some(1));
        // The live version activated again (its bytes uploaded again, two rollbacks at once) is one activation.
        assert_eq!(undo_target(&[1, 2, 3, 3], &all, 3), Some(2));
        assert_eq!(undo_target(&[1, 2, 3, 3, 2], &all, 2), Some(1));
        assert_eq!(undo_target(&[1, 2, 3, 2, 2], &all, 2), Some(1));
        assert_eq!(undo_target(&[1, 2, 3, 2, 2, 1], &all, 1), None);
    }

    #[test]
    fn deleted_versions_are_stepped_over() {
        // 2 was deleted: 3 rolls back to 1, and then there is nothing left to go back to.
        assert_eq!(undo_target(&[1, 2, 3], &kept(&[1, 3]), 3), Some(1));
        assert_eq!(undo_target(&[1, 2, 3, 1], &kept(&[1, 3]), 1), None);
        assert_eq!(undo_target(&[4, 5], &kept(&[4, 5]), 5), Some(4));
        assert_eq!(undo_target(&[1, 2, 3, 4, 5, 4], &kept(&[4, 5]), 4), None);
        assert_eq!(undo_target(&[], &kept(&[1]), 1), None);
    }
}
