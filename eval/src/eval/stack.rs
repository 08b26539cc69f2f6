//! The native stack guard of the recursive paths (calls, thunk forcing, nested data).
//!
//! `stacker::maybe_grow` asks for the stack pointer (a call into assembly) and the current
//! segment's limit (a thread-local) every time; on the path every function call and every
//! thunk takes, that was a measurable part of a call. The guard keeps the lowest safe
//! stack address of the segment it runs on in the evaluator instead, so the common case is
//! one comparison, and only near the end of a segment (or on first entry, or on a segment
//! whose limit is unknown) does it go through `stacker`, which grows a new segment.

use super::Evaluator;

/// Stack kept free before growing (bytes), and the size of each new segment.
pub(super) const STACK_RED_ZONE: usize = 256 * 1024;
pub(super) const STACK_SEGMENT: usize = 8 * 1024 * 1024;

/// No known floor: every guarded call takes the slow path, which sets one.
pub(super) const UNKNOWN_FLOOR: usize = usize::MAX;

/// An address on the current stack (that of a local), close enough to the stack pointer.
#[inline(always)]
fn stack_address() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

impl Evaluator {
    /// Runs `f`, on a new stack segment if less than [`STACK_RED_ZONE`] is left of this one.
    #[inline(always)]
    pub(super) fn guarded<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        if stack_address() > self.stack_floor {
            return f(self);
        }
        self.guarded_slow(f)
    }

    /// The guard's slow path: `stacker` decides (and switches segments if needed), and `f`
    /// runs with the floor of the segment it runs on; the caller's floor is restored after,
    /// also when `f` panics (the language server survives panics and keeps the evaluator:
    /// a floor left from a freed segment would turn the guard off).
    #[inline(never)]
    fn guarded_slow<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        let saved = self.stack_floor;
        let r = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            self.stack_floor = match stacker::remaining_stack() {
                // The address at which less than the red zone is left.
                Some(left) => stack_address()
                    .saturating_sub(left)
                    .saturating_add(STACK_RED_ZONE),
                None => UNKNOWN_FLOOR,
            };
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)))
        });
        self.stack_floor = saved;
        match r {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{EvalConfig, Evaluator};

    /// Recursion far deeper than the thread's stack allows without growing it: a chain of
    /// 200 000 thunks, each forcing the next (no calls, so only the guard protects it),
    /// on a thread with a 1 MiB stack. The evaluation must end with the value, not a crash,
    /// and the evaluator must be usable after it.
    #[test]
    fn deep_thunk_chains_grow_the_stack_instead_of_overflowing() {
        let out = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(|| {
                let mut ev =
                    Evaluator::new(Box::new(crate::io::StdIO::new()), EvalConfig::default());
                let src = "let xs = builtins.genList (i: i) 200000; \
                           f = builtins.foldl' (acc: i: { v = acc.v + 1; }) { v = 0; } xs; \
                           in f.v";
                let first = ev
                    .eval_source("«test»".into(), src.into(), "/".into())
                    .and_then(|v| ev.force_deep(v))
                    .map(|v| crate::value::print::print_value(&v));
                let again = ev
                    .eval_source("«test»".into(), "1 + 2".into(), "/".into())
                    .map(|v| crate::value::print::print_value(&v));
                (first.ok(), again.ok())
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(out, (Some("200000".to_string()), Some("3".to_string())));
    }
}
