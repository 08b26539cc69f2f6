//! A derivation to a [`BuildRequest`]: a pure function applying the rules Nix 2.8 follows
//! when it sets up a sandboxed build on Linux (`local-derivation-goal.cc`,
//! `parsed-derivations.cc`): the environment, `passAsFile`, structured attributes,
//! placeholders, `exportReferencesGraph`, the files of `/etc`, network for fixed-output
//! derivations, and the needles for reference scanning.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use thiserror::Error;
use tvix_build::{BuildRequest, Constraints, SandboxFile, ScratchDir};
use tvix_eval::builtins::write_json_str;
use tvix_store::castore::Node;
use tvix_store::derivation::placeholder;
use tvix_store::{Derivation, NixHash, StorePath};

/// The store directory inside the sandbox.
pub const SANDBOX_STORE_DIR: &str = "/nix/store";
/// The build's working directory inside the sandbox (Nix's `tmpDirInSandbox`).
pub const BUILD_DIR: &str = "/build";
/// `HOME` of every build: a directory that does not exist.
pub const HOME_DIR: &str = "/homeless-shelter";

const PASSWD: &str = "root:x:0:0:Nix build user:/build:/noshell\n\
nixbld:x:1000:100:Nix build user:/build:/noshell\n\
nobody:x:65534:65534:Nobody:/:/noshell\n";
const GROUP: &str = "root:x:0:\nnixbld:!:100:\nnogroup:x:65534:\n";
const HOSTS: &str = "127.0.0.1 localhost\n::1 localhost\n";
const NSSWITCH: &str = "hosts: files dns\nservices: files\n";

/// Settings of the build that do not come from the derivation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestSettings {
    /// `NIX_BUILD_CORES` (Nix's `cores`).
    pub cores: u32,
    /// Nix's `timeout`.
    pub timeout: Option<Duration>,
    /// Nix's `max-silent-time`.
    pub max_silent_time: Option<Duration>,
    /// Keep the scratch directory of a failed build.
    pub keep_failed: bool,
}

impl RequestSettings {
    /// The default: as many cores as the machine has, no time limits.
    pub fn with_default_cores() -> Self {
        RequestSettings {
            cores: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
            ..Default::default()
        }
    }
}

/// Why a derivation cannot be turned into a request.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RequestError {
    /// `__json` does not hold a JSON object.
    #[error("derivation '{drv}': invalid structured attributes (__json): {reason}")]
    StructuredAttrs {
        /// The derivation.
        drv: String,
        /// What is wrong.
        reason: String,
    },
    /// An output has no path, or one outside the store.
    #[error("derivation '{drv}': output '{output}' has no valid store path")]
    OutputPath {
        /// The derivation.
        drv: String,
        /// The output.
        output: String,
    },
    /// `exportReferencesGraph` is malformed or names a path outside the input closure.
    #[error("derivation '{drv}': {reason}")]
    ExportReferencesGraph {
        /// The derivation.
        drv: String,
        /// What is wrong.
        reason: String,
    },
    /// An attribute that must be a list of strings is not.
    #[error("derivation '{drv}': attribute '{name}' must be a list of strings")]
    NotStrings {
        /// The derivation.
        drv: String,
        /// The attribute.
        name: String,
    },
}

/// The parsed view of a derivation's attributes Nix uses: its environment, or its
/// structured attributes (`__json`) when it has them.
#[derive(Debug)]
pub struct ParsedAttrs<'a> {
    drv: &'a Derivation,
    structured: Option<serde_json::Map<String, serde_json::Value>>,
}

