//! Keeps a panic in one request from taking the server down: the request's future is polled
//! under `catch_unwind`, and a panic becomes an internal-error response.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use tower_lsp_server::jsonrpc::{Error, Result};

/// A future whose panics are caught.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::result::Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(p) => Poll::Ready(Err(p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_string()))),
        }
    }
}

/// Runs a request; a panic is answered as an internal error.
pub async fn request<T>(f: impl Future<Output = Result<T>>) -> Result<T> {
    match CatchUnwind(Box::pin(f)).await {
        Ok(r) => r,
        Err(msg) => {
            let mut e = Error::internal_error();
            e.message = format!("tvix lsp failed on this request: {msg}").into();
            Err(e)
        }
    }
}

/// Runs a notification; a panic is dropped (there is nobody to answer).
pub async fn notification(f: impl Future<Output = ()>) {
    let _ = CatchUnwind(Box::pin(f)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let r: Result<()> = rt.block_on(request(async { panic!("bad") }));
        assert!(r.unwrap_err().message.contains("bad"));
        let r = rt.block_on(request(async { Ok(1) }));
        assert_eq!(r.unwrap(), 1);
        rt.block_on(notification(async { panic!("ignored") }));
    }
}
