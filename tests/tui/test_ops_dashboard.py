"""Pilot tests of the operations side of the dashboard (issue 6) against a real simulator on
127.0.0.1: endpoint picker and favourites, workers, logs, metrics, stuck-queue diagnosis,
result expiry. Driven by the keyboard like a user."""

from __future__ import annotations

import re

import tomllib

from textual.widgets import DataTable, Input, Sparkline

from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.store.metrics_store import MetricsStore
from rpdash.tui.app import RpdashApp
from rpdash.tui.screens.logs import LogsScreen
from rpdash.tui.screens.metrics import EndpointMetricsView, MetricsScreen
from rpdash.tui.screens.picker import EndpointPicker, PickerTable
from rpdash.tui.screens.workers import WorkersScreen
from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.job_notes import JobNotes
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import OutputViewer
from rpdash.tui.widgets.submit import SubmitForm

from .conftest import started, text_of, wait_for

SIZE = (160, 48)


def one_endpoint(settings_for, sim, **kw):
    """Settings watching only "mock" (the picker then has "mock-stream" to add)."""
    return settings_for(sim, endpoints={}, **kw)


async def screen_of(app, pilot, cls, what: str):
    """The top screen once it is a mounted ``cls``."""
    return await wait_for(pilot, lambda: isinstance(app.screen, cls) and app.screen.is_mounted
                          and app.screen, what=what)


async def type_text(pilot, text: str) -> None:
    for ch in text:
        await pilot.press({"-": "minus", " ": "space"}.get(ch, ch))


async def test_picker_lists_watches_and_stars_favourites(tui_sim, settings_for, tmp_path):
    app = RpdashApp(one_endpoint(settings_for, tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        app.favourites.config_path = tmp_path / "config.toml"
        (tmp_path / "config.toml").write_text('health_interval = 1\n[endpoints]\nprod = "mock"\n')
        health = dash.query_one(HealthTable)
        assert list(health.views) == ["mock"]

        await pilot.press("ctrl+e")
        picker = await screen_of(app, pilot, EndpointPicker, "the picker")
        await wait_for(pilot, lambda: picker.loaded, what="the endpoint list")
        table = picker.query_one(PickerTable)
        assert picker.shown == ["mock", "mock-stream"]
        # name, id, workers min/max, GPU, idle timeout; watched marked
        row = [str(c) for c in table.get_row("mock-stream")]
        assert row[1] == "mock-stream" and row[3] == "0-3" and row[5] == "5 s"
        assert "watched" in [str(c) for c in table.get_row("mock")]

        # fuzzy filter, then enter watches it: a second health row, and it is current
        await type_text(pilot, "strm")
        await wait_for(pilot, lambda: picker.shown == ["mock-stream"], what="fuzzy filter")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is dash, what="picker closed")
        assert list(health.views) == ["mock", "mock-stream"]
        assert health.current == "mock-stream"
        assert "mock-stream" in app.session.endpoints and "mock-stream" in app.session.pollers
        await wait_for(pilot, lambda: health.views["mock-stream"].event is not None
                       and health.views["mock-stream"].event.health is not None,
                       what="health of the new endpoint")
        assert dash.query_one(SubmitForm).query_one("#sf-endpoint").value == "mock-stream"

        # star "mock" as favourite 3 (tab to the list, press 3): saved to the config file
        await pilot.press("ctrl+e")
        picker = await screen_of(app, pilot, EndpointPicker, "the picker")
        await wait_for(pilot, lambda: picker.loaded, what="the endpoint list")
        await pilot.press("tab")
        assert picker.query_one(PickerTable).has_focus
        assert picker.highlighted() == "mock"
        await pilot.press("3")
        saved = tomllib.loads((tmp_path / "config.toml").read_text())
        assert saved["favourites"] == {"3": "mock"}
        assert saved["endpoints"] == {"prod": "mock"} and saved["health_interval"] == 1  # kept
        assert str(picker.query_one(PickerTable).get_row("mock")[0]) == "★3"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is dash, what="picker closed")

        # the digit jumps to the favourite (k9s habit); alt+N still jumps to panes
        assert health.current == "mock-stream"
        await pilot.press("3")
        await wait_for(pilot, lambda: health.current == "mock", what="favourite 3")
        await pilot.press("alt+1")
        assert health.has_focus
        await pilot.press("alt+2")
        assert dash.query_one(JobTable).has_focus
        await pilot.press("7")  # no favourite 7: says how to make one, nothing else
        assert health.current == "mock"
        assert app.internal_errors == []


