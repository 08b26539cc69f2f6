//! The shells of `:u` and `:sh`: their environments (pure functions of the outputs, or of
//! the coordinator's build request), the note about store paths the host lacks, and
//! running `$SHELL` in the foreground of the terminal.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use tvix_build::BuildRequest;
use tvix_coordinator::request::{BUILD_DIR, SANDBOX_STORE_DIR};

/// Variables of the build request a shell keeps from the user's environment instead:
/// the terminal, the home directory, and the log descriptor that only a builder has.
const KEPT_FROM_HOST: &[&str] = &["HOME", "TERM", "NIX_LOG_FD"];

/// The `PATH` Nix gives builders that set none.
const PATH_NOT_SET: &str = "/path-not-set";

/// `value` with the sandbox's build directory (`/build`) replaced by `build_top`.
fn relocate(value: &str, build_top: &str) -> String {
    if value == BUILD_DIR {
        return build_top.to_string();
    }
    match value.strip_prefix(BUILD_DIR) {
        Some(rest) if rest.starts_with('/') => format!("{build_top}{rest}"),
        _ => value.to_string(),
    }
}

/// The environment of `:sh`: the builder's (from `request`) with its build directory at
/// `build_top` (where the request's files under `/build` are written), `PATH` followed by
/// the user's `host_path` (as `nix-shell` appends it), and the user's `HOME` and `TERM`.
/// Variables to set, in order.
pub fn build_environment(
    request: &BuildRequest,
    build_top: &Path,
    host_path: Option<&str>,
) -> io::Result<Vec<(String, String)>> {
    let top = build_top.to_string_lossy().into_owned();
    for file in &request.files {
        let Some(rest) = file.path.strip_prefix(BUILD_DIR) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix('/') else {
            continue;
        };
        let dest = build_top.join(rest);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&dest, &file.contents)?;
    }
    Ok(shell_variables(&request.env, &top, host_path))
}

/// The variables of [`build_environment`], without the files.
fn shell_variables(
    env: &[(String, String)],
    build_top: &str,
    host_path: Option<&str>,
) -> Vec<(String, String)> {
    env.iter()
        .filter(|(name, _)| !KEPT_FROM_HOST.contains(&name.as_str()))
        .map(|(name, value)| {
            let value = if name == "PATH" {
                join_path((value != PATH_NOT_SET).then_some(value.as_str()), host_path)
            } else {
                relocate(value, build_top)
            };
            (name.clone(), value)
        })
        .collect()
}

fn join_path(first: Option<&str>, then: Option<&str>) -> String {
    [first, then]
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(":")
}

/// The environment of `:u`: the `bin` directories of `outputs` in front of `host_path`.
pub fn use_environment(outputs: &[String], host_path: Option<&str>) -> Vec<(String, String)> {
    let bins: Vec<String> = outputs.iter().map(|o| format!("{o}/bin")).collect();
    let bins = bins.join(":");
    vec![("PATH".to_string(), join_path(Some(&bins), host_path))]
}

/// The store paths (`/nix/store/HASH-NAME`, without anything below them) named in `texts`.
pub fn store_paths_in<'a>(texts: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let prefix = format!("{SANDBOX_STORE_DIR}/");
    let mut found = BTreeSet::new();
    for text in texts {
        let mut rest = text;
        while let Some(at) = rest.find(&prefix) {
            let after = &rest[at + prefix.len()..];
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || "+-._?=".contains(c)))
                .unwrap_or(after.len());
            let base = &after[..len];
            if tvix_store::StorePath::from_base_name(base).is_ok() {
                found.insert(format!("{prefix}{base}"));
            }
            rest = &after[len..];
        }
    }
    found
}

/// Prints one note when store paths named in `texts` (other than those in `except`) are
/// not on this machine: builds put their outputs in the tvix store, which need not be the
/// host's `/nix/store`. `unmounted` is why the tvix store could not be laid over it for a
/// shell, if that was tried.
pub fn note_missing_on_host<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    except: &[String],
    unmounted: Option<&str>,
) {
    let missing: Vec<String> = store_paths_in(texts)
        .into_iter()
        .filter(|p| !except.contains(p) && std::fs::symlink_metadata(p).is_err())
        .collect();
    if let Some(note) = missing_note(&missing, unmounted) {
        eprintln!("{note}");
    }
}

/// The note for store paths missing on the host.
fn missing_note(missing: &[String], unmounted: Option<&str>) -> Option<String> {
    let first = missing.first()?;
    let (subject, verb, pronoun) = match missing.len() {
        1 => (format!("'{first}'"), "is", "it"),
        n => (format!("'{first}' and {} more", n - 1), "are", "them"),
    };
    let why = unmounted
        .map(|e| format!(", and the tvix store could not be mounted over it ({e})"))
        .unwrap_or_default();
    Some(format!(
        "note: {subject} {verb} in the tvix store but not in this machine's \
         {SANDBOX_STORE_DIR}{why}; programs there run with the tvix store mounted at \
         {SANDBOX_STORE_DIR} (`tvix store run` provides {pronoun}, and :u and :sh as root)"
    ))
}

