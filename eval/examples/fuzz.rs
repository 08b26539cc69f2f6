//! A fuzzer for parse + lower + eval + error rendering, in plain Rust (no cargo-fuzz needed).
//!
//! `cargo run --release -p tvix-eval --example fuzz -- [SECONDS] [CORPUS_DIR] [OUT_DIR]`
//!
//! Inputs are random bytes, token soup, and mutations of the `.nix` files found in CORPUS_DIR
//! (read at run time; default `/work/shared/lang-tests/lang`). The parent process runs a worker
//! child that evaluates inputs one after another, writing each to `OUT_DIR/current.nix` first
//! and acknowledging it on stdout. An input that takes longer than the time budget is a
//! timeout (the worker is restarted, the input is not a failure); a worker that dies (panic,
//! abort, stack overflow) leaves its input behind, which is saved as `OUT_DIR/crash-N.nix`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tvix_eval::diagnostic::{render_error, RenderOptions};
use tvix_eval::{EvalConfig, Evaluator};

/// Per-input time budget.
const BUDGET: Duration = Duration::from_secs(3);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "${",
    "}",
    "''",
    "\"",
    "'",
    "let ",
    " in ",
    "rec ",
    "with ",
    "inherit ",
    " or ",
    "?",
    "...",
    "//",
    "++",
    "+",
    "-",
    "*",
    "/",
    "->",
    ":",
    "@",
    ";",
    "=",
    "==",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "&&",
    "||",
    "!",
    ".",
    ",",
    "builtins.",
    "null",
    "true",
    "false",
    "0",
    "1",
    "-1",
    "9223372036854775807",
    "1.5",
    "1e308",
    "x",
    "y",
    "x: x",
    "assert ",
    "if ",
    " then ",
    " else ",
    "\0",
    "\n",
    " ",
    "\\",
    "./.",
    "/",
    "~/",
    "<nixpkgs>",
    "a.b.c",
    "__toString",
    "__functor",
    "outPath",
    "self: ",
    "throw \"t\"",
    "abort \"a\"",
    "builtins.tryEval ",
    "builtins.seq ",
    "builtins.deepSeq ",
    "builtins.genList ",
    "builtins.foldl' ",
    "builtins.toJSON ",
    "builtins.fromJSON ",
    "builtins.toXML ",
    "builtins.substring ",
    "builtins.match ",
    "builtins.split ",
    "builtins.replaceStrings ",
    "builtins.elemAt ",
    "builtins.getAttr ",
    "builtins.sort ",
    "builtins.derivation ",
    "builtins.addErrorContext ",
    "builtins.unsafeGetAttrPos ",
    "builtins.functionArgs ",
    "builtins.toString ",
    "builtins.parseDrvName ",
    "builtins.compareVersions ",
    "builtins.fromTOML ",
    "builtins.hashString \"sha256\" ",
    "|>",
    "<|",
    "#",
    "/*",
    "*/",
    "\u{e9}",
    "\u{2400}",
    "\u{1f600}",
];

fn token_soup(rng: &mut Rng) -> Vec<u8> {
    let n = 1 + rng.below(40);
    let mut out = Vec::new();
    for _ in 0..n {
        out.extend_from_slice(TOKENS[rng.below(TOKENS.len())].as_bytes());
    }
    out
}

fn mutate(rng: &mut Rng, mut data: Vec<u8>, corpus: &[Vec<u8>]) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] = (rng.next() & 0x7f) as u8;
            }
            1 if len > 0 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(16)).min(len);
                data.drain(i..j);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(32)).min(len);
                let piece = data[i..j].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, piece);
            }
            3 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let i = rng.below(other.len());
                    let j = (i + 1 + rng.below(64)).min(other.len());
                    let at = rng.below(len + 1);
                    data.splice(at..at, other[i..j].iter().copied());
                }
            }
            _ => {
                let tok = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let at = rng.below(len + 1);
                data.splice(at..at, tok.iter().copied());
            }
        }
    }
    data
}

