"""Fixtures for the Pilot tests: a real simulator on 127.0.0.1, Settings pointing at it,
a history file in tmp_path, and helpers that wait on conditions (never fixed sleeps)."""

from __future__ import annotations

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