async def test_colon_ep_opens_the_picker_prefilled(tui_sim, settings_for):
    app = RpdashApp(one_endpoint(settings_for, tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        dash.run_command(":ep mock-stream")
        picker = await screen_of(app, pilot, EndpointPicker, "the picker")
        assert picker.query_one(Input).value == "mock-stream"
        await wait_for(pilot, lambda: picker.shown and picker.shown[0] == "mock-stream",
                       what="filtered list")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "mock-stream" in dash.query_one(HealthTable).views,
                       what="watched")
        # from the palette too
        app.run_registry_action("pick_endpoint")
        await wait_for(pilot, lambda: isinstance(app.screen, EndpointPicker), what="picker again")
        await pilot.press("escape")


async def test_workers_view_and_worker_log_tail(tui_sim, settings_for, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        # a job makes a worker start (cold start, then running) and log lines
        tui_sim.call(lambda: tui_sim.engine.submit("mock", {"input": {"mock_delay": 4,
                                                                       "mock_logs": True}}))
        await wait_for(pilot, lambda: tui_sim.call(lambda: len(tui_sim.engine.workers("mock"))) > 0,
                       what="a simulated worker")
        await pilot.press("W")
        screen = await screen_of(app, pilot, WorkersScreen, "workers screen")
        await wait_for(pilot, lambda: screen.worker_list is not None and screen.worker_list.workers,
                       what=f"worker rows ({screen.error})")
        table = screen.query_one(DataTable)
        assert table.row_count == len(screen.worker_list.workers)
        w = screen.worker_list.workers[0]
        cells = [str(c) for c in table.get_row(w.id)]
        assert cells[0] == w.id and cells[1] in ("INITIALIZING", "RUNNING", "IDLE")
        assert cells[2] != "" and cells[3] != ""  # GPU, data centre
        head = text_of(screen.query_one("#workers-head"))
        # proper plurals (issue 13, item 22)
        assert re.search(r"\b(1 worker|\d+ workers): running", head), head
        assert "(s)" not in head and "max 3 workers" in head

        # enter: that worker's live log
        await pilot.press("enter")
        logs = await screen_of(app, pilot, LogsScreen, "logs screen")
        assert logs.worker_id == w.id
        await wait_for(pilot, lambda: logs.shown > 0, what="log lines", timeout=20)
        assert logs.writes <= logs.shown  # coalesced: never more writes than lines
        # level filter and text filter re-show the kept lines in one write
        await pilot.press("v", "v", "v")  # all -> info -> warn -> error
        assert logs.level == "error"
        assert all(line.level == "error" for line in logs.lines if logs._match(line))
        await pilot.press("v")
        assert logs.level is None
        await pilot.press("slash")
        await type_text(pilot, "zzz-nothing")
        await pilot.press("enter")
        assert logs.grep == "zzz-nothing" and logs.shown == 0
        await pilot.press("slash", "escape")
        assert logs.grep == "" and logs.shown == len(logs.lines)
        # follow off: new lines are counted, not scrolled to
        await pilot.press("s")
        assert logs.following is False
        await pilot.press("ctrl+s")
        saved = list(tmp_path.glob("rpdash-logs-mock-*.txt"))
        assert len(saved) == 1 and saved[0].read_text().strip()
        assert (saved[0].stat().st_mode & 0o777) == 0o600
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back to workers")
        await pilot.press("L")  # the whole endpoint
        logs = await screen_of(app, pilot, LogsScreen, "endpoint logs")
        assert logs.worker_id is None
        await wait_for(pilot, lambda: logs.shown > 0, what="endpoint log lines", timeout=20)
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: app.screen is dash, what="dashboard")
        assert app.internal_errors == []


async def test_metrics_view_and_health_samples_survive_restart(tui_sim, settings_for):
    settings = settings_for(tui_sim)
    app = RpdashApp(settings, strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        session = app.session
        # jobs through the session, so they are tracked and stored like the user's
        for i in range(3):
            await session.submit("mock", {"mock_return": i, "mock_delay": 0.1})
        await session.submit("mock", {"mock_error": True})
        await wait_for(pilot, lambda: sum(1 for r in session.jobs.values() if r.terminal) >= 4,
                       what="four finished jobs", timeout=20)
        ms = MetricsStore(session.store)
        now = app.clock.time()
        await wait_for(pilot, lambda: len(ms.health_samples("mock", now - 600)) >= 2,
                       what="stored health samples")

        await pilot.press("M")
        screen = await screen_of(app, pilot, MetricsScreen, "metrics screen")
        # the first frame has the current endpoint's view; the others and the numbers
        # (read in a thread) follow it
        await wait_for(pilot, lambda: len(screen.query(EndpointMetricsView)) == 2
                       and all(v.metrics is not None for v in screen.query(EndpointMetricsView)),
                       what="every endpoint's view filled")
        views = {v.endpoint_id: v for v in screen.query(EndpointMetricsView)}
        assert set(views) == {"mock", "mock-stream"}
        met = views["mock"].metrics
        assert met.finished >= 4 and met.failed >= 1 and met.completed >= 3
        assert met.failure_rate is not None and met.execution.p50 is not None
        text = text_of(views["mock"].query_one(".m-numbers"))
        for word in ("p50", "p70", "p90", "p98", "delay", "execution", "failure rate",
                     "throughput", "cold starts"):
            assert word in text
        sparks = views["mock"].query(Sparkline)
        assert len(sparks) == 5 and max(views["mock"].query_one("#spark-throughput").data) > 0
        assert screen.window_label == "1h"
        await pilot.press("w")
        assert screen.window_label == "24h"
        await pilot.press("w")
        assert screen.window_label == "15m"
        await wait_for(pilot, lambda: views["mock"].metrics.window_s == 900, what="15m read")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is dash, what="dashboard")
    # after a restart the samples are still there (same history file)
    from rpdash.store.history import HistoryStore

    with HistoryStore(settings.history_file()) as store:
        assert len(MetricsStore(store).health_samples("mock", 0)) >= 2


async def test_queued_job_says_why_it_waits(tui_sim, settings_for):
    tui_sim.call(lambda: tui_sim.engine.update_endpoint("mock", workers_max=0))
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        rec = await app.session.submit("mock", {"mock_return": 1})
        dash.on_jobs([rec])
        jobs = dash.query_one(JobTable)
        await wait_for(pilot, lambda: rec.job_id in jobs.records, what="job in the list")
        jobs.move_cursor(row=jobs.get_row_index(rec.job_id))
        await wait_for(pilot, lambda: dash.query_one(OutputViewer).job is not None
                       and dash.query_one(OutputViewer).job.job_id == rec.job_id, what="shown")
        notes = dash.query_one(JobNotes)
        await wait_for(pilot, lambda: "max workers is 0" in notes.text, what="diagnosis",
                       timeout=20)
        assert notes.display
        shown = text_of(notes)
        assert "Why is it waiting?" in shown and "max workers is 0" in shown


async def test_result_expiry_countdown_fetch_and_expired_mark(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        session = app.session
        # a job that finished while rpdash was not looking: terminal, output not stored
        job = tui_sim.call(lambda: tui_sim.engine.submit("mock", {"input": {"mock_return": {"k": 7}}}))
        await wait_for(pilot, lambda: tui_sim.call(lambda: tui_sim.engine.find_job("mock", job.id).status)
                       == "COMPLETED", what="sim job done")
        now = app.clock.time()
        rec = JobRecord(job.id, "mock", JobStatus.COMPLETED, submitted_at=now - 120,
                        finished_at=now - 100, updated_at=now - 100)
        session.book.add(rec)
        # and one whose result RunPod dropped before rpdash read it (the tracker's 404)
        from rpdash.services.tracking import EXPIRED_MESSAGE

        gone = JobRecord("gone-0000-0000-0000-000000000000-u1", "mock", JobStatus.IN_PROGRESS,
                         submitted_at=now - 4000, expired=True, error=EXPIRED_MESSAGE,
                         finished_at=now - 10)
        session.book.add(gone)
        jobs = dash.query_one(JobTable)
        viewer = dash.query_one(OutputViewer)
        notes = dash.query_one(JobNotes)
        await wait_for(pilot, lambda: job.id in jobs.records, what="job listed")
        jobs.move_cursor(row=jobs.get_row_index(job.id))
        # the countdown shows, and the result is fetched at once and stored
        await wait_for(pilot, lambda: session.jobs[job.id].output == {"k": 7}, what="fetched")
        assert app.results.fetched[job.id] == "stored"
        assert session.store.get(job.id).output == {"k": 7}
        await wait_for(pilot, lambda: not notes.display, what="note gone once stored")
        # the output pane follows the cursor after a short debounce; under load the fetch
        # can be quicker than that
        await wait_for(pilot, lambda: viewer.job is not None and viewer.job.job_id == job.id,
                       what="the job in the output pane")
        assert viewer.job.output == {"k": 7}

        jobs.move_cursor(row=jobs.get_row_index(gone.job_id))
        await wait_for(pilot, lambda: "expired before rpdash saw it" in notes.text,
                       what="expired-unseen mark")
        assert "EXPIRED" in str(jobs.get_row(gone.job_id))

        # a result nobody opens is fetched too (the sweep, every 10 s, soonest to expire first)
        other = tui_sim.call(lambda: tui_sim.engine.submit("mock", {"input": {"mock_return": "x"}}))
        await wait_for(pilot, lambda: tui_sim.call(
            lambda: tui_sim.engine.find_job("mock", other.id).status) == "COMPLETED", what="done")
        now = app.clock.time()
        session.book.add(JobRecord(other.id, "mock", JobStatus.COMPLETED, mode="runsync",
                                   submitted_at=now - 20, finished_at=now - 10, updated_at=now))
        app.results._swept_at = float("-inf")
        await wait_for(pilot, lambda: session.jobs[other.id].output == "x", what="swept")
        assert viewer.job.job_id == gone.job_id  # it was never opened


async def test_countdown_text_for_an_unfetched_result():
    from rpdash.tui.widgets.job_notes import expiry_note

    now = 1_800_000_000.0
    rec = JobRecord("j", "e", JobStatus.COMPLETED, submitted_at=now - 100, finished_at=now - 60)
    sev, text = expiry_note(rec, now)
    assert sev == "warn" and "29 min 00 s more" in text and "fetching" in text
    sync = rec.copy(mode="runsync", finished_at=now - 30)
    assert "30 s more" in expiry_note(sync, now)[1]
    assert expiry_note(rec.copy(output={"a": 1}), now) is None
    assert expiry_note(rec, now, "no output")[1] == "RunPod returned no output for this job"


class _BurstControl:
    """A control client whose log stream delivers a burst of lines at once, then a trickle."""

    last_source = "rest"

    def __init__(self, burst: int) -> None:
        self.burst = burst

    async def worker_logs(self, endpoint_id, worker_id, **kw):
        import asyncio

        from rpdash.api.control import LogLine

        for i in range(self.burst):
            level = "error" if i % 10 == 0 else "info"
            yield LogLine(worker_id, "container", f"{level.upper()} | line {i}", 1.0 + i,
                          f"t{i}", str(i), level, f"line {i}")
        for i in range(3):
            await asyncio.sleep(0.2)
            yield LogLine(worker_id, "container", f"late {i}", 9e9, "late", f"l{i}", "info",
                          f"late {i}")
        await asyncio.sleep(3600)

    async def aclose(self) -> None:
        pass


async def test_log_lines_are_coalesced_per_frame(tui_sim, settings_for):
    """5,000 lines arriving at once cost a handful of Log writes, not 5,000."""
    import time as _time

    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        app.control_plane._control = _BurstControl(5000)
        t0 = _time.perf_counter()
        app.navigator.open_logs(worker_id="w1", endpoint_id="mock")
        logs = await screen_of(app, pilot, LogsScreen, "logs screen")
        await wait_for(pilot, lambda: logs.shown >= 5003, what="every line", timeout=20)
        elapsed = _time.perf_counter() - t0
        print(f"\n5003 log lines: {logs.writes} Log writes, {elapsed:.2f} s to show them")
        assert logs.writes <= 10
        assert logs.log_widget.line_count == 5000  # capped on screen (MAX_LINES)
        assert len(logs.lines) == 5003  # all kept for filtering and saving
        await pilot.press("v", "v", "v")  # error only: one rewrite
        assert logs.shown == 500
        await pilot.press("escape")


async def test_an_endpoint_with_its_own_api_key(tui_sim, settings_for):
    """[endpoint_keys]: "mock" is called with its own key, "mock-stream" with the default
    (here a key the simulator rejects), in the health pane, the workers view and the picker."""
    from rpdash.services.events import ConnState

    settings = settings_for(tui_sim, api_key="not-this-account", endpoint_keys={"mock": "sim-key"})
    app = RpdashApp(settings, strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        health = dash.query_one(HealthTable)
        await wait_for(pilot, lambda: (ev := health.views["mock"].event) is not None
                       and ev.state is ConnState.OK, what="mock healthy with its own key")
        await wait_for(pilot, lambda: (ev := health.views["mock-stream"].event) is not None
                       and ev.state is ConnState.KEY_REJECTED, what="the default key rejected")
        assert "sim-key" not in repr(app.session.client)
        await pilot.press("W")  # current endpoint is mock: its own key for the control plane too
        screen = await screen_of(app, pilot, WorkersScreen, "workers")
        await wait_for(pilot, lambda: screen.loads >= 1, what="worker list read")
        assert screen.error is None
        await pilot.press("escape", "ctrl+e")
        picker = await screen_of(app, pilot, EndpointPicker, "the picker")
        await wait_for(pilot, lambda: picker.loaded, what="the endpoint list")
        assert "mock" in picker.shown  # listed through the endpoint's own key
        await pilot.press("escape")
