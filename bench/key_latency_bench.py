"""Key latency (issue 16): from a key press to the frame that shows its result, p95 of 30.

The real app (``RpdashApp(settings, demo=True)``: the in-process simulator with the demo
scenario's background traffic and rpdash's own ``DemoTraffic``, streams included) runs
headless at 160 x 48 with 1,000 finished jobs in its history (the Session lists the newest
1,000; the demo adds its live ones on top). Notifications are on (``run_test`` turns them
off by default; the toasts are part of what a key costs).

How a press is timed (``bench/_common.py``):

- the key goes in as a terminal driver sends it (``Driver.send_message(events.Key)``), not
  through ``Pilot.press``, which waits for CPU idle and then forces a repaint;
- the key's *result* is a predicate on the app's state (the cursor on the next job, the
  output pane showing that job, a screen on top and mounted, the focus moved, the filter
  applied, ...), false before the press;
- every compositor refresh of the screen on top (``Screen._compositor_refresh``, called
  by the screen's update timer at most ``MAX_FPS`` = 60 times a second, and after a
  layout) checks the predicate *before* rendering; the first one that finds it true is
  the frame that shows the result; its end (after ``App._display``, which
  ``honest_headless`` makes turn the frame into escape sequences as a terminal run does)
  is the time. Latency = that time - the time the key was sent.

Keys (30 presses each unless said; the goal is <= 100 ms p95, ``q`` <= 300 ms):
navigation (``j``/``k``: the cursor frame and the frame where the output pane shows the
newly selected job, "j->output"; ``tab``; ``alt+1``..``alt+4``; ``/``, typing in the filter,
enter (applies it to 1,000 rows), escape (clears it)); screens (``?``, ``W``, ``L``, ``M``,
``ctrl+e``, ``ctrl+p`` and escape back from each; palette entries: typing a query, enter on
the entry); dialogs (``ctrl+d`` cancel on a live job, ``ctrl+d`` purge from the endpoints
pane, escape out of both; ``r`` retry on a failed job, to the row showing it re-queued);
``q`` to the app task's end (services stopped, simulator stopped), over fresh apps.

The anchor (``--anchor``, on by default): the same kinds of keys in a bare Textual app
with a DataTable of 1,000 rows (``bench/_anchor_app.py``), same probe, same size.

    .venv/bin/python bench/key_latency_bench.py [--presses 30] [--quit-runs 10] [--jobs 1000]
        [--only j,k,...] [--no-anchor] [--profile KEY] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import FrameProbe, honest_headless, pct, send_key  # noqa: E402

SIZE = (160, 48)
GOAL_MS = 100.0
QUIT_GOAL_MS = 300.0
DEMO_ENDPOINTS = ("llm-chat", "sdxl-images", "whisper-asr", "etl-batch")


# ---------------------------------------------------------------------- the adapters
class RpdashTarget:
    """Every rpdash internal this benchmark touches, in one place (the rest goes through
    the app class, key presses, and widget queries by id)."""

    name = "rpdash"
    dashboard_screen = "DashboardScreen"

    def __init__(self, tmp: Path, jobs: int) -> None:
        self.tmp = tmp
        self.jobs = jobs
        data = tmp / "data"
        data.mkdir(parents=True, exist_ok=True)
        for k in [k for k in os.environ if k.startswith(("RUNPOD_", "RPDASH_"))]:
            del os.environ[k]
        os.environ["RPDASH_DATA_DIR"] = str(data)
        os.environ["RPDASH_CONFIG"] = str(tmp / "no-config.toml")
        os.chdir(tmp)  # no stray .env
        self._fill_history(jobs)

    def _fill_history(self, n: int) -> None:
        from rpdash import paths
        from rpdash.core.models import JobStatus
        from rpdash.core.records import JobRecord
        from rpdash.store.history import HistoryStore

        rng = random.Random(16)
        store = HistoryStore(paths.history_file(demo=True))
        now = time.time()
        done = [JobStatus.COMPLETED] * 8 + [JobStatus.FAILED, JobStatus.CANCELLED]
        batch = []
        for i in range(n):
            st = rng.choice(done)
            sub = now - 1800 + i * (1700 / n)
            ep = DEMO_ENDPOINTS[i % 4]
            batch.append((JobRecord(
                job_id=f"{i:08x}-hist-2222-3333-444455556666-u1", endpoint_id=ep, status=st,
                mode="stream" if ep == "llm-chat" else "run",
                input={"prompt": f"request {i}", "max_tokens": 64}, submitted_at=sub,
                updated_at=sub + 2, finished_at=sub + 2, delay_ms=rng.randint(10, 3000),
                execution_ms=rng.randint(100, 20000),
                output={"text": "word " * rng.randint(5, 60)} if st is JobStatus.COMPLETED
                else None,
                error="worker exited with code 1" if st is JobStatus.FAILED else None), None))
        store.update_many(batch)
        store.close()

    def make_app(self, **kw: Any) -> Any:
        from rpdash.config import load_settings
        from rpdash.tui.app import RpdashApp

        return RpdashApp(load_settings(), demo=True, **kw)

    # state the predicates read
    def ready(self, app: Any) -> bool:
        d = app.dashboard
        return d is not None and app.screen is d and d.is_mounted and self.table(app).row_count >= self.jobs

    def table(self, app: Any) -> Any:
        return app.dashboard.query_one("#jobs")

    def health(self, app: Any) -> Any:
        return app.dashboard.query_one("#health")

    def dashboard(self, app: Any) -> Any:
        return app.dashboard

    def shown_job(self, app: Any) -> str | None:
        job = app.dashboard.query_one("#output").job
        return job.job_id if job is not None else None

    def filter_line(self, app: Any) -> Any:
        return app.dashboard.query_one("#filter")

    def filter_text(self, app: Any) -> str:
        return self.table(app).filter_text

    def pane(self, app: Any, n: int) -> Any:
        return app.dashboard.query_one(("#health", "#jobs", "#output", "#submit")[n - 1])

    def status(self, app: Any, job_id: str) -> str | None:
        rec = self.table(app).records.get(job_id)
        return str(rec.status) if rec is not None else None

    async def make_jobs(self, app: Any, failing: int) -> tuple[str, list[str]]:
        """A long job (for the cancel dialog) and ``failing`` jobs that fail (for retry)."""
        s = app.session
        long = await s.submit("etl-batch", {"mock_delay": 3600})
        fails = []
        for _ in range(failing):
            rec = await s.submit("whisper-asr", {"mock_error": True, "mock_delay": 0.05})
            fails.append(rec.job_id)
        return long.job_id, fails


class AnchorTarget:
    """The bare Textual app (bench/_anchor_app.py), same questions."""

    name = "anchor"
    dashboard_screen = "Screen"

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def make_app(self) -> Any:
        from _anchor_app import AnchorApp

        return AnchorApp(self.jobs)

    def ready(self, app: Any) -> bool:
        return self.table(app).row_count >= self.jobs

    def table(self, app: Any) -> Any:
        return app.screen_stack[0].query_one("#jobs")

    def health(self, app: Any) -> Any:
        return app.screen_stack[0].query_one("#health")

    def dashboard(self, app: Any) -> Any:
        return app.screen_stack[0]

    def shown_job(self, app: Any) -> str | None:
        return app.shown_key

    def filter_line(self, app: Any) -> Any:
        return app.screen_stack[0].query_one("#filter")

    def filter_text(self, app: Any) -> str:
        return app.filter_text

    def pane(self, app: Any, n: int) -> Any:
        return app.screen_stack[0].query_one(("#health", "#jobs", "#output", "#submit")[n - 1])

    def status(self, app: Any, job_id: str) -> str | None:
        return str(self.table(app).get_row(job_id)[2])


# ---------------------------------------------------------------------- the driver
def current_key(table: Any) -> str | None:
    if table.row_count == 0:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except Exception:  # noqa: BLE001
        return None


def key_at(table: Any, row: int) -> str | None:
    try:
        return table.coordinate_to_cell_key((row, 0)).row_key.value
    except Exception:  # noqa: BLE001
        return None


def within(node: Any, ancestor: Any) -> bool:
    while node is not None:
        if node is ancestor:
            return True
        node = node.parent
    return False


class Driver:
    def __init__(self, app: Any, target: Any, probe: FrameProbe, presses: int,
                 profile: str | None = None) -> None:
        self.app = app
        self.t = target
        self.probe = probe
        self.n = presses
        self.samples: dict[str, list[float]] = {}
        self.timeouts: dict[str, int] = {}
        self.profile_key = profile
        self.profiler = cProfile.Profile() if profile else None

    async def settle(self, gap: float = 0.18) -> None:
        await asyncio.sleep(gap + random.uniform(0, 0.05))

    async def press(self, key: str, expect: dict[str, Callable[[], Any]], *,
                    label: str | None = None, timeout: float = 5.0) -> None:
        label = label or key
        for name, pred in expect.items():
            self.probe.expect(name, pred)
        prof = self.profiler if self.profile_key in (label, key) else None
        if prof:
            prof.enable()
        t0 = time.perf_counter()
        send_key(self.app, key)
        done = await self.probe.wait(timeout)
        if prof:
            prof.disable()
        for name in expect:
            if name in done:
                self.samples.setdefault(name, []).append((done[name] - t0) * 1e3)
            else:
                self.timeouts[name] = self.timeouts.get(name, 0) + 1

    def on_top(self, prev: Any) -> Callable[[], bool]:
        """A new screen on top, mounted with its children."""
        app = self.app

        def pred() -> bool:
            s = app.screen
            return s is not prev and s.is_mounted and all(w.is_mounted for w in s.walk_children())

        return pred

    def back_to(self, screen: Any) -> Callable[[], bool]:
        return lambda: self.app.screen is screen

    async def open_close(self, key: str, label: str, close_label: str, dash: Any) -> None:
        """``key`` opens a screen or dialog over ``dash``; escape closes it. Both timed."""
        await self.press(key, {label: self.on_top(dash)}, label=label)
        await self.settle()
        if self.app.screen is dash:
            return  # did not open (timed out): counted
        await self.press("escape", {close_label: self.back_to(dash)}, label=close_label)
        await self.settle()

    async def home(self) -> None:
        """Back to the dashboard, job list focused."""
        app, dash = self.app, self.t.dashboard(self.app)
        while app.screen is not dash and len(app.screen_stack) > 1:
            app.pop_screen()
            await asyncio.sleep(0.05)
        self.t.table(app).focus()
        await asyncio.sleep(0.1)

    # ------------------------------------------------------------------ groups
    async def nav_jk(self) -> None:
        app, table = self.app, self.t.table(self.app)
        await self.home()
        table.move_cursor(row=5, animate=False)
        await self.settle(0.4)
        for key, step in (("j", 1), ("k", -1)):
            for _ in range(self.n):
                row = table.cursor_row
                want = key_at(table, row + step)
                await self.press(key, {key: lambda w=want: current_key(table) == w,
                                       f"{key}->output": lambda w=want: self.t.shown_job(app) == w})
                await self.settle()

    async def nav_tab(self) -> None:
        app = self.app
        await self.home()
        for _ in range(self.n):
            prev = app.focused
            await self.press("tab", {"tab": lambda p=prev: app.focused is not p and app.focused is not None})
            await self.settle()

    async def nav_alt(self) -> None:
        app = self.app
        await self.home()
        for _ in range(self.n):
            for n in (1, 3, 4, 2):
                pane = self.t.pane(app, n)
                await self.press(f"alt+{n}", {f"alt+{n}": lambda p=pane: within(app.focused, p)})
                await self.settle()

    async def filter(self) -> None:
        app = self.app
        table = self.t.table(app)
        line = self.t.filter_line(app)
        for _ in range(self.n):
            await self.home()
            await self.press("/", {"/": lambda: app.focused is line and line.display and line.visible})
            await self.settle()
            typed = ""
            for ch in "llm":
                typed += ch
                await self.press(ch, {"filter typing": lambda v=typed: line.value == v},
                                 label="filter typing")
                await self.settle(0.08)
            await self.press("enter", {"filter enter (apply)": lambda: self.t.filter_text(app) == "llm"
                                       and app.focused is table and table.row_count < self.t.jobs},
                             label="filter enter (apply)")
            await self.settle()
            await self.press("escape", {"escape (clear filter)": lambda: self.t.filter_text(app) == ""
                                        and table.row_count >= self.t.jobs},
                             label="escape (clear filter)")
            await self.settle()

    async def screens(self) -> None:
        app = self.app
        for _ in range(self.n):
            for key in ("question_mark", "W", "L", "M", "ctrl+e", "ctrl+p"):
                await self.home()
                dash = app.screen
                label = "?" if key == "question_mark" else key
                await self.open_close(key, label, f"{label} escape", dash)

    async def palette(self) -> None:
        app = self.app
        entries = ("metr", "work", "logs")
        for i in range(self.n):
            await self.home()
            dash = app.screen
            await self.press("ctrl+p", {"ctrl+p": self.on_top(dash)})
            await self.settle()
            pal = app.screen
            if pal is dash:
                continue
            inp = pal.query_one("CommandInput")
            typed = ""
            for ch in entries[i % len(entries)]:
                typed += ch
                pal._bench_results_for = None  # set by palette_results_hook()

                def gathered(v: str = typed) -> bool:
                    return inp.value == v and getattr(pal, "_bench_results_for", None) == v

                await self.press(ch, {"palette typing (results)": gathered},
                                 label="palette typing (results)")
                await self.settle(0.08)
            await self.press("enter", {"palette enter (entry's screen)": lambda: app.screen not in (pal, dash)
                                       and self.on_top(pal)()}, label="palette enter (entry's screen)")
            await self.settle()
            await self.home()

    async def dialogs(self, long_job: str | None, failed: list[str]) -> None:
        app = self.app
        table = self.t.table(app)
        for i in range(self.n):
            await self.home()
            dash = app.screen
            if long_job is not None:
                table.move_cursor(row=table.get_row_index(long_job), animate=False)
            await self.settle()
            await self.open_close("ctrl+d", "ctrl+d cancel dialog", "cancel dialog escape", dash)
            # purge, from the endpoints pane
            self.t.health(app).focus()
            await self.settle()
            await self.open_close("ctrl+d", "ctrl+d purge dialog", "purge dialog escape", dash)
            # retry a failed job: to the row showing it re-queued
            await self.home()
            job = failed[i % len(failed)] if failed else key_at(table, 10 + i)
            if job is None:
                continue
            if failed:
                for _ in range(100):  # it fails again soon after each retry
                    if self.t.status(app, job) in ("FAILED",):
                        break
                    await asyncio.sleep(0.1)
            table.move_cursor(row=table.get_row_index(job), animate=False)
            await self.settle()
            before = self.t.status(app, job)
            # rpdash marks the row "retrying…" with the key (before RunPod answers)
            await self.press("r", {"r retry (row re-queued)": lambda j=job, b=before: self.t.status(app, j) != b,
                                   "r retry (row shows it)": lambda j=job, b=before: (
                                       self.t.status(app, j) != b
                                       or "retrying" in str(self.t.table(app).get_row(j)[2]))},
                             label="r retry (row re-queued)")
            await self.settle(0.3)


async def wait_until(cond: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.contextmanager
def palette_results_hook() -> Any:
    """Mark the command palette with the query whose results it has just listed (its
    search runs in a worker; ``_refresh_command_list`` is where the results land)."""
    from textual.command import CommandInput, CommandPalette

    orig = CommandPalette._refresh_command_list

    def refresh(self: Any, *a: Any, **kw: Any) -> Any:
        r = orig(self, *a, **kw)
        with contextlib.suppress(Exception):
            self._bench_results_for = self.query_one(CommandInput).value.strip()
        return r

    CommandPalette._refresh_command_list = refresh  # type: ignore[method-assign]
    try:
        yield
    finally:
        CommandPalette._refresh_command_list = orig  # type: ignore[method-assign]


GROUPS = ("nav", "filter", "screens", "palette", "dialogs")


async def run_keys(target: Any, presses: int, groups: tuple[str, ...],
                   profile: str | None, profile_out: str | None = None) -> dict[str, Any]:
    probe = FrameProbe()
    with honest_headless(), palette_results_hook():
        probe.install()
        try:
            app = target.make_app()
            async with app.run_test(size=SIZE, notifications=True) as pilot:
                await wait_until(lambda: target.ready(app), 60, "the dashboard with its jobs")
                await pilot.pause()
                long_job, failed = None, []
                if isinstance(target, RpdashTarget) and "dialogs" in groups:
                    long_job, failed = await target.make_jobs(app, 10)
                    await wait_until(lambda: all(target.status(app, j) == "FAILED" for j in failed)
                                     and long_job in target.table(app).records, 60, "failed jobs")
                await asyncio.sleep(1.0)  # the demo's traffic under way
                d = Driver(app, target, probe, presses, profile)
                rows = target.table(app).row_count
                if "nav" in groups:
                    await d.nav_jk()
                    await d.nav_tab()
                    await d.nav_alt()
                if "filter" in groups:
                    await d.filter()
                if "screens" in groups:
                    await d.screens()
                if "palette" in groups:
                    await d.palette()
                if "dialogs" in groups:
                    await d.dialogs(long_job, failed)
                await d.home()
                errors = list(getattr(app, "internal_errors", []))
        finally:
            probe.uninstall()
    out: dict[str, Any] = {"rows": rows, "samples": d.samples, "timeouts": d.timeouts,
                           "internal_errors": [repr(e) for e in errors]}
    if d.profiler is not None:
        if profile_out:
            d.profiler.dump_stats(profile_out)
        s = io.StringIO()
        pstats.Stats(d.profiler, stream=s).sort_stats("cumulative").print_stats(45)
        out["profile"] = s.getvalue()
    return out


async def run_quit(target: Any) -> float | None:
    probe = FrameProbe()
    with honest_headless():
        app = target.make_app()
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await wait_until(lambda: target.ready(app), 60, "the dashboard")
            await pilot.pause()
            await asyncio.sleep(1.5)  # traffic under way
            task = app._task
            t0 = time.perf_counter()
            send_key(app, "q")
            try:
                await asyncio.wait_for(asyncio.shield(task), 10)
            except asyncio.TimeoutError:
                return None
            dt = (time.perf_counter() - t0) * 1e3
            assert app.return_code in (0, None), app.return_code
    del probe
    return dt


def summarise(samples: dict[str, list[float]], timeouts: dict[str, int]) -> dict[str, Any]:
    out = {}
    for name, vals in samples.items():
        out[name] = {"n": len(vals), "p50": pct(vals, 50), "p95": pct(vals, 95),
                     "max": max(vals), "timeouts": timeouts.get(name, 0)}
    for name, n in timeouts.items():
        if name not in out:
            out[name] = {"n": 0, "p50": float("nan"), "p95": float("nan"), "max": float("nan"),
                         "timeouts": n}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presses", type=int, default=30)
    ap.add_argument("--quit-runs", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--only", default=",".join(GROUPS), help="comma list of " + ",".join(GROUPS))
    ap.add_argument("--no-anchor", action="store_true")
    ap.add_argument("--profile", metavar="LABEL", help="cProfile the presses of this key/label")
    ap.add_argument("--profile-out", metavar="FILE", help="also dump the pstats there")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    groups = tuple(g.strip() for g in a.only.split(",") if g.strip())
    load0 = os.getloadavg()
    tmp = tempfile.TemporaryDirectory()
    target = RpdashTarget(Path(tmp.name), a.jobs)
    res = asyncio.run(run_keys(target, a.presses, groups, a.profile, a.profile_out))
    quits = [q for q in (asyncio.run(run_quit(target)) for _ in range(a.quit_runs))]
    anchor: dict[str, Any] = {}
    anchor_quit: list[float | None] = []
    if not a.no_anchor:
        at = AnchorTarget(a.jobs)
        anchor = asyncio.run(run_keys(at, a.presses, tuple(g for g in groups if g != "dialogs")
                                      + (("dialogs",) if "dialogs" in groups else ()), None))
        anchor_quit = [asyncio.run(run_quit(at)) for _ in range(min(a.quit_runs, 5))]
    load1 = os.getloadavg()
    keys = summarise(res["samples"], res["timeouts"])
    qv = [q for q in quits if q is not None]
    if qv:
        keys["q (to a clean exit)"] = {"n": len(qv), "p50": pct(qv, 50), "p95": pct(qv, 95),
                                       "max": max(qv), "timeouts": len(quits) - len(qv)}
    akeys = summarise(anchor.get("samples", {}), anchor.get("timeouts", {})) if anchor else {}
    aq = [q for q in anchor_quit if q is not None]
    if aq:
        akeys["q (to a clean exit)"] = {"n": len(aq), "p50": pct(aq, 50), "p95": pct(aq, 95),
                                        "max": max(aq), "timeouts": 0}
    over = [k for k, v in keys.items()
            if not v["p95"] <= (QUIT_GOAL_MS if k.startswith("q ") else GOAL_MS)]
    out = {"keys": keys, "anchor": akeys, "over_budget": over, "rows": res["rows"],
           "internal_errors": res["internal_errors"], "presses": a.presses,
           "load_before": load0, "load_after": load1}
    if a.json:
        print(json.dumps(out))
        return
    print(f"rpdash --demo, {res['rows']} jobs listed, {SIZE[0]}x{SIZE[1]}, {a.presses} presses "
          f"per key; load average before {load0[0]:.2f}, after {load1[0]:.2f}")
    print(f"{'key':34} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'t/o':>4}  "
          f"{'anchor p95':>10}  goal")
    for k, v in keys.items():
        goal = QUIT_GOAL_MS if k.startswith("q ") else GOAL_MS
        av = akeys.get(k)
        astr = f"{av['p95']:.1f}" if av else "-"
        print(f"{k:34} {v['n']:>4} {v['p50']:>8.1f} {v['p95']:>8.1f} {v['max']:>8.1f} "
              f"{v['timeouts']:>4}  {astr:>10}  "
              f"{'ok' if v['p95'] <= goal else 'OVER'} (<= {goal:.0f})")
    if res["internal_errors"]:
        print("internal errors:", res["internal_errors"])
    if "profile" in res:
        print(res["profile"])


if __name__ == "__main__":
    main()
