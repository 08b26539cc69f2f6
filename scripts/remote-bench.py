#!/usr/bin/env python3
"""Overhead of a remote build against a local one.

Builds the same small graph of busybox derivations (a fan of leaves under a top; each
run's derivations carry a fresh nonce, so everything is built every time) three ways and
prints the wall-clock times side by side (median of --runs runs):

  local store     `tvix build` with `local://` and `oci://` (runc here): the usual setup;
  shared store    the same builds here, but through a `tvix store daemon` on loopback;
  remote builder  `--max-jobs 0 --option builders ...`: every build on one
                  `tvix builder daemon` on loopback sharing that store daemon.

The difference between the last two is what building on another machine costs beyond
sharing the store: the gRPC build call and the builder's own FUSE mount of the store.
Needs root, runc and the static busybox (scripts/setup.sh).

Usage: scripts/remote-bench.py [--tvix PATH] [--leaves N] [--jobs N] [--runs N]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

GRAPH = r"""
{ nonce, leaves }:
let
  bb = builtins.path { path = /var/lib/tvix-tests/busybox; name = "busybox"; };
  mk = name: script: inputs: derivation {
    name = "${name}-${nonce}";
    system = "x86_64-linux";
    builder = "${bb}/bin/sh";
    PATH = "${bb}/bin";
    inherit inputs;
    args = [ "-c" "set -e\n${script}" ];
  };
  leaf = i: mk "leaf${toString i}" "echo ${toString i} ${nonce} > $out" [];
in mk "top" "cat $inputs > $out" (builtins.genList leaf (builtins.fromJSON leaves))
"""


def default_tvix():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    return os.path.join(target, "release", "tvix")


class Daemon:
    """A `tvix ... daemon` process; its URL is read from the line it prints first."""

    def __init__(self, args):
        env = {k: v for k, v in os.environ.items() if k not in ("TVIX_STORE", "TVIX_BUILD_SERVICE")}
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, env=env, text=True)
        line = self.proc.stderr.readline()
        if " on " not in line:
            self.stop()
            sys.exit(f"{args[1:3]} did not start: {line!r}")
        self.url = line.strip().rsplit(" on ", 1)[1]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def timed_build(tvix, graph, nonce, leaves, args, cwd):
    cmd = [tvix, "build", "--no-out-link", "--log-format", "raw", "-Q", graph,
           "--argstr", "nonce", nonce, "--argstr", "leaves", str(leaves)] + args
    env = {k: v for k, v in os.environ.items()
           if k not in ("TVIX_STORE", "TVIX_BUILD_SERVICE", "NIX_CONFIG")}
    t0 = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit(f"build failed ({' '.join(args)}):\n{r.stderr}")
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tvix", default=default_tvix())
    ap.add_argument("--leaves", type=int, default=15, help="leaves under the top (default 15)")
    ap.add_argument("--jobs", type=int, default=4, help="builds at once (default 4)")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if not os.path.exists(a.tvix):
        sys.exit(f"no tvix binary at {a.tvix} (cargo build --release, or --tvix)")
    tmp = tempfile.mkdtemp(prefix="tvix-remote-bench-", dir="/var/tmp")
    graph = os.path.join(tmp, "graph.nix")
    with open(graph, "w") as f:
        f.write(GRAPH)
    daemons = []
    try:
        store = Daemon([a.tvix, "store", "--store", f"local://{tmp}/shared-store", "daemon",
                        "--listen", "127.0.0.1:0"])
        daemons.append(store)
        builder = Daemon([a.tvix, "builder", "daemon", "--listen", "127.0.0.1:0",
                          "--store", store.url, "--build-service", f"oci://{tmp}/oci-builder"])
        daemons.append(builder)
        ways = [
            ("local store", ["--store", f"local://{tmp}/local-store",
                             "--build-service", f"oci://{tmp}/oci-local", "-j", str(a.jobs)]),
            ("shared store", ["--store", store.url,
                              "--build-service", f"oci://{tmp}/oci-local", "-j", str(a.jobs)]),
            ("remote builder", ["--store", store.url, "-j", "0", "--option", "builders",
                                f"{builder.url} - - {a.jobs}"]),
        ]
        times = {name: [] for name, _ in ways}
        for run in range(a.runs):
            for name, args in ways:
                nonce = f"{os.getpid()}-{run}-{name.replace(' ', '-')}-{time.time_ns()}"
                times[name].append(timed_build(a.tvix, graph, nonce, a.leaves, args, tmp))
        n = a.leaves + 1
        print(f"{n} derivations, {a.jobs} at once, median of {a.runs} runs")
        print(f"{'':16}{'total s':>10}{'ms/drv':>10}{'vs local':>10}")
        base = statistics.median(times["local store"])
        for name, _ in ways:
            m = statistics.median(times[name])
            print(f"{name:16}{m:10.2f}{1000 * m / n:10.0f}{m / base:9.2f}x")
    finally:
        for d in reversed(daemons):
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
