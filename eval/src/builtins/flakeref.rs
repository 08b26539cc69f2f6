//! `builtins.parseFlakeRef` and `builtins.flakeRefToString`: converting flake references
//! between their URL-like form (`github:NixOS/nixpkgs/23.05?dir=lib`) and their attribute
//! set form (`{ type = "github"; owner = "NixOS"; ... }`). Pure: nothing is fetched and no
//! registry is consulted.
//!
//! Supported forms, as the Nix manual describes them:
//! - `github:`, `gitlab:`, `sourcehut:` `<owner>/<repo>(/<rev-or-ref>)?(?<params>)?`
//! - `git+<scheme>://...` and `git://...` (type `git`), `hg+<scheme>://...` (`mercurial`)
//! - `tarball+<scheme>://...`, or `http(s)://`/`file://` URLs of archives (`tarball`)
//! - `file+<scheme>://...`, or other `http(s)://` URLs (`file`)
//! - `path:<path>` and absolute paths (`path`)
//! - `flake:<id>(/<ref>)?(/<rev>)?` and bare `<id>(/<ref>)?(/<rev>)?` (`indirect`)

use std::collections::BTreeMap;
use std::rc::Rc;

use super::control::primop;
use super::fail;
use super::strings::arg_frame;
use crate::error::{AddContext, EvalResult};
use crate::eval::Evaluator;
use crate::source::Span;
use crate::symbol::Symbol;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("parseFlakeRef", 1, parse_flake_ref),
    primop!("flakeRefToString", 1, flake_ref_to_string),
];

/// A value of a flake reference attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attr {
    /// A string.
    Str(String),
    /// A non-negative integer.
    Int(u64),
    /// A Boolean.
    Bool(bool),
}

/// A flake reference in attribute form (sorted by name).
pub type FlakeAttrs = BTreeMap<String, Attr>;

const ARCHIVE_EXTENSIONS: &[&str] = &[
    ".zip", ".tar", ".tgz", ".tar.gz", ".tar.xz", ".tar.bz2", ".tar.zst",
];

/// Parameters that hold Booleans or integers rather than strings.
const BOOL_PARAMS: &[&str] = &[
    "shallow",
    "submodules",
    "lfs",
    "exportIgnore",
    "allRefs",
    "verifyCommit",
    "unpack",
];
const INT_PARAMS: &[&str] = &["lastModified", "revCount"];

/// Which attributes (besides `type` and `dir`) each input type accepts.
fn allowed_attrs(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "github" | "gitlab" | "sourcehut" => &[
            "owner",
            "repo",
            "ref",
            "rev",
            "host",
            "narHash",
            "lastModified",
        ],
        "git" => &[
            "url",
            "ref",
            "rev",
            "shallow",
            "submodules",
            "lfs",
            "exportIgnore",
            "allRefs",
            "verifyCommit",
            "keytype",
            "publicKey",
            "publicKeys",
            "revCount",
            "lastModified",
            "narHash",
            "dirtyRev",
            "dirtyShortRev",
            "name",
        ],
        "mercurial" => &["url", "ref", "rev", "revCount", "narHash", "name"],
        "tarball" | "file" => &[
            "url",
            "narHash",
            "rev",
            "revCount",
            "lastModified",
            "name",
            "unpack",
        ],
        "path" => &["path", "rev", "revCount", "lastModified", "narHash"],
        "indirect" => &["id", "ref", "rev", "narHash"],
        _ => return None,
    })
}