/// Runs the user's shell (`$SHELL`, else `bash`) with `env` set over the REPL's
/// environment and waits for it. On a terminal the shell gets a process group of its own in
/// the foreground, so Ctrl-C and job control reach it and not the REPL; the terminal is
/// given back afterwards.
pub fn run_shell(env: &[(String, String)]) -> io::Result<()> {
    let program = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "bash".to_string());
    let mut cmd = Command::new(&program);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let terminal = unsafe { libc::isatty(0) } == 1;
    if terminal {
        // SAFETY: only async-signal-safe calls between fork and exec. The shell takes the
        // terminal itself (ignoring SIGTTOU for the call, which would stop a background
        // process group), so it never starts in the background.
        unsafe {
            cmd.pre_exec(|| {
                libc::setpgid(0, 0);
                let old = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
                libc::tcsetpgrp(0, libc::getpid());
                libc::signal(libc::SIGTTOU, old);
                Ok(())
            });
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("'{program}': {e}")))?;
    let status = child.wait();
    if terminal {
        // SAFETY: plain calls on our own process; SIGTTOU is ignored around taking the
        // terminal back from the finished shell's group.
        unsafe {
            let old = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
            libc::tcsetpgrp(0, libc::getpgrp());
            libc::signal(libc::SIGTTOU, old);
        }
    }
    status.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn build_variables_move_to_the_build_directory() {
        let env = pairs(&[
            ("HOME", "/homeless-shelter"),
            ("NIX_BUILD_TOP", "/build"),
            ("NIX_LOG_FD", "2"),
            ("PATH", "/nix/store/00000000000000000000000000000000-bb/bin"),
            ("TMPDIR", "/build"),
            ("fooPath", "/build/.attr-0"),
            ("other", "/buildx"),
            ("name", "hello"),
        ]);
        assert_eq!(
            shell_variables(&env, "/tmp/t", Some("/usr/bin")),
            pairs(&[
                ("NIX_BUILD_TOP", "/tmp/t"),
                (
                    "PATH",
                    "/nix/store/00000000000000000000000000000000-bb/bin:/usr/bin"
                ),
                ("TMPDIR", "/tmp/t"),
                ("fooPath", "/tmp/t/.attr-0"),
                ("other", "/buildx"),
                ("name", "hello"),
            ])
        );
        let unset = pairs(&[("PATH", PATH_NOT_SET)]);
        assert_eq!(
            shell_variables(&unset, "/t", Some("/bin")),
            pairs(&[("PATH", "/bin")])
        );
    }

    #[test]
    fn use_puts_bins_first() {
        assert_eq!(
            use_environment(
                &["/nix/store/a".into(), "/nix/store/b".into()],
                Some("/bin")
            ),
            pairs(&[("PATH", "/nix/store/a/bin:/nix/store/b/bin:/bin")])
        );
        assert_eq!(
            use_environment(&["/nix/store/a".into()], None),
            pairs(&[("PATH", "/nix/store/a/bin")])
        );
    }

    #[test]
    fn one_note_for_missing_paths() {
        assert_eq!(missing_note(&[], None), None);
        let one = missing_note(&["/nix/store/a".into()], None).unwrap();
        assert!(
            one.starts_with("note: '/nix/store/a' is in the tvix store"),
            "{one}"
        );
        let two = missing_note(&["/nix/store/a".into(), "/nix/store/b".into()], None).unwrap();
        assert!(
            two.starts_with("note: '/nix/store/a' and 1 more are in"),
            "{two}"
        );
        assert!(
            two.ends_with("(`tvix store run` provides them, and :u and :sh as root)"),
            "{two}"
        );
        let failed = missing_note(&["/nix/store/a".into()], Some("no FUSE")).unwrap();
        assert!(
            failed
                .contains("/nix/store, and the tvix store could not be mounted over it (no FUSE);"),
            "{failed}"
        );
    }

    #[test]
    fn finds_store_paths_in_text() {
        let h = "0a1hmb1d2dm3g6lrqwscf0lqjfjbzbv2";
        let text = format!("/nix/store/{h}-bb/bin:/usr/bin:/nix/store/short x/nix/store/{h}-c.d");
        let found: Vec<String> = store_paths_in([text.as_str()]).into_iter().collect();
        assert_eq!(
            found,
            vec![format!("/nix/store/{h}-bb"), format!("/nix/store/{h}-c.d")]
        );
    }

    #[test]
    fn request_files_are_written_below_the_build_directory() {
        let dir = tempfile::tempdir().unwrap();
        let request = BuildRequest {
            env: pairs(&[("NIX_ATTRS_JSON_FILE", "/build/.attrs.json")]),
            files: vec![
                tvix_build::SandboxFile {
                    path: "/build/.attrs.json".into(),
                    contents: b"{}".to_vec(),
                    mode: 0o644,
                },
                tvix_build::SandboxFile {
                    path: "/etc/passwd".into(),
                    contents: b"x".to_vec(),
                    mode: 0o644,
                },
            ],
            program: "/bin/sh".into(),
            argv: vec!["sh".into()],
            working_dir: "/build".into(),
            scratch_dirs: vec![],
            store_dir: "/nix/store".into(),
            inputs: vec![],
            outputs: vec![],
            network: false,
            host_files: vec![],
            needles: vec![],
            constraints: Default::default(),
            keep_failed: false,
        };
        let env = build_environment(&request, dir.path(), None).unwrap();
        let json = dir.path().join(".attrs.json");
        assert_eq!(std::fs::read(&json).unwrap(), b"{}");
        assert_eq!(env[0].1, json.to_string_lossy());
        assert!(!dir.path().join("etc").exists());
    }
}
