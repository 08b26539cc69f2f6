#!/usr/bin/env python3
"""Compare the tvix store with nix-store, side by side in one run.

    scripts/store-bench.py                      # 1 GiB tree of 10 000 files
    scripts/store-bench.py --size-mib 256       # a smaller tree, same file count

1. Import: `tvix store import TREE` into a fresh local store vs `nix-store --add TREE`
   into a fresh throwaway Nix store (`--store local?root=DIR`, so /nix is untouched).
   Both must print the same store path.
2. Export: `tvix store export STOREPATH` vs `nix-store --dump` of the path in the
   throwaway store, both to /dev/null.

   Import and export are run `--runs` times (5 by default; each import into fresh stores,
   with a `sync` before it, the tools taking turns at going first) and the medians are
   compared: a single run on a shared machine mostly measures the disk at that moment.
3. Deduplication: a second version of the tree in which 1% of the bytes differ (10% of
   the files each get a run of new bytes over 10% of their length, at a random offset),
   imported into both stores; the stored size after both versions, against the size of
   the two trees and against the Nix store.

The tree is generated deterministically (seeded). Timings are taken with the page cache
warm for both tools (the tree was just written). Ratios tvix/nix: below 1
means tvix is faster or smaller.
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


def make_tree(root: Path, total: int, files: int, seed: int) -> int:
    """Writes `files` files of random bytes, `total` bytes in all, in 100 directories of
    100 files (fewer for smaller counts); sizes vary between half and 1.5 times the mean.
    Returns the bytes written."""
    rng = random.Random(seed)
    mean = total // files
    sizes = [rng.randint(mean // 2, mean + mean // 2) for _ in range(files)]
    # Make the sizes add up to `total` exactly.
    sizes[-1] = max(0, sizes[-1] + total - sum(sizes))
    per_dir = 100
    written = 0
    for i, size in enumerate(sizes):
        d = root / f"d{i // per_dir:03}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05}.bin").write_bytes(rng.randbytes(size))
        written += size
    return written


def mutate_tree(src: Path, dst: Path, seed: int) -> int:
    """Copies `src` to `dst`, then overwrites 10% of the length of 10% of the files with
    new bytes (1% of all bytes). Returns the bytes changed."""
    shutil.copytree(src, dst)
    rng = random.Random(seed)
    files = sorted(p for p in dst.rglob("*") if p.is_file())
    changed = 0
    for p in rng.sample(files, max(1, len(files) // 10)):
        data = bytearray(p.read_bytes())
        n = len(data) // 10
        if n == 0:
            continue
        at = rng.randrange(0, len(data) - n + 1)
        data[at:at + n] = rng.randbytes(n)
        p.write_bytes(bytes(data))
        changed += n
    return changed


def du(path: Path) -> int:
    """Bytes of disk space used under `path` (allocated blocks, as `du -s --block-size=1`)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for n in filenames + dirnames:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def apparent(path: Path) -> int:
    """Bytes of file contents under `path`."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def timed(argv, env=None, stdout=subprocess.PIPE) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, stdout=stdout, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"{argv[0]} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return dt, (r.stdout or b"")


def sync():
    # Both tools leave dirty pages behind; write them back between measurements so one
    # tool's writeback does not land in the other's time.
    os.sync()


def median(ts: list) -> float:
    return statistics.median(ts)


def remove(path: Path):
    """Deletes a store (the Nix store is read-only: made writable first)."""
    subprocess.run(["chmod", "-R", "u+w", str(path)], stderr=subprocess.DEVNULL)
    shutil.rmtree(path, ignore_errors=True)


def timed_sync() -> float:
    t0 = time.perf_counter()
    os.sync()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024, help="tree size (default 1024)")
    ap.add_argument("--files", type=int, default=10_000, help="number of files (default 10000)")
    ap.add_argument("--tvix", type=Path, default=default_tvix(), help="tvix binary (default: release build)")
    ap.add_argument("--workdir", type=Path, default=None, help="where to put trees and stores (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--runs", type=int, default=5, help="runs of import and export; medians are shown (default 5)")
    args = ap.parse_args()

    if not args.tvix.exists():
        sys.exit(f"{args.tvix} not found: build it with `cargo build --release -p tvix`")
    if shutil.which("nix-store") is None:
        sys.exit("nix-store not found: install Nix (Debian package nix-bin)")

    work = Path(tempfile.mkdtemp(prefix="store-bench-", dir=args.workdir))
    try:
        tree = work / "tree"
        total = args.size_mib * 1024 * 1024
        t0 = time.perf_counter()
        size = make_tree(tree, total, args.files, seed=1)
        print(f"tree: {args.files} files, {size / 2**20:.0f} MiB (generated in {time.perf_counter() - t0:.1f} s)")

        env = dict(os.environ)
        env.pop("TVIX_STORE", None)
        env.pop("NIX_REMOTE", None)

        # Each import goes into fresh stores; the last run's stores are kept for the
        # export and deduplication steps. Both tools read the tree from a warm page cache. tvix makes the data durable before it registers a path
        # (fdatasync); nix-store does not sync file contents, so the `sync` right after it
        # is timed too, to compare like with like.
        nix_imps, nix_syncs, tvix_imps, tvix_syncs = [], [], [], []
        for run in range(args.runs):
            tvix_store = work / f"tvix-store-{run}"
            tvix_url = f"local://{tvix_store}"
            nix_root = work / f"nix-root-{run}"
            nix_url = f"local?root={nix_root}"
            if run > 0:
                remove(work / f"tvix-store-{run - 1}")
                remove(work / f"nix-root-{run - 1}")
            def run_nix():
                sync()
                t, out = timed(["nix-store", "--store", nix_url, "--add", str(tree)], env)
                nix_imps.append(t)
                nix_syncs.append(timed_sync())
                return out.decode().strip()

            def run_tvix():
                sync()
                t, out = timed([str(args.tvix), "store", "--store", tvix_url, "import", str(tree)], env)
                tvix_imps.append(t)
                tvix_syncs.append(timed_sync())
                return out.decode().strip()

            # Alternate which tool goes first: the disk's state (writeback of the deleted
            # stores, of the other tool's data) otherwise always favours the same one.
            if run % 2 == 0:
                nix_path, tvix_path = run_nix(), run_tvix()
            else:
                tvix_path, nix_path = run_tvix(), run_nix()
            if tvix_path != nix_path:
                sys.exit(f"store paths differ: tvix {tvix_path}, nix {nix_path}")

        physical = nix_root / nix_path.lstrip("/")
        nix_exps, tvix_exps = [], []
        for _ in range(args.runs):
            t, _ = timed(["nix-store", "--dump", str(physical)], dict(env, NIX_REMOTE="dummy://"), subprocess.DEVNULL)
            nix_exps.append(t)
            t, _ = timed([str(args.tvix), "store", "--store", tvix_url, "export", tvix_path], env, subprocess.DEVNULL)
            tvix_exps.append(t)

        # Deduplication.
        v2 = work / "v2" / "tree"  # same name, so the store paths differ only by content
        changed = mutate_tree(tree, v2, seed=2)
        sync()
        nix_imp2, out = timed(["nix-store", "--store", nix_url, "--add", str(v2)], env)
        nix_path2 = out.decode().strip()
        tvix_imp2, out = timed([str(args.tvix), "store", "--store", tvix_url, "import", str(v2)], env)
        if out.decode().strip() != nix_path2:
            sys.exit("store paths of the second version differ")
        sync()
        trees = apparent(tree) + apparent(v2)
        tvix_disk = du(tvix_store)
        nix_disk = du(nix_root / "nix")

        mib = lambda b: b / 2**20
        rate = lambda s: mib(size) / s
        tvix_imp, nix_imp = median(tvix_imps), median(nix_imps)
        durable_t = median([a + b for a, b in zip(tvix_imps, tvix_syncs)])
        durable_n = median([a + b for a, b in zip(nix_imps, nix_syncs)])
        tvix_exp, nix_exp = median(tvix_exps), median(nix_exps)
        print()
        print(f"medians of {args.runs} runs (each run's times in the notes below)")
        print(f"{'':28}{'tvix':>12}{'nix-store':>12}{'tvix/nix':>10}")
        print(f"{'import (s)':28}{tvix_imp:12.2f}{nix_imp:12.2f}{tvix_imp / nix_imp:10.2f}")
        print(f"{'  MiB/s':28}{rate(tvix_imp):12.0f}{rate(nix_imp):12.0f}")
        print(f"{'import + sync (s)':28}{durable_t:12.2f}{durable_n:12.2f}{durable_t / durable_n:10.2f}")
        print(f"{'export (s)':28}{tvix_exp:12.2f}{nix_exp:12.2f}{tvix_exp / nix_exp:10.2f}")
        print(f"{'  MiB/s':28}{rate(tvix_exp):12.0f}{rate(nix_exp):12.0f}")
        print(f"{'import of version 2 (s)':28}{tvix_imp2:12.2f}{nix_imp2:12.2f}{tvix_imp2 / nix_imp2:10.2f}")
        print()
        show = lambda ts: " ".join(f"{t:.2f}" for t in ts)
        print(f"import runs: tvix {show(tvix_imps)}; nix-store {show(nix_imps)}")
        print(f"export runs: tvix {show(tvix_exps)}; nix-store {show(nix_exps)}")
        print()
        print(f"version 2 differs in {mib(changed):.1f} MiB ({100 * changed / size:.2f}% of the bytes)")
        print(f"{'both versions, file contents':40}{mib(trees):10.0f} MiB")
        print(f"{'tvix store on disk':40}{mib(tvix_disk):10.0f} MiB  ({tvix_disk / trees:.3f} of the trees)")
        print(f"{'nix store on disk (store + db)':40}{mib(nix_disk):10.0f} MiB  ({nix_disk / trees:.3f} of the trees)")
        print(f"{'tvix / nix stored size':40}{tvix_disk / nix_disk:10.3f}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            remove(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
