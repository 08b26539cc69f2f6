//! The tokio runtime the composed store's clients (object store, PostgreSQL) run on.
//!
//! The store's API is blocking and is called from plain threads and from the gRPC
//! server's blocking pool alike; a future is therefore spawned on this runtime and waited
//! for through a channel, which works wherever the caller is (blocking on a runtime from
//! inside another one would panic).

use std::future::Future;

use super::super::StoreError;

/// A small multi-threaded runtime owned by one store.
pub(crate) struct Runtime {
    rt: tokio::runtime::Runtime,
}

impl Runtime {
    /// Starts a runtime with `threads` workers named `name`.
    pub(crate) fn new(name: &str, threads: usize) -> Result<Runtime, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(name)
            .enable_all()
            .build()?;
        Ok(Runtime { rt })
    }

    /// Runs `fut` on the runtime and waits for its result.
    pub(crate) fn run<F>(&self, fut: F) -> Result<F::Output, StoreError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| StoreError::Io(std::io::Error::other("store runtime task failed")))
    }

    /// Starts `fut` on the runtime without waiting for it.
    pub(crate) fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.rt.spawn(fut)
    }
}
