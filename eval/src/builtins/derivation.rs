//! Derivations and the builtins that make store paths: `derivationStrict` (and the
//! `derivation` function on top of it), `placeholder`, `toFile`, `storePath`, `path`,
//! `filterSource`.
//!
//! The formats and path computations are `tvix_store`'s; this module turns evaluated values
//! into a [`Derivation`] the way Nix does: every attribute becomes an environment variable
//! (or part of `__json` with `__structuredAttrs`), string contexts become the inputs, and
//! output paths follow from the modulo hash of the derivation and of its inputs.

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use tvix_store::{Derivation, FileIngestionMethod, HashAlgo, NixHash, Output, StoreDir};

use super::control::primop;
use super::{fail, make_attrs};
use crate::error::{AddContext, ErrorKind, EvalError, EvalResult};
use crate::eval::{sym, CoerceMode, Evaluator};
use crate::ir::{AttrKey, Expr, ExprRef};
use crate::source::Span;
use crate::symbol::Symbol;
use crate::value::*;

/// A derivation created during evaluation: what derivations that depend on it need.
#[derive(Clone, Debug)]
pub struct KnownDerivation {
    /// Its modulo hash (`hashDerivationModulo`), which goes into the paths of dependents.
    pub modulo: NixHash,
    /// Its output names, its input sources and its input derivations' `.drv` paths: a
    /// `drvPath` in a dependent's context brings in this closure.
    pub outputs: Box<[String]>,
    /// See `outputs`.
    pub input_sources: Box<[String]>,
    /// See `outputs`.
    pub input_derivations: Box<[String]>,
    /// The whole derivation, only with [`crate::eval::EvalConfig::keep_derivations`].
    pub drv: Option<Rc<Derivation>>,
}

impl KnownDerivation {
    /// What is kept of `drv`, whose modulo hash is `modulo`.
    fn new(drv: Derivation, modulo: NixHash, keep_whole: bool) -> KnownDerivation {
        if keep_whole {
            return KnownDerivation {
                modulo,
                outputs: drv.outputs.keys().cloned().collect(),
                input_sources: drv.input_sources.iter().cloned().collect(),
                input_derivations: drv.input_derivations.keys().cloned().collect(),
                drv: Some(Rc::new(drv)),
            };
        }
        // The parts kept are moved out of the derivation, not copied.
        KnownDerivation {
            modulo,
            outputs: drv.outputs.into_keys().collect(),
            input_sources: drv.input_sources.into_iter().collect(),
            input_derivations: drv.input_derivations.into_keys().collect(),
            drv: None,
        }
    }
}

pub(super) const BUILTINS: &[PrimOp] = &[
    primop!("derivationStrict", 1, derivation_strict),
    primop!("derivation", 1, derivation),
    primop!("placeholder", 1, |ev, a, s| {
        let out = ev.force_string(a[0].clone(), s)?;
        Ok(Value::string(tvix_store::derivation::placeholder(
            &out.to_str_lossy(),
        )))
    }),
    primop!("toFile", 2, to_file),
    primop!("storePath", 1, store_path),
    primop!("path", 1, path),
    primop!("filterSource", 2, filter_source),
];

/// The `derivation` function, written in Nix: `derivationStrict` gives the paths; this
/// wrapper gives every output an attribute set of its own (`outPath`, `drvPath`,
/// `outputName`, `type = "derivation"`), shares the user's attributes among them, and lists
/// them in `all`. Its attributes stand at the lines and columns of current Nix's
/// `derivation-internal.nix`, which `--xml --strict` output and error traces show
/// (`derivation_attributes_stand_where_nix_has_them` checks them).
///
/// The builtin does natively what this text does ([`derivation`]); the text is its
/// specification (the tests compare the two), and the file its positions point into.
const DERIVATION_NIX: &str = r#"# The `derivation` builtin, written in Nix.
#
# `derivationStrict` does the work: it checks the attributes, computes the
# derivation (and writes it, in read-write mode) and gives the paths of the
# `.drv` file and of each output. This wrapper makes of that what Nix code
# expects of a derivation:
#
#   - one attribute set per output, each holding the caller's attributes and
#     its own `outPath`, `drvPath`, `outputName` and `type = "derivation"`;
#   - shared by all of them: `all`, the list of the outputs' sets, in the
#     order of `outputs`; `drvAttrs`, the attributes the caller passed; and
#     one attribute per output name, so `drv.dev` is the `dev` output whichever
#     output `drv` is;
#   - the value is the set of the first output.
#
# Everything here is lazy: `drvPath` and `outPath` are thunks over the one
# call of `derivationStrict`, so reading `name` or `type` of a derivation does
# not compute it, and `nix-instantiate --eval --xml` without `--strict` shows
# a derivation as `<repeated />`, having no `drvPath` yet.
#
# Where the attributes stand matters: `nix-instantiate --eval --xml --strict`
# prints the line and column of each attribute, and error traces point at
# them ("while evaluating the attribute 'outPath'"). Current Nix's file has
# its attributes at these very lines and columns, so tvix prints the same;
# keep them where they are (a unit test checks them).
#
# The argument is the caller's set; `outputs` defaults to the one output
# `out`, as in Nix. `strict` is computed once per call, whichever outputs are
# read.
#
drvAttrs@{
  outputs ? [ "out" ],
  ...
}:
let
  strict = derivationStrict drvAttrs;

  # The caller's attributes, one attribute per output, and what all share.
  common =
    drvAttrs // builtins.listToAttrs outputList
    // {
      all = map (o: o.value) outputList;
      inherit drvAttrs;
    };

  outputList = map (outputName: {
    name = outputName;
    value = common // {
      outPath = strict.${outputName};
      drvPath = strict.drvPath;
      type = "derivation";
      inherit outputName;
    };
  }) outputs;
in
(builtins.head outputList).value
"#;

/// Where `<nix/NAME>` resolves when no search path entry provides it: Nix's built-in
/// "corepkgs", files that exist only inside the evaluator.
pub const COREPKGS_PREFIX: &str = "/__corepkgs__/";

/// Our implementation of Nix's built-in `<nix/fetchurl.nix>`: a fixed-output derivation run
/// by the `builtin:fetchurl` builder. The attributes it passes are those Nix's version
/// passes (so the derivation, and its `.drv` path, are the same); the expression is ours.
const FETCHURL_NIX: &str = r#"
{ url
, name ? baseNameOf (toString url)
, hash ? ""
, sha512 ? ""
, sha256 ? ""
, sha1 ? ""
, md5 ? ""
, outputHash ? ""
, outputHashAlgo ? ""
, executable ? false
, unpack ? false
, system ? "builtin"
, impure ? false
}:
let
  # The first hash given: an SRI `hash` carries its own algorithm.
  candidates = builtins.filter (c: c.value != "") [
    { algo = outputHashAlgo; value = outputHash; }
    { algo = ""; value = hash; }
    { algo = "sha512"; value = sha512; }
    { algo = "sha1"; value = sha1; }
    { algo = "md5"; value = md5; }
    { algo = "sha256"; value = sha256; }
  ];
  chosen =
    if candidates == [ ]
    then throw "fetchurl: no hash was given for '${toString url}'; pass 'hash' or 'sha256'"
    else builtins.head candidates;
