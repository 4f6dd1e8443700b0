"""The workers, logs and metrics screens cover the whole terminal: while one is up, its
frames must not also render the dashboard behind it (a translucent ModalScreen makes every
frame draw the dashboard, dimmed, under the box: a third of the time of W, L and M)."""

from __future__ import annotations

import pytest
import textual.screen

from rpdash.tui.app import RpdashApp
from rpdash.tui.screens.logs import LogsScreen
from rpdash.tui.screens.metrics import MetricsScreen
from rpdash.tui.screens.workers import WorkersScreen

from .conftest import started, wait_for

SIZE = (160, 48)


@pytest.mark.parametrize(("key", "screen_type"), [
    ("W", WorkersScreen), ("L", LogsScreen), ("M", MetricsScreen),
])  # fmt: skip
async def test_a_full_screen_does_not_render_the_dashboard_behind_it(
        tui_sim, settings_for, monkeypatch, key, screen_type):
    behind: list[object] = []
    real = textual.screen.BackgroundScreen

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003
        behind.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(textual.screen, "BackgroundScreen", counting)
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await pilot.press(key)
        screen = await wait_for(pilot, lambda: isinstance(app.screen, screen_type)
                                and app.screen, what=f"the {screen_type.__name__}")
        await pilot.pause(0.3)
        screen.refresh()
        await pilot.pause()
        assert behind == [], f"{screen_type.__name__} rendered the dashboard behind it"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is dash, what="back to the dashboard")
