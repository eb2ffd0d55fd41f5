//! The plugins built from this repository are what the host expects an upload to be: core modules that carry their
//! component type, which wit-component (the host's version) turns into components of the contract's worlds with
//! no import outside the contract.

use wit_component::ComponentEncoder;

/// Top-level import and export names of a component.
fn component_names(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    pingpost_plugins::component_names(bytes).expect("the component parses")
}

#[test]
fn every_plugin_builds_to_a_core_module_that_encodes_as_a_contract_component() {
    let cases = [
        ("config-buyer", "bidder", "0.2.0"),
        ("scorecard-buyer", "bidder", "0.2.0"),
        ("standard-redactor", "redaction", "0.2.0"),
        ("hostile-buyer", "bidder", "0.2.0"),
        ("flat-buyer-0-1", "bidder", "0.1.0"),
        ("plain-redactor-0-1", "redaction", "0.1.0"),
    ];
    assert_eq!(cases.len(), pingpost_plugins::PLUGINS.len(), "every plugin is a case");
    for (plugin, interface, version) in cases {
        let module = pingpost_plugins::wasm_bytes(plugin).unwrap_or_else(|e| panic!("{plugin}: {e:#}"));
        assert_eq!(module[..8], [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], "{plugin} is a core module");

        let component = ComponentEncoder::default()
            .validate(true)
            .module(&module)
            .and_then(|mut encoder| encoder.encode())
            .unwrap_or_else(|e| panic!("{plugin} does not encode: {e:#}"));

        let (imports, exports) = component_names(&component);
        assert_eq!(exports, [format!("pingpost:plugin/{interface}@{version}")], "{plugin}");
        for import in &imports {
            assert!(
                *import == format!("pingpost:plugin/types@{version}")
                    || *import == format!("pingpost:plugin/host@{version}"),
                "{plugin} imports {import}, outside its contract"
            );
        }
    }
}
