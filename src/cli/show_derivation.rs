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
    while let Some(path) = todo.pop() {
        if drvs.contains_key(&path) {
            continue;
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: reading '{path}': {e}");
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
