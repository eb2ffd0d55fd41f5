//! The exchange file (`exchange.toml`): the engine's [`ExchangeConfig`] written as TOML, plus two conveniences for
//! people writing it by hand, so an exchange can be described in one folder and run with `pingpost auction`:
//!
//! - a `[plugins]` table naming `.wasm` files (`config-buyer = "plugins/config_buyer.wasm"`), so campaigns and
//!   publishers refer to a plugin by name; a reference that is not a name there is a path to a `.wasm` file;
//! - `config_file = "configs/x.json"` in a Wasm campaign's `target` (and `redactor_config_file` in a publisher) in
//!   place of an inline `config`: the file's text is passed to the plugin as it is.
//!
//! Every path is relative to the folder of the exchange file. Every error names the file, the table and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pingpost_runtime::{Plugin, Runtime};

use super::build::ExchangeBuilder;
use super::config::{ExchangeConfig, STANDARD_REDACTOR};
use super::engine::{Exchange, ExchangeParts};

/// Why an exchange file could not be loaded: always names the file, and where in it the problem is.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}{message}", file.display(), at.as_deref().map(|at| format!("{at}: ")).unwrap_or_default())]
pub struct ExchangeFileError {
    /// The exchange file.
    pub file: PathBuf,
    /// The table and field, e.g. `campaigns[3] (id "gulfstream-ppo").target.kind`; `None` for the file as a whole.
    pub at: Option<String>,
    pub message: String,
}

/// An exchange file, parsed: the engine's configuration and where each plugin it names lives.
#[derive(Debug, Clone)]
pub struct ExchangeFile {
    /// The file it was read from.
    pub path: PathBuf,
    pub config: ExchangeConfig,
    /// Every plugin reference in `config` and the `.wasm` file it resolves to.
    pub plugin_files: BTreeMap<String, PathBuf>,
}

impl ExchangeFile {
    /// Reads and parses an exchange file, reading the config files it names. Plugin files are only resolved here;
    /// [`ExchangeFile::load_plugins`] reads them.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, ExchangeFileError> {
        let path = path.as_ref().to_path_buf();
        let text = std::fs::read_to_string(&path).map_err(|e| error(&path, None, format!("cannot read: {e}")))?;
        Self::parse(&path, &text)
    }

    /// Parses the text of an exchange file that lives at `path` (relative paths in it start from `path`'s folder).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ExchangeFileError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| error(path, None, syntax(&e, text)))?;
        Self::from_table(path, table)
    }

    /// Parses an exchange file's TOML table (read from `path`; a caller that keeps other tables in the same file, as
    /// `pingpost serve` does, removes them first).
    pub fn from_table(path: &Path, mut table: toml::Table) -> Result<Self, ExchangeFileError> {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let named = take_plugins_table(path, &base, &mut table)?;
        inline_config_files(path, &base, &mut table)?;
        let ids = ids_by_position(&table);
        let config: ExchangeConfig = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let at = describe_path(&e.path().to_string(), &ids);
            error(path, Some(at), e.into_inner().message())
        })?;
        let mut plugin_files = BTreeMap::new();
        for reference in config.plugin_refs() {
            let file = match named.get(&reference) {
                Some(file) => file.clone(),
                None if reference == STANDARD_REDACTOR => {
                    return Err(error(
                        path,
                        Some("plugins".into()),
                        format!(
                            "the publishers use the `{STANDARD_REDACTOR}` redactor: name its .wasm file here, e.g. `{STANDARD_REDACTOR} = \"plugins/standard_redactor.wasm\"`"
                        ),
                    ));
                }
                None => base.join(&reference),
            };
            plugin_files.insert(reference, file);
        }
        Ok(ExchangeFile { path: path.to_path_buf(), config, plugin_files })
    }

    /// Reads every plugin file and loads it into `runtime` (validated and compiled), keyed by its reference.
    pub fn load_plugins(&self, runtime: &Runtime) -> Result<BTreeMap<String, Arc<Plugin>>, ExchangeFileError> {
        let mut plugins = BTreeMap::new();
        for (reference, file) in &self.plugin_files {
            let at = Some(format!("plugin {reference:?}"));
            let bytes = std::fs::read(file)
                .map_err(|e| error(&self.path, at.clone(), format!("cannot read {}: {e}", file.display())))?;
            let plugin = runtime
                .load(&bytes)
                .map_err(|e| error(&self.path, at.clone(), format!("{} was refused: {e}", file.display())))?;
            plugins.insert(reference.clone(), plugin);
        }
        Ok(plugins)
    }

    /// Loads the plugins into `runtime` and builds the exchange with the injected `parts`.
    pub fn build(&self, runtime: &Runtime, parts: ExchangeParts) -> Result<Exchange, ExchangeFileError> {
        let builder = self
            .load_plugins(runtime)?
            .into_iter()
            .fold(ExchangeBuilder::new(self.config.clone()), |builder, (reference, plugin)| {
                builder.plugin(reference, plugin)
            });
        builder.build(runtime, parts).map_err(|e| error(&self.path, None, e.to_string()))
    }
}

