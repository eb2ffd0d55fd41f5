//! Loading: the first-party plugins load with their world, contract version and imports; every malformed, foreign
//! or over-reaching upload is refused with its own typed error and the runtime keeps serving; the artifact cache
//! makes a second load a cache hit and never trusts a corrupt file.

mod common;

use common::{NOW, fixture, ping, plugin, runtime, wasm};
use pingpost::model::{BidContext, Decision};
use pingpost::plugin::{LoadError, Runtime, RuntimeConfig, World};

const CONTRACT_IMPORTS: [&str; 2] = ["pingpost:plugin/types@0.2.0", "pingpost:plugin/host@0.2.0"];

fn load_error(name: &str) -> LoadError {
    runtime().load(&fixture(name)).err().unwrap_or_else(|| panic!("fixture {name} was accepted"))
}

/// After a refusal, a good plugin still loads and answers.
fn good_plugin_still_answers() {
    let buyer = runtime().buyer(plugin("hostile-buyer"), "control", "ok").expect("a buyer");
    let report = buyer.bid(&ping(), &BidContext::at(NOW)).expect("the control buyer answers");
    assert_eq!(report.value, Decision::Bid(pingpost::model::Bid { price_cents: 100, buyer_ref: None, ttl_ms: None }));
}

#[test]
fn a_buyer_core_module_loads_as_a_buyer_of_the_sdks_contract_importing_only_the_contract() {
    let p = plugin("config-buyer");
    assert_eq!(p.world(), World::Buyer);
    assert_eq!(p.contract_version(), "0.2.0");
    let mut imports = p.imports().to_vec();
    imports.sort();
    let mut expected = CONTRACT_IMPORTS.map(String::from).to_vec();
    expected.sort();
    assert_eq!(imports, expected);
    assert!(p.was_core_module());
    assert_eq!(p.size_bytes(), wasm("config-buyer").len());
    assert_eq!(p.id().len(), 64, "a hex sha256");
}

#[test]
fn a_redactor_core_module_loads_as_a_redactor() {
    let p = plugin("standard-redactor");
    assert_eq!(p.world(), World::Redactor);
    assert_eq!(p.contract_version(), "0.2.0");
}

#[test]
fn plugins_of_the_released_contract_0_1_0_still_load_importing_its_interfaces() {
    for (package, world) in [("flat-buyer-0-1", World::Buyer), ("plain-redactor-0-1", World::Redactor)] {
        let p = plugin(package);
        assert_eq!((p.world(), p.contract_version()), (world, "0.1.0"), "{package}");
        let contract = ["pingpost:plugin/host@0.1.0", "pingpost:plugin/types@0.1.0"];
        assert!(p.imports().iter().all(|import| contract.contains(&import.as_str())), "{package}: {:?}", p.imports());
    }
}

#[test]
fn an_already_encoded_component_is_accepted_as_it_is() {
    let core = wasm("scorecard-buyer");
    let component = wit_component::ComponentEncoder::default()
        .module(&core)
        .and_then(|mut encoder| encoder.encode())
        .expect("wit-component encodes the plugin");
    let p = runtime().load(&component).expect("the component loads");
    assert_eq!(p.world(), World::Buyer);
    assert!(!p.was_core_module());
}

#[test]
fn an_empty_file_is_refused_as_empty() {
    assert_eq!(load_error("empty"), LoadError::Empty);
    good_plugin_still_answers();
}

#[test]
fn random_bytes_are_refused_as_not_wasm() {
    assert_eq!(load_error("random-bytes"), LoadError::NotWasm);
    good_plugin_still_answers();
}

#[test]
fn a_truncated_plugin_is_refused_as_malformed() {
    assert!(matches!(load_error("truncated"), LoadError::Malformed { .. }), "{:?}", load_error("truncated"));
    good_plugin_still_answers();
}

#[test]
fn a_core_module_without_the_contract_is_refused_with_a_hint_to_use_the_sdk() {
    let err = load_error("core-module");
    assert_eq!(err, LoadError::NotAPlugin);
    assert!(err.to_string().contains("build it with pingpost-sdk"), "{err}");
    good_plugin_still_answers();
}

#[test]
fn a_component_of_another_world_is_refused_naming_its_exports() {
    match load_error("wrong-world") {
        LoadError::WrongWorld { exports } => assert_eq!(exports, ["acme:other/thing@1.0.0"]),
        other => panic!("expected WrongWorld, got {other:?}"),
    }
    good_plugin_still_answers();
}

#[test]
fn a_component_of_another_major_contract_version_is_refused_naming_both_versions() {
    let err = load_error("wrong-version");
    assert_eq!(err, LoadError::ContractVersion { plugin: "2.0.0".into(), host: "0.1.0 or 0.2.0".into() });
    let message = err.to_string();
    assert!(message.contains("2.0.0") && message.contains("0.1.0 or 0.2.0"), "{message}");
    good_plugin_still_answers();
}

