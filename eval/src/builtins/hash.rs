//! Hashing builtins (`hashString`, `hashFile`, `convertHash`).
//!
//! The hashes, their encodings (base-16, nix32, base-64, SRI) and their parsing come from
//! the store crate ([`tvix_store::hash`], [`tvix_store::nixbase32`]); this module adds what
//! is particular to the language: argument handling, Nix's evaluator error messages and the
//! deprecation warning for the `base32` format name.

use std::rc::Rc;

use tvix_store::hash::HashEncoding;
use tvix_store::{HashAlgo, HashError, NixHash};

use super::control::primop;
use super::fail;
use crate::error::{AddContext, EvalResult};
use crate::eval::Evaluator;
use crate::source::Span;
use crate::symbol::Symbol;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("hashString", 2, hash_string),
    primop!("hashFile", 2, hash_file),
    primop!("convertHash", 1, convert_hash),
];

/// Nix's message for an algorithm name it does not know.
fn unknown_algo_message(name: &str) -> String {
    format!(
        "unknown hash algorithm '{name}', expect 'blake3', 'md5', 'sha1', 'sha256', or 'sha512'"
    )
}

/// Parses an algorithm name given as a builtin argument, failing with Nix's messages.
/// `blake3` is a name Nix knows but only behind an experimental feature.
fn parse_algo(name: &str, span: Option<Span>) -> EvalResult<HashAlgo> {
    match HashAlgo::from_name(name) {
        Ok(a) => Ok(a),
        Err(_) if name == "blake3" => fail(
            "experimental Nix feature 'blake3-hashes' is disabled; add '--extra-experimental-features blake3-hashes' to enable it",
            span,
        ),
        Err(_) => fail(unknown_algo_message(name), span),
    }
}

/// The evaluator's message for a hash that does not parse.
fn parse_error_message(e: HashError) -> String {
    match e {
        HashError::UnknownAlgo(name) => unknown_algo_message(&name),
        HashError::MissingAlgo(hash) => format!(
            "hash '{hash}' does not include a type, nor is the type otherwise known from context"
        ),
        // The store's messages for the rest are Nix's.
        other => other.to_string(),
    }
}

fn hash_algo_arg(
    ev: &mut Evaluator,
    v: Value,
    builtin: &str,
    span: Option<Span>,
) -> EvalResult<HashAlgo> {
    let name = ev.force_string(v, span).context(span, || {
        format!("while evaluating the first argument passed to builtins.{builtin}")
    })?;
    parse_algo(&name.to_str_lossy(), span)
}

fn hash_string(ev: &mut Evaluator, a: Args, span: Option<Span>) -> EvalResult<Value> {
    let algo = hash_algo_arg(ev, a[0].clone(), "hashString", span)?;
    let s = ev.force_string(a[1].clone(), span).context(span, || {
        "while evaluating the second argument passed to builtins.hashString".to_string()
    })?;
    Ok(Value::string(
        NixHash::hash_bytes(algo, s.as_bytes()).to_base16(),
    ))
}

fn hash_file(ev: &mut Evaluator, a: Args, span: Option<Span>) -> EvalResult<Value> {
    let algo = hash_algo_arg(ev, a[0].clone(), "hashFile", span)?;
    let path = super::paths::real_path(ev, a[1].clone(), span).context(span, || {
        "while evaluating the second argument passed to builtins.hashFile".to_string()
    })?;
    let data = match ev.io.read_file(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail(format!("path '{}' does not exist", path.display()), span)
        }
        Err(e) => return fail(format!("reading file '{}': {e}", path.display()), span),
    };
    Ok(Value::string(NixHash::hash_bytes(algo, &data).to_base16()))
}

