"""Pilot tests of scale, drain and restore (issue 15, "Act") against a real simulator on
127.0.0.1 (it serves PATCH /v2/serverless/{id}): what the user sees in the form, the
dialogs and the flash line, and what the simulator's endpoint has afterwards."""

from __future__ import annotations

from typing import Any

import httpx
from textual.widgets import Button, Input

from rpdash.tui.app import RpdashApp
from rpdash.tui.palette import ActionCommands
from rpdash.tui.screens.confirm import ConfirmScreen
from rpdash.tui.screens.drain import DrainScreen
from rpdash.tui.screens.help import HelpScreen
from rpdash.tui.screens.scale import ScaleScreen
from rpdash.tui.widgets.bars import StatusBar
from rpdash.tui.widgets.health import HealthTable

from .conftest import started, text_of, wait_for
from .test_feedback import footer_keys

SIZE = (160, 48)


def workers(sim: Any, ep: str = "mock") -> dict[str, Any]:
    return sim.call(sim.control.endpoint_rest, ep)["workers"]


def flashes(dash: Any) -> str:
    return " | ".join(dash.query_one(StatusBar).flashes)


async def top(app: Any, pilot: Any, cls: type, what: str) -> Any:
    return await wait_for(pilot, lambda: isinstance(app.screen, cls) and app.screen.is_mounted
                          and app.screen, what=what)


async def type_into(pilot: Any, field: Input, text: str) -> None:
    """Focus a field (its text is selected, as tab does) and type over it, key by key."""
    field.focus()
    field.select_all()
    await pilot.pause()
    for ch in text:
        await pilot.press({".": "full_stop", "-": "minus"}.get(ch, ch))


async def open_form(app: Any, pilot: Any) -> ScaleScreen:
    await pilot.press("alt+1")
    await pilot.pause()
    assert ("s", "Scale") in footer_keys(app.screen)  # the endpoints pane offers it
    await pilot.press("s")
    return await top(app, pilot, ScaleScreen, "the scale form")


def queue_jobs(sim: Any, n: int) -> None:
    with httpx.Client(base_url=sim.base_url, headers={"Authorization": f"Bearer {sim.api_key}"}) as c:
        for _ in range(n):
            assert c.post("/mock/run", json={"input": {"mock_delay": 60}}).status_code == 200


async def test_s_opens_the_form_with_the_current_values_and_checks_each_key(tui_sim, settings_for):
    tui_sim.call(tui_sim.control.updates.apply, "mock", scaler=("QUEUE_DELAY", 4))
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        form = await open_form(app, pilot)
        assert "now: workers 0-3, idle 5 s, QUEUE_DELAY 4" in text_of(form.query_one("#dialog-body"))
        values = {k: form.query_one(f"#sc-{k}", Input).value for k in ("min", "max", "idle", "value")}
        assert values == {"min": "0", "max": "3", "idle": "5", "value": "4"}
        review = form.query_one("#yes", Button)
        assert review.disabled and "nothing changed yet" in text_of(form.query_one("#sc-msg"))

        # a bad value: one line under its field, Review disabled
        await type_into(pilot, form.query_one("#sc-idle", Input), "0")
        err = form.query_one("#sc-idle-err")
        assert err.display and text_of(err).strip() == "must be 1 to 3600 seconds, not 0"
        assert review.disabled
        await type_into(pilot, form.query_one("#sc-idle", Input), "30")
        assert not err.display and not review.disabled
        assert "mock: idle 5 s -> 30 s" in text_of(form.query_one("#sc-msg"))
        # min above max is said under the field that was changed
        await type_into(pilot, form.query_one("#sc-min", Input), "5")
        assert text_of(form.query_one("#sc-min-err")).strip() == "more than max workers (3)"
        assert review.disabled
        await pilot.press("enter")  # refused: nothing is sent, the form stays
        assert isinstance(app.screen, ScaleScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is dash, what="the form closed")
        assert workers(tui_sim) == {"min": 0, "max": 3, "idleTimeout": 5}
        assert "Scale of mock: nothing changed" in flashes(dash)
        # the palette's entry opens the same form, on the same endpoint
        assert "Scale (s)" in [t for _, t, _ in ActionCommands(app.screen)._candidates()]
        app.run_registry_action("scale")
        form = await top(app, pilot, ScaleScreen, "the form from the palette")
        assert form.endpoint_id == "mock"