fn is_rev(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_flake_id(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

fn has_archive_extension(url: &str) -> bool {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    ARCHIVE_EXTENSIONS.iter().any(|e| path.ends_with(e))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:@!$'()*+,;".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Turns the parameters of a URL into attributes, typing the known Boolean and integer ones.
fn parse_query(query: &str, url: &str, attrs: &mut FlakeAttrs) -> Result<(), String> {
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        let value = if BOOL_PARAMS.contains(&k.as_str()) {
            match v.as_str() {
                "1" | "true" => Attr::Bool(true),
                "0" | "false" => Attr::Bool(false),
                _ => {
                    return Err(format!(
                        "URL '{url}' has invalid Boolean value '{v}' for parameter '{k}'"
                    ))
                }
            }
        } else if INT_PARAMS.contains(&k.as_str()) {
            match v.parse::<u64>() {
                Ok(n) => Attr::Int(n),
                Err(_) => {
                    return Err(format!(
                        "URL '{url}' has invalid integer value '{v}' for parameter '{k}'"
                    ))
                }
            }
        } else {
            Attr::Str(v)
        };
        attrs.insert(k, value);
    }
    Ok(())
}

/// Sets `ref` or `rev` from a path component, refusing a second one.
fn set_rev_or_ref(attrs: &mut FlakeAttrs, value: &str, url: &str) -> Result<(), String> {
    let key = if is_rev(value) { "rev" } else { "ref" };
    if attrs.contains_key("ref") || attrs.contains_key("rev") {
        return Err(format!(
            "URL '{url}' already contains a branch/tag name or a commit hash"
        ));
    }
    attrs.insert(key.into(), Attr::Str(value.into()));
    Ok(())
}

/// Parses the URL-like form of a flake reference.
pub fn parse(s: &str) -> Result<FlakeAttrs, String> {
    let (rest, fragment) = match s.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (s, None),
    };
    if let Some(f) = fragment {
        return Err(format!(
            "unexpected fragment '{f}' in flake reference '{s}'"
        ));
    }
    let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut attrs = FlakeAttrs::new();
    let scheme = base.split_once(':').map(|(sc, _)| sc);
    let kind: &str;
    match scheme {
        Some(sc @ ("github" | "gitlab" | "sourcehut")) => {
            kind = sc;
            let path = &base[sc.len() + 1..];
            let parts: Vec<&str> = path.split('/').collect();
            if parts.len() < 2 || parts[0].is_empty() || parts[1].is_empty() {
                return Err(format!("URL '{s}' is not a valid {sc} URL"));
            }
            // Kept as written: a GitLab subgroup is spelled with `%2F` in the owner.
            attrs.insert("owner".into(), Attr::Str(parts[0].into()));
            attrs.insert("repo".into(), Attr::Str(parts[1].into()));
            parse_query(query, s, &mut attrs)?;
            if parts.len() > 2 {
                let rev_or_ref = parts[2..].join("/");
                if rev_or_ref.is_empty() {
                    return Err(format!("URL '{s}' is not a valid {sc} URL"));
                }
                set_rev_or_ref(&mut attrs, &rev_or_ref, s)?;
            }
        }
        Some("path") => {
            kind = "path";
            attrs.insert(
                "path".into(),
                Attr::Str(percent_decode(&base["path:".len()..])),
            );
            parse_query(query, s, &mut attrs)?;
        }
        Some("flake") => {
            kind = "indirect";
            parse_indirect(&base["flake:".len()..], s, &mut attrs)?;
            parse_query(query, s, &mut attrs)?;
        }
        Some(sc) if base[sc.len() + 1..].starts_with("//") => {
            let (k, url_scheme) = match sc.split_once('+') {
                Some(("git", inner)) => ("git", inner),
                Some(("hg", inner)) => ("mercurial", inner),
                Some(("tarball", inner)) => ("tarball", inner),
                Some(("file", inner)) => ("file", inner),
                Some(_) => return Err(format!("input '{s}' is unsupported")),
                None if sc == "git" => ("git", "git"),
                None if matches!(sc, "http" | "https" | "file") => {
                    if has_archive_extension(base) {
                        ("tarball", sc)
                    } else if sc == "file" {
                        return Err(format!("input '{s}' is unsupported"));
                    } else {
                        ("file", sc)
                    }
                }
                None => return Err(format!("input '{s}' is unsupported")),
            };
            kind = k;
            let url = format!("{url_scheme}{}", &base[sc.len()..]);
            // Parameters that are not the fetcher's stay part of the URL.
            let mut kept: Vec<&str> = Vec::new();
            let mut ours = String::new();
            let allowed = allowed_attrs(kind).unwrap_or(&[]);
            for part in query.split('&').filter(|p| !p.is_empty()) {
                let key = percent_decode(part.split_once('=').map_or(part, |(k, _)| k));
                if key == "dir" || allowed.contains(&key.as_str()) {
                    if !ours.is_empty() {
                        ours.push('&');
                    }
                    ours.push_str(part);
                } else {
                    kept.push(part);
                }
            }
            parse_query(&ours, s, &mut attrs)?;
            let url = if kept.is_empty() {
                url
            } else {
                format!("{url}?{}", kept.join("&"))
            };
            attrs.insert("url".into(), Attr::Str(url));
        }
        _ if base.starts_with('/') => {
            kind = "path";
            attrs.insert("path".into(), Attr::Str(percent_decode(base)));
            parse_query(query, s, &mut attrs)?;
        }
        _ if base.split('/').next().is_some_and(is_flake_id) => {
            kind = "indirect";
            parse_indirect(base, s, &mut attrs)?;
            parse_query(query, s, &mut attrs)?;
        }
        _ => return Err(format!("'{s}' is not a valid flake reference")),
    }
    attrs.insert("type".into(), Attr::Str(kind.into()));
    check_attrs(kind, &attrs, |name| {
        format!("URL '{s}' contains unsupported parameter '{name}'")
    })?;
    Ok(attrs)
}

fn parse_indirect(path: &str, url: &str, attrs: &mut FlakeAttrs) -> Result<(), String> {
    let parts: Vec<&str> = path.split('/').collect();
    if !is_flake_id(parts[0]) {
        return Err(format!("'{url}' is not a valid flake reference"));
    }
    attrs.insert("id".into(), Attr::Str(parts[0].into()));
    match parts.len() {
        1 => {}
        2 => set_rev_or_ref(attrs, parts[1], url)?,
        3 if is_rev(parts[2]) && !is_rev(parts[1]) => {
            attrs.insert("ref".into(), Attr::Str(parts[1].into()));
            attrs.insert("rev".into(), Attr::Str(parts[2].into()));
        }
        _ => return Err(format!("'{url}' is not a valid flake reference")),
    }
    Ok(())
}

/// Rejects attributes the input type does not know.
fn check_attrs(
    kind: &str,
    attrs: &FlakeAttrs,
    unsupported: impl Fn(&str) -> String,
) -> Result<(), String> {
    let allowed = allowed_attrs(kind).ok_or_else(|| format!("unsupported input type '{kind}'"))?;
    for name in attrs.keys() {
        if name != "type" && name != "dir" && !allowed.contains(&name.as_str()) {
            return Err(unsupported(name));
        }
    }
    Ok(())
}

fn attr_text(a: &Attr) -> String {
    match a {
        Attr::Str(s) => s.clone(),
        Attr::Int(n) => n.to_string(),
        Attr::Bool(b) => if *b { "1" } else { "0" }.into(),
    }
}

fn required<'a>(attrs: &'a FlakeAttrs, name: &str, kind: &str) -> Result<&'a str, String> {
    match attrs.get(name) {
        Some(Attr::Str(s)) => Ok(s),
        Some(_) => Err(format!(
            "attribute '{name}' of {kind} input must be a string"
        )),
        None => Err(format!("{kind} input is missing the attribute '{name}'")),
    }
}

