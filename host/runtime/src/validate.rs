//! Checks a compiled component against the contract: which world it implements (its one contract export), that its
//! contract version is the host's major version, and that it imports nothing but the contract's own interfaces.
//! Each refusal names what is wrong.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::error::LoadError;

const BIDDER: &str = "pingpost:plugin/bidder";
const REDACTION: &str = "pingpost:plugin/redaction";
/// The interfaces a plugin may import.
const ALLOWED_IMPORTS: &[&str] = &["pingpost:plugin/host", "pingpost:plugin/types"];

/// Which contract world a plugin implements.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, strum::IntoStaticStr, strum::EnumString, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum World {
    /// Exports `bidder`: filters and prices pings.
    Buyer,
    /// Exports `redaction`: turns a lead into a ping.
    Redactor,
}

impl World {
    /// The world's name in the WIT.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What validation learned about a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    pub world: World,
    /// The plugin's contract version, e.g. `0.1.0`.
    pub version: String,
    /// The host's version it is compatible with: which bindings run it.
    pub host_version: &'static str,
    /// The names of everything the plugin imports.
    pub imports: Vec<String>,
}

/// Validates `component` against the contract versions the host runs (`host_versions`, e.g. `["0.1.0", "0.2.0"]`):
/// its export and every import must be of one version compatible with one of them.
pub fn validate(engine: &Engine, component: &Component, host_versions: &[&'static str]) -> Result<Contract, LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_owned()).collect();
    let mut found = exports.iter().filter_map(|name| {
        let (interface, version) = name.split_once('@')?;
        let world = match interface {
            BIDDER => World::Buyer,
            REDACTION => World::Redactor,
            _ => return None,
        };
        Some((world, version))
    });
    let (world, version) = match (found.next(), found.next()) {
        (Some(one), None) => one,
        _ => return Err(LoadError::WrongWorld { exports }),
    };
    let host_version =
        host_versions.iter().copied().find(|host| check_version(version, host).is_ok()).ok_or_else(|| {
            LoadError::ContractVersion { plugin: version.to_owned(), host: host_versions.join(" or ") }
        })?;

    let imports: Vec<String> = ty.imports(engine).map(|(name, _)| name.to_owned()).collect();
    for name in &imports {
        let (interface, version) = name.split_once('@').unwrap_or((name.as_str(), ""));
        if !ALLOWED_IMPORTS.contains(&interface) {
            return Err(LoadError::ForbiddenImport { name: name.clone() });
        }
        check_version(version, host_version)?;
    }
    Ok(Contract { world, version: version.to_owned(), host_version, imports })
}

/// Refuses a plugin version whose semver-major part differs from the host's (for 0.x the minor counts as major).
pub fn check_version(plugin: &str, host: &str) -> Result<(), LoadError> {
    let refuse = || LoadError::ContractVersion { plugin: plugin.to_owned(), host: host.to_owned() };
    let (Some(p), Some(h)) = (compat_key(plugin), compat_key(host)) else {
        return Err(refuse());
    };
    if p == h { Ok(()) } else { Err(refuse()) }
}

/// The part of a semver version that must match for compatibility: `(major, 0)` for 1.x and later, `(0, minor)` for
/// 0.x.
fn compat_key(version: &str) -> Option<(u64, u64)> {
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let major: u64 = parts.next()?.parse().ok()?;
    let minor: u64 = parts.next()?.parse().ok()?;
    let _patch: u64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(if major == 0 { (0, minor) } else { (major, 0) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_x_versions_are_compatible_only_within_the_same_minor() {
        assert!(check_version("0.1.7", "0.1.0").is_ok());
        assert!(check_version("0.2.0", "0.1.0").is_err());
    }

    #[test]
    fn versions_from_one_on_are_compatible_within_the_same_major() {
        assert!(check_version("1.4.0", "1.0.2").is_ok());
        assert!(check_version("2.0.0", "1.9.9").is_err());
    }

    #[test]
    fn a_malformed_version_is_refused_naming_both_versions() {
        let err = check_version("banana", "0.1.0").unwrap_err();
        assert_eq!(err, LoadError::ContractVersion { plugin: "banana".into(), host: "0.1.0".into() });
    }
}
