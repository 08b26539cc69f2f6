//! `tvix store ...`: import, export and inspect the content-addressed store.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `tvix store ...`: the store subcommands.
#[derive(Args)]
pub(super) struct StoreArgs {
    /// The store to use: `memory://`, `local://` (the default directory),
    /// `local:///path/to/dir`, or a daemon: `grpc+unix:///path/to/socket`,
    /// `grpc+http://HOST:PORT`. Defaults to `$TVIX_STORE`, else `local://`.
    #[arg(long, global = true, value_name = "URL")]
    store: Option<String>,
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Add paths to the store as `nix-store --add` does and print their store paths; with
    /// `--format nix`, import what `nix-store --export` wrote (read from standard input;
    /// nothing is registered unless all of it is good).
    Import {
        /// `files` (the default): files, directories or symlinks to add; `nix`: Nix's
        /// export format on standard input.
        #[arg(long, value_enum, default_value_t = ImportFormat::Files)]
        format: ImportFormat,
        /// Files, directories or symlinks to add.
        paths: Vec<PathBuf>,
    },
    /// Write the NAR of a store path (or a path inside one) to standard output, as
    /// `nix-store --dump` does; with `--format nix`, store paths in Nix's export format,
    /// as `nix-store --export` writes them.
    Export {
        /// `nar` (the default): the NAR of one path; `nix`: Nix's export format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Nar)]
        format: ExportFormat,
        /// The store path(s).
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Show the path info of store paths (all registered paths if none are given).
    Info {
        /// Store paths.
        paths: Vec<String>,
    },
    /// List a directory inside a store path.
    Ls {
        /// A store path, or a path inside one.
        path: String,
    },
    /// Print a file inside a store path.
    Cat {
        /// A store path, or a path inside one.
        path: String,
    },
    /// Re-hash everything in the store (every chunk against its BLAKE3 digest, which
    /// reads from a local store's own packs leave to a checksum) and report problems;
    /// exit 1 if there are any.
    Verify,
    /// Delete every store path no GC root reaches (`result` links of `tvix build`, roots
    /// in the store's `gcroots/` directory, paths running processes hold), and free the
    /// space only they used. Only a local store can be collected.
    Gc {
        /// Only print the paths that would be deleted (on standard output).
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy store paths with their closures (all paths if none are given, between tvix
    /// stores), from one store to another; only what the target lacks is transferred.
    /// Besides tvix stores, an end can be a Nix binary cache directory (`file:///DIR`,
    /// written as `nix copy --to file://` writes it, read with signatures checked) or
    /// the local Nix store (`nix:///nix/store`: read with Nix's database and the NAR
    /// hashes checked; written through `nix-store --import`).
    Copy {
        /// The store to copy from.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The store to copy to.
        #[arg(long, value_name = "URL")]
        to: String,
        /// Sign what is written to a binary cache with this key (as written by
        /// `nix-store --generate-binary-cache-key`).
        #[arg(long, value_name = "FILE")]
        secret_key_file: Option<PathBuf>,
        /// Compression of the NARs written to a binary cache: xz, zstd, bzip2 or none.
        #[arg(long, default_value = "xz")]
        compression: String,
        /// Accept paths of a binary cache that no trusted key signed.
        #[arg(long)]
        no_check_sigs: bool,
        /// Set a Nix setting (`trusted-public-keys`, `require-sigs`, ...), over nix.conf
        /// and `NIX_CONFIG`.
        #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"])]
        option: Vec<String>,
        /// Store paths to copy.
        paths: Vec<String>,
    },
    /// Serve the store (given by `--store`) to `grpc+unix://` and `grpc+http://` clients
    /// until killed.
    ///
    /// With `--chunks` and `--metadata` instead of `--store`, the daemon serves a store
    /// composed of a chunk store and a metadata store that many daemons may share: any of
    /// them serves the same store. With `TVIX_SHOW_STATS=1` it prints the requests made
    /// to the chunk store when it stops.
    Daemon {
        /// `unix:///path/to/socket` or `HOST:PORT` (port 0 picks a free port; the
        /// address to connect to is printed on standard error).
        #[arg(long, value_name = "ADDRESS")]
        listen: String,
        /// Where chunks are stored, packed into objects of several MiB:
        /// `s3://BUCKET/PREFIX` (options as query parameters, e.g.
        /// `?endpoint=http://127.0.0.1:9000&region=us-east-1`; credentials from the AWS
        /// environment variables and profile files), `gs://BUCKET/PREFIX`,
        /// `az://CONTAINER/PREFIX`, `file:///DIR` or `local:///DIR`.
        #[arg(long, value_name = "URL", requires = "metadata")]
        chunks: Option<String>,
        /// Where the metadata is stored: `postgresql://USER@HOST:PORT/DB` (shared by
        /// daemons on several machines) or `redb:///FILE`.
        #[arg(long, value_name = "URL", requires = "chunks")]
        metadata: Option<String>,
    },
    /// Serve the store (given by `--store`) as a Nix HTTP binary cache until killed:
    /// `/nix-cache-info`, `/<hash>.narinfo` (signed on the fly with `--secret-key-file`),
    /// `/nar/...` (rendered from the store and compressed as it is sent; uncompressed
    /// ones also in byte ranges), `/<hash>.ls` (NAR listings) and `/log/<drv>` (tvix's
    /// build logs), so `nix-store -r --option substituters http://ADDR` fetches tvix's
    /// paths. Read-only unless `--allow-uploads` is given.
    Serve {
        /// `HOST:PORT` (port 0 picks a free port; the URL is printed on standard error).
        #[arg(long, value_name = "ADDRESS")]
        listen: String,
        /// Sign narinfos with this key (as written by
        /// `nix-store --generate-binary-cache-key`).
        #[arg(long, value_name = "FILE")]
        secret_key_file: Option<PathBuf>,
        /// Compression of the NARs narinfos point to: zstd, xz, bzip2 or none.
        #[arg(long, default_value = "zstd")]
        compression: String,
        /// The cache's priority in `nix-cache-info` (lower is asked first).
        #[arg(long, value_name = "N", default_value_t = 40)]
        priority: u64,
        /// Accept uploads: `nix copy --to http://ADDR` stores paths into the store (each
        /// registered only after its NAR hash and size are checked and its references
        /// are in the store). Off by default: anyone who can reach the address could
        /// add paths.
        #[arg(long)]
        allow_uploads: bool,
        /// Where uploaded NAR files wait for their narinfo (default: the system's
        /// temporary directory).
        #[arg(long, value_name = "DIR", requires = "allow_uploads")]
        upload_staging_dir: Option<PathBuf>,
    },
    /// Mount the store (given by `--store`) read-only on DIR with FUSE, in the foreground
    /// until SIGINT or SIGTERM, which unmount it. Store paths appear at DIR's root.
    Mount {
        /// The mount point, an existing directory (not `/nix/store` if a reference Nix
        /// uses it on this machine).
        dir: PathBuf,
        /// Do not list the store paths at the root (for stores too big to list); they
        /// are still found by name.
        #[arg(long)]
        no_list_root: bool,
        /// Threads serving file system requests.
        #[arg(long, value_name = "N", default_value_t = 4)]
        threads: usize,
        /// Let other users use the mount (non-root users need `user_allow_other` in
        /// /etc/fuse.conf).
        #[arg(long)]
        allow_other: bool,
        /// Set a Nix option: with `substituters` (and `trusted-public-keys`, ...), a
        /// path the store lacks is substituted when it is first looked up. Read from
        /// nix.conf and `NIX_CONFIG` too, as Nix reads them.
        #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"])]
        option: Vec<String>,
    },
    /// Run COMMAND with the store (given by `--store`) mounted read-only on the store
    /// directory (`$NIX_STORE_DIR`, else `/nix/store`) in a private mount namespace: the
    /// command sees tvix's store there (so `./result/bin/x` runs), every other process
    /// still sees the directory as it was (a reference Nix's store stays untouched).
    /// Needs root. Exits with the command's status.
    Run {
        /// Threads serving file system requests.
        #[arg(long, value_name = "N", default_value_t = 4)]
        threads: usize,
        /// Lay the tvix store over the directory's own contents (a read-only overlay)
        /// instead of hiding them: the host's store paths stay visible too.
        #[arg(long)]
        over_host: bool,
        /// The command and its arguments (after `--`).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<std::ffi::OsString>,
    },
}

/// What `tvix store import` reads.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ImportFormat {
    /// Files from the file system, as `nix-store --add`.
    Files,
    /// Nix's export format on standard input, as `nix-store --import`.
    Nix,
}

/// What `tvix store export` writes.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExportFormat {
    /// The NAR of one path, as `nix-store --dump`.
    Nar,
    /// Nix's export format, as `nix-store --export`.
    Nix,
}

/// The store directory paths are computed for: `$NIX_STORE_DIR`, else `/nix/store`.
fn store_dir() -> Result<tvix_store::StoreDir, String> {
    match std::env::var("NIX_STORE_DIR") {
        Ok(d) if !d.is_empty() => tvix_store::StoreDir::new(d).map_err(|e| e.to_string()),
        _ => Ok(tvix_store::StoreDir::default()),
    }
}

pub(super) fn store_command(args: StoreArgs) -> i32 {
    let url = args
        .store
        .clone()
        .unwrap_or_else(tvix_store::castore::default_store_url);
    match store_command_inner(&url, args.command) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("error: {msg}");
            1
        }
    }
}

