#!/usr/bin/env python3
"""The coordinator's figures, side by side in one run.

    scripts/build-graph-bench.py
    scripts/build-graph-bench.py --jobs 4 --sleep 0.2

1. A graph of 50 derivations (tests/build_graph/graph.nix: static-busybox builders, each
   depending on up to two others, a fresh nonce so nothing exists beforehand) built with
   `tvix build -j2` (OCI backend, a fresh `local://` store) first, then `nix-build -j2`
   (sandboxed, as root, no substituters) with another nonce. Wall-clock time of each.
2. The coordinator's own cost per derivation on the 20 000 derivations of
   ../shared/workloads/bench/pkgset.nix (its package set, every package as a target):
   `tvix build --dry-run` (evaluate, instantiate, load the graph from the store, plan,
   query validity) minus `tvix instantiate` of the same expression into another fresh
   store, divided by 20 000; and the coordinator's own timings (TVIX_SHOW_STATS=1:
   loading, planning, registering) for both runs.

Needs the tvix binary (`--tvix`, default target/release/tvix or $CARGO_TARGET_DIR's),
nix-build, runc, root and /var/lib/tvix-tests/busybox (scripts/setup.sh).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
GRAPH = os.path.join(HERE, "..", "tests", "build_graph", "graph.nix")
PKGSET = os.path.join(HERE, "..", "..", "shared", "workloads", "bench", "pkgset.nix")
NIX_OPTS = ["--option", "sandbox", "true", "--option", "build-users-group", "",
            "--option", "substituters", ""]


def default_tvix():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(HERE, "..", "target")
    return os.path.join(target, "release", "tvix")


def timed(cmd, env=None):
    start = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    elapsed = time.monotonic() - start
    if r.returncode != 0:
        sys.stderr.write(r.stderr.decode(errors="replace")[-4000:])
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}")
    return elapsed, r.stdout.decode(), r.stderr.decode(errors="replace")


def stats(stderr):
    """The coordinator's `TVIX_SHOW_STATS` line, as a dict of numbers."""
    for line in stderr.splitlines():
        if line.startswith("coordinator:"):
            return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)}
    sys.exit("no coordinator statistics in the output (TVIX_SHOW_STATS=1)")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tvix", default=default_tvix())
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--sleep", default="0", help="seconds each build sleeps")
    args = ap.parse_args()
    for tool in ("nix-build", "runc"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (scripts/setup.sh)")
    if not os.path.exists(args.tvix):
        sys.exit(f"{args.tvix} not found: cargo build --release")

    work = tempfile.mkdtemp(prefix="tvix-graph-bench-")
    env = dict(os.environ, TVIX_SHOW_STATS="1")
    env.pop("TVIX_BUILD_SERVICE", None)
    try:
        def nonce():
            return "gb" + uuid.uuid4().hex[:12]

        common = ["--argstr", "sleep", args.sleep, f"-j{args.jobs}", "--no-out-link"]
        # tvix first, so nothing nix-build leaves in /nix/store can help it.
        store = os.path.join(work, "tvix-store")
        t_build, t_out, t_err = timed([args.tvix, "build", GRAPH, "--argstr", "nonce",
                                       nonce(), *common, "--store", f"local://{store}"],
                                      env)
        t_stats = stats(t_err)
        n_build, n_out, _ = timed(["nix-build", GRAPH, "--argstr", "nonce", nonce(),
                                   *common, *NIX_OPTS])
        if len(t_out.split()) != 1 or len(n_out.split()) != 1:
            sys.exit("expected one output path from each build")

        # The coordinator's cost on 20 000 derivations: the package set, every package a
        # target (the file itself only counts them).
        with open(PKGSET) as f:
            src = f.read()
        body, _, _ = src.rpartition("\nin ")
        if not body:
            sys.exit(f"unexpected shape of {PKGSET}")
        pkgset = os.path.join(work, "pkgset-all.nix")
        with open(pkgset, "w") as f:
            f.write(body + '\nin builtins.genList (i: pkgs."pkg${toString i}") n\n')
        dstore = os.path.join(work, "dry-store")
        d_total, _, d_err = timed([args.tvix, "build", pkgset, "--dry-run",
                                   "--store", f"local://{dstore}"], env)
        d_stats = stats(d_err)
        n_drvs = int(d_stats["derivations"])
        istore = os.path.join(work, "inst-store")
        i_total, _, _ = timed([args.tvix, "instantiate", pkgset,
                               "--store", f"local://{istore}"], env)

        print(f"A graph of 50 derivations, built with -j{args.jobs} "
              f"(each build sleeps {args.sleep} s)")
        print(f"{'':34} {'tvix':>10} {'nix':>10} {'tvix/nix':>10}")
        print(f"{'wall-clock time (s)':34} {t_build:>10.2f} {n_build:>10.2f} "
              f"{t_build / n_build:>10.2f}")
        print(f"coordinator (tvix, ms): loading {t_stats['load_ms']:.1f}, planning "
              f"{t_stats['plan_ms']:.1f}, registering {t_stats['register_ms']:.1f} "
              f"({int(t_stats['registered'])} derivations: "
              f"{t_stats['register_ms'] / max(t_stats['registered'], 1):.2f} ms each)")
        print()
        print(f"pkgset.nix, {n_drvs} derivations, tvix build --dry-run")
        print(f"{'dry run, total (s)':34} {d_total:>10.2f}")
        print(f"{'tvix instantiate alone (s)':34} {i_total:>10.2f}")
        per = max(d_total - i_total, 0.0) / n_drvs * 1e6
        print(f"{'difference per derivation (us)':34} {per:>10.1f}")
        own = (d_stats["load_ms"] + d_stats["plan_ms"]) / n_drvs * 1e3
        print(f"{'coordinator own, per drv (us)':34} {own:>10.1f}   "
              f"(loading {d_stats['load_ms']:.0f} ms, planning {d_stats['plan_ms']:.0f} ms)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
