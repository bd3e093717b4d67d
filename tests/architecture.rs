//! The dependency rule of the architecture (see DESIGN.md): arrows only point into `net`. `net`
//! imports nothing above it and nothing UI- or database-shaped; `server`, `app`, `agent` and
//! `cli` are siblings that never import each other; the link knows no transport.

use std::path::Path;

/// What each part of the crate may not name: sibling modules and crates outside its concern.
const RULES: &[(&str, &[&str])] = &[
    (
        "net",
        &[
            "crate::app",
            "crate::server",
            "crate::agent",
            "crate::cli",
            "ratatui",
            "crossterm",
            "rusqlite",
            "rmcp",
        ],
    ),
    (
        "server",
        &[
            "crate::app",
            "crate::agent",
            "crate::cli",
            "ratatui",
            "crossterm",
            "rmcp",
        ],
    ),
    (
        "app",
        &[
            "crate::server",
            "crate::agent",
            "crate::cli",
            "rusqlite",
            "rmcp",
        ],
    ),
    (
        "agent",
        &[
            "crate::server",
            "crate::app",
            "crate::cli",
            "rusqlite",
            "ratatui",
        ],
    ),
    (
        "cli",
        &[
            "crate::server",
            "crate::app",
            "crate::agent",
            "rusqlite",
            "ratatui",
        ],
    ),
    // The link and what it is written against know no transport.
    (
        "net/link.rs",
        &["super::ws", "crate::net::ws", "tokio_tungstenite"],
    ),
    (
        "net/link",
        &["super::ws", "crate::net::ws", "tokio_tungstenite"],
    ),
    (
        "net/transport.rs",
        &["super::ws", "crate::net::ws", "tokio_tungstenite"],
    ),
];

/// Where `source` names something `forbidden` lists, outside comments.
fn violations(source: &str, forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (number, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        for name in forbidden {
            let named = code.match_indices(name).any(|(at, _)| {
                let before = code[..at].chars().next_back();
                let after = code[at + name.len()..].chars().next();
                let starts = !before.is_some_and(|c| c.is_alphanumeric() || c == '_');
                let ends = !after.is_some_and(|c| c.is_alphanumeric() || c == '_');
                starts && ends
            });
            if named {
                found.push(format!("line {}: {name}: {}", number + 1, line.trim()));
            }
        }
    }
    found
}

fn rust_files(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_file() {
        if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_path_buf());
        }
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        rust_files(&entry.path(), out);
    }
}

#[test]
fn every_module_keeps_to_the_dependency_rule() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    let mut checked = 0;
    for (part, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(part), &mut files);
        for file in files {
            let source = std::fs::read_to_string(&file).expect("readable source");
            checked += 1;
            for v in violations(&source, forbidden) {
                broken.push(format!("{}: {v}", file.display()));
            }
        }
    }
    assert!(
        checked > 30,
        "only {checked} files found under {}",
        src.display()
    );
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_a_forbidden_import_and_not_a_lookalike() {
    let bad = "use crate::server::hub::Hub;\nfn f() { ratatui::init(); }\n";
    assert_eq!(violations(bad, &["crate::server", "ratatui"]).len(), 2);
    let fine =
        "// crate::server is named in a comment\nuse crate::serverless;\nlet my_ratatui = 1;\n";
    assert!(violations(fine, &["crate::server", "ratatui"]).is_empty());
}
