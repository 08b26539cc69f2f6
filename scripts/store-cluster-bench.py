#!/usr/bin/env python3
"""The store past one machine against the local store, side by side in one run.

    scripts/store-cluster-bench.py                  # 256 MiB tree of 2 000 files
    scripts/store-cluster-bench.py --size-mib 1024 --files 10000

Starts a throwaway PostgreSQL (as `nobody` when run as root) and an S3-compatible server
(`moto_server`, installed by scripts/setup.sh) on loopback, then for each store:

- local:   `tvix store daemon --store local:///DIR`
- s3+pg:   `tvix store daemon --chunks s3://... --metadata postgresql://...`

imports the tree through the daemon (`tvix store --store grpc+http://... import TREE`,
into a fresh store each run) and exports its NAR through it to /dev/null; medians of
`--runs` runs. For the S3 store, the object store requests the daemon made (counted in
the product: the daemon prints them when it stops, with TVIX_SHOW_STATS=1) are shown per
GiB imported, with the objects found in the bucket afterwards.

The tree is `scripts/store-bench.py`'s (seeded random files in directories of 100).
moto keeps objects in memory and is a Python server: its throughput is that of a test
server, not of S3; the request counts are what carries over.
"""
import argparse
import importlib.util
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def load_store_bench():
    spec = importlib.util.spec_from_file_location("store_bench", REPO / "scripts" / "store-bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, limit: float = 60.0):
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not start within {limit:.0f} s")
        time.sleep(0.1)


def as_server(argv):
    if os.getuid() == 0:
        return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--reset-env"] + argv
    return argv


def start_postgres(work: Path):
    d = work / "pg"
    d.mkdir()
    if os.getuid() == 0:
        shutil.chown(d, "nobody", "nogroup")
    r = subprocess.run(as_server([str(PG_BIN / "initdb"), "-A", "trust", "-U", "tvix", "--no-sync", "-D", str(d / "data")]),
                       capture_output=True)
    if r.returncode != 0:
        sys.exit(f"initdb failed: {r.stderr.decode(errors='replace')}")
    port = free_port()
    proc = subprocess.Popen(as_server([str(PG_BIN / "postgres"), "-D", str(d / "data"), "-h", "127.0.0.1",
                                       "-p", str(port), "-k", str(d)]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for("PostgreSQL", lambda: subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode == 0)
    return proc, f"postgresql://tvix@127.0.0.1:{port}/postgres"


def moto_server() -> str:
    found = shutil.which("moto_server")
    if found:
        return found
    venv = Path("/var/lib/tvix-tests/moto/bin/moto_server")
    if venv.exists():
        return str(venv)
    sys.exit("moto_server not found: run scripts/setup.sh")


def start_moto():
    port = free_port()
    proc = subprocess.Popen([moto_server(), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for("moto_server", lambda: subprocess.run(["curl", "-sf", "-X", "PUT", f"http://127.0.0.1:{port}/tvix"],
                                                    stdout=subprocess.DEVNULL).returncode == 0)
    return proc, port


def bucket_objects(port: int, prefix: str):
    """(objects, bytes) under `prefix` of the bucket."""
    n = size = 0
    token = None
    while True:
        url = f"http://127.0.0.1:{port}/tvix?list-type=2&prefix={prefix}"
        if token:
            url += f"&continuation-token={token}"
        xml = subprocess.run(["curl", "-sf", url], capture_output=True, check=True).stdout.decode()
        sizes = re.findall(r"<Size>(\d+)</Size>", xml)
        n += len(sizes)
        size += sum(int(s) for s in sizes)
        m = re.search(r"<NextContinuationToken>([^<]+)</NextContinuationToken>", xml)
        if not m:
            return n, size
        token = m.group(1)


class Daemon:
    def __init__(self, tvix: Path, args, env):
        self.proc = subprocess.Popen([str(tvix), "store", "daemon", "--listen", "127.0.0.1:0"] + args,
                                     env=dict(env, TVIX_SHOW_STATS="1"), stderr=subprocess.PIPE)
        line = self.proc.stderr.readline().decode()
        if " on " not in line:
            sys.exit(f"daemon did not start: {line}{self.proc.stderr.read().decode(errors='replace')}")
        self.url = line.strip().rsplit(" on ", 1)[1]

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        rest = self.proc.stderr.read().decode(errors="replace")
        self.proc.wait(timeout=60)
        return rest


def timed(argv, env, stdout=subprocess.PIPE):
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, stdout=stdout, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"{argv} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return dt, (r.stdout or b"")


def main() -> int:
    sb = load_store_bench()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tvix", type=Path, default=sb.default_tvix())
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    if not args.tvix.exists():
        sys.exit(f"{args.tvix} not found: build it with `cargo build --release`")

    work = Path(tempfile.mkdtemp(prefix="store-cluster-bench-", dir=args.workdir))
    os.chmod(work, 0o755)
    servers = []
    try:
        tree = work / "tree"
        size = sb.make_tree(tree, args.size_mib * 2**20, args.files, seed=1)
        print(f"tree: {args.files} files, {size / 2**20:.0f} MiB")
        pg, pg_url = start_postgres(work)
        servers.append(pg)
        moto, moto_port = start_moto()
        servers.append(moto)
        env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
        env.pop("TVIX_STORE", None)

        results = {}
        for kind in ["local", "s3+pg"]:
            imps, exps, stats = [], [], []
            for run in range(args.runs):
                if kind == "local":
                    store_dir = work / f"local-{run}"
                    dargs = ["--store", f"local://{store_dir}"]
                    prefix = None
                else:
                    # A fresh prefix and fresh tables each run: a new database.
                    db = f"bench{run}"
                    subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", pg_url.rsplit(":", 1)[1].split("/")[0],
                                    "-U", "tvix", db], check=True)
                    prefix = f"run{run}"
                    dargs = ["--chunks", f"s3://tvix/{prefix}?endpoint=http://127.0.0.1:{moto_port}&region=us-east-1",
                             "--metadata", pg_url.rsplit("/", 1)[0] + f"/{db}"]
                d = Daemon(args.tvix, dargs, env)
                t, out = timed([str(args.tvix), "store", "--store", d.url, "import", str(tree)], env)
                imps.append(t)
                path = out.decode().strip()
                t, _ = timed([str(args.tvix), "store", "--store", d.url, "export", path], env, subprocess.DEVNULL)
                exps.append(t)
                rest = d.stop()
                m = re.search(r"chunk store requests: (\d+) PUT \((\d+) bytes\), (\d+) GET \((\d+) bytes\)", rest)
                if kind != "local":
                    if not m:
                        sys.exit(f"the daemon printed no request counts: {rest}")
                    objs = bucket_objects(moto_port, prefix)
                    stats.append(tuple(int(x) for x in m.groups()) + objs)
                if kind == "local":
                    shutil.rmtree(store_dir, ignore_errors=True)
            results[kind] = (imps, exps, stats)

        mib = size / 2**20
        gib = size / 2**30
        print()
        print(f"medians of {args.runs} runs, through a daemon on loopback")
        print(f"{'':24}{'local':>12}{'s3+pg':>12}{'s3/local':>10}")
        li, le, _ = results["local"]
        si, se, st = results["s3+pg"]
        for label, a, b in [("import (s)", li, si), ("export (s)", le, se)]:
            ma, mb = statistics.median(a), statistics.median(b)
            print(f"{label:24}{ma:12.2f}{mb:12.2f}{mb / ma:10.2f}")
            print(f"{'  MiB/s':24}{mib / ma:12.0f}{mib / mb:12.0f}")
        puts, put_bytes, gets, get_bytes, objs, obj_bytes = st[-1]
        print()
        print(f"object store requests (last run; counted by the daemon)")
        print(f"{'PUT (import)':24}{puts:12}   {puts / gib:10.1f} per GiB imported, {put_bytes / max(puts, 1) / 2**20:.1f} MiB each")
        print(f"{'GET (export)':24}{gets:12}   {gets / gib:10.1f} per GiB exported, {get_bytes / max(gets, 1) / 2**20:.2f} MiB each")
        print(f"{'objects in the bucket':24}{objs:12}   {obj_bytes / 2**20:10.0f} MiB")
        show = lambda ts: " ".join(f"{t:.2f}" for t in ts)
        print()
        print(f"import runs: local {show(li)}; s3+pg {show(si)}")
        print(f"export runs: local {show(le)}; s3+pg {show(se)}")
    finally:
        for s in servers:
            s.send_signal(signal.SIGINT)
            try:
                s.wait(timeout=20)
            except subprocess.TimeoutExpired:
                s.kill()
        subprocess.run(["chmod", "-R", "u+w", str(work)], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
