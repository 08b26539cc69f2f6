//! `tvix store copy`: between tvix stores, to and from Nix binary cache directories
//! (`file:///DIR`), from HTTP binary caches (`http(s)://`), and to and from the local Nix
//! store (`nix:///nix/store`).
//!
//! Every direction verifies before it registers: a binary cache's NARs go through the
//! substituter (signature, NAR hash and size checked); a path of the Nix store is read
//! from the file system and its NAR hash compared with Nix's database; a cache being
//! written gets a NAR whose rendered hash is the registered one; `nix-store --import`
//! checks what it is given itself.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use tvix_coordinator::realise::RealiseConfig;
use tvix_coordinator::substitute::binary_cache::BinaryCache;
use tvix_coordinator::substitute::Substituter;
use tvix_store::castore::cache_dir::CacheDirWriter;
use tvix_store::compression::Compression;
use tvix_store::pathinfo::PathInfo;
use tvix_store::signing::SecretKey;
use tvix_store::{StoreDir, StorePath, StoreService};

/// What `tvix store copy` was asked.
pub(super) struct CopyRequest<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub paths: &'a [String],
    pub secret_key_file: Option<&'a Path>,
    pub compression: &'a str,
    pub no_check_sigs: bool,
    pub options: &'a [String],
}

/// One end of a copy.
enum End {
    /// A tvix store (by URL).
    Tvix(String),
    /// A Nix binary cache directory.
    CacheDir(PathBuf),
    /// A Nix HTTP binary cache (read only).
    HttpCache,
    /// The local Nix store (its directory).
    Nix(PathBuf),
}

fn end(url: &str) -> End {
    if let Some(dir) = url.strip_prefix("file://") {
        return End::CacheDir(PathBuf::from(dir.split('?').next().unwrap_or_default()));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return End::HttpCache;
    }
    if let Some(dir) = url.strip_prefix("nix://") {
        return End::Nix(PathBuf::from(dir.split('?').next().unwrap_or_default()));
    }
    End::Tvix(url.to_string())
}