in
# An impure download has no expected hash (and needs the `impure-derivations` feature).
derivation ((if impure then { __impure = true; } else {
  outputHash = chosen.value;
  outputHashAlgo = chosen.algo;
}) // {
  builder = "builtin:fetchurl";
  inherit name url executable unpack;
  # `system` is accepted for compatibility; the builtin builder runs on any system.
  system = "builtin";
  urls = [ url ];
  # An unpacked archive or an executable is hashed as a NAR; a plain download as a file.
  outputHashMode = if unpack || executable then "recursive" else "flat";
  # The download needs the network settings of the caller and is cheap to do locally.
  impureEnvVars = [ "http_proxy" "https_proxy" "ftp_proxy" "all_proxy" "no_proxy" ];
  preferLocalBuild = true;
})
"#;

/// The source text of a built-in file under [`COREPKGS_PREFIX`] (`fetchurl.nix`), if any.
pub fn corepkg_source(path: &std::path::Path) -> Option<&'static str> {
    let name = path.to_str()?.strip_prefix(COREPKGS_PREFIX)?;
    match name {
        "fetchurl.nix" => Some(FETCHURL_NIX),
        _ => None,
    }
}

/// The `derivation` builtin, done natively: it builds the very values [`DERIVATION_NIX`]
/// would build, with the same thunks left unevaluated, the same attribute positions (in that
/// file, which is registered in the source map for them) and the same trace frames on every
/// error, without evaluating the wrapper's two lambdas, `map`, `listToAttrs`, `head` and
/// three `//` per derivation (a tenth of a package set's evaluation).
///
/// The lazy attributes are thunks of expressions written here in the evaluator's IR, the
/// expressions the wrapper has at those places (`derivationStrict drvAttrs`,
/// `strict.${outputName}`, `strict.drvPath`), so forcing them behaves as forcing the
/// wrapper's does, errors and infinite-recursion reports included. The tests check the
/// native builtin against the wrapper's source, case by case.
fn derivation(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    #[cfg(test)]
    if tests::USE_NIX_WRAPPER.with(|w| w.get()) {
        return derivation_in_nix(ev, a, s);
    }
    let w = match &ev.derivation_wrapper {
        Some(w) => w.clone(),
        None => {
            let w = Rc::new(Wrapper::new(ev));
            ev.derivation_wrapper = Some(w.clone());
            w
        }
    };
    // The argument pattern `drvAttrs@{ outputs ? [ "out" ], ... }`.
    let attrs = ev.force_attrs(a[0].clone(), s)?;
    let drv_attrs = Value::Attrs(attrs.clone());
    let outputs = attrs
        .get(sym::outputs())
        .cloned()
        .unwrap_or_else(|| w.default_outputs.clone());
    w.call(ev, &drv_attrs, &attrs, outputs)
        .context(Some(w.lambda), || "while calling anonymous lambda".into())
}

/// The reference the native `derivation` is tested against: the wrapper evaluated from its
/// Nix source.
#[cfg(test)]
fn derivation_in_nix(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let f = ev.eval_source(
        "«nix-internal»/derivation-internal.nix".to_string(),
        DERIVATION_NIX.to_string(),
        "/".into(),
    )?;
    ev.call(f, a[0].clone(), s)
}

/// What the native `derivation` needs of [`DERIVATION_NIX`], made once per evaluator: the
/// spans of its expressions and attributes, the IR of its lazy attributes, and the names.
pub(crate) struct Wrapper {
    /// The lambda (`drvAttrs@{ ... }: ...`), for the frame of errors in its body.
    lambda: Span,
    /// `builtins.head outputList`.
    head_call: Span,
    /// The `value` attribute of an element of `outputList`: the position of each output's
    /// attribute in the result (`listToAttrs` keeps it).
    value_attr: Span,
    /// `common // { outPath = ...; ... }`.
    value_merge: Span,
    /// `drvAttrs // builtins.listToAttrs outputList // { ... }`.
    common_merge: Span,
    /// `builtins.listToAttrs outputList // { ... }`.
    list_merge: Span,
    /// `builtins.listToAttrs outputList`.
    list_to_attrs_call: Span,
    /// Positions of the attributes the wrapper adds.
    all_pos: Span,
    drv_attrs_pos: Span,
    out_path_pos: Span,
    drv_path_pos: Span,
    type_pos: Span,
    output_name_pos: Span,
    /// `map (outputName: { ... }) outputs`.
    map_call: Span,
    /// `derivationStrict drvAttrs`, in a frame `[drvAttrs]`.
    strict: ExprRef,
    /// `strict.${outputName}`, in a frame `[strict, outputName]`.
    out_path: ExprRef,
    /// `strict.drvPath`, in the same frame.
    drv_path: ExprRef,
    /// `[ "out" ]`, the default of `outputs`.
    default_outputs: Value,
    /// The string `"derivation"`, the value of `type`.
    type_value: Value,
    sym_all: Symbol,
    sym_drv_attrs: Symbol,
    sym_output_name: Symbol,
}

/// The builtin `derivationStrict`, as the wrapper's expression `derivationStrict drvAttrs`
/// calls it.
static DERIVATION_STRICT: PrimOp = primop!("derivationStrict", 1, derivation_strict);

/// Forces a set of one of the derivation's outputs that was not built with the call:
/// `(strict, outputName, common)`, what the wrapper's `common // { ... }` of that output reads.
static OUTPUT_SET: PrimOp = primop!("derivation", 3, |ev, a, _| {
    let w = ev
        .derivation_wrapper
        .clone()
        .expect("made by the call that made this output");
    Ok(w.output_set(ev, &a[0], &a[1], &a[2]))
});

/// `all`: the list of the outputs' sets, each element a thunk of its own (as the wrapper's
/// `map (o: o.value) outputList` makes them), from the list of the outputs' thunks.
static ALL_OUTPUTS: PrimOp = primop!("derivation", 1, |ev, a, s| {
    let cells = ev.force_list(a[0].clone(), s)?;
    Ok(Value::list(
        cells
            .iter()
            .map(|c| Value::Thunk(Thunk::apply(primop_value(&SAME_VALUE), c.clone())))
            .collect(),
    ))
});

/// `e` as it leaves thunks of the wrapper whose expressions are at `spans` (innermost
/// first): an infinite recursion that passes them names them as part of its loop.
fn passing(mut e: Box<EvalError>, spans: &[Span]) -> Box<EvalError> {
    if let Some(r) = e.recursion.as_mut() {
        r.members.extend_from_slice(spans);
    }
    e
}

/// An element of `all`: the output's set (forcing it, as `o.value` does).
static SAME_VALUE: PrimOp = primop!("derivation", 1, |_, a, _| Ok(a[0].clone()));

fn primop_value(op: &'static PrimOp) -> Value {
    Value::PrimOp(Rc::new(PrimOpApp {
        op,
        args: ArgVec::new(),
    }))
}

