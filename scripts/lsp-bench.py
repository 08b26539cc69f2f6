#!/usr/bin/env python3
"""Latency benchmark of `tvix lsp` over nixpkgs' lib.

Starts the server, opens every .nix file under the given directory (default
../shared/workloads/nixpkgs-lib/lib), and requests at many positions of each file:
static features (document symbols, semantic tokens, folding ranges, highlights, references)
and evaluation-backed ones (hover, completion, definition: these evaluate when the cursor is
on something to evaluate). Prints the median and p99 latency per request kind, how many
answers ran out of the evaluation budget, and the server's peak memory (VmHWM).

With --big-let N, a generated file with one N-binding `let` (numbers, strings, lambdas,
sets, references to other bindings, `inherit`s, doc comments) is opened instead, and hover is
requested at a few hundred positions spread through it (names being defined, uses, values,
the body), then again each right after an edit (didChange, then hover). With --churn R,
R rounds of open / edit / hover / close over a set of generated files follow, printing the
server's memory after each round (it should flatten, not grow).

Usage: scripts/lsp-bench.py [--tvix PATH] [--dir DIR] [--per-file N] [--budget MS]
       scripts/lsp-bench.py --big-let 40000 [--positions 300] [--churn 10] [--tvix PATH]
"""

import argparse
import json
import os
import random
import re
import tempfile
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
        return self.memory_kib("VmHWM")

    def memory_kib(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return None

    def close(self):
        self.request("shutdown", None)
        self.notify("exit", None)
        self.proc.wait(timeout=10)


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


def big_let(n, prefix="", seed=1):
    """A file with one `let` of `n` bindings of varied kinds, and where to hover in it: a list
    of (offset, what), `what` one of def (a name being defined), use (a reference), value
    (a value's own text) and body (the `let`'s body)."""
    rnd = random.Random(seed)
    out = ["let\n"]
    size = len(out[0])
    spots = []
    kinds = {"n": [], "s": [], "f": [], "a": []}
    names = []

    def put(text, marks=()):
        """Appends `text`; `marks` are (substring, what): their offsets become spots."""
        nonlocal size
        for sub, what in marks:
            spots.append((size + text.index(sub), what))
        out.append(text)
        size += len(text)

    def pick(kind):
        return rnd.choice(kinds[kind]) if kinds[kind] else None

    for k in range(n):
        if k % 10 == 0:
            put(f"  /** Binding {k}, a {['number', 'string', 'function', 'set', 'result', 'inherit'][k % 6]}. */\n")
        kind = k % 6
        nj, sj, fj, aj = pick("n"), pick("s"), pick("f"), pick("a")
        if kind == 0 or nj is None:
            name = f"{prefix}n{k}"
            if nj is not None and k % 12 == 6:
                ref = f"{prefix}n{nj}"
                put(f"  {name} = {ref} + {k};\n", [(name, "def"), (ref + " ", "use"), (f" {k};", "value")])
            else:
                put(f"  {name} = {k};\n", [(name, "def"), (f" {k};", "value")])
            kinds["n"].append(k)
            names.append(name)
        elif kind == 1 or sj is None:
            name, ref = f"{prefix}s{k}", f"{prefix}n{nj}"
            put(f'  {name} = "text {k} ${{toString {ref}}}";\n', [(name, "def"), (ref, "use"), ('"text', "value")])
            kinds["s"].append(k)
            names.append(name)
        elif kind == 2 or fj is None:
            name, ref = f"{prefix}f{k}", f"{prefix}n{nj}"
            put(f"  {name} = x: x + {ref};\n", [(name, "def"), (ref, "use"), ("x +", "value")])
            kinds["f"].append(k)
            names.append(name)
        elif kind == 3:
            name = f"{prefix}a{k}"
            rn, rs, rf = f"{prefix}n{nj}", f"{prefix}s{sj}", f"{prefix}f{fj}"
            put(f"  {name} = {{ v{k} = {rn}; w = {rs}; g = {rf}; }};\n",
                [(name, "def"), (rs, "use"), (f"v{k} =", "value")])
            kinds["a"].append(k)
            names.append(name)
        elif kind == 4:
            name, rf, rn, ra = f"{prefix}r{k}", f"{prefix}f{fj}", f"{prefix}n{nj}", f"{prefix}a{aj}"
            put(f"  {name} = {rf} {rn} + {ra}.v{aj};\n",
                [(name, "def"), (rf, "use"), (f".v{aj}", "value")])
            names.append(name)
        else:
            # The set made two bindings ago, whose `v` attribute is inherited under its name.
            src = f"{prefix}a{k - 2}"
            put(f"  inherit ({src}) v{k - 2};\n", [(f" v{k - 2}", "def"), (src, "use")])
            names.append(f"v{k - 2}")
    last_r = max(k for k in range(n) if k % 6 == 4) if n > 4 else 0
    mid_a = kinds["a"][len(kinds["a"]) // 2] if kinds["a"] else 0
    body = (f"in {{\n  first = {prefix}n0;\n  last = {prefix}r{last_r};\n"
            f"  mid = {prefix}a{mid_a}.v{mid_a};\n  greeting = {prefix}s1 + \"!\";\n")
    put(body, [(f"{prefix}n0", "body"), (f"{prefix}r{last_r}", "body"),
               (f".v{mid_a}", "body"), ("greeting", "body")])
    # Every binding is used by the body, as in a package set: no unused-binding warnings.
    put("  inherit\n")
    for i in range(0, len(names), 10):
        line = "    " + " ".join(names[i:i + 10]) + "\n"
        put(line, [(names[i], "body")] if i % 2000 == 0 else [])
    put("  ;\n}\n")
    # The spots point at the start of what they mark; move them onto its first identifier
    # or literal character.
    text = "".join(out)
    fixed = []
    for off, what in spots:
        while off < len(text) and text[off] in ' .({':
            off += 1
        fixed.append((off, what))
    return text, fixed


class Lines:
    """Byte offset to LSP position, for ASCII text."""

    def __init__(self, text):
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, offset):
        import bisect
        line = bisect.bisect_right(self.starts, offset) - 1
        return {"line": line, "character": offset - self.starts[line]}


def summary(label, values):
    return (f"{label:<28} {len(values):>6} {statistics.median(values):>10.2f} "
            f"{pct(values, 99):>8.2f} {max(values):>8.2f}")


def big_let_bench(args):
    """Hover in one big `let`, plain and right after edits; then the churn rounds."""
    server = Server([args.tvix, "lsp"])
    settings = {"tvix": {"evalBudgetMs": args.budget}}
    server.request("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {},
                                  "initializationOptions": settings})
    server.notify("initialized", {})
    work = tempfile.mkdtemp(prefix="tvix-lsp-bench-")
    gen_started = time.perf_counter()
    text, spots = big_let(args.big_let)
    path = os.path.join(work, "big.nix")
    with open(path, "w") as f:
        f.write(text)
    lines = Lines(text)
    uri = "file://" + path
    doc = {"uri": uri}
    print(f"generated {args.big_let} bindings, {len(text) / 1e6:.2f} MB, "
          f"{len(text.splitlines())} lines in {time.perf_counter() - gen_started:.1f} s")
    dump = open(args.dump, "w") if args.dump else None
    t0 = time.perf_counter()
    server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": text}})
    # A cheap request answered after didOpen is handled: how long opening took.
    server.request("textDocument/foldingRange", {"textDocument": doc})
    open_ms = (time.perf_counter() - t0) * 1000
    # Let the evaluation of the whole file that follows opening (after a pause) start and
    # end, so hovers are measured on their own, and also while it runs (it shares the worker).
    in_body = [sp for sp in spots if sp[1] == "body"]
    in_let = [sp for sp in spots if sp[1] != "body"]
    n_body = min(len(in_body), args.positions // 10)
    chosen = sample(in_let, args.positions - n_body) + sample(in_body, n_body)
    by_what = {}
    outcome = {"evaluated": 0, "static only": 0, "none": 0, "out of budget": 0, "error": 0}

    def hover(off):
        r = server.request("textDocument/hover", {"textDocument": doc, "position": lines.position(off)})
        if "error" in r:
            outcome["error"] += 1
        else:
            value = json.dumps(r.get("result"))
            if "evalBudgetMs" in value:
                outcome["out of budget"] += 1
            elif "` : " in value:
                outcome["evaluated"] += 1
            elif r.get("result"):
                outcome["static only"] += 1
            else:
                outcome["none"] += 1
        if dump:
            dump.write(json.dumps({"offset": off, "text": text[off:off + 20], "result": r.get("result"), "error": r.get("error")}) + "\n")
        return r

    for off, what in chosen:
        t = time.perf_counter()
        hover(off)
        by_what.setdefault(what, []).append((time.perf_counter() - t) * 1000)
    hover_ms = [v for vs in by_what.values() for v in vs]
    hover_peak = server.peak_memory_kib()
    hover_outcome = dict(outcome)

    # Edit then hover: one digit of a number literal changes (same length, so the spots
    # stay where they are), then a hover somewhere else.
    literals = [m.start() for m in re.finditer(r"(?<= = )\d+(?=;)", text)]
    edits = sample(literals, args.edits)
    hovers = [chosen[i % len(chosen)] for i in range(len(edits))]
    rss_during_edits = []
    edit_ms = []
    edit_only_ms = []
    version = 1
    current = list(text)
    for at, (off, _) in zip(edits, hovers):
        version += 1
        digit = "7" if current[at] != "7" else "3"
        current[at] = digit
        pos = lines.position(at)
        change = {"range": {"start": pos, "end": {"line": pos["line"], "character": pos["character"] + 1}}, "text": digit}
        t = time.perf_counter()
        server.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]})
        server.request("textDocument/foldingRange", {"textDocument": doc})
        edit_only_ms.append((time.perf_counter() - t) * 1000)
        hover(off)
        edit_ms.append((time.perf_counter() - t) * 1000)
        if len(edit_ms) % 25 == 0:
            rss_during_edits.append((len(edit_ms), server.memory_kib("VmRSS")))
    edit_peak = server.peak_memory_kib()
    server.notify("textDocument/didClose", {"textDocument": doc})

    print(f"tvix lsp, one {args.big_let}-binding let: budget {args.budget} ms; opening took {open_ms:.0f} ms")
    print(f"{'request':<28} {'count':>6} {'median ms':>10} {'p99 ms':>8} {'max ms':>8}")
    print(summary("hover (all)", hover_ms))
    for what in ["def", "use", "value", "body"]:
        if what in by_what:
            print(summary(f"  hover on a {what}", by_what[what]))
    print(summary("didChange (until handled)", edit_only_ms))
    print(summary("didChange then hover", edit_ms))
    print("hover answers: " + ", ".join(f"{k} {v}" for k, v in hover_outcome.items()))
    print(f"peak memory (VmHWM): after hovers {hover_peak / 1024:.0f} MiB, after edits {edit_peak / 1024:.0f} MiB")
    if rss_during_edits:
        print("memory (VmRSS) during the edits: " + ", ".join(
            f"{n} edits {kib / 1024:.0f} MiB" for n, kib in rss_during_edits))
    print(f"target: hover p99 < 50 ms: {'met' if pct(hover_ms, 99) < 50 else 'NOT met'}")

    if args.churn:
        churn(server, work, args)
    server.close()
    if dump:
        dump.close()


