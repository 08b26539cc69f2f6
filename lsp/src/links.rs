//! Document links: path literals (`./foo.nix`, `../dir`, `<nixpkgs/lib>`) that exist on disk.

use std::path::{Path, PathBuf};

use rnix::{SyntaxKind, TextRange};

use crate::document::Document;

/// Every path literal of `doc` without interpolation that names an existing file, resolved
/// against `base_dir` (the document's directory) or the search path. A directory links to
/// its `default.nix` when it has one, as `import` would read it.
pub fn document_links(
    doc: &Document,
    base_dir: Option<&Path>,
    search_path: &[(String, PathBuf)],
) -> Vec<(TextRange, PathBuf)> {
    let mut out = Vec::new();
    for node in doc.root().descendants() {
        let kind = node.kind();
        if !matches!(
            kind,
            SyntaxKind::NODE_PATH_ABS
                | SyntaxKind::NODE_PATH_REL
                | SyntaxKind::NODE_PATH_HOME
                | SyntaxKind::NODE_PATH_SEARCH
        ) {
            continue;
        }
        // An interpolated path has child nodes; only plain literals are links.
        if node.children().next().is_some() {
            continue;
        }
        let text = node.text().to_string();
        let target = match kind {
            SyntaxKind::NODE_PATH_SEARCH => resolve_search(&text, search_path),
            SyntaxKind::NODE_PATH_HOME => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(text.trim_start_matches("~/"))),
            SyntaxKind::NODE_PATH_ABS => Some(PathBuf::from(&text)),
            _ => base_dir.map(|b| b.join(&text)),
        };
        if let Some(t) = target.and_then(|t| existing(&t)) {
            out.push((node.text_range(), t));
        }
    }
    out
}

/// `<prefix/rest>` through the search path, the way `findFile` does it.
pub fn resolve_search(text: &str, search_path: &[(String, PathBuf)]) -> Option<PathBuf> {
    let inner = text.trim_start_matches('<').trim_end_matches('>');
    for (prefix, dir) in search_path {
        let candidate = if prefix.is_empty() {
            dir.join(inner)
        } else if inner == prefix {
            dir.clone()
        } else if let Some(rest) = inner.strip_prefix(&format!("{prefix}/")) {
            dir.join(rest)
        } else {
            continue;
        };
        if candidate.exists() {
            return Some(candidate);
        }
    }
    None
}

fn existing(p: &Path) -> Option<PathBuf> {
    let p = std::fs::canonicalize(p).ok()?;
    if p.is_dir() {
        let d = p.join("default.nix");
        return Some(if d.is_file() { d } else { p });
    }
    Some(p)
}
