//! `tvix lsp` as a process, spoken to over JSON-RPC: every feature on fixtures with cursor
//! markers (`tests/lsp/*.nix`), incremental edits, budgets and shutdown.

#[path = "lsp/client.rs"]
mod client;
mod common;

use client::{Client, Fixture};
use common::shared_dir;
use serde_json::{json, Value};

fn uri_of(name: &str) -> String {
    format!("file://{}/tests/lsp/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn open(c: &mut Client, name: &str, fx: &Fixture) -> String {
    let uri = uri_of(name);
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": fx.text}}),
    );
    uri
}

fn at(uri: &str, pos: Value) -> Value {
    json!({"textDocument": {"uri": uri}, "position": pos})
}

/// The semantic token legend (types, modifiers) the server announced.
fn legend_of(c: &Client) -> (Vec<String>, Vec<String>) {
    let legend = &c.capabilities["semanticTokensProvider"]["legend"];
    let names = |k: &str| -> Vec<String> {
        legend[k]
            .as_array()
            .expect("legend")
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    (names("tokenTypes"), names("tokenModifiers"))
}

fn hover_text(v: &Value) -> String {
    v["contents"]["value"].as_str().unwrap_or("").to_string()
}

fn labels(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .expect("completion list")
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_string())
        .collect()
}

fn nixpkgs_lib() -> String {
    shared_dir()
        .join("workloads/nixpkgs-lib")
        .canonicalize()
        .expect("../shared/workloads/nixpkgs-lib")
        .display()
        .to_string()
}

fn eval_settings() -> Value {
    json!({"tvix": {
        "searchPath": [format!("nixpkgs={}", nixpkgs_lib())],
        "evalBudgetMs": 5000,
        "args": {"lib": "import <nixpkgs/lib>"},
    }})
}

