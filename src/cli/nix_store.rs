//! `nix-store` as argv[0]: `--add`, `--dump`, `-q` (`--references`, `--requisites`/`-R`,
//! `--hash`, `--deriver`, `--size`), `--realise`, `--verify-path`, `--export` and
//! `--import`, over the tvix store (`--store URL`, else `$TVIX_STORE`, else `local://`).

use std::collections::BTreeSet;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;

use tvix_store::castore::{export, nar as cnar};
use tvix_store::pathinfo::PathInfo;
use tvix_store::{StoreDir, StorePath, StoreService};

use super::build::{open_protected_store, realise, BuildArgs};

/// What `nix-store` is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Dump,
    Query,
    Realise,
    VerifyPath,
    Export,
    Import,
}

/// What `-q` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Query {
    References,
    Requisites,
    Hash,
    Deriver,
    Size,
}

/// A parsed `nix-store` command line.
#[derive(Debug)]
struct Cmd {
    op: Op,
    query: Option<Query>,
    store: Option<String>,
    args: Vec<String>,
    /// Flags for `--realise`'s builds.
    dry_run: bool,
    keep_going: bool,
    max_jobs: Option<String>,
    quiet_builds: bool,
}

/// Splits `-qR` into `-q -R`, as Nix reads grouped short flags.
fn expand_short_flags(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for a in argv {
        if a.len() > 2 && a.starts_with('-') && !a.starts_with("--") {
            out.extend(a[1..].chars().map(|c| format!("-{c}")));
        } else {
            out.push(a.clone());
        }
    }
    out
}

fn parse(argv: &[String]) -> Result<Cmd, String> {
    let mut op = None;
    let mut cmd = Cmd {
        op: Op::Add,
        query: None,
        store: None,
        args: Vec::new(),
        dry_run: false,
        keep_going: false,
        max_jobs: None,
        quiet_builds: false,
    };
    let argv = expand_short_flags(argv);
    let mut it = argv.into_iter();
    let set_op = |o: Op, op: &mut Option<Op>| -> Result<(), String> {
        match op {
            Some(prev) if *prev != o => Err("only one operation may be specified".into()),
            _ => {
                *op = Some(o);
                Ok(())
            }
        }
    };
    while let Some(a) = it.next() {
        let query = |q: Query, cmd: &mut Cmd| {
            cmd.query = Some(q);
        };
        match a.as_str() {
            "--add" | "-A" => set_op(Op::Add, &mut op)?,
            "--dump" => set_op(Op::Dump, &mut op)?,
            "--query" | "-q" => set_op(Op::Query, &mut op)?,
            "--realise" | "--realize" | "-r" => set_op(Op::Realise, &mut op)?,
            "--verify-path" => set_op(Op::VerifyPath, &mut op)?,
            "--export" => set_op(Op::Export, &mut op)?,
            "--import" => set_op(Op::Import, &mut op)?,
            "--references" => query(Query::References, &mut cmd),
            "--requisites" | "-R" => query(Query::Requisites, &mut cmd),
            "--hash" => query(Query::Hash, &mut cmd),
            "--deriver" | "-d" => query(Query::Deriver, &mut cmd),
            "--size" => query(Query::Size, &mut cmd),
            "--dry-run" => cmd.dry_run = true,
            "--keep-going" | "-k" => cmd.keep_going = true,
            "--no-build-output" | "-Q" => cmd.quiet_builds = true,
            "--max-jobs" | "-j" => {
                cmd.max_jobs = Some(it.next().ok_or(format!("flag '{a}' requires 1 argument"))?)
            }
            "--store" => cmd.store = Some(it.next().ok_or("flag '--store' requires 1 argument")?),
            "--" => cmd.args.extend(it.by_ref()),
            s if s.starts_with('-') => return Err(format!("unrecognised flag '{s}'")),
            _ => cmd.args.push(a),
        }
    }
    cmd.op = op.ok_or("no operation specified")?;
    if cmd.op == Op::Query && cmd.query.is_none() {
        return Err(
            "no query given (--references, --requisites, --hash, --deriver, --size)".into(),
        );
    }
    if cmd.op != Op::Query && cmd.query.is_some() {
        return Err("query flags need '--query'".into());
    }
    Ok(cmd)
}

