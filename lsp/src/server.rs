//! The language server: LSP requests dispatched to the static features (answered at once from
//! the open document) and to the evaluation-backed ones (sent to the worker with a budget).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};
use tvix_eval::lower::Globals;

use crate::build::{BuildFactory, ENABLE_SETTING};
use crate::config::Settings;
use crate::document::Document;
use crate::guard;
use crate::worker::{EvaluatorFactory, Worker};
use crate::{
    actions, build, completion, convert, diagnostics, evaluate, hover, lens, lib_source, links,
    navigation, outline, semantic_tokens,
};

/// The names of the global scope, shared by every request.
pub struct GlobalScope {
    /// For lowering (the evaluator's front end).
    pub lowering: Globals,
    /// For completion, in the evaluator's order.
    pub names: Vec<String>,
    /// The same, for analysis to look names up in (without interning every name of every
    /// document: the interner never frees).
    pub name_set: std::collections::HashSet<String>,
}

/// The server: its state, shared with the tasks that evaluate files in the background.
pub struct Server(Arc<State>);

impl std::ops::Deref for Server {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0
    }
}

/// The server's state.
pub struct State {
    client: Client,
    docs: RwLock<HashMap<Uri, Arc<Document>>>,
    settings: RwLock<Settings>,
    worker: Worker,
    globals: Arc<GlobalScope>,
    /// The latest evaluation diagnostics of each document, merged with the static ones.
    eval_diagnostics: Mutex<HashMap<Uri, (i32, Vec<Diagnostic>)>>,
    /// The workspace folder, against which a relative `entryFile` is resolved.
    root: RwLock<Option<std::path::PathBuf>>,
    /// Makes what `tvix/build` needs, if the binary allows building.
    builds: Option<BuildFactory>,
    /// Numbers the builds' progress tokens.
    next_build: std::sync::atomic::AtomicU64,
    /// Whether the search path (`NIX_PATH`, `tvix.searchPath`, `-I`) has `<nixpkgs/lib>`.
    search_path_lib: std::sync::atomic::AtomicBool,
    /// The default `lib` of the files in a directory (see [`State::settings_for`]).
    libs: Mutex<HashMap<std::path::PathBuf, Option<String>>>,
    /// What the server said about `lib` (each thing is said once).
    told: Mutex<std::collections::HashSet<String>>,
}

/// The argument `lib` of module files and other functions when the settings give none, no
/// flake or nixpkgs checkout around the file gives one, and the search path has nixpkgs.
const DEFAULT_LIB: &str = "import <nixpkgs/lib>";

/// The command that builds a derivation (`workspace/executeCommand`).
pub const BUILD_COMMAND: &str = "tvix/build";

/// Arguments of `tvix/build`: a file and the attribute path of the derivation in its value,
/// or a position in the file (the binding whose name is there).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildParams {
    /// The file.
    pub uri: Uri,
    /// `a.b.c`; the file's value itself when empty.
    #[serde(default)]
    pub attr_path: Option<String>,
    /// A position on the name of a binding, instead of `attr_path`.
    #[serde(default)]
    pub position: Option<Position>,
}

/// Parameters of the custom `tvix/evaluate` request.
#[derive(Deserialize)]
pub struct EvaluateParams {
    /// The document the expression is evaluated in.
    pub uri: Uri,
    /// The expression.
    pub text: String,
    /// Where it stands in the document (its scope is used), if it is a part of it.
    pub range: Option<Range>,
}

/// Result of `tvix/evaluate`.
#[derive(Serialize)]
pub struct EvaluateResult {
    /// The printed value.
    pub value: String,
}

impl Server {
    /// A server talking to `client`.
    pub fn new(client: Client, factory: EvaluatorFactory, builds: Option<BuildFactory>) -> Server {
        let ev = factory(&Settings::default());
        let names: Vec<String> = ev.global_names().map(|s| s.as_str().to_string()).collect();
        let mut lowering = Globals::default();
        for (i, s) in ev.global_names().enumerate() {
            lowering.insert(s, i as u32);
        }
        drop(ev);
        Server(Arc::new(State {
            client,
            docs: RwLock::new(HashMap::new()),
            settings: RwLock::new(Settings::default()),
            worker: Worker::spawn(factory, Settings::default()),
            globals: Arc::new(GlobalScope {
                lowering,
                name_set: names.iter().cloned().collect(),
                names,
            }),
            eval_diagnostics: Mutex::new(HashMap::new()),
            root: RwLock::new(None),
            builds,
            next_build: std::sync::atomic::AtomicU64::new(0),
            search_path_lib: std::sync::atomic::AtomicBool::new(false),
            libs: Mutex::new(HashMap::new()),
            told: Mutex::new(std::collections::HashSet::new()),
        }))
    }