/// Holds `paths` as temporary GC roots of a local store while they are read (other stores
/// are not collected by this machine's processes: nothing to hold).
pub(super) fn hold_paths(
    url: &str,
    sd: &tvix_store::StoreDir,
    paths: &[tvix_store::StorePath],
) -> Result<Option<tvix_store::castore::gc::TempRoots>, String> {
    if tvix_store::castore::local_store_dir(url)
        .ok()
        .flatten()
        .is_none()
    {
        return Ok(None);
    }
    let roots = tvix_store::castore::gc::GcRoots::for_store_url(url).map_err(|e| e.to_string())?;
    let mut temp = roots.temp_roots().map_err(|e| e.to_string())?;
    for p in paths {
        temp.add(&sd.display(p)).map_err(|e| e.to_string())?;
    }
    Ok(Some(temp))
}

/// Resolves `STOREPATH[/sub/path]` to its path info and the node it names.
fn store_lookup(
    store: &dyn tvix_store::StoreService,
    sd: &tvix_store::StoreDir,
    path: &str,
) -> Result<(tvix_store::pathinfo::PathInfo, tvix_store::castore::Node), String> {
    let (sp, rest) = sd.split_path(path).map_err(|e| e.to_string())?;
    let info = store
        .get_path_info(&sp)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("path '{}' is not valid", sd.display(&sp)))?;
    let node = tvix_store::castore::nar::resolve(store, &info.node, rest, path)
        .map_err(|e| e.to_string())?;
    Ok((info, node))
}