/// Renders the attribute form as a URL-like flake reference.
pub fn to_string(attrs: &FlakeAttrs) -> Result<String, String> {
    let kind = match attrs.get("type") {
        Some(Attr::Str(t)) => t.clone(),
        Some(_) => return Err("attribute 'type' of a flake reference must be a string".into()),
        None => return Err("flake reference attribute set is missing attribute 'type'".into()),
    };
    check_attrs(&kind, attrs, |name| {
        format!("unsupported {kind} input attribute '{name}'")
    })?;
    let mut query: Vec<(&str, String)> = Vec::new();
    let mut add_query = |skip: &[&str]| {
        for (k, v) in attrs {
            if k != "type" && !skip.contains(&k.as_str()) {
                // Boolean switches are written only when on.
                if *v == Attr::Bool(false) {
                    continue;
                }
                query.push((k.as_str(), attr_text(v)));
            }
        }
    };
    let base = match kind.as_str() {
        "github" | "gitlab" | "sourcehut" => {
            let owner = required(attrs, "owner", &kind)?;
            let repo = required(attrs, "repo", &kind)?;
            let mut b = format!("{kind}:{owner}/{repo}");
            match (attrs.get("ref"), attrs.get("rev")) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "{kind} input '{b}' contains both a commit hash and a branch/tag name"
                    ))
                }
                (Some(r), None) | (None, Some(r)) => {
                    b.push('/');
                    b.push_str(&attr_text(r));
                }
                (None, None) => {}
            }
            add_query(&["owner", "repo", "ref", "rev"]);
            b
        }
        "git" | "mercurial" => {
            let url = required(attrs, "url", &kind)?;
            add_query(&["url"]);
            if kind == "git" && url.starts_with("git://") {
                url.to_string()
            } else if kind == "git" {
                format!("git+{url}")
            } else {
                format!("hg+{url}")
            }
        }
        "tarball" => {
            let url = required(attrs, "url", &kind)?;
            add_query(&["url"]);
            if has_archive_extension(url) {
                url.to_string()
            } else {
                format!("tarball+{url}")
            }
        }
        "file" => {
            let url = required(attrs, "url", &kind)?;
            add_query(&["url"]);
            if !has_archive_extension(url)
                && (url.starts_with("http:") || url.starts_with("https:"))
            {
                url.to_string()
            } else {
                format!("file+{url}")
            }
        }
        "path" => {
            let path = required(attrs, "path", &kind)?;
            add_query(&["path"]);
            format!("path:{path}")
        }
        "indirect" => {
            let id = required(attrs, "id", &kind)?;
            let mut b = format!("flake:{id}");
            for key in ["ref", "rev"] {
                if let Some(v) = attrs.get(key) {
                    b.push('/');
                    b.push_str(&attr_text(v));
                }
            }
            add_query(&["id", "ref", "rev"]);
            b
        }
        other => return Err(format!("unsupported input type '{other}'")),
    };
    if query.is_empty() {
        return Ok(base);
    }
    let q: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}{}", q.join("&")))
}