impl<'a> ParsedAttrs<'a> {
    /// Parses `__json` if present. `drv_path` names the derivation in errors.
    pub fn new(drv: &'a Derivation, drv_path: &str) -> Result<Self, RequestError> {
        let structured = match drv.env.get("__json") {
            None => None,
            Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(m)) => Some(m),
                Ok(_) => {
                    return Err(RequestError::StructuredAttrs {
                        drv: drv_path.to_string(),
                        reason: "not an object".into(),
                    })
                }
                Err(e) => {
                    return Err(RequestError::StructuredAttrs {
                        drv: drv_path.to_string(),
                        reason: e.to_string(),
                    })
                }
            },
        };
        Ok(ParsedAttrs { drv, structured })
    }

    /// The structured attributes, if the derivation has them.
    pub fn structured(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.structured.as_ref()
    }

    /// Nix's `getStringsAttr`: a JSON list of strings with structured attributes, else the
    /// environment variable split on whitespace. `Ok(None)` when absent.
    pub fn strings_attr(
        &self,
        name: &str,
        drv_path: &str,
    ) -> Result<Option<Vec<String>>, RequestError> {
        match &self.structured {
            Some(m) => match m.get(name) {
                None => Ok(None),
                Some(v) => json_strings(v).map(Some).ok_or(RequestError::NotStrings {
                    drv: drv_path.to_string(),
                    name: name.to_string(),
                }),
            },
            None => Ok(self
                .drv
                .env
                .get(name)
                .map(|v| v.split_whitespace().map(str::to_string).collect())),
        }
    }

    /// Nix's `requiredSystemFeatures`.
    pub fn required_system_features(
        &self,
        drv_path: &str,
    ) -> Result<BTreeSet<String>, RequestError> {
        Ok(self
            .strings_attr("requiredSystemFeatures", drv_path)?
            .unwrap_or_default()
            .into_iter()
            .collect())
    }
}

/// A JSON array of strings, or `None`.
pub fn json_strings(v: &serde_json::Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// The derivation's output paths by output name (checked to be store paths).
pub fn output_paths(
    drv: &Derivation,
    drv_path: &str,
) -> Result<BTreeMap<String, StorePath>, RequestError> {
    drv.outputs
        .iter()
        .map(|(name, o)| {
            o.path
                .strip_prefix(SANDBOX_STORE_DIR)
                .and_then(|r| r.strip_prefix('/'))
                .and_then(|b| StorePath::from_base_name(b).ok())
                .map(|p| (name.clone(), p))
                .ok_or_else(|| RequestError::OutputPath {
                    drv: drv_path.to_string(),
                    output: name.clone(),
                })
        })
        .collect()
}

/// Nix's `rewriteStrings`: every rewrite applied in turn, in the order of the map.
fn rewrite(s: &str, rewrites: &BTreeMap<String, String>) -> String {
    let mut s = s.to_string();
    for (from, to) in rewrites {
        if s.contains(from.as_str()) {
            s = s.replace(from.as_str(), to);
        }
    }
    s
}

/// The file name Nix gives an attribute passed as a file: `.attr-<nix32 sha256 of name>`.
pub fn pass_as_file_name(name: &str) -> String {
    format!(".attr-{}", NixHash::sha256(name.as_bytes()).to_nix32())
}

/// Nix's `shellEscape`: single quotes, with embedded ones as `'\''`.
fn shell_escape(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Whether `s` is a shell variable name (`[A-Za-z_][A-Za-z0-9_]*`).
fn is_sh_var_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A JSON value as a bash word, as Nix 2.8's `handleSimpleType` renders it: strings
/// escaped, whole numbers as C `int`s (others are not simple), null as `''`, true as `1`
/// and false as nothing.
fn sh_simple(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value as J;
    match v {
        J::String(s) => Some(shell_escape(s)),
        J::Number(n) => {
            let as_int = if let Some(i) = n.as_i64() {
                Some(i as i32)
            } else if let Some(u) = n.as_u64() {
                Some(u as i32)
            } else {
                // Nix compares the value as a C float with its ceiling, then converts the
                // double to int (x86 gives INT_MIN when it does not fit).
                let f = n.as_f64()?;
                let f32v = f as f32;
                if f32v.ceil() == f32v {
                    Some(if f >= i32::MIN as f64 && f <= i32::MAX as f64 {
                        f as i32
                    } else {
                        i32::MIN
                    })
                } else {
                    None
                }
            };
            as_int.map(|i| i.to_string())
        }
        J::Null => Some("''".to_string()),
        J::Bool(b) => Some(if *b { "1".into() } else { String::new() }),
        _ => None,
    }
}

/// The `.attrs.sh` Nix 2.8 writes for structured attributes: one `declare` line per
/// attribute whose name is a shell variable name and whose value is simple, a list of
/// simple values (`declare -a`) or an object of them (`declare -A`); others are left out.
pub fn structured_attrs_sh(json: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut out = String::new();
    let mut keys: Vec<&String> = json.keys().collect();
    keys.sort();
    for key in keys {
        if !is_sh_var_name(key) {
            continue;
        }
        let value = &json[key];
        if let Some(s) = sh_simple(value) {
            out.push_str(&format!("declare {key}={s}\n"));
        } else if let Some(items) = value.as_array() {
            let words: Option<Vec<String>> = items.iter().map(sh_simple).collect();
            if let Some(words) = words {
                let body: String = words.iter().map(|w| format!("{w} ")).collect();
                out.push_str(&format!("declare -a {key}=({body})\n"));
            }
        } else if let Some(obj) = value.as_object() {
            let mut names: Vec<&String> = obj.keys().collect();
            names.sort();
            let words: Option<Vec<String>> = names
                .iter()
                .map(|k| sh_simple(&obj[*k]).map(|w| format!("[{}]={w} ", shell_escape(k))))
                .collect();
            if let Some(words) = words {
                out.push_str(&format!("declare -A {key}=({})\n", words.concat()));
            }
        }
    }
    out
}

/// JSON text as nlohmann's `dump()` writes it (what Nix writes to `.attrs.json`):
/// compact, object keys sorted, non-ASCII text raw, control characters escaped.
pub fn json_dump(v: &serde_json::Value) -> String {
    let mut out = String::new();
    dump_into(v, &mut out);
    out
}

fn dump_into(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value as J;
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string())
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string())
            } else {
                out.push_str(&dump_float(n.as_f64().unwrap_or(0.0)))
            }
        }
        J::String(s) => write_json_str(s, out),
        J::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                dump_into(x, out);
            }
            out.push(']');
        }
        J::Object(m) => {
            out.push('{');
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(k, out);
                out.push(':');
                dump_into(&m[k], out);
            }
            out.push('}');
        }
    }
}

