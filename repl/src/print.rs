//! Printing results the way `nix repl` does: values forced down to a depth (1 by default, all
//! the way for `:p`), deeper sets and lists elided as `{ ... }` / `[ ... ]`, functions as
//! `«lambda @ file:line:col»`, derivations as `«derivation /nix/store/...drv»`, values seen
//! before as `«repeated»`, and attributes that fail as `«error: message»`.

use std::collections::HashSet;
use std::fmt::Write;
use std::rc::Rc;

use tvix_eval::value::print::{escape_string, format_float, write_attr_name};
use tvix_eval::{ErrorKind, EvalResult, Evaluator, Value};

use crate::style::Style;

/// How deep to print and whether errors inside the value end the print.
#[derive(Clone, Copy)]
pub struct PrintOptions {
    /// Sets and lists nested deeper than this are elided.
    pub depth: usize,
    /// At most this many attributes or elements of one set or list are shown; the rest are
    /// counted as `«N more»`.
    pub width: usize,
    /// `:p`: an error anywhere is the result's error (as with `--strict`).
    pub strict: bool,
    /// Colours.
    pub style: Style,
}

/// Renders `v` (forcing what is printed). The value itself failing is an error; with
/// `strict` unset, failures below it print in place.
pub fn print(ev: &mut Evaluator, v: Value, opts: &PrintOptions) -> EvalResult<String> {
    let mut p = Printer {
        out: String::new(),
        seen: HashSet::new(),
        opts,
    };
    let v = ev.force(v)?;
    p.value(ev, &v, 0)?;
    Ok(p.out)
}

struct Printer<'a> {
    out: String,
    seen: HashSet<usize>,
    opts: &'a PrintOptions,
}

/// Errors that must end the whole print rather than show in place: the user's Ctrl-C.
fn must_propagate(kind: &ErrorKind) -> bool {
    matches!(kind, ErrorKind::Interrupted)
}

