#!/usr/bin/env python3
"""Figures for `tvix store mount`, each side by side with the same files on disk.

    scripts/mount-bench.py                  # 1 GiB file, 10 000 small files
    scripts/mount-bench.py --big-mib 256    # a smaller big file

1. Sequential read of a 1 GiB file (`cat FILE > /dev/null`) through a mount of a local
   store vs the file on disk. Each run mounts afresh, so the mount's page cache is cold;
   the store's packs and the file on disk are both in the page cache (just written), so
   this compares the FUSE path with the kernel's, not disks.
2. `find DIR` and `ls -R DIR` over a tree of 10 000 small files in 100 directories,
   through a fresh mount vs on disk (dentries warm there).
3. First-byte latency over gRPC: a mount of a `tvix store daemon` (Unix socket); for
   files not read before (their names already looked up), the time from `open` to the
   first byte read; median and worst of 50 files.
4. Bytes pulled over gRPC by reading one 64 KiB file of a 100 MiB input (a store path
   holding a 100 MiB file and the small one), counted by the mount's client
   (`TVIX_SHOW_STATS=1`: "blob bytes received").

Runs are repeated `--runs` times (3 by default) and medians compared. Ratios mount/disk:
above 1 means the mount is slower.

Figures measured on the project's machine (2 shared cores, 2026-12-04, `--runs 3`):

                                         mount      disk  mount/disk
    cat 1024 MiB file (s)                0.743     0.120        6.19
    find, 10000 files (s)                0.025     0.005        4.71
    ls -R, 10000 files (s)               0.029     0.006        4.65
      MiB/s                               1378      8526
    over gRPC (tvix store daemon on a Unix socket):
      first byte of a small file not read before: median 0.33 ms, worst 1.04 ms (50 files)
      first byte of the 1024 MiB file: 2.80 ms
      reading one 64 KiB file of a 100 MiB input pulled 65536 bytes (0.062% of the input)
"""
import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def default_tvix() -> Path:
    return REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "release" / "tvix"


def write_random(path: Path, size: int, seed: int):
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 24)
            f.write(rng.randbytes(n))
            left -= n


def make_small_tree(root: Path, files: int, seed: int):
    """`files` files of 0 to 4 KiB in directories of 100."""
    rng = random.Random(seed)
    for i in range(files):
        d = root / f"d{i // 100:03}"
        if i % 100 == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05}").write_bytes(rng.randbytes(rng.randint(0, 4096)))


class Mount:
    """A running `tvix store mount`, stopped (SIGTERM) by `stop`, which returns its
    standard error."""

    def __init__(self, tvix: Path, url: str, where: Path):
        where.mkdir(parents=True, exist_ok=True)
        self.where = where
        env = dict(os.environ, TVIX_SHOW_STATS="1")
        self.proc = subprocess.Popen(
            [str(tvix), "store", "mount", str(where), "--store", url, "--threads", "4"],
            stderr=subprocess.PIPE, env=env)
        parent = os.stat(where.parent).st_dev
        deadline = time.monotonic() + 30
        while os.stat(where).st_dev == parent:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                sys.exit(f"mount on {where} failed: {self.proc.stderr.read().decode()}")
            time.sleep(0.01)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            subprocess.run(["fusermount3", "-u", str(self.where)])
            sys.exit(f"mount on {self.where} did not stop")
        return err.decode()


