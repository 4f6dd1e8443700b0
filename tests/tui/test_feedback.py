"""Feedback that covers neither data nor keys (issue 13, items 7, 8, 9, 15): Pilot tests of
the app wired to the simulator over HTTP, driven by the keyboard."""

from __future__ import annotations


from textual.widgets import Footer, TextArea

from rpdash.core.models import JobStatus
from rpdash.tui.app import RpdashApp
from rpdash.tui.screens.confirm import ConfirmScreen, PurgeScreen
from rpdash.tui.widgets.bars import StatusBar
from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.jobs import JobTable

from .conftest import started, submit_json, text_of, wait_for

SIZE = (160, 48)


def engine_status(sim, job_id: str) -> str | None:
    return sim.call(lambda: (j := sim.engine.find_job("mock", job_id)) and j.status)


def footer_keys(screen) -> list[tuple[str, str]]:
    """What the screen's own footer shows: (key, description) pairs."""
    from textual.widgets._footer import FooterKey

    footer = screen.query_one(Footer)
    return [(k.key_display, k.description) for k in footer.query(FooterKey)]


def notes(app) -> str:
    return " | ".join(str(n.message) for n in app._notifications)


async def test_saved_output_is_private_and_never_follows_a_link(tui_sim, settings_for,
                                                                tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        job = await submit_json(app, pilot, {"mock_return": "secret result"})
        jobs = dash.query_one(JobTable)
        await wait_for(pilot, lambda: jobs.records[job].status is JobStatus.COMPLETED)
        safe = job.replace("/", "_")
        first = tmp_path / f"rpdash-{safe}.txt"
        await pilot.press("alt+3", "ctrl+s")
        await wait_for(pilot, lambda: first.exists(), what="the saved file")
        assert first.stat().st_mode & 0o777 == 0o600
        assert "secret result" in first.read_text()
        # a link planted at the next name is not followed (and not overwritten)
        elsewhere = tmp_path / "elsewhere.txt"
        (tmp_path / f"rpdash-{safe}-1.txt").symlink_to(elsewhere)
        await pilot.press("ctrl+s")
        second = tmp_path / f"rpdash-{safe}-2.txt"
        await wait_for(pilot, lambda: second.exists(), what="the second file")
        assert not elsewhere.exists()
        assert second.stat().st_mode & 0o777 == 0o600
        # a failure is said in one line
        from rpdash.files import SaveError
        from rpdash.tui import saving

        def refuse(path, data, **kw):
            raise SaveError("~/out.txt: cannot write: No space left on device")

        monkeypatch.setattr(saving, "write_private", refuse)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "No space left" in notes(app))
        said = [str(n.message) for n in app._notifications if "No space" in str(n.message)]
        assert said == ["Could not save: ~/out.txt: cannot write: No space left on device"]


async def test_dialogs_show_their_keys_and_y_answers_yes(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        job = tui_sim.call(lambda: tui_sim.engine.submit("mock", {"input": {"mock_delay": 60}})).id
        dash.run_command(f"watch {job} mock")
        jobs = dash.query_one(JobTable)
        await wait_for(pilot, lambda: jobs.current_job_id == job)
        await pilot.press("alt+2", "ctrl+d")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen)
        footer = footer_keys(modal)
        assert footer[:2] == [("y", "Yes"), ("n/esc", "No")]
        await pilot.press("y")
        await wait_for(pilot, lambda: engine_status(tui_sim, job) == "CANCELLED",
                       what="y cancels")
        # the typed-name dialog: y is a letter of the name, never a yes
        await pilot.press("alt+1", "ctrl+d")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, PurgeScreen) and app.screen)
        assert ("esc", "Cancel") in footer_keys(modal)
        await pilot.press("y", "tab", "y")
        await pilot.pause(0.3)
        assert app.screen is modal and not dash.last_purge
        assert "Type the endpoint's name first" in notes(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is dash)
        assert dash.last_purge is None