impl Wrapper {
    fn new(ev: &mut Evaluator) -> Wrapper {
        let file = ev.sources.add(
            "«nix-internal»/derivation-internal.nix".to_string(),
            DERIVATION_NIX.to_string(),
        );
        // `text` from its `skip`-th byte to the end of `until` (searched from there on).
        let span = |text: &str, skip: usize, until: &str| -> Span {
            let start = DERIVATION_NIX
                .find(text)
                .expect("the wrapper's source has the text")
                + skip;
            let end = DERIVATION_NIX[start..]
                .find(until)
                .expect("the wrapper's source has the end")
                + start
                + until.len();
            file.span.subspan(start as u64, end as u64)
        };
        let word = |text: &str, skip: usize, len: usize| -> Span {
            let start = DERIVATION_NIX
                .find(text)
                .expect("the wrapper's source has the text")
                + skip;
            file.span.subspan(start as u64, (start + len) as u64)
        };
        let set_end = "\n    }";
        let strict_call = word("derivationStrict drvAttrs", 0, 25);
        let strict = Rc::new(Expr::Apply {
            func: Rc::new(Expr::Const(primop_value(&DERIVATION_STRICT))),
            arg: Rc::new(Expr::Local {
                depth: 0,
                idx: 0,
                span: Some(word("derivationStrict drvAttrs", 17, 8)),
            }),
            span: strict_call,
        });
        let out_path = Rc::new(Expr::Select {
            expr: Rc::new(Expr::Local {
                depth: 0,
                idx: 0,
                span: Some(word("strict.${outputName}", 0, 6)),
            }),
            path: Box::new([AttrKey::Dynamic(
                Rc::new(Expr::Local {
                    depth: 0,
                    idx: 1,
                    span: Some(word("strict.${outputName}", 9, 10)),
                }),
                word("strict.${outputName}", 7, 13),
            )]),
            default: None,
            span: word("strict.${outputName}", 0, 20),
        });
        let drv_path = Rc::new(Expr::Select {
            expr: Rc::new(Expr::Local {
                depth: 0,
                idx: 0,
                span: Some(word("strict.drvPath", 0, 6)),
            }),
            path: Box::new([AttrKey::Static(sym::drv_path(), LookupHint::default())]),
            default: None,
            span: word("strict.drvPath", 0, 14),
        });
        let map_call = span("map (outputName", 0, "}) outputs");
        Wrapper {
            lambda: span("drvAttrs@{", 0, "(builtins.head outputList).value"),
            head_call: word("builtins.head outputList", 0, 24),
            value_attr: word("value = common", 0, 5),
            value_merge: span("common // {\n      outPath", 0, set_end),
            common_merge: span("drvAttrs // builtins.listToAttrs", 0, set_end),
            list_merge: span("builtins.listToAttrs outputList", 0, set_end),
            list_to_attrs_call: word("builtins.listToAttrs outputList", 0, 31),
            all_pos: word("all = map", 0, 3),
            drv_attrs_pos: word("inherit drvAttrs", 8, 8),
            out_path_pos: word("outPath = strict", 0, 7),
            drv_path_pos: word("drvPath = strict", 0, 7),
            type_pos: word("type = \"derivation\";", 0, 4),
            output_name_pos: word("inherit outputName", 8, 10),
            map_call,
            strict,
            out_path,
            drv_path,
            default_outputs: Value::list(vec![Value::string("out")]),
            type_value: Value::string("derivation"),
            sym_all: Symbol::intern("all"),
            sym_drv_attrs: Symbol::intern("drvAttrs"),
            sym_output_name: Symbol::intern("outputName"),
        }
    }

    /// The body of the wrapper: `(builtins.head outputList).value`.
    fn call(
        &self,
        ev: &mut Evaluator,
        drv_attrs: &Value,
        attrs: &Attrs,
        outputs: Value,
    ) -> EvalResult<Value> {
        // `head` forces `outputList`, that is `map` forces `outputs`; an infinite recursion
        // through `outputs` passes the thunk of `outputList` on its way.
        let outputs = ev
            .force_list(outputs, Some(self.map_call))
            .context(None, || {
                "while evaluating the second argument passed to builtins.map".into()
            })
            .context(Some(self.map_call), || {
                "while calling the 'map' builtin".into()
            })
            .map_err(|e| passing(e, &[self.map_call]))
            .context(None, || {
                "while evaluating the first argument passed to builtins.head".into()
            })
            .context(Some(self.head_call), || {
                "while calling the 'head' builtin".into()
            })?;
        if outputs.is_empty() {
            return fail(
                "'builtins.head' called on an empty list",
                Some(self.head_call),
            )
            .context(Some(self.head_call), || {
                "while calling the 'head' builtin".into()
            });
        }
        // `.value` of the first element forces `common`, which forces the name of every
        // output (`listToAttrs`).
        let names = self
            .output_names(ev, &outputs)
            .context(Some(self.list_to_attrs_call), || {
                "while calling the 'listToAttrs' builtin".into()
            })
            .context(Some(self.list_merge), || {
                "in the left operand of '//'".into()
            })
            .context(Some(self.common_merge), || {
                "in the right operand of '//'".into()
            })
            .context(Some(self.value_merge), || {
                "in the left operand of '//'".into()
            })
            // The thunks of `common` and of the first output's set.
            .map_err(|e| passing(e, &[self.common_merge, self.value_merge]))
            .context(Some(self.value_attr), || {
                "while evaluating the attribute 'value'".into()
            })?;
        let strict_env = Rc::new(Env::with_values(None, [drv_attrs.clone()]));
        let strict = ev.delay(&self.strict, &strict_env);
        // Each element's `value`: the first one is the result, evaluated now; the others
        // are thunks, filled in once `common` (which holds them) exists.
        let cells: Vec<Thunk> = outputs
            .iter()
            .map(|_| Thunk::apply(Value::Null, Value::Null))
            .collect();
        let outputs_set = Attrs::from_unsorted(
            names
                .iter()
                .zip(&cells)
                .map(|(&(name, _), cell)| AttrEntry {
                    name,
                    value: Value::Thunk(cell.clone()),
                    pos: Some(self.value_attr).into(),
                })
                .collect(),
        );
        let all = Thunk::apply(
            primop_value(&ALL_OUTPUTS),
            Value::list(cells.iter().cloned().map(Value::Thunk).collect()),
        );
        let shared = Attrs::from_unsorted(vec![
            AttrEntry {
                name: self.sym_all,
                value: Value::Thunk(all),
                pos: Some(self.all_pos).into(),
            },
            AttrEntry {
                name: self.sym_drv_attrs,
                value: drv_attrs.clone(),
                pos: Some(self.drv_attrs_pos).into(),
            },
        ]);
        let common = Value::attrs(attrs.update(&outputs_set.update(&shared)));
        let mut first = Value::Null;
        for (i, cell) in cells.iter().enumerate() {
            let output_name = names[i].1.clone();
            let state = if i == 0 {
                first = self.output_set(ev, &strict, &output_name, &common);
                ThunkState::Done(first.clone())
            } else {
                let f = Value::PrimOp(Rc::new(PrimOpApp {
                    op: &OUTPUT_SET,
                    args: ArgVec::from_iter([strict.clone()]),
                }));
                ThunkState::Apply2(Box::new((f, output_name, common.clone())))
            };
            drop(cell.replace(state));
        }
        Ok(first)
    }

