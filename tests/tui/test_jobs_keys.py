"""Keys of the jobs list and the output pane (issue 13, items 11, 12, 13): filtering as you
type, g/G/home/end, q asks while jobs are live, sort by status keeps EXPIRED together, G
in the output resets "N new lines"."""

from __future__ import annotations

import asyncio

from textual import events

from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.events import JobsEvent, StreamEvent
from rpdash.tui.app import RpdashApp
from rpdash.tui.screens.confirm import ConfirmScreen
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import OutputViewer

from .conftest import started, text_of, wait_for
from .fakes import WALL, FakeSession
from .test_keyboard import fake_app

SIZE = (160, 48)


async def test_filter_as_you_type_and_g_G_home_end(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        jobs = dash.query_one(JobTable)
        ids = []
        for inp in ({"mock_error": True}, {"mock_return": 1}, {"mock_return": 2}):
            ids.append(tui_sim.call(lambda i=inp: tui_sim.engine.submit("mock", {"input": i})).id)
            dash.run_command(f"watch {ids[-1]} mock")
        await wait_for(pilot, lambda: all(
            (r := jobs.records.get(j)) is not None and r.status.terminal for j in ids),
            timeout=30, what=f"three finished jobs {[(j, jobs.records.get(j) and jobs.records[j].status) for j in ids]}")
        await pilot.press("alt+2", "slash", *"FAIL")  # no enter: the list follows the keys
        await wait_for(pilot, lambda: jobs.row_count == 1, what="filtered as typed")
        assert jobs.current_job_id == ids[0]
        await pilot.press("backspace", "backspace", "backspace", "backspace")
        await wait_for(pilot, lambda: jobs.row_count == 3, what="filter cleared by typing")
        await pilot.press("enter")
        assert app.focused is jobs
        await pilot.press("G")
        assert jobs.cursor_row == 2
        await pilot.press("g")
        assert jobs.cursor_row == 0
        await pilot.press("end")
        assert jobs.cursor_row == 2
        await pilot.press("home")
        assert jobs.cursor_row == 0
        # "/FAIL" in one read from the terminal (typed fast, or pasted): every key after
        # "/" goes to the filter line, none to the list (A sorts, L opens the logs)
        for key, char in (("slash", "/"), ("F", "F"), ("A", "A"), ("I", "I"), ("L", "L")):
            app.post_message(events.Key(key, char))
        await wait_for(pilot, lambda: jobs.row_count == 1, what="filtered by typed-ahead keys")
        assert app.screen is dash and jobs.filter_text == "FAIL"
        await pilot.press("E")  # the next key goes on, it does not replace them
        await wait_for(pilot, lambda: jobs.filter_text == "FAILE")


async def test_q_asks_while_jobs_are_live(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        job = tui_sim.call(lambda: tui_sim.engine.submit("mock", {"input": {"mock_delay": 60}})).id
        dash.run_command(f"watch {job} mock")
        await wait_for(pilot, lambda: job in dash.query_one(JobTable).records)
        await pilot.press("q")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen)
        assert "1 job still runs or waits" in text_of(modal.query_one("#dialog-body"))
        await pilot.press("n")
        await pilot.pause(0.2)
        assert app.is_running and app.screen is dash
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: not app.is_running, what="quit after yes")


async def test_sort_by_status_keeps_expired_jobs_together():
    from rpdash.services.tracking import EXPIRED_MESSAGE

    S = JobStatus
    recs = [
        JobRecord("a-done", "mock", S.COMPLETED, submitted_at=WALL - 1),
        JobRecord("b-gone-queued", "mock", S.IN_QUEUE, submitted_at=WALL - 2, expired=True,
                  error=EXPIRED_MESSAGE),
        JobRecord("c-failed", "mock", S.FAILED, submitted_at=WALL - 3, error="boom"),
        JobRecord("d-gone-running", "mock", S.IN_PROGRESS, submitted_at=WALL - 4, expired=True,
                  error=EXPIRED_MESSAGE),
        JobRecord("e-running", "mock", S.IN_PROGRESS, submitted_at=WALL - 5),
    ]
    app, _ = fake_app(FakeSession(jobs=recs, endpoints=["mock"]))
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        jobs = dash.query_one(JobTable)
        await pilot.press("alt+2", "S")
        await pilot.pause(0.1)
        shown = [str(jobs.get_row_at(i)[2]) for i in range(jobs.row_count)]
        assert shown == ["FAILED", "IN_PROGRESS", "COMPLETED", "EXPIRED", "EXPIRED"], shown