/// Runs the copy; returns the exit status or the message of the error.
pub(super) fn copy(sd: &StoreDir, req: &CopyRequest<'_>) -> Result<i32, String> {
    let paths = req
        .paths
        .iter()
        .map(|p| sd.parse_path(p).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    match (end(req.from), end(req.to)) {
        (End::Tvix(from), End::Tvix(to)) => tvix_to_tvix(sd, &from, &to, &paths),
        (End::Tvix(from), End::CacheDir(dir)) => tvix_to_cache(sd, &from, &dir, &paths, req),
        (End::CacheDir(_) | End::HttpCache, End::Tvix(to)) => {
            cache_to_tvix(sd, req.from, &to, &paths, req)
        }
        (End::Nix(dir), End::Tvix(to)) => nix_to_tvix(sd, &dir, &to, &paths),
        (End::Tvix(from), End::Nix(dir)) => tvix_to_nix(sd, &from, &dir, &paths),
        _ => Err(format!(
            "copying from '{}' to '{}' is not supported: one end must be a tvix store \
             (memory://, local://[/DIR], grpc+unix:///SOCKET, grpc+http://HOST:PORT), the \
             other a tvix store, a binary cache directory (file:///DIR), an HTTP binary cache \
             (http(s)://..., as the source only) or the Nix store (nix:///nix/store)",
            req.from, req.to
        )),
    }
}

fn open(url: &str) -> Result<Box<dyn StoreService>, String> {
    tvix_store::open(url).map_err(|e| e.to_string())
}

/// The closure of `paths` in a tvix store (everything it has when `paths` is empty),
/// references first.
fn tvix_closure(store: &dyn StoreService, paths: &[StorePath]) -> Result<Vec<PathInfo>, String> {
    let infos = if paths.is_empty() {
        store
            .path_infos()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?
    } else {
        let roots: BTreeSet<StorePath> = paths.iter().cloned().collect();
        tvix_coordinator::closure::closure_of(store, &roots).map_err(|e| e.to_string())?
    };
    tvix_store::castore::export::references_first(&infos).map_err(|e| e.to_string())
}

fn tvix_to_tvix(sd: &StoreDir, from: &str, to: &str, paths: &[StorePath]) -> Result<i32, String> {
    let _ = sd;
    let src = open(from)?;
    let dst = open(to)?;
    let wanted = (!paths.is_empty()).then_some(paths);
    let stats =
        tvix_store::castore::copy::copy_paths(&*src, &*dst, wanted).map_err(|e| e.to_string())?;
    eprintln!(
        "copied {} path(s): {} blob(s) ({} bytes), {} directories",
        stats.paths, stats.blobs, stats.blob_bytes, stats.directories
    );
    Ok(0)
}

fn tvix_to_cache(
    sd: &StoreDir,
    from: &str,
    dir: &Path,
    paths: &[StorePath],
    req: &CopyRequest<'_>,
) -> Result<i32, String> {
    let compression = Compression::parse(req.compression).map_err(|e| e.to_string())?;
    let key = match req.secret_key_file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("reading the secret key '{}': {e}", f.display()))?;
            Some(SecretKey::parse(&text).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let src = open(from)?;
    let writer = CacheDirWriter::create(dir, sd.clone(), compression, key)
        .map_err(|e| format!("writing the binary cache '{}': {e}", dir.display()))?;
    let mut written = 0;
    for info in tvix_closure(&*src, paths)? {
        if writer.has(&info.store_path) {
            continue;
        }
        eprintln!(
            "copying path '{}' to '{}'...",
            sd.display(&info.store_path),
            req.to
        );
        writer
            .write_path(&*src, &info)
            .map_err(|e| format!("copying '{}': {e}", sd.display(&info.store_path)))?;
        written += 1;
    }
    eprintln!("copied {written} path(s) to '{}'", req.to);
    Ok(0)
}

fn cache_to_tvix(
    sd: &StoreDir,
    from: &str,
    to: &str,
    paths: &[StorePath],
    req: &CopyRequest<'_>,
) -> Result<i32, String> {
    if paths.is_empty() {
        return Err("copying from a binary cache needs the store paths to copy".into());
    }
    let options: std::collections::BTreeMap<String, String> = req
        .options
        .chunks(2)
        .filter_map(|kv| Some((kv[0].clone(), kv.get(1)?.clone())))
        .collect();
    let options = tvix_coordinator::nix_conf::settings(&options).map_err(|e| e.to_string())?;
    let mut settings = RealiseConfig::from_options(to, &options)
        .map_err(|e| e.to_string())?
        .cache;
    settings.store_dir = sd.clone();
    if req.no_check_sigs {
        settings.require_sigs = false;
    }
    let cache = BinaryCache::open(from, Arc::new(settings))
        .ok_or_else(|| format!("'{from}' is not a binary cache URL"))?;
    let dst = open(to)?;
    let has = cache.has_all(paths).map_err(|e| e.to_string());
    for w in cache.take_warnings() {
        eprintln!("warning: {w}");
    }
    if !has? {
        return Err(format!(
            "the binary cache '{from}' does not have all of the paths (or has them unsigned \
             or invalid; see the warnings)"
        ));
    }
    let mut copied = 0;
    let result = cache.substitute(
        paths,
        &*dst,
        &mut |p| {
            copied += 1;
            eprintln!("copying path '{}' from '{from}'...", sd.display(p));
        },
        &tvix_build::CancelToken::new(),
    );
    for w in cache.take_warnings() {
        eprintln!("warning: {w}");
    }
    result.map_err(|e| e.to_string())?;
    eprintln!("copied {copied} path(s) from '{from}'");
    Ok(0)
}

/// The Nix database of the store at `dir`: `$NIX_STATE_DIR/db/db.sqlite`, else
/// `/nix/var/nix/db/db.sqlite`.
fn nix_db_file() -> PathBuf {
    let state = std::env::var("NIX_STATE_DIR")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/nix/var/nix".into());
    Path::new(&state).join("db").join("db.sqlite")
}

fn nix_to_tvix(sd: &StoreDir, dir: &Path, to: &str, paths: &[StorePath]) -> Result<i32, String> {
    use tvix_store::nix_db::NixDb;
    if paths.is_empty() {
        return Err("copying from the Nix store needs the store paths to copy".into());
    }
    if dir != Path::new(sd.as_str()) {
        return Err(format!(
            "the Nix store '{}' is not the store directory '{}' (set NIX_STORE_DIR)",
            dir.display(),
            sd.as_str()
        ));
    }
    let db = NixDb::open(&nix_db_file(), sd.clone()).map_err(|e| e.to_string())?;
    let closure = db.closure(paths).map_err(|e| e.to_string())?;
    let ordered = tvix_coordinator::substitute::order_references_first(
        closure.into_values().collect(),
        |i| &i.path,
        |i| i.references.as_slice(),
    );
    let dst = open(to)?;
    let mut copied = 0;
    for info in ordered {
        let shown = sd.display(&info.path);
        if dst
            .get_path_info(&info.path)
            .map_err(|e| e.to_string())?
            .is_some()
        {
            continue;
        }
        eprintln!("copying path '{shown}' from 'nix://{}'...", dir.display());
        let (node, hash, size) = tvix_store::castore::nar::ingest_path(&*dst, Path::new(&shown))
            .map_err(|e| format!("reading '{shown}': {e}"))?;
        if hash.digest() != info.nar_hash.digest() || size != info.nar_size {
            return Err(format!(
                "path '{shown}' was modified in the Nix store: its NAR hash is {} ({size} \
                 bytes) but Nix's database says {} ({} bytes)",
                hash.to_prefixed(tvix_store::hash::HashEncoding::Nix32),
                info.nar_hash
                    .to_prefixed(tvix_store::hash::HashEncoding::Nix32),
                info.nar_size
            ));
        }
        let mut nar_sha256 = [0u8; 32];
        nar_sha256.copy_from_slice(hash.digest());
        dst.put_path_info(&PathInfo {
            store_path: info.path.clone(),
            node,
            nar_sha256,
            nar_size: size,
            references: info.references.clone(),
            deriver: info.deriver.clone(),
            signatures: info.signatures.clone(),
            ca: info.ca.clone(),
        })
        .map_err(|e| e.to_string())?;
        copied += 1;
    }
    eprintln!("copied {copied} path(s) from 'nix://{}'", dir.display());
    Ok(0)
}

fn tvix_to_nix(sd: &StoreDir, from: &str, dir: &Path, paths: &[StorePath]) -> Result<i32, String> {
    if dir != Path::new(sd.as_str()) {
        return Err(format!(
            "the Nix store '{}' is not the store directory '{}' (set NIX_STORE_DIR)",
            dir.display(),
            sd.as_str()
        ));
    }
    let src = open(from)?;
    let infos = tvix_closure(&*src, paths)?;
    let mut child = Command::new("nix-store")
        .arg("--import")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("running 'nix-store --import': {e}"))?;
    let stdin = child.stdin.take().ok_or("no pipe to nix-store")?;
    let written = tvix_store::castore::export::write_export(
        &*src,
        sd,
        &infos,
        std::io::BufWriter::with_capacity(1 << 16, stdin),
    )
    .and_then(|mut w| Ok(w.flush()?));
    let status = child
        .wait()
        .map_err(|e| format!("waiting for 'nix-store --import': {e}"))?;
    written.map_err(|e| format!("writing to 'nix-store --import': {e}"))?;
    if !status.success() {
        return Err(format!("'nix-store --import' failed ({status})"));
    }
    eprintln!(
        "copied {} path(s) to 'nix://{}'",
        infos.len(),
        dir.display()
    );
    Ok(0)
}