fn store_command_inner(url: &str, cmd: StoreCommand) -> Result<i32, String> {
    use tvix_store::castore::{nar as cnar, Node};
    let sd = store_dir()?;
    match cmd {
        StoreCommand::Copy {
            from,
            to,
            paths,
            secret_key_file,
            compression,
            no_check_sigs,
            option,
        } => {
            return super::store_copy::copy(
                &sd,
                &super::store_copy::CopyRequest {
                    from: &from,
                    to: &to,
                    paths: &paths,
                    secret_key_file: secret_key_file.as_deref(),
                    compression: &compression,
                    no_check_sigs,
                    options: &option,
                },
            )
        }
        StoreCommand::Gc { dry_run } => return gc_command(url, sd, dry_run),
        StoreCommand::Daemon {
            listen,
            chunks,
            metadata,
        } => {
            let backends = chunks.as_deref().zip(metadata.as_deref());
            return daemon_command(url, backends, &listen);
        }
        StoreCommand::Serve {
            listen,
            secret_key_file,
            compression,
            priority,
            allow_uploads,
            upload_staging_dir,
        } => {
            return super::store_serve::serve(
                &sd,
                &super::store_serve::ServeRequest {
                    store_url: url,
                    listen: &listen,
                    secret_key_file: secret_key_file.as_deref(),
                    compression: &compression,
                    priority,
                    uploads: allow_uploads
                        .then(|| upload_staging_dir.unwrap_or_else(std::env::temp_dir)),
                },
            )
        }
        StoreCommand::Mount {
            dir,
            no_list_root,
            threads,
            allow_other,
            option,
        } => {
            let opts = tvix_store::fuse::MountOptions {
                list_root: !no_list_root,
                threads: threads.clamp(1, 256),
                allow_other,
                fetch_missing: None,
            };
            let options = option
                .chunks(2)
                .filter(|kv| kv.len() == 2)
                .map(|kv| (kv[0].clone(), kv[1].clone()))
                .collect();
            return mount_command(url, &dir, opts, &options);
        }
        StoreCommand::Run {
            threads,
            over_host,
            command,
        } => {
            let opts = tvix_store::fuse::MountOptions {
                list_root: true,
                threads: threads.clamp(1, 256),
                // The command may change to another user (sudo, a service); the store
                // is world-readable in Nix too.
                allow_other: true,
                fetch_missing: None,
            };
            let dir = std::path::Path::new(sd.as_str());
            let view = if over_host {
                tvix_store::fuse::StoreView::OverHost
            } else {
                tvix_store::fuse::StoreView::Only
            };
            return super::store_run::run_command(url, dir, &command, &opts, view);
        }
        _ => {}
    }
    let store = tvix_store::open(url).map_err(|e| e.to_string())?;
    let store = &*store;
    // Straight to the file descriptor, not through `Stdout`'s line buffering: a NAR
    // export is mostly file contents, written in large vectored writes that bypass this
    // buffer, which only gathers small output.
    let stdout = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .map_err(|e| format!("standard output: {e}"))?;
    let mut out = std::io::BufWriter::with_capacity(64 << 10, stdout);
    let werr = |e: std::io::Error| e.to_string();
    match cmd {
        StoreCommand::Import {
            format: ImportFormat::Nix,
            paths,
        } => {
            if !paths.is_empty() {
                return Err("'--format nix' reads standard input and takes no paths".into());
            }
            for info in super::nix_store::import_stdin(store, &sd)? {
                writeln!(out, "{}", sd.display(&info.store_path)).map_err(werr)?;
            }
        }
        StoreCommand::Import { paths, .. } => {
            if paths.is_empty() {
                return Err("nothing to import: give the paths to add".into());
            }
            for p in paths {
                let info = cnar::import_path(store, &sd, &p)
                    .map_err(|e| format!("importing '{}': {e}", p.display()))?;
                writeln!(out, "{}", sd.display(&info.store_path)).map_err(werr)?;
                // Each path is valid once printed, even if a later one fails.
                out.flush().map_err(werr)?;
            }
        }
        StoreCommand::Export {
            format: ExportFormat::Nix,
            paths,
        } => {
            let paths = paths
                .iter()
                .map(|p| sd.parse_path(p).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            let _held = hold_paths(url, &sd, &paths)?;
            super::nix_store::export_paths(store, &sd, &paths, &mut out)?;
        }
        StoreCommand::Export { paths, .. } => {
            let [path] = <[String; 1]>::try_from(paths)
                .map_err(|_| "a NAR export takes one path (use '--format nix' for several)")?;
            let (sp, _) = sd.split_path(&path).map_err(|e| e.to_string())?;
            let _held = hold_paths(url, &sd, std::slice::from_ref(&sp))?;
            let (_, node) = store_lookup(store, &sd, &path)?;
            cnar::write_nar(store, &node, &mut out).map_err(|e| e.to_string())?;
        }
        StoreCommand::Info { paths } => {
            let infos = if paths.is_empty() {
                let mut all = store
                    .path_infos()
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                all.sort_by_key(|i| sd.display(&i.store_path));
                all
            } else {
                let mut v = Vec::new();
                for p in &paths {
                    v.push(store_lookup(store, &sd, p)?.0);
                }
                v
            };
            for info in infos {
                writeln!(out, "StorePath: {}", sd.display(&info.store_path)).map_err(werr)?;
                writeln!(out, "NarHash: {}", info.nar_hash_string()).map_err(werr)?;
                writeln!(out, "NarSize: {}", info.nar_size).map_err(werr)?;
                let refs: Vec<String> = info.references.iter().map(|r| r.to_base_name()).collect();
                writeln!(out, "References: {}", refs.join(" ")).map_err(werr)?;
                if let Some(d) = &info.deriver {
                    writeln!(out, "Deriver: {}", d.to_base_name()).map_err(werr)?;
                }
                for s in &info.signatures {
                    writeln!(out, "Sig: {s}").map_err(werr)?;
                }
                if let Some(ca) = &info.ca {
                    writeln!(out, "CA: {ca}").map_err(werr)?;
                }
                writeln!(out, "Root: {}", describe_node(&info.node)).map_err(werr)?;
                writeln!(out).map_err(werr)?;
            }
        }
        StoreCommand::Ls { path } => {
            let (_, node) = store_lookup(store, &sd, &path)?;
            match &node {
                Node::Directory { digest, .. } => {
                    let dir = store
                        .get_directory(digest)
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("directory {digest} not found"))?;
                    for (name, n) in dir.entries() {
                        let name = String::from_utf8_lossy(name);
                        writeln!(out, "{}", ls_line(&name, n)).map_err(werr)?;
                    }
                }
                other => {
                    let name = path.rsplit('/').next().unwrap_or(&path);
                    writeln!(out, "{}", ls_line(name, other)).map_err(werr)?;
                }
            }
        }
        StoreCommand::Cat { path } => {
            let (_, node) = store_lookup(store, &sd, &path)?;
            let Node::File { digest, .. } = node else {
                return Err(format!("'{path}' is not a regular file"));
            };
            let mut r = store
                .open_blob(&digest)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("blob {digest} not found"))?;
            std::io::copy(&mut r, &mut out)
                .map_err(|e| tvix_store::castore::StoreError::from_io(e).to_string())?;
        }
        StoreCommand::Copy { .. }
        | StoreCommand::Daemon { .. }
        | StoreCommand::Serve { .. }
        | StoreCommand::Mount { .. }
        | StoreCommand::Gc { .. }
        | StoreCommand::Run { .. } => {}
        StoreCommand::Verify => {
            let report = store.verify().map_err(|e| e.to_string())?;
            for p in &report.problems {
                eprintln!("error: {p}");
            }
            eprintln!(
                "checked {} chunks, {} blobs, {} directories, {} paths: {} problem(s)",
                report.chunks,
                report.blobs,
                report.directories,
                report.paths,
                report.problems.len()
            );
            if !report.problems.is_empty() {
                return Ok(1);
            }
        }
    }
    out.flush().map_err(werr)?;
    Ok(0)
}