/// An error on one line: messages from toml and the runtime may span several.
fn error(file: &Path, at: Option<String>, message: impl AsRef<str>) -> ExchangeFileError {
    let message = message.as_ref().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    ExchangeFileError { file: file.to_path_buf(), at, message }
}

/// A TOML syntax error on one line: toml's own message spans several lines with a source excerpt.
pub fn syntax(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim();
    match e.span().and_then(|span| text.get(..span.start)) {
        Some(before) => {
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("invalid TOML at line {line}, column {column}: {message}")
        }
        None => format!("invalid TOML: {message}"),
    }
}

/// Removes the `[plugins]` table (it is not part of the engine's configuration) and resolves its paths.
fn take_plugins_table(
    file: &Path,
    base: &Path,
    table: &mut toml::Table,
) -> Result<BTreeMap<String, PathBuf>, ExchangeFileError> {
    let Some(plugins) = table.remove("plugins") else {
        return Ok(BTreeMap::new());
    };
    let toml::Value::Table(plugins) = plugins else {
        return Err(error(file, Some("plugins".into()), "expected a table of plugin names to .wasm paths"));
    };
    plugins
        .into_iter()
        .map(|(name, value)| match value {
            toml::Value::String(p) => Ok((name, base.join(p))),
            other => Err(error(
                file,
                Some(format!("plugins.{name}")),
                format!("expected a path string, found {}", other.type_str()),
            )),
        })
        .collect()
}

/// Replaces each `config_file` (in campaign targets) and `redactor_config_file` (in publishers) by the file's text.
fn inline_config_files(file: &Path, base: &Path, table: &mut toml::Table) -> Result<(), ExchangeFileError> {
    for (array, inner, from, to) in [
        ("campaigns", Some("target"), "config_file", "config"),
        ("publishers", None, "redactor_config_file", "redactor_config"),
    ] {
        let Some(toml::Value::Array(items)) = table.get_mut(array) else { continue };
        for (index, item) in items.iter_mut().enumerate() {
            let id = item.get("id").and_then(toml::Value::as_str).map(str::to_owned);
            let here = |field: &str| {
                let mut at = format!("{array}[{index}]");
                if let Some(id) = &id {
                    at.push_str(&format!(" (id {id:?})"));
                }
                if let Some(inner) = inner {
                    at.push('.');
                    at.push_str(inner);
                }
                format!("{at}.{field}")
            };
            let holder = match inner {
                Some(inner) => item.get_mut(inner),
                None => Some(item),
            };
            let Some(toml::Value::Table(holder)) = holder else { continue };
            let Some(value) = holder.remove(from) else { continue };
            let toml::Value::String(relative) = value else {
                return Err(error(
                    file,
                    Some(here(from)),
                    format!("expected a path string, found {}", value.type_str()),
                ));
            };
            if holder.contains_key(to) {
                return Err(error(file, Some(here(from)), format!("give `{from}` or `{to}`, not both")));
            }
            let config_path = base.join(&relative);
            let text = std::fs::read_to_string(&config_path)
                .map_err(|e| error(file, Some(here(from)), format!("cannot read {}: {e}", config_path.display())))?;
            holder.insert(to.to_owned(), toml::Value::String(text));
        }
    }
    Ok(())
}

/// The `id` of each entry of the `publishers`, `buyers` and `campaigns` arrays, to name them in errors.
fn ids_by_position(table: &toml::Table) -> BTreeMap<(String, usize), String> {
    let mut ids = BTreeMap::new();
    for array in ["publishers", "buyers", "campaigns"] {
        if let Some(toml::Value::Array(items)) = table.get(array) {
            for (index, item) in items.iter().enumerate() {
                if let Some(id) = item.get("id").and_then(toml::Value::as_str) {
                    ids.insert((array.to_owned(), index), id.to_owned());
                }
            }
        }
    }
    ids
}

/// `campaigns[3].target.kind` → `campaigns[3] (id "gulfstream-ppo").target.kind`.
fn describe_path(path: &str, ids: &BTreeMap<(String, usize), String>) -> String {
    let parsed = path.split_once('[').and_then(|(array, rest)| {
        let (index, tail) = rest.split_once(']')?;
        Some((array, index.parse::<usize>().ok()?, tail))
    });
    match parsed {
        Some((array, index, tail)) => match ids.get(&(array.to_owned(), index)) {
            Some(id) => format!("{array}[{index}] (id {id:?}){tail}"),
            None => path.to_owned(),
        },
        None => path.to_owned(),
    }
}
