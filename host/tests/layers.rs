//! The exchange's crates, lowest first: each may depend only on the crates below it, so nothing lower depends on
//! anything higher. The compiler holds each crate to the dependencies its manifest names; these tests hold the
//! manifests to the order, and the files inside each crate to a direction of their own: no two name each other,
//! directly or round a cycle.

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

/// A file of a crate's `src/` and the module path it holds (`lib.rs` is the root, `a/mod.rs` and `a.rs` are `a`).
struct SourceFile {
    module: Vec<String>,
    text: String,
}

fn source_files(src: &Path) -> Vec<SourceFile> {
    fn walk(dir: &Path, src: &Path, found: &mut Vec<SourceFile>) {
        for entry in std::fs::read_dir(dir).expect("reads a source folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(&path, src, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(src).expect("under src").with_extension("");
                let mut module: Vec<String> =
                    relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                if module.last().is_some_and(|last| last == "mod" || last == "lib" || last == "main") {
                    module.pop();
                }
                found.push(SourceFile { module, text: std::fs::read_to_string(&path).expect("reads a source file") });
            }
        }
    }
    let mut found = Vec::new();
    walk(src, src, &mut found);
    found
}

/// The module paths a file's code names with `crate::…` or `super::…`, as written. Comments do not count, nor does
/// the file's unit-test module (its tail from `#[cfg(test)]`): a test may use what is above the code it tests.
fn named_paths(file: &SourceFile) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let code = file.text.lines().take_while(|line| line.trim() != "#[cfg(test)]");
    for line in code.filter(|line| !line.trim_start().starts_with("//")) {
        for start in ["crate::", "super::"] {
            for (at, _) in line.match_indices(start) {
                if line[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let mut path = match start {
                    "crate::" => Vec::new(),
                    _ => file.module[..file.module.len().saturating_sub(1)].to_vec(),
                };
                let mut rest = &line[at + start.len()..];
                while let Some(tail) = rest.strip_prefix("super::") {
                    path.pop();
                    rest = tail;
                }
                path.extend(
                    rest.split("::")
                        .map(|part| part.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
                        .take_while(|part: &String| !part.is_empty()),
                );
                paths.push(path);
            }
        }
    }
    paths
}

/// Groups of two or more files of one crate that name one another in a cycle. A file's parent module (its `lib.rs`
/// or `mod.rs`, which declares and re-exports its children) is not an edge: only sibling and cousin files are.
fn file_cycles(src: &Path) -> Vec<Vec<String>> {
    let files = source_files(src);
    let index = |module: &[String]| files.iter().position(|f| f.module == module);
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); files.len()];
    for (from, file) in files.iter().enumerate() {
        for path in named_paths(file) {
            // The longest prefix of the path that is a file: the file that defines what is named.
            let Some(to) = (1..=path.len()).rev().find_map(|n| index(&path[..n])) else { continue };
            let target = &files[to].module;
            let is_ancestor = file.module.starts_with(target);
            if to != from && !is_ancestor && !edges[from].contains(&to) {
                edges[from].push(to);
            }
        }
    }
    // Tarjan's strongly connected components.
    struct Search<'a> {
        edges: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        components: Vec<Vec<usize>>,
    }
    fn visit(s: &mut Search<'_>, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.edges[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(index) if s.on_stack[w] => s.low[v] = s.low[v].min(index),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            s.components.push(component);
        }
    }
    let n = files.len();
    let mut search = Search {
        edges: &edges,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for v in 0..n {
        if search.index[v].is_none() {
            visit(&mut search, v);
        }
    }
    let mut cycles: Vec<Vec<String>> = search
        .components
        .into_iter()
        .filter(|component| component.len() > 1)
        .map(|component| {
            let mut names: Vec<String> = component.iter().map(|&f| files[f].module.join("::")).collect();
            names.sort();
            names
        })
        .collect();
    cycles.sort();
    cycles
}

#[test]
fn no_files_of_a_crate_name_each_other_in_a_cycle() {
    let host = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    let mut files = 0;
    for (folder, package, _) in LAYERS {
        let src = host.join(folder).join("src");
        files += source_files(&src).len();
        for cycle in file_cycles(&src) {
            found.push(format!("{package}: {}", cycle.join(" ↔ ")));
        }
    }
    assert!(files > 80, "the check read the sources ({files} files)");
    assert!(found.is_empty(), "files that name each other in a cycle:\n{}", found.join("\n"));
}

#[test]
fn the_cycle_check_finds_files_that_name_each_other() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let src = dir.path();
    std::fs::create_dir(src.join("api")).expect("a module folder");
    let files = [
        ("lib.rs", "mod a;\nmod b;\nmod api;\n"),
        ("a.rs", "use super::b::B;\npub struct A;\n"),
        ("b.rs", "pub struct B;\nfn f() -> crate::api::read::R { todo!() }\n"),
        ("api/mod.rs", "mod read;\n"),
        ("api/read.rs", "use super::super::a::A;\npub struct R;\n#[cfg(test)]\nmod tests { use crate::b::B; }\n"),
    ];
    for (path, text) in files {
        std::fs::write(src.join(path), text).expect("writes a source file");
    }
    assert_eq!(file_cycles(src), vec![vec!["a".to_owned(), "api::read".to_owned(), "b".to_owned()]]);
    std::fs::write(src.join("api/read.rs"), "pub struct R;\n").expect("writes a source file");
    assert!(file_cycles(src).is_empty(), "without the edge back to `a` there is no cycle");
}
