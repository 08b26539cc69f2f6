//! The fetchers: `fetchurl`, `fetchTarball`, `fetchGit` and `fetchTree`. Each downloads or
//! exports what it is asked for into a temporary directory through the evaluator's IO (its
//! fetch methods: the mechanics are the coordinator's) and adds it to the store through it, giving the store paths Nix gives. A fetch
//! whose result is known to be in the store already (by its expected hash, or remembered in
//! the fetch cache) is not done again.

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use super::control::primop;
use super::{fail, make_attrs};
use crate::error::{AddContext, ErrorKind, EvalError, EvalResult};
use crate::eval::{CoerceMode, Evaluator};
use crate::fetch::{self, FetchError, GitRequest, GitRevision};
use crate::io::FileIngestionMethod;
use crate::source::Span;
use crate::symbol::Symbol;
use crate::value::*;
use tvix_store::{HashAlgo, NixHash, StoreDir};

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("fetchurl", 1, fetchurl),
    primop!("fetchTarball", 1, fetch_tarball),
    primop!("fetchGit", 1, fetch_git),
    primop!("fetchTree", 1, fetch_tree),
    primop!("fetchClosure", 1, fetch_closure),
];

/// How long a fetch without an expected hash is trusted (Nix's default `tarball-ttl`).
const TTL: Duration = Duration::from_secs(3600);

fn other(msg: impl Into<String>, s: Option<Span>) -> Box<EvalError> {
    EvalError::new(ErrorKind::Other(msg.into()), s)
}

fn fetch_err(e: FetchError, s: Option<Span>) -> Box<EvalError> {
    other(e.to_string(), s)
}

/// A string (or path, which is not copied to the store) argument as text.
fn text(ev: &mut Evaluator, v: Value, s: Option<Span>) -> EvalResult<String> {
    let v = ev.force(v)?;
    let mode = if matches!(v, Value::Path(_)) {
        CoerceMode::ToString
    } else {
        CoerceMode::Interpolation
    };
    Ok(ev.coerce_to_string(v, mode, s)?.to_str_lossy().into_owned())
}

/// The store path string with its own context, as fetchers return it.
fn store_path_value(path: &str) -> Value {
    Value::String(Rc::new(NixString::with_context(
        path.as_bytes().to_vec(),
        Context::from([ContextElem::Plain(path.to_string())]),
    )))
}

fn int_value(n: i64) -> Value {
    Value::Int(n)
}

/// What was fetched into the store.
#[derive(Clone)]
struct Fetched {
    store_path: String,
    nar_hash: NixHash,
}

impl Fetched {
    fn to_fields(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("path".to_string(), self.store_path.clone()),
            ("narHash".to_string(), self.nar_hash.to_sri()),
        ])
    }

    fn from_fields(f: &BTreeMap<String, String>) -> Option<Fetched> {
        Some(Fetched {
            store_path: f.get("path")?.clone(),
            nar_hash: NixHash::parse_sri(f.get("narHash")?).ok()?,
        })
    }
}