#[test]
fn static_features() {
    let fx = Fixture::load("static.nix");
    let mut c = Client::start(json!({}));
    let uri = open(&mut c, "static.nix", &fx);

    let diags = c.diagnostics_until(&uri, |d| !d.is_empty());
    let find = |code: &str| -> Vec<&Value> { diags.iter().filter(|d| d["code"] == code).collect() };
    let undefined = find("undefined-variable");
    assert_eq!(undefined.len(), 1, "{diags:?}");
    assert_eq!(
        undefined[0]["message"],
        "undefined variable 'undefinedName'"
    );
    assert_eq!(undefined[0]["range"]["start"], fx.pos("undefined"));
    assert_eq!(find("unused-let")[0]["range"]["start"], fx.pos("unusedLet"));
    // `pkgs = pkgs;` in a `rec` set refers to itself: the formal is unused too.
    let formals: Vec<_> = find("unused-formal")
        .iter()
        .map(|d| d["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        formals,
        vec!["unused formal 'pkgs'", "unused formal 'unused'"]
    );
    assert_eq!(
        find("unused-formal")[1]["range"]["start"],
        fx.pos("unusedFormal")
    );
    assert_eq!(
        find("with-shadowed")[0]["range"]["start"],
        fx.pos("withShadow")
    );

    // Go to definition, references, highlight, rename.
    let def = c.result("textDocument/definition", at(&uri, fx.pos("useGreeting")));
    assert_eq!(def["range"]["start"], fx.pos("defGreeting"));
    let mut refs = at(&uri, fx.pos("defGreeting"));
    refs["context"] = json!({"includeDeclaration": true});
    let refs = c.result("textDocument/references", refs);
    assert_eq!(refs.as_array().unwrap().len(), 3, "{refs}");
    let hl = c.result("textDocument/documentHighlight", at(&uri, fx.pos("recUse")));
    assert_eq!(hl.as_array().unwrap().len(), 2, "{hl}");
    let mut rename = at(&uri, fx.pos("useGreeting"));
    rename["newName"] = json!("salutation");
    let edit = c.result("textDocument/rename", rename);
    let edits = edit["changes"][&uri].as_array().unwrap();
    assert_eq!(edits.len(), 3);
    assert!(edits.iter().all(|e| e["newText"] == "salutation"));
    let mut bad = at(&uri, fx.pos("useGreeting"));
    bad["newName"] = json!("not valid");
    assert!(c.request("textDocument/rename", bad).get("error").is_some());

    // Hover and completion from the builtins' documentation.
    let h = c.result("textDocument/hover", at(&uri, fx.pos("builtin")));
    // The builtin's signature and documentation (the evaluator's own table).
    let doc = tvix_eval::builtins::docs::builtin_doc("map").unwrap();
    assert!(
        hover_text(&h).starts_with("```nix\nbuiltins.map f list\n```"),
        "{h}"
    );
    assert!(hover_text(&h).contains(doc.doc), "{h}");
    let h = c.result("textDocument/hover", at(&uri, fx.pos("builtinAttr")));
    assert!(
        hover_text(&h).starts_with("```nix\nbuiltins.stringLength s\n```"),
        "{h}"
    );
    let items = c.result("textDocument/completion", at(&uri, fx.pos("complete")));
    let names = labels(&items);
    for expected in [
        "greeting", "shout", "helper", "pkgs", "message", "map", "builtins", "let",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    let greeting = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["label"] == "greeting")
        .unwrap()
        .clone();
    let resolved = c.result("completionItem/resolve", greeting);
    assert_eq!(
        resolved["documentation"]["value"],
        "let binding `greeting`\n\nSays hello."
    );
    assert!(
        !names.iter().any(|n| n == "x"),
        "a lambda argument out of scope was offered"
    );

    // Document symbols: nested sets.
    let syms = c.result(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    let top: Vec<&str> = syms
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        top.contains(&"greeting") && top.contains(&"nested"),
        "{top:?}"
    );
    let nested = syms
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "nested")
        .unwrap();
    let inner: Vec<&str> = nested["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(inner, vec!["inner", "sum"]);

    // Folding, selection ranges, semantic tokens.
    let folds = c.result(
        "textDocument/foldingRange",
        json!({"textDocument": {"uri": uri}}),
    );
    let nested_line = fx.text[..fx.text.find("nested = {").unwrap()]
        .matches('\n')
        .count();
    assert!(
        folds
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["startLine"] == nested_line && f["endLine"] == nested_line + 3),
        "{folds}"
    );
    let sel = c.result(
        "textDocument/selectionRange",
        json!({"textDocument": {"uri": uri}, "positions": [fx.pos("builtin")]}),
    );
    assert_eq!(sel[0]["range"]["start"], fx.pos("builtin"));
    assert!(sel[0]["parent"]["parent"].is_object(), "{sel}");
    let tokens = c.result(
        "textDocument/semanticTokens/full",
        json!({"textDocument": {"uri": uri}}),
    );
    let data = tokens["data"].as_array().unwrap();
    assert_eq!(data.len() % 5, 0);
    assert!(data.len() > 5 * 40, "{}", data.len());
    // Decode (line, start, type, modifiers) and check classified identifiers, with the
    // legend the server announced.
    let legend = &legend_of(&c);
    let mut decoded = Vec::new();
    let (mut line, mut start) = (0u64, 0u64);
    for t in data.chunks(5) {
        let dl = t[0].as_u64().unwrap();
        line += dl;
        start = if dl == 0 {
            start + t[1].as_u64().unwrap()
        } else {
            t[1].as_u64().unwrap()
        };
        decoded.push((
            line,
            start,
            t[3].as_u64().unwrap() as usize,
            t[4].as_u64().unwrap(),
        ));
    }
    let token_at = |name: &str| {
        let p = fx.pos(name);
        let (l, ch) = (
            p["line"].as_u64().unwrap(),
            p["character"].as_u64().unwrap(),
        );
        let t = decoded
            .iter()
            .find(|t| t.0 == l && t.1 == ch)
            .unwrap_or_else(|| panic!("no token at {name}"));
        (legend.0[t.2].clone(), t.3)
    };
    assert_eq!(token_at("useGreeting").0, "variable");
    assert_eq!(token_at("builtin").0, "function");
    assert_eq!(
        token_at("builtin").1,
        1 << legend.1.iter().position(|m| m == "defaultLibrary").unwrap()
    );
    assert_eq!(token_at("unusedFormal").0, "parameter");
    assert_eq!(token_at("recUse").0, "variable");

    // Document links: the imported file.
    let links = c.result(
        "textDocument/documentLink",
        json!({"textDocument": {"uri": uri}}),
    );
    assert_eq!(links[0]["range"]["start"], fx.pos("link"));
    assert!(
        links[0]["target"]
            .as_str()
            .unwrap()
            .ends_with("/tests/lsp/other.nix"),
        "{links}"
    );

    // Code actions: `pkgs = pkgs;` in a `rec` set is not offered as inherit (it would be
    // recursive); quoting is.
    let actions = c.result(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": {"start": fx.pos("selfRef"), "end": fx.pos("selfRef")}, "context": {"diagnostics": []}}),
    );
    let titles: Vec<&str> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert!(
        titles.iter().any(|t| t.starts_with("Quote attribute name")),
        "{titles:?}"
    );
    assert!(!titles.iter().any(|t| t.contains("inherit")), "{titles:?}");
    let actions = c.result(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": {"start": fx.pos("undefined"), "end": fx.pos("undefined")}, "context": {"diagnostics": []}}),
    );
    let fix = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "quickfix")
        .expect("a quick fix");
    assert_eq!(
        fix["title"],
        "Add formal 'undefinedName' to the function's arguments"
    );

    // Formatting.
    let edits = c.result(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    assert_eq!(
        edits.as_array().unwrap().len(),
        1,
        "the fixture is not formatted: {edits}"
    );
    c.shutdown();
}