class Daemon:
    """`tvix store daemon` on a Unix socket."""

    def __init__(self, tvix: Path, store: str, socket: Path):
        self.proc = subprocess.Popen(
            [str(tvix), "store", "--store", store, "daemon", "--listen", f"unix://{socket}"],
            stderr=subprocess.PIPE)
        line = self.proc.stderr.readline().decode()
        if " on " not in line:
            self.proc.kill()
            sys.exit(f"daemon did not start: {line}")
        self.url = line.strip().rsplit(" on ", 1)[1]

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def timed(argv) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def import_path(tvix: Path, store: str, path: Path) -> str:
    out = subprocess.run([str(tvix), "store", "import", str(path), "--store", store],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip().rsplit("/", 1)[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tvix", type=Path, default=default_tvix())
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", type=Path, help="work directory (default: a temporary one)")
    args = ap.parse_args()
    tvix = args.tvix
    with tempfile.TemporaryDirectory(dir=args.work or "/var/tmp", prefix="mount-bench.") as w:
        work = Path(w)
        store = f"local://{work / 'store'}"
        big_dir, small_dir, input_dir = work / "big", work / "small", work / "input"
        big_dir.mkdir()
        t0 = time.perf_counter()
        write_random(big_dir / "file", args.big_mib << 20, 1)
        make_small_tree(small_dir, args.files, 2)
        input_dir.mkdir()
        write_random(input_dir / "big", 100 << 20, 3)
        write_random(input_dir / "wanted", 64 << 10, 4)
        big_p = import_path(tvix, store, big_dir)
        small_p = import_path(tvix, store, small_dir)
        input_p = import_path(tvix, store, input_dir)
        print(f"generated and imported in {time.perf_counter() - t0:.1f} s")

        mnt = work / "mnt"
        rows = []

        def compare(name, on_mount, on_disk, per_run_mount=True):
            """Medians of `on_mount(mount dir)` (fresh mount each run) and `on_disk()`."""
            tm, td = [], []
            for _ in range(args.runs):
                m = Mount(tvix, store, mnt)
                try:
                    tm.append(on_mount(mnt))
                finally:
                    m.stop()
                td.append(on_disk())
            rows.append((name, statistics.median(tm), statistics.median(td), tm, td))

        compare(f"cat {args.big_mib} MiB file (s)",
                lambda m: timed(["cat", str(m / big_p / "file")]),
                lambda: timed(["cat", str(big_dir / "file")]))
        compare(f"find, {args.files} files (s)",
                lambda m: timed(["find", str(m / small_p)]),
                lambda: timed(["find", str(small_dir)]))
        compare(f"ls -R, {args.files} files (s)",
                lambda m: timed(["ls", "-R", str(m / small_p)]),
                lambda: timed(["ls", "-R", str(small_dir)]))

        # Over gRPC: first-byte latency and bytes pulled.
        daemon = Daemon(tvix, store, work / "daemon.sock")
        try:
            m = Mount(tvix, daemon.url, work / "mnt-grpc")
            try:
                base = work / "mnt-grpc" / small_p
                names = [base / f"d{i // 100:03}" / f"f{i:05}"
                         for i in range(0, args.files, max(1, args.files // 50))][:50]
                lat = []
                for n in names:
                    if os.stat(n).st_size == 0:
                        continue
                    t = time.perf_counter()
                    with open(n, "rb") as f:
                        f.read(1)
                    lat.append(time.perf_counter() - t)
                t = time.perf_counter()
                with open(work / "mnt-grpc" / big_p / "file", "rb") as f:
                    f.read(1)
                big_first = time.perf_counter() - t
            finally:
                m.stop()
            m = Mount(tvix, daemon.url, work / "mnt-grpc")
            try:
                data = (work / "mnt-grpc" / input_p / "wanted").read_bytes()
                assert data == (input_dir / "wanted").read_bytes()
            finally:
                err = m.stop()
        finally:
            daemon.stop()
        pulled = next(int(line.rsplit(" ", 1)[1]) for line in err.splitlines()
                      if line.startswith("blob bytes received: "))

        print()
        print(f"medians of {args.runs} runs (fresh mount each run)")
        print(f"{'':32}{'mount':>10}{'disk':>10}{'mount/disk':>12}")
        for name, m_, d, _, _ in rows:
            print(f"{name:32}{m_:10.3f}{d:10.3f}{m_ / d:12.2f}")
        mib = args.big_mib
        print(f"{'  MiB/s':32}{mib / rows[0][1]:10.0f}{mib / rows[0][2]:10.0f}")
        print()
        for name, _, _, tm, td in rows:
            show = lambda ts: ", ".join(f"{t:.3f}" for t in ts)
            print(f"{name}: mount {show(tm)}; disk {show(td)}")
        print()
        print("over gRPC (tvix store daemon on a Unix socket):")
        print(f"  first byte of a small file not read before: median "
              f"{statistics.median(lat) * 1e3:.2f} ms, worst {max(lat) * 1e3:.2f} ms "
              f"({len(lat)} files)")
        print(f"  first byte of the {mib} MiB file: {big_first * 1e3:.2f} ms")
        print(f"  reading one 64 KiB file of a 100 MiB input pulled {pulled} bytes "
              f"({pulled / (100 << 20) * 100:.3f}% of the input)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
