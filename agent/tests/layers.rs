//! The agent crate's top-level modules form layers: each may refer only to
//! modules in layers below its own. Every `crate::…` path counts — `use`
//! lines, grouped imports and inline paths alike — and so does `super::…`
//! where it climbs to the crate root; comments and string literals do not.
//! A module missing from `LAYERS` fails the test, so a new one must be
//! placed on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first. A module may refer to any module in an earlier entry,
/// never to one in its own entry or a later one.
const LAYERS: &[&[&str]] = &[
    // The vocabulary every stage shares (ARCHITECTURE.md, "Layers").
    &["core"],
    // Leaves: no stage of their own.
    &[
        "host", "redact", "users", "notify", "pipe", "confine", "journal",
    ],
    &["config"],
    // How airlock itself reaches upstreams.
    &["egress"],
    // Services the stages use.
    &["tls", "audit", "mask", "operation"],
    // Stages that only read a request.
    &["identity", "capture", "model", "fleet", "export"],
    &["policy"],
    // What judges and counts a request.
    &["gate", "approval", "telemetry"],
    // The data path, then what drives it.
    &["http"],
    &["proxy", "admin", "reload"],
    // The admin API's clients: wiring, the CLI's definitions, and the
    // approvers' web page (it drives the admin socket as `airlock
    // approvals` does, so it sits above `admin`, not beside it).
    &["app", "cli", "console"],
    &["demo", "fuzzing"],
];

#[test]
fn top_level_modules_refer_only_to_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let declared = top_level_modules(&src.join("lib.rs"));
    let layer_of = layer_index();
    let placed: BTreeSet<&str> = layer_of.keys().copied().collect();
    let declared_refs: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
    assert_eq!(
        declared_refs, placed,
        "every module lib.rs declares must be placed in LAYERS exactly once, and only those"
    );

    let mut edges = 0;
    let mut wrong = Vec::new();
    for file in rust_files(&src) {
        let module = module_path(&src, &file);
        if module.is_empty() {
            continue; // lib.rs and main.rs: the crate roots.
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for target in crate_refs(&text, &module) {
            let from = module[0].as_str();
            if target == from || !layer_of.contains_key(target.as_str()) {
                continue;
            }
            edges += 1;
            if layer_of[target.as_str()] >= layer_of[from] {
                wrong.push(format!(
                    "{}: {from} refers to {target}",
                    file.strip_prefix(&src).unwrap().display()
                ));
            }
        }
    }
    // The scan read the crate: its stages do refer to each other.
    assert!(edges > 100, "only {edges} cross-module paths found");
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "modules refer to modules not below them:\n  {}",
        wrong.join("\n  ")
    );
}

fn layer_index() -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for (i, layer) in LAYERS.iter().enumerate() {
        for m in *layer {
            assert!(out.insert(*m, i).is_none(), "{m} is in LAYERS twice");
        }
    }
    out
}

/// `mod x;` / `pub mod x;` lines of lib.rs.
fn top_level_modules(lib: &Path) -> Vec<String> {
    let tokens = tokens(&std::fs::read_to_string(lib).unwrap());
    tokens
        .windows(3)
        .filter(|w| w[0] == "mod" && w[2] == ";")
        .map(|w| w[1].clone())
        .collect()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// `src/a/b.rs` → `[a, b]`; the crate roots → `[]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [one] if one == "lib" || one == "main" => Vec::new(),
        _ => parts,
    }
}

/// The top-level modules named by the crate-rooted paths in `text`, a
/// file of module `module` (inline `mod x { … }` blocks nest it further).
fn crate_refs(text: &str, module: &[String]) -> Vec<String> {
    let t = tokens(text);
    let mut out = Vec::new();
    // Inline modules open at a brace depth; `super` climbs out of them too.
    let mut path: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < t.len() {
        match t[i].as_str() {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if path.last().is_some_and(|(_, d)| *d == depth) {
                    path.pop();
                }
            }
            "mod" if t.get(i + 2).is_some_and(|s| s == "{") => {
                path.push((t[i + 1].clone(), depth));
            }
            "crate" if t.get(i + 1).is_some_and(|s| s == "::") => {
                out.extend(heads(&t, i + 2));
            }
            "super" if i == 0 || t[i - 1] != "::" => {
                let mut climbs = 0;
                let mut j = i;
                while t.get(j).is_some_and(|s| s == "super")
                    && t.get(j + 1).is_some_and(|s| s == "::")
                {
                    climbs += 1;
                    j += 2;
                }
                if climbs > 0 && climbs >= module.len() + path.len() {
                    out.extend(heads(&t, j));
                }
                i = j.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The first segment after a crate-rooted `::`: one name, or the first
/// name of each item of a `{…}` group.
fn heads(t: &[String], at: usize) -> Vec<String> {
    match t.get(at).map(String::as_str) {
        Some("{") => {
            let mut out = Vec::new();
            let mut depth = 0;
            let mut expect = true;
            for tok in &t[at..] {
                match tok.as_str() {
                    "{" => {
                        depth += 1;
                        if depth > 1 {
                            expect = false;
                        }
                    }
                    "}" => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    "," if depth == 1 => expect = true,
                    name if expect && depth == 1 && is_ident(name) => {
                        out.push(name.to_owned());
                        expect = false;
                    }
                    _ => {}
                }
            }
            out
        }
        Some(name) if is_ident(name) => vec![name.to_owned()],
        _ => Vec::new(),
    }
}

fn is_ident(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Identifiers, `::` and single punctuation; comments, strings and
/// character literals dropped (lifetimes kept as identifiers).
fn tokens(text: &str) -> Vec<String> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let mut nest = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    nest += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    nest -= 1;
                    i += 2;
                    if nest == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some(end) = raw_string_end(&c, i) {
            i = end;
        } else if ch == '"' || (ch == 'b' && next == Some('"')) {
            i += if ch == 'b' { 2 } else { 1 };
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if ch == '\'' {
            // 'x' or '\n' is a character; 'a (no closing quote) a lifetime.
            if next == Some('\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(c[start..i].iter().collect());
        } else if ch == ':' && next == Some(':') {
            out.push("::".to_owned());
            i += 2;
        } else {
            if !ch.is_whitespace() {
                out.push(ch.to_string());
            }
            i += 1;
        }
    }
    out
}

/// Where a raw string starting at `i` (`r"…"`, `r#"…"#`, `br#"…"#`) ends.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if c.get(j) == Some(&'b') {
        j += 1;
    }
    if c.get(j) != Some(&'r') || (i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_')) {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if c.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < c.len() {
        if c[j] == '"'
            && c[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&h| h == '#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(c.len())
}

#[test]
fn the_scan_sees_every_shape_of_path_and_nothing_in_text() {
    let module = vec!["http".to_owned(), "forward".to_owned()];
    let text = r##"
        use crate::audit::AuditLog;
        use crate::{gate::Gate, core::{Decision, Outcome}, tls};
        fn f() { crate::policy::decide(); let x = super::super::mask::Masker; }
        // crate::demo::run() in a comment
        /* crate::app::build() in a block comment */
        const S: &str = "crate::cli::Cli in a string";
        const R: &str = r#"crate::reload in a raw string"#;
        fn g<'a>(c: char) -> bool { c == '{' && super::body::x() }
        mod inner { fn h() { super::super::super::identity::f(); } }
    "##;
    let mut refs = crate_refs(text, &module);
    refs.sort();
    assert_eq!(
        refs,
        ["audit", "core", "gate", "identity", "mask", "policy", "tls"]
    );
}