impl Printer<'_> {
    fn inner(&mut self, ev: &mut Evaluator, v: &Value, depth: usize) -> EvalResult<()> {
        match ev.force(v.clone()) {
            Ok(v) => self.value(ev, &v, depth),
            Err(e) if !self.opts.strict && !must_propagate(&e.kind) => {
                let st = self.opts.style;
                let msg = e.to_string();
                write!(self.out, "{}«error: {}»{}", st.error, msg, st.reset).expect("string");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn value(&mut self, ev: &mut Evaluator, v: &Value, depth: usize) -> EvalResult<()> {
        let st = self.opts.style;
        match v {
            Value::Null => write!(self.out, "{}null{}", st.number, st.reset),
            Value::Bool(b) => write!(self.out, "{}{}{}", st.number, b.get(), st.reset),
            Value::Int(i) => write!(self.out, "{}{i}{}", st.number, st.reset),
            Value::Float(f) => write!(
                self.out,
                "{}{}{}",
                st.number,
                format_float(f.get()),
                st.reset
            ),
            Value::String(s) => {
                let mut quoted = String::new();
                escape_string(s.as_bytes(), &mut quoted);
                write!(self.out, "{}{quoted}{}", st.string, st.reset)
            }
            Value::Path(p) => write!(self.out, "{}{}{}", st.path, p.display(), st.reset),
            Value::Lambda(c) => {
                let loc = ev.sources.location(c.lambda.span);
                write!(
                    self.out,
                    "{}«lambda @ {}:{}:{}»{}",
                    st.function, loc.file, loc.line, loc.column, st.reset
                )
            }
            Value::PrimOp(app) => {
                let what = if app.args.is_empty() {
                    "primop"
                } else {
                    "primop-app"
                };
                write!(
                    self.out,
                    "{}«{what} {}»{}",
                    st.function, app.op.name, st.reset
                )
            }
            Value::Attrs(a) => return self.attrs(ev, v, a, depth),
            Value::List(l) => return self.list(ev, l, depth),
            Value::Thunk(_) => return self.inner(ev, v, depth),
        }
        .expect("write to a string");
        Ok(())
    }

    fn attrs(
        &mut self,
        ev: &mut Evaluator,
        v: &Value,
        a: &Rc<tvix_eval::value::Attrs>,
        depth: usize,
    ) -> EvalResult<()> {
        let st = self.opts.style;
        if let Some(drv) = self.derivation_path(ev, v)? {
            write!(self.out, "{}«derivation {drv}»{}", st.special, st.reset).expect("string");
            return Ok(());
        }
        if a.is_empty() {
            self.out.push_str("{ }");
            return Ok(());
        }
        if !self.seen.insert(Rc::as_ptr(a) as usize) {
            write!(self.out, "{}«repeated»{}", st.special, st.reset).expect("string");
            return Ok(());
        }
        if depth >= self.opts.depth {
            self.out.push_str("{ ... }");
            return Ok(());
        }
        self.out.push('{');
        for e in a.iter().take(self.opts.width) {
            self.out.push(' ');
            write_attr_name(e.name.as_str(), &mut self.out);
            self.out.push_str(" = ");
            self.inner(ev, &e.value, depth + 1)?;
            self.out.push(';');
        }
        self.more(a.len());
        self.out.push_str(" }");
        Ok(())
    }

    fn list(&mut self, ev: &mut Evaluator, l: &Rc<Vec<Value>>, depth: usize) -> EvalResult<()> {
        let st = self.opts.style;
        if l.is_empty() {
            self.out.push_str("[ ]");
            return Ok(());
        }
        if !self.seen.insert(Rc::as_ptr(l) as usize) {
            write!(self.out, "{}«repeated»{}", st.special, st.reset).expect("string");
            return Ok(());
        }
        if depth >= self.opts.depth {
            self.out.push_str("[ ... ]");
            return Ok(());
        }
        self.out.push('[');
        for item in l.iter().take(self.opts.width) {
            self.out.push(' ');
            self.inner(ev, item, depth + 1)?;
        }
        self.more(l.len());
        self.out.push_str(" ]");
        Ok(())
    }

    /// `«N more»` for what `width` left out of a set or list of `len` items.
    fn more(&mut self, len: usize) {
        if len > self.opts.width {
            let st = self.opts.style;
            let n = len - self.opts.width;
            write!(self.out, " {}«{n} more»{}", st.special, st.reset).expect("string");
        }
    }

    /// The `.drv` path of a derivation (a set with `type = "derivation"`), forcing `type` and
    /// `drvPath`; `None` for other sets. A `drvPath` that fails prints as `???` as in Nix.
    fn derivation_path(&mut self, ev: &mut Evaluator, v: &Value) -> EvalResult<Option<String>> {
        let Value::Attrs(a) = v else { return Ok(None) };
        let Some(t) = a.get(tvix_eval::symbol::Symbol::intern("type")).cloned() else {
            return Ok(None);
        };
        let is_drv = match ev.force(t) {
            Ok(Value::String(s)) => s.as_bytes() == b"derivation",
            Ok(_) => false,
            Err(e) if must_propagate(&e.kind) => return Err(e),
            Err(_) => false,
        };
        if !is_drv {
            return Ok(None);
        }
        let path = match a.get(tvix_eval::symbol::Symbol::intern("drvPath")).cloned() {
            Some(p) => match ev.force(p) {
                Ok(Value::String(s)) => s.to_str_lossy().into_owned(),
                Err(e) if must_propagate(&e.kind) => return Err(e),
                _ => "???".to_string(),
            },
            None => "???".to_string(),
        };
        Ok(Some(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tvix_eval::io::StdIO;
    use tvix_eval::EvalConfig;

    fn show(src: &str, depth: usize, strict: bool) -> Result<String, String> {
        show_width(src, depth, usize::MAX, strict)
    }

    fn show_width(src: &str, depth: usize, width: usize, strict: bool) -> Result<String, String> {
        let mut ev = Evaluator::new(Box::new(StdIO::new()), EvalConfig::default());
        let v = ev
            .eval_source("«string»".into(), src.into(), "/".into())
            .map_err(|e| e.to_string())?;
        let opts = PrintOptions {
            depth,
            width,
            strict,
            style: Style::new(false),
        };
        print(&mut ev, v, &opts).map_err(|e| e.to_string())
    }

    #[test]
    fn depth_one_elides_nested_values() {
        assert_eq!(
            show("{ a = 1; b = { c = 2; }; l = [ 1 ]; s = \"x\"; }", 1, false).unwrap(),
            "{ a = 1; b = { ... }; l = [ ... ]; s = \"x\"; }"
        );
        assert_eq!(
            show("[ 1 [ 2 ] { } ]", 1, false).unwrap(),
            "[ 1 [ ... ] { } ]"
        );
    }

    #[test]
    fn width_limits_items() {
        assert_eq!(
            show_width("{ a = 1; b = 2; c = 3; }", 1, 2, false).unwrap(),
            "{ a = 1; b = 2; «1 more» }"
        );
        assert_eq!(
            show_width("[ 1 2 3 ]", 1, 0, false).unwrap(),
            "[ «3 more» ]"
        );
    }

    #[test]
    fn deep_print_and_repeated() {
        assert_eq!(
            show(
                "let b = { c = 2; }; in { inherit b; x = b; }",
                usize::MAX,
                false
            )
            .unwrap(),
            "{ b = { c = 2; }; x = «repeated»; }"
        );
    }

    #[test]
    fn functions_and_errors() {
        assert_eq!(
            show("{ f = x: x; e = throw \"boom\"; m = map; }", 1, false).unwrap(),
            "{ e = «error: boom»; f = «lambda @ «string»:1:7»; m = «primop map»; }"
        );
        assert!(show("{ e = throw \"boom\"; }", usize::MAX, true)
            .unwrap_err()
            .contains("boom"));
        assert!(show("throw \"top\"", 1, false).unwrap_err().contains("top"));
    }

    #[test]
    fn derivations_print_their_drv_path() {
        let out = show(
            "derivation { name = \"x\"; builder = \"/bin/sh\"; system = \"x86_64-linux\"; }",
            1,
            false,
        )
        .unwrap();
        assert!(out.starts_with("«derivation /nix/store/"), "{out}");
        assert!(out.ends_with("-x.drv»"), "{out}");
    }
}
