//! Nix's settings as Nix reads them, lowest priority first: `$NIX_CONF_DIR/nix.conf`
//! (`/etc/nix/nix.conf`), `$XDG_CONFIG_HOME/nix/nix.conf` (`~/.config/nix/nix.conf`), the
//! contents of `$NIX_CONFIG`, and the command line's `--option NAME VALUE`. Each source is
//! lines of `name = value` with `#` comments and `include`/`!include` of other files;
//! `extra-NAME = value` appends to `NAME` instead of replacing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why a configuration file was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NixConfError {
    /// A line that is neither a setting nor an include.
    #[error("syntax error in configuration line '{line}' in '{source_name}'")]
    Syntax {
        /// The line.
        line: String,
        /// The file (or `NIX_CONFIG`).
        source_name: String,
    },
    /// A file that exists could not be read, or an `include` that must exist does not.
    #[error("reading '{file}': {reason}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
}

/// Includes nested deeper than this are refused (a file including itself).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Applies one `name = value` to `settings`.
fn apply(settings: &mut BTreeMap<String, String>, name: &str, value: &str) {
    match name.strip_prefix("extra-") {
        Some(base) => {
            let joined = match settings.get(base) {
                Some(old) if !old.trim().is_empty() => format!("{old} {value}"),
                _ => value.to_string(),
            };
            settings.insert(base.to_string(), joined);
        }
        None => {
            settings.insert(name.to_string(), value.to_string());
        }
    }
}

/// Applies the text of one configuration source (`source_name` for messages; includes
/// are relative to `dir`).
pub fn apply_text(
    settings: &mut BTreeMap<String, String>,
    text: &str,
    source_name: &str,
    dir: Option<&Path>,
    depth: usize,
) -> Result<(), NixConfError> {
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let syntax = || NixConfError::Syntax {
            line: raw.to_string(),
            source_name: source_name.to_string(),
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        if matches!(words.first(), Some(&"include") | Some(&"!include")) {
            if words.len() != 2 || depth >= MAX_INCLUDE_DEPTH {
                return Err(syntax());
            }
            let file = match dir {
                Some(d) => d.join(words[1]),
                None => PathBuf::from(words[1]),
            };
            let must_exist = words[0] == "include";
            apply_file(settings, &file, must_exist, depth + 1)?;
            continue;
        }
        let (name, value) = line.split_once('=').ok_or_else(syntax)?;
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(syntax());
        }
        apply(settings, name, value.trim());
    }
    Ok(())
}

/// Applies the file `file`; a missing file is skipped unless `must_exist`.
fn apply_file(
    settings: &mut BTreeMap<String, String>,
    file: &Path,
    must_exist: bool,
    depth: usize,
) -> Result<(), NixConfError> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(()),
        Err(e) => {
            return Err(NixConfError::Read {
                file: file.display().to_string(),
                reason: e.to_string(),
            })
        }
    };
    apply_text(
        settings,
        &text,
        &file.display().to_string(),
        file.parent(),
        depth,
    )
}

/// The settings files in the order Nix reads them, from the environment `env`.
fn config_files(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let conf_dir = env("NIX_CONF_DIR").unwrap_or_else(|| "/etc/nix".to_string());
    let mut files = vec![Path::new(&conf_dir).join("nix.conf")];
    let user_dir = env("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")));
    if let Some(d) = user_dir {
        files.push(d.join("nix").join("nix.conf"));
    }
    files
}

/// The settings in force: the configuration files and `NIX_CONFIG` of `env`, then
/// `options` (`--option` pairs) over them.
pub fn settings_from(
    options: &BTreeMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, NixConfError> {
    let mut settings = BTreeMap::new();
    for file in config_files(env) {
        apply_file(&mut settings, &file, false, 0)?;
    }
    if let Some(text) = env("NIX_CONFIG") {
        apply_text(&mut settings, &text, "NIX_CONFIG", None, 0)?;
    }
    for (name, value) in options {
        apply(&mut settings, name, value);
    }
    Ok(settings)
}

/// [`settings_from`] with this process's environment.
pub fn settings(
    options: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, NixConfError> {
    settings_from(options, &|name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_in_nix_order() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        let user = dir.path().join("user");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(user.join("nix")).unwrap();
        std::fs::write(
            etc.join("nix.conf"),
            "# system\nsubstituters = file:///a\nrequire-sigs = true\ncores = 2\n\
             !include missing.conf\ninclude more.conf\n",
        )
        .unwrap();
        std::fs::write(etc.join("more.conf"), "max-jobs = 4\n").unwrap();
        std::fs::write(
            user.join("nix").join("nix.conf"),
            "extra-substituters = file:///b # mine\n",
        )
        .unwrap();
        let env = |name: &str| match name {
            "NIX_CONF_DIR" => Some(etc.display().to_string()),
            "XDG_CONFIG_HOME" => Some(user.display().to_string()),
            "NIX_CONFIG" => Some("require-sigs = false\ncores = 3".to_string()),
            _ => None,
        };
        let options: BTreeMap<String, String> = [("cores".to_string(), "5".to_string())].into();
        let s = settings_from(&options, &env).unwrap();
        assert_eq!(s["substituters"], "file:///a file:///b");
        assert_eq!(s["require-sigs"], "false");
        assert_eq!(s["cores"], "5");
        assert_eq!(s["max-jobs"], "4");
    }

    #[test]
    fn bad_lines_are_refused() {
        let mut s = BTreeMap::new();
        let e = apply_text(&mut s, "just words", "NIX_CONFIG", None, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "syntax error in configuration line 'just words' in 'NIX_CONFIG'"
        );
        let e = apply_text(&mut s, "include /nonexistent/x.conf", "f", None, 0).unwrap_err();
        assert!(matches!(e, NixConfError::Read { .. }));
    }
}