#[test]
fn incremental_edits_update_diagnostics_and_navigation() {
    let mut c = Client::start(json!({}));
    let uri = uri_of("scratch.nix");
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": "let a = 1; in b"}}),
    );
    let d = c.diagnostics_until(&uri, |d| {
        d.iter().any(|x| x["message"] == "undefined variable 'b'")
    });
    assert!(d.iter().any(|x| x["code"] == "unused-let"));
    // Replace `b` by `a + a` with a ranged edit.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [
            {"range": {"start": {"line": 0, "character": 14}, "end": {"line": 0, "character": 15}}, "text": "a + a"}
        ]}),
    );
    c.diagnostics_until(&uri, |d| d.is_empty());
    let refs = c.result(
        "textDocument/references",
        json!({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 4}, "context": {"includeDeclaration": false}}),
    );
    assert_eq!(refs.as_array().unwrap().len(), 2);
    // A syntax error: the reference's wording, at its place.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": "{ a = ; }"}]}),
    );
    let d = c.diagnostics_until(&uri, |d| !d.is_empty());
    assert!(
        d[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("syntax error, unexpected"),
        "{d:?}"
    );
    assert_eq!(d[0]["range"]["start"], json!({"line": 0, "character": 6}));
    assert_eq!(d[0]["message"], "syntax error, unexpected ';'");
    // One unclosed brace or string is one diagnostic, worded as Nix (2.8 and current
    // Nix agree on these texts), not a cascade of rnix's recovery errors.
    for (version, text, want) in [
        (
            10,
            "{\n  a = 1;\n  b = { c = x: x;\n  d = [ 1 2 ];\n  e = 3;\n}\n",
            "syntax error, unexpected end of file, expecting ';'",
        ),
        (
            11,
            "{\n  a = \"abc;\n  b = 2;\n  c = 3;\n}\n",
            "syntax error, unexpected end of file, expecting '\"'",
        ),
        (
            12,
            "let a = 1 = 2; in a",
            "syntax error, unexpected '=', expecting ';'",
        ),
        // A module file: its unused formals are not reported from a broken tree.
        (
            13,
            "{ config, lib, pkgs, ... }:\n{\n  a = lib.id 1;\n  b = { c = 2;\n}\n",
            "syntax error, unexpected end of file, expecting ';'",
        ),
        (
            14,
            "{ config, lib, pkgs, ... }:\n{\n  a = \"x;\n  b = 2;\n}\n",
            "syntax error, unexpected end of file, expecting '\"'",
        ),
    ] {
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}),
        );
        let d = c.diagnostics_until(&uri, |d| d.first().is_some_and(|x| x["message"] == want));
        assert_eq!(d.len(), 1, "{text:?}: {d:?}");
    }
    // Every duplicate attribute, in the reference's wording, each once.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 15}, "contentChanges": [{"text": "{ a = 1; a = 2; b.c = 1; b = { c = 2; }; }"}]}),
    );
    let d = c.diagnostics_until(&uri, |d| !d.is_empty() && d[0]["code"] != "parse");
    let path = uri.trim_start_matches("file://");
    let messages: Vec<&str> = d.iter().map(|x| x["message"].as_str().unwrap()).collect();
    // The places named are the first definitions of the conflicting names.
    assert_eq!(
        messages,
        vec![
            format!("attribute 'a' already defined at {path}:1:3"),
            format!("attribute 'b.c' already defined at {path}:1:19"),
        ],
        "{d:?}"
    );
    assert_eq!(d[1]["range"]["start"], json!({"line": 0, "character": 31}));
    c.shutdown();
}

#[test]
fn evaluation_backed_features() {
    let fx = Fixture::load("eval.nix");
    let mut c = Client::start(eval_settings());
    let uri = open(&mut c, "eval.nix", &fx);

    // `lib` has a `map` too, but the builtin is what `map` means under `with lib;`.
    let d = c.diagnostics_until(&uri, |d| d.iter().any(|x| x["code"] == "with-shadowed"));
    let hint = d.iter().find(|x| x["code"] == "with-shadowed").unwrap();
    assert_eq!(hint["range"]["start"], fx.pos("shadowed"));
    assert!(
        hint["message"]
            .as_str()
            .unwrap()
            .starts_with("'map' refers to the builtin"),
        "{hint}"
    );
    assert_eq!(
        d.iter().filter(|x| x["code"] == "with-shadowed").count(),
        1,
        "{d:?}"
    );

    let h = c.result("textDocument/hover", at(&uri, fx.pos("numbersUse")));
    assert!(hover_text(&h).contains("list of 4 elements"), "{h}");
    let h = c.result("textDocument/hover", at(&uri, fx.pos("numbersDef")));
    assert!(hover_text(&h).contains("[ 1 2 3 4 ]"), "{h}");

    // Attribute completion after `.`, across `import`.
    let items = c.result("textDocument/completion", at(&uri, fx.pos("dot")));
    let names = labels(&items);
    for expected in ["strings", "attrsets", "mkOption", "foldl'"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {} items",
            names.len()
        );
    }
    // Resolving an item reads the doc comment where the attribute is defined.
    let item = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["label"] == "concatMapStrings")
        .unwrap()
        .clone();
    let resolved = c.result("completionItem/resolve", item);
    let doc = resolved["documentation"]["value"].as_str().unwrap();
    assert!(
        doc.contains("lib/default.nix") || doc.contains("lib/strings.nix"),
        "{doc}"
    );

    // Hover of a library function: its doc comment from nixpkgs' source.
    let h = c.result("textDocument/hover", at(&uri, fx.pos("toUpper")));
    let strings_src =
        std::fs::read_to_string(format!("{}/lib/strings.nix", nixpkgs_lib())).unwrap();
    let at_def = strings_src
        .find("\n  toUpper =")
        .expect("toUpper in strings.nix");
    let expected = tvix_eval::doc_comment::doc_comment_before(&strings_src, at_def + 3)
        .expect("its doc comment");
    assert!(hover_text(&h).contains(&expected), "{h}");

    // Go to definition of an attribute into the file that defines it.
    let def = c.result("textDocument/definition", at(&uri, fx.pos("toUpper")));
    assert!(
        def["uri"].as_str().unwrap().ends_with("/lib/strings.nix"),
        "{def}"
    );
    let line = def["range"]["start"]["line"].as_u64().unwrap() as usize;
    let strings = std::fs::read_to_string(format!("{}/lib/strings.nix", nixpkgs_lib())).unwrap();
    assert!(
        strings
            .lines()
            .nth(line)
            .unwrap()
            .trim_start()
            .starts_with("toUpper"),
        "line {line}"
    );

    // An attribute of a set of this file: the definition is here.
    let def = c.result("textDocument/definition", at(&uri, fx.pos("localUse")));
    assert_eq!(def["uri"], uri);
    assert_eq!(def["range"]["start"], fx.pos("localDef"));

    // A name from `with lib;`: its definition and its completion. lib/default.nix
    // inherits it from `strings`; the definition is where `strings` defines it (with its
    // doc comment), not that `inherit`.
    let def = c.result("textDocument/definition", at(&uri, fx.pos("withName")));
    assert!(
        def["uri"].as_str().unwrap().ends_with("/lib/strings.nix"),
        "{def}"
    );
    let line = def["range"]["start"]["line"].as_u64().unwrap() as usize;
    let strings = std::fs::read_to_string(format!("{}/lib/strings.nix", nixpkgs_lib())).unwrap();
    assert!(
        strings
            .lines()
            .nth(line)
            .unwrap()
            .trim_start()
            .starts_with("concatStrings ="),
        "line {line}"
    );
    let items = c.result("textDocument/completion", at(&uri, fx.pos("withName")));
    assert!(labels(&items).iter().any(|n| n == "concatMapStrings"));

    // Inlay hints with values.
    let hints = c.result(
        "textDocument/inlayHint",
        json!({"textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 20, "character": 0}}}),
    );
    let labels: Vec<&str> = hints
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["label"].as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&": 10") && labels.contains(&": \"NIX\""),
        "{labels:?}"
    );

    // The custom request behind the extension's "evaluate selection".
    let v = c.result(
        "tvix/evaluate",
        json!({"uri": uri, "text": "map (x: x * 2) numbers", "range": {"start": fx.pos("numbersUse"), "end": fx.pos("numbersUse")}}),
    );
    assert_eq!(v["value"], "[ 2 4 6 8 ]");
    // A selection sent without its range is found in the document and evaluated there.
    let v = c.result(
        "tvix/evaluate",
        json!({"uri": uri, "text": "lib.range 1 4"}),
    );
    assert_eq!(v["value"], "[ 1 2 3 4 ]");
    let v = c.result("tvix/evaluate", json!({"uri": uri, "text": "numbers"}));
    assert_eq!(v["value"], "[ 1 2 3 4 ]");

    // A whole file that is a function is called with the workspace's arguments.
    let v = c.result(
        "tvix/evaluate",
        json!({"uri": uri, "text": "{ lib }: lib.toUpper \"nix\""}),
    );
    assert_eq!(v["value"], "\"NIX\"");
    let e = c.request("tvix/evaluate", json!({"uri": uri, "text": "1 + \"a\""}));
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot add a string to an integer"),
        "{e}"
    );
    c.shutdown();
}