async def test_G_in_the_output_resets_the_new_lines_count():
    rec = JobRecord("s-1", "mock", JobStatus.IN_PROGRESS, mode="stream", submitted_at=WALL)
    session = FakeSession(jobs=[rec], endpoints=["mock"])
    app, _ = fake_app(session)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        viewer = dash.query_one(OutputViewer)
        await wait_for(pilot, lambda: viewer.job is not None)
        await pilot.press("alt+3", "s")
        session.sink(StreamEvent("s-1", 0, [f"line {i}\n" for i in range(80)]))
        await wait_for(pilot, lambda: viewer.new_lines == 80)
        assert "80 new lines" in text_of(dash.query_one("#out-head"))
        await pilot.press("G")
        await pilot.pause(0.1)
        assert viewer.new_lines == 0
        assert "new lines" not in text_of(dash.query_one("#out-head"))


async def test_output_pane_follows_the_cursor_at_once():
    """One j shows the job under the cursor in the same frame, not after the debounce
    (made 60 s here, so only the leading edge can show it); moves while that window is
    open coalesce, and the last one is shown when it closes."""
    recs = [JobRecord(f"job-{i}", "mock", JobStatus.COMPLETED, submitted_at=WALL - i,
                      output={"n": i}) for i in range(6)]
    app, _ = fake_app(FakeSession(jobs=recs, endpoints=["mock"]))
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        jobs = dash.query_one(JobTable)
        viewer = dash.query_one(OutputViewer)
        await pilot.press("alt+2")
        await wait_for(pilot, lambda: not dash._follow_cursor.settling, what="settled")
        dash._follow_cursor.wait = 60.0
        await pilot.press("j")
        await pilot.pause()
        assert viewer.job is not None and viewer.job.job_id == jobs.current_job_id == "job-1"
        await pilot.press("j", "j", "j")
        await pilot.pause()
        assert viewer.job.job_id == "job-1" and jobs.current_job_id == "job-4"  # coalesced
        dash._follow_cursor.timer.stop()
        dash._follow_cursor._settled()  # the window closes
        await pilot.pause()
        assert viewer.job.job_id == "job-4"


def test_leading_debounce_applies_the_first_at_once_and_the_last_of_a_burst():
    from rpdash.tui.debounce import LeadingDebounce

    timers, applied = [], []

    class Timer:
        def __init__(self, cb):
            self.cb, self.stopped = cb, False

        def stop(self):
            self.stopped = True

    def set_timer(wait, cb):
        timers.append(Timer(cb))
        return timers[-1]

    d = LeadingDebounce(set_timer, 0.12, applied.append)
    d.push("a")
    assert applied == ["a"] and d.settling
    d.push("b")
    d.push("c")
    assert applied == ["a"] and timers[0].stopped and timers[1].stopped
    timers[-1].cb()
    assert applied == ["a", "c"] and not d.settling
    d.push("d")
    assert applied == ["a", "c", "d"]


async def test_a_burst_rewrites_only_the_rows_on_screen_and_others_when_shown():
    """Issue 16 goal 4: 2,000 jobs change status at once; only the rows on screen are
    formatted and written, a row off screen shows its new status when the cursor gets to
    it (and its cells read back right before that)."""
    S = JobStatus
    recs = [JobRecord(f"job-{i:05d}", "mock", S.IN_QUEUE, submitted_at=WALL - i)
            for i in range(2000)]
    app, session = fake_app(FakeSession(jobs=recs, endpoints=["mock"]))
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        jobs = dash.query_one(JobTable)
        await wait_for(pilot, lambda: jobs.row_count == 2000)
        await pilot.pause()
        written = jobs.cells_written
        assert written < 9 * 100  # first paint: only the rows drawn were formatted
        session.sink(JobsEvent([r.copy(status=S.FAILED, error="boom") for r in recs]))
        await wait_for(pilot, lambda: jobs.records["job-01999"].status is S.FAILED)
        await pilot.pause()
        assert jobs.cells_written - written < 3 * 100  # ~45 rows x 2 cells, not 2,000 x 2
        assert "FAILED" in text_of(jobs) and "IN_QUEUE" not in text_of(jobs)
        assert "FAILED" in str(jobs.get_row("job-01500")[2])  # read before it is drawn
        await pilot.press("alt+2", "G")
        await pilot.pause()
        assert jobs.current_job_id == "job-01999"
        shown = text_of(jobs)
        assert "job-01999" in shown and "FAILED" in shown and "IN_QUEUE" not in shown
        await pilot.press("S")  # by status: every row is FAILED; the cursor stays on its job
        await pilot.pause()
        assert jobs.current_job_id == "job-01999"


