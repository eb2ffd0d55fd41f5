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
        ("config-buyer", "pingpost:plugin/bidder@0.1.0"),
        ("scorecard-buyer", "pingpost:plugin/bidder@0.1.0"),
        ("standard-redactor", "pingpost:plugin/redaction@0.1.0"),
        ("hostile-buyer", "pingpost:plugin/bidder@0.1.0"),
    ];
    for (plugin, export) in cases {
        let module = pingpost_plugins::wasm_bytes(plugin).unwrap_or_else(|e| panic!("{plugin}: {e:#}"));
        assert_eq!(module[..8], [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], "{plugin} is a core module");

        let component = ComponentEncoder::default()
            .validate(true)
            .module(&module)
            .and_then(|mut encoder| encoder.encode())
            .unwrap_or_else(|e| panic!("{plugin} does not encode: {e:#}"));

        let (imports, exports) = component_names(&component);
        assert_eq!(exports, [export], "{plugin}");
        for import in &imports {
            assert!(
                import == "pingpost:plugin/types@0.1.0" || import == "pingpost:plugin/host@0.1.0",
                "{plugin} imports {import}, outside the contract"
            );
        }
    }
}