/// The store directory paths are computed for: `$NIX_STORE_DIR`, else `/nix/store`.
fn store_dir() -> Result<StoreDir, String> {
    match std::env::var("NIX_STORE_DIR") {
        Ok(d) if !d.is_empty() => StoreDir::new(d).map_err(|e| e.to_string()),
        _ => Ok(StoreDir::default()),
    }
}

/// A command-line argument as a store path: a path in the store (a sub-path names its
/// store path), or a symlink (such as `result`) that leads into the store.
fn to_store_path(sd: &StoreDir, arg: &str) -> Result<(StorePath, String), String> {
    let mut current = super::eval::cwd().join(arg);
    for _ in 0..40 {
        if let Some(s) = current.to_str() {
            if let Ok((p, rest)) = sd.split_path(s) {
                return Ok((p, rest.to_string()));
            }
        }
        let Ok(target) = std::fs::read_link(&current) else {
            break;
        };
        current = match current.parent() {
            Some(parent) if target.is_relative() => parent.join(target),
            _ => target,
        };
    }
    Err(format!("path '{arg}' is not in the Nix store"))
}

fn path_info(store: &dyn StoreService, sd: &StoreDir, p: &StorePath) -> Result<PathInfo, String> {
    store
        .get_path_info(p)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("path '{}' is not valid", sd.display(p)))
}

/// Runs `nix-store ARGS`; returns the exit status.
pub(super) fn nix_store(argv: &[String]) -> i32 {
    match run(argv) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("error: {}", msg.replace('\n', "\n       "));
            1
        }
    }
}

fn run(argv: &[String]) -> Result<i32, String> {
    let cmd = parse(argv)?;
    let sd = store_dir()?;
    let url = cmd
        .store
        .clone()
        .unwrap_or_else(tvix_store::castore::default_store_url);
    if cmd.op == Op::Realise {
        return realise_command(&cmd, &url, &sd);
    }
    let store = tvix_store::open(&url).map_err(|e| format!("opening the store '{url}': {e}"))?;
    let store = &*store;
    let stdout = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .map_err(|e| format!("standard output: {e}"))?;
    let mut out = std::io::BufWriter::with_capacity(64 << 10, stdout);
    let werr = |e: std::io::Error| e.to_string();
    let paths = || -> Result<Vec<StorePath>, String> {
        cmd.args
            .iter()
            .map(|a| to_store_path(&sd, a).map(|(p, _)| p))
            .collect()
    };
    let mut status = 0;
    match cmd.op {
        Op::Add => {
            for a in &cmd.args {
                let info = cnar::import_path(store, &sd, &PathBuf::from(a))
                    .map_err(|e| format!("adding '{a}': {e}"))?;
                writeln!(out, "{}", sd.display(&info.store_path)).map_err(werr)?;
                out.flush().map_err(werr)?;
            }
        }
        Op::Dump => {
            let [arg] = cmd.args.as_slice() else {
                return Err("'--dump' requires one argument".into());
            };
            let (p, rest) = to_store_path(&sd, arg)?;
            let _held = super::store::hold_paths(&url, &sd, std::slice::from_ref(&p))?;
            let info = path_info(store, &sd, &p)?;
            let node = cnar::resolve(store, &info.node, &rest, arg).map_err(|e| e.to_string())?;
            cnar::write_nar(store, &node, &mut out).map_err(|e| e.to_string())?;
        }
        Op::Query => query(&cmd, store, &sd, &paths()?, &mut out)?,
        Op::VerifyPath => {
            for p in paths()? {
                let info = path_info(store, &sd, &p)?;
                match tvix_store::castore::check_nar_hash(store, &info) {
                    Ok(()) => {}
                    Err(tvix_store::castore::StoreError::NarHashMismatch {
                        expected,
                        actual,
                        ..
                    }) => {
                        // Nix 2.8 prints this without "error: ".
                        eprintln!(
                            "path '{}' was modified! expected hash '{expected}', got '{actual}'",
                            sd.display(&p)
                        );
                        status = 1;
                    }
                    Err(e) => {
                        eprintln!("error: path '{}': {e}", sd.display(&p));
                        status = 1;
                    }
                }
            }
        }
        Op::Export => {
            let paths = paths()?;
            let _held = super::store::hold_paths(&url, &sd, &paths)?;
            export_paths(store, &sd, &paths, &mut out)?;
        }
        Op::Import => {
            if !cmd.args.is_empty() {
                return Err("'--import' takes no arguments".into());
            }
            for info in import_stdin(store, &sd)? {
                writeln!(out, "{}", sd.display(&info.store_path)).map_err(werr)?;
            }
        }
        Op::Realise => {}
    }
    out.flush().map_err(werr)?;
    Ok(status)
}