    /// Publishes the static diagnostics now and, in the background, the evaluation's after
    /// a pause in typing (notifications are handled in order: waiting here would hold up
    /// every request behind them).
    async fn refresh(&self, uri: Uri, doc: Arc<Document>) {
        // Large files are lowered after the pause in typing, not on every keystroke.
        let lowered = doc.text.len() <= INLINE_LOWERING_MAX;
        let statics = self.static_diagnostics(&uri, &doc, lowered);
        let mut all = statics.clone();
        if let Some((v, d)) = self.eval_diagnostics.lock().expect("lock").get(&uri) {
            if *v == doc.version {
                all.extend(d.iter().cloned());
            }
        }
        self.client
            .publish_diagnostics(uri.clone(), all, Some(doc.version))
            .await;
        // Evaluating a file that does not even lower would only repeat its first error.
        if has_error(&statics) {
            return;
        }
        let state = self.0.clone();
        tokio::spawn(async move { state.evaluate_later(uri, doc, statics, lowered).await });
    }
}

impl State {
    fn doc(&self, uri: &Uri) -> Result<Arc<Document>> {
        self.docs
            .read()
            .expect("documents lock")
            .get(uri)
            .cloned()
            .ok_or_else(|| Error::invalid_params(format!("document not open: {}", uri.as_str())))
    }

    fn settings(&self) -> Settings {
        self.settings.read().expect("settings lock").clone()
    }

    fn budget(&self) -> Duration {
        Duration::from_millis(self.settings().eval_budget_ms.max(1))
    }

    async fn apply_settings(&self, value: &serde_json::Value) {
        let (settings, error) = Settings::from_json(value);
        if let Some(e) = error {
            self.client.show_message(MessageType::WARNING, e).await;
        }
        let given = settings.clone();
        let found_lib = self
            .worker
            .run(Duration::from_secs(5), move |s| {
                s.settings = given;
                s.reset();
                // The last resort of a default `lib`: nixpkgs' on the search path.
                matches!(
                    evaluate::eval_probe(
                        s,
                        "builtins.pathExists <nixpkgs/lib>".to_string(),
                        std::path::Path::new("/"),
                    ),
                    Ok(tvix_eval::Value::Bool(tvix_eval::value::NixBool::TRUE))
                )
            })
            .await
            .unwrap_or(false);
        self.search_path_lib
            .store(found_lib, std::sync::atomic::Ordering::Relaxed);
        self.libs.lock().expect("libs lock").clear();
        *self.settings.write().expect("settings lock") = settings;
    }

    /// The settings for the document `uri`: the workspace's, with `lib` filled in when they
    /// give none. It is the `lib` of the nixpkgs the flake around the file pins (when that
    /// is in the store), else of the nixpkgs checkout the file is in, else
    /// `import <nixpkgs/lib>` when the search path has it. What was used, or that nothing
    /// was found, is said once.
    async fn settings_for(&self, uri: &Uri) -> Settings {
        let mut settings = self.settings();
        if settings.args.contains_key("lib") {
            return settings;
        }
        let dir = convert::base_dir(uri);
        let cached = self.libs.lock().expect("libs lock").get(&dir).cloned();
        let lib = match cached {
            Some(lib) => lib,
            None => {
                let lib = self.find_lib(dir.clone()).await;
                self.libs
                    .lock()
                    .expect("libs lock")
                    .insert(dir, lib.clone());
                lib
            }
        };
        if let Some(lib) = lib {
            settings.args.insert("lib".to_string(), lib);
        }
        settings
    }

    /// Looks for the default `lib` of the files in `dir` and says what it found, once.
    async fn find_lib(&self, dir: std::path::PathBuf) -> Option<String> {
        let search = self
            .worker
            .run(Duration::from_secs(5), move |s| {
                let store_dir = match evaluate::eval_probe(
                    s,
                    "builtins.storeDir".to_string(),
                    std::path::Path::new("/"),
                ) {
                    Ok(tvix_eval::Value::String(d)) => d.to_str_lossy().into_owned(),
                    _ => "/nix/store".to_string(),
                };
                let mut exists = |p: &std::path::Path| {
                    let probe = format!(
                        "builtins.pathExists {}",
                        crate::build::nix_string(&p.to_string_lossy())
                    );
                    matches!(
                        evaluate::eval_probe(s, probe, std::path::Path::new("/")),
                        Ok(tvix_eval::Value::Bool(tvix_eval::value::NixBool::TRUE))
                    )
                };
                lib_source::search(&dir, &store_dir, &mut exists)
            })
            .await
            .unwrap_or_default();
        if let Some(problem) = &search.flake_problem {
            self.say_once(MessageType::WARNING, format!("tvix lsp: {problem}"))
                .await;
        }
        match &search.found {
            Some(found) => {
                self.log_once(format!("tvix lsp: {}", found.describe()))
                    .await;
                Some(format!(
                    "import {}",
                    crate::build::nix_string(&found.lib().to_string_lossy())
                ))
            }
            None if self
                .search_path_lib
                .load(std::sync::atomic::Ordering::Relaxed) =>
            {
                self.log_once(format!(
                    "tvix lsp: `lib` is {DEFAULT_LIB} (nixpkgs on the search path)"
                ))
                .await;
                Some(DEFAULT_LIB.to_string())
            }
            None => {
                self.say_once(
                    MessageType::INFO,
                    "tvix lsp: no flake pinning nixpkgs and no nixpkgs lib directory above \
                     the file, <nixpkgs/lib> is not on the search path (NIX_PATH, \
                     tvix.searchPath), and the setting tvix.args.lib is not set: a \
                     function's `lib` argument has no value, so completion and hover know \
                     nothing about it"
                        .to_string(),
                )
                .await;
                None
            }
        }
    }

