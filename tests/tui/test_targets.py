"""Actions hit the target the user chose (issue 13, items 1 and 2): Pilot tests of the app
wired to the simulator over HTTP, driven by the keyboard."""

from __future__ import annotations

from rpdash.core.models import JobStatus
from rpdash.tui.app import RpdashApp
from rpdash.tui.screens.confirm import ConfirmScreen, PurgeScreen
from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import OutputViewer

from .conftest import started, text_of, wait_for

SIZE = (160, 48)


def retries(sim, job_id: str) -> int:
    return sim.call(lambda: sim.engine.find_job("mock", job_id).retries)


async def failed_jobs(app, pilot, sim, n: int) -> list[str]:
    """``n`` jobs that failed on the simulator, watched by the dashboard (FAILED in the
    list). They fail again 3 s after a retry, so a retried one is visibly not FAILED."""
    dash = app.dashboard
    ids = [sim.call(lambda: sim.engine.submit(
        "mock", {"input": {"mock_error": True, "mock_delay": 3}})).id for _ in range(n)]
    for job_id in ids:
        dash.run_command(f"watch {job_id} mock")
    jobs = dash.query_one(JobTable)
    await wait_for(pilot, lambda: all(
        (r := jobs.records.get(j)) is not None and r.status is JobStatus.FAILED for j in ids),
        timeout=30, what="the failed jobs in the list")
    return ids


async def test_retry_under_a_filter_keeps_the_job_acted_on(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        ids = await failed_jobs(app, pilot, tui_sim, 3)
        jobs = dash.query_one(JobTable)
        viewer = dash.query_one(OutputViewer)
        await pilot.press("alt+2", "slash", *"FAILED", "enter")
        await wait_for(pilot, lambda: jobs.row_count == 3, what="three FAILED rows")
        await pilot.press("j")
        target = jobs.current_job_id
        await wait_for(pilot, lambda: viewer.job is not None and viewer.job.job_id == target)
        await pilot.press("r")
        await wait_for(pilot, lambda: jobs.records[target].status is not JobStatus.FAILED,
                       what="the retried job back in the queue")
        await pilot.pause(0.3)
        # the cursor and the output pane stay with the job acted on
        assert jobs.current_job_id == target
        assert viewer.job is not None and viewer.job.job_id == target
        assert target[:8] in text_of(viewer.query_one("#out-head"))
        # a second r does not retry a job the user never chose
        await pilot.press("r")
        await pilot.pause(0.5)
        others = [j for j in ids if j != target]
        assert [retries(tui_sim, j) for j in others] == [0, 0]
        assert retries(tui_sim, target) == 1


async def test_retry_of_marked_jobs_asks_first(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        ids = await failed_jobs(app, pilot, tui_sim, 2)
        jobs = dash.query_one(JobTable)
        await pilot.press("alt+2", "slash", *"FAILED", "enter")
        await wait_for(pilot, lambda: jobs.row_count == 2)
        await pilot.press("space", "space", "r")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen)
        assert "Retry 2 jobs?" in text_of(modal.query_one("#dialog-body"))
        await pilot.press("escape")  # No: nothing is retried
        await pilot.pause(0.3)
        assert [retries(tui_sim, j) for j in ids] == [0, 0]
        await pilot.press("r")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen)
        await pilot.press("left", "enter")  # to "Retry jobs", then enter
        await wait_for(pilot, lambda: [retries(tui_sim, j) for j in ids] == [1, 1],
                       what="both retried")


async def test_one_current_endpoint_for_keys_commands_and_dialogs(tui_sim, settings_for):
    app = RpdashApp(settings_for(tui_sim), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        health = dash.query_one(HealthTable)
        assert health.current == "mock"
        dash.run_command("ep streamer")
        await pilot.pause(0.2)
        # the marker and the cursor are one; :purge, W, L and M all read it
        assert health.current == "mock-stream"
        assert health.current_endpoint == "mock-stream"
        assert app.navigator.current_endpoint() == "mock-stream"
        dash.run_command("purge")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, PurgeScreen) and app.screen)
        assert modal.endpoint_id == "mock-stream"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is dash)
        # moving the cursor in the endpoints pane moves the current endpoint with it
        await pilot.press("alt+1", "k")
        await wait_for(pilot, lambda: health.current == "mock", what="cursor makes current")
        assert "▶ mock" in text_of(health) and "▶ streamer" not in text_of(health)
        assert app.navigator.current_endpoint() == "mock"
        await pilot.press("ctrl+d")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, PurgeScreen) and app.screen)
        assert modal.endpoint_id == "mock"
        await pilot.press("escape")
