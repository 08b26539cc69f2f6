#!/usr/bin/env python3
"""Figures of the build dashboard (issue 17), from the `dashboard-bench` example of tui/.

    scripts/tui-bench.py              # frame, memory, and a 60-second live run in tmux
    scripts/tui-bench.py --live 10    # a shorter live run

- frame: ms per frame with 1 000 planned derivations (200x50 TestBackend);
- memory: resident memory after a 200 000-line build log went through the model;
- live: CPU the process used while the real driver drew on a real terminal (a tmux
  pane, 200x50) during a synthetic run (8 builds at a time, 50 log lines a second each).

Builds the example with cargo (release) first; CARGO_TARGET_DIR is honoured.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def target_dir() -> Path:
    t = os.environ.get("CARGO_TARGET_DIR")
    return Path(t) if t else REPO / "target"


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--live", type=int, default=60, help="seconds of the live run (0: skip)")
    ap.add_argument("--no-build", action="store_true", help="use the example already built")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(
            ["cargo", "build", "--release", "-p", "tvix-tui", "--example", "dashboard-bench"],
            cwd=REPO,
            check=True,
        )
    exe = target_dir() / "release/examples/dashboard-bench"
    print(run([str(exe), "frame"]).stdout.strip())
    print(run([str(exe), "memory"]).stdout.strip())
    if args.live > 0:
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "live.txt"
            sock = f"tvix-tui-bench-{os.getpid()}"
            cmd = f"NO_COLOR= TERM=xterm-256color {exe} live {args.live} > {out}; echo done >> {out}.done"
            subprocess.run(
                ["tmux", "-L", sock, "-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "50", cmd],
                check=True,
            )
            try:
                deadline = time.time() + args.live + 30
                while not Path(f"{out}.done").exists():
                    if time.time() > deadline:
                        print("error: the live run did not finish", file=sys.stderr)
                        return 1
                    time.sleep(0.5)
                print(out.read_text().strip())
            finally:
                subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