#[test]
fn evaluation_errors_become_diagnostics() {
    let fx = Fixture::load("failing.nix");
    let mut c = Client::start(eval_settings());
    let uri = open(&mut c, "failing.nix", &fx);
    let d = c.diagnostics_until(&uri, |d| d.iter().any(|x| x["code"] == "eval"));
    let e = d.iter().find(|x| x["code"] == "eval").unwrap();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("cannot add a string to an integer"),
        "{e}"
    );
    assert_eq!(e["range"]["start"]["line"], fx.pos("bad")["line"]);
    c.shutdown();
}

#[test]
fn runaway_evaluation_is_stopped_and_the_server_goes_on() {
    let mut c = Client::start(json!({"tvix": {"evalBudgetMs": 200}}));
    let uri = uri_of("loop.nix");
    // 10^8 calls in constant memory: seconds of work, far beyond the budget.
    let text = "let l = builtins.genList (x: x) 10000; \
                r = builtins.foldl' (a: _: builtins.foldl' (b: _: b + 1) a l) 0 l; in r";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": text}}),
    );
    let start = std::time::Instant::now();
    let h = c.result(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": 0, "character": text.len() - 1}}),
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    assert!(hover_text(&h).contains("time budget"), "{h}");
    // The worker is free again.
    let v = c.result("tvix/evaluate", json!({"uri": uri, "text": "6 * 7"}));
    assert_eq!(v["value"], "42");
    c.shutdown();

    // Cancelling a request stops its evaluation long before its budget is spent.
    let mut c = Client::start(json!({"tvix": {"evalBudgetMs": 60000}}));
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": text}}),
    );
    let start = std::time::Instant::now();
    let id = c.send_request("tvix/evaluate", json!({"uri": uri, "text": text}));
    std::thread::sleep(std::time::Duration::from_millis(200));
    c.notify("$/cancelRequest", json!({"id": id}));
    let r = c.response(id, "tvix/evaluate");
    assert_eq!(r["error"]["code"], -32800, "{r}");
    let v = c.result("tvix/evaluate", json!({"uri": uri, "text": "6 * 7"}));
    assert_eq!(v["value"], "42");
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    c.shutdown();
}

#[test]
fn module_options() {
    let fx = Fixture::load("module.nix");
    let options = format!(
        "((import <nixpkgs/lib>).evalModules {{ modules = [ {}/tests/lsp/options.nix ]; }}).options",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut c = Client::start(json!({"tvix": {
        "searchPath": [format!("nixpkgs={}", nixpkgs_lib())],
        "evalBudgetMs": 5000,
        "optionsExpr": options,
    }}));
    let uri = open(&mut c, "module.nix", &fx);
    let items = c.result("textDocument/completion", at(&uri, fx.pos("completeHere")));
    let list = items["items"].as_array().unwrap();
    let port = list
        .iter()
        .find(|i| i["label"] == "port")
        .expect("option port offered");
    assert_eq!(
        port["detail"],
        "16 bit unsigned integer; between 0 and 65535 (both inclusive)"
    );
    assert!(port["documentation"]["value"]
        .as_str()
        .unwrap()
        .contains("Port the web server listens on."));
    assert!(list.iter().any(|i| i["label"] == "enable"));

    let h = c.result("textDocument/hover", at(&uri, fx.pos("portName")));
    let text = hover_text(&h);
    assert!(
        text.contains("services.web.port") && text.contains("8080"),
        "{text}"
    );

    let def = c.result("textDocument/definition", at(&uri, fx.pos("portName")));
    assert!(
        def["uri"]
            .as_str()
            .unwrap()
            .ends_with("/tests/lsp/options.nix"),
        "{def}"
    );
    assert_eq!(def["range"]["start"]["line"], 4);

    // While typing: `services.web.` does not parse as a binding yet.
    let text = "{ lib, ... }:\n{\n  services.web.\n}\n";
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": text}]}),
    );
    let items = c.result(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": {"line": 2, "character": 15}}),
    );
    let mut names = labels(&items);
    names.sort();
    assert_eq!(names, vec!["enable", "port"]);
    c.shutdown();
}