/// Fetches `url` into the store as `name`: the file itself (`unpack = false`, a flat path)
/// or the archive's unpacked tree (a recursive path). `expected` is the flat sha256 of the
/// file or the NAR sha256 of the tree.
fn fetch_url(
    ev: &mut Evaluator,
    url: &str,
    name: &str,
    unpack: bool,
    expected: Option<&NixHash>,
    s: Option<Span>,
) -> EvalResult<Fetched> {
    let io = ev.io.clone();
    let store_dir = StoreDir::new(io.store_dir()).map_err(|e| other(e.to_string(), s))?;
    let method = if unpack {
        FileIngestionMethod::Recursive
    } else {
        FileIngestionMethod::Flat
    };
    let key = format!("url\0{url}\0{name}\0{unpack}");
    // With an expected hash, the path is known before fetching: reuse it if it is there.
    if let Some(want) = expected {
        let p = store_dir
            .make_fixed_output_path(name, method, want, [], false)
            .map_err(|e| other(e.to_string(), s))?;
        let p = store_dir.display(&p);
        if io.path_exists(Path::new(&p)).unwrap_or(false) {
            if unpack {
                return Ok(Fetched {
                    store_path: p,
                    nar_hash: want.clone(),
                });
            }
            if let Some(hit) = io
                .fetch_cache_get(&key)
                .as_ref()
                .and_then(|e| Fetched::from_fields(&e.fields))
            {
                if hit.store_path == p {
                    return Ok(hit);
                }
            }
        }
    } else if let Some(entry) = io.fetch_cache_get(&key) {
        if entry.age < TTL {
            if let Some(hit) = Fetched::from_fields(&entry.fields) {
                if io.path_exists(Path::new(&hit.store_path)).unwrap_or(false) {
                    return Ok(hit);
                }
            }
        }
    }

    let tmp = tempfile::tempdir().map_err(|e| other(e.to_string(), s))?;
    let file = tmp.path().join("download");
    io.download(url, &file).map_err(|e| fetch_err(e, s))?;
    let source = if unpack {
        let dest = tmp.path().join("unpacked");
        std::fs::create_dir(&dest).map_err(|e| other(e.to_string(), s))?;
        io.unpack_archive(&file, &dest, url)
            .map_err(|e| fetch_err(e, s))?
    } else {
        file.clone()
    };
    let added = io
        .add_fetched_path(&source, name, method)
        .map_err(|e| other(e.to_string(), s))?;
    if let Some(want) = expected {
        if *want != added.content_hash {
            return fail(
                format!(
                    "hash mismatch in file downloaded from '{url}':\n  specified: {}\n  got:       {}",
                    want.to_prefixed(tvix_store::hash::HashEncoding::Nix32),
                    added
                        .content_hash
                        .to_prefixed(tvix_store::hash::HashEncoding::Nix32)
                ),
                s,
            );
        }
    }
    let nar_hash = if unpack {
        added.content_hash
    } else {
        tvix_store::nar::nar_hash_of_path(&file)
            .map_err(|e| other(e.to_string(), s))?
            .0
    };
    let fetched = Fetched {
        store_path: added.store_path,
        nar_hash,
    };
    if io.writes_to_store() {
        io.fetch_cache_put(&key, &fetched.to_fields());
    }
    Ok(fetched)
}

/// Parses an expected sha256 given as `sha256` (any encoding) or `hash` (SRI).
fn parse_sha256(text: &str, s: Option<Span>) -> EvalResult<NixHash> {
    let h = NixHash::parse(text, Some(HashAlgo::Sha256)).map_err(|e| other(e.to_string(), s))?;
    if h.algo() != HashAlgo::Sha256 {
        return fail(
            format!("hash '{text}' is not a sha256 hash, which is all fetchers accept"),
            s,
        );
    }
    Ok(h)
}

/// The arguments `fetchurl` and `fetchTarball` share.
struct UrlArgs {
    url: String,
    name: Option<String>,
    expected: Option<NixHash>,
    /// Whether the argument was a set (it changes the advice in name errors).
    was_set: bool,
}

fn url_args(ev: &mut Evaluator, v: Value, who: &str, s: Option<Span>) -> EvalResult<UrlArgs> {
    let v = ev.force(v)?;
    let Value::Attrs(attrs) = &v else {
        return Ok(UrlArgs {
            url: text(ev, v, s)?,
            name: None,
            expected: None,
            was_set: false,
        });
    };
    let mut out = UrlArgs {
        url: String::new(),
        name: None,
        expected: None,
        was_set: true,
    };
    let mut url = None;
    for entry in attrs.iter() {
        match entry.name.as_str() {
            "url" => url = Some(text(ev, entry.value.clone(), s)?),
            "name" => out.name = Some(text(ev, entry.value.clone(), s)?),
            "sha256" | "hash" => {
                let t = text(ev, entry.value.clone(), s)?;
                if !t.is_empty() {
                    out.expected = Some(parse_sha256(&t, s)?);
                }
            }
            other_name => {
                return fail(
                    format!("unsupported argument '{other_name}' to '{who}'"),
                    entry.pos.get().or(s),
                )
            }
        }
    }
    out.url = match url {
        Some(u) => u,
        None => return fail(format!("'url' argument required by '{who}'"), s),
    };
    Ok(out)
}

