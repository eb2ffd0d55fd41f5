//! Reading what a built component says about itself, for tests that check a plugin's shape.

use anyhow::{Context, Result};
use wasmparser::{Parser, Payload};

/// The names of a component's top-level imports and exports (nested modules and components are skipped).
pub fn component_names(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>)> {
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    // Nested modules and components come in the same stream, each between its own Version and End.
    let mut depth = 0;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.context("parsing the component")? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            _ if depth != 1 => {}
            Payload::ComponentImportSection(section) => {
                for import in section {
                    imports.push(import.context("reading an import")?.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(section) => {
                for export in section {
                    exports.push(export.context("reading an export")?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}
