//! `fetchGit` and `fetchTree { type = "git"; }`: a revision of a git repository exported to
//! a directory with the real `git` command. Local repositories are read in place (with
//! uncommitted changes to tracked files when no revision is asked for, as Nix does); other
//! URLs are fetched into a bare repository kept in the fetch cache directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::FetchError;
pub use tvix_eval::fetch::{GitRequest, GitRevision};

fn git(args: &[&str], git_dir: Option<&Path>) -> Command {
    let mut c = Command::new("git");
    if let Some(d) = git_dir {
        c.arg("--git-dir").arg(d);
    }
    c.args(args);
    c.env("GIT_TERMINAL_PROMPT", "0");
    c
}

/// Runs `cmd`; its trimmed stdout, or its stderr as the error.
fn run(mut cmd: Command, what: &str) -> Result<String, FetchError> {
    let out = cmd
        .output()
        .map_err(|e| FetchError::Git(format!("{what}: running git: {e} (is git installed?)")))?;
    if !out.status.success() {
        return Err(FetchError::Git(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The local directory a URL names, if it is local.
fn local_path(url: &str) -> Option<PathBuf> {
    let p = url
        .strip_prefix("git+file://")
        .or_else(|| url.strip_prefix("file://"))
        .unwrap_or(url);
    p.starts_with('/').then(|| PathBuf::from(p))
}

/// Exports the requested revision into the empty directory `dest`. Remote repositories are
/// fetched into `cache_dir`.
pub fn export(
    req: &GitRequest<'_>,
    dest: &Path,
    cache_dir: &Path,
) -> Result<GitRevision, FetchError> {
    let what = format!("fetching Git repository '{}'", req.url);
    let (git_dir, work_tree) = match local_path(req.url) {
        Some(p) => {
            if !p.is_dir() {
                return Err(FetchError::Git(format!(
                    "{what}: '{}' is not a directory",
                    p.display()
                )));
            }
            let git_dir = run(
                {
                    let mut c = git(&["rev-parse", "--absolute-git-dir"], None);
                    c.current_dir(&p);
                    c
                },
                &what,
            )?;
            let bare = run(
                {
                    let mut c = git(&["rev-parse", "--is-bare-repository"], None);
                    c.current_dir(&p);
                    c
                },
                &what,
            )? == "true";
            (PathBuf::from(git_dir), (!bare).then_some(p))
        }
        None => (fetch_remote(req, cache_dir, &what)?, None),
    };
    let head_ref = match req.git_ref {
        Some(r) if r.starts_with("refs/") || r == "HEAD" => r.to_string(),
        Some(r) => format!("refs/heads/{r}"),
        None => "HEAD".to_string(),
    };
    if let (Some(tree), None, None) = (&work_tree, req.rev, req.git_ref) {
        let status = run(
            {
                let mut c = git(&["status", "--porcelain", "--untracked-files=no"], None);
                c.current_dir(tree);
                c
            },
            &what,
        )?;
        if !status.is_empty() {
            copy_tracked_files(tree, dest, &what)?;
            let last_modified = commit_time(&git_dir, "HEAD", &what).unwrap_or(0);
            return Ok(GitRevision {
                rev: "0".repeat(40),
                rev_count: 0,
                last_modified,
                dirty: true,
            });
        }
    }
    let rev = match req.rev {
        Some(r) => r.to_string(),
        None => run(
            git(
                &["rev-parse", "--verify", &format!("{head_ref}^{{commit}}")],
                Some(&git_dir),
            ),
            &what,
        )?,
    };
    if rev.len() != 40 || !rev.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FetchError::Git(format!(
            "{what}: '{rev}' is not a full commit hash"
        )));
    }
    // A private index, so that the repository's own index is never touched.
    let index = tempfile::NamedTempFile::new()?;
    let mut read_tree = git(&["read-tree", &rev], Some(&git_dir));
    read_tree.env("GIT_INDEX_FILE", index.path());
    run(read_tree, &what)?;
    let mut checkout = git(&["checkout-index", "--all", "--force"], Some(&git_dir));
    checkout
        .env("GIT_INDEX_FILE", index.path())
        .arg(format!("--prefix={}/", dest.display()));
    run(checkout, &what)?;
    let rev_count = run(git(&["rev-list", "--count", &rev], Some(&git_dir)), &what)?
        .parse()
        .unwrap_or(0);
    Ok(GitRevision {
        last_modified: commit_time(&git_dir, &rev, &what)?,
        rev,
        rev_count,
        dirty: false,
    })
}

fn commit_time(git_dir: &Path, rev: &str, what: &str) -> Result<i64, FetchError> {
    Ok(run(
        git(&["log", "-1", "--format=%ct", rev], Some(git_dir)),
        what,
    )?
    .parse()
    .unwrap_or(0))
}

/// Copies the tracked files of a working tree (as they are on disk) into `dest`.
fn copy_tracked_files(tree: &Path, dest: &Path, what: &str) -> Result<(), FetchError> {
    let mut c = git(&["ls-files", "-z"], None);
    c.current_dir(tree);
    let out = c
        .output()
        .map_err(|e| FetchError::Git(format!("{what}: running git: {e}")))?;
    if !out.status.success() {
        return Err(FetchError::Git(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    use std::os::unix::ffi::OsStrExt;
    for name in out.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let rel = Path::new(std::ffi::OsStr::from_bytes(name));
        let from = tree.join(rel);
        let to = dest.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&from) else {
            continue; // deleted in the working tree
        };
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if meta.is_file() {
            std::fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

/// Fetches a remote repository's ref (or everything, for a bare `rev`) into a bare
/// repository in the cache and returns its git directory.
fn fetch_remote(req: &GitRequest<'_>, cache_dir: &Path, what: &str) -> Result<PathBuf, FetchError> {
    let name = tvix_store::NixHash::sha256(req.url.as_bytes()).to_nix32();
    let dir = cache_dir.join("git").join(name);
    if !dir.join("HEAD").exists() {
        std::fs::create_dir_all(&dir)?;
        run(git(&["init", "--bare", "--quiet"], Some(&dir)), what)?;
    }
    let refspec = match req.git_ref {
        Some(r) if r.starts_with("refs/") => format!("+{r}:{r}"),
        Some(r) => format!("+refs/heads/{r}:refs/heads/{r}"),
        None if req.rev.is_some() => "+refs/*:refs/*".to_string(),
        None => "+HEAD:HEAD".to_string(),
    };
    run(
        git(
            &["fetch", "--quiet", "--force", req.url, &refspec],
            Some(&dir),
        ),
        what,
    )?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn clean_dirty_and_pinned_exports() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        sh(&repo, &["init", "-q"]);
        std::fs::write(repo.join("f"), "one").unwrap();
        sh(&repo, &["add", "f"]);
        sh(&repo, &["commit", "-qm", "1"]);
        let url = repo.to_string_lossy().into_owned();
        let req = GitRequest {
            url: &url,
            git_ref: None,
            rev: None,
        };

        let out = tmp.path().join("a");
        std::fs::create_dir(&out).unwrap();
        let r = export(&req, &out, tmp.path()).unwrap();
        assert!(!r.dirty);
        assert_eq!(r.rev_count, 1);
        assert_eq!(std::fs::read_to_string(out.join("f")).unwrap(), "one");
        assert!(!out.join(".git").exists());

        std::fs::write(repo.join("f"), "two").unwrap();
        std::fs::write(repo.join("untracked"), "u").unwrap();
        let out2 = tmp.path().join("b");
        std::fs::create_dir(&out2).unwrap();
        let d = export(&req, &out2, tmp.path()).unwrap();
        assert!(d.dirty);
        assert_eq!(d.rev, "0".repeat(40));
        assert_eq!(std::fs::read_to_string(out2.join("f")).unwrap(), "two");
        assert!(!out2.join("untracked").exists());

        let pinned = GitRequest {
            url: &url,
            git_ref: None,
            rev: Some(&r.rev),
        };
        let out3 = tmp.path().join("c");
        std::fs::create_dir(&out3).unwrap();
        export(&pinned, &out3, tmp.path()).unwrap();
        assert_eq!(std::fs::read_to_string(out3.join("f")).unwrap(), "one");

        let missing = GitRequest {
            url: "/nonexistent/repo",
            git_ref: None,
            rev: None,
        };
        let err = export(&missing, &out3, tmp.path()).unwrap_err().to_string();
        assert!(
            err.starts_with("fetching Git repository '/nonexistent/repo': "),
            "{err}"
        );
    }
}