/// Checks a store path name the way the reference does for fetched URLs.
fn check_fetch_name(args: &UrlArgs, name: &str, who: &str, s: Option<Span>) -> EvalResult<()> {
    if let Err(e) = tvix_store::store_path::validate_name(name) {
        let advice = match (args.was_set, args.name.is_some()) {
            (false, _) => format!(
                "Please pass an attribute set with 'url' and 'name' attributes to '{who}',  so that it can create a valid store path."
            ),
            (true, false) => format!(
                "Please add a valid 'name' attribute to the argument for '{who}', so that it can create a valid store path."
            ),
            (true, true) => format!(
                "Please change the value for the 'name' attribute passed to '{who}', so that it can create a valid store path."
            ),
        };
        return fail(
            format!(
                "invalid store path name when fetching URL '{}': {e}. {advice}",
                args.url
            ),
            s,
        );
    }
    Ok(())
}

/// `builtins.fetchurl url` / `{ url; sha256 ? ""; hash ? ""; name ? baseNameOf url; }`.
fn fetchurl(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let args = url_args(ev, a[0].clone(), "fetchurl", s)?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| fetch::url_base_name(&args.url).to_string());
    check_fetch_name(&args, &name, "fetchurl", s)?;
    let f = fetch_url(ev, &args.url, &name, false, args.expected.as_ref(), s)?;
    Ok(store_path_value(&f.store_path))
}

/// `builtins.fetchTarball url` / `{ url; sha256 ? ""; name ? "source"; }`.
fn fetch_tarball(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let args = url_args(ev, a[0].clone(), "fetchTarball", s)?;
    let name = args.name.clone().unwrap_or_else(|| "source".to_string());
    check_fetch_name(&args, &name, "fetchTarball", s)?;
    let f = fetch_url(ev, &args.url, &name, true, args.expected.as_ref(), s)?;
    Ok(store_path_value(&f.store_path))
}

/// The arguments of a git fetch.
#[derive(Default)]
struct GitArgs {
    url: String,
    git_ref: Option<String>,
    rev: Option<String>,
    name: Option<String>,
    submodules: bool,
    nar_hash: Option<NixHash>,
}