#[test]
fn a_component_importing_wasi_sockets_is_refused_naming_the_import() {
    match load_error("wasi-sockets") {
        LoadError::ForbiddenImport { name } => assert!(name.starts_with("wasi:sockets/"), "{name}"),
        other => panic!("expected ForbiddenImport, got {other:?}"),
    }
    good_plugin_still_answers();
}

#[test]
fn a_component_importing_wasi_filesystem_is_refused_naming_the_import() {
    match load_error("wasi-filesystem") {
        LoadError::ForbiddenImport { name } => assert!(name.starts_with("wasi:filesystem/"), "{name}"),
        other => panic!("expected ForbiddenImport, got {other:?}"),
    }
    good_plugin_still_answers();
}

#[test]
fn a_buyer_cannot_be_used_as_a_redactor() {
    let err = runtime().redactor(plugin("config-buyer"), "pub-1", "").err().expect("refused");
    assert_eq!(err, LoadError::WorldMismatch { expected: "redactor", found: "buyer" });
}

fn cached_config(dir: &std::path::Path) -> RuntimeConfig {
    RuntimeConfig { cache_dir: Some(dir.to_owned()), ..RuntimeConfig::default() }
}

#[test]
fn a_second_load_by_a_fresh_runtime_on_the_same_cache_dir_comes_from_the_cache() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = wasm("scorecard-buyer");
    let first = Runtime::new(cached_config(dir.path())).expect("runtime").load(&bytes).expect("loads");
    assert!(!first.load_report().from_cache);
    assert!(!first.load_report().compile_time.is_zero());

    let second = Runtime::new(cached_config(dir.path())).expect("runtime").load(&bytes).expect("loads");
    assert!(second.load_report().from_cache);
    assert!(second.load_report().compile_time.is_zero());
    assert_eq!(second.id(), first.id());
}

#[test]
fn a_cached_plugin_answers_like_a_compiled_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = wasm("hostile-buyer");
    let _ = Runtime::new(cached_config(dir.path())).expect("runtime").load(&bytes).expect("compiles");
    let runtime = Runtime::new(cached_config(dir.path())).expect("runtime");
    let cached = runtime.load(&bytes).expect("loads from cache");
    assert!(cached.load_report().from_cache);
    let report = runtime.buyer(cached, "c", "ok").expect("buyer").bid(&ping(), &BidContext::at(NOW));
    assert_eq!(report.expect("answers").value.price_cents(), Some(100));
}

#[test]
fn a_corrupt_cache_file_is_ignored_recompiled_and_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = wasm("hostile-buyer");
    Runtime::new(cached_config(dir.path())).expect("runtime").load(&bytes).expect("compiles");
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("cache dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    // Flip one byte in the middle of the artifact: the file still looks like an artifact to a casual reader.
    let mut artifact = std::fs::read(&files[0]).expect("read");
    let middle = artifact.len() / 2;
    artifact[middle] ^= 0xff;
    std::fs::write(&files[0], &artifact).expect("write");

    let reloaded = Runtime::new(cached_config(dir.path())).expect("runtime").load(&bytes).expect("recompiles");
    assert!(!reloaded.load_report().from_cache, "a corrupt artifact must not be used");
    let again = Runtime::new(cached_config(dir.path())).expect("runtime").load(&bytes).expect("loads");
    assert!(again.load_report().from_cache, "the recompiled artifact replaced the corrupt one");
}

#[test]
fn an_artifact_compiled_without_fuel_is_not_offered_to_a_fuel_engine() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = wasm("hostile-buyer");
    Runtime::new(cached_config(dir.path())).expect("runtime").load(&bytes).expect("compiles");
    let fuel = RuntimeConfig {
        limits: pingpost::plugin::Limits { fuel: Some(1_000_000), ..Default::default() },
        ..cached_config(dir.path())
    };
    let loaded = Runtime::new(fuel).expect("runtime").load(&bytes).expect("compiles for the fuel engine");
    assert!(!loaded.load_report().from_cache);
}

#[test]
fn load_all_loads_uploads_in_order_and_fails_only_the_bad_ones() {
    let (good, scorecard, bad) = (wasm("hostile-buyer"), wasm("scorecard-buyer"), fixture("random-bytes"));
    let results = runtime().load_all(&[&good, &bad, &scorecard]);
    assert_eq!(results.len(), 3);
    assert!(results[0].as_ref().is_ok_and(|p| p.size_bytes() == good.len()));
    assert_eq!(results[1].as_ref().err(), Some(&LoadError::NotWasm));
    assert!(results[2].as_ref().is_ok_and(|p| p.size_bytes() == scorecard.len()));
}
