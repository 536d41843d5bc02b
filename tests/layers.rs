//! Keeps the layering true as the code grows: every `crate::…` path in `src/` must point at the
//! same layer or one below it, and only `src/transport/` may name `ureq` or `rustls`. See
//! ARCHITECTURE.md for the layers and why.

use std::fs;
use std::path::{Path, PathBuf};

/// The layers, top to bottom. Front ends sit on the public API as a user would; the bottom row
/// is shared by `error.rs`, `event.rs` and `util.rs`.
const LAYERS: &[(&str, u8)] = &[
    ("frontends", 7),
    ("api", 6),
    ("runtime", 4),
    ("transport", 3),
    ("state", 2),
    ("policy", 1),
    ("error", 0),
    ("event", 0),
    ("util", 0),
];

fn rank(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(name, _)| *name == module).map(|(_, r)| *r)
}

/// The layer a file under `src/` belongs to (`lib.rs`, the root, is above every layer).
fn layer_of(relative: &Path) -> Option<&str> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    Some(first.strip_suffix(".rs").unwrap_or(first))
}

/// The code of a line, without its comment (doc links to public re-exports are not imports).
fn code(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Every module named right after `crate::` in `text`, including `crate::{a, b::c}` groups.
fn crate_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().map(code) {
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name = item.trim().split("::").next().unwrap_or("").trim();
                    if !name.is_empty() {
                        out.push(name.to_string());
                    }
                }
            } else {
                let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.push(name);
            }
            rest = after;
        }
    }
    out
}

/// The violations in one file's text, as messages.
fn violations(relative: &Path, text: &str) -> Vec<String> {
    let file = relative.display();
    let mut out = Vec::new();
    let Some(layer) = layer_of(relative).filter(|l| *l != "lib") else { return out };
    let Some(own) = rank(layer) else {
        out.push(format!("{file}: not in a known layer; add it to ARCHITECTURE.md and tests/layers.rs"));
        return out;
    };
    for target in crate_paths(text) {
        match rank(&target) {
            None => out.push(format!(
                "{file}: `crate::{target}` goes through the crate root; import from its layer instead"
            )),
            Some(r) if r > own => out.push(format!(
                "{file}: imports `crate::{target}` (layer {r}) from layer {own}: imports point down only"
            )),
            Some(_)
                if layer == "frontends"
                    && !matches!(target.as_str(), "api" | "frontends")
                    && rank(&target) != Some(0) =>
            {
                out.push(format!("{file}: front ends use the public API only, not `crate::{target}`"))
            }
            Some(_) => {}
        }
    }
    if layer != "transport" {
        for (n, line) in text.lines().enumerate() {
            let line = code(line);
            if line.contains("ureq::")
                || line.contains("rustls::")
                || line.contains("use ureq")
                || line.contains("use rustls")
            {
                out.push(format!("{file}:{}: only src/transport/ may use ureq or rustls", n + 1));
            }
        }
    }
    if relative != Path::new("policy/encode/sign.rs") {
        for (n, line) in text.lines().enumerate() {
            if names_crate(code(line), "ring") {
                out.push(format!("{file}:{}: only src/policy/encode/sign.rs may use ring", n + 1));
            }
        }
    }
    out
}

/// True if `line` has a path starting with the crate `name` (`ring::…`, not `String::…`).
fn names_crate(line: &str, name: &str) -> bool {
    let needle = format!("{name}::");
    line.match_indices(&needle).any(|(i, _)| {
        !line[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn imports_point_down_and_only_transport_touches_ureq_and_rustls() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "found only {} files under {}", files.len(), src.display());
    let mut problems = Vec::new();
    for path in &files {
        let relative = path.strip_prefix(&src).unwrap();
        problems.extend(violations(relative, &fs::read_to_string(path).unwrap()));
    }
    assert!(problems.is_empty(), "layering violations:\n{}", problems.join("\n"));
}

#[test]
fn the_checker_catches_what_it_is_for() {
    let state = Path::new("state/queue.rs");
    assert!(violations(state, "use crate::policy::gate::Circuit;\nuse crate::util::base64;").is_empty());
    assert_eq!(violations(state, "use crate::runtime::Shared;").len(), 1, "upward import");
    assert_eq!(violations(state, "use ring::hmac;").len(), 1, "ring outside signing");
    assert!(violations(Path::new("policy/encode/sign.rs"), "use ring::hmac;").is_empty());
    assert!(violations(state, "let s = String::new(); x.load(Ordering::Relaxed);").is_empty());
    assert_eq!(
        violations(state, "use crate::{event::Event, api::Client};").len(),
        1,
        "grouped upward import"
    );
    assert_eq!(violations(state, "use crate::Client;").len(), 1, "through the root");
    assert!(violations(state, "/// See [`Client`](crate::Client).").is_empty(), "doc links are not imports");
    assert_eq!(
        violations(state, "let a = ureq::Agent::new_with_defaults();").len(),
        1,
        "ureq outside transport"
    );
    assert!(violations(Path::new("transport/mod.rs"), "use ureq::Agent;").is_empty());
    assert_eq!(violations(Path::new("frontends/log.rs"), "use crate::runtime::Shared;").len(), 1);
    assert!(violations(Path::new("frontends/log.rs"), "use crate::api::Client;").is_empty());
    assert_eq!(violations(Path::new("newlayer/x.rs"), "").len(), 1, "unknown layer");
}