/// Fetches a git revision; the result set of `fetchGit`.
fn fetch_git_args(ev: &mut Evaluator, args: GitArgs, s: Option<Span>) -> EvalResult<Value> {
    if args.submodules {
        return fail(
            "fetching git submodules ('submodules = true') is not supported by tvix yet",
            s,
        );
    }
    let name = args.name.clone().unwrap_or_else(|| "source".to_string());
    tvix_store::store_path::validate_name(&name).map_err(|e| other(e.to_string(), s))?;
    let io = ev.io.clone();
    // Only a pinned revision is the same every time; anything else is looked at again.
    let key = args
        .rev
        .as_ref()
        .map(|rev| format!("git\0{}\0{rev}\0{name}", args.url));
    let cached = key
        .as_ref()
        .and_then(|k| io.fetch_cache_get(k))
        .filter(|e| {
            e.fields
                .get("path")
                .is_some_and(|p| io.path_exists(Path::new(p)).unwrap_or(false))
        });
    let (fetched, revision) = match cached.and_then(|e| {
        let f = Fetched::from_fields(&e.fields)?;
        let rev = GitRevision {
            rev: e.fields.get("rev")?.clone(),
            rev_count: e.fields.get("revCount")?.parse().ok()?,
            last_modified: e.fields.get("lastModified")?.parse().ok()?,
            dirty: false,
        };
        Some((f, rev))
    }) {
        Some(hit) => hit,
        None => {
            let tmp = tempfile::tempdir().map_err(|e| other(e.to_string(), s))?;
            let dest = tmp.path().join("checkout");
            std::fs::create_dir(&dest).map_err(|e| other(e.to_string(), s))?;
            let req = GitRequest {
                url: &args.url,
                git_ref: args.git_ref.as_deref(),
                rev: args.rev.as_deref(),
            };
            let scratch = tmp.path().join("scratch");
            std::fs::create_dir(&scratch).map_err(|e| other(e.to_string(), s))?;
            let revision = io
                .git_export(&req, &dest, &scratch)
                .map_err(|e| fetch_err(e, s))?;
            if revision.dirty {
                (ev.diagnostics)(&format!("warning: Git tree '{}' is dirty", args.url));
            }
            let added = io
                .add_fetched_path(&dest, &name, FileIngestionMethod::Recursive)
                .map_err(|e| other(e.to_string(), s))?;
            let fetched = Fetched {
                store_path: added.store_path,
                nar_hash: added.content_hash,
            };
            if let (Some(k), true) = (&key, io.writes_to_store()) {
                let mut fields = fetched.to_fields();
                fields.insert("rev".into(), revision.rev.clone());
                fields.insert("revCount".into(), revision.rev_count.to_string());
                fields.insert("lastModified".into(), revision.last_modified.to_string());
                io.fetch_cache_put(k, &fields);
            }
            (fetched, revision)
        }
    };
    check_nar_hash(&args.url, args.nar_hash.as_ref(), &fetched, s)?;
    Ok(make_attrs([
        (
            Symbol::intern("lastModified"),
            int_value(revision.last_modified),
        ),
        (
            Symbol::intern("lastModifiedDate"),
            Value::string(fetch::format_date(revision.last_modified)),
        ),
        (
            Symbol::intern("narHash"),
            Value::string(fetched.nar_hash.to_sri()),
        ),
        (
            Symbol::intern("outPath"),
            store_path_value(&fetched.store_path),
        ),
        (Symbol::intern("rev"), Value::string(revision.rev.clone())),
        (
            Symbol::intern("revCount"),
            int_value(revision.rev_count as i64),
        ),
        (
            Symbol::intern("shortRev"),
            Value::string(revision.rev[..7.min(revision.rev.len())].to_string()),
        ),
        (Symbol::intern("submodules"), Value::bool(false)),
    ]))
}

fn check_nar_hash(
    input: &str,
    want: Option<&NixHash>,
    got: &Fetched,
    s: Option<Span>,
) -> EvalResult<()> {
    match want {
        Some(w) if *w != got.nar_hash => fail(
            format!(
                "NAR hash mismatch in input '{input}', expected '{}' but got '{}'",
                w.to_sri(),
                got.nar_hash.to_sri()
            ),
            s,
        ),
        _ => Ok(()),
    }
}

/// `builtins.fetchGit url` / `{ url; ref ? ; rev ? ; name ? "source"; submodules ? false; ... }`.
fn fetch_git(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let v = ev.force(a[0].clone())?;
    let mut args = GitArgs::default();
    match &v {
        Value::Attrs(attrs) => {
            let mut url = None;
            for entry in attrs.iter() {
                match entry.name.as_str() {
                    "url" => url = Some(text(ev, entry.value.clone(), s)?),
                    "ref" => args.git_ref = Some(text(ev, entry.value.clone(), s)?),
                    "rev" => args.rev = Some(text(ev, entry.value.clone(), s)?),
                    "name" => args.name = Some(text(ev, entry.value.clone(), s)?),
                    "submodules" => args.submodules = ev.force_bool(entry.value.clone(), s)?,
                    "shallow" | "allRefs" | "lfs" | "exportIgnore" => {
                        ev.force_bool(entry.value.clone(), s)?;
                    }
                    "narHash" => {
                        let t = text(ev, entry.value.clone(), s)?;
                        args.nar_hash = Some(parse_sha256(&t, s)?);
                    }
                    other_name => {
                        return fail(
                            format!("unsupported argument '{other_name}' to 'fetchGit'"),
                            entry.pos.get().or(s),
                        )
                    }
                }
            }
            args.url = url.ok_or_else(|| other("'url' argument required by 'fetchGit'", s))?;
        }
        _ => args.url = text(ev, v.clone(), s)?,
    }
    if let Some(rev) = &args.rev {
        if rev.len() != 40 || !rev.bytes().all(|b| b.is_ascii_hexdigit()) {
            return fail(
                format!(
                    "invalid Git revision '{rev}': a full 40-character commit hash is required"
                ),
                s,
            );
        }
    }
    fetch_git_args(ev, args, s)
}

