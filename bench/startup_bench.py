"""Start-up (issue 5, goal 4): ``rpdash --demo`` to its first full frame vs a bare Textual app.

Method: each program is started in a real pseudo-terminal (``pty.openpty``, 160 x 50,
TERM=xterm-256color) by this process, which reads everything the program writes to the
terminal. Time 0 is just before ``fork/exec`` (``subprocess.Popen``); the time of a frame is
when the bytes that complete it have been read from the pty master. So the figure covers
the interpreter starting, every import, building the app, the first layout and render, and
writing to the terminal: what a person sees.

- ``rpdash --demo`` (the installed console script): "the dashboard" is the first frame in
  which the pane titles ``… Endpoints`` and ``… Jobs`` have appeared (escape sequences
  stripped before matching), whatever the panes show yet; "live numbers" is the first
  frame in which the row of a demo endpoint (``llm-chat``) shows its first health answer
  (state ``ok``). The first output of any kind is reported as well.
- the anchor: a hello-world Textual app (one ``Static("Hello, world!")``, bench/_hello.py)
  run by the same interpreter; its first full frame is the one showing ``Hello, world!``.

Runs alternate between the two (so machine noise hits both alike) and the medians are
compared. Config and history go to a temporary XDG directory. Then ``rpdash --help`` and
a headless command (``rpdash status``, against a port nobody listens on) are run with an
import probe to check that Textual is never imported.

    .venv/bin/python bench/startup_bench.py [--repeat 7] [--json]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
RPDASH = str(Path(PY).parent / "rpdash")
HELLO = str(Path(__file__).resolve().parent / "_hello.py")
COLS, ROWS = 160, 50
#: the dashboard's frame: its panes (their titles), whatever they show yet
DASHBOARD = [b"] Endpoints", b"] Jobs"]
#: live numbers: a demo endpoint's row with its first health answer (state "ok")
LIVE = [re.compile(rb"llm-chat +(\xe2\x97\x8f )?ok ")]


def _strip(buf: bytes) -> bytes:
    """Drop escape sequences so that markers split by style changes still match."""
    return re.sub(rb"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b[PX^_].*?\x1b\\|\x1b\][^\x07]*\x07", b"",
                  buf)


def _has(plain: bytes, marker: bytes | re.Pattern[bytes]) -> bool:
    return bool(marker.search(plain)) if isinstance(marker, re.Pattern) else marker in plain


def time_to_frames(argv: list[str], markers: list[Any], env: dict[str, str],
                   timeout: float = 30.0, *,
                   later: list[Any] | None = None) -> tuple[float | None, ...]:
    """(seconds to the first output, seconds until every marker has been seen[, seconds
    until every marker of ``later`` has been seen too])."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            close_fds=True, start_new_session=True)
    os.close(slave)
    first: float | None = None
    full: float | None = None
    live: float | None = None
    seen = b""
    try:
        while time.perf_counter() - t0 < timeout:
            r, _, _ = select.select([master], [], [], 0.05)
            if not r:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 1 << 16)
            except OSError:
                break
            if not data:
                break
            now = time.perf_counter()
            seen += data
            plain = _strip(seen)
            if first is None and b"\x1b[?1049h" in seen and plain.strip():
                first = now - t0
            if full is None and all(_has(plain, m) for m in markers):
                full = now - t0
            if full is not None and (later is None or all(_has(plain, m) for m in later)):
                live = now - t0
                break
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # drain so the child never blocks on a full pty
        try:
            while select.select([master], [], [], 0)[0] and os.read(master, 1 << 16):
                pass
        except OSError:
            pass
        os.close(master)
    if later is None:
        return first, full
    return first, full, live


PROBE = """
import atexit, sys
def _report():
    bad = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
    sys.stderr.write("\\nTEXTUAL_MODULES=%d\\n" % len(bad))
atexit.register(_report)
sys.argv = ["rpdash"] + sys.argv[1:]
from rpdash.cli import main
sys.exit(main())
"""


