"""Fixtures for the Pilot tests: a real simulator on 127.0.0.1, Settings pointing at it,
a history file in tmp_path, and helpers that wait on conditions (never fixed sleeps)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rpdash.config import Settings
from rpdash.sim.server import SimServer


@pytest.fixture
def tui_sim():
    server = SimServer(api_key="sim-key", scenario="default").start()
    try:
        yield server
    finally:
        server.stop()


def make_settings(sim: SimServer, tmp_path: Path, **kw: Any) -> Settings:
    values: dict[str, Any] = dict(
        api_key="sim-key",
        base_url=sim.base_url,
        endpoint_id="mock",
        endpoints={"streamer": "mock-stream"},
        history_path=tmp_path / "history.db",
        health_interval=1.0,
        status_interval=0.5,
    )
    values.update(kw)
    return Settings(**values)


@pytest.fixture
def settings_for(tmp_path: Path) -> Callable[..., Settings]:
    def build(sim: SimServer, **kw: Any) -> Settings:
        return make_settings(sim, tmp_path, **kw)

    return build


async def wait_for(pilot: Any, cond: Callable[[], Any], timeout: float = 15.0,
                   what: str = "condition") -> Any:
    """Let the app run until ``cond()`` is truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def started(app: Any, pilot: Any) -> Any:
    await wait_for(pilot, lambda: app.dashboard is not None and app.screen is app.dashboard,
                   what="the dashboard")
    await pilot.pause()
    return app.dashboard


def text_of(widget: Any) -> str:
    """What a widget shows on screen, as plain text (every line of its region)."""
    return "\n".join(
        "".join(seg.text for seg in widget.render_line(y)) for y in range(widget.size.height)
    )


async def submit_json(app: Any, pilot: Any, value: Any, *, endpoint: str = "mock",
                      mode: str = "run", expect_new: bool = True) -> str | None:
    """Fill the submit form (the editor's text set directly; typing is tested separately)
    and press ctrl+s. Returns the new job's id, or None when ``expect_new`` is False (bad
    input: nothing may be submitted)."""
    from rpdash.tui.widgets.jobs import JobTable
    from rpdash.tui.widgets.submit import SubmitForm

    dash = app.dashboard
    form = dash.query_one(SubmitForm)
    form.editor.focus()  # the submit pane, not through its key (a keymap may move it)
    form.set_endpoint(endpoint)
    form.set_mode(mode)
    form.editor.load_text(value if isinstance(value, str) else json.dumps(value))
    await pilot.pause()
    before = set(dash.query_one(JobTable).records)
    await pilot.press("ctrl+s")
    if not expect_new:
        await pilot.pause(0.3)
        await pilot.press("escape")
        return None
    notes = lambda: " | ".join(str(n.message) for n in app._notifications)[-300:]  # noqa: E731
    new = await wait_for(pilot, lambda: set(dash.query_one(JobTable).records) - before,
                         what=f"the submitted job in the list (notifications: {notes()!r})")
    await wait_for(pilot, lambda: not form.busy, what="submit done")
    await pilot.press("escape")  # leave the form, as a user would
    return next(iter(new))
