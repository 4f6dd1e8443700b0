"""Make the README screenshots: drive ``rpdash --demo`` with Textual's pilot and save SVGs
(and PNGs when ``rsvg-convert`` is installed) into ``screenshots/``.

    .venv/bin/python scripts/screenshots.py [--out screenshots] [--no-png]

Screens: the dashboard under load (160x48, 100x30 and 80x24, where one pane at a time
takes the screen), the submit form with a validation error, the output viewer in the middle of a stream, and the purge confirmation.
The demo's history goes to a temporary directory, never to the user's data dir.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BIG = (160, 48)
SMALL = (100, 30)
DEFAULT = (80, 24)


async def wait_for(pilot: Any, cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: timed out waiting for {what}")
        await pilot.pause(0.1)


def make_app(scenario: str | None = None) -> Any:
    from rpdash.config import Settings
    from rpdash.tui.app import RpdashApp

    settings = Settings(health_interval=1.0, status_interval=1.0)
    return RpdashApp(settings, demo=True, highlight=True, scenario=scenario)


async def start(app: Any, pilot: Any) -> Any:
    await wait_for(pilot, lambda: app.dashboard is not None and app.screen is app.dashboard,
                   30, "the demo to start")
    return app.dashboard


async def load(app: Any, pilot: Any) -> None:
    """Some traffic of our own on top of the demo's, so every pane has something in it."""
    s = app.session
    eps = list(s.endpoints)
    by = {e.split("-")[0]: e for e in eps}
    # mock_delay / mock_return: the simulator's worker takes that long and answers that
    # (without them a job "runs" in 0 ms, which looks fake on a screenshot)
    plan: list[tuple[str, dict]] = [
        (by.get("sdxl", eps[0]), {"prompt": "a lighthouse at dusk", "steps": 30,
                                  "mock_delay": 4.2,
                                  "mock_return": {"image_url": "s3://bucket/lighthouse.png"}}),
        (by.get("whisper", eps[0]), {"audio": "s3://bucket/call-0142.wav", "mock_delay": 1.6,
                                     "mock_return": {"text": "thanks for calling"}}),
        (by.get("etl", eps[0]), {"batch": 17, "mock_delay": 2.5,
                                 "mock_error": "schema mismatch in column 'ts'"}),
        (by.get("sdxl", eps[0]), {"prompt": "isometric city, night", "steps": 50,
                                  "mock_delay": 6.8,
                                  "mock_return": {"image_url": "s3://bucket/city.png"}}),
        (by.get("llm", eps[0]), {"prompt": "Explain cold starts", "max_tokens": 40,
                                 "mock_delay": 2.2,
                                 "mock_return": {"text": "A cold start is ..."}}),
    ]
    for ep, inp in plan:
        try:
            await s.submit(ep, inp)
        except Exception as exc:  # noqa: BLE001 - a screenshot run should go on
            print(f"screenshots: submit to {ep} failed: {exc}", file=sys.stderr)


def shoot(app: Any, out: Path, name: str) -> Path:
    path = out / f"{name}.svg"
    app.clear_notifications()  # toasts come and go; the panes are the subject
    app.save_screenshot(filename=path.name, path=str(out))
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


