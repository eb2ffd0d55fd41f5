//! The exchange's crates, lowest first: each may depend only on the crates below it, so nothing lower depends on
//! anything higher. The compiler holds each crate to the dependencies its manifest names; this test holds the
//! manifests to the order.

use std::path::Path;

/// Each crate of the exchange (its folder under `host/`, its package name) and the exchange crates it may depend on.
const LAYERS: &[(&str, &str, &[&str])] = &[
    ("model", "pingpost-model", &[]),
    ("runtime", "pingpost-runtime", &["pingpost-model"]),
    ("engine", "pingpost-engine", &["pingpost-model", "pingpost-runtime"]),
    ("sqlite", "pingpost-sqlite", &["pingpost-model", "pingpost-runtime", "pingpost-engine"]),
    ("service", "pingpost-service", &["pingpost-model", "pingpost-runtime", "pingpost-engine", "pingpost-sqlite"]),
    (
        ".",
        "pingpost",
        &["pingpost-model", "pingpost-runtime", "pingpost-engine", "pingpost-sqlite", "pingpost-service"],
    ),
];

/// The exchange crates (`pingpost-*` but not the SDK, whose guests are built for Wasm) a manifest's
/// `[dependencies]` names.
fn exchange_dependencies(manifest: &toml::Table) -> Vec<String> {
    let exchange: Vec<&str> = LAYERS.iter().map(|(_, package, _)| *package).collect();
    manifest
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .map(|deps| deps.keys().filter(|name| exchange.contains(&name.as_str())).cloned().collect())
        .unwrap_or_default()
}

#[test]
fn no_crate_depends_on_a_crate_above_it() {
    let host = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut violations = Vec::new();
    for (folder, package, allowed) in LAYERS {
        let path = host.join(folder).join("Cargo.toml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reads {}: {e}", path.display()));
        let manifest: toml::Table = toml::from_str(&text).expect("a manifest is TOML");
        let name = manifest["package"]["name"].as_str().expect("a package name");
        assert_eq!(name, *package, "{} names its package", path.display());
        for dependency in exchange_dependencies(&manifest) {
            if !allowed.contains(&dependency.as_str()) {
                violations.push(format!("{package} depends on {dependency}"));
            }
        }
    }
    assert!(violations.is_empty(), "upward dependencies:\n{}", violations.join("\n"));
}

#[test]
fn every_exchange_crate_is_in_the_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("Cargo.toml");
    let workspace: toml::Table = toml::from_str(&std::fs::read_to_string(root).expect("reads the workspace manifest"))
        .expect("the workspace manifest is TOML");
    let members: Vec<&str> = workspace["workspace"]["members"]
        .as_array()
        .expect("workspace members")
        .iter()
        .filter_map(toml::Value::as_str)
        .filter(|member| *member == "host" || member.starts_with("host/"))
        .collect();
    let ordered: Vec<String> = LAYERS
        .iter()
        .map(|(folder, _, _)| if *folder == "." { "host".to_owned() } else { format!("host/{folder}") })
        .collect();
    assert_eq!(members.len(), ordered.len(), "the host crates {members:?} are the layers {ordered:?}");
    for member in members {
        assert!(ordered.iter().any(|o| o == member), "{member} has a place in the layer order");
    }
}