/// Writes `paths` in Nix's export format, references first as Nix orders them.
pub(super) fn export_paths(
    store: &dyn StoreService,
    sd: &StoreDir,
    paths: &[StorePath],
    out: &mut dyn Write,
) -> Result<(), String> {
    let infos = paths
        .iter()
        .map(|p| path_info(store, sd, p))
        .collect::<Result<Vec<_>, _>>()?;
    let infos = export::references_first(&infos).map_err(|e| e.to_string())?;
    export::write_export(store, sd, &infos, out).map_err(|e| e.to_string())?;
    Ok(())
}

/// Imports an export stream from standard input (nothing is registered unless all of it
/// is good).
pub(super) fn import_stdin(
    store: &dyn StoreService,
    sd: &StoreDir,
) -> Result<Vec<PathInfo>, String> {
    store.protect_from_gc().map_err(|e| e.to_string())?;
    let stdin = std::io::stdin().lock();
    let r = std::io::BufReader::with_capacity(1 << 20, stdin);
    export::import_export(store, sd, r).map_err(|e| format!("importing: {e}"))
}

fn query(
    cmd: &Cmd,
    store: &dyn StoreService,
    sd: &StoreDir,
    paths: &[StorePath],
    out: &mut dyn Write,
) -> Result<(), String> {
    let werr = |e: std::io::Error| e.to_string();
    match cmd.query {
        Some(Query::References) => {
            // One sorted set over all arguments, as Nix prints it.
            let mut refs = BTreeSet::new();
            for p in paths {
                for r in path_info(store, sd, p)?.references {
                    refs.insert(sd.display(&r));
                }
            }
            for r in refs {
                writeln!(out, "{r}").map_err(werr)?;
            }
        }
        Some(Query::Requisites) => {
            for p in paths {
                path_info(store, sd, p)?;
            }
            let roots: BTreeSet<StorePath> = paths.iter().cloned().collect();
            let closure =
                tvix_coordinator::closure::closure_of(store, &roots).map_err(|e| e.to_string())?;
            for info in export::references_first(&closure).map_err(|e| e.to_string())? {
                writeln!(out, "{}", sd.display(&info.store_path)).map_err(werr)?;
            }
        }
        Some(Query::Hash) => {
            for p in paths {
                writeln!(out, "{}", path_info(store, sd, p)?.nar_hash_string()).map_err(werr)?;
            }
        }
        Some(Query::Deriver) => {
            for p in paths {
                let d = path_info(store, sd, p)?.deriver;
                let shown = d
                    .map(|d| sd.display(&d))
                    .unwrap_or_else(|| "unknown-deriver".into());
                writeln!(out, "{shown}").map_err(werr)?;
            }
        }
        Some(Query::Size) => {
            for p in paths {
                writeln!(out, "{}", path_info(store, sd, p)?.nar_size).map_err(werr)?;
            }
        }
        None => {}
    }
    Ok(())
}