/// A double as nlohmann writes it: the shortest digits that round-trip, as `d.ddd`
/// (with `.0` for whole numbers) when the decimal exponent is in (-4, 15], else as
/// `d.ddde+XX`.
fn dump_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits: `-1.2345e3`.
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    // The value is 0.digits * 10^n.
    let n = exp + 1;
    let sign = if f < 0.0 { "-" } else { "" };
    let body = if k <= n && n <= 15 {
        format!("{digits}{}.0", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 15 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -4 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let m = if k == 1 {
            digits.clone()
        } else {
            format!("{}.{}", &digits[..1], &digits[1..])
        };
        let esign = if e < 0 { '-' } else { '+' };
        format!("{m}e{esign}{:02}", e.abs())
    };
    format!("{sign}{body}")
}

/// Nix's `exportReferencesGraph` (without structured attributes): pairs `NAME PATH`; the
/// closure of each PATH (which must be in the input closure) is written to `/build/NAME`
/// in the format of `nix-store --register-validity` without derivers or hashes: each path,
/// an empty line, the number of its references and the references, paths sorted.
fn export_references_graph(
    spec: &str,
    drv_path: &str,
    input: &RequestInput<'_>,
) -> Result<Vec<SandboxFile>, RequestError> {
    let err = |reason: String| RequestError::ExportReferencesGraph {
        drv: drv_path.to_string(),
        reason,
    };
    let words: Vec<&str> = spec.split_whitespace().collect();
    if !words.len().is_multiple_of(2) {
        return Err(err(format!(
            "odd number of tokens in 'exportReferencesGraph': '{spec}'"
        )));
    }
    let in_closure: BTreeSet<&StorePath> = input.closure.iter().map(|(p, _)| p).collect();
    let mut files = Vec::new();
    for pair in words.chunks(2) {
        let (name, path) = (pair[0], pair[1]);
        let mut chars = name.bytes();
        let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
            && chars.all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c));
        if !valid {
            return Err(err(format!(
                "invalid file name '{name}' in 'exportReferencesGraph'"
            )));
        }
        let root = path
            .strip_prefix(SANDBOX_STORE_DIR)
            .and_then(|r| r.strip_prefix('/'))
            .map(|r| r.split('/').next().unwrap_or(r))
            .and_then(|b| StorePath::from_base_name(b).ok())
            .ok_or_else(|| {
                err(format!(
                    "'exportReferencesGraph' contains a non-store path '{path}'"
                ))
            })?;
        if !in_closure.contains(&root) {
            return Err(err(format!(
                "cannot export references of path '{path}' because it is not in the input closure of the derivation"
            )));
        }
        let mut seen: BTreeMap<String, &StorePath> = BTreeMap::new();
        let mut todo = vec![&root];
        while let Some(p) = todo.pop() {
            if seen.insert(p.to_base_name(), p).is_some() {
                continue;
            }
            if let Some(refs) = input.references.get(p) {
                todo.extend(refs.iter());
            }
        }
        let mut text = String::new();
        for p in seen.values() {
            let refs = input.references.get(*p).map(Vec::as_slice).unwrap_or(&[]);
            let mut refs: Vec<String> = refs
                .iter()
                .map(|r| format!("{SANDBOX_STORE_DIR}/{r}"))
                .collect();
            refs.sort();
            text.push_str(&format!("{SANDBOX_STORE_DIR}/{p}\n\n{}\n", refs.len()));
            for r in refs {
                text.push_str(&r);
                text.push('\n');
            }
        }
        files.push(SandboxFile {
            path: format!("{BUILD_DIR}/{name}"),
            contents: text.into_bytes(),
            mode: 0o644,
        });
    }
    Ok(files)
}

