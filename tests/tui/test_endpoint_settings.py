"""Each watched endpoint's settings (its GPU, min/max workers) are read once at start, in
the background, so the health row's running cost (running workers x the GPU's price) shows
without opening the workers view or the endpoint picker; a control plane that cannot be
read is one quiet line, however many endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

from rpdash.core.errors import ServerError
from rpdash.tui.app import RpdashApp
from rpdash.tui.control_plane import ControlPlane

from .conftest import started, wait_for
from .test_incidents import row_text
from .test_scale import SIZE, queue_jobs


async def test_the_running_cost_shows_in_the_row_without_opening_any_view(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        queue_jobs(tui_sim, 2)  # two workers run a job each: they cost money
        await wait_for(pilot, lambda: "$" in row_text(dash, "mock"), timeout=10, what="the cost in the row")
        assert "ok · ≈ $0.00032/s" in row_text(dash, "mock")  # 2 x AMPERE_16 at $0.00016/s
        assert app.screen is dash  # no view was opened
        assert app.control_plane.cached_info("mock-stream") is not None  # every watched endpoint


class _Refusing:
    """A control client whose every read fails."""

    def __init__(self) -> None:
        self.reads = 0

    async def get_endpoint(self, endpoint_id: str) -> Any:
        self.reads += 1
        raise ServerError("RunPod server error 503 reading endpoint: usually temporary", status_code=503)


async def test_settings_that_cannot_be_read_are_one_quiet_line_and_not_asked_again_at_once() -> None:
    backend = type("B", (), {"control": _Refusing()})()
    cp = ControlPlane(None, backend)
    lines: list[str] = []
    cp.note = lines.append
    for _ in range(3):
        for ep in ("a", "b", "c"):
            cp.want_info(ep)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    assert backend.control.reads == 3  # once each: a failure waits INFO_TTL before the next
    assert lines == ["Endpoint settings not read (RunPod server error 503 reading endpoint: usually "
                     "temporary): no cost estimate until they are"]  # fmt: skip
