#!/usr/bin/env python3
"""Compare `tvix eval --strict` with the reference `nix-instantiate --eval --strict`.

    scripts/bench.py                         # every workload in ../shared/workloads/bench
    scripts/bench.py --runs 5 path/to/x.nix  # chosen files (never skipped)
    scripts/bench.py --skip none             # include pkgset.nix too

For each file both implementations run --runs times, alternating which goes first
so that neither consistently profits from a warm page cache or CPU boost. The
best wall time and the lowest peak RSS over the runs are reported, as ratios
tvix/nix: absolute figures vary between machines, ratios measured side by side
do not (much). Stdout of the two must be identical; exit status 1 if any file's
output differs or an implementation failed (unless --no-check).
"""
import argparse
import os
import shutil
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
                    help="file name to leave out of the --bench-dir listing (repeatable; "
                         "default: pkgset.nix; 'none' skips nothing)")
    ap.add_argument("--runs", type=int, default=3)
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
        skip = {"pkgset.nix"} if args.skip is None else set(args.skip) - {"none"}
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

    header = ("file", "tvix s", "nix s", "wall x", "tvix MB", "nix MB", "mem x", "output")
    fmt = "{:<16} {:>8} {:>8} {:>7} {:>8} {:>8} {:>6}  {}"
    print(fmt.format(*header), flush=True)
    notes, ok = [], True
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
                best[name] = (min(r.wall for r in rs), min(r.rss_kib for r in rs) / 1024, rs[-1].stdout)

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
            return "-" if t is None or n is None or n[k] == 0 else f"{t[k] / n[k]:.2f}"

        print(fmt.format(clip(f.name, 16), cell(t, 0, ".3f"), cell(n, 0, ".3f"), ratio(0),
                         cell(t, 1, ".0f"), cell(n, 1, ".0f"), ratio(1), verdict), flush=True)

    for note in notes:
        print(note)
    if not ok and not args.no_check:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
