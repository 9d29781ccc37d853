//! The core's layers point one way: every top-level module of `src/` may use only modules
//! below it in [`ORDER`] (errors and limits at the bottom, the wasm bindings at the top), so
//! there is no import cycle and a reader can learn the crate bottom-up.
//!
//! The check reads every `crate::…` path outside comments and `#[cfg(test)]` modules (as
//! `use crate::x::…`, `use crate::{x, y::z}` or an inline `crate::x::f()`), maps it to the
//! top-level module it names (a name re-exported by `lib.rs` to the module that defines it)
//! and fails on any path that points up or sideways.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every top-level module of `src/`, bottom-up, in layers (see `src/lib.rs`).
const ORDER: &[&[&str]] = &[
    // errors, the limits several parts share, the seeded generator
    &["error", "limits", "rng"],
    // dates, holidays, the request's context
    &["calendar", "context"],
    // titles, the feature catalog, the user's local state
    &["catalog", "features", "state"],
    // what a device reports about what it showed and played (and records in its state)
    &["events"],
    // the A/B arm a device is in (and reports with its events)
    &["experiments"],
    // the models' math and contracts, with their runtimes
    &[
        "ials",
        "blend",
        "quant",
        "hnsw",
        "retrieval",
        "content",
        "onnx",
        "tower",
        "ranker",
        "rerank",
    ],
    // the format: bytes ↔ contents
    &["bundle"],
    // signed releases of bundles: trust, manifests, reassembly
    &["release"],
    // the loaded model
    &["model"],
    // the pipeline's stages
    &["stages"],
    // the one recommendation path
    &["recommender"],
    // a row's options and result as plain data (every non-Rust binding's)
    &["wire"],
    // the JS bindings; test support (compiled for tests only) may use anything
    &["wasm", "test_support"],
];

/// Names `lib.rs` re-exports, and the module that defines each.
const REEXPORTS: &[(&str, &str)] = &[
    ("Error", "error"),
    ("Result", "error"),
    ("BundleError", "error"),
    ("StateError", "error"),
    ("ReleaseError", "error"),
    ("Model", "model"),
    ("Recommender", "recommender"),
    ("Row", "recommender"),
    ("RowInfo", "recommender"),
    ("RowRequest", "recommender"),
    ("Timings", "recommender"),
    ("RowItem", "stages"),
];

fn rank(module: &str) -> Option<usize> {
    ORDER
        .iter()
        .flat_map(|layer| layer.iter())
        .position(|m| *m == module)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`""` for `lib.rs`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    match first.strip_suffix(".rs") {
        Some("lib") => String::new(),
        Some(stem) => stem.to_string(),
        None => first.to_string(),
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` tail.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first name of every path after `crate::` in `code`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d::{e, f}}`: the first name of every top-level item.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_alphanumeric() || c == '_') => {
                        out.push(ident(&group[i..]).to_string());
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest).to_string());
        }
    }
    out
}

#[test]
fn modules_only_use_modules_below_them() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules: BTreeMap<String, usize> = BTreeMap::new();
    let mut violations = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if module.is_empty() {
            continue; // lib.rs declares the modules
        }
        let Some(own) = rank(&module) else {
            violations.push(format!("{module} ({}) is not in ORDER", file.display()));
            continue;
        };
        *modules.entry(module.clone()).or_default() += 1;
        for name in crate_paths(&code(&std::fs::read_to_string(file).unwrap())) {
            let target = REEXPORTS
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(name.as_str(), |(_, m)| m);
            match rank(target) {
                Some(r) if target == module || r < own => {}
                Some(_) => violations.push(format!(
                    "{module} ({}) uses crate::{name}, which is not below it",
                    file.display()
                )),
                None => violations.push(format!(
                    "{module} ({}) uses crate::{name}, which is neither a module in ORDER nor a \
                     known re-export",
                    file.display()
                )),
            }
        }
    }
    // Every module in ORDER exists, so the list stays the true map of the crate.
    for m in ORDER.iter().flat_map(|l| l.iter()) {
        if !modules.contains_key(*m) {
            violations.push(format!("{m} is in ORDER but not in src/"));
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_path_reader_sees_groups_and_inline_paths() {
    let code = "use crate::{a, b::c, d::{e, f}};\nlet x = crate::g::h();\nuse crate::i::{j, k};";
    assert_eq!(crate_paths(code), ["a", "b", "d", "g", "i"]);
}