    /// Forces the name of each output as `listToAttrs` does: each must be a string.
    fn output_names(
        &self,
        ev: &mut Evaluator,
        outputs: &[Value],
    ) -> EvalResult<Vec<(Symbol, Value)>> {
        let s = Some(self.list_to_attrs_call);
        let mut names = Vec::with_capacity(outputs.len());
        for o in outputs {
            ev.check_interrupt(s)?;
            let name = ev.force_string(o.clone(), s)?;
            names.push((Symbol::intern_bytes(name.as_bytes()), Value::String(name)));
        }
        Ok(names)
    }

    /// The set of one output: `common // { outPath; drvPath; type; outputName; }`.
    fn output_set(
        &self,
        ev: &Evaluator,
        strict: &Value,
        output_name: &Value,
        common: &Value,
    ) -> Value {
        let Value::Attrs(common) = common else {
            unreachable!("the common attributes are a set");
        };
        let env = Rc::new(Env::with_values(
            None,
            [strict.clone(), output_name.clone()],
        ));
        let own = Attrs::from_sorted(vec![
            AttrEntry {
                name: sym::drv_path(),
                value: ev.delay(&self.drv_path, &env),
                pos: Some(self.drv_path_pos).into(),
            },
            AttrEntry {
                name: sym::out_path(),
                value: ev.delay(&self.out_path, &env),
                pos: Some(self.out_path_pos).into(),
            },
            AttrEntry {
                name: self.sym_output_name,
                value: output_name.clone(),
                pos: Some(self.output_name_pos).into(),
            },
            AttrEntry {
                name: sym::type_(),
                value: self.type_value.clone(),
                pos: Some(self.type_pos).into(),
            },
        ]);
        Value::attrs(common.update(&own))
    }
}

fn store_dir(ev: &Evaluator, s: Option<Span>) -> EvalResult<StoreDir> {
    StoreDir::new(ev.io.store_dir()).map_err(|e| EvalError::new(ErrorKind::Other(e.to_string()), s))
}

fn other(msg: impl Into<String>, s: Option<Span>) -> Box<EvalError> {
    EvalError::new(ErrorKind::Other(msg.into()), s)
}

/// What `derivationStrict` collects from the attributes before building the derivation.
#[derive(Default)]
struct Collected {
    drv: Derivation,
    context: Context,
    outputs: Option<Vec<String>>,
    output_hash: Option<String>,
    output_hash_algo: Option<String>,
    output_hash_mode: Option<String>,
    content_addressed: bool,
}

fn derivation_strict(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let attrs = ev.force_attrs(a[0].clone(), s)?;
    let name_entry = attrs
        .get_entry(sym::name())
        .ok_or_else(|| other("attribute 'name' missing", s))
        .context(None, || {
            "in the attrset passed as argument to builtins.derivationStrict".into()
        })?;
    let name_pos = name_entry.pos.get().or(s);
    let name = ev
        .force_string(name_entry.value.clone(), name_pos)
        .context(name_pos, || {
            "while evaluating the `name` attribute passed to builtins.derivationStrict".into()
        })?;
    let name = name.to_str_lossy().into_owned();
    if let Err(e) = tvix_store::store_path::validate_name(&name) {
        return Err(other(
            format!("invalid derivation name: {e}. Please pass a different 'name'."),
            name_pos,
        ));
    }
    build(ev, &attrs, &name, s).context(None, || {
        let at = name_pos.map(|p| ev.location_string(p)).unwrap_or_default();
        format!("while evaluating derivation '{name}'\nwhose name attribute is located at {at}")
    })
}

fn build(ev: &mut Evaluator, attrs: &Attrs, name: &str, s: Option<Span>) -> EvalResult<Value> {
    let ignore_nulls = match attrs.get(sym::ignore_nulls()) {
        Some(v) => ev.force_bool(v.clone(), s)?,
        None => false,
    };
    let structured = match attrs.get(sym::structured_attrs()) {
        Some(v) => ev.force_bool(v.clone(), s)?,
        None => false,
    };
    let mut c = Collected::default();
    let mut json_attrs: Vec<AttrEntry> = Vec::new();
    for entry in attrs.iter() {
        let key = entry.name.as_str();
        if key == "__ignoreNulls" || (structured && key == "__structuredAttrs") {
            continue;
        }
        let pos = entry.pos.get().or(s);
        let v = ev.force(entry.value.clone()).context(pos, || {
            format!("while evaluating attribute '{key}' of derivation '{name}'")
        })?;
        if ignore_nulls && matches!(v, Value::Null) {
            continue;
        }
        if structured {
            warn_if_legacy_output_check(ev, key, name, entry.pos.get());
        }
        collect_attr(ev, &mut c, key, v.clone(), structured, pos).context(pos, || {
            format!("while evaluating attribute '{key}' of derivation '{name}'")
        })?;
        if structured && key != "args" {
            json_attrs.push(AttrEntry {
                name: entry.name,
                value: v,
                pos: entry.pos,
            });
        }
    }
    if structured {
        let json = ev.to_json_string(Value::attrs(Attrs::from_sorted(json_attrs)), s)?;
        if let Some(ctx) = json.context() {
            c.context.extend(ctx.iter().cloned());
        }
        c.drv
            .env
            .insert("__json".into(), json.to_str_lossy().into_owned());
    }
    if c.drv.builder.is_empty() && !attrs.contains(sym::builder()) {
        return fail("required attribute 'builder' missing", s);
    }
    if c.drv.system.is_empty() && !attrs.contains(sym::system()) {
        return fail("required attribute 'system' missing", s);
    }
    finish(ev, c, name, s)
}

/// Output checks that only take effect as top-level attributes without
/// `__structuredAttrs`; with it they go under `outputChecks.<output>`.
const LEGACY_OUTPUT_CHECKS: [&str; 6] = [
    "allowedReferences",
    "allowedRequisites",
    "disallowedReferences",
    "disallowedRequisites",
    "maxClosureSize",
    "maxSize",
];

/// Warns, as the reference does, that `key` has no effect in a derivation with
/// `__structuredAttrs`, in the reference's layout: the derivation as context, then the
/// warning with a code frame at the attribute.
fn warn_if_legacy_output_check(ev: &mut Evaluator, key: &str, name: &str, pos: Option<Span>) {
    if !LEGACY_OUTPUT_CHECKS.contains(&key) {
        return;
    }
    let message = format!(
        "'structuredAttrs' disables the effect of the derivation attribute '{key}'; \
         use 'outputChecks.<output>.{key}' instead"
    );
    let inner = match pos {
        Some(p) => crate::diagnostic::render_warning(&message, p, &ev.sources, false),
        None => format!("warning: {message}\n"),
    };
    let text = format!(
        "warning:\n         \u{2026} while evaluating derivation '{name}'\n\n         {}",
        inner.trim_end()
    );
    (ev.diagnostics)(&text);
}