/// A `fetchTree` input in attribute form, every value as text (integers and Booleans as
/// Nix prints them).
type Input = BTreeMap<String, String>;

fn is_archive(url: &str) -> bool {
    let base = fetch::url_base_name(url);
    [
        ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar.zst", ".zip",
    ]
    .iter()
    .any(|ext| base.ends_with(ext))
}

/// Parses a `fetchTree` URL-like input string into its attribute form.
fn parse_input_url(url: &str, s: Option<Span>) -> EvalResult<Input> {
    let mut input = Input::new();
    let (scheme, rest) = url.split_once(':').unwrap_or(("", url));
    let (kind, transport) = match scheme.split_once('+') {
        Some((k, t)) => (k, Some(t)),
        None => (scheme, None),
    };
    let full_url = |t: &str| format!("{t}:{rest}");
    match (kind, transport) {
        ("github", None) => {
            let parts: Vec<&str> = rest.split('/').collect();
            if parts.len() < 2 {
                return fail(format!("'{url}' is not a valid GitHub URL"), s);
            }
            input.insert("type".into(), "github".into());
            input.insert("owner".into(), parts[0].into());
            input.insert("repo".into(), parts[1].into());
            if let Some(r) = parts.get(2) {
                let key = if r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()) {
                    "rev"
                } else {
                    "ref"
                };
                input.insert(key.into(), r.to_string());
            }
        }
        ("path", None) => {
            input.insert("type".into(), "path".into());
            input.insert("path".into(), rest.to_string());
        }
        ("git", Some(t)) => {
            input.insert("type".into(), "git".into());
            input.insert("url".into(), full_url(t));
        }
        ("tarball", Some(t)) | ("file", Some(t)) => {
            input.insert("type".into(), kind.into());
            input.insert("url".into(), full_url(t));
        }
        ("file", None) | ("http", None) | ("https", None) => {
            let ty = if is_archive(url) { "tarball" } else { "file" };
            if kind == "file" && !rest.starts_with('/') {
                return fail(
                    format!(
                        "{ty} '{url}' must use an absolute path. The 'file' scheme does not support relative paths."
                    ),
                    s,
                );
            }
            input.insert("type".into(), ty.into());
            input.insert("url".into(), url.to_string());
        }
        _ => return fail(format!("input '{url}' is not supported by fetchTree"), s),
    }
    Ok(input)
}

/// `builtins.fetchTree input`: `input` is a set with `type` (`tarball`, `file`, `git`,
/// `path`, `github`) and that type's attributes, or a URL-like string.
fn fetch_tree(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let v = ev.force(a[0].clone())?;
    let (input, shown) = match &v {
        Value::Attrs(attrs) => {
            let mut input = Input::new();
            for entry in attrs.iter() {
                let name = entry.name.as_str().to_string();
                let val = ev.force(entry.value.clone())?;
                let t = match &val {
                    Value::Int(n) if *n < 0 => {
                        return fail(
                            format!("negative value given for 'fetchTree' argument '{name}': {n}"),
                            s,
                        )
                    }
                    Value::Int(n) => n.to_string(),
                    Value::Bool(b) => b.get().to_string(),
                    _ => text(ev, val.clone(), s)?,
                };
                input.insert(name, t);
            }
            if !input.contains_key("type") {
                return fail("attribute 'type' is missing in call to 'fetchTree'", s);
            }
            let shown = input_to_string(&input);
            (input, shown)
        }
        _ => {
            let url = text(ev, v.clone(), s)?;
            let input = parse_input_url(&url, s)
                .context(s, || format!("while fetching the input '{url}'"))?;
            (input, url)
        }
    };
    fetch_input(ev, input, s).context(s, || format!("while fetching the input '{shown}'"))
}

