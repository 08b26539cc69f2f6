//! Documentation of every builtin, for `tvix repl`'s `:doc` and the language server's hover
//! and completion.
//!
//! The text is our own summary of what each builtin does in this evaluator; where tvix
//! differs from Nix (no debugger behind `break`, no verbose tracing) the entry says so. The
//! table is sorted by name; a unit test checks that it matches the builtins the evaluator
//! registers, with one argument name per argument.

/// The documentation of one builtin (a function or a constant of the `builtins` set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinDoc {
    /// The name, as in `builtins.NAME`.
    pub name: &'static str,
    /// The names of its arguments in order; empty for constants such as `currentSystem`.
    pub args: &'static [&'static str],
    /// A paragraph in Markdown, ending with an example in a ```` ```nix ```` block.
    pub doc: &'static str,
}

/// The documentation of the builtin `name`. Besides the plain name (`map`), the forms used in
/// source are accepted: `builtins.map` and the `__map` alias.
pub fn builtin_doc(name: &str) -> Option<&'static BuiltinDoc> {
    let plain = name
        .strip_prefix("builtins.")
        .or_else(|| name.strip_prefix("__"))
        .unwrap_or(name);
    DOCS.binary_search_by(|d| d.name.cmp(plain))
        .ok()
        .map(|i| &DOCS[i])
}

/// Every documented builtin, sorted by name.
pub fn all_builtin_docs() -> &'static [BuiltinDoc] {
    DOCS
}

