//! tvix-lsp: the Nix language server of tvix.
//!
//! Static features (diagnostics, symbols, navigation, completion of names, formatting, code
//! actions) work on the rnix syntax tree of each open document and answer at once.
//! Evaluation-backed features (values on hover, attribute completion after `.`, definitions
//! of attributes in other files, evaluation errors, module options) run the real evaluator on
//! a dedicated thread, each request within a time budget and cancellable.
//!
//! The crate does not choose how the evaluator reaches the outside world: the caller passes
//! an [`EvaluatorFactory`].

mod actions;
mod analysis;
mod build;
mod completion;
mod config;
mod convert;
mod diagnostics;
mod docs;
mod document;
mod duplicates;
mod evaluate;
mod format;
mod guard;
mod hover;
mod lens;
mod lib_source;
mod line_index;
mod links;
mod navigation;
mod options;
mod outline;
mod probe;
mod semantic_tokens;
mod server;
mod targets;
mod tree;
mod worker;

pub use build::BuildFactory;
pub use config::Settings;
pub use worker::EvaluatorFactory;

use tower_lsp_server::{LspService, Server as Transport};

/// Serves LSP over standard input and output until the client says `exit`. `builds` makes
/// what the `tvix/build` command needs (`None`: the command says building is unavailable).
pub fn run_stdio(factory: EvaluatorFactory, builds: Option<BuildFactory>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (service, socket) =
            LspService::build(move |client| server::Server::new(client, factory, builds.clone()))
                .custom_method("tvix/evaluate", server::Server::evaluate)
                .finish();
        Transport::new(tokio::io::stdin(), tokio::io::stdout(), socket)
            .serve(service)
            .await;
    });
    Ok(())
}
