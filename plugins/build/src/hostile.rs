//! Hostile fixtures that are not Rust crates: malformed, foreign or over-reaching Wasm, for the host's load-time
//! checks. The Rust hostile plugin (`hostile-buyer`, runtime misbehaviour) is built by [`crate::wasm`] like any other.
//!
//! The component fixtures are real components, encoded with `wit-component` (the host's version) from the WIT in
//! `plugins/hostile/wit/` around a dummy core module whose functions trap if ever called: they exist to be refused.

use anyhow::{Context, Result, bail};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::{ManglingAndAbi, Resolve};

/// Every fixture [`hostile_fixture`] makes, by name, with what it is.
pub const HOSTILE_FIXTURES: &[(&str, &str)] = &[
    ("core-module", "a plain core Wasm module with no pingpost component type (plugins/hostile/core-module.wat)"),
    ("wrong-world", "a component exporting only the unrelated interface acme:other/thing@1.0.0"),
    ("wrong-version", "a component exporting pingpost:plugin/bidder@2.0.0, a future major contract version"),
    ("wasi-sockets", "a buyer-world component that also imports wasi:sockets/tcp@0.2.0"),
    ("wasi-filesystem", "a buyer-world component that also imports wasi:filesystem/types@0.2.0"),
    ("huge-memory", "a buyer-world component whose module starts with 64 MiB of memory, over any instance's limit"),
    ("random-bytes", "4 KiB of seeded pseudo-random bytes, the same on every call"),
    ("empty", "zero bytes"),
    ("truncated", "the first half of the built config-buyer plugin"),
];

/// Size of the `random-bytes` fixture.
pub const RANDOM_BYTES_LEN: usize = 4096;

const CONTRACT_WIT: &str = include_str!("../../../sdk/wit/since_v0.1.0/plugin.wit");
/// The WIT packages the fixture worlds refer to, in dependency order, each with the path named in its errors.
const FIXTURE_WIT: &[(&str, &str)] = &[
    ("sdk/wit/since_v0.1.0/plugin.wit", CONTRACT_WIT),
    ("plugins/hostile/wit/acme-other.wit", include_str!("../../hostile/wit/acme-other.wit")),
    ("plugins/hostile/wit/pingpost-plugin-v2.wit", include_str!("../../hostile/wit/pingpost-plugin-v2.wit")),
    ("plugins/hostile/wit/wasi-sockets.wit", include_str!("../../hostile/wit/wasi-sockets.wit")),
    ("plugins/hostile/wit/wasi-filesystem.wit", include_str!("../../hostile/wit/wasi-filesystem.wit")),
];
const WORLDS_WIT: (&str, &str) = ("plugins/hostile/wit/fixtures.wit", include_str!("../../hostile/wit/fixtures.wit"));
const CORE_MODULE_WAT: &str = include_str!("../../hostile/core-module.wat");

/// Makes the hostile fixture `name` (one of [`HOSTILE_FIXTURES`]) and returns its bytes. Every fixture is
/// deterministic: the same bytes on every call, on every machine. `truncated` builds the plugins first (see
/// [`crate::wasm`]).
pub fn hostile_fixture(name: &str) -> Result<Vec<u8>> {
    match name {
        "core-module" => wat::parse_str(CORE_MODULE_WAT).context("parsing plugins/hostile/core-module.wat"),
        "wrong-world" | "wrong-version" | "wasi-sockets" | "wasi-filesystem" | "huge-memory" => component(name),
        "random-bytes" => Ok(random_bytes(0x5EED_F1C7_0B5E_55ED, RANDOM_BYTES_LEN)),
        "empty" => Ok(Vec::new()),
        "truncated" => {
            let mut bytes = crate::wasm_bytes("config-buyer")?;
            bytes.truncate(bytes.len() / 2);
            Ok(bytes)
        }
        _ => {
            let known: Vec<&str> = HOSTILE_FIXTURES.iter().map(|(n, _)| *n).collect();
            bail!("unknown hostile fixture {name:?}; known: {known:?}")
        }
    }
}

/// Encodes the fixture world `world` of `plugins/hostile/wit/fixtures.wit` as a component.
fn component(world: &str) -> Result<Vec<u8>> {
    let mut resolve = Resolve::default();
    for (path, text) in FIXTURE_WIT {
        resolve.push_str(path, text).with_context(|| format!("parsing {path}"))?;
    }
    let (path, text) = WORLDS_WIT;
    let package = resolve.push_str(path, text).with_context(|| format!("parsing {path}"))?;
    let world_id = resolve.select_world(&[package], Some(world)).with_context(|| format!("world {world} in {path}"))?;
    let mut module = wit_component::dummy_module(&resolve, world_id, ManglingAndAbi::Standard32);
    if world == "huge-memory" {
        module = with_initial_memory_pages(&module, HUGE_MEMORY_PAGES)?;
    }
    wit_component::embed_component_metadata(&mut module, &resolve, world_id, StringEncoding::UTF8)
        .with_context(|| format!("embedding the component type of world {world}"))?;
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .with_context(|| format!("reading the dummy module of world {world}"))?
        .encode()
        .with_context(|| format!("encoding world {world} as a component"))
}