async def test_confirm_no_changes_nothing_yes_applies_and_shows_the_read_back(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        form = await open_form(app, pilot)
        await type_into(pilot, form.query_one("#sc-min", Input), "1")
        await type_into(pilot, form.query_one("#sc-max", Input), "10")
        await pilot.press("enter")
        confirm = await top(app, pilot, ConfirmScreen, "the confirm step")
        assert "mock: workers 0-3 -> 1-10" in text_of(confirm.query_one("#dialog-body"))
        assert confirm.focused is confirm.query_one("#no", Button)  # focus starts on No
        await pilot.press("enter")  # No: back to the form, nothing sent
        await top(app, pilot, ScaleScreen, "the form again")
        assert workers(tui_sim) == {"min": 0, "max": 3, "idleTimeout": 5}

        await pilot.press("enter")
        await top(app, pilot, ConfirmScreen, "the confirm step again")
        await pilot.press("y")
        await wait_for(pilot, lambda: "(read back)" in flashes(dash), what="the read-back")
        assert app.screen is dash
        assert workers(tui_sim) == {"min": 1, "max": 10, "idleTimeout": 5}
        assert "mock: workers 0-3 -> 1-10 (read back)" in flashes(dash)
        assert "mock: workers 0-3 -> 1-10 (read back)" in text_of(dash.query_one(StatusBar))
        # the control plane's cache has the new values (diagnosis, picker)
        assert app.control_plane.cached_info("mock").workers_max == 10


async def test_a_lost_answer_is_said_plainly_and_not_sent_again(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        form = await open_form(app, pilot)
        await type_into(pilot, form.query_one("#sc-min", Input), "1")  # both: no extra read
        await type_into(pilot, form.query_one("#sc-max", Input), "7")
        await pilot.press("enter")
        await top(app, pilot, ConfirmScreen, "the confirm step")
        # the read before the update takes the first draw (a GET is answered whole), the
        # PATCH the second: applied, then its answer cut mid-body
        tui_sim.set_faults(endpoint="mock", operation="serverless", drop_rate=1.0, burst=2)
        patches = tui_sim.control.updates.patches
        await pilot.press("y")
        await wait_for(pilot, lambda: "may have been applied" in flashes(dash),
                       what="the uncertain outcome")
        line = flashes(dash)
        assert "mock: the change may have been applied (the answer was lost); re-read shows " \
               "workers 1-7" in line
        assert workers(tui_sim)["max"] == 7  # the simulator applied it, then cut the answer
        assert tui_sim.control.updates.patches == patches + 1  # sent once, never again
        assert any("may have been applied" in str(n.message) for n in app._notifications)


async def test_drain_needs_the_typed_name_then_max_0_and_an_empty_queue(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        queue_jobs(tui_sim, 8)
        await wait_for(pilot, lambda: tui_sim.call(tui_sim.engine.health, "mock")["jobs"]["inQueue"] >= 4,
                       what="jobs waiting")
        dash.run_command("drain")
        modal = await top(app, pilot, DrainScreen, "the drain dialog")
        body = text_of(modal.query_one("#dialog-body"))
        assert "Drain mock" in body and "set min and max workers to 0" in body and ":restore" in body
        # the scale it would save, once read
        await wait_for(pilot, lambda: "save its scale: workers 0-3, idle 5 s"
                       in text_of(modal.query_one("#dialog-body")), what="the scale in the dialog")
        name = modal.query_one("#purge-name", Input)
        for ch in "mock-stream":
            await pilot.press({"-": "minus"}.get(ch, ch))
        assert modal.query_one("#yes", Button).disabled
        await pilot.press("enter")  # the wrong name: nothing happens
        assert isinstance(app.screen, DrainScreen)
        assert workers(tui_sim)["max"] == 3
        name.value = ""
        for ch in "mock":
            await pilot.press(ch)
        assert not modal.query_one("#yes", Button).disabled
        await pilot.press("enter")
        await wait_for(pilot, lambda: "drained mock" in flashes(dash), what="the drain result")
        assert workers(tui_sim)["min"] == 0 and workers(tui_sim)["max"] == 0
        assert tui_sim.call(tui_sim.engine.health, "mock")["jobs"]["inQueue"] == 0
        line = flashes(dash)
        assert "drained mock: removed " in line and "queued jobs, workers 0-0; restore with :restore" in line
        assert dash.last_scale.removed >= 4


async def test_drain_rereads_the_scale_and_says_when_it_changed_under_the_dialog(tui_sim, settings_for):
    tui_sim.call(tui_sim.control.updates.apply, "mock", workers_max=2)
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        # an old read in the cache: the dialog shows it at once, then what a fresh read says
        from rpdash.api.control.models import EndpointInfo

        app.control_plane.remember(EndpointInfo("mock", "mock", workers_min=0, workers_max=3))
        dash.run_command("drain")
        modal = await top(app, pilot, DrainScreen, "the drain dialog")
        await wait_for(pilot, lambda: "save its scale: workers 0-2" in text_of(modal.query_one("#dialog-body")),
                       what="the scale read when the dialog opened")
        # the platform halves max workers while the dialog is up
        tui_sim.call(tui_sim.control.updates.apply, "mock", workers_max=1)
        for ch in "mock":
            await pilot.press(ch)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "drained mock" in flashes(dash), what="the drain result")
        assert dash.last_scale.saved.workers_max == 1  # what was there at the drain is saved
        assert "(saved workers 0-1, idle 5 s" in flashes(dash)
        assert "it changed after the dialog showed workers 0-2" in flashes(dash)


async def test_restore_puts_the_scale_back_after_a_restart(tui_sim, settings_for):
    settings = settings_for(tui_sim)
    tui_sim.call(tui_sim.control.updates.apply, "mock", scaler=("QUEUE_DELAY", 4))
    app = RpdashApp(settings, strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        # nothing saved yet: the palette offers restore as not available, and says why
        await wait_for(pilot, lambda: "mock" in dash.scale_access.saved, what="saved read")
        titles = {t: why for _, t, why in ActionCommands(app.screen)._candidates()}
        assert titles["Restore scale (:restore): not available"].startswith("nothing saved")
        dash.run_command("drain")
        modal = await top(app, pilot, DrainScreen, "the drain dialog")
        modal.query_one("#purge-name", Input).value = "mock"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "drained mock" in flashes(dash), what="drained")
        assert workers(tui_sim)["max"] == 0
        titles = [t for _, t, _ in ActionCommands(app.screen)._candidates()]
        assert "Restore scale (:restore)" in titles

    app = RpdashApp(settings, strict_errors=True)  # a new app on the same history file
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        dash.run_command("restore")
        confirm = await top(app, pilot, ConfirmScreen, "the restore confirm")
        body = text_of(confirm.query_one("#dialog-body"))
        assert "now:      workers 0-0, idle 5 s, QUEUE_DELAY 4" in body
        assert "put back: workers 0-3, idle 5 s, QUEUE_DELAY 4" in body
        assert confirm.focused is confirm.query_one("#no", Button)
        await pilot.press("y")
        await wait_for(pilot, lambda: "restored mock" in flashes(dash), what="restored")
        assert workers(tui_sim) == {"min": 0, "max": 3, "idleTimeout": 5}
        assert "restored mock: workers 0-0 -> 0-3 (read back)" in flashes(dash)
        # forgotten once put back
        dash.run_command("restore")
        await wait_for(pilot, lambda: "nothing saved for mock" in flashes(dash), what="nothing left")
        assert app.screen is dash


async def test_read_only_hides_scale_drain_and_restore(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim, readonly=True), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await pilot.press("alt+1")
        assert isinstance(app.focused, HealthTable)
        await pilot.pause()
        footer = [d for _, d in footer_keys(dash)]
        assert "Use" in footer and "Scale" not in footer
        titles = " ".join(t for _, t, _ in ActionCommands(app.screen)._candidates())
        assert "Scale" not in titles and "Drain" not in titles and "Restore" not in titles
        await pilot.press("s")
        await wait_for(pilot, lambda: "Read-only mode: Scale is not available" in flashes(dash),
                       what="the refusal")
        for cmd in ("scale", "drain", "restore"):
            dash.run_command(cmd)
            assert f"Read-only mode: :{cmd} is not available" in flashes(dash)
        assert app.screen is dash
        await pilot.press("question_mark")
        help_screen = await top(app, pilot, HelpScreen, "help")
        text = text_of(help_screen.query_one("#help-table"))
        assert "Scale" not in text and "Drain" not in text and "Restore" not in text
    assert workers(tui_sim) == {"min": 0, "max": 3, "idleTimeout": 5}


async def test_without_a_control_plane_the_actions_say_why():
    from .test_keyboard import fake_app

    app, _ = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await pilot.press("alt+1", "s")
        await wait_for(pilot, lambda: "Scale: not available: no control plane" in flashes(dash),
                       what="why not")
        assert app.screen is dash
        app.control_plane.local_url = "http://127.0.0.1:8000"  # the local dev worker
        dash.run_command("drain")
        assert "Drain: not available: the local dev worker has no control plane" in flashes(dash)
        assert app.screen is dash