#[test]
fn entry_file_gives_the_evaluation_context() {
    // Imported files are read from disk: put the fixtures there without their markers.
    let dir = tempfile::tempdir().expect("temporary directory");
    let fx = Fixture::load("used.nix");
    let entry = Fixture::load("entry.nix");
    std::fs::write(dir.path().join("used.nix"), &fx.text).unwrap();
    std::fs::write(dir.path().join("entry.nix"), &entry.text).unwrap();
    let uri = format!("file://{}/used.nix", dir.path().display());
    let open_used = |c: &mut Client| {
        c.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": fx.text}}),
        );
    };

    let mut settings = eval_settings();
    settings["tvix"]["entryFile"] = json!(dir.path().join("entry.nix").display().to_string());
    let mut c = Client::start(settings);
    open_used(&mut c);
    // Called by the entry file with a string `n`: `n + 1` fails, here.
    let d = c.diagnostics_until(&uri, |d| d.iter().any(|x| x["code"] == "eval"));
    let e = d.iter().find(|x| x["code"] == "eval").unwrap();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("cannot coerce an integer to a string"),
        "{e}"
    );
    assert_eq!(e["range"]["start"]["line"], fx.pos("bad")["line"]);
    c.shutdown();

    // Without an entry file the file is called with the workspace arguments only: `n` has
    // no value, which is no error of the file.
    let mut c = Client::start(eval_settings());
    open_used(&mut c);
    // The static diagnostics, then those after the evaluation.
    c.diagnostics_until(&uri, |_| true);
    let d = c.diagnostics_until(&uri, |_| true);
    assert!(d.is_empty(), "{d:?}");
    let h = c.result("textDocument/hover", at(&uri, fx.pos("bad")));
    assert!(!hover_text(&h).contains("cannot coerce"), "{h}");
    c.shutdown();
}

#[test]
fn large_files_get_the_front_end_error_after_a_pause() {
    // Over 256 KiB: the evaluator's front end runs after the pause in typing, not inline.
    let mut text = String::from("let\n");
    for i in 0..12000 {
        text.push_str(&format!("  binding{i} = {i};\n"));
    }
    text.push_str("  ${\"a\" + \"b\"} = 1;\nin binding0\n");
    assert!(text.len() > 256 * 1024);
    let mut c = Client::start(json!({}));
    let uri = uri_of("large.nix");
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": text}}),
    );
    let d = c.diagnostics_until(&uri, |d| {
        d.iter()
            .any(|x| x["message"] == "dynamic attributes not allowed in let")
    });
    let e = d
        .iter()
        .find(|x| x["message"] == "dynamic attributes not allowed in let")
        .unwrap();
    assert_eq!(e["range"]["start"]["line"], 12001);
    c.shutdown();
}

/// Hover deep inside a `let` of 40 000 bindings evaluates the hovered name (with only the
/// bindings it needs) and shows its value, type and doc comment, as in a small file.
#[test]
fn hover_deep_in_a_big_let() {
    let mut text = String::from("let\n");
    for i in 0..40_000 {
        match i {
            39_000 => text.push_str("  /** Doubles a number. */\n  double = x: x * 2;\n"),
            39_001 => text.push_str("  deep = { a = double b20000; };\n"),
            39_999 => text.push_str("  /** The answer. */\n  answer = deep.a + b5;\n"),
            _ => text.push_str(&format!("  b{i} = {i};\n")),
        }
    }
    text.push_str("in { inherit answer; five = b5; }\n");
    let position = |needle: &str, skip: usize| {
        let at = text.find(needle).expect(needle) + skip;
        let line = text[..at].matches('\n').count();
        let column = at - text[..at].rfind('\n').map_or(0, |n| n + 1);
        json!({"line": line, "character": column})
    };
    let mut c = Client::start(json!({"tvix": {"evalBudgetMs": 5000}}));
    let uri = uri_of("big-let.nix");
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": text}}),
    );
    // On the name being defined: its doc comment and value.
    let h = hover_text(&c.result("textDocument/hover", at(&uri, position("answer =", 1))));
    assert!(h.starts_with("let binding `answer`\n\nThe answer."), "{h}");
    assert!(h.contains("`answer` : int\n\n```nix\n40005\n```"), "{h}");
    // On a use: the function's doc comment (from the binding and from the value).
    let h = hover_text(&c.result("textDocument/hover", at(&uri, position("double b20000", 2))));
    assert!(
        h.starts_with("let binding `double`\n\nDoubles a number."),
        "{h}"
    );
    assert!(h.contains("function\n\n```nix\nx:\n```"), "{h}");
    // In the body, after all the bindings.
    let h = hover_text(&c.result("textDocument/hover", at(&uri, position("five = b5", 8))));
    assert!(h.contains("`b5` : int\n\n```nix\n5\n```"), "{h}");
    c.shutdown();
}