async def session_big(out: Path) -> list[Path]:
    from textual.widgets import Input, TextArea

    from rpdash.tui.widgets.health import HealthTable
    from rpdash.tui.widgets.jobs import JobTable
    from rpdash.tui.widgets.output import OutputViewer

    shots: list[Path] = []
    app = make_app()
    async with app.run_test(size=BIG) as pilot:
        dash = await start(app, pilot)
        await load(app, pilot)
        jobs = dash.query_one(JobTable)
        health = dash.query_one(HealthTable)
        await wait_for(pilot, lambda: len(jobs.records) >= 16, 90, "jobs in the list")
        await wait_for(pilot, lambda: max((len(v.queue) for v in health.views.values()),
                                          default=0) >= 12, 60, "health history")
        await wait_for(pilot, lambda: sum(r.status.terminal for r in jobs.records.values()) >= 6,
                       90, "finished jobs")
        # cursor on a finished job so the output pane has something to show
        done = next(j for j, r in sorted(jobs.records.items(),
                                        key=lambda kv: -kv[1].submitted_at) if r.terminal)
        jobs.move_cursor(row=jobs.get_row_index(done))
        await pilot.pause(0.5)
        for w in app.query(TextArea):
            w.cursor_blink = False
        shots.append(shoot(app, out, "dashboard"))

        # the output viewer in the middle of a stream
        llm = next((e for e in app.session.endpoints if e.startswith("llm")),
                   app.session.endpoints[0])
        rec = await app.session.submit(llm, {"prompt": "Tell the story of a queue that "
                                             "learned to drain itself", "max_tokens": 600},
                                       mode="stream")
        await wait_for(pilot, lambda: rec.job_id in jobs.records, 10, "the stream job")
        jobs.move_cursor(row=jobs.get_row_index(rec.job_id))
        jobs.focus()
        viewer = dash.query_one(OutputViewer)
        await wait_for(pilot, lambda: viewer.job is not None and viewer.job.job_id == rec.job_id,
                       10, "the stream job in the viewer")
        await pilot.press("alt+3")
        await wait_for(pilot, lambda: viewer.next_seq >= 120, 90, "streamed chunks")
        shots.append(shoot(app, out, "output-streaming"))

        # the submit form with a validation error
        await pilot.press("n")
        form = dash.query_one("#sf-input", TextArea)
        form.load_text('{\n  "prompt": "a lighthouse at dusk",\n  "steps": 30,\n}\n')
        form.cursor_blink = False
        await pilot.pause(0.3)
        shots.append(shoot(app, out, "submit-validation-error"))
        await pilot.press("escape")

        # the purge confirmation, on the endpoint with the longest queue
        await pilot.press("alt+1")
        queue = {e: (health.queue_size(e) or 0) for e in health.views}
        target = max(queue, key=lambda e: queue[e])
        health.move_cursor(row=list(health.views).index(target))
        await pilot.press("ctrl+d")
        await pilot.pause(0.3)
        for w in app.screen.query(Input):
            w.cursor_blink = False
        name = app.screen.name_to_type
        for ch in name[: max(1, len(name) // 2)]:
            await pilot.press(ch)
        await pilot.pause(0.2)
        shots.append(shoot(app, out, "purge-confirm"))
        await pilot.press("escape")

        # the scale form on the same endpoint, a new maximum typed in
        await pilot.press("escape", "alt+1", "s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ScaleScreen", 15,
                       "the scale form")
        await pilot.pause(1.0)
        for w in app.screen.query(Input):
            w.cursor_blink = False
        shots.append(shoot(app, out, "scale-form"))
        await pilot.press("escape")
    return shots


async def session_incident(out: Path) -> list[Path]:
    """``rpdash --demo --scenario crashloop``: the verdict in the row and the status bar,
    and the alert in the flash line."""
    from rpdash.tui.widgets.health import HealthTable

    app = make_app("crashloop")
    async with app.run_test(size=BIG) as pilot:
        dash = await start(app, pilot)
        health = dash.query_one(HealthTable)

        def crash_looping() -> bool:
            return any(v.verdict is not None and v.verdict.kind == "crash_loop"
                       for v in health.views.values())

        await wait_for(pilot, crash_looping, 120, "the crash-loop verdict")
        await pilot.pause(2.0)
        return [shoot(app, out, "incident-crashloop")]


async def session_small(out: Path, size: tuple[int, int] = SMALL) -> list[Path]:
    from textual.widgets import TextArea

    from rpdash.tui.widgets.jobs import JobTable

    app = make_app()
    async with app.run_test(size=size) as pilot:
        dash = await start(app, pilot)
        await load(app, pilot)
        jobs = dash.query_one(JobTable)
        await wait_for(pilot, lambda: len(jobs.records) >= 12, 90, "jobs in the list")
        await pilot.pause(1)
        for w in app.query(TextArea):
            w.cursor_blink = False
        return [shoot(app, out, f"dashboard-{size[0]}x{size[1]}")]


async def session_default(out: Path) -> list[Path]:
    """The default terminal: the jobs pane on screen, the switcher line above it."""
    return await session_small(out, DEFAULT)


def to_png(svgs: list[Path]) -> None:
    tool = shutil.which("rsvg-convert")
    if tool is None:
        print("rsvg-convert not found (apt-get install librsvg2-bin): SVGs only")
        return
    for svg in svgs:
        png = svg.with_suffix(".png")
        subprocess.run([tool, str(svg), "-o", str(png)], check=True)
        print(f"wrote {png.relative_to(ROOT) if png.is_relative_to(ROOT) else png}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "screenshots"))
    ap.add_argument("--no-png", action="store_true")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.pop("RUNPOD_API_KEY", None)
    shots: list[Path] = []
    for run in (session_big, session_small, session_default, session_incident):
        # a fresh, temporary history per run: the demo's history never lands in the
        # user's data dir, and one run's jobs do not show up in the next one
        with tempfile.TemporaryDirectory(prefix="rpdash-shots-") as tmp:
            os.environ["RPDASH_DATA_DIR"] = tmp
            shots += asyncio.run(run(out))
    if not args.no_png:
        to_png(shots)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
