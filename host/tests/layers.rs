//! The layers of `host/src`, lowest first: each may name (`crate::…`, in code or in doc links) only itself and the
//! layers below it, so nothing lower depends on anything higher — the rule that lets the layers become crates.

use std::path::Path;

/// Each layer (a module folder, or a file) and the layers it may name besides itself.
const LAYERS: &[(&str, &[&str])] = &[
    ("clock.rs", &[]),
    ("model", &[]),
    ("plugin", &["clock", "model"]),
    ("auction", &["clock", "model", "plugin"]),
    ("storage", &["clock", "model", "plugin", "auction"]),
    ("service", &["clock", "model", "plugin", "auction", "storage"]),
    ("cli", &["clock", "model", "plugin", "auction", "storage", "service"]),
];

fn rust_files(path: &Path, found: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("reads a source folder") {
            rust_files(&entry.expect("an entry").path(), found);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        found.push(path.to_path_buf());
    }
}

#[test]
fn no_layer_names_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    let mut checked = 0;
    for (layer, allowed) in LAYERS {
        let own = layer.trim_end_matches(".rs");
        let mut files = Vec::new();
        rust_files(&src.join(layer), &mut files);
        assert!(!files.is_empty(), "layer {layer} has no files");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("reads a source file");
            for (number, line) in text.lines().enumerate() {
                for (at, _) in line.match_indices("crate::") {
                    let named: String = line[at + "crate::".len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    checked += 1;
                    if named != own && !allowed.contains(&named.as_str()) {
                        violations.push(format!("{}:{}: {own} names crate::{named}", file.display(), number + 1));
                    }
                }
            }
        }
    }
    assert!(checked > 100, "the check read the sources ({checked} references)");
    assert!(violations.is_empty(), "upward references:\n{}", violations.join("\n"));
}