    /// Shows `message` unless it was said before.
    async fn say_once(&self, typ: MessageType, message: String) {
        if self.told.lock().expect("told lock").insert(message.clone()) {
            self.client.show_message(typ, message).await;
        }
    }

    /// Logs `message` (`window/logMessage`) unless it was said before.
    async fn log_once(&self, message: String) {
        if self.told.lock().expect("told lock").insert(message.clone()) {
            self.client.log_message(MessageType::INFO, message).await;
        }
    }

    fn open(&self, uri: Uri, text: String, version: i32) -> Arc<Document> {
        let globals = self.globals.clone();
        let is_global = move |n: &str| globals.name_set.contains(n);
        let doc = Arc::new(Document::new(text, version, &is_global));
        self.docs
            .write()
            .expect("documents lock")
            .insert(uri, doc.clone());
        doc
    }

    /// Evaluates the file once typing has paused and publishes its evaluation error.
    async fn evaluate_later(
        &self,
        uri: Uri,
        doc: Arc<Document>,
        mut statics: Vec<Diagnostic>,
        lowered: bool,
    ) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let current = self
            .docs
            .read()
            .expect("documents lock")
            .get(&uri)
            .map(|d| d.version);
        if current != Some(doc.version) {
            return;
        }
        if !lowered {
            statics = self.static_diagnostics(&uri, &doc, true);
            if has_error(&statics) {
                self.client
                    .publish_diagnostics(uri, statics, Some(doc.version))
                    .await;
                return;
            }
        }
        let mut eval = self.evaluation_diagnostics(&uri, &doc).await;
        eval.extend(self.with_shadow_hints(&uri, &doc).await);
        self.eval_diagnostics
            .lock()
            .expect("lock")
            .insert(uri.clone(), (doc.version, eval.clone()));
        let current = self
            .docs
            .read()
            .expect("documents lock")
            .get(&uri)
            .map(|d| d.version);
        if current == Some(doc.version) {
            let mut all = statics;
            all.extend(eval);
            self.client
                .publish_diagnostics(uri, all, Some(doc.version))
                .await;
        }
    }

    /// The static diagnostics; with `lowering`, also the evaluator front end's error (which
    /// costs a second parse and the lowering of the whole file).
    fn static_diagnostics(&self, uri: &Uri, doc: &Document, lowering: bool) -> Vec<Diagnostic> {
        let name = convert::path_of(uri)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| uri.as_str().to_string());
        let mut findings = diagnostics::static_findings(
            &name,
            &doc.root(),
            &doc.text,
            &doc.parse_errors,
            &doc.analysis,
        );
        if lowering {
            let error = diagnostics::lowering_error(
                &name,
                &doc.text,
                convert::base_dir(uri),
                &self.globals.lowering,
            );
            diagnostics::merge(&mut findings, error);
        }
        findings
            .iter()
            .map(|f| convert::diagnostic(doc, f))
            .collect()
    }

    /// Hints for names used inside a `with` whose namespace has them too, while the name
    /// means a lexical binding or a builtin (`with` never shadows those).
    async fn with_shadow_hints(&self, uri: &Uri, doc: &Document) -> Vec<Diagnostic> {
        const MAX_WITHS: usize = 20;
        let settings = self.settings_for(uri).await;
        let candidates = crate::targets::with_shadow_candidates(
            &doc.root(),
            &doc.analysis,
            &settings.args,
            MAX_WITHS,
        );
        if candidates.is_empty() {
            return Vec::new();
        }
        let base = convert::base_dir(uri);
        let probes: Vec<String> = candidates.iter().map(|(p, _)| p.source.clone()).collect();
        let names = self
            .worker
            .run(self.budget(), move |s| {
                probes
                    .into_iter()
                    .map(|source| match evaluate::eval_probe(s, source, &base) {
                        Ok(v) => evaluate::attributes(s.evaluator(), &v)
                            .into_iter()
                            .map(|a| a.name)
                            .collect::<std::collections::HashSet<_>>(),
                        Err(_) => Default::default(),
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
        let mut out = Vec::new();
        for ((probe, cands), names) in candidates.iter().zip(names) {
            for c in cands.iter().filter(|c| names.contains(&c.name)) {
                out.push(Diagnostic {
                    range: doc.range(c.range),
                    severity: Some(DiagnosticSeverity::HINT),
                    code: Some(NumberOrString::String("with-shadowed".to_string())),
                    source: Some("tvix eval".to_string()),
                    message: format!(
                        "'{}' refers to {}, not to the attribute of `with {};`: \
                         `with` never shadows names bound lexically or built in",
                        c.name, c.refers_to, probe.label
                    ),
                    ..Diagnostic::default()
                });
            }
        }
        out
    }

    async fn evaluation_diagnostics(&self, uri: &Uri, doc: &Document) -> Vec<Diagnostic> {
        let Some(path) = convert::path_of(uri) else {
            return Vec::new();
        };
        let settings = self.settings_for(uri).await;
        let entry = settings
            .entry_file
            .as_ref()
            .map(|e| {
                let root = self.root.read().expect("root lock").clone();
                root.unwrap_or_else(|| convert::base_dir(uri)).join(e)
            })
            .filter(|e| e != &path);
        let call = match &entry {
            Some(e) => std::fs::read_to_string(e)
                .ok()
                .and_then(|text| function_argument(&rnix::Root::parse(&text).syntax(), &settings)),
            None => function_argument(&doc.root(), &settings),
        };
        let text = doc.text.clone();
        let result = self
            .worker
            .run(self.budget() * 3, move |s| {
                evaluate::file_errors(s, &path, &text, call, entry.as_deref())
            })
            .await;
        let Ok(Some(d)) = result else {
            return Vec::new();
        };
        let range = d
            .range
            .map(|(a, b)| {
                doc.range(rnix::TextRange::new(
                    (a as u32).into(),
                    (b.max(a) as u32).into(),
                ))
            })
            .unwrap_or_default();
        vec![Diagnostic {
            range,
            severity: Some(DiagnosticSeverity::ERROR),
            code: Some(NumberOrString::String("eval".to_string())),
            source: Some("tvix eval".to_string()),
            message: d.message,
            related_information: convert::related(&d.related),
            ..Diagnostic::default()
        }]
    }

    /// The custom `tvix/evaluate` request: evaluates `text` in the scope of `range` (or at the
    /// top of the file) and prints the value deeply.
    pub async fn evaluate_request(&self, params: EvaluateParams) -> Result<EvaluateResult> {
        let base = convert::base_dir(&params.uri);
        let settings = self.settings_for(&params.uri).await;
        let args = settings.args.clone();
        let doc = self.docs.read().expect("lock").get(&params.uri).cloned();
        // Without a range, a piece of the document (a selection) is evaluated where it
        // stands, so the names around it are in scope; the whole document stands alone.
        let found = doc.as_ref().and_then(|doc| {
            let text = params.text.trim();
            if params.range.is_some() || text.is_empty() || text == doc.text.trim() {
                return None;
            }
            let at = doc.text.find(text)?;
            Some(rnix::TextRange::new(
                (at as u32).into(),
                ((at + text.len()) as u32).into(),
            ))
        });
        let source = match (doc, params.range) {
            (Some(doc), range) if range.is_some() || found.is_some() => {
                let root = doc.root();
                let r = match range {
                    Some(range) => doc.lines.text_range(&doc.text, range),
                    None => found.expect("checked"),
                };
                // An empty range stands for the token at the cursor, so its scopes count.
                let element = if r.is_empty() {
                    crate::tree::token_at_offset(&root, r.start().into())
                        .right_biased()
                        .map(rowan::NodeOrToken::Token)
                } else {
                    Some(root.covering_element(r))
                };
                let node = match element {
                    Some(rowan::NodeOrToken::Node(n)) => n,
                    Some(rowan::NodeOrToken::Token(t)) => t.parent().unwrap_or(root.clone()),
                    None => root.clone(),
                };
                crate::probe::probe_source(&node, &params.text, &args)
            }
            _ => params.text.clone(),
        };
        // A whole file that is a function is called with the workspace arguments, as
        // `tvix eval` calls it with `--arg`s.
        let call = function_argument(&rnix::Root::parse(&params.text).syntax(), &settings);
        let result = self
            .worker
            .run(self.budget() * 10, move |s| {
                let v = evaluate::eval_probe(s, source, &base).and_then(|v| match (&v, call) {
                    (tvix_eval::Value::Lambda(_), Some(arg)) => {
                        let arg = evaluate::eval_probe(s, arg, &base)?;
                        s.evaluator().call(v, arg, None)
                    }
                    _ => Ok(v),
                });
                let ev = s.evaluator();
                match v.and_then(|v| ev.force_deep(v)) {
                    Ok(v) => Ok(tvix_eval::value::print::print_value(&v)),
                    Err(e) => Err(evaluate::render(ev, &e)),
                }
            })
            .await
            .map_err(|e| Error {
                code: ErrorCode::ServerError(1),
                message: e.to_string().into(),
                data: None,
            })?;
        match result {
            Ok(value) => Ok(EvaluateResult { value }),
            Err(message) => Err(Error {
                code: ErrorCode::ServerError(2),
                message: message.into(),
                data: None,
            }),
        }
    }
}

/// Files up to this size (bytes) get the evaluator front end's diagnostics on every change.
const INLINE_LOWERING_MAX: usize = 256 * 1024;

fn has_error(diagnostics: &[Diagnostic]) -> bool {
    diagnostics
        .iter()
        .any(|d| d.severity == Some(DiagnosticSeverity::ERROR))
}

/// The argument a file that is a function is called with: the workspace's `args`.
fn function_argument(root: &rnix::SyntaxNode, settings: &Settings) -> Option<String> {
    match <rnix::ast::Root as rowan::ast::AstNode>::cast(root.clone())?.expr()? {
        rnix::ast::Expr::Lambda(l) => Some(crate::probe::argument(&l.param()?, &settings.args)),
        _ => None,
    }
}

fn offset_of(doc: &Document, pos: Position) -> usize {
    doc.offset(pos)
}

impl LanguageServer for Server {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        #[allow(deprecated)]
        let root = params
            .workspace_folders
            .as_ref()
            .and_then(|f| f.first())
            .map(|f| f.uri.clone())
            .or_else(|| params.root_uri.clone());
        *self.root.write().expect("root lock") = root.as_ref().and_then(convert::path_of);
        // Settings or none: the defaults (`lib`) are worked out either way.
        let opts = params
            .initialization_options
            .clone()
            .unwrap_or(serde_json::Value::Null);
        self.apply_settings(&opts).await;
        Ok(InitializeResult {
            server_info: Some(ServerInfo {
                name: "tvix lsp".to_string(),
                version: Some(env!("CARGO_PKG_VERSION").to_string()),
            }),
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Options(
                    TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(TextDocumentSyncKind::INCREMENTAL),
                        save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                        ..TextDocumentSyncOptions::default()
                    },
                )),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(vec![".".to_string()]),
                    resolve_provider: Some(true),
                    ..CompletionOptions::default()
                }),
                definition_provider: Some(OneOf::Left(true)),
                references_provider: Some(OneOf::Left(true)),
                document_highlight_provider: Some(OneOf::Left(true)),
                rename_provider: Some(OneOf::Right(RenameOptions {
                    prepare_provider: Some(true),
                    work_done_progress_options: WorkDoneProgressOptions::default(),
                })),
                document_symbol_provider: Some(OneOf::Left(true)),
                folding_range_provider: Some(FoldingRangeProviderCapability::Simple(true)),
                selection_range_provider: Some(SelectionRangeProviderCapability::Simple(true)),
                semantic_tokens_provider: Some(
                    SemanticTokensServerCapabilities::SemanticTokensOptions(
                        SemanticTokensOptions {
                            legend: semantic_tokens::legend(),
                            full: Some(SemanticTokensFullOptions::Bool(true)),
                            range: None,
                            work_done_progress_options: WorkDoneProgressOptions::default(),
                        },
                    ),
                ),
                document_link_provider: Some(DocumentLinkOptions {
                    resolve_provider: Some(false),
                    work_done_progress_options: WorkDoneProgressOptions::default(),
                }),
                document_formatting_provider: Some(OneOf::Left(true)),
                code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
                inlay_hint_provider: Some(OneOf::Left(true)),
                code_lens_provider: Some(CodeLensOptions {
                    resolve_provider: Some(false),
                }),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: vec![BUILD_COMMAND.to_string()],
                    work_done_progress_options: WorkDoneProgressOptions::default(),
                }),
                ..ServerCapabilities::default()
            },
            ..InitializeResult::default()
        })
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        guard::notification(async move {
            let d = params.text_document;
            let doc = self.open(d.uri.clone(), d.text, d.version);
            self.refresh(d.uri, doc).await;
        })
        .await
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        guard::notification(async move {
            let uri = params.text_document.uri;
            let Ok(old) = self.doc(&uri) else { return };
            let text = old.apply_changes(params.content_changes);
            let doc = self.open(uri.clone(), text, params.text_document.version);
            self.refresh(uri, doc).await;
        })
        .await
    }

    async fn did_save(&self, _params: DidSaveTextDocumentParams) {
        guard::notification(async move {
            // Other files may import the saved one: start from a fresh import cache.
            let _ = self.worker.run(Duration::from_secs(5), |s| s.reset()).await;
        })
        .await
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        guard::notification(async move {
            let uri = params.text_document.uri;
            self.docs.write().expect("documents lock").remove(&uri);
            self.eval_diagnostics.lock().expect("lock").remove(&uri);
            self.client.publish_diagnostics(uri, Vec::new(), None).await;
        })
        .await
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        guard::notification(async move {
            self.apply_settings(&params.settings).await;
            let docs: Vec<_> = self
                .docs
                .read()
                .expect("lock")
                .iter()
                .map(|(u, d)| (u.clone(), d.clone()))
                .collect();
            for (uri, doc) in docs {
                self.refresh(uri, doc).await;
            }
        })
        .await
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        guard::request(async move {
            let p = params.text_document_position_params;
            let doc = self.doc(&p.text_document.uri)?;
            let offset = offset_of(&doc, p.position);
            let settings = self.settings_for(&p.text_document.uri).await;
            let plan = hover::plan(&doc, offset, &settings, &self.globals.names);
            let contents = hover::run(
                plan,
                &self.worker,
                self.budget(),
                convert::base_dir(&p.text_document.uri),
            )
            .await;
            Ok(contents.map(|(markdown, range)| Hover {
                contents: HoverContents::Markup(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: markdown,
                }),
                range: range.map(|r| doc.range(r)),
            }))
        })
        .await
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        guard::request(async move {
            let p = params.text_document_position;
            let doc = self.doc(&p.text_document.uri)?;
            let offset = offset_of(&doc, p.position);
            let settings = self.settings_for(&p.text_document.uri).await;
            let plan = completion::plan(
                p.text_document.uri.as_str(),
                &doc,
                offset,
                &settings,
                &self.globals.names,
            );
            let items = completion::run(
                plan,
                &doc,
                &self.worker,
                self.budget(),
                convert::base_dir(&p.text_document.uri),
            )
            .await;
            Ok(Some(CompletionResponse::List(CompletionList {
                is_incomplete: false,
                items,
            })))
        })
        .await
    }

    async fn completion_resolve(&self, item: CompletionItem) -> Result<CompletionItem> {
        guard::request(async move {
            let doc = item
                .data
                .as_ref()
                .and_then(|d| d.get("uri")?.as_str()?.parse::<Uri>().ok())
                .and_then(|uri| self.doc(&uri).ok());
            Ok(completion::resolve(item, doc.as_deref()))
        })
        .await
    }

    async fn goto_definition(
        &self,
        params: GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        guard::request(async move {
            let p = params.text_document_position_params;
            let uri = p.text_document.uri;
            let doc = self.doc(&uri)?;
            let offset = offset_of(&doc, p.position);
            if let Some(r) = navigation::definition(&doc.analysis, offset) {
                return Ok(Some(GotoDefinitionResponse::Scalar(Location {
                    uri,
                    range: doc.range(r),
                })));
            }
            let settings = self.settings_for(&uri).await;
            let base = convert::base_dir(&uri);
            // A path literal: the file it names.
            let linked = links::document_links(&doc, Some(&base), &settings.search_path_pairs());
            if let Some((_, path)) = linked
                .iter()
                .find(|(r, _)| r.contains_inclusive((offset as u32).into()))
            {
                if let Some(uri) = Uri::from_file_path(path) {
                    return Ok(Some(GotoDefinitionResponse::Scalar(Location {
                        uri,
                        range: Range::default(),
                    })));
                }
            }
            let found =
                hover::definition(&doc, offset, &settings, &self.worker, self.budget(), base).await;
            let location = match found {
                Some(hover::Place::File(r)) => convert::location(&r),
                Some(hover::Place::Document(start, end)) => Some(Location {
                    uri,
                    range: doc.range(rnix::TextRange::new(
                        (start as u32).into(),
                        (end as u32).into(),
                    )),
                }),
                None => None,
            };
            Ok(location.map(GotoDefinitionResponse::Scalar))
        })
        .await
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        guard::request(async move {
            let p = params.text_document_position;
            let doc = self.doc(&p.text_document.uri)?;
            let offset = offset_of(&doc, p.position);
            let refs =
                navigation::references(&doc.analysis, offset, params.context.include_declaration);
            Ok(Some(
                refs.into_iter()
                    .map(|r| Location {
                        uri: p.text_document.uri.clone(),
                        range: doc.range(r),
                    })
                    .collect(),
            ))
        })
        .await
    }

    async fn document_highlight(
        &self,
        params: DocumentHighlightParams,
    ) -> Result<Option<Vec<DocumentHighlight>>> {
        guard::request(async move {
            let p = params.text_document_position_params;
            let doc = self.doc(&p.text_document.uri)?;
            let offset = offset_of(&doc, p.position);
            Ok(Some(
                navigation::highlights(&doc.analysis, offset)
                    .into_iter()
                    .map(|(r, def)| DocumentHighlight {
                        range: doc.range(r),
                        kind: Some(if def {
                            DocumentHighlightKind::WRITE
                        } else {
                            DocumentHighlightKind::READ
                        }),
                    })
                    .collect(),
            ))
        })
        .await
    }

    async fn prepare_rename(
        &self,
        params: TextDocumentPositionParams,
    ) -> Result<Option<PrepareRenameResponse>> {
        guard::request(async move {
            let doc = self.doc(&params.text_document.uri)?;
            let offset = offset_of(&doc, params.position);
            Ok(navigation::prepare_rename(&doc.analysis, offset)
                .map(|r| PrepareRenameResponse::Range(doc.range(r))))
        })
        .await
    }

    async fn rename(&self, params: RenameParams) -> Result<Option<WorkspaceEdit>> {
        guard::request(async move {
            let p = params.text_document_position;
            let doc = self.doc(&p.text_document.uri)?;
            let offset = offset_of(&doc, p.position);
            let edits = navigation::rename(&doc.root(), &doc.analysis, offset, &params.new_name)
                .map_err(|e| Error::invalid_params(e.to_string()))?;
            let mut changes = HashMap::new();
            changes.insert(p.text_document.uri, convert::edits(&doc, &edits));
            Ok(Some(WorkspaceEdit {
                changes: Some(changes),
                ..WorkspaceEdit::default()
            }))
        })
        .await
    }

    async fn document_symbol(
        &self,
        params: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        guard::request(async move {
            let doc = self.doc(&params.text_document.uri)?;
            Ok(Some(DocumentSymbolResponse::Nested(
                outline::document_symbols(&doc),
            )))
        })
        .await
    }

    async fn folding_range(&self, params: FoldingRangeParams) -> Result<Option<Vec<FoldingRange>>> {
        guard::request(async move {
            let doc = self.doc(&params.text_document.uri)?;
            Ok(Some(outline::folding_ranges(&doc)))
        })
        .await
    }

    async fn selection_range(
        &self,
        params: SelectionRangeParams,
    ) -> Result<Option<Vec<SelectionRange>>> {
        guard::request(async move {
            let doc = self.doc(&params.text_document.uri)?;
            let offsets: Vec<usize> = params.positions.iter().map(|p| doc.offset(*p)).collect();
            Ok(Some(outline::selection_ranges(&doc, &offsets)))
        })
        .await
    }

    async fn semantic_tokens_full(
        &self,
        params: SemanticTokensParams,
    ) -> Result<Option<SemanticTokensResult>> {
        guard::request(async move {
            let doc = self.doc(&params.text_document.uri)?;
            Ok(Some(SemanticTokensResult::Tokens(SemanticTokens {
                result_id: None,
                data: semantic_tokens::semantic_tokens(&doc),
            })))
        })
        .await
    }

    async fn document_link(&self, params: DocumentLinkParams) -> Result<Option<Vec<DocumentLink>>> {
        guard::request(async move {
            let uri = params.text_document.uri;
            let doc = self.doc(&uri)?;
            let base = convert::base_dir(&uri);
            let found =
                links::document_links(&doc, Some(&base), &self.settings().search_path_pairs());
            Ok(Some(
                found
                    .into_iter()
                    .filter_map(|(r, path)| {
                        Some(DocumentLink {
                            range: doc.range(r),
                            target: Some(Uri::from_file_path(&path)?),
                            tooltip: Some(path.display().to_string()),
                            data: None,
                        })
                    })
                    .collect(),
            ))
        })
        .await
    }

    async fn formatting(&self, params: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        guard::request(async move {
            let uri = params.text_document.uri;
            let doc = self.doc(&uri)?;
            match crate::format::format(&doc.text) {
                Ok(None) => Ok(Some(Vec::new())),
                Ok(Some(text)) => Ok(Some(vec![TextEdit {
                    range: doc.range(rnix::TextRange::up_to((doc.text.len() as u32).into())),
                    new_text: text,
                }])),
                Err(e) => Err(Error::invalid_params(e.to_string())),
            }
        })
        .await
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        guard::request(async move {
            let uri = params.text_document.uri;
            let doc = self.doc(&uri)?;
            let range = doc.lines.text_range(&doc.text, params.range);
            let found = actions::actions(&doc.root(), &doc.analysis, range);
            Ok(Some(
                found
                    .into_iter()
                    .map(|a| {
                        let mut changes = HashMap::new();
                        changes.insert(uri.clone(), convert::edits(&doc, &a.edits));
                        CodeActionOrCommand::CodeAction(CodeAction {
                            title: a.title,
                            kind: Some(if a.quick_fix {
                                CodeActionKind::QUICKFIX
                            } else {
                                CodeActionKind::REFACTOR_REWRITE
                            }),
                            edit: Some(WorkspaceEdit {
                                changes: Some(changes),
                                ..WorkspaceEdit::default()
                            }),
                            ..CodeAction::default()
                        })
                    })
                    .collect(),
            ))
        })
        .await
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        let uri = params.text_document.uri;
        let doc = self.doc(&uri)?;
        let enabled = self.settings().build.enable;
        let title = if enabled {
            "build".to_string()
        } else {
            format!("build (disabled: set {ENABLE_SETTING})")
        };
        let lenses = lens::derivation_bindings(&doc.root())
            .into_iter()
            .map(|b| CodeLens {
                range: doc.range(b.range),
                command: Some(tower_lsp_server::ls_types::Command {
                    title: title.clone(),
                    command: BUILD_COMMAND.to_string(),
                    arguments: Some(vec![serde_json::json!({
                        "uri": uri.as_str(),
                        "attrPath": b.path.join("."),
                    })]),
                }),
                data: None,
            })
            .collect();
        Ok(Some(lenses))
    }

    async fn execute_command(
        &self,
        params: ExecuteCommandParams,
    ) -> Result<Option<serde_json::Value>> {
        if params.command != BUILD_COMMAND {
            return Err(Error::invalid_params(format!(
                "unknown command '{}'",
                params.command
            )));
        }
        let arg = params.arguments.into_iter().next().unwrap_or_default();
        let args: BuildParams = serde_json::from_value(arg).map_err(|e| {
            Error::invalid_params(format!(
                "{BUILD_COMMAND} takes {{ uri, attrPath | position }}: {e}"
            ))
        })?;
        Ok(Some(self.build_command(args).await))
    }

    async fn inlay_hint(&self, params: InlayHintParams) -> Result<Option<Vec<InlayHint>>> {
        guard::request(async move {
            let uri = params.text_document.uri;
            let doc = self.doc(&uri)?;
            let range = doc.lines.text_range(&doc.text, params.range);
            let hints = hover::inlay_hints(
                &doc,
                range,
                &self.settings_for(&uri).await,
                &self.worker,
                self.budget(),
                convert::base_dir(&uri),
            )
            .await;
            Ok(Some(
                hints
                    .into_iter()
                    .map(|(offset, label)| InlayHint {
                        position: doc.lines.position(&doc.text, offset),
                        label: InlayHintLabel::String(label),
                        kind: None,
                        text_edits: None,
                        tooltip: None,
                        padding_left: Some(true),
                        padding_right: None,
                        data: None,
                    })
                    .collect(),
            ))
        })
        .await
    }
}

