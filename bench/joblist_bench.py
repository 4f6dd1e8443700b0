"""Job list at scale (issue 5 goal 2, issue 16 goal 4): 100,000 jobs in history, 10,000 in
the live list.

The real app (``RpdashApp``) runs headless (``App.run_test``, 160 x 50) on the real
``Session`` and a real ``HistoryStore`` file holding 100,000 jobs; the Session loads the
newest 10,000 (``history_limit=10000``), 2,000 of them still IN_QUEUE (a backlog). The
RunPod client is a stub whose calls never answer, so nothing but the UI is measured.

Measured:

- **first paint**: from just before ``run_test`` starts the app (CSS, screens, the
  Session reading the history, the table filled) to the end of the first frame of the
  dashboard screen (``App._display``; frames are also turned into escape sequences, which
  a headless run skips, see ``bench/_common.py``);
- **10,000 status changes**: one ``JobsEvent`` with 10,000 changed records goes into the
  app's sink (the EventPump, as the services deliver them) while the cursor sits on row
  25; UI time = the handler (``DashboardScreen.on_jobs``: records taken, the rows on
  screen diffed and their changed cells written; rows off screen are only marked) + every
  repaint until the app is idle (``Screen._on_timer_update``; a 1 Hz tick that falls in
  the window is counted too). Two rounds
  (IN_QUEUE/IN_PROGRESS -> COMPLETED, then a progress/exec update of every row); the cursor
  must still be on the same job after each;
- **anchor**: the naive update of the same table: ``DataTable.clear()`` and ``add_rows``
  of the 10,000 rows (same cells), plus its repaint, in the same app; it also loses the
  cursor (reported).

    .venv/bin/python bench/joblist_bench.py [--history 100000] [--live 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timed, honest_headless  # noqa: E402

from rpdash.core.models import JobStatus  # noqa: E402
from rpdash.core.records import JobRecord  # noqa: E402
from rpdash.store.history import HistoryStore  # noqa: E402

SIZE = (160, 50)
ENDPOINTS = ["llm-chat", "sdxl", "whisper", "etl"]


def build_history(path: Path, jobs: int, live_queued: int) -> None:
    rng = random.Random(2)
    store = HistoryStore(path)
    t_base = time.time() - jobs * 0.5
    batch: list[tuple[JobRecord, dict | None]] = []
    done = [JobStatus.COMPLETED] * 8 + [JobStatus.FAILED, JobStatus.CANCELLED]
    for i in range(jobs):
        newest = i >= jobs - live_queued
        status = JobStatus.IN_QUEUE if newest else rng.choice(done)
        submitted = t_base + i * 0.5
        rec = JobRecord(
            job_id=f"{i:08x}-1111-2222-3333-444455556666-u1",
            endpoint_id=ENDPOINTS[i % 4],
            status=status,
            input={"prompt": f"request number {i}", "max_tokens": 128},
            submitted_at=submitted,
            updated_at=submitted + 1,
            finished_at=submitted + 1 if status.terminal else None,
            delay_ms=None if newest else rng.randint(10, 5000),
            execution_ms=rng.randint(100, 60000) if status.terminal else None,
            output={"text": "x" * rng.randint(20, 200)} if status is JobStatus.COMPLETED else None,
            error="worker exited with code 1" if status is JobStatus.FAILED else None,
        )
        batch.append((rec, None))
        if len(batch) >= 2000:
            store.update_many(batch)
            batch.clear()
    if batch:
        store.update_many(batch)
    store.close()


class SilentClient:
    """A RunPod client whose every call waits forever (the UI alone is measured)."""

    base_url = "http://bench.invalid/v2"

    def __getattr__(self, name: str) -> Any:
        async def never(*a: Any, **kw: Any) -> Any:
            await asyncio.Event().wait()

        return never

    async def aclose(self) -> None:
        pass


async def one_run(path: Path, live: int) -> dict[str, Any]:
    from textual.screen import Screen
    from textual.widgets import DataTable

    from rpdash.services.events import JobsEvent
    from rpdash.services.session import Session
    from rpdash.tui.app import RpdashApp
    from rpdash.tui.backend import StaticBackend
    from rpdash.tui.widgets.jobs import JobTable

    class Backend(StaticBackend):
        async def start(self, sink: Any) -> Any:
            self.session.sink = sink  # the Session emits into the app's EventPump
            await self.session.start()
            return self.session

    store = HistoryStore(path)
    session = Session(client=SilentClient(), store=store, endpoints=ENDPOINTS,  # type: ignore[arg-type]
                      sink=lambda ev: None, history_limit=live)
    res: dict[str, Any] = {}
    repaints = Timed()
    orig_update = Screen._on_timer_update
    Screen._on_timer_update = repaints.wrap(orig_update)  # type: ignore[method-assign]
    try:
        with honest_headless() as frames:
            t0 = time.perf_counter()
            app = RpdashApp(backend=Backend(session), highlight=False)
            async with app.run_test(size=SIZE) as pilot:
                deadline = time.perf_counter() + 60
                while not any(f[2] == "DashboardScreen" for f in frames):
                    await asyncio.sleep(0.002)
                    if time.perf_counter() > deadline:
                        raise RuntimeError("the dashboard never painted")
                first = next(f for f in frames if f[2] == "DashboardScreen")
                res["first_paint_s"] = first[0] + first[1] - t0
                dash = app.dashboard
                assert dash is not None
                table = dash.query_one(JobTable)
                res["rows"] = table.row_count
                await pilot.pause()
                await pilot.pause(0.2)
                table.focus()
                table.move_cursor(row=25, animate=False)
                await pilot.pause()
                keep = table.current_job_id
                applies = Timed()
                dash.on_jobs = applies.wrap(dash.on_jobs)  # type: ignore[method-assign]
                recs = list(session.jobs.values())
                assert len(recs) == live, len(recs)
                rounds = []
                for rnd in range(2):
                    now = time.time()
                    if rnd == 0:
                        changed = [r.copy(status=JobStatus.COMPLETED if r.status.terminal
                                          else JobStatus.IN_PROGRESS,
                                          delay_ms=(r.delay_ms or 0) + 7, updated_at=now)
                                   for r in recs]
                    else:
                        changed = [r.copy(execution_ms=(r.execution_ms or 0) + 1234,
                                          progress=f"step {rnd}", updated_at=now)
                                   for r in changed]
                    await pilot.pause()
                    mark = time.perf_counter()
                    session.sink(JobsEvent(changed))
                    while not applies.calls or applies.calls[-1][0] < mark:
                        await asyncio.sleep(0.001)
                    await pilot.pause()
                    await pilot.pause()
                    apply_s = sum(d for t, d in applies.calls if t >= mark)
                    paint_s = repaints.total(mark)
                    frames = [d * 1e3 for t, d in repaints.calls if t >= mark]
                    rounds.append({"apply_ms": apply_s * 1e3, "paint_ms": paint_s * 1e3,
                                   "frames_ms": [round(f, 1) for f in frames],
                                   "ui_ms": (apply_s + paint_s) * 1e3,
                                   "cursor_kept": table.current_job_id == keep,
                                   "cells_written": table.cells_written})
                res["rounds"] = rounds
                res["cursor_kept"] = all(r["cursor_kept"] for r in rounds)
                res["ui_ms"] = max(r["ui_ms"] for r in rounds)

                # anchor: the same rows, cleared and refilled into the same DataTable
                from rpdash.tui.widgets.job_cells import COLUMN_KEYS, job_cell

                rows = [[job_cell(COLUMN_KEYS[i], table._row(rec)[i], rec, table.names)
                         for i in table._cols] for rec in changed]
                await pilot.pause()
                mark = time.perf_counter()
                t1 = time.perf_counter()
                DataTable.clear(table)
                for i, (row, rec) in enumerate(zip(rows, changed)):
                    DataTable.add_row(table, *row, key=f"anchor-{i}")
                anchor_apply = time.perf_counter() - t1
                await pilot.pause()
                await pilot.pause()
                anchor_paint = repaints.total(mark)
                res["anchor_ms"] = (anchor_apply + anchor_paint) * 1e3
                res["anchor_apply_ms"] = anchor_apply * 1e3
                res["anchor_cursor_row"] = table.cursor_row
                await app.action_quit()
    finally:
        Screen._on_timer_update = orig_update  # type: ignore[method-assign]
        store.close()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--history", type=int, default=100_000)
    ap.add_argument("--live", type=int, default=10_000)
    ap.add_argument("--queued", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    path = Path(tmp.name) / "history.sqlite3"
    t = time.perf_counter()
    build_history(path, a.history, a.queued)
    if not a.json:
        print(f"history of {a.history:,} jobs built in {time.perf_counter() - t:.1f} s")
    runs = []
    for i in range(a.repeat):
        r = asyncio.run(one_run(path, a.live))
        runs.append(r)
        if not a.json:
            rs = "; ".join(f"apply {x['apply_ms']:.1f} + paint {x['paint_ms']:.1f} ms "
                           f"({len(x['frames_ms'])} repaints, largest "
                           f"{max(x['frames_ms'], default=0):.1f}), cursor "
                           f"{'kept' if x['cursor_kept'] else 'LOST'}" for x in r["rounds"])
            print(f"run {i + 1}: first paint {r['first_paint_s']:.3f} s ({r['rows']} rows); "
                  f"10k changes: {rs}; anchor clear+refill {r['anchor_ms']:.1f} ms "
                  f"(cursor back to row {r['anchor_cursor_row']})", flush=True)
    tmp.cleanup()
    med = statistics.median
    out = {
        "first_paint_s": med(r["first_paint_s"] for r in runs),
        "ui_ms": med(r["ui_ms"] for r in runs),
        "apply_ms": med(max(x["apply_ms"] for x in r["rounds"]) for r in runs),
        "anchor_ms": med(r["anchor_ms"] for r in runs),
        "cursor_kept": all(r["cursor_kept"] for r in runs),
        "rows": runs[0]["rows"],
        "runs": runs,
    }
    if a.json:
        print(json.dumps(out))
        return
    print(f"median: first paint {out['first_paint_s']:.3f} s (goal <= 0.5 s); 10k changes "
          f"{out['ui_ms']:.1f} ms UI time (goal <= 30 ms) vs clear+refill "
          f"{out['anchor_ms']:.1f} ms; cursor kept: {out['cursor_kept']}")


if __name__ == "__main__":
    main()