/// The editor's evaluations never fetch or build unless the workspace allows it: each
/// refusal names the setting that allows it; with `allowFetch`, the fetch is done.
#[test]
fn fetching_and_building_are_off_unless_allowed() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("data.txt");
    std::fs::write(&file, "hello").expect("write data.txt");
    let fetch = format!("builtins.fetchurl \"file://{}\"", file.display());
    let build = "builtins.readFile (derivation { name = \"x\"; system = \"x86_64-linux\"; \
                 builder = \"/bin/sh\"; })";
    let uri = uri_of("fetching.nix");
    let open = |c: &mut Client| {
        c.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": "{ }"}}),
        )
    };
    let error_of = |c: &mut Client, text: &str| -> String {
        let r = c.request("tvix/evaluate", json!({"uri": uri, "text": text}));
        r["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    let mut c = Client::start(json!({"tvix": {"evalBudgetMs": 5000}}));
    open(&mut c);
    let e = error_of(&mut c, &fetch);
    assert!(
        e.contains("cannot download 'file://") && e.contains("'tvix.evaluation.allowFetch'"),
        "{e}"
    );
    let e = error_of(&mut c, build);
    assert!(
        e.contains("cannot build '/nix/store/")
            && e.contains("-x.drv^out' during evaluation")
            && e.contains("'tvix.evaluation.allowBuild'"),
        "{e}"
    );
    c.shutdown();

    let mut c = Client::start(json!({"tvix": {
        "evalBudgetMs": 5000,
        "evaluation": {"allowFetch": true},
    }}));
    open(&mut c);
    let v = c.result("tvix/evaluate", json!({"uri": uri, "text": fetch}));
    let path = v["value"].as_str().unwrap_or_default();
    assert!(
        path.starts_with("\"/nix/store/") && path.ends_with("-data.txt\""),
        "{v}"
    );
    // Building stays off.
    assert!(error_of(&mut c, build).contains("'tvix.evaluation.allowBuild'"));
    c.shutdown();
}

/// The static busybox the build tests use as builder (`setup.sh`, as `tests/builds.rs`).
const BUSYBOX: &str = "/var/lib/tvix-tests/busybox";

/// A file with derivations whose names carry a fresh nonce: `pkg` builds, `bad` fails.
fn build_file(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    assert!(
        std::path::Path::new(BUSYBOX).join("bin/busybox").exists(),
        "{BUSYBOX} is missing: run setup.sh"
    );
    let nonce = format!(
        "{:x}{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
        std::process::id()
    );
    let text = format!(
        r#"let
  bb = builtins.path {{ path = {BUSYBOX}; name = "busybox"; }};
in {{
  pkg = derivation {{
    name = "lsp-{nonce}"; system = "x86_64-linux"; builder = "${{bb}}/bin/sh";
    args = [ "-c" "echo compiling things; echo ok > $out" ];
  }};
  bad = derivation {{
    name = "lsp-bad-{nonce}"; system = "x86_64-linux"; builder = "${{bb}}/bin/sh";
    args = [ "-c" "echo about to fail; exit 2" ];
  }};
  number = 1;
}}
"#
    );
    let path = dir.join("pkgs.nix");
    std::fs::write(&path, &text).unwrap();
    (path, text)
}

#[test]
fn build_command_and_code_lens() {
    let dir = tempfile::tempdir().unwrap();
    let (path, text) = build_file(dir.path());
    let uri = format!("file://{}", path.display());
    let store = format!("local://{}", dir.path().join("store").display());
    let env = [("TVIX_STORE", store.as_str())];

    // Off by default: the lens says so, the command refuses naming the setting.
    let mut c = Client::start_with_env(json!({}), &env);
    let commands = &c.capabilities["executeCommandProvider"]["commands"];
    assert_eq!(commands, &json!(["tvix/build"]));
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": text}}),
    );
    let lenses = c.result(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": uri}}),
    );
    let lenses = lenses.as_array().unwrap();
    assert_eq!(lenses.len(), 2, "{lenses:?}");
    assert_eq!(lenses[0]["command"]["command"], "tvix/build");
    assert_eq!(lenses[0]["command"]["arguments"][0]["attrPath"], "pkg");
    assert_eq!(lenses[1]["command"]["arguments"][0]["attrPath"], "bad");
    assert!(
        lenses[0]["command"]["title"]
            .as_str()
            .unwrap()
            .contains("disabled: set tvix.build.enable"),
        "{lenses:?}"
    );
    let r = c.result(
        "workspace/executeCommand",
        json!({"command": "tvix/build", "arguments": [{"uri": uri, "attrPath": "pkg"}]}),
    );
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("tvix.build.enable"),
        "{r}"
    );
    c.shutdown();

    // Enabled: the build runs with progress and its outputs come back.
    let mut c = Client::start_with_env(json!({"tvix": {"build": {"enable": true}}}), &env);
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": text}}),
    );
    let lenses = c.result(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": uri}}),
    );
    assert_eq!(lenses[0]["command"]["title"], "build", "{lenses}");
    let r = c.result(
        "workspace/executeCommand",
        json!({"command": "tvix/build", "arguments": [lenses[0]["command"]["arguments"][0]]}),
    );
    assert_eq!(r["ok"], true, "{r}");
    let out = r["outputs"]["out"].as_str().unwrap().to_string();
    assert!(
        out.starts_with("/nix/store/") && out.contains("-lsp-"),
        "{r}"
    );
    let created = c.take("window/workDoneProgress/create");
    assert_eq!(created.len(), 1, "{created:?}");
    let token = created[0]["params"]["token"].clone();
    let progress: Vec<Value> = c
        .take("$/progress")
        .into_iter()
        .filter(|m| m["params"]["token"] == token)
        .map(|m| m["params"]["value"].clone())
        .collect();
    assert_eq!(progress.first().unwrap()["kind"], "begin", "{progress:?}");
    assert!(
        progress.first().unwrap()["title"]
            .as_str()
            .unwrap()
            .contains("pkg"),
        "{progress:?}"
    );
    assert_eq!(progress.last().unwrap()["kind"], "end", "{progress:?}");
    let reports: Vec<String> = progress
        .iter()
        .filter(|v| v["kind"] == "report")
        .map(|v| v["message"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        reports
            .iter()
            .any(|m| m.contains("0/1 built, building lsp-")),
        "{reports:?}"
    );
    assert!(
        reports.iter().any(|m| m.starts_with("1/1 built")),
        "{reports:?}"
    );
    let shown = c.take("window/showMessage");
    assert!(
        shown
            .iter()
            .any(|m| m["params"]["message"] == format!("built: out -> {out}")),
        "{shown:?}"
    );

    // By position (on the binding's name): the same output, already valid.
    let pos = {
        let offset = text.find("pkg =").unwrap() + 1;
        let line = text[..offset].matches('\n').count();
        let col = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1);
        json!({"line": line, "character": col})
    };
    let r = c.result(
        "workspace/executeCommand",
        json!({"command": "tvix/build", "arguments": [{"uri": uri, "position": pos}]}),
    );
    assert_eq!(r["outputs"]["out"], out.as_str(), "{r}");

    // A failing build and a value that is no derivation are errors, and shown.
    let r = c.result(
        "workspace/executeCommand",
        json!({"command": "tvix/build", "arguments": [{"uri": uri, "attrPath": "bad"}]}),
    );
    assert_eq!(r["ok"], false, "{r}");
    let msg = r["message"].as_str().unwrap();
    assert!(msg.contains("failed with exit code 2"), "{r}");
    assert!(msg.contains("about to fail"), "the log tail: {r}");
    let r = c.result(
        "workspace/executeCommand",
        json!({"command": "tvix/build", "arguments": [{"uri": uri, "attrPath": "number"}]}),
    );
    assert_eq!(
        r["message"], "'number' does not evaluate to a derivation",
        "{r}"
    );
    let shown = c.take("window/showMessage");
    assert!(shown.iter().any(|m| m["params"]["type"] == 1), "{shown:?}");
    c.shutdown();
}