/// `--realise`: valid paths are printed as they are; `.drv` paths (optionally
/// `DRV!OUTPUT,...`) are built as `tvix build` builds them and their outputs printed.
fn realise_command(cmd: &Cmd, url: &str, sd: &StoreDir) -> Result<i32, String> {
    let store = open_protected_store(url)?;
    // What to print for each argument: a valid path, or outputs of the n-th derivation.
    enum Item {
        Valid(StorePath),
        Drv(usize, Option<Vec<String>>),
    }
    let mut items = Vec::new();
    let mut drvs: Vec<StorePath> = Vec::new();
    for a in &cmd.args {
        let (path_part, outputs) = match a.split_once('!') {
            Some((p, o)) => (
                p,
                Some(o.split(',').map(str::to_string).collect::<Vec<_>>()),
            ),
            None => (a.as_str(), None),
        };
        let (p, _) = to_store_path(sd, path_part)?;
        path_info(&*store, sd, &p)?;
        if p.name().ends_with(".drv") {
            drvs.push(p);
            items.push(Item::Drv(drvs.len() - 1, outputs));
        } else if outputs.is_some() {
            return Err(format!("'{a}' is not a derivation"));
        } else {
            items.push(Item::Valid(p));
        }
    }
    let outputs = if drvs.is_empty() {
        Vec::new()
    } else {
        let args = BuildArgs {
            dry_run: cmd.dry_run,
            keep_going: cmd.keep_going,
            max_jobs: cmd.max_jobs.clone(),
            no_build_output: cmd.quiet_builds,
            store: Some(url.to_string()),
            // `nix-store`'s scripts read Nix's lines.
            as_nix_build: true,
            ..BuildArgs::default()
        };
        match realise(&args, url, &store, &drvs) {
            Ok(Some(o)) => o,
            Ok(None) => return Ok(0),
            Err(code) => return Ok(code),
        }
    };
    if cmd.dry_run {
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    let werr = |e: std::io::Error| e.to_string();
    for item in items {
        match item {
            Item::Valid(p) => writeln!(out, "{}", sd.display(&p)).map_err(werr)?,
            Item::Drv(i, wanted) => {
                let outs = &outputs[i];
                match wanted {
                    None => {
                        for p in outs.values() {
                            writeln!(out, "{}", sd.display(p)).map_err(werr)?;
                        }
                    }
                    Some(names) => {
                        for n in names {
                            let p = outs.get(&n).ok_or_else(|| {
                                format!(
                                    "derivation '{}' does not have an output named '{n}'",
                                    sd.display(&drvs[i])
                                )
                            })?;
                            writeln!(out, "{}", sd.display(p)).map_err(werr)?;
                        }
                    }
                }
            }
        }
    }
    out.flush().map_err(werr)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cmd, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn command_lines() {
        let c = p(&["-qR", "/nix/store/x"]).unwrap();
        assert_eq!((c.op, c.query), (Op::Query, Some(Query::Requisites)));
        assert_eq!(c.args, ["/nix/store/x"]);
        let c = p(&["--query", "--hash", "a", "b"]).unwrap();
        assert_eq!(c.query, Some(Query::Hash));
        assert_eq!(c.args.len(), 2);
        let c = p(&["--store", "memory://", "--import"]).unwrap();
        assert_eq!(c.op, Op::Import);
        assert_eq!(c.store.as_deref(), Some("memory://"));
        assert!(p(&["--add", "--dump", "x"]).is_err());
        assert!(p(&["-q", "x"]).is_err());
        assert!(p(&["--hash", "x"]).is_err());
        assert!(p(&["--frobnicate"]).is_err());
        assert!(p(&["x"]).is_err());
        let c = p(&["-r", "-j", "2", "--dry-run", "x.drv"]).unwrap();
        assert_eq!(c.max_jobs.as_deref(), Some("2"));
        assert!(c.dry_run);
    }
}
