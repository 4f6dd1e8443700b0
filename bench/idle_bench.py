"""Idle cost (issue 5, goal 5): the dashboard watching 5 quiet endpoints, in a real pty.

Part 1, CPU at idle. ``rpdash sim --scenario idle5`` (five endpoints, one warm worker each,
no traffic) runs as its own process; the dashboard runs in a detached tmux session
(160 x 50, a real pty driven by a real terminal emulator):

    RUNPOD_BASE_URL=http://127.0.0.1:PORT/v2 RUNPOD_API_KEY=... \\
        rpdash --endpoint idle-1 ... --endpoint idle-5

with a temporary XDG config/data directory (empty history). After a warm-up, the
dashboard's own CPU time (``utime + stime`` of /proc/PID/stat: every thread of the process,
the simulator not included) is read before and after ``--seconds`` (60) of wall time;
the cost is their difference over the wall time, in % of one core. RSS is read alongside.

The anchor: the hello-world Textual app (bench/_hello.py) measured the same way
(``--anchor-seconds``, 30): the floor any Textual app pays at idle.

Part 2, memory over a long soak, simulated. The same Session + app (headless,
``App.run_test``) run on a ``ScaledClock`` (``--soak-scale``, 60x: one simulated minute per
second) against an in-process simulator on the same clock, watching the five idle5
endpoints plus one job submitted every simulated 20 s (so the history, table and tracker
are exercised, as a day's light use would). tracemalloc's traced size and the RSS are
sampled every simulated minute. The soak lasts 60 simulated minutes by default: during the
first half the render caches (Textual's DataTable keeps up to 10,000 rendered cells, rich
its style caches) fill up to their LRU caps; the second half shows whether anything keeps
growing (reported per added job; the biggest growth sites are listed). Caveat: Textual's
own timers (the app's 1 Hz tick) run on real time, so they fire 60 times less often here;
the 60 s CPU run in tmux covers them (its RSS is reported too).

    .venv/bin/python bench/idle_bench.py [--seconds 60] [--soak-minutes 30] [--soak-scale 60]
                                         [--skip-cpu] [--skip-soak] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
RPDASH = str(Path(PY).parent / "rpdash")
KEY = "idle-key"
ENDPOINTS = [f"idle-{i}" for i in range(1, 6)]
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 1e6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill_history(path: Path, jobs: int) -> None:
    """``jobs`` finished jobs on the idle5 endpoints, submitted over the last 2 hours (the
    newest seconds ago), so the job list has rows of every age."""
    sys.path.insert(0, str(ROOT))
    from rpdash.core.models import JobStatus
    from rpdash.core.records import JobRecord
    from rpdash.store.history import HistoryStore

    now = time.time()
    store = HistoryStore(path)
    recs = []
    for i in range(jobs):
        t = now - 5 - (7200 * i / max(1, jobs - 1)) ** 1.0
        recs.append((JobRecord(job_id=f"hist-{i:05d}-aaaa-bbbb-cccc-u1",
                               endpoint_id=ENDPOINTS[i % 5], status=JobStatus.COMPLETED,
                               input={"n": i}, submitted_at=t, updated_at=t + 2,
                               finished_at=t + 2, delay_ms=120, execution_ms=1800,
                               output={"ok": i}), None))
    store.update_many(recs)
    store.close()


def measure_cpu(seconds: float, warmup: float, history: int = 0) -> dict[str, Any]:
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is needed for the idle CPU measurement")
    tmp = tempfile.TemporaryDirectory()
    port = free_port()
    sim = subprocess.Popen([RPDASH, "sim", "--scenario", "idle5", "--port", str(port),
                            "--api-key", KEY], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    session = f"rpdash-idle-{os.getpid()}"
    env = {
        "RUNPOD_BASE_URL": f"http://127.0.0.1:{port}/v2", "RUNPOD_API_KEY": KEY,
        "XDG_CONFIG_HOME": f"{tmp.name}/config", "XDG_DATA_HOME": f"{tmp.name}/data",
        "XDG_STATE_HOME": f"{tmp.name}/state", "XDG_CACHE_HOME": f"{tmp.name}/cache",
        "TERM": "xterm-256color",
    }
    if history:
        hist = Path(tmp.name) / "history.sqlite3"
        fill_history(hist, history)
        env["RPDASH_HISTORY_PATH"] = str(hist)
    envs = " ".join(f"{k}={v}" for k, v in env.items())
    eps = " ".join(f"--endpoint {e}" for e in ENDPOINTS)
    try:
        for _ in range(100):  # wait for the simulator to listen
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "50",
                        f"exec env {envs} {RPDASH} {eps}"], check=True)
        pid = int(subprocess.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"],
                                 capture_output=True, text=True, check=True).stdout.split()[0])
        time.sleep(warmup)
        screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                capture_output=True, text=True).stdout
        c0, r0, t0 = cpu_seconds(pid), rss_mb(pid), time.monotonic()
        time.sleep(seconds)
        c1, r1, t1 = cpu_seconds(pid), rss_mb(pid), time.monotonic()
        sim_cpu = cpu_seconds(sim.pid)
        return {
            "seconds": t1 - t0,
            "cpu_s": c1 - c0,
            "cpu_pct": 100 * (c1 - c0) / (t1 - t0),
            "rss_start_mb": r0,
            "rss_end_mb": r1,
            "sim_cpu_s_total": sim_cpu,
            "dashboard_up": all(e in screen for e in ENDPOINTS),
            "history_jobs": history,
            "screen_excerpt": "\n".join(screen.splitlines()[:8]),
        }
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        sim.terminate()
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()
        tmp.cleanup()


def measure_hello(seconds: float, warmup: float = 3.0) -> dict[str, Any]:
    """The anchor: the hello-world Textual app (bench/_hello.py) idling in the same tmux."""
    session = f"rpdash-hello-{os.getpid()}"
    hello = Path(__file__).resolve().parent / "_hello.py"
    try:
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "50",
                        f"exec {PY} {hello}"], check=True)
        pid = int(subprocess.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"],
                                 capture_output=True, text=True, check=True).stdout.split()[0])
        time.sleep(warmup)
        c0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_seconds(pid), time.monotonic()
        return {"seconds": t1 - t0, "cpu_s": c1 - c0, "cpu_pct": 100 * (c1 - c0) / (t1 - t0)}
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


# ------------------------------------------------------------------ soak

#: the in-process simulator's allocations (a RunPod stand-in keeping its own jobs)
_NOT_SIM = tracemalloc.Filter(False, "*/rpdash/sim/*")


def _heap_mb(snap: Any) -> tuple[float, float]:
    """(traced MB, traced MB outside the simulator's modules)."""
    total = sum(st.size for st in snap.statistics("filename"))
    ours = sum(st.size for st in snap.filter_traces([_NOT_SIM]).statistics("filename"))
    return total / 1e6, ours / 1e6



async def soak(minutes: float, scale: float, top_n: int = 8, *,
               demo: bool = False) -> dict[str, Any]:
    """``demo``: the demo scenario (its background traffic inside the simulator) and
    rpdash's DemoTraffic (a tracked job every 2-6 simulated seconds, at most 12 live) on
    the scaled clock, instead of idle5 and a job every 20 s; tracemalloc snapshots at
    simulated hours 1, 12 and the end, and the growth sites between the first and the last."""
    sys.path.insert(0, str(ROOT))
    from rpdash.api.client import RunPodClient
    from rpdash.core.clock import ScaledClock
    from rpdash.services.session import Session
    from rpdash.sim.server import SimServer
    from rpdash.store.history import HistoryStore
    from rpdash.tui.app import RpdashApp
    from rpdash.tui.backend import StaticBackend

    clock = ScaledClock(scale)
    sim = SimServer(api_key=KEY, scenario="demo" if demo else "idle5", clock=clock).start()
    endpoints = list(sim.endpoints) if demo else ENDPOINTS
    tmp = tempfile.TemporaryDirectory()
    store = HistoryStore(Path(tmp.name) / "history.sqlite3", clock=clock)
    client = RunPodClient(KEY, sim.base_url, clock=clock)

    class Backend(StaticBackend):
        async def start(self, sink: Any) -> Any:
            self.session.sink = sink
            await self.session.start()
            return self.session

    session = Session(client=client, store=store, endpoints=endpoints, sink=lambda e: None,
                      clock=clock)
    app = RpdashApp(backend=Backend(session), clock=clock)
    samples: list[tuple[float, float, float, int]] = []
    submitted = 0
    marks: list[tuple[float, float, float, int]] = []  # (hour, traced MB, RSS MB, jobs)
    mark_hours = [h for h in (1.0, 12.0) if h * 60 < minutes]
    snaps: list[Any] = []
    traffic: Any = None
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            while app.dashboard is None:
                await pilot.pause(0.05)
            await pilot.pause(1.0)
            gc.collect()
            tracemalloc.start(1)
            snap0 = tracemalloc.take_snapshot()
            if demo:
                from rpdash.services.demo import DemoTraffic

                traffic = DemoTraffic(session, clock)
                traffic_task = asyncio.create_task(traffic.run())
            t_start = clock.now()
            wall0 = time.perf_counter()
            next_job = t_start
            next_sample = t_start
            end = t_start + minutes * 60
            while clock.now() < end:
                now = clock.now()
                if mark_hours and now - t_start >= mark_hours[0] * 3600:
                    gc.collect()
                    snap = tracemalloc.take_snapshot()
                    marks.append((mark_hours.pop(0), *_heap_mb(snap), rss_mb(os.getpid()),
                                  len(session.jobs), len(traffic.submitted) if traffic else 0))
                    if not snaps:
                        snaps.append(snap)
                if not demo and now >= next_job:
                    try:
                        await session.submit(ENDPOINTS[submitted % 5],
                                             {"mock_delay": 2.0, "mock_return": submitted})
                        submitted += 1
                    except Exception:  # noqa: BLE001 - counted by what is missing
                        pass
                    next_job += 20
                if now >= next_sample:
                    cur, _ = tracemalloc.get_traced_memory()
                    if traffic is not None:
                        submitted = len(traffic.submitted)
                    samples.append((now - t_start, cur / 1e6, rss_mb(os.getpid()), submitted))
                    next_sample += 60
                await pilot.pause(0.1)
            if traffic is not None:
                traffic.stop()
                traffic_task.cancel()
                submitted = len(traffic.submitted)
            await pilot.pause(1.0)
            gc.collect()
            cur, peak = tracemalloc.get_traced_memory()
            samples.append((clock.now() - t_start, cur / 1e6, rss_mb(os.getpid()), submitted))
            wall = time.perf_counter() - wall0
            last = tracemalloc.take_snapshot()
            marks.append(((clock.now() - t_start) / 3600, *_heap_mb(last), rss_mb(os.getpid()),
                          len(session.jobs), submitted))
            top = [(str(st.traceback), st.size_diff / 1e6, st.count_diff) for st in
                   last.filter_traces([_NOT_SIM]).compare_to(
                       (snaps[0] if snaps else snap0).filter_traces([_NOT_SIM]),
                       "lineno")[:top_n]]
            tracemalloc.stop()
            rows = app.dashboard.query_one("#jobs").row_count if app.dashboard else -1
            await app.action_quit()
    finally:
        await client.aclose()
        store.close()
        sim.stop()
        tmp.cleanup()
    # the first sample is taken right after the warm-up; compare with the end, and the
    # second half alone (the render caches fill to their LRU caps during the first)
    start, final = samples[0], samples[-1]
    mid = min(samples, key=lambda x: abs(x[0] - final[0] / 2))
    grow = final[1] - start[1]
    jobs = final[3] - start[3]
    return {
        "traced_mid_mb": mid[1],
        "rss_mid_mb": mid[2],
        "mid_minute": mid[0] / 60,
        "second_half_growth_mb": final[1] - mid[1],
        "second_half_growth_per_job_kb": (final[1] - mid[1]) * 1e3 / max(1, final[3] - mid[3]),
        "simulated_minutes": minutes,
        "wall_s": wall,
        "jobs_added": jobs,
        "rows": rows,
        "traced_start_mb": start[1],
        "traced_end_mb": final[1],
        "traced_peak_mb": peak / 1e6,
        "traced_growth_mb": grow,
        "growth_per_job_kb": (grow * 1e3 / jobs) if jobs else float("nan"),
        "rss_start_mb": start[2],
        "rss_end_mb": final[2],
        "samples": samples,
        "top_growth": top,
        "top_growth_since": "hour 1" if snaps else "start",
        #: (simulated hour, traced MB, of it not the simulator's, RSS MB, jobs the session
        #: holds, jobs submitted by then)
        "marks": marks,
        "traffic": "demo" if demo else "idle5 + a job every 20 s",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=90,
                    help="seconds before measuring: the health sparklines fill in the first "
                         "~80 s (16 samples at 5 s), one repaint per answer until then; an "
                         "all-day session is measured after that")
    ap.add_argument("--history", type=int, default=200,
                    help="finished jobs in the history for the second CPU run (0: skip it)")
    ap.add_argument("--anchor-seconds", type=float, default=30,
                    help="idle CPU of a hello-world Textual app (0: skip)")
    ap.add_argument("--soak-minutes", type=float, default=60)
    ap.add_argument("--soak-scale", type=float, default=60)
    ap.add_argument("--soak-hours", type=float, default=0,
                    help="a long soak instead: this many simulated hours of the demo's "
                         "traffic (e.g. 24 with --soak-scale 600)")
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--skip-soak", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    out: dict[str, Any] = {}
    if not a.skip_cpu:
        runs = [("cpu", 0)] + ([("cpu_history", a.history)] if a.history else [])
        for key, hist in runs:
            out[key] = c = measure_cpu(a.seconds, a.warmup, hist)
            if not a.json:
                print(f"idle CPU ({hist} jobs in the list): {c['cpu_s']:.2f} s of CPU in "
                      f"{c['seconds']:.1f} s = {c['cpu_pct']:.2f} % of a core (goal <= 1 %); RSS "
                      f"{c['rss_start_mb']:.1f} -> {c['rss_end_mb']:.1f} MB; dashboard up: "
                      f"{c['dashboard_up']}", flush=True)
    if not a.skip_cpu and a.anchor_seconds > 0:
        out["hello"] = h = measure_hello(a.anchor_seconds)
        if not a.json:
            print(f"anchor, hello-world Textual app idle: {h['cpu_pct']:.2f} % of a core over "
                  f"{h['seconds']:.0f} s", flush=True)
    if not a.skip_soak:
        long = a.soak_hours > 0
        out["soak"] = asyncio.run(soak(a.soak_hours * 60 if long else a.soak_minutes,
                                       a.soak_scale, demo=long))
        if not a.json:
            s = out["soak"]
            print(f"soak: {s['simulated_minutes']:g} simulated min in {s['wall_s']:.0f} s wall, "
                  f"{s['jobs_added']} jobs added; traced heap {s['traced_start_mb']:.2f} -> "
                  f"{s['traced_end_mb']:.2f} MB ({s['growth_per_job_kb']:.1f} kB per added "
                  f"job); RSS {s['rss_start_mb']:.1f} -> {s['rss_end_mb']:.1f} MB")
            for t, tr, rss, n in s["samples"][:: max(1, len(s["samples"]) // 8)]:
                print(f"   t={t / 60:5.1f} min  traced {tr:7.2f} MB  RSS {rss:6.1f} MB  jobs {n}")
            for h, tr, ours, rss, n, sent in s["marks"]:
                print(f"   hour {h:5.1f}: traced {tr:7.2f} MB ({ours:7.2f} MB outside the "
                      f"simulator)  RSS {rss:6.1f} MB  jobs held {n}, submitted {sent} "
                      f"({s['traffic']})")
            print(f"   largest growth outside the simulator, by allocation site (since "
                  f"{s['top_growth_since']}):")
            for where, mb, count in s["top_growth"]:
                print(f"     {mb:+7.2f} MB {count:+8d} blocks  {where}")
    if a.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