/// `tvix store gc`: collects garbage and reports as `nix-store --gc` does: each deleted
/// path on standard error, then `N store paths deleted, X MiB freed`; with `--dry-run`,
/// the paths that would be deleted on standard output.
fn gc_command(url: &str, sd: tvix_store::StoreDir, dry_run: bool) -> Result<i32, String> {
    use tvix_store::castore::gc::GcOptions;
    let store = tvix_store::open(url).map_err(|e| e.to_string())?;
    let on_wait = || eprintln!("waiting for the processes using the store to finish...");
    let opts = GcOptions {
        dry_run,
        store_dir: sd.clone(),
    };
    if !dry_run {
        eprintln!("finding garbage collector roots...");
    }
    let report = store
        .collect_garbage(&opts, &on_wait)
        .map_err(|e| e.to_string())?;
    let mib = report.bytes_freed as f64 / (1024.0 * 1024.0);
    let mut out = std::io::stdout().lock();
    let werr = |e: std::io::Error| e.to_string();
    if dry_run {
        for p in &report.deleted {
            writeln!(out, "{}", sd.display(p)).map_err(werr)?;
        }
        eprintln!(
            "{} store paths would be deleted, {mib:.2} MiB would be freed",
            report.deleted.len()
        );
    } else {
        for p in &report.deleted {
            eprintln!("deleting '{}'", sd.display(p));
        }
        writeln!(
            out,
            "{} store paths deleted, {mib:.2} MiB freed",
            report.deleted.len()
        )
        .map_err(werr)?;
    }
    for p in &report.problems {
        eprintln!("warning: {p}");
    }
    out.flush().map_err(werr)?;
    Ok(0)
}

