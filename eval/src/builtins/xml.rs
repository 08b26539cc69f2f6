//! XML: `builtins.toXML` and [`Evaluator::to_xml`] for `--xml`, in the format CppNix writes
//! (an `<expr>` document, two-space indentation, attributes of an element sorted by name).
//!
//! `builtins.toXML` and `--xml --strict` force values as they are written. Plain `--xml`
//! forces only the value itself, as Nix does: what Nix would still hold as a thunk inside it
//! shows as `<unevaluated />` (see [`XmlWriter::shown`]). Functions show their argument
//! pattern, builtins show as `<unevaluated />`, and a derivation shows as
//! `<derivation drvPath=… outPath=…>` with its attributes the first time its `drvPath` is
//! seen and `<repeated />` afterwards (or when its `drvPath` is not evaluated yet).
//!
//! Positions (`line`, `column`, `path`) are current Nix's: a file's path, none for `-E`
//! text (Nix 2.8 printed the whole expression as the path), and Nix's internal files under
//! their own names (`/derivation-internal.nix`, `/fetchurl.nix`).

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use super::control::primop;
use crate::error::EvalResult;
use crate::eval::{sym, Evaluator};
use crate::ir::Param;
use crate::source::Span;
use crate::value::print::format_float;
use crate::value::*;

pub(super) const BUILTINS: &[PrimOp] = &[primop!("toXML", 1, |ev, a, s| {
    let (bytes, context) = ev.to_xml_bytes(a[0].clone(), true, false, s)?;
    Ok(Value::String(Rc::new(NixString::with_context(
        bytes, context,
    ))))
})];

impl Evaluator {
    /// Renders a value as XML, as `nix-instantiate --eval --xml` prints it: `strict` forces
    /// everything (`--strict`), otherwise only `v` itself; `locations` adds
    /// `line`/`column`/`path` of attributes and functions (off with `--no-location`).
    pub fn to_xml(&mut self, v: Value, strict: bool, locations: bool) -> EvalResult<String> {
        let (bytes, _) = self.to_xml_bytes(v, strict, locations, None)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Renders a value as XML, giving the bytes and the merged context of the strings in it.
    pub fn to_xml_bytes(
        &mut self,
        v: Value,
        strict: bool,
        locations: bool,
        span: Option<Span>,
    ) -> EvalResult<(Vec<u8>, Context)> {
        let mut w = XmlWriter {
            out: Vec::new(),
            context: Context::new(),
            drvs_seen: HashSet::new(),
            strict,
            locations,
            span,
        };
        w.out
            .extend_from_slice(b"<?xml version='1.0' encoding='utf-8'?>\n<expr>\n");
        // The value itself is always evaluated (`nix-instantiate --eval` evaluates it).
        let v = self.force(v)?;
        w.value(self, v, 1)?;
        w.out.extend_from_slice(b"</expr>\n");
        Ok((w.out, w.context))
    }
}

struct XmlWriter {
    out: Vec<u8>,
    context: Context,
    drvs_seen: HashSet<Vec<u8>>,
    strict: bool,
    locations: bool,
    span: Option<Span>,
}

type XmlAttrs = Vec<(&'static str, Vec<u8>)>;

impl XmlWriter {
    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.extend_from_slice(b"  ");
        }
    }

    fn write_attrs(&mut self, mut attrs: XmlAttrs) {
        attrs.sort_by(|a, b| a.0.cmp(b.0));
        for (name, value) in attrs {
            self.out.push(b' ');
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(b"=\"");
            for &b in &value {
                match b {
                    b'"' => self.out.extend_from_slice(b"&quot;"),
                    b'<' => self.out.extend_from_slice(b"&lt;"),
                    b'>' => self.out.extend_from_slice(b"&gt;"),
                    b'&' => self.out.extend_from_slice(b"&amp;"),
                    b'\n' => self.out.extend_from_slice(b"&#xA;"),
                    b => self.out.push(b),
                }
            }
            self.out.push(b'"');
        }
    }

