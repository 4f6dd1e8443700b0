"""A job stuck IN_PROGRESS after completion (simulator ``late_progress_chance``), tracked by
the real Session over real HTTP on 127.0.0.1: it must be shown finished, selected or not.

Real time; status interval 1 s, so detection needs two answers >= 1 s apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from rpdash.api.client import RunPodClient
from rpdash.core.models import JobStatus, RunRequest
from rpdash.services.session import Session
from rpdash.store.history import HistoryStore
from tests.unit.test_services_fakes import Recorder
from tests.unit.test_services_integration import until

BODY = {
    "mock_delay": 0.3,
    "mock_return": {"frames": 2},
    "mock_progress": {"updates": ["frame 1/2", "frame 2/2"], "wait_time": 0.1},
}


@pytest.fixture
async def stuck_rig(sim, tmp_path) -> AsyncIterator[Session]:
    sim.call(sim.engine.update_endpoint, "mock", late_progress_chance=1.0)
    client = RunPodClient(sim.api_key, sim.base_url)
    store = HistoryStore(tmp_path / "history.sqlite3")
    session = Session(client=client, store=store, endpoints=["mock"], sink=Recorder(),
                      health_interval=1.0, status_interval=1.0)  # fmt: skip
    await session.start()
    # a job without progress updates completes normally: the endpoint's execution times are
    # known (as in the dashboard, where other jobs of the endpoint have finished before)
    plain = await session.submit("mock", {"mock_delay": 0.2, "mock_return": "plain"})
    await until(lambda: session.jobs[plain.job_id].terminal)
    assert not session.jobs[plain.job_id].stuck_progress
    try:
        yield session
    finally:
        await session.stop()
        await client.aclose()
        store.close()


async def _stuck_in_sim(s: Session, job_id: str) -> None:
    # the simulator really leaves it IN_PROGRESS with the result in place
    async def stuck() -> bool:
        j = await s.client.status("mock", job_id)
        return j.status is JobStatus.IN_PROGRESS and j.output == {"frames": 2}

    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while not await stuck():
        assert loop.time() < end, "the simulator never left the job stuck"
        await asyncio.sleep(0.05)


def _assert_finished(s: Session, job_id: str) -> None:
    rec = s.jobs[job_id]
    assert rec.status is JobStatus.COMPLETED
    assert rec.stuck_progress is True
    assert rec.output == {"frames": 2}
    assert not s.tracker.is_tracking(job_id)


@pytest.mark.parametrize("selected", [False, True], ids=["polled", "selected"])
async def test_stuck_progress_job_is_shown_finished(stuck_rig, selected: bool) -> None:
    """Submitted by rpdash; selected (long-poll) once the simulator has it stuck."""
    s = stuck_rig
    r = await s.submit("mock", BODY)
    await _stuck_in_sim(s, r.job_id)
    if s.jobs[r.job_id].terminal:
        pytest.skip("the tracker saw the 50 ms COMPLETED window before the late update")
    s.set_visible([r.job_id])
    if selected:
        s.select(r.job_id)
    await until(lambda: s.jobs[r.job_id].terminal, timeout=15)
    _assert_finished(s, r.job_id)


@pytest.mark.parametrize("selected", [False, True], ids=["polled", "selected"])
async def test_watched_stuck_progress_job_is_shown_finished(stuck_rig, sim, selected) -> None:
    """Watched (not submitted by rpdash) after it got stuck, as in the report."""
    s = stuck_rig
    client = RunPodClient(sim.api_key, sim.base_url)
    try:
        job = await client.run("mock", RunRequest(input=BODY))
    finally:
        await client.aclose()
    await _stuck_in_sim(s, job.id)
    s.watch(job.id, "mock")
    s.set_visible([job.id])  # on screen, as in the dashboard
    if selected:
        s.select(job.id)
    await until(lambda: s.jobs[job.id].terminal, timeout=15)
    _assert_finished(s, job.id)