fn generate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(10) {
        0 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
        1 | 2 => token_soup(rng),
        _ if !corpus.is_empty() => {
            let base = corpus[rng.below(corpus.len())].clone();
            mutate(rng, base, corpus)
        }
        _ => token_soup(rng),
    }
}

fn load_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "nix"));
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// Parses, lowers, evaluates one input and renders any error both ways.
fn run_one(text: String, base: &Path) {
    let mut ev = Evaluator::new(Box::new(tvix_eval::io::StdIO::new()), EvalConfig::default());
    ev.diagnostics = Box::new(|_| {});
    let result = ev
        .eval_source("«fuzz»".into(), text, base.to_path_buf())
        .and_then(|v| ev.force_deep(v));
    match result {
        Ok(v) => {
            let _ = tvix_eval::value::print::print_value(&v);
        }
        Err(e) => {
            for show_trace in [false, true] {
                let opts = RenderOptions {
                    show_trace,
                    color: show_trace,
                };
                let _ = render_error(&e, &ev.sources, opts);
            }
        }
    }
}

fn worker(seed: u64, corpus_dir: &Path, out_dir: &Path) {
    let corpus = load_corpus(corpus_dir);
    let mut rng = Rng(seed | 1);
    let current = out_dir.join("current.nix");
    let stdout = std::io::stdout();
    loop {
        let input = generate(&mut rng, &corpus);
        std::fs::write(&current, &input).expect("write current input");
        let text = String::from_utf8_lossy(&input).into_owned();
        run_one(text, corpus_dir);
        let mut lock = stdout.lock();
        if writeln!(lock, "ok").and_then(|()| lock.flush()).is_err() {
            return;
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--worker") {
        let seed: u64 = args[2].parse().expect("seed");
        let corpus = PathBuf::from(&args[3]);
        let out = PathBuf::from(&args[4]);
        // The same deep stack as the CLI.
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024 * 1024)
            .spawn(move || worker(seed, &corpus, &out))
            .expect("spawn");
        if handle.join().is_err() {
            std::process::exit(101);
        }
        return;
    }
    if args.get(1).map(String::as_str) == Some("--replay") {
        // Runs one saved input in this process (to debug a crash).
        let path = PathBuf::from(&args[2]);
        let text = String::from_utf8_lossy(&std::fs::read(&path).expect("read")).into_owned();
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        std::thread::Builder::new()
            .stack_size(256 * 1024 * 1024)
            .spawn(move || run_one(text, &base))
            .expect("spawn")
            .join()
            .expect("no panic");
        println!("no crash");
        return;
    }
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let corpus_dir = PathBuf::from(
        args.get(2)
            .cloned()
            .unwrap_or_else(|| "/work/shared/lang-tests/lang".into()),
    );
    let out_dir = PathBuf::from(args.get(3).cloned().unwrap_or_else(|| "fuzz-out".into()));
    std::fs::create_dir_all(&out_dir).expect("create output directory");
    let exe = std::env::current_exe().expect("own path");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let (mut execs, mut timeouts, mut crashes) = (0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut child = Command::new(&exe)
            .args(["--worker", &seed.to_string()])
            .arg(&corpus_dir)
            .arg(&out_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn worker");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if line.is_err() || tx.send(()).is_err() {
                    break;
                }
            }
        });
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(BUDGET.min(left.max(Duration::from_millis(1)))) {
                Ok(()) => execs += 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    if Instant::now() < deadline {
                        timeouts += 1;
                    }
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let out = child.wait_with_output().expect("wait");
                    crashes += 1;
                    let saved = out_dir.join(format!("crash-{crashes}.nix"));
                    let _ = std::fs::copy(out_dir.join("current.nix"), &saved);
                    let msg = String::from_utf8_lossy(&out.stderr);
                    let _ = std::fs::write(saved.with_extension("txt"), msg.as_bytes());
                    eprintln!(
                        "crash ({}) saved to {}: {}",
                        out.status,
                        saved.display(),
                        msg.lines().find(|l| l.contains("panicked")).unwrap_or("")
                    );
                    break;
                }
            }
        }
    }
    println!(
        "{}s: {execs} executions, {timeouts} timeouts, {crashes} crashes",
        start.elapsed().as_secs()
    );
}