def churn(server, work, args):
    """Rounds of open / edit / hover / close over generated files with names of their own:
    what the server keeps per document must go when the document is closed."""
    n_files, size = 20, max(1000, args.big_let // 20)
    files = []
    for i in range(n_files):
        text, spots = big_let(size, prefix=f"m{i}_", seed=i + 2)
        path = os.path.join(work, f"churn{i}.nix")
        with open(path, "w") as f:
            f.write(text)
        files.append((path, text, spots))
    print(f"churn: {args.churn} rounds over {n_files} files of {size} bindings "
          "(open, edit, 5 hovers, close each)")
    print(f"{'round':>5} {'VmRSS MiB':>10} {'VmHWM MiB':>10} {'seconds':>8}")
    for r in range(args.churn):
        t = time.perf_counter()
        for path, text, spots in files:
            uri = "file://" + path
            doc = {"uri": uri}
            lines = Lines(text)
            server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": text}})
            at = text.index(" = 0;") + 3
            pos = lines.position(at)
            change = {"range": {"start": pos, "end": {"line": pos["line"], "character": pos["character"] + 1}}, "text": str(r % 10)}
            server.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [change]})
            for off, _ in sample(spots, 5):
                server.request("textDocument/hover", {"textDocument": doc, "position": lines.position(off)})
            server.notify("textDocument/didClose", {"textDocument": doc})
        # Let the evaluations started by the last edits finish.
        time.sleep(0.5)
        server.request("textDocument/foldingRange", {"textDocument": {"uri": "file://" + files[0][0]}})
        print(f"{r + 1:>5} {server.memory_kib('VmRSS') / 1024:>10.0f} {server.peak_memory_kib() / 1024:>10.0f} "
              f"{time.perf_counter() - t:>8.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tvix", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "release", "tvix"))
    ap.add_argument("--dir", default=os.path.join(REPO, "..", "shared", "workloads", "nixpkgs-lib", "lib"))
    ap.add_argument("--per-file", type=int, default=8, help="positions per request kind and file")
    ap.add_argument("--budget", type=int, default=300, help="tvix.evalBudgetMs")
    ap.add_argument("--slow", type=float, default=None, help="print requests slower than this (ms)")
    ap.add_argument("--big-let", type=int, default=0, help="hover in a generated let of this many bindings instead")
    ap.add_argument("--positions", type=int, default=300, help="hover positions in the big let")
    ap.add_argument("--edits", type=int, default=100, help="edit-then-hover cycles in the big let")
    ap.add_argument("--churn", type=int, default=0, help="rounds of open/edit/hover/close after the big let")
    ap.add_argument("--dump", default=None, help="write each big-let hover answer to this file (JSON lines)")
    args = ap.parse_args()
    if args.big_let:
        big_let_bench(args)
        return

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
