//! Workspace settings, sent by the editor as `initializationOptions` and with
//! `workspace/didChangeConfiguration`, both shaped `{ "tvix": { ... } }`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The evaluation context of the workspace.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// Search path entries (`nixpkgs=/path` or `/dir`), highest priority first.
    pub search_path: Vec<String>,
    /// How long one evaluation-backed request may evaluate, in milliseconds.
    pub eval_budget_ms: u64,
    /// The file whose evaluation gives context (relative to the document's directory, or
    /// absolute): evaluation errors of other files are those this file's evaluation runs
    /// into. Hover and completion evaluate each file with `args`.
    pub entry_file: Option<String>,
    /// Arguments for functions: name to Nix expression (like `--arg name expr`).
    pub args: BTreeMap<String, String>,
    /// A Nix expression giving a module system `options` set, for module files.
    pub options_expr: Option<String>,
    /// What evaluation may do beyond reading files.
    pub evaluation: EvaluationSettings,
    /// Building derivations from the editor (`tvix.build`).
    pub build: BuildSettings,
}

/// `tvix.evaluation`: what the editor's evaluations may do. Both are off by default, so
/// that hover and completion never download or build by surprise.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct EvaluationSettings {
    /// `allowFetch`: fetchers (`fetchurl`, `fetchTarball`, `fetchGit`, ...) may download
    /// and run git.
    pub allow_fetch: bool,
    /// `allowBuild`: import-from-derivation may build derivations (in the tvix store).
    pub allow_build: bool,
}

/// `tvix.build`: whether the `tvix/build` command may build (off by default, so nothing
/// builds by surprise).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct BuildSettings {
    /// `tvix.build.enable`.
    pub enable: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            search_path: Vec::new(),
            eval_budget_ms: 300,
            entry_file: None,
            args: BTreeMap::new(),
            options_expr: None,
            evaluation: EvaluationSettings::default(),
            build: BuildSettings::default(),
        }
    }
}

impl Settings {
    /// Reads settings from `{ "tvix": { ... } }` (or the inner object itself); what is
    /// missing or malformed keeps its default, and the error says what was wrong.
    pub fn from_json(value: &serde_json::Value) -> (Settings, Option<String>) {
        let inner = value.get("tvix").unwrap_or(value);
        if inner.is_null() {
            return (Settings::default(), None);
        }
        match Settings::deserialize(inner) {
            Ok(s) => (s, None),
            Err(e) => (
                Settings::default(),
                Some(format!("invalid tvix settings: {e}")),
            ),
        }
    }

    /// The search path as `(prefix, directory)` pairs.
    pub fn search_path_pairs(&self) -> Vec<(String, PathBuf)> {
        self.search_path
            .iter()
            .map(|e| match e.split_once('=') {
                Some((p, d)) => (p.to_string(), PathBuf::from(d)),
                None => (String::new(), PathBuf::from(e)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_settings_and_reports_bad_ones() {
        let v = serde_json::json!({"tvix": {"searchPath": ["nixpkgs=/p", "/d"], "evalBudgetMs": 50,
            "args": {"lib": "import <nixpkgs/lib>"}, "entryFile": null}});
        let (s, err) = Settings::from_json(&v);
        assert!(err.is_none());
        assert_eq!(s.eval_budget_ms, 50);
        assert_eq!(
            s.search_path_pairs()[0],
            ("nixpkgs".to_string(), PathBuf::from("/p"))
        );
        assert_eq!(s.args["lib"], "import <nixpkgs/lib>");
        assert_eq!(s.evaluation, EvaluationSettings::default());
        assert!(!s.evaluation.allow_fetch && !s.evaluation.allow_build);
        let v = serde_json::json!({"tvix": {"evaluation": {"allowFetch": true}}});
        let (s, err) = Settings::from_json(&v);
        assert!(err.is_none());
        assert!(s.evaluation.allow_fetch && !s.evaluation.allow_build);
        assert!(!s.build.enable);
        let (s, _) = Settings::from_json(&serde_json::json!({"tvix": {"build": {"enable": true}}}));
        assert!(s.build.enable);
        let (s, err) = Settings::from_json(&serde_json::json!({"tvix": {"evalBudgetMs": "x"}}));
        assert_eq!(s, Settings::default());
        assert!(err.is_some());
    }
}