fn collect_attr(
    ev: &mut Evaluator,
    c: &mut Collected,
    key: &str,
    v: Value,
    structured: bool,
    pos: Option<Span>,
) -> EvalResult<()> {
    match key {
        "__contentAddressed" => {
            c.content_addressed = ev.force_bool(v.clone(), pos)?;
        }
        // Current Nix without `--extra-experimental-features impure-derivations`.
        "__impure" if ev.force_bool(v.clone(), pos)? => {
            return fail(
                "experimental Nix feature 'impure-derivations' is disabled; add '--extra-experimental-features impure-derivations' to enable it",
                pos,
            );
        }
        "args" => {
            let list = ev.force_list(v, pos)?;
            for item in list.iter() {
                let arg = ev.coerce_to_string(item.clone(), CoerceMode::DerivationAttr, pos)?;
                add_context(c, &arg);
                c.drv.args.push(arg.to_str_lossy().into_owned());
            }
            return Ok(());
        }
        // With structured attributes `outputs` is a list of strings; otherwise it is coerced
        // to a string (a list's elements joined by spaces) and split at whitespace.
        "outputs" if structured => {
            let list = ev.force_list(v.clone(), pos)?;
            let mut names = Vec::new();
            for item in list.iter() {
                let out = ev.force_string(item.clone(), pos)?;
                names.push(out.to_str_lossy().into_owned());
            }
            c.outputs = Some(output_names(names, pos)?);
        }
        _ => {}
    }
    if structured {
        let text = |ev: &mut Evaluator, v: Value| -> EvalResult<String> {
            Ok(ev.force_string(v, pos)?.to_str_lossy().into_owned())
        };
        match key {
            "builder" => c.drv.builder = text(ev, v)?,
            "system" => c.drv.system = text(ev, v)?,
            "outputHash" => c.output_hash = Some(text(ev, v)?),
            "outputHashAlgo" => c.output_hash_algo = Some(text(ev, v)?),
            "outputHashMode" => {
                let mode = text(ev, v)?;
                check_hash_mode(&mode, pos)?;
                c.output_hash_mode = Some(mode);
            }
            _ => {}
        }
        return Ok(());
    }
    let st = ev.coerce_to_string(v, CoerceMode::DerivationAttr, pos)?;
    add_context(c, &st);
    let text = st.to_str_lossy().into_owned();
    match key {
        "builder" => c.drv.builder = text.clone(),
        "system" => c.drv.system = text.clone(),
        "outputHash" => c.output_hash = Some(text.clone()),
        "outputHashAlgo" => c.output_hash_algo = Some(text.clone()),
        "outputHashMode" => {
            check_hash_mode(&text, pos)?;
            c.output_hash_mode = Some(text.clone());
        }
        "outputs" => {
            let names = text
                .split([' ', '\t', '\n', '\r'])
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            c.outputs = Some(output_names(names, pos)?);
        }
        _ => {}
    }
    c.drv.env.insert(key.to_string(), text);
    Ok(())
}

fn add_context(c: &mut Collected, s: &NixString) {
    if let Some(ctx) = s.context() {
        c.context.extend(ctx.iter().cloned());
    }
}

/// The ingestion methods `outputHashMode` may name.
fn check_hash_mode(mode: &str, s: Option<Span>) -> EvalResult<()> {
    match mode {
        "flat" | "recursive" | "nar" => Ok(()),
        _ => fail(
            format!("invalid value '{mode}' for 'outputHashMode' attribute"),
            s,
        ),
    }
}

/// Checks the output names as Nix does.
fn output_names(names: Vec<String>, s: Option<Span>) -> EvalResult<Vec<String>> {
    if names.is_empty() {
        return fail("derivation cannot have an empty set of outputs", s);
    }
    let mut seen = BTreeSet::new();
    for n in &names {
        if n == "drv"
            || n == "drvPath"
            || n.is_empty()
            || tvix_store::store_path::validate_name(n).is_err()
        {
            return fail(format!("invalid derivation output name '{n}'"), s);
        }
        if !seen.insert(n.clone()) {
            return fail(format!("duplicate derivation output '{n}'"), s);
        }
    }
    Ok(names)
}

fn finish(ev: &mut Evaluator, mut c: Collected, name: &str, s: Option<Span>) -> EvalResult<Value> {
    let sd = store_dir(ev, s)?;
    let outputs = c.outputs.take().unwrap_or_else(|| vec!["out".to_string()]);
    resolve_inputs(ev, &mut c);

    if let Some(hash_text) = c.output_hash.clone() {
        if outputs.len() != 1 || outputs[0] != "out" {
            return fail(
                "multiple outputs are not supported in fixed-output derivations",
                s,
            );
        }
        let method = match c.output_hash_mode.as_deref() {
            Some("recursive") | Some("nar") => FileIngestionMethod::Recursive,
            _ => FileIngestionMethod::Flat,
        };
        let algo = match c.output_hash_algo.as_deref() {
            None | Some("") => None,
            Some(a) => Some(HashAlgo::from_name(a).map_err(|e| other(e.to_string(), s))?),
        };
        let hash = NixHash::parse(&hash_text, algo).map_err(|e| other(e.to_string(), s))?;
        c.drv
            .outputs
            .insert("out".into(), Output::fixed(method, &hash));
    } else {
        for o in &outputs {
            let output = if c.content_addressed {
                let method = match c.output_hash_mode.as_deref() {
                    Some("flat") => "",
                    _ => "r:",
                };
                let algo = c
                    .output_hash_algo
                    .clone()
                    .unwrap_or_else(|| "sha256".into());
                Output {
                    path: String::new(),
                    hash_algo: format!("{method}{algo}"),
                    hash: String::new(),
                }
            } else {
                Output::default()
            };
            c.drv.outputs.insert(o.clone(), output);
        }
    }

    if c.content_addressed {
        for o in &outputs {
            c.drv
                .env
                .insert(o.clone(), tvix_store::derivation::placeholder(o));
        }
    } else {
        let known = &ev.derivations;
        c.drv
            .calculate_output_paths(&sd, name, |p| known.get(p).map(|k| k.modulo.clone()))
            .map_err(|e| other(e.to_string(), s))?;
    }
    // The `.drv` path and the modulo hash (for dependents' paths) from one ATerm.
    let made = {
        let known = &ev.derivations;
        c.drv
            .drv_path_and_modulo(&sd, name, |p| known.get(p).map(|k| k.modulo.clone()))
            .map_err(|e| other(e.to_string(), s))?
    };
    let drv_path = sd.display(&made.drv_path);
    if ev.io.writes_to_store() {
        let references: Vec<String> = c
            .drv
            .input_sources
            .iter()
            .chain(c.drv.input_derivations.keys())
            .cloned()
            .collect();
        let written = ev
            .io
            .add_text(&format!("{name}.drv"), &made.aterm, &references)
            .map_err(|e| other(e.to_string(), s))?;
        if written != drv_path {
            return fail(
                format!("internal error: '{drv_path}' was written as '{written}'"),
                s,
            );
        }
    }
    let modulo = made.modulo;
    let mut result = vec![(
        sym::drv_path(),
        Value::String(Rc::new(NixString::with_context(
            drv_path.clone().into_bytes(),
            Context::from([ContextElem::AllOutputs(drv_path.clone())]),
        ))),
    )];
    for (out_name, out) in &c.drv.outputs {
        let path = if c.content_addressed {
            downstream_placeholder(&drv_path, out_name)
        } else {
            out.path.clone()
        };
        result.push((
            Symbol::intern(out_name),
            Value::String(Rc::new(NixString::with_context(
                path.into_bytes(),
                Context::from([ContextElem::Output(drv_path.clone(), out_name.clone())]),
            ))),
        ));
    }
    let known = KnownDerivation::new(c.drv, modulo, ev.config.keep_derivations);
    ev.derivations.insert(drv_path, known);
    Ok(make_attrs(result))
}