/// `tvix store daemon`: serves the store until SIGINT or SIGTERM.
fn daemon_command(url: &str, backends: Option<(&str, &str)>, listen: &str) -> Result<i32, String> {
    use std::sync::Arc;
    use tvix_store::castore::StoreService;
    use tvix_store::grpc::{ListenAddr, Server};
    let addr = ListenAddr::parse(listen).map_err(|e| e.to_string())?;
    let store: Arc<dyn StoreService> = match backends {
        Some((chunks, metadata)) => Arc::new(
            tvix_store::castore::Store::composed(chunks, metadata).map_err(|e| e.to_string())?,
        ),
        None => tvix_store::open(url).map_err(|e| e.to_string())?.into(),
    };
    let server = Server::start(store.clone(), &addr).map_err(|e| e.to_string())?;
    eprintln!("serving {} on {}", store.url(), server.url());
    server.wait().map_err(|e| e.to_string())?;
    if std::env::var_os("TVIX_SHOW_STATS").is_some_and(|v| v == "1") {
        if let Some(s) = store.chunk_store_stats() {
            eprintln!(
                "chunk store requests: {} PUT ({} bytes), {} GET ({} bytes)",
                s.puts, s.put_bytes, s.gets, s.get_bytes
            );
        }
    }
    Ok(0)
}

