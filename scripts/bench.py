#!/usr/bin/env python3
"""Compare `tvix eval --strict` with the reference `nix-instantiate --eval --strict`.

    scripts/bench.py                         # every workload in ../shared/workloads/bench
    scripts/bench.py --runs 5 path/to/x.nix  # chosen files (never skipped)
    scripts/bench.py --skip pkgset.nix       # leave a workload out
    scripts/bench.py --profile DIR           # also a `perf report` of tvix per workload

For each file both implementations run --runs times, alternating which goes first
so that neither consistently profits from a warm page cache or CPU boost. The
median wall time and the median peak RSS over the runs are reported, with their
ratios tvix/nix side by side, and the geometric mean of each ratio over all files:
absolute figures vary between machines, ratios measured side by side do not
(much). The load average is printed before and after, since other work on the
machine slows both implementations' wall times (peak memory is not affected).
Stdout of the two must be identical; exit status 1 if any file's output differs
or an implementation failed (unless --no-check).

--profile DIR records each workload's tvix run once more under `perf record --call-graph dwarf`
and writes DIR/<name>.perf.data and DIR/<name>.report.txt (`perf report --stdio
--no-children`, the functions where the time is spent, with their callers).
"""
import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent


def default_tvix() -> Path:
    # Same default as cargo; relative target dirs are taken from the repo root,
    # where the build is run from.
    return REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "release" / "tvix"


def default_bench_dir() -> Path:
    shared = os.environ.get("SHARED_DIR") or str(REPO.parent / "shared")
    return Path(shared) / "workloads" / "bench"


class Run(NamedTuple):
    wall: float
    rss_kib: int
    status: int
    stdout: bytes
    stderr: bytes
    timed_out: bool


