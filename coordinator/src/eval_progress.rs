//! How far an evaluation has got, for a progress display while it still runs: files
//! read and derivations instantiated so far. Counters the evaluator's IO bumps
//! ([`crate::eval_io::Gated::counting`]) and another thread reads; relaxed atomics, so
//! counting costs an evaluation one uncontended add per file read or `.drv` written and
//! allocates nothing.

use std::sync::atomic::{AtomicU64, Ordering};

/// The counters of one evaluation (shared through an `Arc`).
#[derive(Debug, Default)]
pub struct EvalProgress {
    files_read: AtomicU64,
    derivations: AtomicU64,
}

/// What [`EvalProgress`] counted at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvalCounts {
    /// Files read whole (imports, `readFile`, `hashFile`, ...).
    pub files_read: u64,
    /// Derivations instantiated (`.drv` files written).
    pub derivations: u64,
}

impl EvalProgress {
    /// Counters at zero.
    pub fn new() -> EvalProgress {
        EvalProgress::default()
    }

    /// A file was read.
    pub fn file_read(&self) {
        self.files_read.fetch_add(1, Ordering::Relaxed);
    }

    /// A derivation was instantiated.
    pub fn derivation(&self) {
        self.derivations.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now (each exact; the two may be a moment apart).
    pub fn counts(&self) -> EvalCounts {
        EvalCounts {
            files_read: self.files_read.load(Ordering::Relaxed),
            derivations: self.derivations.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_was_reported() {
        let p = EvalProgress::new();
        assert_eq!(p.counts(), EvalCounts::default());
        p.file_read();
        p.file_read();
        p.derivation();
        assert_eq!(
            p.counts(),
            EvalCounts {
                files_read: 2,
                derivations: 1
            }
        );
    }
}