/// An input set shown the way URL-like inputs are written.
fn input_to_string(input: &Input) -> String {
    match (
        input.get("type").map(String::as_str),
        input.get("url"),
        input.get("path"),
    ) {
        (Some("path"), _, Some(p)) => format!("path:{p}"),
        (Some(t), Some(u), _) if t == "git" || t == "tarball" || t == "file" => {
            if u.starts_with(&format!("{t}+")) {
                u.clone()
            } else {
                format!("{t}+{u}")
            }
        }
        (Some("github"), _, _) => format!(
            "github:{}/{}",
            input.get("owner").map(String::as_str).unwrap_or(""),
            input.get("repo").map(String::as_str).unwrap_or("")
        ),
        _ => format!("{input:?}"),
    }
}

fn fetch_input(ev: &mut Evaluator, mut input: Input, s: Option<Span>) -> EvalResult<Value> {
    let ty = input.remove("type").unwrap_or_default();
    let nar_hash = match input.remove("narHash") {
        Some(t) => Some(parse_sha256(&t, s)?),
        None => None,
    };
    let name = input.remove("name").unwrap_or_else(|| "source".to_string());
    let allowed: &[&str] = match ty.as_str() {
        "tarball" | "file" => &["url", "lastModified", "rev", "revCount"],
        "git" => &[
            "url",
            "ref",
            "rev",
            "submodules",
            "shallow",
            "allRefs",
            "lastModified",
            "revCount",
            "lfs",
            "exportIgnore",
        ],
        "path" => &["path", "lastModified", "rev", "revCount"],
        "github" => &["owner", "repo", "ref", "rev", "host", "lastModified"],
        other_ty => {
            return fail(
                format!("input type '{other_ty}' is not supported by tvix's fetchTree"),
                s,
            )
        }
    };
    if let Some(k) = input.keys().find(|k| !allowed.contains(&k.as_str())) {
        return fail(format!("unsupported {ty} input attribute '{k}'"), s);
    }
    let required = |input: &Input, k: &str| {
        input
            .get(k)
            .cloned()
            .ok_or_else(|| other(format!("{ty} input is missing the attribute '{k}'"), s))
    };
    let result: Vec<(Symbol, Value)> = match ty.as_str() {
        "tarball" | "file" | "github" => {
            let url = if ty == "github" {
                let owner = required(&input, "owner")?;
                let repo = required(&input, "repo")?;
                let host = input
                    .get("host")
                    .cloned()
                    .unwrap_or_else(|| "github.com".into());
                let version = input
                    .get("rev")
                    .or(input.get("ref"))
                    .cloned()
                    .unwrap_or_else(|| "HEAD".into());
                format!("https://{host}/{owner}/{repo}/archive/{version}.tar.gz")
            } else {
                required(&input, "url")?
            };
            let unpack = ty != "file";
            let expected = if unpack { nar_hash.clone() } else { None };
            let f = fetch_url(ev, &url, &name, unpack, expected.as_ref(), s)?;
            check_nar_hash(&url, nar_hash.as_ref(), &f, s)?;
            let mut r = vec![
                (
                    Symbol::intern("narHash"),
                    Value::string(f.nar_hash.to_sri()),
                ),
                (Symbol::intern("outPath"), store_path_value(&f.store_path)),
            ];
            if let Some(rev) = input.get("rev") {
                r.push((Symbol::intern("rev"), Value::string(rev.clone())));
                r.push((
                    Symbol::intern("shortRev"),
                    Value::string(rev[..7.min(rev.len())].to_string()),
                ));
            }
            r
        }
        "git" => {
            let args = GitArgs {
                url: required(&input, "url")?,
                git_ref: input.get("ref").cloned(),
                rev: input.get("rev").cloned(),
                name: Some(name),
                submodules: input.get("submodules").is_some_and(|v| v == "true"),
                nar_hash,
            };
            return fetch_git_args(ev, args, s);
        }
        "path" => {
            let path = required(&input, "path")?;
            if !path.starts_with('/') {
                return fail(format!("path input '{path}' must be an absolute path"), s);
            }
            let io = ev.io.clone();
            let added = io
                .add_fetched_path(Path::new(&path), &name, FileIngestionMethod::Recursive)
                .map_err(|e| other(e.to_string(), s))?;
            let f = Fetched {
                store_path: added.store_path,
                nar_hash: added.content_hash,
            };
            check_nar_hash(&path, nar_hash.as_ref(), &f, s)?;
            let mtime = std::fs::symlink_metadata(&path)
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            vec![
                (Symbol::intern("lastModified"), int_value(mtime)),
                (
                    Symbol::intern("lastModifiedDate"),
                    Value::string(fetch::format_date(mtime)),
                ),
                (
                    Symbol::intern("narHash"),
                    Value::string(f.nar_hash.to_sri()),
                ),
                (Symbol::intern("outPath"), store_path_value(&f.store_path)),
            ]
        }
        other_ty => return fail(format!("input type '{other_ty}' is not supported"), s),
    };
    Ok(make_attrs(result))
}