/// `tvix store mount`: mounts, serves until SIGINT/SIGTERM, unmounts. With
/// `TVIX_SHOW_STATS=1`, prints how many chunks ranged reads fetched (local and memory
/// stores) or how many blob bytes were received (gRPC) when it ends.
fn mount_command(
    url: &str,
    dir: &std::path::Path,
    mut opts: tvix_store::fuse::MountOptions,
    options: &std::collections::BTreeMap<String, String>,
) -> Result<i32, String> {
    // A stale mount is reported before the store is opened.
    tvix_store::fuse::check_mount_point(dir).map_err(|e| e.to_string())?;
    let store: std::sync::Arc<dyn tvix_store::StoreService> =
        tvix_store::open(url).map_err(|e| e.to_string())?.into();
    opts.fetch_missing = substitute_on_access(url, options, &store)?;
    let mount = tvix_store::fuse::mount(store.clone(), dir, &opts).map_err(|e| e.to_string())?;
    eprintln!(
        "mounted {url} on {} (read-only); SIGINT or SIGTERM unmounts",
        dir.display()
    );
    tvix_store::fuse::serve_until_signal(mount).map_err(|e| e.to_string())?;
    if std::env::var_os("TVIX_SHOW_STATS").is_some_and(|v| v == "1") {
        if let Some(n) = store.range_chunk_reads() {
            eprintln!("chunks read: {n}");
        }
        if let Some(n) = store.blob_bytes_received() {
            eprintln!("blob bytes received: {n}");
        }
    }
    eprintln!("unmounted {}", dir.display());
    Ok(0)
}

/// What substitutes paths on first access, when the settings (nix.conf, `NIX_CONFIG`,
/// `--option`) name substituters and allow substitution.
fn substitute_on_access(
    url: &str,
    options: &std::collections::BTreeMap<String, String>,
    store: &std::sync::Arc<dyn tvix_store::StoreService>,
) -> Result<Option<std::sync::Arc<dyn tvix_store::fuse::FetchMissing>>, String> {
    use tvix_coordinator::realise::{open_substituters, RealiseConfig};
    let settings = tvix_coordinator::nix_conf::settings(options).map_err(|e| e.to_string())?;
    let config = RealiseConfig::from_options(url, &settings).map_err(|e| e.to_string())?;
    if !config.substitute || config.substituters.is_empty() {
        return Ok(None);
    }
    let substituters =
        open_substituters(&config.substituters, &config.cache).map_err(|e| e.to_string())?;
    let on_access =
        tvix_coordinator::substitute::on_access::OnAccess::new(substituters, store.clone());
    eprintln!(
        "paths missing from {url} are substituted from {} on first access",
        config.substituters.join(" ")
    );
    Ok(Some(std::sync::Arc::new(on_access)))
}

fn describe_node(node: &tvix_store::castore::Node) -> String {
    use tvix_store::castore::Node;
    match node {
        Node::Directory { digest, size } => format!("directory {digest} ({size} entries)"),
        Node::File {
            digest,
            size,
            executable,
        } => format!(
            "{} {digest} ({size} bytes)",
            if *executable { "executable" } else { "file" }
        ),
        Node::Symlink { target } => format!("symlink -> {}", String::from_utf8_lossy(target)),
    }
}

/// One line of `tvix store ls`, in the style of `nix store ls -l`.
fn ls_line(name: &str, node: &tvix_store::castore::Node) -> String {
    use tvix_store::castore::Node;
    match node {
        Node::Directory { .. } => format!("dr-xr-xr-x {:>20} {name}", 0),
        Node::File {
            size, executable, ..
        } => {
            let mode = if *executable {
                "-r-xr-xr-x"
            } else {
                "-r--r--r--"
            };
            format!("{mode} {size:>20} {name}")
        }
        Node::Symlink { target } => format!(
            "lrwxrwxrwx {:>20} {name} -> {}",
            0,
            String::from_utf8_lossy(target)
        ),
    }
}
