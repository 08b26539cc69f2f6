//! A registry of the thunks and frames one thread makes, so that a long-lived host (the
//! language server) can free an evaluator's reference cycles when it drops the evaluator.
//!
//! Thunks and frames are reference-counted, and evaluation makes cycles of them: a `let` or
//! `rec` frame holds thunks that hold the frame, a closure in a frame's slot holds the frame,
//! a forced thunk can hold a value that contains the thunk (`let s = { a = { b = s.a; }; };
//! in s.a.b.b`). Counting never frees a cycle, not even when the evaluator is dropped. Every
//! cycle passes through a thunk or a frame filled after it was shared (`Env::shared`), the
//! only objects changed after they are made, so emptying every such thunk and frame of an
//! evaluator that is gone breaks every cycle, and the counts free the rest. (A frame shared
//! complete holds values made before it, which lead back to it only through one of those.)
//!
//! Tracking is opt-in, per thread: [`Registry::track_this_thread`]. While a thread has a
//! registry, every thunk and every frame made by `Env::shared` on it is recorded (a thunk by
//! a handle, a frame by a weak reference). [`Registry::detach`] takes what has been recorded
//! so far out as a [`Generation`]; dropping it (or [`Generation::release`]) empties its
//! objects. That is only
//! sound when nothing live can reach them any more: the owner detaches when it drops the
//! evaluator that made them and releases once no value of that evaluator is held (the
//! language server: after the job that dropped it). An emptied object that is reached anyway
//! (a bug) fails loudly: its thunks fail with [`RELEASED`], and frames that outlive the
//! release hold such a thunk in every slot.
//!
//! The registry's own handle keeps a thunk alive that would otherwise have been freed, so
//! [`Registry::sweep`] forgets the objects nothing else holds (freeing them as counting
//! would have); the owner sweeps now and then, and replaces its evaluator when what is left
//! (live values and cycles) grows past its bound.
//!
//! Cost on a thread that does not track: one compare of a thread-local flag and a branch
//! per thunk and `Env::shared` frame made (`note_thunk`, `note_frame`); the rest is out of
//! line.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::rc::{Rc, Weak};

use super::{Env, Thunk, ThunkState, Value};
use crate::error::{ErrorKind, EvalError};

/// The error of a thunk reached after its evaluator's objects were released: a value kept
/// past the end of the evaluator that made it (a bug in the host, not in the Nix code).
pub const RELEASED: &str =
    "this value belonged to an evaluator that has been dropped and its memory released";

thread_local! {
    /// Whether this thread has a registry. Read for every thunk and frame made: a `const`
    /// flag with nothing to drop needs no lazy set-up, so the read is one compare with the
    /// thread's own copy (an atomic global would be a load, a test and the branch: an
    /// instruction more, where a third of one per thunk is measurable).
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    /// The objects recorded on this thread, while it has a registry.
    static RECORDED: RefCell<Option<Objects>> = const { RefCell::new(None) };
}

/// Recorded thunks and frames, oldest first.
#[derive(Default)]
struct Objects {
    /// A handle to each thunk: a thunk has no weak count (see `counted.rs`).
    thunks: Vec<Thunk>,
    /// A weak reference to each frame (it does not keep the frame's slots alive).
    frames: Vec<Weak<Env>>,
}

impl Objects {
    fn len(&self) -> usize {
        self.thunks.len() + self.frames.len()
    }
}

/// Records `t` if this thread tracks (called for every thunk made).
#[inline(always)]
pub(crate) fn note_thunk(t: &Thunk) {
    if TRACKING.with(Cell::get) {
        note_thunk_slow(t);
    }
}

/// Records `env` if this thread tracks (called for every frame filled after it is shared).
#[inline(always)]
pub(crate) fn note_frame(env: &Rc<Env>) {
    if TRACKING.with(Cell::get) {
        note_frame_slow(env);
    }
}

#[cold]
#[inline(never)]
fn note_thunk_slow(t: &Thunk) {
    record(|objects| objects.thunks.push(t.clone()));
}

#[cold]
#[inline(never)]
fn note_frame_slow(env: &Rc<Env>) {
    record(|objects| objects.frames.push(Rc::downgrade(env)));
}