/// `builtins.fetchClosure { fromStore; fromPath; toPath ? null; inputAddressed ? false; }`:
/// copies `fromPath` and everything it refers to from a binary cache into the store.
fn fetch_closure(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    if !ev.config.fetch_closure {
        return fail(
            "experimental Nix feature 'fetch-closure' is disabled; add '--extra-experimental-features fetch-closure' to enable it",
            s,
        );
    }
    let args = ev.force_attrs(a[0].clone(), s)?;
    let sd = StoreDir::new(ev.io.store_dir()).map_err(|e| other(e.to_string(), s))?;
    let mut from_store = None;
    let mut from_path = None;
    let mut to_path = None;
    let mut input_addressed = false;
    for entry in args.iter() {
        let pos = entry.pos.get().or(s);
        match entry.name.as_str() {
            "fromStore" => from_store = Some(text(ev, entry.value.clone(), pos)?),
            "fromPath" | "toPath" => {
                let p = text(ev, entry.value.clone(), pos)?;
                let parsed = sd
                    .parse_path(&p)
                    .map_err(|_| other(format!("path '{p}' is not in the Nix store"), pos))?;
                if entry.name.as_str() == "fromPath" {
                    from_path = Some(parsed);
                } else {
                    to_path = Some(parsed);
                }
            }
            "inputAddressed" => input_addressed = ev.force_bool(entry.value.clone(), pos)?,
            other_name => {
                return fail(
                    format!("attribute '{other_name}' isn't supported in call to 'fetchClosure'"),
                    s,
                )
            }
        }
    }
    let missing = |n: &str| {
        other(
            format!("attribute '{n}' is missing in call to 'fetchClosure'"),
            s,
        )
    };
    let from_store = from_store.ok_or_else(|| missing("fromStore"))?;
    let from_path = from_path.ok_or_else(|| missing("fromPath"))?;
    let base = from_store
        .split('?')
        .next()
        .unwrap_or_default()
        .trim_end_matches('/');
    if !["http://", "https://", "file://"]
        .iter()
        .any(|scheme| base.starts_with(scheme))
    {
        return fail(
            "'fetchClosure' only supports http://, https:// and file:// stores",
            s,
        );
    }
    let shown = sd.display(&from_path);
    // A path already in the store is not fetched again. (Its addressing is then not
    // checked against the arguments: that uses the cache's narinfo.)
    if ev.io.path_exists(Path::new(&shown)).unwrap_or(false) {
        return Ok(store_path_value(&shown));
    }
    let root = narinfo_of(ev, base, &sd, &from_path, s)?;
    match (&root.ca, input_addressed, &to_path) {
        (Some(_), true, _) => {
            return fail(
                format!(
                    "The store object referred to by 'fromPath' at '{shown}' is not input-addressed, but 'inputAddressed' is set to 'true'. Remove the 'inputAddressed' attribute (or set it to 'false') to ensure that the store object is content-addressed."
                ),
                s,
            )
        }
        (None, false, None) => {
            return fail(
                format!(
                    "The 'fromPath' value '{shown}' is input-addressed, but 'inputAddressed' is set to 'false' (default). If you do intend to fetch an input-addressed store path, add\n\n  inputAddressed = true;\n\nto the 'fetchClosure' arguments.\n\nNote that to ensure authenticity input-addressed store paths, users must configure a trusted binary cache public key on their systems. This is not needed for content-addressed paths."
                ),
                s,
            )
        }
        (_, _, Some(to)) if *to != from_path || root.ca.is_none() => {
            return fail(
                format!(
                    "rewriting '{shown}' to content-addressed form is not supported by tvix yet"
                ),
                s,
            )
        }
        _ => {}
    }
    // The paths to add, each after everything it refers to (depth first, post-order), so
    // that no path is valid before its references. A path already in the store has its
    // closure there too, so it is neither walked nor fetched.
    let io = ev.io.clone();
    let mut order = Vec::new();
    let mut seen: std::collections::HashSet<tvix_store::StorePath> = [from_path.clone()].into();
    let mut stack = vec![(root, 0usize)];
    while let Some((info, next)) = stack.last_mut() {
        let Some(r) = info.references.get(*next).cloned() else {
            if let Some((info, _)) = stack.pop() {
                order.push(info);
            }
            continue;
        };
        *next += 1;
        if seen.insert(r.clone()) && !io.path_exists(Path::new(&sd.display(&r))).unwrap_or(false) {
            stack.push((narinfo_of(ev, base, &sd, &r, s)?, 0));
        }
    }
    for info in &order {
        info.check_content_address(&sd)
            .map_err(|e| other(e.to_string(), s))?;
        let url = format!("{base}/{}", info.url);
        // The NAR file goes to a temporary file and from there through the decompressor
        // into the store: it is never held in memory whole.
        let tmp = tempfile::NamedTempFile::new().map_err(|e| fetch_err(e.into(), s))?;
        io.download(&url, tmp.path()).map_err(|e| fetch_err(e, s))?;
        let file = std::fs::File::open(tmp.path()).map_err(|e| fetch_err(e.into(), s))?;
        let mut nar = io
            .decompress(
                Box::new(std::io::BufReader::new(file)),
                &info.compression,
                &url,
            )
            .map_err(|e| fetch_err(e, s))?;
        let refs: Vec<String> = info.references.iter().map(|r| sd.display(r)).collect();
        io.add_nar(
            &sd.display(&info.store_path),
            &mut nar,
            &info
                .nar_hash
                .to_prefixed(tvix_store::hash::HashEncoding::Nix32),
            &refs,
            info.ca.as_deref(),
        )
        .map_err(|e| other(e.to_string(), s))?;
    }
    Ok(store_path_value(&shown))
}