fn parse_flake_ref(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let text = ev
        .force_string(a[0].clone(), s)
        .context(s, || arg_frame("the argument", "parseFlakeRef"))?;
    let attrs = match parse(&text.to_str_lossy()) {
        Ok(a) => a,
        Err(msg) => return fail(msg, s),
    };
    Ok(Value::attrs(Attrs::from_unsorted(
        attrs
            .into_iter()
            .map(|(k, v)| AttrEntry {
                name: Symbol::intern(&k),
                value: match v {
                    Attr::Str(s) => Value::string(s),
                    Attr::Int(n) => Value::Int(n as i64),
                    Attr::Bool(b) => Value::bool(b),
                },
                pos: (None).into(),
            })
            .collect(),
    )))
}

fn flake_ref_to_string(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let set: Rc<Attrs> = ev
        .force_attrs(a[0].clone(), s)
        .context(s, || arg_frame("the argument", "flakeRefToString"))?;
    let mut attrs = FlakeAttrs::new();
    for e in set.iter() {
        let name = e.name.as_str();
        let value = match ev.force(e.value.clone())? {
            Value::String(st) => Attr::Str(st.to_str_lossy().into_owned()),
            Value::Bool(b) => Attr::Bool(b.get()),
            Value::Int(n) if n < 0 => {
                return fail(
                    format!("negative value given for flake ref attr {name}: {n}"),
                    s,
                )
            }
            Value::Int(n) => Attr::Int(n as u64),
            other => {
                return fail(
                    format!(
                        "flake reference attribute sets may only contain integers, Booleans, \
                         and strings, but attribute '{name}' is {}",
                        ev.describe(&other)
                    ),
                    s,
                )
            }
        };
        attrs.insert(name.to_string(), value);
    }
    match to_string(&attrs) {
        Ok(url) => Ok(Value::string(url)),
        Err(msg) => fail(msg, s),
    }
}

#[cfg(test)]
mod tests {
    use super::super::strings::tests::{err, ok};

    fn parses(url: &str, want: &str) {
        ok(&format!("builtins.parseFlakeRef \"{url}\""), want);
    }

    fn round_trip(url: &str) {
        ok(
            &format!("builtins.flakeRefToString (builtins.parseFlakeRef \"{url}\")"),
            &format!("\"{url}\""),
        );
    }