    fn empty(&mut self, depth: usize, name: &str, attrs: XmlAttrs) {
        self.indent(depth);
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        self.write_attrs(attrs);
        self.out.extend_from_slice(b" />\n");
    }

    fn open(&mut self, depth: usize, name: &str, attrs: XmlAttrs) {
        self.indent(depth);
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        self.write_attrs(attrs);
        self.out.extend_from_slice(b">\n");
    }

    fn close(&mut self, depth: usize, name: &str) {
        self.indent(depth);
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b">\n");
    }

    fn position(&self, ev: &Evaluator, span: Option<Span>, attrs: &mut XmlAttrs) {
        let (true, Some(span)) = (self.locations, span) else {
            return;
        };
        let loc = ev.sources.location(span);
        if let Some(path) = xml_path(&loc.file) {
            attrs.push(("path", path.as_bytes().to_vec()));
        }
        attrs.push(("line", loc.line.to_string().into_bytes()));
        attrs.push(("column", loc.column.to_string().into_bytes()));
    }

    /// One level deeper: counted against the call depth like any nesting, so a structure
    /// too deep to serialise is a clean error (as in the reference), never a crash.
    fn value(&mut self, ev: &mut Evaluator, v: Value, depth: usize) -> EvalResult<()> {
        ev.nested(self.span, |ev| self.value_inner(ev, v, depth))
    }

    /// The value to write for `v`, or `None` for `<unevaluated />`. `--strict` forces it.
    /// Without, what Nix would hold as an unevaluated thunk is not forced: a thunk tvix has
    /// not evaluated, and a function, list or set not behind an evaluated thunk, which Nix
    /// makes a thunk of where tvix builds it at once (`{ f = x: x; }`, `[ [ ] ]`). Scalars
    /// not behind a thunk are Nix's constants (`1`, `"s"`, `true`) and show. Where tvix
    /// computes ahead of Nix (`1 + 2` of two integers, selecting from a set already built)
    /// the value shows where Nix shows `<unevaluated />`; a set, list or function Nix had
    /// already evaluated through a variable shows as `<unevaluated />` here.
    fn shown(&self, ev: &mut Evaluator, v: Value) -> EvalResult<Option<Value>> {
        if self.strict {
            return ev.force(v).map(Some);
        }
        Ok(match v {
            Value::Thunk(t) => t.value(),
            Value::Lambda(_) | Value::List(_) | Value::Attrs(_) => None,
            v => Some(v),
        })
    }

    fn value_inner(&mut self, ev: &mut Evaluator, v: Value, depth: usize) -> EvalResult<()> {
        match v {
            Value::Null => self.empty(depth, "null", vec![]),
            Value::Bool(b) => self.empty(
                depth,
                "bool",
                vec![(
                    "value",
                    if b.get() {
                        b"true".to_vec()
                    } else {
                        b"false".to_vec()
                    },
                )],
            ),
            Value::Int(i) => self.empty(depth, "int", vec![("value", i.to_string().into_bytes())]),
            Value::Float(f) => self.empty(
                depth,
                "float",
                vec![("value", format_float(f.get()).into_bytes())],
            ),
            Value::String(s) => {
                if let Some(c) = s.context() {
                    self.context.extend(c.iter().cloned());
                }
                self.empty(depth, "string", vec![("value", s.as_bytes().to_vec())]);
            }
            Value::Path(p) => self.empty(
                depth,
                "path",
                vec![("value", p.as_os_str().as_bytes().to_vec())],
            ),
            Value::List(l) => {
                self.open(depth, "list", vec![]);
                for item in l.iter() {
                    self.child(ev, item.clone(), depth + 1)?;
                }
                self.close(depth, "list");
            }
            Value::Attrs(a) => {
                if is_derivation(ev, &a)? {
                    let mut attrs: XmlAttrs = Vec::new();
                    let mut drv_path = None;
                    for (name, key) in [("drvPath", sym::drv_path()), ("outPath", sym::out_path())]
                    {
                        if let Some(v) = a.get(key).cloned() {
                            if let Some(Value::String(s)) = self.shown(ev, v)? {
                                if name == "drvPath" {
                                    drv_path = Some(s.as_bytes().to_vec());
                                }
                                attrs.push((name, s.as_bytes().to_vec()));
                            }
                        }
                    }
                    self.open(depth, "derivation", attrs);
                    let first = match drv_path {
                        Some(p) if !p.is_empty() => self.drvs_seen.insert(p),
                        _ => false,
                    };
                    if first {
                        self.attr_entries(ev, &a, depth + 1)?;
                    } else {
                        self.empty(depth + 1, "repeated", vec![]);
                    }
                    self.close(depth, "derivation");
                } else {
                    self.open(depth, "attrs", vec![]);
                    self.attr_entries(ev, &a, depth + 1)?;
                    self.close(depth, "attrs");
                }
            }
            Value::Lambda(c) => {
                let mut attrs = Vec::new();
                self.position(ev, Some(c.lambda.span), &mut attrs);
                self.open(depth, "function", attrs);
                match &c.lambda.param {
                    Param::Ident(name) => {
                        self.empty(
                            depth + 1,
                            "varpat",
                            vec![("name", name.as_bytes().to_vec())],
                        );
                    }
                    Param::Pattern(p) => {
                        let mut attrs: XmlAttrs = Vec::new();
                        if let Some(name) = p.bind {
                            attrs.push(("name", name.as_bytes().to_vec()));
                        }
                        if p.ellipsis {
                            attrs.push(("ellipsis", b"1".to_vec()));
                        }
                        self.open(depth + 1, "attrspat", attrs);
                        let mut names: Vec<&str> =
                            p.formals.iter().map(|f| f.name.as_str()).collect();
                        names.sort_unstable();
                        for name in names {
                            self.empty(depth + 2, "attr", vec![("name", name.as_bytes().to_vec())]);
                        }
                        self.close(depth + 1, "attrspat");
                    }
                }
                self.close(depth, "function");
            }
            Value::PrimOp(_) | Value::Thunk(_) => self.empty(depth, "unevaluated", vec![]),
        }
        Ok(())
    }

    /// A value inside the one written: forced with `--strict`, else shown as it stands.
    fn child(&mut self, ev: &mut Evaluator, v: Value, depth: usize) -> EvalResult<()> {
        match self.shown(ev, v)? {
            Some(v) => self.value(ev, v, depth),
            None => {
                self.empty(depth, "unevaluated", vec![]);
                Ok(())
            }
        }
    }

    fn attr_entries(&mut self, ev: &mut Evaluator, a: &Attrs, depth: usize) -> EvalResult<()> {
        for entry in a.iter() {
            let mut attrs: XmlAttrs = vec![("name", entry.name.as_bytes().to_vec())];
            self.position(ev, entry.pos.get(), &mut attrs);
            self.open(depth, "attr", attrs);
            self.child(ev, entry.value.clone(), depth + 1)?;
            self.close(depth, "attr");
        }
        Ok(())
    }
}