impl State {
    /// Runs `tvix/build`: the answer is `{ ok, message, outputs? }`, and the message is also
    /// shown; progress goes to `$/progress` under a token created for the build.
    async fn build_command(&self, params: BuildParams) -> serde_json::Value {
        let r = self.build_outputs(params).await;
        let (ok, message, outputs) = match r {
            Ok(outputs) => {
                let list: Vec<String> =
                    outputs.iter().map(|(n, p)| format!("{n} -> {p}")).collect();
                let map: serde_json::Map<String, serde_json::Value> = outputs
                    .into_iter()
                    .map(|(n, p)| (n, serde_json::Value::String(p)))
                    .collect();
                (true, format!("built: {}", list.join(", ")), Some(map))
            }
            Err(message) => (false, message, None),
        };
        let typ = if ok {
            MessageType::INFO
        } else {
            MessageType::ERROR
        };
        self.client.show_message(typ, &message).await;
        let mut answer = serde_json::json!({ "ok": ok, "message": message });
        if let Some(map) = outputs {
            answer["outputs"] = serde_json::Value::Object(map);
        }
        answer
    }

    async fn build_outputs(
        &self,
        params: BuildParams,
    ) -> std::result::Result<Vec<(String, String)>, String> {
        let settings = self.settings_for(&params.uri).await;
        if !settings.build.enable {
            return Err(format!(
                "building is disabled; set {ENABLE_SETTING} to true to build from the editor"
            ));
        }
        let factory = self
            .builds
            .clone()
            .ok_or("this language server was started without a store to build in")?;
        let file = convert::path_of(&params.uri)
            .ok_or_else(|| format!("'{}' is not a local file", params.uri.as_str()))?;
        let attr_path: Vec<String> = match (&params.attr_path, params.position) {
            (Some(p), _) => p
                .split('.')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            (None, Some(pos)) => {
                let doc = self.doc(&params.uri).map_err(|e| e.message.to_string())?;
                lens::binding_at(&doc.root(), doc.offset(pos))
                    .ok_or("no derivation is bound at this position")?
            }
            (None, None) => Vec::new(),
        };
        let n = self
            .next_build
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let token = NumberOrString::String(format!("tvix/build/{n}"));
        // A client that cannot show progress refuses the token: the build goes on.
        let progress = self
            .client
            .send_request::<request::WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
                token: token.clone(),
            })
            .await
            .is_ok();
        let what = if attr_path.is_empty() {
            file.display().to_string()
        } else {
            attr_path.join(".")
        };
        if progress {
            self.progress(
                &token,
                WorkDoneProgress::Begin(WorkDoneProgressBegin {
                    title: format!("Building {what}"),
                    cancellable: Some(false),
                    message: None,
                    percentage: Some(0),
                }),
            )
            .await;
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<build::Update>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("tvix-build".to_string())
            .stack_size(crate::worker::STACK_SIZE)
            .spawn(move || {
                let cancel = tvix_build::CancelToken::new();
                let r = build::run_build(
                    &factory,
                    &settings.search_path,
                    &settings.args,
                    &file,
                    &attr_path,
                    |u| {
                        let _ = tx.send(u);
                    },
                    &cancel,
                );
                let _ = done_tx.send(r);
            });
        if let Err(e) = spawned {
            return Err(format!("starting the build: {e}"));
        }
        while let Some(update) = rx.recv().await {
            if progress {
                self.progress(
                    &token,
                    WorkDoneProgress::Report(WorkDoneProgressReport {
                        cancellable: Some(false),
                        message: Some(update.message),
                        percentage: update.percentage,
                    }),
                )
                .await;
            }
        }
        let r = done_rx
            .await
            .unwrap_or_else(|_| Err("the build stopped unexpectedly".to_string()));
        if progress {
            let message = match &r {
                Ok(_) => "done".to_string(),
                Err(_) => "failed".to_string(),
            };
            self.progress(
                &token,
                WorkDoneProgress::End(WorkDoneProgressEnd {
                    message: Some(message),
                }),
            )
            .await;
        }
        r
    }

    async fn progress(&self, token: &ProgressToken, value: WorkDoneProgress) {
        self.client
            .send_notification::<notification::Progress>(ProgressParams {
                token: token.clone(),
                value: ProgressParamsValue::WorkDone(value),
            })
            .await;
    }
}

impl Server {
    /// The custom `tvix/evaluate` request.
    pub async fn evaluate(&self, params: EvaluateParams) -> Result<EvaluateResult> {
        self.evaluate_request(params).await
    }
}