/// The placeholder for an output of a content-addressed derivation whose path is not known
/// until it is built: `/` + nix32 of sha256 of `nix-upstream-output:<drv hash part>:<name>-<out>`.
fn downstream_placeholder(drv_path: &str, output: &str) -> String {
    let base = drv_path.rsplit('/').next().unwrap_or(drv_path);
    let (hash_part, rest) = base.split_once('-').unwrap_or((base, ""));
    let drv_name = rest.strip_suffix(".drv").unwrap_or(rest);
    let out_suffix = if output == "out" {
        String::new()
    } else {
        format!("-{output}")
    };
    let text = format!("nix-upstream-output:{hash_part}:{drv_name}{out_suffix}");
    format!("/{}", NixHash::sha256(text.as_bytes()).to_nix32())
}

/// Turns the collected string context into input sources and input derivations.
fn resolve_inputs(ev: &Evaluator, c: &mut Collected) {
    for elem in std::mem::take(&mut c.context) {
        match elem {
            ContextElem::Plain(p) => {
                c.drv.input_sources.insert(p);
            }
            ContextElem::Output(drv, out) => {
                c.drv.input_derivations.entry(drv).or_default().insert(out);
            }
            ContextElem::AllOutputs(drv) => {
                // `drvPath`: the derivation and everything it refers to, with all outputs.
                let mut stack = vec![drv];
                let mut seen = BTreeSet::new();
                while let Some(d) = stack.pop() {
                    if !seen.insert(d.clone()) {
                        continue;
                    }
                    c.drv.input_sources.insert(d.clone());
                    if let Some(k) = ev.derivations.get(&d) {
                        let outs = c.drv.input_derivations.entry(d.clone()).or_default();
                        outs.extend(k.outputs.iter().cloned());
                        c.drv.input_sources.extend(k.input_sources.iter().cloned());
                        stack.extend(k.input_derivations.iter().cloned());
                    }
                }
            }
        }
    }
}

fn to_file(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let name = ev
        .force_string(a[0].clone(), s)?
        .to_str_lossy()
        .into_owned();
    let contents = ev.coerce_to_string(a[1].clone(), CoerceMode::Interpolation, s)?;
    let mut refs = Vec::new();
    for elem in contents.context().into_iter().flatten() {
        match elem {
            ContextElem::Plain(p) => refs.push(p.clone()),
            _ => {
                return fail(
                    format!(
                        "files created by builtins.toFile may not reference derivations, but {name} references {}",
                        match elem {
                            ContextElem::Output(d, _) | ContextElem::AllOutputs(d) => d.as_str(),
                            ContextElem::Plain(p) => p.as_str(),
                        }
                    ),
                    s,
                )
            }
        }
    }
    let path = ev
        .io
        .add_text(&name, contents.as_bytes(), &refs)
        .map_err(|e| other(e.to_string(), s))?;
    Ok(Value::String(Rc::new(NixString::with_context(
        path.clone().into_bytes(),
        Context::from([ContextElem::Plain(path)]),
    ))))
}

fn store_path(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let st = ev.coerce_to_string(a[0].clone(), CoerceMode::PathSegment, s)?;
    let text = st.to_str_lossy().into_owned();
    let sd = store_dir(ev, s)?;
    let (p, _) = sd
        .split_path(&text)
        .map_err(|_| other(format!("path '{text}' is not in the Nix store"), s))?;
    let path = sd.display(&p);
    Ok(Value::String(Rc::new(NixString::with_context(
        path.clone().into_bytes(),
        Context::from([ContextElem::Plain(path)]),
    ))))
}

