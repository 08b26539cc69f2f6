#!/usr/bin/env python3
"""Narinfo requests per second of `tvix store serve` with N concurrent clients.

Imports a small path into a fresh local tvix store, starts `tvix store serve` on a free
loopback port, and lets N threads (default 64) each send narinfo GETs over one keep-alive
connection for a bounded time (default 5 s); prints requests/s, and fails on any answer
but 200. Usage: serve-bench.py [TVIX_BINARY] [CLIENTS] [SECONDS]
"""

import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time


def main():
    tvix = sys.argv[1] if len(sys.argv) > 1 else "target/release/tvix"
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, f"bench-{time.time_ns()}")
        with open(src, "w") as f:
            f.write("narinfo load test\n")
        store = ["store", "--store", f"local://{tmp}/store"]
        path = subprocess.run([tvix, *store, "import", src], check=True,
                              capture_output=True, text=True).stdout.strip()
        hash_part = os.path.basename(path)[:32]
        server = subprocess.Popen([tvix, *store, "serve", "--listen", "127.0.0.1:0"],
                                  stderr=subprocess.PIPE, text=True)
        try:
            line = server.stderr.readline()
            addr = line.rsplit("http://", 1)[1].strip()
            host, port = addr.rsplit(":", 1)
            counts = [0] * clients
            errors = []
            deadline = time.monotonic() + seconds

            def client(i):
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
                while time.monotonic() < deadline:
                    conn.request("GET", f"/{hash_part}.narinfo")
                    r = conn.getresponse()
                    r.read()
                    if r.status != 200:
                        errors.append(r.status)
                        return
                    counts[i] += 1
                conn.close()

            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            start = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(seconds + 30)
            elapsed = time.monotonic() - start
            if errors:
                sys.exit(f"non-200 answers: {errors[:5]}")
            total = sum(counts)
            print(f"{clients} clients, {elapsed:.1f} s: {total} narinfo requests, "
                  f"{total / elapsed:.0f} requests/s")
        finally:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