def measure(argv, env, timeout) -> Run:
    """Run argv once; wall time and the child's own peak RSS.

    os.wait4 gives the rusage of exactly this child (RUSAGE_CHILDREN would
    accumulate over every run). Output goes to temporary files rather than
    pipes so no reader thread is needed and the child never blocks on a full
    pipe while we sit in wait4.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        killed = threading.Event()

        def kill():
            killed.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, wstatus, rusage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        # Tell Popen the child is reaped so it does not try to wait for it again.
        proc.returncode = os.waitstatus_to_exitcode(wstatus)
        out.seek(0)
        err.seek(0)
        return Run(wall, rusage.ru_maxrss, proc.returncode, out.read(), err.read(), killed.is_set())


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def profile(perf: str, argv, env, stem: Path):
    """Record one run of argv with call graphs; write stem.perf.data and stem.report.txt.

    Returns a note for the summary when something failed, None otherwise.
    """
    data = stem.with_suffix(".perf.data")
    report = stem.with_suffix(".report.txt")
    # perf would keep a previous recording as .old; a rerun should just replace it.
    data.unlink(missing_ok=True)
    # DWARF unwinding: the release build has debug info but no frame pointers. A
    # modest frequency keeps the recording of a 10 s workload small.
    rec = subprocess.run([perf, "record", "-F", "250", "--call-graph", "dwarf,16384",
                          "-o", str(data), "--"] + argv, env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    if rec.returncode != 0:
        return "perf record failed: " + clip(rec.stderr.decode(errors="replace").strip())
    with open(report, "wb") as out:
        rep = subprocess.run([perf, "report", "--stdio", "--no-children", "--percent-limit", "0.5",
                              # the evaluator recurses; a few callers say enough
                              "--max-stack", "8",
                              "-i", str(data)], stdout=out, stderr=subprocess.PIPE)
    if rep.returncode != 0:
        return "perf report failed: " + clip(rep.stderr.decode(errors="replace").strip())
    print(f"  profile: {report}", flush=True)
    return None


def first_difference(a: bytes, b: bytes):
    al, bl = a.decode(errors="replace").splitlines(), b.decode(errors="replace").splitlines()
    for i in range(max(len(al), len(bl))):
        x = al[i] if i < len(al) else "<end of output>"
        y = bl[i] if i < len(bl) else "<end of output>"
        if x != y:
            return i + 1, x, y
    return None  # differ only in the trailing newline


def clip(s: str, n: int = 160) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def describe_failure(name: str, run: Run) -> str:
    why = "timed out" if run.timed_out else f"exit status {run.status}"
    tail = run.stderr.decode(errors="replace").strip().splitlines()[-3:]
    return f"  {name} failed ({why})" + "".join(f"\n    {clip(l)}" for l in tail)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path, help="workloads (default: every .nix in --bench-dir)")
    ap.add_argument("--bench-dir", type=Path, default=default_bench_dir())
    ap.add_argument("--skip", action="append", metavar="NAME",
                    help="file name to leave out of the --bench-dir listing (repeatable)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profile", type=Path, metavar="DIR",
                    help="also record tvix under `perf record --call-graph dwarf` and write a report per workload")
    ap.add_argument("--tvix", default=str(default_tvix()), help="the tvix binary")
    ap.add_argument("--nix", default="nix-instantiate", help="the reference nix-instantiate")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per single run")
    ap.add_argument("--no-check", action="store_true", help="exit 0 even if outputs differ or a run fails")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    tvix = shutil.which(args.tvix)
    if tvix is None:
        print(f"bench: tvix binary not found at {args.tvix}; build it with "
              "`cargo build --release` or pass --tvix", file=sys.stderr)
        return 2
    nix = shutil.which(args.nix)
    if nix is None:
        print(f"bench: {args.nix} not found; run scripts/setup.sh (Debian package nix-bin) "
              "or pass --nix", file=sys.stderr)
        return 2

    if args.files:
        files = args.files
    else:
        skip = set(args.skip or [])
        if not args.bench_dir.is_dir():
            print(f"bench: workload dir {args.bench_dir} not found; set SHARED_DIR or pass "
                  "--bench-dir", file=sys.stderr)
            return 2
        files = [p for p in sorted(args.bench_dir.glob("*.nix")) if p.name not in skip]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"bench: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2

    # dummy:// keeps nix-instantiate from opening (and locking) the real store,
    # which tvix does not do either during a pure evaluation. Both get the very
    # same environment so that nothing but the implementation differs.
    env = dict(os.environ, NIX_REMOTE="dummy://")
    impls = {
        "tvix": [tvix, "eval", "--strict"],
        "nix": [nix, "--eval", "--strict"],
    }

    profiler = None
    if args.profile is not None:
        profiler = shutil.which("perf")
        if profiler is None:
            print("bench: --profile needs `perf` (Debian: linux-perf)", file=sys.stderr)
            return 2
        args.profile.mkdir(parents=True, exist_ok=True)

    header = ("file", "tvix s", "nix s", "wall x", "tvix MB", "nix MB", "mem x", "output")
    fmt = "{:<16} {:>8} {:>8} {:>7} {:>8} {:>8} {:>6}  {}"
    print(f"load average before: {load()}; medians of {args.runs} run(s)")
    print(fmt.format(*header), flush=True)
    notes, ok = [], True
    ratios = {0: [], 1: []}
    for f in files:
        runs = {name: [] for name in impls}
        for i in range(args.runs):
            order = ("tvix", "nix") if i % 2 == 0 else ("nix", "tvix")
            for name in order:
                runs[name].append(measure(impls[name] + [str(f)], env, args.timeout))

        best = {}
        for name, rs in runs.items():
            failed = [r for r in rs if r.status != 0]
            if failed:
                notes.append(f"{f.name}:\n" + describe_failure(name, failed[0]))
                best[name] = None
            else:
                best[name] = (statistics.median(r.wall for r in rs),
                              statistics.median(r.rss_kib for r in rs) / 1024, rs[-1].stdout)

        t, n = best["tvix"], best["nix"]
        if t is None or n is None:
            verdict = "FAILED"
            ok = False
        elif t[2] == n[2]:
            verdict = "same"
        else:
            verdict = "DIFFERENT"
            ok = False
            d = first_difference(t[2], n[2])
            if d is None:
                notes.append(f"{f.name}: outputs differ only in trailing whitespace")
            else:
                line, x, y = d
                notes.append(f"{f.name}: first difference at line {line}:\n"
                             f"  tvix: {clip(x)}\n  nix:  {clip(y)}")

        def cell(b, k, spec):
            return "-" if b is None else format(b[k], spec)

        def ratio(k):
            if t is None or n is None or n[k] == 0:
                return "-"
            ratios[k].append(t[k] / n[k])
            return f"{t[k] / n[k]:.2f}"

        print(fmt.format(clip(f.name, 16), cell(t, 0, ".3f"), cell(n, 0, ".3f"), ratio(0),
                         cell(t, 1, ".0f"), cell(n, 1, ".0f"), ratio(1), verdict), flush=True)

        if profiler is not None:
            note = profile(profiler, impls["tvix"] + [str(f)], env, args.profile / f.stem)
            if note:
                notes.append(f"{f.name}: {note}")

    def geomean(xs):
        return f"{math.exp(sum(map(math.log, xs)) / len(xs)):.2f}" if xs else "-"

    print(fmt.format("geometric mean", "", "", geomean(ratios[0]), "", "", geomean(ratios[1]), ""))
    print(f"load average after: {load()}")
    for note in notes:
        print(note)
    if not ok and not args.no_check:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