/// An ordinary module file and no settings at all: with `nixpkgs` on `NIX_PATH`, `lib` is
/// nixpkgs' `lib` (completion, hover with the doc comment, definition through lib's
/// `inherit` to where the function is written); without it the server says once that it
/// has no `lib`.
#[test]
fn lib_defaults_to_nixpkgs_lib_from_the_search_path() {
    let dir = tempfile::tempdir().unwrap();
    let nixpkgs = dir.path().join("nixpkgs");
    std::fs::create_dir(&nixpkgs).unwrap();
    let lib = format!("{}/lib", nixpkgs_lib());
    std::os::unix::fs::symlink(&lib, nixpkgs.join("lib")).unwrap();
    let nix_path = format!("nixpkgs={}", nixpkgs.display());
    let fx = Fixture::load("plain_module.nix");
    let mut c = Client::start_with_env(Value::Null, &[("NIX_PATH", &nix_path)]);
    let uri = open(&mut c, "plain_module.nix", &fx);
    let got = c.result("textDocument/completion", at(&uri, fx.pos("dot")));
    let names = labels(&got);
    assert!(names.iter().any(|n| n == "toUpper"), "{names:?}");
    let hover = c.result("textDocument/hover", at(&uri, fx.pos("up")));
    let text = hover_text(&hover);
    assert!(text.contains("Converts an ASCII string"), "{text}");
    let def = c.result("textDocument/definition", at(&uri, fx.pos("up")));
    let def = if def.is_array() { def[0].clone() } else { def };
    assert!(
        def["uri"]
            .as_str()
            .unwrap_or("")
            .ends_with("/lib/strings.nix"),
        "{def}"
    );
    let messages = c.take("window/showMessage");
    assert!(messages.is_empty(), "{messages:?}");
    c.shutdown();

    // No nixpkgs anywhere: one message saying so, and nothing pretends to know `lib`.
    let mut c = Client::start(Value::Null);
    let uri = open(&mut c, "plain_module.nix", &fx);
    let _ = c.result("textDocument/hover", at(&uri, fx.pos("up")));
    let messages = c.messages_until("window/showMessage", "<nixpkgs/lib>");
    assert_eq!(messages.len(), 1, "{messages:?}");
    // Said once: not again for the next request.
    let _ = c.result("textDocument/hover", at(&uri, fx.pos("up")));
    let _ = c.result("tvix/evaluate", json!({"uri": uri, "text": "1"}));
    assert!(c.take("window/showMessage").is_empty());
    c.shutdown();
}

/// Opens `text` as the document at `path` (which need not exist) and returns its URI.
fn open_text(c: &mut Client, path: &std::path::Path, text: &str) -> String {
    let uri = format!("file://{}", path.display());
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": text}}),
    );
    uri
}