/// Adds to this thread's recorded objects. `try_*`: never a panic, not even while the
/// thread is being torn down or the registry is busy (nothing makes a thunk or frame then;
/// if something did, it would only go untracked).
fn record(add: impl FnOnce(&mut Objects)) {
    let _ = RECORDED.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            if let Some(objects) = r.as_mut() {
                add(objects);
            }
        }
    });
}

/// Why a thread could not start tracking.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// The thread already has a registry (one per thread: objects are recorded per thread).
    #[error("this thread already tracks its thunks and frames")]
    AlreadyTracking,
}

/// This thread's tracking of the thunks and frames it makes (see the module docs). Not
/// `Send`: it belongs to the thread whose objects it records. Dropping it stops tracking
/// and releases everything still recorded, so it must outlive every evaluator of the
/// thread (and every value they made).
pub struct Registry {
    _not_send: PhantomData<Rc<()>>,
}

impl Registry {
    /// Starts recording the thunks and frames this thread makes from now on.
    pub fn track_this_thread() -> Result<Registry, RegistryError> {
        RECORDED.with(|r| {
            let mut r = r.borrow_mut();
            if r.is_some() {
                return Err(RegistryError::AlreadyTracking);
            }
            *r = Some(Objects::default());
            TRACKING.with(|t| t.set(true));
            Ok(Registry {
                _not_send: PhantomData,
            })
        })
    }

    /// How many objects are recorded (thunks and frames, including ones that a
    /// [`Registry::sweep`] would forget).
    pub fn len(&self) -> usize {
        RECORDED.with(|r| r.borrow().as_ref().map_or(0, Objects::len))
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the recorded objects that nothing else holds, freeing them as counting
    /// would have without the registry, and gives back how many were forgotten. Freeing
    /// one can leave others held by the registry alone; those go in a later pass (at most
    /// `SWEEP_PASSES`; what is left goes in a later sweep).
    pub fn sweep(&self) -> usize {
        // Taken out while objects are freed: a drop can make nothing, but the registry
        // must not be borrowed while arbitrary drops run.
        let Some(mut objects) = RECORDED.with(|r| r.borrow_mut().take()) else {
            return 0;
        };
        let before = objects.len();
        for pass in 0..SWEEP_PASSES {
            let n = objects.len();
            objects.frames.retain(|f| f.strong_count() != 0);
            // Alternate directions: a freed thunk lets go of objects both older (the frame
            // it was suspended in, its arguments) and newer (what its value holds), and a
            // pass frees in one go those it passes after the thunk.
            if pass % 2 == 0 {
                objects.thunks.retain(|t| t.handles() > 1);
            } else {
                objects.thunks.reverse();
                objects.thunks.retain(|t| t.handles() > 1);
                objects.thunks.reverse();
            }
            if objects.len() == n {
                break;
            }
        }
        let forgotten = before - objects.len();
        // Put back: nothing was made meanwhile (a drop runs no Nix code, so it makes no
        // thunk or frame; one made anyway would only have gone unrecorded).
        RECORDED.with(|r| *r.borrow_mut() = Some(objects));
        forgotten
    }

    /// Takes everything recorded so far out, to be released when nothing live can reach it
    /// any more (see [`Generation`]); recording goes on into an empty list.
    pub fn detach(&self) -> Generation {
        let objects = RECORDED.with(|r| {
            r.borrow_mut()
                .as_mut()
                .map(std::mem::take)
                .unwrap_or_default()
        });
        Generation { objects }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // `try_with`: a registry dropped while the thread's locals are torn down finds
        // nothing to release rather than panicking.
        let objects = RECORDED
            .try_with(|r| r.borrow_mut().take())
            .ok()
            .flatten()
            .unwrap_or_default();
        let _ = TRACKING.try_with(|t| t.set(false));
        drop(Generation { objects });
    }
}

/// Sweep passes over the recorded objects at most, each linear in their number: most
/// garbage goes in the first two (one in each direction), and a sweep is not meant to be
/// complete, only to keep the registry near the size of what is live.
const SWEEP_PASSES: usize = 4;

/// The thunks and frames made while an evaluator lived, taken out of the registry when it
/// was dropped. Dropping this empties them all (see [`Generation::release`]).
pub struct Generation {
    objects: Objects,
}

impl Generation {
    /// How many objects it holds.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.objects.len() == 0
    }

