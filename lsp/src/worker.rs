//! The evaluation worker: one thread with a large stack that owns the evaluator (which is not
//! `Send`) and runs evaluation jobs one at a time. Every job has a time budget and can be
//! cancelled: both set the evaluator's interrupt flag. A job that panics is reported as a
//! failure and the evaluator is rebuilt; the server goes on.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use tokio::sync::oneshot;
use tvix_eval::value::{Generation, Registry};
use tvix_eval::{Evaluator, Value};

use crate::config::Settings;

/// Makes an evaluator for the workspace's settings: its search path (`prefix=path` or `path`
/// entries) and what evaluation may do (`evaluation.allowFetch`, `evaluation.allowBuild`:
/// the IO must refuse what is not allowed). The binary passes one, with the IO of its
/// choice.
pub type EvaluatorFactory = Arc<dyn Fn(&Settings) -> Evaluator + Send + Sync>;

/// The stack of threads that evaluate (deep Nix code recurses deeply).
pub const STACK_SIZE: usize = 256 * 1024 * 1024;

/// Probe sources fed to one evaluator before it is replaced: each stays in its source map.
const MAX_FED_BYTES: usize = 64 * 1024 * 1024;

/// Thunks and frames the worker's registry may hold after a sweep before the evaluator is
/// replaced. What a sweep leaves is what is live (the import cache, cached values) and the
/// reference cycles of past evaluations, which only replacing the evaluator frees. Measured:
/// each whole-file evaluation of the 40 000-binding `let` of `scripts/lsp-bench.py
/// --big-let 40000` leaves about 37 000 objects, some 8 MiB with what they hold, so two
/// million means a new evaluator about every 50 such evaluations, at a few hundred MiB. It
/// is above what a module-system evaluation the size of `modules.nix` (2000 options) leaves,
/// 0.9 million, so a cached options tree of that size survives; one of NixOS's size
/// (`modules-large.nix`, 20 000 options: 9 million) does not, and is evaluated again after
/// each reset. Releasing two million objects takes up to about a second.
pub const MAX_TRACKED: usize = 2_000_000;

/// Fewest recorded objects before a sweep: below it sweeping after every job would cost more
/// than the memory it gives back.
const MIN_SWEEP_AT: usize = 100_000;

/// The worker's state, handed to each job.
pub struct Session {
    factory: EvaluatorFactory,
    /// The workspace settings.
    pub settings: Settings,
    evaluator: Option<Evaluator>,
    fed_bytes: usize,
    cache: HashMap<String, Value>,
    /// This thread's record of the thunks and frames it makes (`None` if the thread could
    /// not track: then cycles leak as they would without it). Declared after `evaluator`
    /// and `cache`: fields drop in order, and dropping the registry releases what it
    /// records, which must come after every holder of its values.
    registry: Option<Registry>,
    /// What dropped evaluators made, released after the job that dropped them: until then
    /// the job may still hold their values.
    retired: Vec<Generation>,
    /// The registry is swept when it holds more than this ([`Session::next_sweep_at`]).
    sweep_at: usize,
    /// [`MAX_TRACKED`], lower in tests.
    max_tracked: usize,
}

impl Session {
    /// A session with no evaluator yet, tracking what this thread's evaluators make (see
    /// `tvix_eval::value::Registry`). Made on the thread that runs the jobs.
    fn new(factory: EvaluatorFactory, settings: Settings) -> Session {
        Session {
            factory,
            settings,
            evaluator: None,
            fed_bytes: 0,
            cache: HashMap::new(),
            registry: Registry::track_this_thread().ok(),
            retired: Vec::new(),
            sweep_at: MIN_SWEEP_AT,
            max_tracked: MAX_TRACKED,
        }
    }

    /// The evaluator, made on first use after a reset.
    pub fn evaluator(&mut self) -> &mut Evaluator {
        let settings = &self.settings;
        let factory = &self.factory;
        self.evaluator.get_or_insert_with(|| {
            let mut ev = factory(settings);
            // `builtins.trace` output has nowhere useful to go in a language server.
            ev.diagnostics = Box::new(|_| {});
            ev
        })
    }

    /// Drops the evaluator (its import cache and source map): after a settings change, a
    /// saved file, a panic, when it has seen too much probe text, or when its registry holds
    /// too much. What it made is released after the current job ([`Session::end_job`]).
    pub fn reset(&mut self) {
        self.cache.clear();
        self.evaluator = None;
        self.fed_bytes = 0;
        if let Some(registry) = &self.registry {
            self.retired.push(registry.detach());
        }
        self.sweep_at = self.next_sweep_at(0);
    }