/// Everything [`derivation_to_request`] needs.
pub struct RequestInput<'a> {
    /// The derivation.
    pub drv: &'a Derivation,
    /// Its `.drv` path (absolute), for messages.
    pub drv_path: &'a str,
    /// The input closure: every store path the build may see, with its contents.
    pub closure: &'a [(StorePath, Node)],
    /// The references of each path of the closure (for `exportReferencesGraph`).
    pub references: &'a BTreeMap<StorePath, Vec<StorePath>>,
    /// Settings that do not come from the derivation.
    pub settings: &'a RequestSettings,
    /// The caller's environment (read for a fixed-output derivation's `impureEnvVars`).
    pub caller_env: &'a dyn Fn(&str) -> Option<String>,
}

/// Turns a derivation into the request that builds it, as Nix 2.8 sets up a sandboxed
/// build: see the module documentation.
pub fn derivation_to_request(input: &RequestInput<'_>) -> Result<BuildRequest, RequestError> {
    let drv = input.drv;
    let drv_path = input.drv_path;
    let attrs = ParsedAttrs::new(drv, drv_path)?;
    let outputs = output_paths(drv, drv_path)?;
    let fixed_output = drv.is_fixed_output();

    // Placeholders of the outputs rewritten to their paths.
    let rewrites: BTreeMap<String, String> = outputs
        .iter()
        .map(|(name, p)| (placeholder(name), format!("{SANDBOX_STORE_DIR}/{p}")))
        .collect();

    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut files: Vec<SandboxFile> = Vec::new();
    env.insert("PATH".into(), "/path-not-set".into());
    env.insert("HOME".into(), HOME_DIR.into());
    env.insert("NIX_STORE".into(), SANDBOX_STORE_DIR.into());
    env.insert("NIX_BUILD_CORES".into(), input.settings.cores.to_string());

    match attrs.structured() {
        None => {
            let pass_as_file: BTreeSet<&str> = drv
                .env
                .get("passAsFile")
                .map(|v| v.split_whitespace().collect())
                .unwrap_or_default();
            for (name, value) in &drv.env {
                if pass_as_file.contains(name.as_str()) {
                    let file = pass_as_file_name(name);
                    files.push(SandboxFile {
                        path: format!("{BUILD_DIR}/{file}"),
                        contents: rewrite(value, &rewrites).into_bytes(),
                        mode: 0o644,
                    });
                    env.insert(format!("{name}Path"), format!("{BUILD_DIR}/{file}"));
                } else {
                    env.insert(name.clone(), value.clone());
                }
            }
        }
        Some(json) => {
            let mut json = json.clone();
            let outs: serde_json::Map<String, serde_json::Value> = outputs
                .keys()
                .map(|name| (name.clone(), serde_json::Value::String(placeholder(name))))
                .collect();
            json.insert("outputs".into(), serde_json::Value::Object(outs));
            let sh = structured_attrs_sh(&json);
            let text = json_dump(&serde_json::Value::Object(json));
            files.push(SandboxFile {
                path: format!("{BUILD_DIR}/.attrs.json"),
                contents: rewrite(&text, &rewrites).into_bytes(),
                mode: 0o644,
            });
            files.push(SandboxFile {
                path: format!("{BUILD_DIR}/.attrs.sh"),
                contents: rewrite(&sh, &rewrites).into_bytes(),
                mode: 0o644,
            });
            env.insert(
                "NIX_ATTRS_JSON_FILE".into(),
                format!("{BUILD_DIR}/.attrs.json"),
            );
            env.insert("NIX_ATTRS_SH_FILE".into(), format!("{BUILD_DIR}/.attrs.sh"));
        }
    }

    if attrs.structured().is_none() {
        if let Some(spec) = drv.env.get("exportReferencesGraph") {
            files.extend(export_references_graph(spec, drv_path, input)?);
        }
    }

    for var in ["NIX_BUILD_TOP", "TMPDIR", "TEMPDIR", "TMP", "TEMP", "PWD"] {
        env.insert(var.into(), BUILD_DIR.into());
    }
    if fixed_output {
        // A compatibility hack of Nix's for old fetchers.
        env.insert("NIX_OUTPUT_CHECKED".into(), "1".into());
        for var in attrs
            .strings_attr("impureEnvVars", drv_path)?
            .unwrap_or_default()
        {
            let value = (input.caller_env)(&var).unwrap_or_default();
            env.insert(var, value);
        }
    }
    env.insert("NIX_LOG_FD".into(), "2".into());
    env.insert("TERM".into(), "xterm-256color".into());

    // Placeholders are rewritten in names and values, as Nix rewrites `NAME=VALUE`.
    let mut env_out: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in env {
        env_out.insert(rewrite(&k, &rewrites), rewrite(&v, &rewrites));
    }

    let base_name = drv
        .builder
        .rsplit('/')
        .next()
        .filter(|b| !b.is_empty())
        .unwrap_or(&drv.builder)
        .to_string();
    let mut argv = vec![base_name];
    argv.extend(drv.args.iter().map(|a| rewrite(a, &rewrites)));

    files.push(SandboxFile {
        path: "/etc/passwd".into(),
        contents: PASSWD.into(),
        mode: 0o644,
    });
    files.push(SandboxFile {
        path: "/etc/group".into(),
        contents: GROUP.into(),
        mode: 0o644,
    });
    let mut host_files = Vec::new();
    if fixed_output {
        host_files = ["/etc/resolv.conf", "/etc/services", "/etc/hosts"]
            .map(String::from)
            .to_vec();
        files.push(SandboxFile {
            path: "/etc/nsswitch.conf".into(),
            contents: NSSWITCH.into(),
            mode: 0o644,
        });
    } else {
        files.push(SandboxFile {
            path: "/etc/hosts".into(),
            contents: HOSTS.into(),
            mode: 0o644,
        });
    }

    let mut needles: Vec<String> = input
        .closure
        .iter()
        .map(|(p, _)| p.hash_part())
        .chain(outputs.values().map(StorePath::hash_part))
        .collect();
    needles.sort();
    needles.dedup();

    Ok(BuildRequest {
        program: drv.builder.clone(),
        argv,
        env: env_out.into_iter().collect(),
        working_dir: BUILD_DIR.into(),
        scratch_dirs: vec![
            ScratchDir {
                path: BUILD_DIR.into(),
                mode: 0o700,
            },
            ScratchDir {
                path: "/tmp".into(),
                mode: 0o1777,
            },
        ],
        store_dir: SANDBOX_STORE_DIR.into(),
        inputs: input
            .closure
            .iter()
            .map(|(p, n)| (format!("{SANDBOX_STORE_DIR}/{p}"), n.clone()))
            .collect(),
        outputs: outputs
            .values()
            .map(|p| format!("{SANDBOX_STORE_DIR}/{p}"))
            .collect(),
        network: fixed_output,
        host_files,
        files,
        needles,
        constraints: Constraints {
            system: drv.system.clone(),
            required_features: attrs.required_system_features(drv_path)?,
            timeout: input.settings.timeout,
            max_silent_time: input.settings.max_silent_time,
        },
        keep_failed: input.settings.keep_failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvix_store::derivation::Output;

    const OUT: &str = "/nix/store/0a1hmb1d2dm3g6lrqwscf0lqjfjbzbv2-t";
    const DEV: &str = "/nix/store/1b2hmb1d2dm3g6lrqwscf0lqjfjbzbv2-t-dev";
    const DRV: &str = "/nix/store/2c3hmb1d2dm3g6lrqwscf0lqjfjbzbv2-t.drv";
    const BB: &str = "/nix/store/3d4hmb1d2dm3g6lrqwscf0lqjfjbzbv2-busybox";

    fn drv() -> Derivation {
        let mut d = Derivation {
            system: "x86_64-linux".into(),
            builder: format!("{BB}/bin/sh"),
            args: vec!["-c".into(), "echo hi".into()],
            ..Default::default()
        };
        d.outputs.insert(
            "out".into(),
            Output {
                path: OUT.into(),
                ..Default::default()
            },
        );
        d.env.insert("out".into(), OUT.into());
        d.env.insert("name".into(), "t".into());
        d.env.insert("builder".into(), d.builder.clone());
        d.env.insert("system".into(), "x86_64-linux".into());
        d
    }

    fn closure() -> Vec<(StorePath, Node)> {
        vec![(
            StorePath::from_base_name(&BB[11..]).unwrap(),
            Node::Symlink {
                target: b"/x".to_vec(),
            },
        )]
    }

    fn request_for(d: &Derivation, env: &dyn Fn(&str) -> Option<String>) -> BuildRequest {
        let settings = RequestSettings {
            cores: 3,
            ..Default::default()
        };
        let c = closure();
        let r = derivation_to_request(&RequestInput {
            drv: d,
            drv_path: DRV,
            closure: &c,
            references: &BTreeMap::new(),
            settings: &settings,
            caller_env: env,
        })
        .unwrap();
        r.validate().unwrap();
        r
    }

    fn env_of(r: &BuildRequest) -> BTreeMap<&str, &str> {
        r.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn file<'a>(r: &'a BuildRequest, path: &str) -> Option<&'a str> {
        r.files
            .iter()
            .find(|f| f.path == path)
            .map(|f| std::str::from_utf8(&f.contents).unwrap())
    }

    #[test]
    fn base_environment_in_order() {
        let r = request_for(&drv(), &no_env);
        let names: Vec<&str> = r.env.iter().map(|(k, _)| k.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "environment is sorted by name");
        let e = env_of(&r);
        assert_eq!(e["PATH"], "/path-not-set");
        assert_eq!(e["HOME"], "/homeless-shelter");
        assert_eq!(e["NIX_STORE"], "/nix/store");
        assert_eq!(e["NIX_BUILD_CORES"], "3");
        for v in ["NIX_BUILD_TOP", "TMPDIR", "TEMPDIR", "TMP", "TEMP", "PWD"] {
            assert_eq!(e[v], "/build");
        }
        assert_eq!(e["NIX_LOG_FD"], "2");
        assert_eq!(e["TERM"], "xterm-256color");
        assert_eq!(e["out"], OUT);
        assert!(!e.contains_key("NIX_OUTPUT_CHECKED"));
    }

    #[test]
    fn derivation_overrides_the_first_four_only() {
        let mut d = drv();
        d.env.insert("PATH".into(), "/bin".into());
        d.env.insert("HOME".into(), "/h".into());
        d.env.insert("TMPDIR".into(), "/elsewhere".into());
        d.env.insert("TERM".into(), "dumb".into());
        let r = request_for(&d, &no_env);
        let e = env_of(&r);
        assert_eq!(e["PATH"], "/bin");
        assert_eq!(e["HOME"], "/h");
        assert_eq!(e["TMPDIR"], "/build");
        assert_eq!(e["TERM"], "xterm-256color");
    }

    #[test]
    fn argv0_is_the_builders_base_name() {
        let r = request_for(&drv(), &no_env);
        assert_eq!(r.program, format!("{BB}/bin/sh"));
        assert_eq!(r.argv, vec!["sh", "-c", "echo hi"]);
    }

    #[test]
    fn placeholders_are_rewritten_in_env_and_args() {
        let mut d = drv();
        d.outputs.insert(
            "dev".into(),
            Output {
                path: DEV.into(),
                ..Default::default()
            },
        );
        d.env
            .insert("x".into(), format!("{}/bin", placeholder("dev")));
        d.args.push(format!("[{}]", placeholder("out")));
        let r = request_for(&d, &no_env);
        assert_eq!(env_of(&r)["x"], format!("{DEV}/bin"));
        assert_eq!(r.argv.last().unwrap(), &format!("[{OUT}]"));
        assert_eq!(r.outputs, vec![DEV.to_string(), OUT.to_string()]);
    }

    #[test]
    fn pass_as_file() {
        let mut d = drv();
        d.env
            .insert("big".into(), format!("data {}", placeholder("out")));
        d.env.insert("passAsFile".into(), "big missing".into());
        let r = request_for(&d, &no_env);
        let e = env_of(&r);
        assert!(!e.contains_key("big"));
        let name = pass_as_file_name("big");
        assert!(name.starts_with(".attr-1lak0mvl"), "{name}");
        assert_eq!(e["bigPath"], format!("/build/{name}"));
        assert!(!e.contains_key("missingPath"));
        assert_eq!(
            file(&r, &format!("/build/{name}")).unwrap(),
            format!("data {OUT}")
        );
    }

    #[test]
    fn structured_attributes() {
        let mut d = drv();
        d.env.clear();
        d.env.insert("out".into(), OUT.into());
        d.env.insert(
            "__json".into(),
            r#"{"name":"t","n":3,"f":1.5,"b":false,"t":true,"z":null,"l":["a'b",1],"o":{"k":"v"},"bad-name":1,"nested":[[1]],"p":"x"}"#
                .into(),
        );
        let r = request_for(&d, &no_env);
        let e = env_of(&r);
        assert!(!e.contains_key("out") && !e.contains_key("name"));
        assert_eq!(e["NIX_ATTRS_JSON_FILE"], "/build/.attrs.json");
        assert_eq!(e["NIX_ATTRS_SH_FILE"], "/build/.attrs.sh");
        let json = file(&r, "/build/.attrs.json").unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"b":false,"bad-name":1,"f":1.5,"l":["a'b",1],"n":3,"name":"t","nested":[[1]],"o":{{"k":"v"}},"outputs":{{"out":"{OUT}"}},"p":"x","t":true,"z":null}}"#
            )
        );
        let sh = file(&r, "/build/.attrs.sh").unwrap();
        assert_eq!(
            sh,
            format!(
                "declare b=\ndeclare -a l=('a'\\''b' 1 )\ndeclare n=3\ndeclare name='t'\n\
                 declare -A o=(['k']='v' )\ndeclare -A outputs=(['out']='{OUT}' )\n\
                 declare p='x'\ndeclare t=1\ndeclare z=''\n"
            )
        );
    }

    #[test]
    fn bad_structured_attributes_are_an_error() {
        let mut d = drv();
        d.env.insert("__json".into(), "[1".into());
        let c = closure();
        let s = RequestSettings::default();
        let e = derivation_to_request(&RequestInput {
            drv: &d,
            drv_path: DRV,
            closure: &c,
            references: &BTreeMap::new(),
            settings: &s,
            caller_env: &no_env,
        });
        assert!(matches!(e, Err(RequestError::StructuredAttrs { .. })));
    }

    #[test]
    fn floats_as_nlohmann_writes_them() {
        for (f, s) in [
            (1.5, "1.5"),
            (100.0, "100.0"),
            (0.001, "0.001"),
            (1e-5, "1e-05"),
            (1e100, "1e+100"),
            (-2.25, "-2.25"),
            (123456789012345.0, "123456789012345.0"),
            (1.2345e20, "1.2345e+20"),
        ] {
            assert_eq!(dump_float(f), s, "{f}");
        }
    }

    #[test]
    fn sandbox_files_and_network() {
        let r = request_for(&drv(), &no_env);
        assert!(!r.network);
        assert!(r.host_files.is_empty());
        assert_eq!(file(&r, "/etc/hosts").unwrap(), HOSTS);
        assert!(file(&r, "/etc/passwd")
            .unwrap()
            .starts_with("root:x:0:0:Nix build user"));
        assert_eq!(file(&r, "/etc/group").unwrap(), GROUP);
        assert_eq!(r.working_dir, "/build");
        assert_eq!(r.scratch_dirs[0].mode, 0o700);
        assert_eq!(r.scratch_dirs[1].mode, 0o1777);
        assert_eq!(r.store_dir, "/nix/store");
    }

    fn fixed() -> Derivation {
        let mut d = drv();
        let h = NixHash::sha256(b"x");
        let mut o = Output::fixed(tvix_store::FileIngestionMethod::Flat, &h);
        o.path = OUT.into();
        d.outputs.insert("out".into(), o);
        d.env
            .insert("impureEnvVars".into(), "http_proxy  FOO".into());
        d
    }

    #[test]
    fn fixed_output_gets_network_and_impure_vars() {
        let env = |v: &str| (v == "http_proxy").then(|| "http://p".to_string());
        let r = request_for(&fixed(), &env);
        assert!(r.network);
        assert_eq!(
            r.host_files,
            vec!["/etc/resolv.conf", "/etc/services", "/etc/hosts"]
        );
        assert_eq!(file(&r, "/etc/nsswitch.conf").unwrap(), NSSWITCH);
        assert!(file(&r, "/etc/hosts").is_none());
        let e = env_of(&r);
        assert_eq!(e["http_proxy"], "http://p");
        assert_eq!(e["FOO"], "");
        assert_eq!(e["NIX_OUTPUT_CHECKED"], "1");
    }

    #[test]
    fn impure_vars_only_for_fixed_output() {
        let mut d = drv();
        d.env.insert("impureEnvVars".into(), "http_proxy".into());
        let env = |_: &str| Some("leak".to_string());
        let r = request_for(&d, &env);
        assert!(!env_of(&r).contains_key("http_proxy"));
    }

    #[test]
    fn needles_and_constraints() {
        let mut d = drv();
        d.env
            .insert("requiredSystemFeatures".into(), "kvm  big-parallel".into());
        let r = request_for(&d, &no_env);
        assert_eq!(
            r.needles,
            vec![
                "0a1hmb1d2dm3g6lrqwscf0lqjfjbzbv2".to_string(),
                "3d4hmb1d2dm3g6lrqwscf0lqjfjbzbv2".to_string()
            ]
        );
        assert_eq!(r.constraints.system, "x86_64-linux");
        assert_eq!(
            r.constraints.required_features,
            ["big-parallel", "kvm"].map(String::from).into()
        );
        assert_eq!(r.inputs[0].0, BB);
    }

    #[test]
    fn export_references_graph() {
        let bb = StorePath::from_base_name(&BB[11..]).unwrap();
        let dep = StorePath::from_base_name("5f6hmb1d2dm3g6lrqwscf0lqjfjbzbv2-dep").unwrap();
        let closure = vec![
            (
                bb.clone(),
                Node::Symlink {
                    target: b"/x".to_vec(),
                },
            ),
            (
                dep.clone(),
                Node::Symlink {
                    target: b"/x".to_vec(),
                },
            ),
        ];
        let refs: BTreeMap<StorePath, Vec<StorePath>> = [
            (dep.clone(), vec![bb.clone(), dep.clone()]),
            (bb.clone(), vec![]),
        ]
        .into();
        let mut d = drv();
        d.env.insert(
            "exportReferencesGraph".into(),
            format!("graph /nix/store/{dep}"),
        );
        let s = RequestSettings::default();
        let req = |d: &Derivation| {
            derivation_to_request(&RequestInput {
                drv: d,
                drv_path: DRV,
                closure: &closure,
                references: &refs,
                settings: &s,
                caller_env: &no_env,
            })
        };
        let r = req(&d).unwrap();
        assert_eq!(
            file(&r, "/build/graph").unwrap(),
            format!("{BB}\n\n0\n/nix/store/{dep}\n\n2\n{BB}\n/nix/store/{dep}\n")
        );
        for bad in [
            "odd",
            "9x /nix/store/{dep}",
            "x /tmp/y",
            "x /nix/store/00000000000000000000000000000000-no",
        ] {
            let mut d = drv();
            d.env.insert(
                "exportReferencesGraph".into(),
                bad.replace("{dep}", &dep.to_string()),
            );
            assert!(
                matches!(req(&d), Err(RequestError::ExportReferencesGraph { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_output_path_is_an_error() {
        let mut d = drv();
        d.outputs.get_mut("out").unwrap().path = "/tmp/x".into();
        let c = closure();
        let s = RequestSettings::default();
        let e = derivation_to_request(&RequestInput {
            drv: &d,
            drv_path: DRV,
            closure: &c,
            references: &BTreeMap::new(),
            settings: &s,
            caller_env: &no_env,
        });
        assert!(matches!(e, Err(RequestError::OutputPath { .. })));
    }
}