async def test_slash_opens_the_filter_over_the_header_without_resizing_the_table():
    """Issue 16 goal 1: the filter line lies over the table's header row; the table keeps
    its size (a resize drops DataTable's caches: a repaint of every cell on screen)."""
    app, _ = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        jobs = dash.query_one(JobTable)
        await pilot.pause()
        region, header = jobs.region, text_of(jobs).splitlines()[0]
        assert "job id" in header
        await pilot.press("slash", *"COMP")
        await pilot.pause()
        line = dash.query_one("#filter")
        assert app.focused is line and line.region.y == region.y  # over the header row
        assert jobs.region == region
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused is jobs and jobs.region == region
        assert not line.visible and text_of(jobs).splitlines()[0] == header


class SlowRetrySession(FakeSession):
    """Retries wait for ``gate``; the first one fails."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.gate = asyncio.Event()
        self.tries = 0

    async def retry(self, job_id: str) -> JobRecord:
        await self.gate.wait()
        self.tries += 1
        if self.tries == 1:
            raise RuntimeError("endpoint is paused")
        return await super().retry(job_id)


async def test_r_marks_the_row_retrying_at_once_and_reverts_if_it_fails():
    """Issue 16 goal 1: ``r`` answers in its own frame (the API's answer takes 60-370 ms);
    a failed retry puts the status back and says so."""
    S = JobStatus
    recs = [JobRecord("a-failed", "mock", S.FAILED, submitted_at=WALL - 1, error="boom"),
            JobRecord("b-done", "mock", S.COMPLETED, submitted_at=WALL - 2)]
    session = SlowRetrySession(jobs=recs, endpoints=["mock"])
    app, _ = fake_app(session)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        jobs = dash.query_one(JobTable)
        await pilot.press("alt+2")
        assert jobs.current_job_id == "a-failed"
        await pilot.press("r")
        await pilot.pause()
        assert session.tries == 0  # no answer yet
        row = text_of(jobs).splitlines()[1]
        assert "a-failed" in row and "retrying…" in row and "FAILED" not in row
        session.gate.set()
        await wait_for(pilot, lambda: "FAILED" in text_of(jobs).splitlines()[1])
        assert "retrying" not in text_of(jobs)
        assert any("Retry failed" in str(n.message) or "Not retried" in str(n.message)
                   for n in app._notifications)
        session.gate.clear()
        await pilot.press("r")
        await pilot.pause()
        assert "retrying…" in text_of(jobs).splitlines()[1]
        session.gate.set()
        await wait_for(pilot, lambda: jobs.records["a-failed"].status is S.IN_QUEUE)
        await pilot.pause()
        row = text_of(jobs).splitlines()[1]
        assert "IN_QUEUE" in row and "retrying" not in row


async def test_quick_cells_render_what_datatable_renders():
    """The job table's own cell render (quick_cells.py) gives the same segments as
    DataTable's, focused and not, cursor row included, for every column shown."""
    from rich.segment import Segment
    from textual.widgets import DataTable

    app, _ = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        jobs = dash.query_one(JobTable)
        await pilot.pause()
        jobs.fill_now(jobs.visible_ids())
        for focused in (True, False):
            if focused:
                jobs.focus()
            else:
                dash.query_one(OutputViewer).focus()
            await pilot.pause()
            jobs._pseudo_class_state = jobs.get_pseudo_class_state()
            style = jobs.rich_style
            compared = 0
            for row in range(min(jobs.row_count, 6)):
                for col, column in enumerate(jobs.ordered_columns):
                    width = column.get_render_width(jobs)
                    for cursor in (False, True):
                        jobs._cell_render_cache.clear()
                        ours = jobs._render_cell(row, col, style, width, cursor)
                        jobs._cell_render_cache.clear()
                        theirs = DataTable._render_cell(jobs, row, col, style, width, cursor)
                        assert [list(Segment.simplify(x)) for x in ours] == \
                               [list(Segment.simplify(x)) for x in theirs], (row, col)
                        compared += 1
            assert compared >= 6 * 7 * 2