/// Without settings, `lib` comes from around the file: a `lib` directory above it (a
/// nixpkgs checkout), or the nixpkgs input its flake's `flake.lock` pins when that is
/// there. The server logs once what it used, and says once why a flake's nixpkgs could
/// not be used.
#[test]
fn lib_comes_from_the_flake_input_or_a_lib_directory_above_the_file() {
    let fx = Fixture::load("plain_module.nix");
    let lib = format!("{}/lib", nixpkgs_lib());

    // A nixpkgs checkout: `lib` next to the directory of the file.
    let checkout = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&lib, checkout.path().join("lib")).unwrap();
    std::fs::create_dir(checkout.path().join("pkgs")).unwrap();
    let file = checkout.path().join("pkgs/module.nix");
    let mut c = Client::start(Value::Null);
    let uri = open_text(&mut c, &file, &fx.text);
    let names = labels(&c.result("textDocument/completion", at(&uri, fx.pos("dot"))));
    assert!(names.iter().any(|n| n == "toUpper"), "{names:?}");
    let lib_dir = checkout.path().join("lib").display().to_string();
    let logs = c.messages_until("window/logMessage", &lib_dir);
    assert_eq!(used_lib(&logs).len(), 1, "{logs:?}");
    assert!(c.take("window/showMessage").is_empty());
    c.shutdown();

    // A flake whose nixpkgs is a path input: its `lib`, said once for two files.
    let flake = tempfile::tempdir().unwrap();
    std::fs::write(flake.path().join("flake.nix"), "{ outputs = _: { }; }").unwrap();
    std::fs::write(
        flake.path().join("flake.lock"),
        json!({"nodes": {
            "nixpkgs": {"locked": {"type": "path", "path": nixpkgs_lib(), "narHash": "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}},
            "root": {"inputs": {"nixpkgs": "nixpkgs"}}},
          "root": "root", "version": 7})
        .to_string(),
    )
    .unwrap();
    let mut c = Client::start(Value::Null);
    for name in ["a.nix", "b.nix"] {
        let uri = open_text(&mut c, &flake.path().join(name), &fx.text);
        let names = labels(&c.result("textDocument/completion", at(&uri, fx.pos("dot"))));
        assert!(names.iter().any(|n| n == "toUpper"), "{names:?}");
    }
    let logs = c.messages_until("window/logMessage", "flake.lock");
    assert_eq!(used_lib(&logs).len(), 1, "{logs:?}");
    c.shutdown();

    // A flake whose nixpkgs is not in the store (a GitHub input never fetched): said once,
    // with the lib directory above used instead.
    let nested = checkout.path().join("pkgs/app");
    std::fs::create_dir(&nested).unwrap();
    std::fs::write(nested.join("flake.nix"), "{ outputs = _: { }; }").unwrap();
    std::fs::write(
        nested.join("flake.lock"),
        json!({"nodes": {
            "nixpkgs": {"locked": {"type": "github", "owner": "NixOS", "repo": "nixpkgs",
                "rev": "0000000000000000000000000000000000000000",
                "narHash": "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}},
            "root": {"inputs": {"nixpkgs": "nixpkgs"}}},
          "root": "root", "version": 7})
        .to_string(),
    )
    .unwrap();
    let mut c = Client::start(Value::Null);
    let uri = open_text(&mut c, &nested.join("default.nix"), &fx.text);
    let names = labels(&c.result("textDocument/completion", at(&uri, fx.pos("dot"))));
    assert!(names.iter().any(|n| n == "toUpper"), "{names:?}");
    let shown = c.messages_until("window/showMessage", "is not in the store");
    assert_eq!(shown.len(), 1, "{shown:?}");
    let _ = c.result("textDocument/hover", at(&uri, fx.pos("up")));
    assert!(c.take("window/showMessage").is_empty());
    c.shutdown();
}

/// The messages among `logs` that say which `lib` the server uses.
fn used_lib(logs: &[Value]) -> Vec<&str> {
    logs.iter()
        .filter_map(|m| m["params"]["message"].as_str())
        .filter(|m| m.contains("`lib` is"))
        .collect()
}

/// The first line of what `nix-instantiate --eval -E expr` prints on failure, without
/// `error: `.
fn nix_error(expr: &str) -> String {
    let out = std::process::Command::new("nix-instantiate")
        .args(["--eval", "-E", expr])
        .env("NIX_REMOTE", "dummy://")
        .output()
        .expect("nix-instantiate (scripts/setup.sh installs it)");
    assert!(!out.status.success(), "nix-instantiate accepted {expr}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    stderr
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string()
}

/// Errors of the value of an open file are diagnostics where they happen, with Nix's
/// message (compared with nix-instantiate). Attributes are lazy: a `throw` written in an
/// attribute is not an error of the file (`nix-instantiate --eval` succeeds on it), while
/// a type error in one still is reported.
#[test]
fn errors_of_a_file_s_value_are_diagnostics_but_a_lazy_throw_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Client::start(json!({"tvix": {"evalBudgetMs": 5000}}));
    for (name, text, character) in [
        ("add.nix", "let x = 1 + \"a\"; in x", 8),
        ("assert.nix", "assert false; 1", 0),
    ] {
        let uri = open_text(&mut c, &dir.path().join(name), text);
        let d = c.diagnostics_until(&uri, |d| d.iter().any(|x| x["code"] == "eval"));
        let e = d.iter().find(|x| x["code"] == "eval").unwrap();
        let message = e["message"].as_str().unwrap();
        let want = format!("error: {}", nix_error(text));
        assert_eq!(message.lines().next(), Some(want.as_str()), "{e}");
        assert_eq!(
            e["range"]["start"],
            json!({"line": 0, "character": character}),
            "{e}"
        );
    }

    let both = "{ a = throw \"no\"; b = 1 + \"x\"; }";
    let uri = open_text(&mut c, &dir.path().join("both.nix"), both);
    let d = c.diagnostics_until(&uri, |d| d.iter().any(|x| x["code"] == "eval"));
    let evals: Vec<&Value> = d.iter().filter(|x| x["code"] == "eval").collect();
    assert_eq!(evals.len(), 1, "{d:?}");
    assert!(
        evals[0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot add a string to an integer"),
        "{d:?}"
    );

    let lazy = "{ a = throw \"no\"; }";
    let nix = std::process::Command::new("nix-instantiate")
        .args(["--eval", "-E", lazy])
        .output()
        .expect("nix-instantiate");
    assert!(nix.status.success());
    let uri = open_text(&mut c, &dir.path().join("lazy.nix"), lazy);
    // The first publication is the static one; the second comes after the evaluation.
    let published = std::cell::Cell::new(0);
    let d = c.diagnostics_until(&uri, |_| {
        published.set(published.get() + 1);
        published.get() == 2
    });
    assert!(d.iter().all(|x| x["code"] != "eval"), "{d:?}");
    c.shutdown();
}