/// Initial memory of the `huge-memory` fixture: 1,024 pages of 64 KiB, 64 MiB.
const HUGE_MEMORY_PAGES: u32 = 1024;

/// `module` with its (one) memory's minimum size set to `pages`.
fn with_initial_memory_pages(module: &[u8], pages: u32) -> Result<Vec<u8>> {
    let text = wasmprinter::print_bytes(module).context("printing the dummy module")?;
    let start = text.find("(memory ").context("the dummy module has no memory")?;
    // `(memory (;0;) 0)`: the limits follow the index comment and run to the declaration's closing parenthesis.
    let limits = start + text[start..].find(";)").context("a memory without its index comment")? + 2;
    let end = limits + text[limits..].find(')').context("an unterminated memory")?;
    let rewritten = format!("{} {pages}{}", &text[..limits], &text[end..]);
    wat::parse_str(&rewritten).context("re-assembling the dummy module")
}

/// `len` bytes from splitmix64 seeded with `seed`: deterministic noise without a dependency.
fn random_bytes(mut seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `\0asm`, then the version/layer of a component (0x0d, layer 1) or of a core module (1, layer 0).
    const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    const CORE_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

    fn fixture(name: &str) -> Vec<u8> {
        hostile_fixture(name).unwrap_or_else(|e| panic!("{name}: {e:#}"))
    }

    fn component_names(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
        crate::component_names(bytes).expect("the component parses")
    }

    fn validate(bytes: &[u8]) -> Result<(), String> {
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(bytes)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_huge_memory_fixture_starts_with_64_mib() {
        let text = wasmprinter::print_bytes(fixture("huge-memory")).expect("prints");
        assert!(text.contains(&format!("(memory (;0;) {HUGE_MEMORY_PAGES})")), "{text}");
        validate(&fixture("huge-memory")).expect("a valid component");
    }

    #[test]
    fn component_fixtures_are_valid_components_with_their_advertised_names() {
        let cases = [
            ("wrong-world", None, "acme:other/thing@1.0.0"),
            ("wrong-version", Some("pingpost:plugin/host@2.0.0"), "pingpost:plugin/bidder@2.0.0"),
            ("wasi-sockets", Some("wasi:sockets/tcp@0.2.0"), "pingpost:plugin/bidder@0.1.0"),
            ("wasi-filesystem", Some("wasi:filesystem/types@0.2.0"), "pingpost:plugin/bidder@0.1.0"),
        ];
        for (name, import, export) in cases {
            let bytes = fixture(name);
            assert_eq!(bytes[..8], COMPONENT_HEADER, "{name}");
            validate(&bytes).unwrap_or_else(|e| panic!("{name} is invalid: {e}"));
            let (imports, exports) = component_names(&bytes);
            assert_eq!(exports, [export], "{name}");
            if let Some(import) = import {
                assert!(imports.iter().any(|i| i == import), "{name} imports {imports:?}");
            }
        }
    }

    #[test]
    fn the_wasi_fixtures_keep_the_buyer_worlds_host_import() {
        for name in ["wasi-sockets", "wasi-filesystem"] {
            let (imports, _) = component_names(&fixture(name));
            assert!(imports.iter().any(|i| i == "pingpost:plugin/host@0.1.0"), "{name} imports {imports:?}");
        }
    }

    #[test]
    fn the_core_module_is_a_valid_core_module_without_a_component_type() {
        let bytes = fixture("core-module");
        assert_eq!(bytes[..8], CORE_HEADER);
        validate(&bytes).expect("valid core module");
        let custom_sections: Vec<String> = wasmparser::Parser::new(0)
            .parse_all(&bytes)
            .filter_map(|p| match p {
                Ok(wasmparser::Payload::CustomSection(c)) => Some(c.name().to_owned()),
                _ => None,
            })
            .collect();
        assert!(!custom_sections.iter().any(|n| n.starts_with("component-type")), "{custom_sections:?}");
    }

    #[test]
    fn random_bytes_are_4_kib_deterministic_and_not_wasm() {
        let bytes = fixture("random-bytes");
        assert_eq!(bytes.len(), RANDOM_BYTES_LEN);
        assert_eq!(bytes, fixture("random-bytes"));
        assert_ne!(bytes[..4], COMPONENT_HEADER[..4]);
        // Noise, not a constant fill: most byte values occur.
        let distinct = bytes.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert!(distinct > 200, "{distinct} distinct byte values");
    }

    #[test]
    fn empty_is_zero_bytes() {
        assert!(fixture("empty").is_empty());
    }

    #[test]
    fn truncated_is_the_first_half_of_a_real_plugin() {
        let whole = crate::wasm_bytes("config-buyer").expect("config-buyer builds");
        let half = fixture("truncated");
        assert_eq!(half.len(), whole.len() / 2);
        assert_eq!(half[..], whole[..half.len()]);
        assert!(validate(&half).is_err(), "a truncated module must not validate");
    }

    #[test]
    fn every_listed_fixture_is_made_and_unknown_names_are_refused() {
        for (name, _) in HOSTILE_FIXTURES {
            fixture(name);
        }
        let err = hostile_fixture("nope").expect_err("unknown fixture");
        assert!(err.to_string().contains("unknown hostile fixture \"nope\""), "{err}");
    }
}
