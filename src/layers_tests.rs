//! The module layers of docs/architecture.md, checked on the source: every
//! `crate::` and `super::` path outside test code points to a module in the
//! same or a lower layer, and no two modules import each other, neither
//! between top-level modules nor between the files of one module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

/// Bottom to top. A module may import its own layer and those below.
const LAYERS: [&[&str]; 6] = [
    // Foundations: plain data structures and formats.
    &[
        "platform",
        "fixedvec",
        "region",
        "sync",
        "ratelimit",
        "bootargs",
        "console",
        "logring",
        "conout",
        "dt",
        "mm",
    ],
    // The board's device registers and drivers.
    &["board"],
    // The pure models of trap-and-emulate.
    &[
        "trap",
        "exception",
        "devices",
        "vgic",
        "conmux",
        "monitor",
        "virtio",
        "net",
        "disk",
        "smp",
        "vm",
    ],
    // The CPU: carries out what the models decide.
    &["arch"],
    // The VMM glue.
    &["vmm"],
    // The boot order.
    &["boot"],
];

fn layer(top: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top))
}

/// A file's module path: src/a/b.rs -> [a, b], src/a/mod.rs -> [a].
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    parts
}

/// The source without its test code (a `#[cfg(test)]` item to the end).
fn non_test(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// Module paths a file's code refers to (at most two levels deep).
fn references(module: &[String], text: &str) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (prefix, base) in [
            ("crate::", vec![]),
            ("super::", module[..module.len().saturating_sub(1)].to_vec()),
        ] {
            let mut rest = code;
            while let Some(i) = rest.find(prefix) {
                let before = rest[..i].chars().last();
                rest = &rest[i + prefix.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let mut path = base.clone();
                // `super::{a, b::c}`: each name in the braces.
                let names: Vec<&str> = if let Some(inner) = rest.strip_prefix('{') {
                    inner
                        .split('}')
                        .next()
                        .unwrap_or("")
                        .split(',')
                        .map(|n| n.trim())
                        .collect()
                } else {
                    vec![rest]
                };
                for n in names {
                    let mut p = path.clone();
                    for seg in n.split("::").take(2) {
                        let seg: String = seg
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if seg.is_empty() || seg == "self" || seg.starts_with(char::is_uppercase) {
                            break;
                        }
                        p.push(seg);
                    }
                    if !p.is_empty() {
                        out.insert(p);
                    }
                }
                path.clear();
            }
        }
    }
    out
}

fn sources() -> Vec<(Vec<String>, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                if name.ends_with("tests.rs") || name == "lib.rs" || name == "main.rs" {
                    continue;
                }
                let rel = p.strip_prefix(&root).unwrap();
                out.push((module_of(rel), std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out
}

/// A cycle in `edges`, if any, as the path around it.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                1 => {
                    let i = stack.iter().position(|s| s == m).unwrap();
                    let mut c = stack[i..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if state.get(n).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, edges, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn every_import_points_down_and_nothing_imports_in_a_circle() {
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut inner: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut wrong = Vec::new();
    let files = sources();
    assert!(files.len() > 50, "the source tree is read");
    for (module, text) in &files {
        let from = &module[0];
        let lf = layer(from).unwrap_or_else(|| panic!("module '{from}' has no layer"));
        for r in references(module, non_test(text)) {
            let to = &r[0];
            let Some(lt) = layer(to) else { continue };
            if to != from {
                top.entry(from.clone()).or_default().insert(to.clone());
                if lt > lf {
                    wrong.push(format!("{} -> {}", module.join("::"), r.join("::")));
                }
            } else if module.len() > 1 && r.len() > 1 && module[1] != r[1] {
                inner
                    .entry(from.clone())
                    .or_default()
                    .entry(module[1].clone())
                    .or_default()
                    .insert(r[1].clone());
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that point up a layer: {wrong:#?}"
    );
    assert_eq!(cycle(&top), None, "a cycle between top-level modules");
    for (m, edges) in &inner {
        assert_eq!(cycle(edges), None, "a cycle between the files of {m}");
    }
    // The checker sees what is there.
    assert!(top["vmm"].contains("vm") && top["boot"].contains("vmm"));
}

#[test]
fn the_checker_finds_references_and_cycles() {
    let m = vec!["vm".to_string(), "config".to_string()];
    let r = references(&m, "use super::{bundle::NAME_MAX, layout};\nlet x = crate::mm::stage2::BLOCK;\n// crate::boot::x\n");
    let want: BTreeSet<Vec<String>> = [
        vec!["vm", "bundle"],
        vec!["vm", "layout"],
        vec!["mm", "stage2"],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect();
    assert_eq!(r, want);
    let mut e: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    e.entry("a".into()).or_default().insert("b".into());
    assert_eq!(cycle(&e), None);
    e.entry("b".into()).or_default().insert("a".into());
    assert!(cycle(&e).is_some());
    assert_eq!(
        non_test("x\n#[cfg(test)]\nmod tests {\ncrate::boot\n}"),
        "x\n"
    );
}