/// `builtins.path { path; name ? baseNameOf path; filter ? null; recursive ? true; sha256 ? null; }`
fn path(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let args = ev.force_attrs(a[0].clone(), s)?;
    let mut src = None;
    let mut name = None;
    let mut filter = None;
    let mut recursive = true;
    let mut expected = None;
    for entry in args.iter() {
        match entry.name.as_str() {
            "path" => src = Some(super::paths::real_path(ev, entry.value.clone(), s)?),
            "name" => {
                name = Some(
                    ev.force_string(entry.value.clone(), s)?
                        .to_str_lossy()
                        .into_owned(),
                )
            }
            "filter" => filter = Some(ev.force_function(entry.value.clone(), s)?),
            "recursive" => recursive = ev.force_bool(entry.value.clone(), s)?,
            "sha256" => {
                expected = Some(
                    ev.force_string(entry.value.clone(), s)?
                        .to_str_lossy()
                        .into_owned(),
                )
            }
            other_name => {
                return fail(
                    format!("unsupported argument '{other_name}' to 'builtins.path'"),
                    s,
                )
            }
        }
    }
    let Some(src) = src else {
        return fail(
            "missing required 'path' attribute in the first argument to builtins.path",
            s,
        );
    };
    let name = name.unwrap_or_else(|| {
        src.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    add_path(ev, &src, &name, filter, recursive, expected, s)
}

fn filter_source(ev: &mut Evaluator, a: Args, s: Option<Span>) -> EvalResult<Value> {
    let filter = ev.force_function(a[0].clone(), s)?;
    let src = super::paths::real_path(ev, a[1].clone(), s)?;
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    add_path(ev, &src, &name, Some(filter), true, None, s)
}

/// Adds `src` to the store as `builtins.path` does (only computing its path when the IO has
/// no store), running the Nix `filter` for every object below the root.
fn add_path(
    ev: &mut Evaluator,
    src: &std::path::Path,
    name: &str,
    filter: Option<Value>,
    recursive: bool,
    expected: Option<String>,
    s: Option<Span>,
) -> EvalResult<Value> {
    let method = if recursive {
        FileIngestionMethod::Recursive
    } else {
        FileIngestionMethod::Flat
    };
    let io = ev.io.clone();
    let added = match filter {
        None => io.add_path(src, name, method, None),
        Some(f) => {
            // The filter is Nix code; its first error stops the add and is what we report.
            let mut failure: Option<Box<EvalError>> = None;
            let mut keep = |p: &std::path::Path, ft: crate::io::FileType| {
                let path_str = Value::string(p.as_os_str().as_bytes().to_vec());
                ev.call2(&f, path_str, Value::string(ft.as_str()), s)
                    .and_then(|v| ev.force_bool(v, s))
                    .map_err(|e| {
                        let msg = e.kind.to_string();
                        failure = Some(e);
                        crate::io::EvalIOError::Filter(msg)
                    })
            };
            let r = io.add_path(src, name, method, Some(&mut keep));
            if let Some(e) = failure {
                return Err(e);
            }
            r
        }
    }
    .map_err(|e| other(e.to_string(), s))?;
    if let Some(want) = expected {
        let want =
            NixHash::parse(&want, Some(HashAlgo::Sha256)).map_err(|e| other(e.to_string(), s))?;
        if want != added.content_hash {
            return fail(
                format!(
                    "hash mismatch for '{}': specified {}, got {}",
                    src.display(),
                    want.to_sri(),
                    added.content_hash.to_sri()
                ),
                s,
            );
        }
    }
    let path = added.store_path;
    Ok(Value::String(Rc::new(NixString::with_context(
        path.clone().into_bytes(),
        Context::from([ContextElem::Plain(path)]),
    ))))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use crate::diagnostic::{render_error, RenderOptions};
    use crate::eval::{EvalConfig, Evaluator};
    use crate::value::print::print_value;

    thread_local! {
        /// Makes `derivation` evaluate its Nix source, the reference for the native one.
        pub(super) static USE_NIX_WRAPPER: Cell<bool> = const { Cell::new(false) };
    }

    /// What `src` shows in every way a derivation can be looked at: printed after forcing
    /// deeply, as XML with and without `--strict`, as JSON; errors rendered with their
    /// trace. With `in_nix`, `derivation` is the wrapper evaluated from its source.
    fn observe(src: &str, in_nix: bool) -> Vec<String> {
        USE_NIX_WRAPPER.with(|w| w.set(in_nix));
        let mut shown = Vec::new();
        for mode in ["deep", "xml", "xml-strict", "json"] {
            let mut ev = Evaluator::new(Box::new(crate::io::StdIO::new()), EvalConfig::default());
            ev.diagnostics = Box::new(|_| {});
            let r = ev
                .eval_source("/test.nix".into(), src.into(), "/".into())
                .and_then(|v| match mode {
                    "deep" => ev.force_deep(v).map(|v| print_value(&v)),
                    "xml" => ev.to_xml(v, false, true),
                    "xml-strict" => ev.to_xml(v, true, true),
                    _ => ev
                        .to_json_string(v, None)
                        .map(|s| s.to_str_lossy().into_owned()),
                });
            shown.push(match r {
                Ok(text) => format!("{mode}: {text}"),
                Err(e) => format!(
                    "{mode}: {}",
                    render_error(
                        &e,
                        &ev.sources,
                        RenderOptions {
                            show_trace: true,
                            color: false,
                        },
                    )
                ),
            });
        }
        USE_NIX_WRAPPER.with(|w| w.set(false));
        shown
    }

    /// The native `derivation` against its Nix source: the same values, the same unevaluated
    /// parts, positions and errors with the same traces (infinite recursions included).
    #[test]
    fn native_derivation_is_the_nix_wrapper() {
        let drv = r#"name = "x"; builder = "b"; system = "s";"#;
        let two = format!(r#"{drv} outputs = [ "out" "dev" ];"#);
        let cases = [
            format!("derivation {{ {drv} }}"),
            format!("derivation {{ {two} }}"),
            r#"(derivation { name = "x"; system = "s"; }).drvPath"#.to_string(),
            "derivation 1".to_string(),
            r#"derivation (throw "arg")"#.to_string(),
            format!(r#"(derivation {{ {drv} outputs = [ "out" 1 ]; }}).out"#),
            format!(r#""${{derivation {{ {drv} args = [ (throw "boom") ]; }}}}""#),
            format!("derivation {{ {drv} outputs = 1; }}"),
            format!("derivation {{ {drv} outputs = [ ]; }}"),
            format!(r#"derivation {{ {drv} outputs = [ (throw "x") ]; }}"#),
            format!(r#"derivation {{ {drv} outputs = throw "x"; }}"#),
            format!(r#"derivation {{ {drv} outputs = [ "out" (throw "y") ]; }}"#),
            format!(r#"(derivation {{ {drv} outputs = [ "out dev" ]; }}).outPath"#),
            format!(r#"derivation {{ {drv} outputs = [ "out" "out" ]; }}"#),
            format!(r#"derivation {{ {drv} outputs = [ "dev" "out" "all" ]; }}"#),
            format!(r#"derivation {{ {drv} outputs = [ "drvPath" ]; }}"#),
            format!(r#"derivation {{ {drv} type = "t"; outPath = 1; all = 2; drvAttrs = 3; }}"#),
            format!("let d = derivation {{ {two} }}; in builtins.seq d.drvPath d"),
            format!("let d = derivation {{ {two} }}; in builtins.seq d.drvPath d.dev"),
            format!("let d = derivation {{ {two} }}; in builtins.seq d.dev.outPath d"),
            format!("let d = derivation {{ {two} }}; in builtins.seq d.all d"),
            format!("let d = derivation {{ {two} }}; in builtins.seq (builtins.elemAt d.all 1) d"),
            format!("let d = derivation {{ {two} }}; in [ d.out.dev.out.outputName (builtins.elemAt d.all 1 == d.dev) ]"),
            format!("let a = {{ {drv} }}; d = derivation a; in builtins.seq d.drvPath [ d (d.drvAttrs == a) ]"),
            format!("let d = derivation {{ {drv} }}; in map (n: builtins.unsafeGetAttrPos n d) (builtins.attrNames d)"),
            format!("let d = derivation {{ {drv} foo = d.drvPath; }}; in d.drvPath"),
            format!(r#"let d = derivation {{ {drv} foo = d.outPath; }}; in "${{d}}""#),
            format!("let d = derivation {{ {drv} outputs = d.outputs; }}; in d"),
            format!("let d = derivation {{ {drv} outputs = [ d.name ]; }}; in d.out"),
            r#"let d = derivation { name = "x"; builder = "b"; }; in [ (builtins.tryEval d.drvPath).success d.outPath ]"#.to_string(),
        ];
        for case in &cases {
            assert_eq!(observe(case, false), observe(case, true), "{case}");
        }
    }

    fn eval(src: &str) -> Result<String, String> {
        let mut ev = Evaluator::new(Box::new(crate::io::StdIO::new()), EvalConfig::default());
        let v = ev
            .eval_source("«test»".into(), src.into(), std::env::temp_dir())
            .and_then(|v| ev.force_deep(v))
            .map_err(|e| e.kind.to_string())?;
        Ok(print_value(&v))
    }

    #[test]
    fn placeholder_and_store_path() {
        assert_eq!(
            crate::testing::eval("builtins.placeholder \"out\""),
            Ok(r#""/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9""#.to_string())
        );
        assert_eq!(
            crate::testing::eval("builtins.getContext (builtins.storePath \"/nix/store/00000000000000000000000000000000-x/sub\")"),
            Ok(r#"{ "/nix/store/00000000000000000000000000000000-x" = { path = true; }; }"#.to_string())
        );
        assert!(crate::testing::eval("builtins.storePath \"/tmp/x\"")
            .unwrap_err()
            .contains("is not in the Nix store"));
    }

    #[test]
    fn filter_source_applies_the_filter() {
        let dir = std::env::temp_dir().join(format!("tvix-filtersource-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keep"), "k").unwrap();
        std::fs::write(dir.join("drop"), "d").unwrap();
        let d = dir.display();
        let all = crate::testing::eval(&format!("builtins.filterSource (p: t: true) {d}")).unwrap();
        let some = crate::testing::eval(&format!(
            "builtins.filterSource (p: t: baseNameOf p != \"drop\") {d}"
        ))
        .unwrap();
        assert_ne!(all, some, "filtering out a file changes the store path");
        let explicit = crate::testing::eval(&format!(
            "builtins.path {{ path = {d}; filter = p: t: baseNameOf p != \"drop\"; }}"
        ))
        .unwrap();
        assert_eq!(
            some, explicit,
            "filterSource is builtins.path with a filter"
        );
        assert_eq!(
            crate::testing::eval(&format!("builtins.filterSource (p: t: 1) {d}")),
            Err("expected a Boolean but found an integer: 1".to_string())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nix_search_path_falls_back_to_corepkgs() {
        assert_eq!(
            eval("<nix/fetchurl.nix>").unwrap(),
            "/__corepkgs__/fetchurl.nix"
        );
        assert_eq!(
            eval("builtins.isFunction (import <nix/fetchurl.nix>)").unwrap(),
            "true"
        );
        let err = eval("import <nix/nope.nix>").unwrap_err();
        assert!(err.contains("/__corepkgs__/nope.nix"), "{err}");
    }

    #[test]
    fn fetchurl_paths_match_nix() {
        // Reference values from nix-instantiate 2.8.
        let drv = |args: &str| {
            eval(&format!(
                "let d = import <nix/fetchurl.nix> {args}; in [ d.drvPath d.outPath ]"
            ))
        };
        assert_eq!(
            drv(r#"{ url = "https://example.com/x"; sha256 = "0000000000000000000000000000000000000000000000000000"; }"#).unwrap(),
            r#"[ "/nix/store/k88izc8hl5kpqjj90rra9cqsy93s7zwn-x.drv" "/nix/store/yplc6kklcg6k8aln037jq8jxq5v92wln-x" ]"#
        );
        assert_eq!(
            drv(r#"{ url = "https://example.com/x"; sha1 = "0000000000000000000000000000000000000000"; executable = true; }"#).unwrap(),
            r#"[ "/nix/store/5fkb16b6bhf5fj7cljmq0nm2rqr4gs5h-x.drv" "/nix/store/6iwp0kxy9xjyngx9jmknn6vjsg4yf455-x" ]"#
        );
        assert_eq!(
            drv(r#"{ url = "https://example.com/x"; hash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; }"#).unwrap(),
            r#"[ "/nix/store/0cjc9qraz99bsh6jp8xv9dhjbd3lg6in-x.drv" "/nix/store/9zicq1m4wy4bv50xa4l1jk4kpyy41kih-x" ]"#
        );
    }

    #[test]
    fn fetchurl_hash_precedence_and_impure() {
        // With several legacy hashes: sha512, then sha1, then md5, then sha256.
        let algo = |args: &str| {
            eval(&format!(
                "(import <nix/fetchurl.nix> ({{ url = \"https://e.com/x\"; }} // {args})).outputHashAlgo"
            ))
        };
        let h1 = "\"0000000000000000000000000000000000000000\"";
        let h256 = "\"0000000000000000000000000000000000000000000000000000\"";
        assert_eq!(
            algo(&format!("{{ sha1 = {h1}; sha256 = {h256}; }}")).unwrap(),
            "\"sha1\""
        );
        assert_eq!(
            algo(&format!("{{ sha256 = {h256}; }}")).unwrap(),
            "\"sha256\""
        );
        let err = eval(
            r#"(import <nix/fetchurl.nix> { url = "https://e.com/x"; impure = true; }).drvPath"#,
        )
        .unwrap_err();
        assert!(err.contains("impure-derivations"), "{err}");
    }

    #[test]
    fn fetchurl_errors() {
        let err = eval(r#"(import <nix/fetchurl.nix> { url = "https://e.com/x"; }).drvPath"#)
            .unwrap_err();
        assert!(err.contains("no hash was given"), "{err}");
        let err = eval(r#"(import <nix/fetchurl.nix> { }).drvPath"#).unwrap_err();
        assert!(err.contains("url"), "{err}");
    }

    #[test]
    fn attribute_errors_as_current_nix() {
        let strict = |attrs: &str| eval(&format!("builtins.derivationStrict {{ {attrs} }}"));
        assert_eq!(strict("").unwrap_err(), "attribute 'name' missing");
        assert_eq!(
            strict(r#"name = "foo"; builder = 1; outputHashMode = 15;"#).unwrap_err(),
            "invalid value '15' for 'outputHashMode' attribute"
        );
        assert_eq!(
            strict(r#"name = "foo"; builder = 1; system = 1; outputs = { };"#).unwrap_err(),
            "cannot coerce a set to a string: { }"
        );
        assert_eq!(
            strict(r#"name = "foo"; builder = 1; system = 1; outputs = "drvPath";"#).unwrap_err(),
            "invalid derivation output name 'drvPath'"
        );
        assert_eq!(
            strict(r#"name = "foo"; builder = 1; system = 1; outputs = "";"#).unwrap_err(),
            "derivation cannot have an empty set of outputs"
        );
        assert_eq!(
            strict(r#"name = "foo"; builder = 1; system = 1; __impure = "true";"#).unwrap_err(),
            "expected a Boolean but found a string: \"true\""
        );
        assert_eq!(
            strict(r#"name = "foo"; outputs = "out"; __structuredAttrs = true;"#).unwrap_err(),
            "expected a list but found a string: \"out\""
        );
    }

    #[test]
    fn outputs_as_a_string_are_split_at_whitespace() {
        let a = eval(
            r#"builtins.attrNames (builtins.derivationStrict { name = "x"; builder = "b"; system = "s"; outputs = " out\tdev\n"; })"#,
        )
        .unwrap();
        assert_eq!(a, r#"[ "dev" "drvPath" "out" ]"#);
        // Same derivation as with the list.
        let l = eval(r#"(derivation { name = "x"; builder = "b"; system = "s"; outputs = [ "out" "dev" ]; }).drvPath"#).unwrap();
        let s = eval(r#"(derivation { name = "x"; builder = "b"; system = "s"; outputs = [ "out dev" ]; }).drvPath"#).unwrap();
        assert_eq!(l, s);
    }

    #[test]
    fn derivation_paths_match_nix() {
        assert_eq!(
            eval(r#"(derivation { name = "x"; builder = "/bin/sh"; system = "x86_64-linux"; }).drvPath"#).unwrap(),
            r#""/nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y-x.drv""#
        );
        let err = eval(r#"derivation { name = "x"; system = "s"; }"#).unwrap_err();
        assert!(err.contains("builder"), "{err}");
    }
}