fn convert_hash(ev: &mut Evaluator, a: Args, span: Option<Span>) -> EvalResult<Value> {
    let args = ev.force_attrs(a[0].clone(), span).context(span, || {
        "while evaluating the first argument passed to builtins.convertHash".to_string()
    })?;
    let get =
        |ev: &mut Evaluator, name: &str| -> EvalResult<Option<Rc<NixString>>> {
            match args.get(Symbol::intern(name)) {
            Some(v) => Ok(Some(ev.force_string(v.clone(), span).context(span, || {
                format!("while evaluating the attribute '{name}' passed to builtins.convertHash")
            })?)),
            None => Ok(None),
        }
        };
    let Some(hash) = get(ev, "hash")? else {
        return Err(ev.missing_attr(Symbol::intern("hash"), &args, span));
    };
    let algo = match get(ev, "hashAlgo")? {
        Some(name) => Some(parse_algo(&name.to_str_lossy(), span)?),
        None => None,
    };
    let Some(format) = get(ev, "toHashFormat")? else {
        return Err(ev.missing_attr(Symbol::intern("toHashFormat"), &args, span));
    };
    let format = match &*format.to_str_lossy() {
        "base32" => {
            (ev.diagnostics)(
                "warning: \"base32\" is a deprecated alias for hash format \"nix32\".",
            );
            HashEncoding::Nix32
        }
        other => match HashEncoding::from_name(other) {
            Some(enc) => enc,
            None => {
                return fail(
                    format!(
                    "unknown hash format '{other}', expect 'base16', 'base32', 'base64', or 'sri'"
                ),
                    span,
                )
            }
        },
    };
    match NixHash::parse(&hash.to_str_lossy(), algo) {
        Ok(h) => Ok(Value::string(h.encode(format))),
        Err(e) => fail(parse_error_message(e), span),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::eval;

    #[test]
    fn hash_string_algorithms() {
        assert_eq!(
            eval(r#"builtins.hashString "md5" "text 1""#),
            Ok(r#""6c69ee7f211c640419d5366cc076ae46""#.into())
        );
        assert_eq!(
            eval(r#"builtins.hashString "sha1" """#),
            Ok(r#""da39a3ee5e6b4b0d3255bfef95601890afd80709""#.into())
        );
        assert_eq!(
            eval(r#"builtins.hashString "sha256" "text 2""#),
            Ok(r#""ad0387b3bd8652f730ca46d25f9c170af0fd589f42e7f23f5a9e6412d97d7e56""#.into())
        );
        assert!(eval(r#"builtins.hashString "sha512" """#)
            .unwrap()
            .starts_with("\"cf83e1357eefb8bd"));
    }

    #[test]
    fn hash_string_errors() {
        assert_eq!(
            eval(r#"builtins.hashString "foo" "content""#),
            Err("unknown hash algorithm 'foo', expect 'blake3', 'md5', 'sha1', 'sha256', or 'sha512'".into())
        );
        assert_eq!(
            eval(r#"builtins.hashString 1 { }"#),
            Err("expected a string but found an integer: 1".into())
        );
        assert_eq!(
            eval(r#"builtins.hashString "sha256" { }"#),
            Err("expected a string but found a set: { }".into())
        );
    }

    #[test]
    fn hash_file_hashes_contents_and_reports_missing_files() {
        let dir = std::env::temp_dir().join(format!("tvix-hash-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("data");
        std::fs::write(&file, "foo\n").unwrap();
        assert_eq!(
            eval(&format!(r#"builtins.hashFile "md5" {}"#, file.display())),
            Ok(r#""d3b07384d113edec49eaa6238ad5ff00""#.into())
        );
        let missing = dir.join("missing");
        assert_eq!(
            eval(&format!(
                r#"builtins.hashFile "md5" "{}""#,
                missing.display()
            )),
            Err(format!("path '{}' does not exist", missing.display()))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn convert_hash_formats() {
        let b16 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let cases = [
            ("base16", b16),
            (
                "nix32",
                "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73",
            ),
            ("base64", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
            ("sri", "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
        ];
        for (fmt, want) in cases {
            assert_eq!(
                eval(&format!(
                    r#"builtins.convertHash {{ hash = "{b16}"; hashAlgo = "sha256"; toHashFormat = "{fmt}"; }}"#
                )),
                Ok(format!("\"{want}\""))
            );
            // And back: every form parses, with the algorithm from a prefix.
            let input = if fmt == "sri" {
                want.to_string()
            } else {
                format!("sha256:{want}")
            };
            assert_eq!(
                eval(&format!(
                    r#"builtins.convertHash {{ hash = "{input}"; toHashFormat = "base16"; }}"#
                )),
                Ok(format!("\"{b16}\""))
            );
        }
    }

    #[test]
    fn convert_hash_errors() {
        assert_eq!(
            eval(r#"builtins.convertHash { hash = "abc"; toHashFormat = "base16"; }"#),
            Err(
                "hash 'abc' does not include a type, nor is the type otherwise known from context"
                    .into()
            )
        );
        assert_eq!(
            eval(
                r#"builtins.convertHash { hash = "abc"; hashAlgo = "sha256"; toHashFormat = "base16"; }"#
            ),
            Err("hash 'abc' has wrong length for hash algorithm 'sha256'".into())
        );
        assert_eq!(
            eval(
                r#"builtins.convertHash { hash = "d41d8cd98f00b204e9800998ecf8427e"; hashAlgo = "md5"; toHashFormat = "hex"; }"#
            ),
            Err("unknown hash format 'hex', expect 'base16', 'base32', 'base64', or 'sri'".into())
        );
        assert_eq!(
            eval(
                r#"builtins.convertHash { hash = "md5:d41d8cd98f00b204e9800998ecf8427e"; hashAlgo = "sha1"; toHashFormat = "sri"; }"#
            ),
            Err("hash 'md5:d41d8cd98f00b204e9800998ecf8427e' should have type 'sha1'".into())
        );
        assert_eq!(
            eval(
                r#"builtins.convertHash { hash = "md5:z41d8cd98f00b204e9800998ecf8427e"; toHashFormat = "sri"; }"#
            ),
            Err("invalid base-16 hash 'z41d8cd98f00b204e9800998ecf8427e'".into())
        );
    }

    #[test]
    fn convert_hash_parse_errors_name_the_digest() {
        let convert = |hash: &str, algo: &str| {
            eval(&format!(
                r#"builtins.convertHash {{ hash = "{hash}"; {algo} toHashFormat = "base16"; }}"#
            ))
        };
        assert_eq!(
            convert("md5:e41d8cd98f00b204e9800998ec", ""),
            Err("invalid base-32 hash 'e41d8cd98f00b204e9800998ec'".into())
        );
        assert_eq!(convert("md5-abc", ""), Err("invalid SRI hash 'abc'".into()));
        assert_eq!(
            convert("md5:abc", ""),
            Err("hash 'abc' has wrong length for hash algorithm 'md5'".into())
        );
        assert_eq!(
            convert("foo-abc", r#"hashAlgo = "md5";"#),
            Err("unknown hash algorithm 'foo', expect 'blake3', 'md5', 'sha1', 'sha256', or 'sha512'".into())
        );
        assert_eq!(
            convert("md5:d41d8cd98f00b204e9800998ecf8427e", r#"hashAlgo = "blake3";"#),
            Err("experimental Nix feature 'blake3-hashes' is disabled; add '--extra-experimental-features blake3-hashes' to enable it".into())
        );
        assert_eq!(
            eval(r#"builtins.convertHash { hash = "md5:d41d8cd98f00b204e9800998ecf8427e"; }"#),
            Err("attribute 'toHashFormat' missing".into())
        );
    }

    #[test]
    fn convert_hash_base32_alias_warns() {
        use std::cell::RefCell;

        use crate::eval::EvalConfig;

        let warnings = Rc::new(RefCell::new(Vec::<String>::new()));
        let mut ev = Evaluator::new(Box::new(crate::io::StdIO::new()), EvalConfig::default());
        let sink = warnings.clone();
        ev.diagnostics = Box::new(move |m| sink.borrow_mut().push(m.to_string()));
        let v = ev
            .eval_source(
                "«test»".into(),
                r#"builtins.convertHash { hash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; toHashFormat = "base32"; }"#.into(),
                std::env::current_dir().unwrap(),
            )
            .and_then(|v| ev.force_deep(v))
            .map_err(|e| e.kind.to_string());
        assert_eq!(
            v.map(|v| crate::value::print::print_value(&v)),
            Ok(r#""0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73""#.into())
        );
        assert_eq!(
            *warnings.borrow(),
            vec![
                "warning: \"base32\" is a deprecated alias for hash format \"nix32\".".to_string()
            ]
        );
    }
}
