"""Pilot tests of the whole dashboard wired to a real simulator over HTTP on 127.0.0.1:
RunPodClient + HistoryStore(tmp_path) + Session, driven by the keyboard like a user."""

from __future__ import annotations

import json

from textual.widgets import Button, Input

from rpdash.core.models import JobStatus
from rpdash.services.events import ConnState
from rpdash.tui.app import RpdashApp
from rpdash.tui.screens.confirm import ConfirmScreen, PurgeScreen
from rpdash.tui.widgets.bars import StatusBar, TopBar
from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import OutputViewer, StreamLog
from rpdash.tui.widgets.submit import SubmitForm

from .conftest import started, submit_json, text_of, wait_for

SIZE = (160, 48)


def engine_job(sim, endpoint: str, job_id: str):
    return sim.call(lambda: sim.engine.find_job(endpoint, job_id))


def engine_status(sim, endpoint: str, job_id: str) -> str | None:
    return sim.call(lambda: (j := sim.engine.find_job(endpoint, job_id)) and j.status)


def submitted_ids(sim, endpoint: str) -> list[str]:
    """Every job id the simulator has for ``endpoint`` (what was really sent)."""
    return sim.call(lambda: list(sim.engine.endpoint(endpoint).jobs))


async def type_input(app: RpdashApp, pilot, text: str) -> None:
    form = app.dashboard.query_one(SubmitForm)
    form.editor.focus()
    form.editor.load_text("")
    await pilot.pause()
    # typed, as a user would (short texts only)
    for ch in text:
        await pilot.press(ch if ch not in " {}\":,[]" else {
            " ": "space", "{": "left_curly_bracket", "}": "right_curly_bracket",
            '"': "quotation_mark", ":": "colon", ",": "comma", "[": "left_square_bracket",
            "]": "right_square_bracket"}[ch])


