#!/usr/bin/env python3
"""Build overhead: tvix build against nix-build, side by side in one run.

    scripts/build-bench.py              # 100 derivations
    scripts/build-bench.py --count 20

One expression holds COUNT trivial, independent derivations (busybox's sh writing one
line), each named with a fresh nonce so nothing exists beforehand in either store. They
are built one after the other: `tvix build` (OCI backend, a fresh `local://` store) first,
then `nix-build -j1` (sandboxed, as root, no substituters).

For each tool the evaluation alone is timed too (`tvix instantiate` into another fresh
store, `nix-instantiate` with another nonce), and the per-build overhead is
(build time - evaluation time) / COUNT: what setting up a sandbox, running the builder,
collecting, hashing and registering an output costs.

Needs the tvix binary (`--tvix`, default target/release/tvix or $CARGO_TARGET_DIR's),
nix-build, runc, root and /var/lib/tvix-tests/busybox (scripts/setup.sh).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

EXPR = """{ nonce, count }:
let
  bb = builtins.path { path = /var/lib/tvix-tests/busybox; name = "busybox"; };
  mk = i: derivation {
    name = "bench-${toString i}-${nonce}";
    system = "x86_64-linux";
    builder = "${bb}/bin/sh";
    args = [ "-c" "echo ${toString i} > $out" ];
  };
in builtins.genList mk count
"""


def default_tvix():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "target")
    return os.path.join(target, "release", "tvix")


def timed(cmd, **kw):
    start = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    elapsed = time.monotonic() - start
    if r.returncode != 0:
        sys.stderr.write(r.stderr.decode(errors="replace")[-4000:])
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}")
    return elapsed, r.stdout.decode().split()


NIX_OPTS = ["--option", "sandbox", "true", "--option", "build-users-group", "",
            "--option", "substituters", ""]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--tvix", default=default_tvix())
    args = ap.parse_args()
    for tool in ("nix-build", "nix-instantiate", "runc"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (scripts/setup.sh)")
    if not os.path.exists(args.tvix):
        sys.exit(f"{args.tvix} not found: cargo build --release")

    work = tempfile.mkdtemp(prefix="tvix-build-bench-")
    try:
        expr = os.path.join(work, "bench.nix")
        with open(expr, "w") as f:
            f.write(EXPR)
        count = ["--arg", "count", str(args.count)]

        def nonce():
            return "b" + uuid.uuid4().hex[:12]

        # tvix first.
        store = os.path.join(work, "tvix-store")
        t_build, t_paths = timed([args.tvix, "build", expr, "--argstr", "nonce", nonce(),
                                  *count, "--no-out-link", "--store", f"local://{store}"])
        eval_store = os.path.join(work, "tvix-eval-store")
        t_eval, _ = timed([args.tvix, "instantiate", expr, "--argstr", "nonce", nonce(),
                           *count, "--store", f"local://{eval_store}"])

        n_build, n_paths = timed(["nix-build", expr, "-j1", "--argstr", "nonce", nonce(),
                                  *count, "--no-out-link", *NIX_OPTS])
        n_eval, _ = timed(["nix-instantiate", expr, "--argstr", "nonce", nonce(), *count])

        if len(t_paths) != args.count or len(n_paths) != args.count:
            sys.exit(f"expected {args.count} outputs, got {len(t_paths)} (tvix) and "
                     f"{len(n_paths)} (nix)")

        def per_build(total, ev):
            return max(total - ev, 0.0) / args.count * 1000

        rows = [
            ("total build time (s)", f"{t_build:.2f}", f"{n_build:.2f}", t_build / n_build),
            ("evaluation alone (s)", f"{t_eval:.2f}", f"{n_eval:.2f}",
             t_eval / n_eval if n_eval else float("nan")),
            ("per-build overhead (ms)", f"{per_build(t_build, t_eval):.1f}",
             f"{per_build(n_build, n_eval):.1f}",
             per_build(t_build, t_eval) / per_build(n_build, n_eval)
             if per_build(n_build, n_eval) else float("nan")),
        ]
        print(f"{args.count} trivial derivations, built sequentially (tvix build vs nix-build -j1)")
        print(f"{'':26} {'tvix':>10} {'nix':>10} {'tvix/nix':>10}")
        for name, t, n, ratio in rows:
            print(f"{name:26} {t:>10} {n:>10} {ratio:>10.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
