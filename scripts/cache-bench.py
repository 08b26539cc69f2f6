#!/usr/bin/env python3
"""Substituting a closure from a local `file://` binary cache and from `tvix store serve`
on loopback: tvix vs nix-store -r.

    scripts/cache-bench.py                          # 1 GiB closure, zstd cache
    scripts/cache-bench.py --size-mib 256 --compression xz

1. Setup: a closure of `--paths` data directories (random bytes, `--size-mib` in all)
   and a text file referring to all of them is added to a throwaway Nix store
   (`--store local?root=DIR`, so /nix is untouched) and copied with
   `nix copy --to 'file://CACHE?compression=C&secret-key=SK'` (keys from
   `nix-store --generate-binary-cache-key`).
2. tvix: `tvix store copy --from file://CACHE --to local://FRESH TOP` (the binary cache
   substituter `tvix build` uses: narinfos checked against the trusted key, NARs streamed
   through the decompressor into the castore, hash and size verified before
   registration), into a fresh store each run.
3. nix: `nix-store --store local?root=FRESH -r TOP --option substituters file://CACHE
   --option trusted-public-keys PK`, into a fresh throwaway store each run.
4. The same two from `tvix store serve --listen 127.0.0.1:0 --secret-key-file SK
   --compression C` over a tvix store holding the closure (copied from the cache once),
   so NARs are rendered from the castore and compressed as they are sent (unless
   `--no-serve`).

Each is run `--runs` times (taking turns at going first, `sync` before each) and the
medians are printed side by side, with the throughput of the NAR bytes. Ratio tvix/nix
below 1 means tvix is faster. The load average is printed before and after: on a shared
machine, read the figures with it.
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def default_tvix() -> Path:
    return REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "release" / "tvix"


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{r.stderr}")
    return r.stdout


def make_data(root: Path, paths: int, total: int, seed: int) -> list:
    """`paths` directories of 8 files each, `total` random bytes in all."""
    rng = random.Random(seed)
    dirs = []
    per_file = total // (paths * 8)
    for p in range(paths):
        d = root / f"data{p}"
        d.mkdir(parents=True)
        for f in range(8):
            (d / f"f{f}.bin").write_bytes(rng.randbytes(per_file))
        dirs.append(d)
    return dirs


def timed(cmd, env=None) -> float:
    subprocess.run(["sync"])
    start = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    took = time.monotonic() - start
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{r.stderr}")
    return took


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--paths", type=int, default=4)
    ap.add_argument("--compression", default="zstd", choices=["zstd", "xz", "bzip2", "none"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tvix", type=Path, default=default_tvix())
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp"))
    ap.add_argument("--no-serve", action="store_true",
                    help="only the file:// cache, not tvix store serve")
    args = ap.parse_args()
    if not args.tvix.exists():
        sys.exit(f"{args.tvix} not found: cargo build --release first")

    work = Path(tempfile.mkdtemp(prefix="cache-bench-", dir=args.workdir))
    env = dict(os.environ)
    env.pop("NIX_REMOTE", None)
    try:
        total = args.size_mib * 1024 * 1024
        print(f"setup: {args.paths} paths, {args.size_mib} MiB of random bytes, "
              f"{args.compression} cache", file=sys.stderr)
        dirs = make_data(work / "src", args.paths, total, 42)
        root = work / "nix-root"
        nix_store = f"local?root={root}"
        refs = " ".join("${" + str(d) + "}" for d in dirs)
        top = run(["nix-instantiate", "--store", nix_store, "--read-write-mode", "--eval",
                   "-E", f'builtins.toFile "closure-top" "{refs}"'], env=env).strip().strip('"')
        shutil.rmtree(work / "src")
        sk, pk = work / "key.sk", work / "key.pk"
        run(["nix-store", "--generate-binary-cache-key", "bench-1", sk, pk])
        pk_text = pk.read_text().strip()
        cache = work / "cache"
        t0 = time.monotonic()
        run(["nix", "--extra-experimental-features", "nix-command", "copy", "--from", nix_store,
             "--to", f"file://{cache}?compression={args.compression}&secret-key={sk}", top],
            env=env)
        print(f"setup: nix copy --to file:// took {time.monotonic() - t0:.1f} s",
              file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)
        nar_bytes = 0
        for ni in cache.glob("*.narinfo"):
            for line in ni.read_text().splitlines():
                if line.startswith("NarSize: "):
                    nar_bytes += int(line.split()[1])
        url = f"file://{cache}"
        sources = [("file://", url)]
        server = None
        if not args.no_serve:
            served = work / "served"
            run([args.tvix, "store", "copy", "--from", url, "--to", f"local://{served}",
                 "--option", "trusted-public-keys", pk_text, top], env=env)
            server = subprocess.Popen(
                [args.tvix, "store", "--store", f"local://{served}", "serve", "--listen",
                 "127.0.0.1:0", "--secret-key-file", sk, "--compression", args.compression],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
            line = server.stderr.readline()
            if "http://" not in line:
                server.kill()
                sys.exit(f"tvix store serve did not start: {line}")
            sources.append(("tvix store serve", "http://" + line.rsplit("http://", 1)[1].strip()))
        print(f"load average before: {os.getloadavg()}", file=sys.stderr)

        times = {}
        try:
            for name, src in sources:
                for i in range(args.runs):
                    order = ["tvix", "nix"] if i % 2 == 0 else ["nix", "tvix"]
                    for tool in order:
                        fresh = work / f"fresh-{tool}-{i}"
                        if tool == "tvix":
                            cmd = [args.tvix, "store", "copy", "--from", src, "--to",
                                   f"local://{fresh}", "--option", "trusted-public-keys",
                                   pk_text, top]
                        else:
                            cmd = ["nix-store", "--store", f"local?root={fresh}", "-r", top,
                                   "--option", "substituters", src,
                                   "--option", "trusted-public-keys", pk_text]
                        times.setdefault((name, tool), []).append(timed(cmd, env))
                        shutil.rmtree(fresh, ignore_errors=True)
        finally:
            if server is not None:
                server.kill()
                server.wait()
        load_after = os.getloadavg()

        mib = nar_bytes / (1024 * 1024)
        print(f"\nsubstituting {args.paths + 1} paths, {mib:.0f} MiB of NAR, "
              f"{args.compression} (median of {args.runs}):")
        print(f"{'source':22}{'tvix (s)':>10}{'nix-store -r (s)':>18}{'tvix/nix':>10}"
              f"{'tvix MiB/s':>12}{'nix MiB/s':>11}")
        for name, _ in sources:
            tv = statistics.median(times[(name, "tvix")])
            nx = statistics.median(times[(name, "nix")])
            print(f"{name:22}{tv:>10.2f}{nx:>18.2f}{tv / nx:>10.2f}{mib / tv:>12.0f}"
                  f"{mib / nx:>11.0f}")
        for (name, tool), ts in times.items():
            print(f"runs {name} {tool}: {', '.join(f'{t:.2f}' for t in ts)}")
        print(f"load average after: {load_after}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