    /// Empties every object, which frees every cycle among them, and gives back how many
    /// objects outlived the release (held from outside: zero unless a value was kept past
    /// its evaluator). The caller promises that no value made by the evaluator these
    /// objects belonged to will be used; one that is anyway fails with [`RELEASED`].
    pub fn release(mut self) -> usize {
        release(std::mem::take(&mut self.objects))
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        release(std::mem::take(&mut self.objects));
    }
}

/// Empties `objects` (see [`Generation::release`]).
fn release(objects: Objects) -> usize {
    let Objects { thunks, frames } = objects;
    // First every state and slot is emptied, without allocating: each old content is
    // dropped right after its write, and what it drops in turn cannot run Nix code.
    for t in &thunks {
        drop(t.replace(ThunkState::Blackhole));
    }
    for f in &frames {
        if let Some(f) = f.upgrade() {
            f.fill(&Value::Null);
        }
    }
    // Then what is still held from outside (the registry holds each thunk once) is made to
    // fail loudly rather than read as an infinite recursion or a `null`.
    let released = || EvalError::new(ErrorKind::Other(RELEASED.to_string()), None);
    let mut outlived = 0;
    for t in thunks {
        if t.handles() > 1 {
            outlived += 1;
            drop(t.replace(ThunkState::Failed(released())));
        }
    }
    // One failed thunk for every slot of every frame that outlived the release; made
    // untracked, so that no later release empties it.
    let mut poison: Option<Value> = None;
    for f in frames {
        if let Some(f) = f.upgrade() {
            outlived += 1;
            f.fill(poison.get_or_insert_with(|| Value::Thunk(Thunk::untracked_failed(released()))));
        }
    }
    outlived
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{EvalConfig, Evaluator};
    use crate::value::{Attrs, Closure};

    fn evaluator() -> Evaluator {
        Evaluator::new(Box::new(crate::io::StdIO::new()), EvalConfig::default())
    }

    fn eval(ev: &mut Evaluator, src: &str) -> Value {
        let v = ev
            .eval_source("«test»".into(), src.into(), "/".into())
            .and_then(|v| ev.force(v));
        match v {
            Ok(v) => v,
            Err(e) => panic!("{src}: {}", e.kind),
        }
    }

    /// `s.a.b.b` is the set `X = { b = B; }` where thunk `B` is done with `X` as its value:
    /// a cycle of a thunk and a set alone, no frame in it. Gives a weak reference to `X`.
    fn thunk_cycle(ev: &mut Evaluator) -> Weak<Attrs> {
        match eval(ev, "let s = { a = { b = s.a; }; }; in s.a.b.b") {
            Value::Attrs(x) => Rc::downgrade(&x),
            other => panic!("not a set: {other:?}"),
        }
    }

    /// A function that calls itself: its closure is in the slot of the `let` frame it
    /// closes over. Gives a weak reference to the closure.
    fn frame_cycle(ev: &mut Evaluator) -> Weak<Closure> {
        match eval(ev, "let f = n: if n == 0 then 0 else f (n - 1); in f") {
            Value::Lambda(c) => Rc::downgrade(&c),
            other => panic!("not a function: {other:?}"),
        }
    }

    #[test]
    fn cycles_are_freed_when_a_tracked_evaluators_objects_are_released() {
        let registry = Registry::track_this_thread().unwrap();
        let mut ev = evaluator();
        let x = thunk_cycle(&mut ev);
        let f = frame_cycle(&mut ev);
        assert!(matches!(
            eval(&mut ev, "let x = 3; in rec { a = x; b = a; }.b"),
            Value::Int(3)
        ));
        assert!(!registry.is_empty());
        drop(ev);
        // Dropping the evaluator alone frees neither cycle (as on an untracked thread).
        assert!(x.upgrade().is_some() && f.upgrade().is_some());
        let generation = registry.detach();
        assert!(registry.is_empty() && !generation.is_empty());
        assert_eq!(generation.release(), 0, "nothing outlives the evaluator");
        assert!(x.upgrade().is_none(), "the thunk and set cycle is freed");
        assert!(
            f.upgrade().is_none(),
            "the frame and closure cycle is freed"
        );
    }

    #[test]
    fn an_untracked_evaluator_records_nothing_and_still_leaks_its_cycles() {
        let mut ev = evaluator();
        let x = thunk_cycle(&mut ev);
        let f = frame_cycle(&mut ev);
        assert!(RECORDED.with(|r| r.borrow().is_none()));
        drop(ev);
        // Without a registry a cycle is never freed: what the registry is for.
        assert!(x.upgrade().is_some() && f.upgrade().is_some());
    }

    #[test]
    fn dropping_the_registry_releases_what_it_still_records() {
        let registry = Registry::track_this_thread().unwrap();
        let mut ev = evaluator();
        let x = thunk_cycle(&mut ev);
        drop(ev);
        drop(registry);
        assert!(x.upgrade().is_none());
        // And the thread can track again.
        assert!(Registry::track_this_thread().is_ok());
    }

    #[test]
    fn one_registry_per_thread() {
        let registry = Registry::track_this_thread().unwrap();
        assert_eq!(
            Registry::track_this_thread().err(),
            Some(RegistryError::AlreadyTracking)
        );
        drop(registry);
    }

    #[test]
    fn sweep_forgets_garbage_and_keeps_what_is_live() {
        let registry = Registry::track_this_thread().unwrap();
        let mut ev = evaluator();
        let after_setup = registry.len();
        let kept = eval(
            &mut ev,
            "{ n = builtins.length (builtins.genList (x: x * 2) 5000); \
               l = builtins.genList (x: x + 1) 3; }",
        );
        let Value::Attrs(set) = &kept else {
            panic!("not a set")
        };
        let n = set
            .get(crate::symbol::Symbol::intern("n"))
            .cloned()
            .unwrap();
        assert!(matches!(ev.force(n).unwrap(), Value::Int(5000)));
        // The 5000 element thunks of the first list are garbage, held by the registry only.
        let before = registry.len();
        assert!(before >= after_setup + 5000, "{after_setup} -> {before}");
        let forgotten = registry.sweep();
        assert_eq!(registry.len(), before - forgotten);
        assert!(
            registry.len() < after_setup + 100,
            "{after_setup} -> {}",
            registry.len()
        );
        // What is still held works: the second list's elements are unforced thunks.
        let l = set
            .get(crate::symbol::Symbol::intern("l"))
            .cloned()
            .unwrap();
        let Value::List(l) = ev.force(l).unwrap() else {
            panic!("not a list")
        };
        assert!(matches!(ev.force(l[2].clone()).unwrap(), Value::Int(3)));
        drop((kept, l, ev));
        drop(registry);
    }

    #[test]
    fn a_value_kept_past_the_release_fails_loudly() {
        let registry = Registry::track_this_thread().unwrap();
        let mut ev = evaluator();
        // An unforced attribute (a thunk) and a function whose frame holds a thunk.
        let set = eval(
            &mut ev,
            "let y = builtins.add 1 1; in { a = y * 3; f = z: y + z; }",
        );
        drop(ev);
        let generation = registry.detach();
        assert!(
            generation.release() > 0,
            "the kept set's objects outlived the release"
        );
        let mut ev = evaluator();
        let Value::Attrs(a) = &set else {
            panic!("not a set")
        };
        let attr = a.get(crate::symbol::Symbol::intern("a")).cloned().unwrap();
        let e = ev.force(attr).expect_err("a released thunk fails");
        assert_eq!(e.kind.to_string(), RELEASED);
        let f = a.get(crate::symbol::Symbol::intern("f")).cloned().unwrap();
        let e = ev
            .force(f)
            .and_then(|f| ev.call(f, Value::Int(1), None))
            .expect_err("a released frame's slots fail");
        assert_eq!(e.kind.to_string(), RELEASED);
        drop((set, ev));
        drop(registry);
    }
}
