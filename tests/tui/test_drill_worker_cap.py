"""Drill for the ``worker-cap`` incident (issue 15): two busy endpoints share an account cap
of 5 workers; ``cap-b`` holds 4 of them, so ``cap-a`` runs on 1 while its queue grows. With
the cap known (configured, or learned from RunPod's refusal of a scale update) the row of
``cap-a`` says so, the alert fires once, and lowering ``cap-b``'s max workers from the
keyboard gives ``cap-a`` the workers it needs. Pilot tests against the simulator."""

from __future__ import annotations

import pytest

from rpdash.services.alerts import AlertRules, AlertThresholds
from rpdash.sim.server import SimServer
from rpdash.tui.app import RpdashApp
from rpdash.tui.screens.confirm import ConfirmScreen
from rpdash.tui.screens.scale import ScaleScreen
from rpdash.tui.widgets.bars import StatusBar

from .conftest import started, wait_for
from .test_incidents import RULES, SIZE, bells, osc, row_text
from .test_scale import top

SCALE = 10.0
VERDICT = "account worker cap (5) used by other endpoints"
#: what the row's state column (27 cells) has room for; the verdict's full text is checked too
IN_ROW = "account worker cap (5) used"
_ALL = ["queue", "oldest_queued", "failure_rate", "unhealthy", "no_answer", "p90_delay", "key_rejected", "verdict"]
#: the drill watches the starved endpoint; ``cap-b`` is busy at its own max by design
DRILL_RULES = RULES.model_copy(update={"endpoints": {"cap-b": AlertThresholds(disabled=_ALL)}})


@pytest.fixture
def cap_sim():
    server = SimServer(api_key="sim-key", scenario="worker-cap", time_scale=SCALE).start()
    try:
        yield server
    finally:
        server.stop()


def health(sim: SimServer, ep: str) -> dict:
    return sim.call(sim.engine.health, ep)


def live(sim: SimServer, ep: str) -> int:
    w = health(sim, ep)["workers"]
    return w["running"] + w["idle"] + w["initializing"]


async def scale_max(pilot, app, row_downs: int, new_max: str) -> None:
    """From the keyboard only: the endpoints pane, the row, ``s``, tab to max, type, review,
    apply."""
    await pilot.press("alt+1", *(["down"] * row_downs))
    await pilot.pause()
    await pilot.press("s")
    await top(app, pilot, ScaleScreen, "the scale form")
    await pilot.press("tab", *new_max)  # min -> max (its text selected: typed over)
    await pilot.press("enter")
    await top(app, pilot, ConfirmScreen, "the confirm step")
    await pilot.press("y")


async def test_worker_cap_drill_verdict_alert_and_the_lever(cap_sim, settings_for):
    sim = cap_sim
    settings = settings_for(sim, endpoint_id="cap-a", endpoints={"b": "cap-b"}, alerts=DRILL_RULES,
                            account_worker_cap=5)  # fmt: skip
    app = RpdashApp(settings, strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        start = sim.clock.now()
        await wait_for(pilot, lambda: IN_ROW in row_text(dash, "cap-a"), timeout=8, what="the verdict in the row")
        assert sim.clock.now() - start <= 30, "verdict within 30 simulated seconds"
        assert dash.incident_feed.verdict("cap-a").short_text == VERDICT
        assert "account worker cap" not in row_text(dash, "cap-b")
        await wait_for(pilot, lambda: bells(app), timeout=5, what="the bell")
        bar = dash.query_one(StatusBar)
        await pilot.pause(1.0)  # the incident goes on: no second alert
        assert len(bells(app)) == 1 and len(osc(app)) == 1
        assert "account worker cap" in osc(app)[0]
        assert live(sim, "cap-a") == 1 and health(sim, "cap-a")["jobs"]["inQueue"] > 0

        # the lever: cap-b's max workers 4 -> 1, from the keyboard
        await scale_max(pilot, app, 1, "1")
        await wait_for(pilot, lambda: "(read back)" in " | ".join(bar.flashes), what="the scale read back")
        assert sim.call(sim.control.endpoint_rest, "cap-b")["workers"]["max"] == 1
        # cap-b's busy workers finish their job and stop; cap-a starts workers in the slots
        await wait_for(pilot, lambda: live(sim, "cap-a") >= 3, timeout=10, what="workers for cap-a")
        assert health(sim, "cap-b")["jobs"]["inQueue"] > 0  # the lever did it, not an empty queue

        # the burst of arrivals ends (1.5 jobs/s of 3-8 s jobs outruns even 5 workers):
        # cap-a's backlog drains on its new workers and the alert recovers
        sim.call(lambda: setattr(sim.engine, "_epoch", sim.engine._epoch + 1))  # stops the traffic
        await wait_for(pilot, lambda: health(sim, "cap-a")["jobs"]["inQueue"] == 0, timeout=25,
                       what="cap-a's queue drained")
        await wait_for(pilot, lambda: any("recovered" in f and "cap-a" in f for f in bar.flashes), timeout=10,
                       what="the recovery line")
        assert len(bells(app)) == 1, "one bell for the incident; recovery does not ring"
        assert "account worker cap" not in row_text(dash, "cap-a")


async def test_raising_max_above_the_cap_shows_runpods_refusal_and_teaches_the_cap(cap_sim, settings_for):
    sim = cap_sim
    settings = settings_for(sim, endpoint_id="cap-a", endpoints={"b": "cap-b"},
                            alerts=AlertRules(enabled=False))  # no cap configured  # fmt: skip
    app = RpdashApp(settings, strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        bar = dash.query_one(StatusBar)
        await pilot.pause(1.5)  # a few health answers: the cap is unknown, nothing guessed
        assert app.control_plane.account_cap() is None
        assert "account worker cap" not in row_text(dash, "cap-a")

        await scale_max(pilot, app, 0, "9")
        await wait_for(pilot, lambda: "maximum limit of (5)" in " | ".join(bar.flashes), what="RunPod's refusal")
        assert "Scale of cap-a failed" in " | ".join(bar.flashes)
        assert sim.call(sim.control.endpoint_rest, "cap-a")["workers"]["max"] == 4  # unchanged
        assert app.control_plane.account_cap() == 5
        # known now: the starved endpoint's row says what holds it back
        await wait_for(pilot, lambda: IN_ROW in row_text(dash, "cap-a"), timeout=8, what="the verdict")