/// Shorthand for a table entry.
const fn doc(name: &'static str, args: &'static [&'static str], doc: &'static str) -> BuiltinDoc {
    BuiltinDoc { name, args, doc }
}

/// The table, sorted by name (byte order) so [`builtin_doc`] can search it.
static DOCS: &[BuiltinDoc] = &[
    doc(
        "abort",
        &["message"],
        r#"Stops the whole evaluation with `message` as the error. Unlike `throw`, the error cannot be caught by `builtins.tryEval`; use it for states that mean the expression itself is broken.

```nix
if builtins.pathExists ./config.nix then import ./config.nix else abort "config.nix is missing"
```"#,
    ),
    doc(
        "add",
        &["a", "b"],
        r#"The sum of two numbers, the function behind the `+` operator on numbers. The result is an integer when both are integers (overflow is an error) and a float as soon as one of them is a float.

```nix
builtins.add 2 3.5   # 5.5
```"#,
    ),
    doc(
        "addDrvOutputDependencies",
        &["s"],
        r#"Turns the string context of `s`, which must be exactly one plain reference to a `.drv` file, into a dependency on all outputs of that derivation. It undoes `unsafeDiscardOutputDependency`: a derivation using the result needs the outputs built, not just the `.drv` file.

```nix
builtins.addDrvOutputDependencies (builtins.unsafeDiscardOutputDependency drv.drvPath)
```"#,
    ),
    doc(
        "addErrorContext",
        &["context", "value"],
        r#"Returns `value` unchanged, but if evaluating it fails, the string `context` is added to the error's trace (shown with `--show-trace`). Library code uses it to say what it was doing when something deep inside failed.

```nix
builtins.addErrorContext "while checking the options" (builtins.head [ ])
```"#,
    ),
    doc(
        "all",
        &["pred", "list"],
        r#"`true` if `pred` returns `true` for every element of `list` (and for an empty list). It stops at the first element for which `pred` is `false`; elements are passed to `pred` unforced.

```nix
builtins.all (x: x > 0) [ 1 2 3 ]   # true
```"#,
    ),
    doc(
        "any",
        &["pred", "list"],
        r#"`true` if `pred` returns `true` for at least one element of `list`; `false` for an empty list. It stops at the first element for which `pred` is `true`.

```nix
builtins.any (x: x == "b") [ "a" "b" ]   # true
```"#,
    ),
    doc(
        "appendContext",
        &["s", "context"],
        r#"Adds string context to `s`. `context` is a set in the shape `getContext` returns: store paths mapped to `{ path = true; }`, `{ allOutputs = true; }` and/or `{ outputs = [ "out" ... ]; }`. Every path must be a store path. It is the inverse of `getContext`, for code that takes contexts apart and rebuilds them.

```nix
builtins.appendContext "x" (builtins.getContext "${drv}")
```"#,
    ),
    doc(
        "attrNames",
        &["set"],
        r#"The names of the attributes of `set`, as a list of strings in sorted (byte) order. The values are not evaluated.

```nix
builtins.attrNames { b = 1; a = 2; }   # [ "a" "b" ]
```"#,
    ),
    doc(
        "attrValues",
        &["set"],
        r#"The values of the attributes of `set`, ordered by their names like `attrNames`. The values themselves stay unevaluated.

```nix
builtins.attrValues { b = 1; a = 2; }   # [ 2 1 ]
```"#,
    ),
    doc(
        "baseNameOf",
        &["path"],
        r#"The last component of a path or a string, after the final `/` (a trailing `/` is ignored). A path argument is not copied to the store; the result is a string that keeps the argument's context.

```nix
baseNameOf "/home/alice/notes.txt"   # "notes.txt"
```"#,
    ),
    doc(
        "bitAnd",
        &["a", "b"],
        r#"The bitwise AND of two integers.

```nix
builtins.bitAnd 12 10   # 8
```"#,
    ),
    doc(
        "bitOr",
        &["a", "b"],
        r#"The bitwise OR of two integers.

```nix
builtins.bitOr 12 10   # 14
```"#,
    ),
    doc(
        "bitXor",
        &["a", "b"],
        r#"The bitwise exclusive OR of two integers.

```nix
builtins.bitXor 12 10   # 6
```"#,
    ),
    doc(
        "break",
        &["value"],
        r#"In Nix, enters the debugger when it is enabled; otherwise it just returns `value`. tvix has no debugger, so it always forces and returns `value`.

```nix
builtins.break (1 + 1)   # 2
```"#,
    ),
    doc(
        "builtins",
        &[],
        r#"The set holding every builtin function and constant. Most are reached only through it (`builtins.readFile`); a few are also in scope without the prefix (`map`, `toString`, `import`, `throw`, ...). It contains itself as `builtins.builtins`.

```nix
builtins.hasAttr "fromTOML" builtins   # true
```"#,
    ),
    doc(
        "catAttrs",
        &["attr", "list"],
        r#"Takes the attribute named `attr` from each set in `list` that has it, skipping sets that do not, and returns the values as a list.

```nix
builtins.catAttrs "x" [ { x = 1; } { y = 2; } { x = 3; } ]   # [ 1 3 ]
```"#,
    ),
    doc(
        "ceil",
        &["number"],
        r#"Rounds `number` up to the nearest integer and returns it as an integer; an integer argument is returned as it is.

```nix
builtins.ceil 2.1   # 3
```"#,
    ),
    doc(
        "compareVersions",
        &["a", "b"],
        r#"Compares two version strings the way `nix-env` orders package versions: `-1` if `a` is older, `0` if they are equal, `1` if `a` is newer. Versions are split into numeric and non-numeric components (see `splitVersion`); numbers compare numerically and `pre` sorts before everything else.

```nix
builtins.compareVersions "1.10" "1.9"   # 1
```"#,
    ),
    doc(
        "concatLists",
        &["lists"],
        r#"Joins a list of lists into one list. The elements are not evaluated.

```nix
builtins.concatLists [ [ 1 2 ] [ ] [ 3 ] ]   # [ 1 2 3 ]
```"#,
    ),
    doc(
        "concatMap",
        &["f", "list"],
        r#"Applies `f`, which must return a list, to every element of `list` and joins the results; the same as `concatLists (map f list)` but done in one pass.

```nix
builtins.concatMap (x: [ x x ]) [ 1 2 ]   # [ 1 1 2 2 ]
```"#,
    ),
    doc(
        "concatStringsSep",
        &["separator", "list"],
        r#"Joins a list of strings with `separator` between each pair. Each element must be something string interpolation accepts (a string, a path, which is then copied to the store, or a set with `outPath` or `__toString`); the result carries the context of all of them.

```nix
builtins.concatStringsSep ", " [ "a" "b" "c" ]   # "a, b, c"
```"#,
    ),
    doc(
        "convertHash",
        &["args"],
        r#"Re-encodes a hash. `args` is a set with `hash` (the hash in any encoding Nix accepts, or SRI), `toHashFormat` (`"base16"`, `"nix32"`, `"base64"` or `"sri"`) and, unless `hash` is an SRI string, `hashAlgo` (`"md5"`, `"sha1"`, `"sha256"`, `"sha512"`).

```nix
builtins.convertHash { hash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; toHashFormat = "base16"; }
```"#,
    ),
    doc(
        "currentSystem",
        &[],
        r#"The system type tvix evaluates for, such as `"x86_64-linux"` or `"aarch64-darwin"` (a string, not a function). It is impure: the same expression gives a different result on another machine.

```nix
builtins.currentSystem   # "x86_64-linux"
```"#,
    ),
    doc(
        "currentTime",
        &[],
        r#"The time the evaluation started, in seconds since the Unix epoch (an integer, not a function). Impure: every run sees a different value.

```nix
builtins.currentTime > 0   # true
```"#,
    ),
    doc(
        "deepSeq",
        &["e1", "e2"],
        r#"Evaluates `e1` completely, including every list element and attribute value inside it, then returns `e2`. Useful to make sure errors in `e1` surface, or to avoid building up large unevaluated structures.

```nix
builtins.deepSeq { a = throw "boom"; } 1   # error: boom
```"#,
    ),
    doc(
        "derivation",
        &["attrs"],
        r#"Describes a build. `attrs` needs `name`, `system` and `builder`; `args` (a list) and `outputs` are optional, and every other attribute is passed to the builder as an environment variable. The result is `attrs` extended with `type = "derivation"`, `drvPath`, `outPath` and one attribute per output; using it in a string refers to its output path and makes it a dependency. Nothing is built during evaluation.

```nix
derivation { name = "hello"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo hi > $out" ]; }
```"#,
    ),
    doc(
        "derivationStrict",
        &["attrs"],
        r#"The primitive under `derivation`: evaluates the attributes, writes the derivation and returns a set with `drvPath` and one store path per output (`out`, ...). Prefer `derivation`, which returns a lazily usable derivation value.

```nix
(builtins.derivationStrict { name = "x"; system = "x86_64-linux"; builder = "/bin/sh"; }).out
```"#,
    ),
    doc(
        "dirOf",
        &["path"],
        r#"Everything before the last `/` of a path or string: the directory part. A path argument gives a path, a string gives a string; the root stays the root.

```nix
dirOf /home/alice/notes.txt   # /home/alice
```"#,
    ),
    doc(
        "div",
        &["a", "b"],
        r#"Divides `a` by `b`, the function behind `/`. Two integers give an integer rounded towards zero; if either is a float the result is a float. Dividing by zero is an error.

```nix
builtins.div 7 2   # 3
```"#,
    ),
    doc(
        "elem",
        &["x", "list"],
        r#"`true` if some element of `list` is equal to `x` (the same equality as `==`).

```nix
builtins.elem 2 [ 1 2 3 ]   # true
```"#,
    ),
    doc(
        "elemAt",
        &["list", "index"],
        r#"The element of `list` at `index`, counting from 0. An index outside the list is an error.

```nix
builtins.elemAt [ "a" "b" "c" ] 1   # "b"
```"#,
    ),
    doc(
        "false",
        &[],
        r#"The Boolean false. It is a constant, not a keyword: it can be shadowed, and it is also `builtins.false`.

```nix
false || true   # true
```"#,
    ),
    doc(
        "fetchClosure",
        &["args"],
        r#"Copies a store path and everything it refers to from a binary cache into the store, and returns the path. `args` is a set with `fromStore` (the cache's URL: `https://`, `http://` or `file://`) and `fromPath`. The path must be content-addressed (its content address is checked against the path, and every NAR against its narinfo); an input-addressed path needs `inputAddressed = true`. `toPath`, rewriting an input-addressed path to a content-addressed one, is only accepted when it equals `fromPath`. Needs `--extra-experimental-features fetch-closure`; a path already in the store is not fetched again.

```nix
builtins.fetchClosure { fromStore = "https://cache.example.org"; fromPath = /nix/store/ldbhlwhh39wha58rm61bkiiwm6j7211j-git-2.33.1; }
```"#,
    ),
    doc(
        "fetchGit",
        &["args"],
        r#"Exports a revision of a git repository into the store and returns a set with `outPath`, `rev`, `shortRev`, `revCount`, `lastModified`, `lastModifiedDate`, `narHash` and `submodules`. `args` is a URL or path, or a set with `url` and optionally `ref` (a branch or tag), `rev` (a full commit hash), `name` (default `"source"`) and `narHash`. A local repository with uncommitted changes to tracked files, asked for without `ref` or `rev`, gives its working tree (with a warning and a `rev` of zeros). Runs the `git` command; a pinned `rev` is fetched once and then taken from the store.

```nix
(builtins.fetchGit { url = ./.; rev = "0123456789abcdef0123456789abcdef01234567"; }).outPath
```"#,
    ),
    doc(
        "fetchTarball",
        &["args"],
        r#"Downloads a tar archive (plain or compressed with gzip, xz, bzip2 or zstd), unpacks it into the store and returns the store path; an archive holding a single top-level directory gives that directory. `args` is a URL, or a set with `url`, `sha256` (the NAR hash of the unpacked tree; when given, a result already in the store is not downloaded again) and `name` (default `"source"`). `file://` URLs work offline.

```nix
import (builtins.fetchTarball { url = "file:///srv/pkgs.tar.gz"; sha256 = "..."; })
```"#,
    ),
    doc(
        "fetchTree",
        &["input"],
        r#"Fetches an input, given as a set with a `type` (`"tarball"`, `"file"`, `"git"`, `"path"` or `"github"`) and that type's attributes (`url`, `ref`, `rev`, `path`, `owner`, `repo`, `narHash`, ...), or as a URL-like string (`git+file:///repo`, `path:/dir`, `github:owner/repo`, `https://host/x.tar.gz`). Returns a set with at least `outPath` and `narHash`; git inputs also have the revision attributes `fetchGit` gives.

```nix
(builtins.fetchTree { type = "path"; path = "/srv/src"; }).narHash
```"#,
    ),
    doc(
        "fetchurl",
        &["args"],
        r#"Downloads a single file into the store as it is (not unpacked) and returns its store path. `args` is a URL, or a set with `url`, `sha256` or `hash` (the file's hash; when given, a result already in the store is not downloaded again) and `name` (default: the URL's last component, which must be a valid store path name). Without network, `http(s)` URLs fail with a clear error; `file://` URLs work offline.

```nix
builtins.readFile (builtins.fetchurl "file:///etc/hostname")
```"#,
    ),
    doc(
        "filter",
        &["pred", "list"],
        r#"The elements of `list` for which `pred` returns `true`, in their original order. The elements are passed to `pred` unforced.

```nix
builtins.filter (x: x != null) [ 1 null 2 ]   # [ 1 2 ]
```"#,
    ),
    doc(
        "filterSource",
        &["pred", "path"],
        r#"Copies the directory `path` to the store, keeping only entries for which `pred path type` returns `true`; `path` is the entry's full path as a string and `type` is `"regular"`, `"directory"`, `"symlink"` or `"unknown"`. A rejected directory is skipped with everything in it. The result is the store path. `builtins.path` does the same with more options.

```nix
builtins.filterSource (path: type: baseNameOf path != ".git") ./.
```"#,
    ),
    doc(
        "findFile",
        &["searchPath", "name"],
        r#"Looks `name` up in `searchPath`, a list of `{ prefix; path; }` sets like `builtins.nixPath`, and returns the first existing match as a path. An entry whose `prefix` is a leading component of `name` is tried with the rest of `name` appended to its `path`; an empty prefix matches everything. The `<name>` syntax calls this with `builtins.nixPath`.

```nix
builtins.findFile [ { prefix = "pkgs"; path = "/src/pkgs"; } ] "pkgs/lib"   # /src/pkgs/lib
```"#,
    ),
    doc(
        "flakeRefToString",
        &["attrs"],
        r#"Turns a flake reference in attribute set form into its URL-like string, the inverse of `parseFlakeRef`. Nothing is fetched.

```nix
builtins.flakeRefToString { type = "github"; owner = "NixOS"; repo = "nixpkgs"; ref = "nixos-24.05"; }
# "github:NixOS/nixpkgs/nixos-24.05"
```"#,
    ),
    doc(
        "floor",
        &["number"],
        r#"Rounds `number` down to the nearest integer and returns it as an integer; an integer argument is returned as it is.

```nix
builtins.floor 2.9   # 2
```"#,
    ),
    doc(
        "foldl'",
        &["op", "nul", "list"],
        r#"Folds `list` from the left: starting with `nul`, it calls `op acc element` for each element in turn and returns the final accumulator. The accumulator is forced at every step (the `'`), so long lists do not pile up thunks; the elements themselves are not forced unless `op` does.

```nix
builtins.foldl' (acc: x: acc + x) 0 [ 1 2 3 ]   # 6
```"#,
    ),
    doc(
        "fromJSON",
        &["json"],
        r#"Parses the string `json` into a Nix value: objects become sets, arrays lists, numbers integers or floats, and `null`, `true`, `false` their Nix counterparts.

```nix
builtins.fromJSON ''{ "x": [ 1, 2.5, null ] }''   # { x = [ 1 2.5 null ]; }
```"#,
    ),
    doc(
        "fromTOML",
        &["toml"],
        r#"Parses the string `toml` as a TOML document into a set: tables become sets, arrays lists. Dates and times are an error unless the experimental feature `parse-toml-timestamps` is enabled.

```nix
fromTOML ''
  [server]
  port = 8080
''   # { server = { port = 8080; }; }
```"#,
    ),
    doc(
        "functionArgs",
        &["f"],
        r#"The formal arguments of a function that takes a set pattern: a set mapping each argument name to `true` if it has a default value and `false` if not. A function with a plain argument (`x: ...`) and builtins give `{ }`.

```nix
builtins.functionArgs ({ a, b ? 1 }: a)   # { a = false; b = true; }
```"#,
    ),
    doc(
        "genList",
        &["generator", "length"],
        r#"A list of `length` elements where element `i` is `generator i`. The elements are computed lazily, only when something uses them.

```nix
builtins.genList (i: i * i) 4   # [ 0 1 4 9 ]
```"#,
    ),
    doc(
        "genericClosure",
        &["attrs"],
        r#"Computes a closure: starting with the list `attrs.startSet`, it applies `attrs.operator` to each item to find more items, until no new ones appear. Every item must be a set with a `key` attribute; items whose `key` was already seen (by `==`) are dropped. Returns all items found, in the order they were first seen.

```nix
builtins.genericClosure {
  startSet = [ { key = 1; } ];
  operator = item: if item.key < 3 then [ { key = item.key + 1; } ] else [ ];
}   # [ { key = 1; } { key = 2; } { key = 3; } ]
```"#,
    ),
    doc(
        "getAttr",
        &["name", "set"],
        r#"The value of the attribute `name` in `set`, like `set.${name}`. A missing attribute is an error.

```nix
builtins.getAttr "x" { x = 1; }   # 1
```"#,
    ),
    doc(
        "getContext",
        &["s"],
        r#"The string context of `s`: a set whose names are the store paths `s` depends on, each mapped to what kind of dependency it is: `path = true` for a plain store path, `allOutputs = true` for a derivation with everything it builds, and `outputs = [ ... ]` for particular outputs.

```nix
builtins.getContext "${derivation { name = "x"; system = "s"; builder = "b"; }}"
# { "/nix/store/...-x.drv" = { outputs = [ "out" ]; }; }
```"#,
    ),
    doc(
        "getEnv",
        &["name"],
        r#"The value of the environment variable `name` of the tvix process, or `""` if it is not set. Impure: the result depends on where the evaluation runs.

```nix
builtins.getEnv "HOME"   # "/home/alice"
```"#,
    ),
    doc(
        "groupBy",
        &["f", "list"],
        r#"Groups the elements of `list` by the string `f` returns for each: a set from each such string to the list of elements that produced it, in their original order.

```nix
builtins.groupBy (x: if x > 2 then "big" else "small") [ 1 3 2 4 ]
# { big = [ 3 4 ]; small = [ 1 2 ]; }
```"#,
    ),
    doc(
        "hasAttr",
        &["name", "set"],
        r#"`true` if `set` has an attribute called `name`, like the `?` operator with a dynamic name. The value is not evaluated.

```nix
builtins.hasAttr "x" { x = throw "unused"; }   # true
```"#,
    ),
    doc(
        "hasContext",
        &["s"],
        r#"`true` if the string `s` carries string context, that is if it refers to store paths or derivations.

```nix
builtins.hasContext "${./file.txt}"   # true
```"#,
    ),
    doc(
        "hashFile",
        &["type", "path"],
        r#"The hash of the contents of the file at `path`, in base-16. `type` names the algorithm: `"md5"`, `"sha1"`, `"sha256"` or `"sha512"`.

```nix
builtins.hashFile "sha256" ./default.nix
```"#,
    ),
    doc(
        "hashString",
        &["type", "s"],
        r#"The hash of the bytes of the string `s`, in base-16. `type` names the algorithm: `"md5"`, `"sha1"`, `"sha256"` or `"sha512"`.

```nix
builtins.hashString "sha1" "abc"   # "a9993e364706816aba3e25717850c26c9cd0d89d"
```"#,
    ),
    doc(
        "head",
        &["list"],
        r#"The first element of `list`; an error if the list is empty.

```nix
builtins.head [ 1 2 3 ]   # 1
```"#,
    ),
    doc(
        "import",
        &["path"],
        r#"Reads the Nix file at `path`, evaluates it and returns its value. A directory means its `default.nix`. The imported file sees only the global scope, not the variables around the `import`; the result is cached, so importing the same file twice evaluates it once. Usually the value is a function that is called right away.

```nix
import ./module.nix { inherit lib; }
```"#,
    ),
    doc(
        "intersectAttrs",
        &["e1", "e2"],
        r#"The attributes of `e2` whose names also appear in `e1`; the values come from `e2`.

```nix
builtins.intersectAttrs { a = 0; b = 0; } { b = 2; c = 3; }   # { b = 2; }
```"#,
    ),
    doc(
        "isAttrs",
        &["e"],
        r#"`true` if `e` evaluates to an attribute set.

```nix
builtins.isAttrs { }   # true
```"#,
    ),
    doc(
        "isBool",
        &["e"],
        r#"`true` if `e` evaluates to `true` or `false`.

```nix
builtins.isBool (1 < 2)   # true
```"#,
    ),
    doc(
        "isFloat",
        &["e"],
        r#"`true` if `e` evaluates to a floating-point number (`1.0` is a float, `1` is not).

```nix
builtins.isFloat 1.0   # true
```"#,
    ),
    doc(
        "isFunction",
        &["e"],
        r#"`true` if `e` evaluates to a function: a lambda, a builtin, or a builtin applied to some of its arguments. A set with `__functor` can be called but is not a function here.

```nix
builtins.isFunction (x: x)   # true
```"#,
    ),
    doc(
        "isInt",
        &["e"],
        r#"`true` if `e` evaluates to an integer.

```nix
builtins.isInt 42   # true
```"#,
    ),
    doc(
        "isList",
        &["e"],
        r#"`true` if `e` evaluates to a list.

```nix
builtins.isList [ ]   # true
```"#,
    ),
    doc(
        "isNull",
        &["e"],
        r#"`true` if `e` evaluates to `null`; the same as `e == null`, which is the preferred spelling.

```nix
isNull null   # true
```"#,
    ),
    doc(
        "isPath",
        &["e"],
        r#"`true` if `e` evaluates to a path value (such as `./foo`), not a string that looks like one.

```nix
builtins.isPath ./.   # true
```"#,
    ),
    doc(
        "isString",
        &["e"],
        r#"`true` if `e` evaluates to a string. Paths are not strings.

```nix
builtins.isString "a"   # true
```"#,
    ),
    doc(
        "langVersion",
        &[],
        r#"An integer identifying the version of the Nix language the evaluator implements (6 here), so expressions can check for newer features.

```nix
builtins.langVersion   # 6
```"#,
    ),
    doc(
        "length",
        &["list"],
        r#"The number of elements in `list`. The elements are not evaluated.

```nix
builtins.length [ 1 (throw "unused") ]   # 2
```"#,
    ),
    doc(
        "lessThan",
        &["a", "b"],
        r#"`true` if `a` is less than `b`, the function behind `<`. It compares numbers, strings (byte-wise), paths, and lists element by element.

```nix
builtins.lessThan "apple" "banana"   # true
```"#,
    ),
    doc(
        "listToAttrs",
        &["list"],
        r#"Builds a set from a list of `{ name; value; }` sets. When a name appears more than once, its first occurrence wins. The values are not evaluated.

```nix
builtins.listToAttrs [ { name = "a"; value = 1; } { name = "b"; value = 2; } ]   # { a = 1; b = 2; }
```"#,
    ),
    doc(
        "map",
        &["f", "list"],
        r#"A list of `f` applied to each element of `list`. The applications are lazy: `f` runs for an element only when that element is used.

```nix
map (x: x * 10) [ 1 2 3 ]   # [ 10 20 30 ]
```"#,
    ),
    doc(
        "mapAttrs",
        &["f", "set"],
        r#"A set with the same names as `set`, where each value is `f name value`. The calls are lazy: each value is computed only when it is used.

```nix
builtins.mapAttrs (name: v: "${name}=${toString v}") { a = 1; }   # { a = "a=1"; }
```"#,
    ),
    doc(
        "match",
        &["regex", "s"],
        r#"Matches the whole string `s` against the POSIX extended regular expression `regex`. On a match, returns the list of what each capture group matched (`null` for a group that took no part); without a match, returns `null`. With no groups a match gives `[ ]`.

```nix
builtins.match "([a-z]+)-([0-9.]+)" "hello-2.12"   # [ "hello" "2.12" ]
```"#,
    ),
    doc(
        "mul",
        &["a", "b"],
        r#"The product of two numbers, the function behind `*`. Integers stay integers (overflow is an error); a float on either side gives a float.

```nix
builtins.mul 6 7   # 42
```"#,
    ),
    doc(
        "nixPath",
        &[],
        r#"The search path used for `<name>` lookups, as a list of `{ prefix; path; }` sets (a constant built from `-I` options and `NIX_PATH`).

```nix
builtins.findFile builtins.nixPath "nixpkgs"
```"#,
    ),
    doc(
        "nixVersion",
        &[],
        r#"The Nix version this evaluator claims to be compatible with, as a string. Expressions use it to check for features of a given Nix release.

```nix
builtins.compareVersions builtins.nixVersion "2.4" >= 0   # true
```"#,
    ),
    doc(
        "null",
        &[],
        r#"The null value, standing for "nothing here". It is a constant, also reachable as `builtins.null`.

```nix
{ a = null; }.a == null   # true
```"#,
    ),
    doc(
        "parseDrvName",
        &["s"],
        r#"Splits a package name into `{ name; version; }`: the version starts at the first `-` followed by something that is not a letter.

```nix
builtins.parseDrvName "hello-world-2.12.1"   # { name = "hello-world"; version = "2.12.1"; }
```"#,
    ),
    doc(
        "parseFlakeRef",
        &["flakeRef"],
        r#"Parses a flake reference string (`github:owner/repo`, `git+https://...`, `path:...`, an indirect id like `nixpkgs`, ...) into its attribute set form with `type` and the type's own fields. Nothing is fetched and no registry is consulted.

```nix
builtins.parseFlakeRef "github:NixOS/nixpkgs/nixos-24.05"
# { owner = "NixOS"; ref = "nixos-24.05"; repo = "nixpkgs"; type = "github"; }
```"#,
    ),
    doc(
        "partition",
        &["pred", "list"],
        r#"Splits `list` into `{ right; wrong; }`: `right` holds the elements for which `pred` is `true`, `wrong` the others, both in their original order.

```nix
builtins.partition (x: x > 2) [ 1 3 2 4 ]   # { right = [ 3 4 ]; wrong = [ 1 2 ]; }
```"#,
    ),
    doc(
        "path",
        &["args"],
        r#"Copies a file or directory into the store, with more control than using a path in a string. `args` is a set with `path` (required), `name` (the store path's name; the base name by default), `filter` (a function like `filterSource`'s), `recursive` (`false` hashes a single file as a flat file; default `true`) and `sha256` (the expected hash, which lets the result be checked). Returns the store path.

```nix
builtins.path { path = ./src; name = "source"; filter = p: t: t != "symlink"; }
```"#,
    ),
    doc(
        "pathExists",
        &["path"],
        r#"`true` if something exists at `path` (a path or an absolute path string). A trailing `/` requires a directory.

```nix
builtins.pathExists ./default.nix
```"#,
    ),
    doc(
        "placeholder",
        &["output"],
        r#"A string that stands for the path of output `output` of the derivation being defined, for use in its attributes; the builder sees it replaced by the real path. Useful where the output path cannot be written down in advance.

```nix
derivation { name = "x"; system = "x86_64-linux"; builder = "/bin/sh"; prefix = placeholder "out"; }
```"#,
    ),
    doc(
        "readDir",
        &["path"],
        r#"The entries of the directory `path`: a set from each entry's name to its type, `"regular"`, `"directory"`, `"symlink"` or `"unknown"`. Symlinks are not followed.

```nix
builtins.readDir ./.   # { "default.nix" = "regular"; lib = "directory"; }
```"#,
    ),
    doc(
        "readFile",
        &["path"],
        r#"The contents of the file at `path` (a path, or a string holding an absolute path) as a string. The file is not copied to the store.

```nix
builtins.readFile ./VERSION
```"#,
    ),
    doc(
        "readFileType",
        &["path"],
        r#"The type of the file at `path` without following a final symlink: `"regular"`, `"directory"`, `"symlink"` or `"unknown"`.

```nix
builtins.readFileType ./.   # "directory"
```"#,
    ),
    doc(
        "removeAttrs",
        &["set", "names"],
        r#"A copy of `set` without the attributes listed in `names` (a list of strings); names that are not in `set` are ignored.

```nix
removeAttrs { a = 1; b = 2; } [ "a" "z" ]   # { b = 2; }
```"#,
    ),
    doc(
        "replaceStrings",
        &["from", "to", "s"],
        r#"Replaces, scanning `s` from left to right, each occurrence of a string in the list `from` by the string at the same position in `to`. At each position the first matching element of `from` wins, and replaced text is not scanned again. An empty string in `from` matches between every two characters.

```nix
builtins.replaceStrings [ "o" "l" ] [ "0" "1" ] "hello world"   # "he110 w0r1d"
```"#,
    ),
    doc(
        "scopedImport",
        &["scope", "path"],
        r#"Like `import`, but the names in the set `scope` are in scope in the imported file, in front of the global ones (so it can even replace builtins for that file). Results are not cached the way `import`'s are.

```nix
scopedImport { x = 1; } ./uses-x.nix
```"#,
    ),
    doc(
        "seq",
        &["e1", "e2"],
        r#"Evaluates `e1` to weak head normal form (only its outer shape: the set or list itself, not its contents), then returns `e2`.

```nix
builtins.seq (throw "boom") 1   # error: boom
```"#,
    ),
    doc(
        "sort",
        &["comparator", "list"],
        r#"Sorts `list` with `comparator`, a function of two elements returning `true` when the first must come before the second (a strict "less than"). The sort is stable: equal elements keep their order.

```nix
builtins.sort builtins.lessThan [ 3 1 2 ]   # [ 1 2 3 ]
```"#,
    ),
    doc(
        "split",
        &["regex", "s"],
        r#"Splits `s` at every match of the POSIX extended regular expression `regex`. The result alternates between the text between matches (strings) and, for each match, the list of its capture groups.

```nix
builtins.split "(,)" "a,b"   # [ "a" [ "," ] "b" ]
```"#,
    ),
    doc(
        "splitVersion",
        &["s"],
        r#"Splits a version string into its components as `compareVersions` sees them: separated at `.` and `-`, and between digits and non-digits.

```nix
builtins.splitVersion "1.2a-rc3"   # [ "1" "2" "a" "rc" "3" ]
```"#,
    ),
    doc(
        "storeDir",
        &[],
        r#"The directory of the store, normally `"/nix/store"` (a string, not a function).

```nix
builtins.storeDir   # "/nix/store"
```"#,
    ),
    doc(
        "storePath",
        &["path"],
        r#"Takes a path that is already in the store and returns it as a string with that store path in its context, so it can be used as a dependency without being copied again. A path outside the store is an error.

```nix
builtins.storePath /nix/store/00000000000000000000000000000000-hello
```"#,
    ),
    doc(
        "stringLength",
        &["s"],
        r#"The length of the string `s` in bytes (not characters).

```nix
builtins.stringLength "héllo"   # 6
```"#,
    ),
    doc(
        "sub",
        &["a", "b"],
        r#"`a` minus `b`, the function behind binary `-`. Integers stay integers; a float on either side gives a float.

```nix
builtins.sub 10 3   # 7
```"#,
    ),
    doc(
        "substring",
        &["start", "length", "s"],
        r#"The part of `s` starting at byte `start` and `length` bytes long; it stops early at the end of the string, and a `start` past the end gives `""`. A negative `length` means "to the end". The context of `s` is kept.

```nix
builtins.substring 0 3 "nixos"   # "nix"
```"#,
    ),
    doc(
        "tail",
        &["list"],
        r#"All elements of `list` but the first; an error if the list is empty. It copies the list, so walking a list with `tail` is quadratic.

```nix
builtins.tail [ 1 2 3 ]   # [ 2 3 ]
```"#,
    ),
    doc(
        "throw",
        &["message"],
        r#"Fails with the error `message`. Unlike `abort`, the error can be caught by `builtins.tryEval`, which is how optional or broken parts of a larger expression are skipped.

```nix
if x < 0 then throw "x must not be negative" else x
```"#,
    ),
    doc(
        "toFile",
        &["name", "s"],
        r#"Writes the string `s` to a file named `name` in the store and returns its store path. `s` may refer to other store paths (through its context), which become references of the file, but not to derivation outputs.

```nix
builtins.toFile "greeting.txt" "hello\n"
```"#,
    ),
    doc(
        "toJSON",
        &["value"],
        r#"Serialises `value` to a JSON string, evaluating it completely. Sets become objects with sorted keys, lists arrays; paths are copied to the store and written as their store paths, and sets with `outPath` or `__toString` are written as that string. Functions cannot be serialised.

```nix
builtins.toJSON { a = [ 1 "x" null ]; }   # "{\"a\":[1,\"x\",null]}"
```"#,
    ),
    doc(
        "toPath",
        &["s"],
        r#"Deprecated: checks that the string `s` is an absolute path and returns it, as a string. Use `/. + s` to get a path value.

```nix
builtins.toPath "/etc/hosts"   # "/etc/hosts"
```"#,
    ),
    doc(
        "toString",
        &["e"],
        r#"Converts `e` to a string: strings as they are, integers and floats in decimal, paths as their text (not copied to the store), `true` as `"1"`, `false` and `null` as `""`, lists as their elements converted and joined with spaces, and sets through `__toString` or `outPath`.

```nix
toString [ 1 "a" null true ]   # "1 a  1"
```"#,
    ),
    doc(
        "toXML",
        &["value"],
        r#"Serialises `value` to the XML format Nix uses for `--xml`, evaluating it completely. It is mostly used to hand structured data to builders that read XML.

```nix
builtins.toXML { a = 1; }
```"#,
    ),
    doc(
        "trace",
        &["message", "value"],
        r#"Prints `message` (forced completely) to standard error as `trace: ...`, then returns `value`. Handy for debugging, since nothing else in Nix has side effects; it prints when the expression is evaluated, which may be later or never.

```nix
builtins.trace "computing x" (1 + 1)   # prints "trace: computing x", gives 2
```"#,
    ),
    doc(
        "traceVerbose",
        &["message", "value"],
        r#"Like `trace`, but prints only when verbose tracing is enabled (Nix's `--trace-verbose`). tvix has no such setting, so it returns `value` without printing.

```nix
builtins.traceVerbose "detail" 42   # 42
```"#,
    ),
    doc(
        "true",
        &[],
        r#"The Boolean true. It is a constant, not a keyword: it can be shadowed, and it is also `builtins.true`.

```nix
true && false   # false
```"#,
    ),
    doc(
        "tryEval",
        &["e"],
        r#"Evaluates `e` (to weak head normal form) and returns `{ success = true; value = e; }`, or `{ success = false; value = false; }` if that fails with `throw` or a failed `assert`. Other errors, such as `abort` or type errors, are not caught. Values deeper inside `e` are not evaluated, so their errors are not caught either.

```nix
builtins.tryEval (throw "no")   # { success = false; value = false; }
```"#,
    ),
    doc(
        "typeOf",
        &["e"],
        r#"The type of `e` as a string: `"int"`, `"float"`, `"bool"`, `"string"`, `"path"`, `"null"`, `"set"`, `"list"` or `"lambda"` (builtins included).

```nix
builtins.typeOf { }   # "set"
```"#,
    ),
    doc(
        "unsafeDiscardOutputDependency",
        &["s"],
        r#"Changes the context of `s` so that a reference to a derivation with all its outputs (as in `drv.drvPath`) becomes a reference to the `.drv` file alone. Something using the result needs the derivation file but does not make its outputs get built.

```nix
builtins.unsafeDiscardOutputDependency drv.drvPath
```"#,
    ),
    doc(
        "unsafeDiscardStringContext",
        &["s"],
        r#"The string `s` with its context removed: the same text, but it no longer makes anything a dependency. Unsafe because the store paths it names may not exist where the result is used.

```nix
builtins.hasContext (builtins.unsafeDiscardStringContext "${./file.txt}")   # false
```"#,
    ),
    doc(
        "unsafeGetAttrPos",
        &["name", "set"],
        r#"Where the attribute `name` of `set` was defined: `{ file; line; column; }`, or `null` if the set has no such attribute or its position is unknown (for example sets built by builtins).

```nix
builtins.unsafeGetAttrPos "a" { a = 1; }   # { column = 33; file = "..."; line = 1; }
```"#,
    ),
    doc(
        "warn",
        &["message", "value"],
        r#"Prints `message` (which must be a string) to standard error as a warning, then returns `value`. Like `trace`, but for problems the user should see.

```nix
builtins.warn "option foo is deprecated" config
```"#,
    ),
    doc(
        "zipAttrsWith",
        &["f", "list"],
        r#"Merges a list of sets: for every name that appears in any of them, calls `f name values`, where `values` lists that attribute's values from the sets that have it, in list order. The calls are lazy.

```nix
builtins.zipAttrsWith (name: vs: vs) [ { a = 1; } { a = 2; b = 3; } ]   # { a = [ 1 2 ]; b = [ 3 ]; }
```"#,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{EvalConfig, Evaluator};
    use crate::value::Value;

    /// Every name in the evaluator's `builtins` set with the number of arguments it takes
    /// (0 for constants).
    fn registered_builtins() -> Vec<(String, usize)> {
        let mut ev = Evaluator::new(Box::new(crate::io::StdIO::new()), EvalConfig::default());
        let set = ev
            .eval_source("«docs»".into(), "builtins".into(), std::env::temp_dir())
            .and_then(|v| ev.force(v))
            .expect("`builtins` evaluates");
        let Value::Attrs(attrs) = set else {
            panic!("`builtins` is not a set");
        };
        attrs
            .iter()
            .map(|e| {
                let arity = match &e.value {
                    Value::PrimOp(app) => app.op.arity - app.args.len(),
                    _ => 0,
                };
                (e.name.as_str().to_string(), arity)
            })
            .collect()
    }

    #[test]
    fn docs_cover_every_registered_builtin_with_its_arity() {
        let registered = registered_builtins();
        assert!(registered.len() > 100, "only {} builtins", registered.len());
        for (name, arity) in &registered {
            let d = builtin_doc(name).unwrap_or_else(|| panic!("no doc for builtin {name}"));
            assert_eq!(
                d.args.len(),
                *arity,
                "argument names of {name}: {:?}",
                d.args
            );
        }
    }

    #[test]
    fn docs_name_only_existing_builtins() {
        let registered = registered_builtins();
        for d in all_builtin_docs() {
            assert!(
                registered.iter().any(|(n, _)| n == d.name),
                "documented builtin {} does not exist",
                d.name
            );
        }
    }

    #[test]
    fn docs_table_is_sorted_without_duplicates() {
        for pair in DOCS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} must come before {}",
                pair[1].name,
                pair[0].name
            );
        }
    }

    #[test]
    fn docs_entries_have_text_and_an_example() {
        for d in all_builtin_docs() {
            let (text, example) = d
                .doc
                .split_once("```nix\n")
                .unwrap_or_else(|| panic!("{} has no nix example", d.name));
            assert!(
                text.trim().len() > 20,
                "{} has too short a description",
                d.name
            );
            assert!(
                example.trim_end().ends_with("```"),
                "{}: unclosed example",
                d.name
            );
        }
    }

    #[test]
    fn docs_lookup_accepts_source_spellings() {
        assert_eq!(builtin_doc("map").map(|d| d.args), Some(&["f", "list"][..]));
        assert_eq!(builtin_doc("builtins.map"), builtin_doc("map"));
        assert_eq!(builtin_doc("__map"), builtin_doc("map"));
        assert_eq!(builtin_doc("foldl'").map(|d| d.args.len()), Some(3));
        assert!(builtin_doc("notABuiltin").is_none());
        assert!(builtin_doc("").is_none());
    }

    /// Examples that end in their result (`EXPR   # RESULT`, or `EXPR` then a last line
    /// `# RESULT`) are checked by evaluating `EXPR == RESULT`. Left out are results that
    /// depend on the machine or on files, errors, printed output and elided values (`...`).
    #[test]
    fn docs_examples_with_results_evaluate_to_them() {
        let mut checked = 0;
        for d in all_builtin_docs() {
            let example = d.doc.split_once("```nix\n").map(|(_, e)| e).unwrap_or("");
            let example = example.trim_end().trim_end_matches("```").trim_end();
            let Some((expr, result)) = split_result(example) else {
                continue;
            };
            if example.contains("...")
                || example.contains("./")
                || result.starts_with("error")
                || result.starts_with("prints")
                || !is_portable(result)
            {
                continue;
            }
            let src = format!("({expr}) == ({result})");
            assert_eq!(
                crate::testing::eval(&src),
                Ok("true".to_string()),
                "example of {}: {src}",
                d.name
            );
            checked += 1;
        }
        assert!(checked >= 70, "only {checked} examples checked");
    }

    /// An example's expression and the result written after it, if it has one.
    fn split_result(example: &str) -> Option<(&str, &str)> {
        if let Some((expr, result)) = example.rsplit_once("\n# ") {
            return Some((expr, result));
        }
        let (before, last) = example.rsplit_once('\n').unwrap_or(("", example));
        let (expr_end, result) = last.rsplit_once("   # ")?;
        Some((
            &example[..before.len() + (!before.is_empty()) as usize + expr_end.len()],
            result,
        ))
    }

    /// Whether `result` is the same on every machine: not the sample system, home or store
    /// directory, no absolute path, no source position.
    fn is_portable(result: &str) -> bool {
        !matches!(
            result,
            "\"x86_64-linux\"" | "\"/home/alice\"" | "\"/nix/store\""
        ) && !result.starts_with('/')
            && !result.contains("column =")
    }
}