/// The contents of `url` (a file of a binary cache), downloaded through the IO.
fn fetch_bytes(io: &dyn crate::io::EvalIO, url: &str) -> Result<Vec<u8>, FetchError> {
    let tmp = tempfile::NamedTempFile::new()?;
    io.download(url, tmp.path())?;
    Ok(std::fs::read(tmp.path())?)
}

/// The narinfo of `path` in the binary cache at `base`.
fn narinfo_of(
    ev: &Evaluator,
    base: &str,
    sd: &StoreDir,
    path: &tvix_store::StorePath,
    s: Option<Span>,
) -> EvalResult<tvix_store::narinfo::NarInfo> {
    let url = format!("{base}/{}.narinfo", path.hash_part());
    let bytes = match fetch_bytes(&*ev.io, &url) {
        Ok(b) => b,
        // An IO that does not fetch says so rather than that the path is missing.
        Err(e @ FetchError::Refused(_)) => return Err(fetch_err(e, s)),
        Err(_) => {
            return Err(other(
                format!(
                    "path '{}' is not available from the binary cache '{base}'",
                    sd.display(path)
                ),
                s,
            ))
        }
    };
    let info = tvix_store::narinfo::NarInfo::parse(&String::from_utf8_lossy(&bytes), sd)
        .map_err(|e| other(format!("unable to download '{url}': {e}"), s))?;
    if info.store_path != *path {
        return Err(other(
            format!(
                "the narinfo '{url}' is for '{}', not '{}'",
                sd.display(&info.store_path),
                sd.display(path)
            ),
            s,
        ));
    }
    Ok(info)
}