async def test_submit_appears_and_completes_with_output(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        job_id = await submit_json(app, pilot, {"mock_return": {"answer": 42},
                                                "mock_delay": 0.3})
        jobs = dash.query_one(JobTable)
        # the cursor goes to the new job
        await wait_for(pilot, lambda: jobs.current_job_id == job_id, what="cursor on the job")
        await wait_for(pilot, lambda: jobs.records[job_id].status is JobStatus.COMPLETED,
                       what="COMPLETED")
        viewer = dash.query_one(OutputViewer)
        await wait_for(pilot, lambda: viewer.job and viewer.job.status is JobStatus.COMPLETED)
        body = dash.query_one("#out-final-body")
        await wait_for(pilot, lambda: "answer" in text_of(body), what="the output on screen")
        assert "42" in text_of(body)
        # the row shows the status text in place
        row = jobs.get_row(job_id)
        assert "COMPLETED" in str(row[2])
        # the simulator really has it
        assert engine_status(tui_sim, "mock", job_id) == "COMPLETED"
        assert not app.internal_errors


async def test_stream_job_shows_chunks_in_order(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    items = [{"n": i} for i in range(12)] + ["tail-", "end\n"]
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        job_id = await submit_json(app, pilot, {"mock_return": items, "mock_delay": 0.02},
                                   endpoint="mock-stream", mode="stream")
        viewer = dash.query_one(OutputViewer)
        log = dash.query_one(StreamLog)
        await wait_for(pilot, lambda: viewer.job and viewer.job.job_id == job_id)
        await wait_for(pilot, lambda: any("tail-end" in line for line in log.lines),
                       what="the last chunk")
        lines = [ln for ln in log.lines if ln]
        assert lines[:12] == [json.dumps({"n": i}, separators=(",", ":")) for i in range(12)]
        assert lines[12] == "tail-end"
        jobs = dash.query_one(JobTable)
        await wait_for(pilot, lambda: jobs.records[job_id].status is JobStatus.COMPLETED)
        assert not app.internal_errors


async def _long_job(app, pilot) -> str:
    return await submit_json(app, pilot, {"mock_delay": 60})


async def test_cancel_confirm_yes_cancels(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        job_id = await _long_job(app, pilot)
        await pilot.press("alt+2")
        jobs = dash.query_one(JobTable)
        await wait_for(pilot, lambda: jobs.current_job_id == job_id, what="cursor on the job")
        await pilot.press("ctrl+d")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen)
        assert app.focused is modal.query_one("#no", Button)  # focus starts on "No"
        await pilot.press("right")
        assert app.focused is modal.query_one("#yes", Button)
        await pilot.press("enter")
        await wait_for(pilot, lambda: engine_status(tui_sim, "mock", job_id) == "CANCELLED",
                       what="CANCELLED in the simulator")
        await wait_for(pilot, lambda: jobs.records[job_id].status is JobStatus.CANCELLED)
        assert "CANCELLED" in str(jobs.get_row(job_id)[2])
        assert not app.internal_errors


async def test_cancel_answer_no_sends_nothing(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        job_id = await _long_job(app, pilot)
        jobs = dash.query_one(JobTable)
        await wait_for(pilot, lambda: jobs.current_job_id == job_id, what="cursor on the job")
        await pilot.press("alt+2", "ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("enter")  # on "No"
        await wait_for(pilot, lambda: app.screen is dash)
        await pilot.pause(0.3)
        assert engine_status(tui_sim, "mock", job_id) in ("IN_QUEUE", "IN_PROGRESS")
        jobs = dash.query_one(JobTable)
        assert not jobs.records[job_id].status.terminal
        # escape is "No" as well
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is dash)
        assert engine_status(tui_sim, "mock", job_id) in ("IN_QUEUE", "IN_PROGRESS")


async def test_purge_with_typed_name_reports_removed(tui_sim, settings_for):
    # one worker at most, so jobs pile up in the queue
    tui_sim.call(lambda: tui_sim.engine.update_endpoint("mock", workers_max=1))
    app = RpdashApp(settings_for(tui_sim, endpoints={"batch": "mock"}, endpoint_id=None),
                    strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        for _ in range(5):
            tui_sim.call(lambda: tui_sim.engine.submit("mock", {"input": {"mock_delay": 60}}))
        health = dash.query_one(HealthTable)
        await pilot.press("ctrl+r")
        # 4 once the one worker took a job; it stays 4 while that job runs (60 s), so the
        # dialog's live count cannot race a pickup
        await wait_for(pilot, lambda: health.queue_size("mock") == 4, timeout=40,
                       what="the queue in the health pane")
        queued = health.queue_size("mock")
        await pilot.press("alt+1", "ctrl+d")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, PurgeScreen) and app.screen)
        assert modal.queue_size == queued
        assert str(queued) in text_of(modal.query_one("#dialog-body"))
        yes = modal.query_one("#yes", Button)
        # a wrong name keeps the button disabled and purges nothing
        for ch in "mock":
            await pilot.press(ch)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, PurgeScreen) and yes.disabled
        modal.query_one("#purge-name", Input).value = ""
        for ch in "batch":
            await pilot.press(ch)
        assert not yes.disabled
        await pilot.press("enter")
        await wait_for(pilot, lambda: dash.last_purge is not None, what="the purge result")
        assert dash.last_purge == ("mock", queued)
        notes = [n.message for n in app._notifications]
        assert any(f"removed {queued} queued" in m for m in notes)
        assert tui_sim.call(lambda: tui_sim.engine.health("mock")["jobs"]["inQueue"]) == 0
        await wait_for(pilot, lambda: health.queue_size("mock") == 0, what="queue 0 on screen")


async def test_bad_json_shows_position_and_sends_nothing(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await pilot.press("alt+4")
        form = dash.query_one(SubmitForm)
        await type_input(app, pilot, '{"prompt": "hi",}')
        msg = text_of(dash.query_one("#sf-msg"))
        assert "line 1, column 17" in msg
        assert form.error is not None
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        assert dash.query_one(JobTable).records == {}
        assert submitted_ids(tui_sim, "mock") == []
        assert any("Not submitted" in n.message for n in app._notifications)
        # an array is valid JSON but not an object
        form.editor.load_text("[1, 2]")
        await pilot.pause()
        assert "JSON object" in text_of(dash.query_one("#sf-msg"))
        # a bad policy is refused too
        form.editor.load_text('{"ok": true}')
        dash.query_one("#sf-timeout", Input).value = "2s"
        await pilot.pause()
        assert "timeout must be between" in text_of(dash.query_one("#sf-msg"))
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert submitted_ids(tui_sim, "mock") == []


async def test_readonly_hides_destructive_actions(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim, readonly=True), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        assert "READ-ONLY" in text_of(dash.query_one(TopBar))
        job_id = tui_sim.call(lambda: tui_sim.engine.submit("mock", {"input": {"mock_delay": 60}})).id
        dash.run_command(f"watch {job_id} mock")
        await pilot.press("alt+2")
        jobs = dash.query_one(JobTable)
        await wait_for(pilot, lambda: jobs.current_job_id == job_id)
        # the footer's bindings: destructive ones are gone, the others are there
        ids = {b.binding.id for b in app.screen.active_bindings.values() if b.enabled}
        assert "cancel" not in ids and "retry" not in ids
        assert "mark" not in ids  # marks only serve bulk cancel and retry (issue 13, item 14)
        assert {"edit", "filter"} <= ids
        assert not jobs.check_action("cancel", ()) and not jobs.check_action("retry", ())
        assert not dash.query_one(HealthTable).check_action("purge", ())
        await pilot.press("ctrl+d")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("alt+1", "ctrl+d")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, PurgeScreen)
        dash.run_command("purge")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, PurgeScreen)
        assert engine_status(tui_sim, "mock", job_id) in ("IN_QUEUE", "IN_PROGRESS")
        # the Session refuses submit in read-only mode, so the form does not offer it
        await pilot.press("alt+4")
        assert "read-only" in text_of(dash.query_one("#sf-hint"))
        dash.query_one(SubmitForm).editor.load_text('{"a": 1}')
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        assert submitted_ids(tui_sim, "mock") == [job_id]