    /// When to sweep next, `left` objects being recorded after a sweep: when that has
    /// doubled (so sweeping costs a constant per object made), and at the bound at the latest
    /// (so the registry never holds much more than it).
    fn next_sweep_at(&self, left: usize) -> usize {
        (2 * left).max(MIN_SWEEP_AT).min(self.max_tracked)
    }

    /// After each job, when none of its values is held any more: releases what dropped
    /// evaluators made (freeing their cycles), sweeps the registry when it has doubled, and
    /// replaces the evaluator when what is left is past [`MAX_TRACKED`].
    fn end_job(&mut self) {
        self.retired.clear();
        let Some(registry) = &self.registry else {
            return;
        };
        if registry.len() <= self.sweep_at {
            return;
        }
        registry.sweep();
        let left = registry.len();
        if left > self.max_tracked {
            self.reset();
            self.retired.clear();
        } else {
            self.sweep_at = self.next_sweep_at(left);
        }
    }

    /// A value computed earlier with this evaluator (the options tree, ...).
    pub fn cached(&self, key: &str) -> Option<Value> {
        self.cache.get(key).cloned()
    }

    /// Remembers a value until the evaluator is replaced.
    pub fn cache(&mut self, key: &str, v: Value) {
        self.cache.insert(key.to_string(), v);
    }

    /// Counts source text given to the evaluator; replaces it when it has seen too much.
    pub fn account(&mut self, bytes: usize) {
        self.fed_bytes += bytes;
        if self.fed_bytes > MAX_FED_BYTES {
            self.reset();
        }
    }
}

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// Why an evaluation job gave no result.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum JobError {
    /// It ran out of its time budget.
    #[error("evaluation stopped after {0} ms: it ran out of its time budget (tvix.evalBudgetMs)")]
    OutOfTime(u64),
    /// It panicked (a bug in tvix); the evaluator was rebuilt.
    #[error("the evaluator crashed on this request: {0}")]
    Panicked(String),
    /// The worker thread is gone.
    #[error("the evaluation worker is not running")]
    NoWorker,
}

/// A handle to the worker thread.
#[derive(Clone)]
pub struct Worker {
    jobs: mpsc::Sender<Job>,
}