    #[test]
    fn parse_flake_ref() {
        parses(
            "github:NixOS/nixpkgs/23.05?dir=lib",
            "{ dir = \"lib\"; owner = \"NixOS\"; ref = \"23.05\"; repo = \"nixpkgs\"; type = \"github\"; }",
        );
        parses(
            "github:NixOS/nixpkgs",
            "{ owner = \"NixOS\"; repo = \"nixpkgs\"; type = \"github\"; }",
        );
        parses(
            "github:edolstra/dwarffs/d3f2baba8f425779026c6ec04021b2e927f61e31",
            "{ owner = \"edolstra\"; repo = \"dwarffs\"; rev = \"d3f2baba8f425779026c6ec04021b2e927f61e31\"; type = \"github\"; }",
        );
        parses(
            "gitlab:openldap/openldap?host=git.openldap.org",
            "{ host = \"git.openldap.org\"; owner = \"openldap\"; repo = \"openldap\"; type = \"gitlab\"; }",
        );
        parses(
            "git+https://example.org/my/repo?ref=master&shallow=1",
            "{ ref = \"master\"; shallow = true; type = \"git\"; url = \"https://example.org/my/repo\"; }",
        );
        parses(
            "git://github.com/edolstra/dwarffs?ref=unstable",
            "{ ref = \"unstable\"; type = \"git\"; url = \"git://github.com/edolstra/dwarffs\"; }",
        );
        parses(
            "path:/foo/bar?lastModified=12",
            "{ lastModified = 12; path = \"/foo/bar\"; type = \"path\"; }",
        );
        parses("/foo/bar", "{ path = \"/foo/bar\"; type = \"path\"; }");
        parses("nixpkgs", "{ id = \"nixpkgs\"; type = \"indirect\"; }");
        parses(
            "nixpkgs/nixos-unstable",
            "{ id = \"nixpkgs\"; ref = \"nixos-unstable\"; type = \"indirect\"; }",
        );
        parses(
            "flake:nixpkgs",
            "{ id = \"nixpkgs\"; type = \"indirect\"; }",
        );
        parses(
            "https://github.com/NixOS/patchelf/archive/master.tar.gz",
            "{ type = \"tarball\"; url = \"https://github.com/NixOS/patchelf/archive/master.tar.gz\"; }",
        );
        parses(
            "https://example.org/file.txt",
            "{ type = \"file\"; url = \"https://example.org/file.txt\"; }",
        );
        err(
            "builtins.parseFlakeRef \"github:NixOS\"",
            "URL 'github:NixOS' is not a valid github URL",
        );
        err(
            "builtins.parseFlakeRef \"github:NixOS/nixpkgs#hello\"",
            "unexpected fragment 'hello' in flake reference 'github:NixOS/nixpkgs#hello'",
        );
        err(
            "builtins.parseFlakeRef \"github:a/b?foo=1\"",
            "URL 'github:a/b?foo=1' contains unsupported parameter 'foo'",
        );
        err(
            "builtins.parseFlakeRef \"github:a/b/x?ref=y\"",
            "URL 'github:a/b/x?ref=y' already contains a branch/tag name or a commit hash",
        );
        err(
            "builtins.parseFlakeRef 1",
            "expected a string but found an integer: 1",
        );
    }

    #[test]
    fn flake_ref_to_string() {
        ok(
            "builtins.flakeRefToString { type = \"github\"; owner = \"NixOS\"; repo = \"nixpkgs\"; ref = \"23.05\"; dir = \"lib\"; }",
            "\"github:NixOS/nixpkgs/23.05?dir=lib\"",
        );
        ok(
            "builtins.flakeRefToString { type = \"git\"; url = \"https://example.org/r\"; shallow = true; submodules = false; revCount = 3; }",
            "\"git+https://example.org/r?revCount=3&shallow=1\"",
        );
        ok(
            "builtins.flakeRefToString { type = \"path\"; path = \"/a b\"; }",
            "\"path:/a b\"",
        );
        for url in [
            "github:NixOS/nixpkgs",
            "github:NixOS/nixpkgs/23.05?dir=lib",
            "gitlab:veloren/veloren/master",
            "gitlab:veloren%2Fdev/rfcs",
            "sourcehut:~misterio/nix-colors",
            "git+https://example.org/my/repo?dir=flake1&ref=master",
            "git://github.com/edolstra/dwarffs?ref=unstable",
            "git+file:///home/my-user/some-repo",
            "hg+https://example.org/repo",
            "path:/foo/bar",
            "flake:nixpkgs",
            "flake:nixpkgs/nixos-unstable",
            "https://github.com/NixOS/patchelf/archive/master.tar.gz",
            "tarball+https://example.org/download",
            "https://example.org/file.txt",
        ] {
            round_trip(url);
        }
        err(
            "let n = -1; in builtins.flakeRefToString { type = \"github\"; owner = \"NixOS\"; repo = n; }",
            "negative value given for flake ref attr repo: -1",
        );
        err(
            "builtins.flakeRefToString { type = \"github\"; owner = [ ]; repo = \"x\"; }",
            "flake reference attribute sets may only contain integers, Booleans, and strings, but attribute 'owner' is a list: [ ]",
        );
        err(
            "builtins.flakeRefToString { type = \"github\"; repo = \"x\"; }",
            "github input is missing the attribute 'owner'",
        );
        err(
            "builtins.flakeRefToString { type = \"foo\"; }",
            "unsupported input type 'foo'",
        );
        err(
            "builtins.flakeRefToString { owner = \"x\"; }",
            "flake reference attribute set is missing attribute 'type'",
        );
        err(
            "builtins.flakeRefToString 1",
            "expected a set but found an integer: 1",
        );
    }
}