/// The `path` attribute of a position in `file`, as current Nix writes it: a file's path;
/// for Nix's internal files their path inside Nix (`/derivation-internal.nix`); none for
/// text without a file (`-E`, `«string»`).
fn xml_path(file: &str) -> Option<&str> {
    if let Some(internal) = file.strip_prefix("«nix-internal»") {
        return Some(internal);
    }
    if file.starts_with(super::derivation::COREPKGS_PREFIX) {
        // `<nix/fetchurl.nix>`: Nix's corepkgs are `/fetchurl.nix` in their own tree (the
        // prefix ends in `/`, which stays).
        return Some(&file[super::derivation::COREPKGS_PREFIX.len() - 1..]);
    }
    file.starts_with('/').then_some(file)
}

/// Whether a set is a derivation: its `type` attribute (forced) is `"derivation"`.
fn is_derivation(ev: &mut Evaluator, a: &Attrs) -> EvalResult<bool> {
    match a.get(sym::type_()).cloned() {
        Some(t) => Ok(matches!(ev.force(t)?, Value::String(s) if s.as_bytes() == b"derivation")),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::EvalConfig;

    fn new_ev() -> Evaluator {
        Evaluator::new(Box::new(crate::io::StdIO::new()), EvalConfig::default())
    }

    use crate::testing::eval;

    fn xml(src: &str, locations: bool) -> Result<String, String> {
        xml_with(src, true, locations)
    }

    fn xml_with(src: &str, strict: bool, locations: bool) -> Result<String, String> {
        let mut ev = new_ev();
        let v = ev
            .eval_source("/test.nix".into(), src.into(), "/".into())
            .map_err(|e| e.kind.to_string())?;
        ev.to_xml(v, strict, locations)
            .map_err(|e| e.kind.to_string())
    }

    const HEAD: &str = "<?xml version='1.0' encoding='utf-8'?>\n<expr>\n";

    #[test]
    fn to_xml_builtin() {
        assert_eq!(
            eval(r#"builtins.toXML { a = "s"; }"#),
            Ok(r#""<?xml version='1.0' encoding='utf-8'?>\n<expr>\n  <attrs>\n    <attr name=\"a\">\n      <string value=\"s\" />\n    </attr>\n  </attrs>\n</expr>\n""#.into())
        );
        assert_eq!(eval(r#"builtins.toXML (throw "no")"#), Err("no".into()));
    }

    #[test]
    fn scalars_and_escapes() {
        assert_eq!(
            xml(r#"[ null true 1 1.5 567.890 "a<b>&\"'\n\t" /x/y builtins.map [ ] { } ]"#, false),
            Ok(format!(
                "{HEAD}  <list>\n    <null />\n    <bool value=\"true\" />\n    <int value=\"1\" />\n    <float value=\"1.5\" />\n    <float value=\"567.89\" />\n    <string value=\"a&lt;b&gt;&amp;&quot;'&#xA;\t\" />\n    <path value=\"/x/y\" />\n    <unevaluated />\n    <list>\n    </list>\n    <attrs>\n    </attrs>\n  </list>\n</expr>\n"
            ))
        );
    }

    #[test]
    fn functions_show_patterns() {
        assert_eq!(
            xml("[ (x: x) ({ z, x ? 1, ... }@args: x) ({ b, a }: a) ]", false),
            Ok(format!(
                "{HEAD}  <list>\n    <function>\n      <varpat name=\"x\" />\n    </function>\n    <function>\n      <attrspat ellipsis=\"1\" name=\"args\">\n        <attr name=\"x\" />\n        <attr name=\"z\" />\n      </attrspat>\n    </function>\n    <function>\n      <attrspat>\n        <attr name=\"a\" />\n        <attr name=\"b\" />\n      </attrspat>\n    </function>\n  </list>\n</expr>\n"
            ))
        );
    }

    #[test]
    fn locations() {
        assert_eq!(
            xml("{ a = 1;\n  f = x: x; }", true),
            Ok(format!(
                "{HEAD}  <attrs>\n    <attr column=\"3\" line=\"1\" name=\"a\" path=\"/test.nix\">\n      <int value=\"1\" />\n    </attr>\n    <attr column=\"3\" line=\"2\" name=\"f\" path=\"/test.nix\">\n      <function column=\"7\" line=\"2\" path=\"/test.nix\">\n        <varpat name=\"x\" />\n      </function>\n    </attr>\n  </attrs>\n</expr>\n"
            ))
        );
    }

    #[test]
    fn derivations_print_once() {
        let src = r#"let d = { type = "derivation"; drvPath = "/nix/store/x.drv"; outPath = "/nix/store/x"; name = "x"; }; in [ d d { type = "derivation"; } ]"#;
        assert_eq!(
            xml(src, false),
            Ok(format!(
                "{HEAD}  <list>\n    <derivation drvPath=\"/nix/store/x.drv\" outPath=\"/nix/store/x\">\n      <attr name=\"drvPath\">\n        <string value=\"/nix/store/x.drv\" />\n      </attr>\n      <attr name=\"name\">\n        <string value=\"x\" />\n      </attr>\n      <attr name=\"outPath\">\n        <string value=\"/nix/store/x\" />\n      </attr>\n      <attr name=\"type\">\n        <string value=\"derivation\" />\n      </attr>\n    </derivation>\n    <derivation drvPath=\"/nix/store/x.drv\" outPath=\"/nix/store/x\">\n      <repeated />\n    </derivation>\n    <derivation>\n      <repeated />\n    </derivation>\n  </list>\n</expr>\n"
            ))
        );
    }

    #[test]
    fn without_strict_what_nix_has_not_evaluated_shows_unevaluated() {
        let src =
            r#"{ a = { b = 1; }; c = builtins.toString 1; f = x: x; i = 1; s = "x"; t = true; }"#;
        let un = "<unevaluated />";
        assert_eq!(
            xml_with(src, false, false),
            Ok(format!(
                "{HEAD}  <attrs>\n    <attr name=\"a\">\n      {un}\n    </attr>\n    <attr name=\"c\">\n      {un}\n    </attr>\n    <attr name=\"f\">\n      {un}\n    </attr>\n    <attr name=\"i\">\n      <int value=\"1\" />\n    </attr>\n    <attr name=\"s\">\n      <string value=\"x\" />\n    </attr>\n    <attr name=\"t\">\n      <bool value=\"true\" />\n    </attr>\n  </attrs>\n</expr>\n"
            ))
        );
        // What was evaluated shows: the element forced by `seq`.
        let l = "let l = [ (builtins.toString 1) ]; in";
        assert_eq!(
            xml_with(
                &format!("{l} builtins.seq (builtins.head l) l"),
                false,
                false
            ),
            Ok(format!(
                "{HEAD}  <list>\n    <string value=\"1\" />\n  </list>\n</expr>\n"
            ))
        );
        assert_eq!(
            xml_with(&format!("{l} l"), false, false),
            Ok(format!("{HEAD}  <list>\n    {un}\n  </list>\n</expr>\n"))
        );
    }

    /// The attributes of a derivation stand where current Nix's `derivation-internal.nix`
    /// has them (`--xml --strict` shows them); without `--strict` its `drvPath` is not
    /// evaluated, so it shows as `<repeated />`, as in Nix.
    #[test]
    fn derivation_attributes_stand_where_nix_has_them() {
        let src = r#"derivation { name = "x"; builder = "/bin/sh"; system = "x86_64-linux"; }"#;
        let got = xml_with(src, true, true).unwrap();
        for (name, line, column) in [
            ("all", 42, 7),
            ("drvAttrs", 43, 15),
            ("drvPath", 50, 7),
            ("out", 48, 5),
            ("outPath", 49, 7),
            ("outputName", 52, 15),
            ("type", 51, 7),
        ] {
            let want = format!(
                "<attr column=\"{column}\" line=\"{line}\" name=\"{name}\" path=\"/derivation-internal.nix\">"
            );
            assert!(got.contains(&want), "{want} in {got}");
        }
        assert!(
            got.contains("name=\"builder\" path=\"/test.nix\">"),
            "{got}"
        );
        assert_eq!(
            xml_with(src, false, true),
            Ok(format!(
                "{HEAD}  <derivation>\n    <repeated />\n  </derivation>\n</expr>\n"
            ))
        );
    }
}