/// Sets a job's interrupt flag when the request is dropped (cancelled by the client).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Worker {
    /// Starts the worker thread.
    pub fn spawn(factory: EvaluatorFactory, settings: Settings) -> Worker {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tvix-lsp-eval".to_string())
            .stack_size(STACK_SIZE)
            .spawn(move || {
                let mut session = Session::new(factory, settings);
                while let Ok(job) = rx.recv() {
                    job(&mut session);
                    session.end_job();
                }
            })
            .expect("spawning the evaluation thread");
        Worker { jobs: tx }
    }

    /// Runs `f` on the worker within `budget`. The evaluation is interrupted when the budget
    /// is spent or the returned future is dropped.
    pub async fn run<R: Send + 'static>(
        &self,
        budget: Duration,
        f: impl FnOnce(&mut Session) -> R + Send + 'static,
    ) -> Result<R, JobError> {
        let flag = Arc::new(AtomicBool::new(false));
        let guard = CancelOnDrop(flag.clone());
        let (tx, rx) = oneshot::channel();
        let job_flag = flag.clone();
        let job: Job = Box::new(move |session: &mut Session| {
            if job_flag.load(Ordering::Relaxed) {
                let _ = tx.send(None);
                return;
            }
            session.evaluator().interrupt = Some(job_flag);
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(session)));
            if let Some(ev) = session.evaluator.as_mut() {
                ev.interrupt = None;
            }
            let reply = match result {
                Ok(r) => Ok(r),
                Err(p) => {
                    session.reset();
                    Err(panic_message(p))
                }
            };
            let _ = tx.send(Some(reply));
        });
        self.jobs.send(job).map_err(|_| JobError::NoWorker)?;
        let ms = budget.as_millis() as u64;
        let mut rx = rx;
        let outcome = match tokio::time::timeout(budget, &mut rx).await {
            Ok(r) => r,
            Err(_) => {
                flag.store(true, Ordering::Relaxed);
                // The evaluator stops at its next function call; give it a moment to say so.
                match tokio::time::timeout(Duration::from_millis(50).max(budget / 4), rx).await {
                    Ok(Ok(Some(Ok(r)))) => return Ok(r),
                    _ => return Err(JobError::OutOfTime(ms)),
                }
            }
        };
        drop(guard);
        match outcome {
            Ok(Some(Ok(r))) => Ok(r),
            Ok(Some(Err(msg))) => Err(JobError::Panicked(msg)),
            Ok(None) => Err(JobError::OutOfTime(ms)),
            Err(_) => Err(JobError::NoWorker),
        }
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain evaluators with the default settings.
    fn factory() -> EvaluatorFactory {
        Arc::new(|_: &Settings| {
            Evaluator::new(
                Box::new(tvix_eval::io::StdIO::new()),
                tvix_eval::EvalConfig::default(),
            )
        })
    }

    fn worker() -> Worker {
        Worker::spawn(factory(), Settings::default())
    }

    fn eval(s: &mut Session, src: &str) -> String {
        let ev = s.evaluator();
        match ev.eval_source("«test»".into(), src.into(), "/".into()) {
            Ok(v) => tvix_eval::value::print::print_value(&v),
            Err(e) => e.kind.to_string(),
        }
    }

    fn session() -> Session {
        Session::new(factory(), Settings::default())
    }

    /// Evaluates a list whose unforced elements hold the `let` frame that holds the list: a
    /// cycle of `n` thunks that no sweep frees. Gives a weak reference to the list.
    fn cyclic_list(s: &mut Session, n: usize) -> std::rc::Weak<Vec<Value>> {
        let src = format!("let xs = builtins.genList (i: {{ next = xs; }}) {n}; in xs");
        let ev = s.evaluator();
        match ev
            .eval_source("«test»".into(), src, "/".into())
            .and_then(|v| ev.force(v))
        {
            Ok(Value::List(l)) => std::rc::Rc::downgrade(&l),
            _ => panic!("not a list"),
        }
    }

    #[test]
    fn past_the_bound_the_evaluator_is_replaced_and_its_cycles_freed() {
        let mut s = session();
        s.max_tracked = 150_000;
        s.sweep_at = s.next_sweep_at(0);
        let first = cyclic_list(&mut s, 40_000);
        s.end_job();
        let mut jobs = 1;
        while s.evaluator.is_some() {
            assert!(jobs < 10, "no reset after {jobs} jobs");
            // Sweeping cannot free a cycle: it is alive until the evaluator is replaced.
            assert!(first.upgrade().is_some());
            cyclic_list(&mut s, 40_000);
            s.end_job();
            jobs += 1;
        }
        assert!(jobs >= 3, "reset after {jobs} jobs, before the bound");
        assert!(first.upgrade().is_none(), "the first job's cycle is freed");
        let left = s.registry.as_ref().map_or(usize::MAX, Registry::len);
        assert_eq!(left, 0, "nothing is recorded once the evaluator is gone");
        // The next job gets a new evaluator.
        assert_eq!(eval(&mut s, "6 * 7"), "42");
    }

    #[test]
    fn values_of_a_job_stay_valid_until_it_ends_even_across_a_reset() {
        let mut s = session();
        let list = cyclic_list(&mut s, 10);
        let list = list.upgrade().expect("held by its cycle");
        s.reset();
        // Still usable in this job: the old evaluator's objects are released after it.
        let ev = s.evaluator();
        let v = ev.force(list[3].clone()).expect("forced");
        assert!(matches!(v, Value::Attrs(_)));
        let weak = std::rc::Rc::downgrade(&list);
        drop((list, v));
        assert!(
            weak.upgrade().is_some(),
            "the cycle lives until the job ends"
        );
        s.end_job();
        assert!(weak.upgrade().is_none());
    }

    #[test]
    fn a_panicking_job_is_reported_and_the_next_one_runs() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let w = worker();
        let second = Duration::from_secs(10);
        let r = rt.block_on(w.run(second, |_: &mut Session| -> () { panic!("boom") }));
        assert_eq!(r, Err(JobError::Panicked("boom".to_string())));
        let r = rt.block_on(w.run(second, |s: &mut Session| eval(s, "6 * 7")));
        assert_eq!(r, Ok("42".to_string()));
    }

    #[test]
    fn a_job_out_of_budget_is_interrupted() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let w = worker();
        let src = "let l = builtins.genList (x: x) 10000; \
                   in builtins.foldl' (a: _: builtins.foldl' (b: _: b + 1) a l) 0 l";
        let start = std::time::Instant::now();
        let r = rt.block_on(w.run(Duration::from_millis(100), move |s: &mut Session| {
            eval(s, src)
        }));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(
            matches!(&r, Err(JobError::OutOfTime(100)))
                || r == Ok("evaluation interrupted".to_string()),
            "{r:?}"
        );
    }
}
