#!/usr/bin/env python3
"""Latency benchmark of `tvix lsp` over nixpkgs' lib.

Starts the server, opens every .nix file under the given directory (default
../shared/workloads/nixpkgs-lib/lib), and requests at many positions of each file:
static features (document symbols, semantic tokens, folding ranges, highlights, references)
and evaluation-backed ones (hover, completion, definition: these evaluate when the cursor is
on something to evaluate). Prints the median and p99 latency per request kind, how many
answers ran out of the evaluation budget, and the server's peak memory (VmHWM).

Usage: scripts/lsp-bench.py [--tvix PATH] [--dir DIR] [--per-file N] [--budget MS]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class Server:
    """A `tvix lsp` process spoken to with Content-Length framed JSON-RPC."""

    def __init__(self, cmd):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.next_id = 0

    def send(self, msg):
        body = json.dumps(msg).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def read(self):
        length = None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise EOFError("the server closed its output")
            line = line.strip()
            if not line:
                break
            key, _, value = line.partition(b":")
            if key.lower() == b"content-length":
                length = int(value)
        return json.loads(self.proc.stdout.read(length))

    def request(self, method, params):
        self.next_id += 1
        rid = self.next_id
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        while True:
            msg = self.read()
            if msg.get("id") == rid and "method" not in msg:
                return msg
            if "method" in msg and "id" in msg:
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def peak_memory_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return None


IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*")


def code_mask(text):
    """Which characters are code (not in comments or string literals): positions in prose
    would only measure the server saying "nothing here"."""
    mask = [True] * len(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
        elif text.startswith("''", i):
            j = text.find("''", i + 2)
            while j >= 0 and text.startswith("'''", j):
                j = text.find("''", j + 3)
            j = n if j < 0 else j + 2
        else:
            i += 1
            continue
        for k in range(i, min(j, n)):
            mask[k] = False
        i = j
    return mask


def position(text, offset):
    before = text[:offset]
    line = before.count("\n")
    col = len(before) - (before.rfind("\n") + 1)
    # LSP columns are UTF-16 units; lib is ASCII almost everywhere.
    return {"line": line, "character": len(before[len(before) - col:].encode("utf-16-le")) // 2}


def sample(items, n):
    if len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def pct(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tvix", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "release", "tvix"))
    ap.add_argument("--dir", default=os.path.join(REPO, "..", "shared", "workloads", "nixpkgs-lib", "lib"))
    ap.add_argument("--per-file", type=int, default=8, help="positions per request kind and file")
    ap.add_argument("--budget", type=int, default=300, help="tvix.evalBudgetMs")
    ap.add_argument("--slow", type=float, default=None, help="print requests slower than this (ms)")
    args = ap.parse_args()

    lib_dir = os.path.realpath(args.dir)
    nixpkgs = os.path.dirname(lib_dir)
    files = sorted(
        os.path.join(d, f) for d, _, fs in os.walk(lib_dir) for f in fs if f.endswith(".nix")
    )
    server = Server([args.tvix, "lsp"])
    settings = {"tvix": {
        "searchPath": [f"nixpkgs={nixpkgs}"],
        "evalBudgetMs": args.budget,
        "args": {"lib": "import <nixpkgs/lib>"},
    }}
    server.request("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {}, "initializationOptions": settings})
    server.notify("initialized", {})

    static_kinds = ["documentSymbol", "semanticTokens", "foldingRange", "documentHighlight", "references"]
    eval_kinds = ["hover", "completion", "completion after '.'", "definition"]
    times = {k: [] for k in static_kinds + eval_kinds}
    out_of_budget = {k: 0 for k in eval_kinds}
    # How many answers carried something evaluated (a value, attributes, a place elsewhere).
    evaluated = {k: 0 for k in eval_kinds}
    errors = 0

    def timed(kind, method, params):
        nonlocal errors
        t0 = time.perf_counter()
        r = server.request(method, params)
        ms = (time.perf_counter() - t0) * 1000
        times[kind].append(ms)
        if args.slow is not None and ms > args.slow:
            where = params["textDocument"]["uri"].rsplit("/", 2)[-2:]
            print(f"  slow: {kind} {'/'.join(where)} {params.get('position')} {ms:.0f} ms, "
                  f"{len(json.dumps(r))} bytes", file=sys.stderr)
        if "error" in r:
            errors += 1
        elif kind in out_of_budget:
            result = r.get("result")
            text = json.dumps(result)
            if "evalBudgetMs" in text:
                out_of_budget[kind] += 1
            elif kind == "hover" and "` : " in text:
                evaluated[kind] += 1
            elif kind.startswith("completion") and '"textEdit"' in text:
                evaluated[kind] += 1
            elif kind == "completion" and "from `with" in text:
                evaluated[kind] += 1
            elif kind == "definition" and result and result.get("uri") != params["textDocument"]["uri"]:
                evaluated[kind] += 1
        return r

    started = time.perf_counter()
    for n, path in enumerate(files):
        text = open(path, encoding="utf-8", errors="replace").read()
        uri = "file://" + path
        server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": text}})
        doc = {"uri": uri}
        mask = code_mask(text)
        idents = [m.start() for m in IDENT.finditer(text) if mask[m.start()]]
        dots = [m.end() for m in re.finditer(r"[A-Za-z_][A-Za-z0-9_'-]*\.", text)
                if mask[m.start()] and mask[m.end() - 1]]
        timed("documentSymbol", "textDocument/documentSymbol", {"textDocument": doc})
        timed("semanticTokens", "textDocument/semanticTokens/full", {"textDocument": doc})
        timed("foldingRange", "textDocument/foldingRange", {"textDocument": doc})
        for off in sample(idents, args.per_file):
            p = {"textDocument": doc, "position": position(text, off)}
            timed("documentHighlight", "textDocument/documentHighlight", p)
            timed("references", "textDocument/references", dict(p, context={"includeDeclaration": True}))
            timed("hover", "textDocument/hover", p)
            timed("definition", "textDocument/definition", p)
            timed("completion", "textDocument/completion", p)
        for off in sample(dots, args.per_file):
            timed("completion after '.'", "textDocument/completion", {"textDocument": doc, "position": position(text, off)})
        server.notify("textDocument/didClose", {"textDocument": doc})
        if (n + 1) % 50 == 0:
            print(f"  {n + 1}/{len(files)} files, {time.perf_counter() - started:.0f} s", file=sys.stderr)

    peak = server.peak_memory_kib()
    server.request("shutdown", None)
    server.notify("exit", None)
    server.proc.wait(timeout=10)

    print(f"tvix lsp over {lib_dir}: {len(files)} files, {sum(len(v) for v in times.values())} requests, "
          f"{time.perf_counter() - started:.1f} s, budget {args.budget} ms, {errors} error responses")
    print(f"{'request':<24} {'kind':<6} {'count':>6} {'median ms':>10} {'p99 ms':>8} {'max ms':>8} {'evaluated':>10} {'out of budget':>14}")
    for k in static_kinds + eval_kinds:
        v = times[k]
        if not v:
            continue
        kind = "static" if k in static_kinds else "eval"
        ob = str(out_of_budget[k]) if k in out_of_budget else "-"
        ev = str(evaluated[k]) if k in evaluated else "-"
        print(f"{k:<24} {kind:<6} {len(v):>6} {statistics.median(v):>10.2f} {pct(v, 99):>8.2f} {max(v):>8.2f} {ev:>10} {ob:>14}")
    if peak is not None:
        print(f"peak memory (VmHWM): {peak / 1024:.0f} MiB")
    target_static = all(pct(times[k], 99) < 50 for k in static_kinds if times[k])
    target_eval = all(pct(times[k], 99) < 300 for k in eval_kinds if times[k])
    print(f"targets: static p99 < 50 ms: {'met' if target_static else 'NOT met'}; "
          f"evaluation-backed p99 < 300 ms: {'met' if target_eval else 'NOT met'}")


if __name__ == "__main__":
    main()