def textual_imported(args: list[str], env: dict[str, str]) -> tuple[int, int, float]:
    """(number of textual modules loaded, exit code, seconds) for ``rpdash ARGS``."""
    t0 = time.perf_counter()
    p = subprocess.run([PY, "-c", PROBE, *args], capture_output=True, text=True, env=env,
                       timeout=60)
    dt = time.perf_counter() - t0
    for line in p.stderr.splitlines():
        if line.startswith("TEXTUAL_MODULES="):
            return int(line.split("=", 1)[1]), p.returncode, dt
    return -1, p.returncode, dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    env = dict(os.environ)
    for k in ("RUNPOD_API_KEY", "RUNPOD_ENDPOINT_ID", "RUNPOD_BASE_URL"):
        env.pop(k, None)
    env.update(TERM="xterm-256color", COLUMNS=str(COLS), LINES=str(ROWS),
               XDG_CONFIG_HOME=f"{tmp.name}/config", XDG_DATA_HOME=f"{tmp.name}/data",
               XDG_STATE_HOME=f"{tmp.name}/state", XDG_CACHE_HOME=f"{tmp.name}/cache",
               PYTHONDONTWRITEBYTECODE="0")
    # warm the OS file cache and .pyc files once (not timed)
    time_to_frames([PY, HELLO], [b"Hello, world!"], env)
    time_to_frames([RPDASH, "--demo"], DASHBOARD, env, later=LIVE)
    hello, demo, demo_first, demo_live = [], [], [], []
    for i in range(a.repeat):
        _, h = time_to_frames([PY, HELLO], [b"Hello, world!"], env)
        f, d, live = time_to_frames([RPDASH, "--demo"], DASHBOARD, env, later=LIVE)
        if h is None or d is None or live is None:
            raise SystemExit(f"no frame seen (hello {h}, dashboard {d}, live {live})")
        hello.append(h)
        demo.append(d)
        demo_live.append(live)
        demo_first.append(f if f is not None else d)
        if not a.json:
            print(f"run {i + 1}: hello-world {h:.3f} s; rpdash --demo first frame "
                  f"{demo_first[-1]:.3f} s, dashboard {d:.3f} s, live numbers {live:.3f} s",
                  flush=True)
    checks = {
        "--help": textual_imported(["--help"], env),
        "--version": textual_imported(["--version"], env),
        "status (unreachable)": textual_imported(
            ["status", "job-1", "--endpoint", "ep", "--base-url", "http://127.0.0.1:9/v2"],
            {**env, "RUNPOD_API_KEY": "k"}),
        "health (unreachable)": textual_imported(
            ["health", "--endpoint", "ep", "--base-url", "http://127.0.0.1:9/v2"],
            {**env, "RUNPOD_API_KEY": "k"}),
    }
    tmp.cleanup()
    med = statistics.median
    out = {
        "demo_s": med(demo),
        "demo_first_frame_s": med(demo_first),
        "demo_live_s": med(demo_live),
        "demo_live": demo_live,
        "hello_s": med(hello),
        "demo": demo,
        "hello": hello,
        "no_textual": {k: v[0] == 0 for k, v in checks.items()},
        "cli_seconds": {k: v[2] for k, v in checks.items()},
    }
    out["ratio"] = out["demo_s"] / out["hello_s"]
    if a.json:
        print(json.dumps(out))
        return
    print(f"median: rpdash --demo dashboard {out['demo_s']:.3f} s (first frame "
          f"{out['demo_first_frame_s']:.3f} s, live numbers {out['demo_live_s']:.3f} s), "
          f"hello-world {out['hello_s']:.3f} s, ratio {out['ratio']:.2f}x (goals: dashboard "
          "<= 1.5x, live numbers <= 0.6 s)")
    for k, (n, rc, dt) in checks.items():
        print(f"rpdash {k}: {n} textual modules imported (exit {rc}, {dt:.2f} s)")


if __name__ == "__main__":
    main()
