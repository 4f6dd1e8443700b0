"""SVG snapshots of deterministic screens (fixed data, fixed clock, no network).

Regenerate after an intended change of the look with
``pytest tests/snapshots --snapshot-update`` and look at the result
(``rsvg-convert`` turns the SVGs into PNGs).
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Input, TextArea

from rpdash.core.clock import FakeClock
from rpdash.tui.app import RpdashApp
from rpdash.tui.backend import StaticBackend
from tests.tui.fakes import FakeSession, sample_health, sample_jobs

SIZE = (120, 36)


def build_app() -> RpdashApp:
    jobs = sample_jobs()
    session = FakeSession(
        jobs=jobs,
        health=sample_health(),
        chunks={jobs[0].job_id: ["The ", "quick ", "brown ", "fox\n", "jumps ", "over\n"]},
    )
    names = {"llama-chat": "llama-chat", "sdxl": "sdxl", "whisper": "whisper"}
    return RpdashApp(backend=StaticBackend(session, names=names), clock=FakeClock(),
                     highlight=False, strict_errors=True)


async def ready(pilot: Any) -> None:
    app = pilot.app
    for _ in range(200):
        if app.dashboard is not None and app.screen is app.dashboard:
            break
        await pilot.pause(0.02)
    await pilot.pause(0.3)  # let the highlighted job load into the output pane
    for w in app.query(TextArea):
        w.cursor_blink = False
    for w in app.query(Input):
        w.cursor_blink = False


def test_dashboard(snap_compare):
    assert snap_compare(build_app(), terminal_size=SIZE, run_before=ready)


def test_submit_form_with_validation_error(snap_compare):
    async def run_before(pilot: Any) -> None:
        await ready(pilot)
        await pilot.press("alt+4")
        form = pilot.app.dashboard.query_one("#sf-input", TextArea)
        form.load_text('{\n  "prompt": "hello",\n  "steps": 30,\n}\n')
        form.cursor_blink = False
        await pilot.pause()

    assert snap_compare(build_app(), terminal_size=SIZE, run_before=run_before)


def test_purge_confirmation(snap_compare):
    async def run_before(pilot: Any) -> None:
        await ready(pilot)
        await pilot.press("alt+1", "down", "ctrl+d")
        await pilot.pause(0.2)
        for w in pilot.app.screen.query(Input):
            w.cursor_blink = False
        await pilot.press("s", "d")

    assert snap_compare(build_app(), terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare):
    async def run_before(pilot: Any) -> None:
        await ready(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(build_app(), terminal_size=SIZE, run_before=run_before)


def test_verdict_and_alert_line(snap_compare):
    """A crash-looping endpoint: its verdict in the row and the status bar, the alert in
    the flash line (issue 15)."""
    from rpdash.core.models import Health
    from rpdash.services.alerts import AlertRules
    from rpdash.services.events import ConnState, HealthEvent

    async def run_before(pilot: Any) -> None:
        await ready(pilot)
        dash = pilot.app.dashboard
        # only llama-chat's alert (whisper's one unhealthy worker would race it to the line)
        dash.incident_feed.incidents.engine.rules = AlertRules.model_validate(
            {"verdict_for": 0, "endpoints": {"whisper": {"disabled": ["verdict", "unhealthy"]}}})
        health = Health.model_validate({
            "jobs": {"inQueue": 9, "inProgress": 0, "completed": 1520, "failed": 12, "retried": 4},
            "workers": {"idle": 0, "running": 0, "initializing": 0, "ready": 0, "throttled": 0,
                        "unhealthy": 3},
        })
        dash.on_health(HealthEvent("llama-chat", ConnState.OK, health,
                                   last_ok_at=pilot.app.clock.time() - 1))
        await pilot.pause(0.2)

    assert snap_compare(build_app(), terminal_size=SIZE, run_before=run_before)


def test_dashboard_80x24(snap_compare):
    """The default terminal: one pane at a time, the switcher line naming the others."""
    assert snap_compare(build_app(), terminal_size=(80, 24), run_before=ready)