async def test_restart_shows_history_and_resumes_tracking(tui_sim, settings_for):
    settings = settings_for(tui_sim)
    app = RpdashApp(settings, strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        done_id = await submit_json(app, pilot, {"mock_return": "first"})
        jobs = app.dashboard.query_one(JobTable)
        await wait_for(pilot, lambda: jobs.records[done_id].status is JobStatus.COMPLETED)
        slow_id = await submit_json(app, pilot, {"mock_return": "second", "mock_delay": 3})
        await pilot.press("q")
    # what the first run left in the file: the slow job was still live
    from rpdash.store.history import HistoryStore

    store = HistoryStore(settings.history_path)
    try:
        left = store.get(slow_id)
        assert left is not None and not left.terminal, left
        assert store.get(done_id).status is JobStatus.COMPLETED
    finally:
        store.close()
    # a new app on the same history file
    app2 = RpdashApp(settings, strict_errors=True)
    async with app2.run_test(size=SIZE) as pilot:
        dash = await started(app2, pilot)
        jobs = dash.query_one(JobTable)
        assert done_id in jobs.records and slow_id in jobs.records
        assert jobs.records[done_id].status is JobStatus.COMPLETED
        await wait_for(pilot, lambda: jobs.records[slow_id].status is JobStatus.COMPLETED,
                       what="the resumed job to complete")
        assert jobs.records[slow_id].output == "second"


async def test_rejected_key_is_a_state_not_a_crash(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim, api_key="wrong-key"), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        health = dash.query_one(HealthTable)
        await wait_for(pilot, lambda: (v := health.views["mock"].event) is not None
                       and v.state is ConnState.KEY_REJECTED, what="key rejected")
        row = health.get_row("mock")
        assert "key rejected" in str(row[1])
        assert "key rejected" in text_of(dash.query_one(StatusBar))
        # submitting with a rejected key fails with a message, the app keeps running
        await pilot.press("alt+4")
        dash.query_one(SubmitForm).editor.load_text('{"a": 1}')
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("Submit failed" in n.message
                                          for n in app._notifications))
        assert app.is_running and not app.internal_errors
        assert "wrong-key" not in " ".join(n.message for n in app._notifications)


async def test_unusable_history_falls_back_to_memory_and_says_so(tui_sim, settings_for, tmp_path):
    # a corrupt file, and a "directory" that is a file (unwritable even for root)
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database" * 200)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    for path, why in ((corrupt, "corrupt"), (blocker / "history.db", "cannot")):
        app = RpdashApp(settings_for(tui_sim, history_path=path), strict_errors=True)
        async with app.run_test(size=SIZE) as pilot:
            dash = await started(app, pilot)
            assert "HISTORY NOT SAVED" in text_of(dash.query_one(TopBar))
            problem = app.backend.history_problem
            assert problem and "not being saved" in problem and str(path.name) in problem
            assert any("not being saved" in n.message for n in app._notifications)
            assert "not being saved" in text_of(dash.query_one(StatusBar))
            # the dashboard works on the in-memory history
            job_id = await submit_json(app, pilot, {"mock_return": why})
            jobs = dash.query_one(JobTable)
            await wait_for(pilot, lambda: jobs.records[job_id].status is JobStatus.COMPLETED)
            assert not app.internal_errors
        assert corrupt.read_bytes().startswith(b"this is not a database")  # left alone
