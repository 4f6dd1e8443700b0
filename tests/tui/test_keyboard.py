"""Keyboard behaviour on fixed data (a FakeSession, no network): every pane reachable,
view controls, the action registry (footer, help, palette, keymap), inert output, the
setup screen and the error guard."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable, TextArea

from rpdash.config import Settings
from rpdash.core.clock import FakeClock
from rpdash.core.models import Health, JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.events import ConnState, HealthEvent, JobFinished, JobsEvent, StreamEvent
from rpdash.tui.actions import ACTIONS, BY_ID
from rpdash.tui.app import RpdashApp
from rpdash.tui.backend import StaticBackend
from rpdash.tui.screens.confirm import ConfirmScreen
from rpdash.tui.screens.help import HelpScreen
from rpdash.tui.screens.setup import SetupScreen
from rpdash.tui.widgets.bars import StatusBar
from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import OutputViewer, StreamLog
from rpdash.tui.widgets.submit import SubmitForm

from .conftest import started, text_of, wait_for
from .fakes import WALL, FakeSession, sample_health, sample_jobs

SIZE = (160, 48)


def fake_app(session: FakeSession | None = None, **kw: Any) -> tuple[RpdashApp, FakeSession]:
    session = session or FakeSession(jobs=sample_jobs(), health=sample_health())
    settings = kw.pop("settings", None)
    app = RpdashApp(settings, backend=StaticBackend(session), clock=FakeClock(),
                    strict_errors=True, **kw)
    return app, session


async def test_every_pane_reachable_by_keys_and_tab():
    app, _ = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        assert isinstance(app.focused, JobTable)  # the jobs pane starts focused
        await pilot.press("alt+1")
        assert isinstance(app.focused, HealthTable)
        await pilot.press("alt+3")
        assert isinstance(app.focused, StreamLog) or app.focused.id == "out-final"
        await pilot.press("alt+2")
        assert isinstance(app.focused, JobTable)
        await pilot.press("alt+4")
        assert isinstance(app.focused, TextArea)
        await pilot.press("escape")
        assert isinstance(app.focused, JobTable)
        # tab walks through every pane and comes back
        seen = set()
        for _ in range(20):
            await pilot.press("tab")
            node = app.focused
            while node is not None and node.id not in ("pane-health", "pane-jobs", "pane-output",
                                                       "pane-submit"):
                node = node.parent
            if node is not None:
                seen.add(node.id)
        assert seen == {"pane-health", "pane-jobs", "pane-output", "pane-submit"}
        # shift+tab goes back
        await pilot.press("alt+2", "shift+tab")
        assert not isinstance(app.focused, JobTable)
        assert dash.query_one("#pane-jobs").border_title.replace("\\[", "[").startswith("[alt+2] Jobs")


async def test_cursor_stays_on_its_job_while_statuses_change():
    app, session = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        jobs = dash.query_one(JobTable)
        await pilot.press("j", "j", "j")
        target = jobs.current_job_id
        assert target is not None
        # a new job arrives (newest first: it goes on top) and statuses change
        new = JobRecord("new-job-0000", "sdxl", JobStatus.IN_QUEUE, submitted_at=WALL)
        changed = [r.copy(status=JobStatus.COMPLETED) for r in sample_jobs() if not r.terminal]
        session.sink(JobsEvent([new, *changed]))
        await wait_for(pilot, lambda: "new-job-0000" in jobs.records)
        assert jobs.current_job_id == target
        assert jobs.get_row_index("new-job-0000") == 0
        written = jobs.cells_written
        # the same records again: nothing is rewritten
        session.sink(JobsEvent(changed))
        await pilot.pause(0.1)
        assert jobs.cells_written == written
        # a finished job is told in the flash line (issue 13, item 6: not a toast)
        bar = dash.query_one(StatusBar)
        session.sink(JobFinished(changed[0]))
        await wait_for(pilot, lambda: "COMPLETED" in bar.flash_text)
        assert "COMPLETED" in text_of(bar)


async def test_a_burst_of_changes_and_a_single_change_both_reach_the_screen():
    """Cells are written in place and only their renders are dropped (not DataTable's
    whole cache generation): what is on screen must still be the new values, for a burst
    (one repaint of the pane) as for a few cells (their rows only), and unchanged cells
    must still be drawn."""
    jobs_in = [JobRecord(f"burst-{i:04d}", "sdxl", JobStatus.IN_PROGRESS,
                         submitted_at=WALL - 100 - i, execution_ms=1000) for i in range(40)]
    app, session = fake_app(FakeSession(jobs=jobs_in, health=sample_health()))
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        jobs = dash.query_one(JobTable)
        await wait_for(pilot, lambda: "IN_PROGRESS" in text_of(jobs))
        assert "1.0s" in text_of(jobs)
        done = [r.copy(status=JobStatus.COMPLETED, execution_ms=9900) for r in jobs_in]
        session.sink(JobsEvent(done))  # 80 cells: a burst
        await wait_for(pilot, lambda: "IN_PROGRESS" not in text_of(jobs))
        shown = text_of(jobs)
        assert shown.count("COMPLETED") >= 20 and "9.9s" in shown and "1.0s" not in shown
        assert "burst-0000"[:8] in shown  # unchanged cells are still drawn
        session.sink(JobsEvent([done[0].copy(status=JobStatus.FAILED, error="boom")]))
        await wait_for(pilot, lambda: "FAILED" in text_of(jobs))  # a few cells
        assert "boom" in text_of(jobs) and text_of(jobs).count("COMPLETED") >= 20


@pytest.mark.parametrize(("width", "expect", "absent"), [
    (100, ["state", "answer"], ["done", "q trend", "r trend", "run trend"]),
    (130, ["state", "answer"], ["done", "q trend", "run trend"]),
    (140, ["done", "thr", "q trend", "answer"], ["run trend"]),
    (170, ["done", "thr", "q trend", "answer"], ["run trend"]),
    (180, ["rdy", "retr", "queue trend", "run trend", "last answer"], []),
])
async def test_the_endpoints_pane_uses_the_width_it_has(width, expect, absent):
    """Columns by width; from 120 columns on, the state column has room for a whole verdict
    ("crash-looping (3 unhealthy, 0 running)", 39 cells) before any secondary column."""
    app, _ = fake_app()
    async with app.run_test(size=(width, 40)) as pilot:
        dash = await started(app, pilot)
        table = dash.query_one(HealthTable)
        await pilot.pause()
        assert not table.show_horizontal_scrollbar  # every column fits
        shown = text_of(table)
        header = shown.splitlines()[0]
        assert all(col in header for col in expect), header
        assert not any(col in header for col in absent), header
        assert "llama-chat" in shown and "just now" in shown  # every row, to the last column
        state = next(c for c in table.columns.values() if str(c.label) == "state")
        assert state.width >= (39 if width >= 120 else 24)


async def test_filter_sort_mark_and_scope():
    app, _ = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        jobs = dash.query_one(JobTable)
        total = jobs.row_count
        await pilot.press("slash")
        for ch in "whisper":
            await pilot.press(ch)
        await pilot.press("enter")
        assert jobs.filter_text == "whisper"
        assert 0 < jobs.row_count < total
        assert "filter: whisper" in dash.query_one("#pane-jobs").border_title
        assert isinstance(app.focused, JobTable)
        await pilot.press("escape")  # esc clears the filter
        assert jobs.filter_text == "" and jobs.row_count == total
        # sort by status: failures first
        await pilot.press("S")
        first = jobs.records[jobs.current_job_id] if jobs.cursor_row == 0 else None
        assert jobs.sort_key == "status"
        top = jobs.coordinate_to_cell_key((0, 0)).row_key.value
        assert jobs.records[top].status is JobStatus.FAILED
        await pilot.press("A")
        top = jobs.coordinate_to_cell_key((0, 0)).row_key.value
        assert top == max(jobs.records.values(), key=lambda r: r.submitted_at).job_id
        del first
        # marks
        await pilot.press("home", "space", "space")
        assert len(jobs.marked) == 2
        assert "2 marked" in dash.query_one("#pane-jobs").border_title
        await pilot.press("escape")
        assert not jobs.marked
        # all endpoints / the current one
        await pilot.press("a")
        cur = dash.query_one(HealthTable).current
        assert jobs.scope_endpoint == cur
        assert all(jobs.records[k.value].endpoint_id == cur for k in jobs.rows)
        await pilot.press("a")
        assert jobs.scope_endpoint is None and jobs.row_count == total


async def test_bulk_cancel_of_marked_jobs_confirms_first():
    app, session = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        jobs = dash.query_one(JobTable)
        live = [j for j, r in jobs.records.items() if not r.terminal]
        jobs.marked.update(live)
        await pilot.press("ctrl+d")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen)
        assert f"Cancel {len(live)} jobs" in text_of(modal.query_one("#dialog-body"))
        await pilot.press("enter")  # "No"
        await pilot.pause(0.1)
        assert session.sent("cancel") == []
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("tab", "enter")  # "Yes"
        await wait_for(pilot, lambda: session.sent("cancel"))
        assert sorted(session.sent("cancel")[0]) == sorted(live)
        await wait_for(pilot, lambda: all(jobs.records[j].status is JobStatus.CANCELLED
                                          for j in live))
        assert not jobs.marked


async def test_output_is_inert_text():
    evil = "\x1b[2J\x1b]0;pwned\x07[bold red]not markup[/] \x9b31m"
    rec = JobRecord("job-\x1b[31m-evil", "mock", JobStatus.FAILED, mode="stream",
                    submitted_at=WALL - 5, error=evil, output=None, chunk_count=1)
    session = FakeSession(jobs=[rec], endpoints=["mock"], chunks={rec.job_id: [evil + "\n"]})
    app, _ = fake_app(session)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        viewer = dash.query_one(OutputViewer)
        await wait_for(pilot, lambda: viewer.job is not None)
        shown = text_of(dash.query_one(StreamLog)) + text_of(dash.query_one("#out-final-body"))
        shown += text_of(dash.query_one(JobTable)) + text_of(dash.query_one("#out-head"))
        assert "\x1b" not in shown and "\x07" not in shown and "\x9b" not in shown
        assert "[bold red]not markup[/]" in shown  # shown literally
        assert "␛[2J" in shown
        # the flash line too
        session.sink(JobFinished(rec))
        bar = dash.query_one(StatusBar)
        await wait_for(pilot, lambda: bar.flash_text)
        assert "\x1b" not in bar.flash_text and "\x1b" not in text_of(bar)


async def test_stream_follow_toggle_counts_new_lines():
    rec = JobRecord("s-1", "mock", JobStatus.IN_PROGRESS, mode="stream", submitted_at=WALL)
    session = FakeSession(jobs=[rec], endpoints=["mock"])
    app, _ = fake_app(session)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        viewer = dash.query_one(OutputViewer)
        await wait_for(pilot, lambda: viewer.job is not None)
        session.sink(StreamEvent("s-1", 0, ["a\n", "b\n"]))
        await wait_for(pilot, lambda: viewer.next_seq == 2)
        await pilot.press("alt+3", "s")
        assert not viewer.following
        session.sink(StreamEvent("s-1", 2, ["c\n", "d\n", "e\n"]))
        await wait_for(pilot, lambda: viewer.new_lines == 3)
        assert "3 new lines" in text_of(dash.query_one("#out-head"))
        # a repeated batch is not shown twice; a gap reloads from the store
        session.sink(StreamEvent("s-1", 3, ["d\n", "e\n"]))
        await pilot.pause(0.1)
        assert [ln for ln in dash.query_one(StreamLog).lines if ln] == list("abcde")
        await pilot.press("s")
        assert viewer.following and viewer.new_lines == 0


async def test_save_and_copy_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app, _ = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await pilot.press("down", "down", "down")  # a COMPLETED job
        jobs = dash.query_one(JobTable)
        viewer = dash.query_one(OutputViewer)
        await wait_for(pilot, lambda: viewer.job is not None
                       and viewer.job.job_id == jobs.current_job_id)
        await pilot.press("alt+3", "ctrl+s")
        files = await wait_for(pilot, lambda: list(tmp_path.glob("rpdash-*.txt")))
        assert viewer.job.job_id in files[0].read_text()
        assert any(str(files[0].name) in n.message for n in app._notifications)
        copied: list[str] = []
        monkeypatch.setattr(app, "copy_to_clipboard", copied.append)
        await pilot.press("c")
        assert copied and viewer.job.job_id in copied[0]


async def test_edit_prefills_form_and_recent_inputs():
    app, session = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        jobs = dash.query_one(JobTable)
        rec = jobs.records[jobs.current_job_id]
        await pilot.press("e")
        form = dash.query_one(SubmitForm)
        assert isinstance(app.focused, TextArea)
        assert '"prompt"' in form.editor.text and rec.endpoint_id == form.endpoint
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: session.sent("submit"))
        ep, inp, mode, _policy, _hook = session.sent("submit")[0]
        assert (ep, inp, mode) == (rec.endpoint_id, rec.input, rec.mode)
        # ctrl+o: recall a recent input
        app.backend._recent = [{"prompt": "from history"}]  # type: ignore[attr-defined]
        session.recent = []
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "RecentInputsScreen")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "from history" in form.editor.text)


async def test_help_lists_every_binding_and_pauses_health():
    app, session = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await wait_for(pilot, lambda: session.health_active is False)
        text = text_of(app.screen.query_one("#help-table"))
        for a in ACTIONS:
            if a.id.startswith("favourite_"):
                continue  # one row for the ten of them
            assert a.id in text, a.id
        assert "favourite_0 … favourite_9" in text and "0-9" in text
        # the pane keys say what the footer says; their terminal aliases stay out of view
        assert "alt+3" in text and "£" not in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: session.health_active is True)


async def test_keymap_remaps_by_binding_id():
    settings = Settings(keymap={"cancel": "x", "pause": "f5", "nonsense": "z"})
    app, session = fake_app(settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        assert any("nonsense" in n.message for n in app._notifications)
        await pilot.press("f5")
        assert session.paused
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "x" in text_of(app.screen.query_one("#help-table"))


async def test_command_line_and_palette():
    app, session = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await pilot.press("colon")
        for ch in "watch":
            await pilot.press(ch)
        await pilot.press("space")
        for ch in "abc123":
            await pilot.press(ch)
        await pilot.press("enter")
        await wait_for(pilot, lambda: session.sent("watch"))
        assert session.sent("watch")[0] == ("abc123", dash.query_one(HealthTable).current)
        assert "abc123" in dash.query_one(JobTable).records
        dash.run_command("ep whisper")
        assert dash.query_one(HealthTable).current == "whisper"
        dash.run_command("frobnicate")
        await wait_for(pilot, lambda: any("Unknown command" in n.message
                                          for n in app._notifications))
        # the palette offers registry actions
        from rpdash.tui.app import ActionCommands

        provider = ActionCommands(app.screen)
        titles = [t for _, t, _ in provider._candidates()]
        assert any("Cancel" in t for t in titles) and any("Purge" in t for t in titles)
        # help texts are shown as written ("[NAME]" is not eaten as markup)
        from textual.content import Content

        hits = [h async for h in provider.discover()]
        helps = [Content.from_markup(h.help).plain for h in hits if h.help]
        assert any(":ep [NAME]" in h for h in helps), helps
        app.run_registry_action("pause")
        await wait_for(pilot, lambda: session.paused)


async def test_rejected_key_and_stale_health_are_states():
    health = sample_health()
    app, session = fake_app(FakeSession(jobs=[], health=health))
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        table = dash.query_one(HealthTable)
        assert "stale" in str(table.get_row("sdxl")[-1])
        assert "retrying in" in str(table.get_row("sdxl")[1])
        session.sink(HealthEvent("whisper", ConnState.KEY_REJECTED, health["whisper"].health,
                                 last_ok_at=WALL - 30, message="the API key was rejected"))
        await wait_for(pilot, lambda: "key rejected" in str(table.get_row("whisper")[1]))
        assert "stale" in str(table.get_row("whisper")[-1])
        assert any("rejected" in n.message for n in app._notifications)


async def test_last_answer_reads_just_now_until_an_answer_is_late():
    """While polls arrive on time the column stays still ("just now": no repaint every
    second at idle); once the last good answer is older than the poll interval + 2 s it
    counts, so a late endpoint stands out."""
    app, session = fake_app(FakeSession(jobs=[], health=sample_health()),
                            settings=Settings(health_interval=5.0))
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        table = dash.query_one(HealthTable)
        assert str(table.get_row("llama-chat")[-1]) == "just now"  # answered 2 s ago
        assert "14 s stale" in str(table.get_row("sdxl")[-1])  # a stale row keeps its count
        app.clock.advance_sync(4.0)
        dash.tick()
        await pilot.pause()
        assert str(table.get_row("llama-chat")[-1]) == "just now"  # 6 s: not late yet
        app.clock.advance_sync(2.0)
        dash.tick()
        await pilot.pause()
        assert str(table.get_row("llama-chat")[-1]) == "8 s ago"  # late: it counts
        assert "8 s ago" in text_of(table)  # and the screen shows it (only that cell redrawn)
        session.sink(HealthEvent("llama-chat", ConnState.OK, session.health["llama-chat"].health,
                                 last_ok_at=app.clock.time()))
        await wait_for(pilot, lambda: str(table.get_row("llama-chat")[-1]) == "just now")


async def test_error_guard_turns_a_bug_into_a_notification():
    session = FakeSession(jobs=sample_jobs(), health=sample_health())
    app = RpdashApp(backend=StaticBackend(session), clock=FakeClock(), strict_errors=False)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)

        def boom(*_a: Any) -> None:
            raise RuntimeError("boom")

        dash.query_one(HealthTable).update_event = boom  # type: ignore[method-assign]
        session.sink(HealthEvent("sdxl", ConnState.OK))
        await wait_for(pilot, lambda: app.internal_errors)
        assert app.is_running
        assert any("Internal error" in n.message for n in app._notifications)
        await pilot.press("alt+2", "j")  # still answers keys
        assert isinstance(app.focused, DataTable)


async def test_setup_screen_when_nothing_to_watch(monkeypatch, tmp_path):
    for var in ("RUNPOD_API_KEY", "RUNPOD_ENDPOINT_ID", "RUNPOD_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings(history_path=tmp_path / "h.db")
    app = RpdashApp(settings, strict_errors=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        text = text_of(app.screen.query_one("#setup-text"))
        for needle in ("RUNPOD_API_KEY", "RUNPOD_ENDPOINT_ID", "--endpoint", "rpdash --demo"):
            assert needle in text
        await pilot.press("q")
    assert app.return_code in (0, None)


@pytest.mark.parametrize("size", [(160, 48), (100, 30)])
async def test_layout_fits(size):
    app, _ = fake_app()
    async with app.run_test(size=size) as pilot:
        dash = await started(app, pilot)
        w, h = size
        for pane in ("#pane-health", "#pane-jobs", "#pane-output", "#pane-submit"):
            region = dash.query_one(pane).region
            assert region.width > 20 and region.height >= 3, pane
            assert region.right <= w and region.bottom <= h, pane
        await pilot.press("alt+4")
        assert dash.query_one("#pane-submit").region.height >= 12  # unfolds when focused
        assert dash.query_one("#sf-msg").region.height == 1


def test_registry_ids_are_unique_and_complete():
    assert len(BY_ID) == len(ACTIONS)
    for needed in ("submit", "new_job", "cancel", "retry", "purge", "refresh", "pause",
                   "command", "help", "palette", "quit", "filter", "mark", "follow", "save"):
        assert needed in BY_ID


def _terminal_key(sequence: str) -> str:
    """The key name Textual gives the bytes a terminal sends (tmux sends alt+1 as ESC 1)."""
    from textual._xterm_parser import XTermParser

    parser = XTermParser()
    events = [*parser.feed(sequence), *parser.feed("")]
    return next(e.key for e in events if hasattr(e, "key"))


async def test_alt_digit_as_terminals_send_it_moves_between_panes():
    # Textual 8 reads ESC 1 as "¡" (macOS option+1), never as alt+1: without the
    # aliases the pane keys did nothing in tmux/xterm and typed "£" into the editor
    keys = {n: _terminal_key(f"\x1b{n}") for n in "1234"}
    assert keys["1"] != "alt+1"
    app, _ = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press(keys["1"])
        assert isinstance(app.focused, HealthTable)
        await pilot.press(keys["3"])
        assert isinstance(app.focused, StreamLog) or app.focused.id == "out-final"
        await pilot.press(keys["4"])
        assert isinstance(app.focused, TextArea)
        await pilot.press(keys["2"])  # switches panes from the editor too (issue 13, item 9)
        assert isinstance(app.focused, JobTable)
        assert "™" not in app.dashboard.query_one(SubmitForm).editor.text
        await pilot.press(keys["3"], keys["2"])
        assert isinstance(app.focused, JobTable)


async def test_expired_job_is_finished_not_waiting(monkeypatch):
    from rpdash.services.tracking import EXPIRED_MESSAGE
    from rpdash.tui import notices

    monkeypatch.setattr(notices, "EXPIRED_TOAST_WINDOW", 0.2)

    gone = JobRecord("old-run-job-1", "mock", JobStatus.IN_QUEUE, submitted_at=WALL - 90,
                     expired=True, error=EXPIRED_MESSAGE, finished_at=WALL - 1)
    session = FakeSession(jobs=[gone], endpoints=["mock"])
    app, _ = fake_app(session)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        viewer = dash.query_one(OutputViewer)
        await wait_for(pilot, lambda: viewer.job is not None)
        body = text_of(dash.query_one("#out-final-body"))
        assert "no longer keeps" in body
        assert "waiting" not in body
        head = text_of(dash.query_one("#out-head"))
        assert "EXPIRED" in head and "IN_QUEUE" not in head
        assert "follow" not in head  # nothing to follow on a job without a stream
        # its flash line says it expired, not the last status seen
        session.sink(JobFinished(gone))
        bar = dash.query_one(StatusBar)
        await wait_for(pilot, lambda: bar.flash_text, what="the flash line")
        note = bar.flash_text
        assert "1 earlier job expired" in note and "IN_QUEUE" not in note


async def test_finished_jobs_toasts_are_coalesced(monkeypatch):
    from rpdash.services.tracking import EXPIRED_MESSAGE
    from rpdash.tui import notices

    monkeypatch.setattr(notices, "EXPIRED_TOAST_WINDOW", 0.3)

    session = FakeSession(jobs=sample_jobs(), health=sample_health())
    app, _ = fake_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        done = [JobRecord(f"bg-{i}", "sdxl", JobStatus.COMPLETED, submitted_at=WALL,
                          execution_ms=900) for i in range(4)]
        done.append(JobRecord("bg-f", "sdxl", JobStatus.FAILED, submitted_at=WALL,
                              error="CUDA out of memory"))
        stale = [JobRecord(f"old-{i}", "sdxl", JobStatus.IN_QUEUE, submitted_at=WALL - 900,
                           expired=True, error=EXPIRED_MESSAGE) for i in range(30)]
        before = len(app._notifications)
        for rec in done + stale[:20]:
            session.sink(JobFinished(rec))
        await pilot.pause(0.1)
        for rec in stale[20:]:  # the tracker gets to old jobs over a few polls
            session.sink(JobFinished(rec))
        bar = app.dashboard.query_one(StatusBar)
        await wait_for(pilot, lambda: len(bar.flashes) >= 2, what="flash lines")
        await pilot.pause(0.5)
        notes = bar.flashes
        assert len(notes) == 2, notes  # one for the burst, one for the expired ones
        assert len(app._notifications) == before  # routine news: no toast
        assert any("5 jobs finished" in m and "4 COMPLETED" in m and "1 FAILED" in m
                   for m in notes)
        assert any("30 earlier jobs expired" in m for m in notes)


async def test_health_polls_pause_under_modals_but_not_the_purge_dialog():
    from rpdash.tui.screens.confirm import PurgeScreen
    from rpdash.tui.screens.viewers import JsonScreen

    session = FakeSession(jobs=sample_jobs(), health=sample_health())
    app, _ = fake_app(session)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await wait_for(pilot, lambda: session.health_active is True)
        await pilot.press("y")  # raw JSON of the selected job: a modal
        await wait_for(pilot, lambda: isinstance(app.screen, JsonScreen))
        await wait_for(pilot, lambda: session.health_active is False, what="health paused")
        ticks: list[int] = []
        health = dash.query_one(HealthTable)
        real_tick = health.tick
        health.tick = lambda: ticks.append(1) or real_tick()  # type: ignore[method-assign]
        dash.tick()
        assert ticks == []  # nothing redrawn behind the modal
        await pilot.press("escape")
        await wait_for(pilot, lambda: session.health_active is True, what="health resumed")
        # the purge dialog shows the live queue size: health keeps polling under it
        await pilot.press("alt+1", "ctrl+d")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, PurgeScreen) and app.screen)
        await pilot.pause(0.1)
        assert session.health_active is True
        ep = modal.endpoint_id
        assert modal.queue_size != 99
        grown = Health.model_validate({"jobs": {"inQueue": 99}, "workers": {"running": 1}})
        session.sink(HealthEvent(ep, ConnState.OK, grown, last_ok_at=WALL))
        await wait_for(pilot, lambda: modal.queue_size == 99, what="live queue size")
        assert "Jobs in queue now: 99" in text_of(modal.query_one("#dialog-body"))
        await pilot.press("escape")


async def test_submit_editor_highlights_json():
    # tree-sitter and tree-sitter-json are dependencies: highlighting is never silently off
    app, _ = fake_app(highlight=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        editor = dash.query_one(SubmitForm).editor
        assert editor.language == "json"
        await pilot.press("alt+4")
        editor.load_text('{"prompt": "hi", "n": 3}')
        await pilot.pause()
        # strings and numbers get styles of their own
        styles = {str(seg.style) for seg in editor.render_line(0) if seg.text.strip()}
        assert len(styles) >= 3, styles


async def test_wrapped_stream_needs_no_horizontal_scrollbar():
    # lines were wrapped for the width before the vertical scrollbar appeared, so once the
    # log overflowed every full line was too long and a horizontal scrollbar showed up
    import random

    rec = JobRecord("s-1", "mock", JobStatus.IN_PROGRESS, mode="stream", submitted_at=WALL)
    session = FakeSession(jobs=[rec], endpoints=["mock"])
    app, _ = fake_app(session)
    words = "the queue of warm workers streams a chunk while latency grows softly".split()
    rnd = random.Random(1)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        viewer = dash.query_one(OutputViewer)
        await wait_for(pilot, lambda: viewer.job is not None)
        seq = 0
        for _ in range(40):
            toks = [rnd.choice(words) + " " for _ in range(8)]
            session.sink(StreamEvent("s-1", seq, toks))
            seq += len(toks)
            await pilot.pause(0.06)
        await wait_for(pilot, lambda: viewer.next_seq == seq)
        viewer.flush()
        await pilot.pause(0.1)
        log = dash.query_one(StreamLog)
        assert log.show_vertical_scrollbar  # it did overflow
        assert not log.show_horizontal_scrollbar
        assert max(len(line) for line in log.lines) <= log.scrollable_content_region.width


async def test_watched_id_that_404s_is_not_found_not_expired():
    from rpdash.services.tracking import EXPIRED_MESSAGE

    # :watch with a mistyped id: never seen with any status, then 404
    typo = JobRecord("abc-123", "mock", JobStatus.UNKNOWN, submitted_at=WALL - 5,
                     expired=True, error=EXPIRED_MESSAGE, finished_at=WALL - 1)
    session = FakeSession(jobs=[], endpoints=["mock"])
    app, _ = fake_app(session)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        dash.run_command("watch abc-123 mock")
        await wait_for(pilot, lambda: "abc-123" in dash.query_one(JobTable).records)
        session.sink(JobsEvent([typo]))
        viewer = dash.query_one(OutputViewer)
        await wait_for(pilot, lambda: viewer.job is not None and viewer.job.expired)
        assert "NOT FOUND" in str(dash.query_one(JobTable).get_row("abc-123")[2])
        body = text_of(dash.query_one("#out-final-body"))
        assert "mistyped id" in body and "waiting" not in body
        session.sink(JobFinished(typo))  # watched by the user: a toast of its own
        note = await wait_for(pilot, lambda: next((n.message for n in app._notifications
                                                   if "abc-123" in n.message
                                                   and "Watching" not in n.message), None),
                              what="the toast")
        assert "NOT FOUND" in note and "UNKNOWN" not in note