async def test_a_dialog_does_not_call_the_rest_paused_or_stale(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        health = dash.query_one(HealthTable)
        bar = dash.query_one(StatusBar)
        await wait_for(pilot, lambda: "● 2 ok" in text_of(bar), what="both endpoints ok")
        app.push_screen(ConfirmScreen("Question", "Sure?"))
        await wait_for(pilot, lambda: app.session._health_active is False)
        await pilot.pause(1.5)  # the pollers rest (and said so to the dashboard)
        assert "paused" not in text_of(bar) and "paused" not in text_of(health)
        assert "stale" not in text_of(health)
        await pilot.press("n")
        # the user's own pause is called so, and the footer offers Resume
        await pilot.press("p")
        await wait_for(pilot, lambda: "paused" in text_of(bar))
        desc = {b.binding.id: b.binding.description for b in app.screen.active_bindings.values()}
        assert desc.get("pause") == "Resume"
        await pilot.press("p")
        await pilot.pause(0.1)
        desc = {b.binding.id: b.binding.description for b in app.screen.active_bindings.values()}
        assert desc.get("pause") == "Pause"


async def test_alt_digits_switch_panes_from_the_editor(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await pilot.press("alt+4")
        editor = app.focused
        assert isinstance(editor, TextArea)
        before = editor.text
        # what tmux and most terminals deliver for alt+1 and alt+2
        await pilot.press("inverted_exclamation_mark")
        assert isinstance(app.focused, HealthTable)
        await pilot.press("alt+4", "trade_mark_sign")
        assert isinstance(app.focused, JobTable)
        assert editor.text == before and "¡" not in editor.text and "™" not in editor.text


async def test_finished_jobs_are_told_in_the_flash_line_not_in_toasts(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        jobs = dash.query_one(JobTable)
        bar = dash.query_one(StatusBar)
        ids = [await submit_json(app, pilot, {"mock_return": i}) for i in range(3)]
        await wait_for(pilot, lambda: all(jobs.records[j].status is JobStatus.COMPLETED
                                          for j in ids), timeout=30)
        await wait_for(pilot, lambda: sum("COMPLETED" in f for f in bar.flashes) >= 1,
                       what="the flash line")
        await pilot.pause(1.2)
        assert "COMPLETED" in " ".join(bar.flashes)
        # nothing routine covers the submit form: no toast for a job that went well
        assert not [n for n in app._notifications if "COMPLETED" in str(n.message)
                    or "Submitted" in str(n.message)]
        # a job of the user's that fails does ask for attention
        bad = await submit_json(app, pilot, {"mock_error": True})
        await wait_for(pilot, lambda: any(bad[:8] in str(n.message) and "FAILED" in str(n.message)
                                          for n in app._notifications), timeout=30)


async def test_readonly_actions_are_absent_and_their_keys_say_why(tui_sim, settings_for):
    from rpdash.tui.screens.help import HelpScreen
    from rpdash.tui.widgets.bars import LineInput

    app = RpdashApp(settings_for(tui_sim, readonly=True), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        bar = dash.query_one(StatusBar)
        job = tui_sim.call(lambda: tui_sim.engine.submit("mock", {"input": {"mock_delay": 60}})).id
        dash.run_command(f"watch {job} mock")
        jobs = dash.query_one(JobTable)
        await wait_for(pilot, lambda: jobs.current_job_id == job)
        await pilot.press("alt+2")
        shown = {b.binding.description for b in app.screen.active_bindings.values()
                 if b.enabled and b.binding.show}
        assert not shown & {"Cancel", "Retry", "Mark", "Purge queue", "Submit"}, shown
        # a key of an absent action says why, in one line
        for key, what in (("ctrl+d", "Cancel"), ("r", "Retry"), ("space", "Mark")):
            await pilot.press(key)
            await wait_for(pilot, lambda w=what: f"Read-only mode: {w} is not" in bar.flash_text,
                           what=f"{key} explained")
        await pilot.press("alt+4", "ctrl+s")
        await wait_for(pilot, lambda: "Submit is not available" in bar.flash_text)
        assert "no submit (edit only)" in text_of(dash.query_one("#sf-hint"))
        dash.run_command("purge")
        await wait_for(pilot, lambda: ":purge is not available" in bar.flash_text)
        assert app.screen is dash
        assert ":purge" not in dash.query_one("#cmdline", LineInput).placeholder
        assert ":submit" not in dash.query_one("#cmdline", LineInput).placeholder
        # help lists what there is, not what is missing
        await pilot.press("escape", "question_mark")
        help_screen = await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen)
                                     and app.screen)
        text = text_of(help_screen.query_one("#help-table"))
        assert "read-only: disabled" not in text
        assert "Purge queue" not in text and "Retry" not in text and ":purge" not in text
        assert engine_status(tui_sim, job) in ("IN_QUEUE", "IN_PROGRESS")
