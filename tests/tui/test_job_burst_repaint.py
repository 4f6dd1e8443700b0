"""Issue 16 goal 4: a burst of status changes repaints what changed and nothing more. The
output pane shows the selected job's new status without a layout of the screen (unless
its height really changes), and the status bar's active-job count, kept as records come
and go rather than counted over every record, stays right."""

from __future__ import annotations

from textual.widget import Widget

from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.events import JobsEvent
from rpdash.tui.widgets.bars import StatusBar
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import OutputViewer

from .conftest import started, text_of, wait_for
from .fakes import WALL, FakeSession
from .test_keyboard import fake_app

SIZE = (160, 48)
S = JobStatus


def queued(n: int):
    """An app whose session has ``n`` queued jobs: (app, session, records)."""
    recs = [JobRecord(f"job-{i:04d}", "mock", S.IN_QUEUE, submitted_at=WALL - i)
            for i in range(n)]
    app, session = fake_app(FakeSession(jobs=recs, endpoints=["mock"]))
    return app, session, recs


async def test_a_status_change_of_the_selected_job_does_not_relayout_the_screen(monkeypatch):
    app, session, recs = queued(300)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        viewer = dash.query_one(OutputViewer)
        bar = dash.query_one(StatusBar)
        await wait_for(pilot, lambda: viewer.job is not None, what="a job shown")
        await pilot.pause()
        shown = viewer.job.job_id
        assert "jobs 300 active / 300" in text_of(bar)
        body = dash.query_one("#out-final-body")
        height = body.region.height

        asked: list[str] = []  # layouts asked for by the output pane and the status bar
        refresh = Widget.refresh

        def counting(self, *regions, **kw):
            if kw.get("layout") and any(n is viewer or n is bar
                                        for n in (self, *self.ancestors)):
                asked.append(f"{type(self).__name__}#{self.id}")
            return refresh(self, *regions, **kw)

        monkeypatch.setattr(Widget, "refresh", counting)
        # every job starts running: the header says IN_PROGRESS, the body "running: ..."
        # (one line, as "in the queue: ..." was), the bar "300 active": no size changes
        session.sink(JobsEvent([r.copy(status=S.IN_PROGRESS) for r in recs]))
        await wait_for(pilot, lambda: "IN_PROGRESS" in text_of(dash.query_one("#out-head")),
                       what="the header updated")
        await pilot.pause()
        assert "running" in text_of(body)
        assert asked == []
        assert body.region.height == height

        # a progress update takes two lines: that one does change the pane's layout
        session.sink(JobsEvent([r.copy(status=S.IN_PROGRESS, progress="step 1\nstep 2")
                                for r in recs if r.job_id == shown]))
        await wait_for(pilot, lambda: "step 2" in text_of(body),
                       what="the progress shown")
        await pilot.pause()
        assert asked and body.region.height > height


async def test_active_count_stays_right_through_many_changes():
    app, session, recs = queued(500)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        jobs = dash.query_one(JobTable)
        bar = dash.query_one(StatusBar)
        await wait_for(pilot, lambda: jobs.row_count == 500)
        cycle = [S.IN_PROGRESS, S.COMPLETED, S.IN_QUEUE, S.FAILED, S.IN_PROGRESS]
        for n in range(1, 40):
            changed = [r.copy(status=cycle[(i * n) % len(cycle)], expired=(i + n) % 7 == 0)
                       for i, r in enumerate(recs) if (i + n) % 3]
            if n % 5 == 0:  # new jobs too
                changed += [JobRecord(f"new-{n}-{i}", "mock", S.IN_QUEUE, submitted_at=WALL)
                            for i in range(10)]
            session.sink(JobsEvent(changed))
            await pilot.pause()
            active = sum(1 for r in jobs.records.values() if not r.terminal)
            assert jobs.active == active, n
        jobs.forget(list(jobs.records)[:50])
        dash.update_status()
        active = sum(1 for r in jobs.records.values() if not r.terminal)
        assert jobs.active == active
        await pilot.pause()
        assert f"jobs {active} active / {len(jobs.records)}" in text_of(bar)


async def test_the_switcher_line_follows_a_burst_without_a_layout(monkeypatch):
    """80x24 (one pane at a time): the switcher's "N active" follows every burst, and
    redrawing that one line does not lay the screen out again."""
    from rpdash.tui.widgets.panes import PaneSwitcher

    app, session, recs = queued(300)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await started(app, pilot)
        switcher = dash.query_one(PaneSwitcher)
        await wait_for(pilot, lambda: "300 active" in text_of(switcher), what="the summary")
        asked: list[str] = []
        refresh = Widget.refresh

        def counting(self, *regions, **kw):
            if kw.get("layout") and self is switcher:
                asked.append("switcher")
            return refresh(self, *regions, **kw)

        monkeypatch.setattr(Widget, "refresh", counting)
        session.sink(JobsEvent([r.copy(status=S.COMPLETED) for r in recs[:120]]))
        await wait_for(pilot, lambda: "180 active" in text_of(switcher), what="the new count")
        assert asked == []


async def test_the_output_header_names_the_job_again_after_showing_none():
    """The header skips a redraw of the same text; showing no job in between must not
    leave the placeholder up when the same job comes back."""
    app, _, recs = queued(3)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        viewer = dash.query_one(OutputViewer)
        head = dash.query_one("#out-head")
        await wait_for(pilot, lambda: viewer.job is not None, what="a job shown")
        rec = viewer.job
        await pilot.pause()
        assert rec.job_id in text_of(head)
        viewer.show_job(None)
        await pilot.pause()
        assert "Select a job" in text_of(head)
        viewer.show_job(rec)
        await pilot.pause()
        assert rec.job_id in text_of(head) and "Select a job" not in text_of(head)
