//! `tvix show-derivation`: `.drv` files printed as the JSON of `nix derivation show`.

use std::io::Write;

use clap::Args;

use super::eval::cwd;

/// Flags of `tvix show-derivation`.
#[derive(Args)]
pub(super) struct ShowDerivationArgs {
    /// The `.drv` files.
    #[arg(required = true)]
    pub(super) paths: Vec<String>,
    /// Also show the input derivations, recursively (their files must exist).
    #[arg(short = 'r', long)]
    pub(super) recursive: bool,
    /// The tvix store to read `.drv` store paths from when they are not on disk
    /// (default: `$TVIX_STORE`, else `local://`).
    #[arg(long, value_name = "URL")]
    pub(super) store: Option<String>,
}

/// Reads `.drv` files: from the file system, and store paths the file system does not
/// have from the tvix store (opened on first need).
struct DrvReader<'a> {
    url: &'a str,
    store_dir: tvix_store::StoreDir,
    store: Option<Box<dyn tvix_store::StoreService>>,
}

impl DrvReader<'_> {
    fn read(&mut self, path: &str) -> Result<Vec<u8>, String> {
        let fs_err = match std::fs::read(path) {
            Ok(b) => return Ok(b),
            Err(e) => format!("reading '{path}': {e}"),
        };
        let Ok((sp, rest)) = self.store_dir.split_path(path) else {
            return Err(fs_err);
        };
        if !rest.is_empty() {
            return Err(fs_err);
        }
        if self.store.is_none() {
            let store = tvix_store::open(self.url)
                .map_err(|e| format!("{fs_err}; opening the store '{}': {e}", self.url))?;
            self.store = Some(store);
        }
        let Some(store) = self.store.as_deref() else {
            return Err(fs_err);
        };
        let info = store
            .get_path_info(&sp)
            .map_err(|e| format!("reading '{path}' from the store: {e}"))?
            .ok_or_else(|| format!("{fs_err}, and it is not valid in the store '{}'", self.url))?;
        let tvix_store::castore::Node::File { digest, .. } = info.node else {
            return Err(format!("'{path}' is not a regular file"));
        };
        let mut r = store
            .open_blob(&digest)
            .map_err(|e| format!("reading '{path}' from the store: {e}"))?
            .ok_or_else(|| format!("reading '{path}' from the store: blob {digest} not found"))?;
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut out).map_err(|e| {
            format!(
                "reading '{path}' from the store: {}",
                tvix_store::castore::StoreError::from_io(e)
            )
        })?;
        Ok(out)
    }
}

/// `tvix show-derivation`: `.drv` files as the JSON of `nix derivation show`.
pub(super) fn show_derivation(args: &ShowDerivationArgs) -> i32 {
    let mut drvs: std::collections::BTreeMap<String, tvix_store::Derivation> =
        std::collections::BTreeMap::new();
    let mut todo: Vec<String> = args
        .paths
        .iter()
        .map(|p| {
            let abs = cwd().join(p);
            tvix_eval::lower::canonicalize_path(abs.as_os_str().as_encoded_bytes())
                .display()
                .to_string()
        })
        .collect();
    let url = args
        .store
        .clone()
        .unwrap_or_else(tvix_store::castore::default_store_url);
    let store_dir = match std::env::var("NIX_STORE_DIR") {
        Ok(d) if !d.is_empty() => match tvix_store::StoreDir::new(d) {
            Ok(sd) => sd,
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        },
        _ => tvix_store::StoreDir::default(),
    };
    let mut reader = DrvReader {
        url: &url,
        store_dir,
        store: None,
    };
    while let Some(path) = todo.pop() {
        if drvs.contains_key(&path) {
            continue;
        }
        let bytes = match reader.read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        };
        let drv = match tvix_store::Derivation::from_aterm_bytes(&bytes) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: '{path}' is not a valid derivation: {e}");
                return 1;
            }
        };
        if args.recursive {
            todo.extend(drv.input_derivations.keys().cloned());
        }
        drvs.insert(path, drv);
    }
    let mut out = String::new();
    derivations_json(&drvs, &mut out);
    out.push('\n');
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    0
}

/// The derivation's name, from its `.drv` path: `HASH-NAME.drv`.
fn drv_name(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.strip_suffix(".drv").unwrap_or(base);
    base.split_once('-').map(|(_, n)| n).unwrap_or(base)
}

/// A JSON string as `nix derivation show` writes it (nlohmann::json's escaping).
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A tiny JSON tree, printed with two-space indentation and keys in the given order
/// (callers sort them, as Nix's JSON objects are).
enum Json {
    Str(String),
    List(Vec<Json>),
    Object(Vec<(String, Json)>),
}

fn write_json(out: &mut String, v: &Json, indent: usize) {
    let pad = |out: &mut String, n: usize| out.extend(std::iter::repeat_n(' ', n));
    match v {
        Json::Str(s) => json_string(out, s),
        Json::List(items) if items.is_empty() => out.push_str("[]"),
        Json::Object(items) if items.is_empty() => out.push_str("{}"),
        Json::List(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                pad(out, indent + 2);
                write_json(out, item, indent + 2);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push(']');
        }
        Json::Object(items) => {
            out.push_str("{\n");
            for (i, (k, item)) in items.iter().enumerate() {
                pad(out, indent + 2);
                json_string(out, k);
                out.push_str(": ");
                write_json(out, item, indent + 2);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push('}');
        }
    }
}

fn derivation_json(path: &str, d: &tvix_store::Derivation) -> Json {
    let strs = |it: &mut dyn Iterator<Item = &String>| {
        Json::List(it.map(|s| Json::Str(s.clone())).collect())
    };
    let outputs = d
        .outputs
        .iter()
        .map(|(name, o)| {
            let mut fields = Vec::new();
            if !o.hash.is_empty() {
                fields.push(("hash".to_string(), Json::Str(o.hash.clone())));
            }
            if !o.hash_algo.is_empty() {
                fields.push(("hashAlgo".to_string(), Json::Str(o.hash_algo.clone())));
            }
            if !o.path.is_empty() {
                fields.push(("path".to_string(), Json::Str(o.path.clone())));
            }
            (name.clone(), Json::Object(fields))
        })
        .collect();
    let input_drvs = d
        .input_derivations
        .iter()
        .map(|(p, outs)| {
            (
                p.clone(),
                Json::Object(vec![
                    ("dynamicOutputs".to_string(), Json::Object(Vec::new())),
                    ("outputs".to_string(), strs(&mut outs.iter())),
                ]),
            )
        })
        .collect();
    let env = d
        .env
        .iter()
        .map(|(k, v)| (k.clone(), Json::Str(v.clone())))
        .collect();
    Json::Object(vec![
        ("args".to_string(), strs(&mut d.args.iter())),
        ("builder".to_string(), Json::Str(d.builder.clone())),
        ("env".to_string(), Json::Object(env)),
        ("inputDrvs".to_string(), Json::Object(input_drvs)),
        ("inputSrcs".to_string(), strs(&mut d.input_sources.iter())),
        ("name".to_string(), Json::Str(drv_name(path).to_string())),
        ("outputs".to_string(), Json::Object(outputs)),
        ("system".to_string(), Json::Str(d.system.clone())),
    ])
}

fn derivations_json(
    drvs: &std::collections::BTreeMap<String, tvix_store::Derivation>,
    out: &mut String,
) {
    let root = Json::Object(
        drvs.iter()
            .map(|(p, d)| (p.clone(), derivation_json(p, d)))
            .collect(),
    );
    write_json(out, &root, 0);
}
