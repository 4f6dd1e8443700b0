"""Session: start from history (resume live jobs), stop cleanly, pause everything, health
wiring, store failures, watch/follow/chunks. FIFO fake API on a FakeClock."""

from __future__ import annotations

import asyncio

import pytest

from rpdash.core.errors import InvalidInput
from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.events import ConnState, HealthEvent, JobFinished, ProblemEvent, StreamEvent
from rpdash.services.session import Session
from rpdash.store.history import HistoryStore, StoreError
from tests.unit.test_services_fakes import FakeAPI, Recorder, settle


def make(api, store, clock, **kw) -> tuple[Session, Recorder]:
    rec = Recorder(clock)
    s = Session(client=api, store=store, endpoints=["ep"], sink=rec, clock=clock,
                status_interval=1.0, **kw)  # fmt: skip
    return s, rec


async def test_start_resumes_live_jobs_from_history(clock, store) -> None:
    api = FakeAPI(clock, workers=2, exec_time=3.0)
    running = api.add_job("ep")  # the server still runs it
    streaming = api.add_job("ep", {"mock_return": ["x", "y"]})
    api.streams[streaming.id] = [["x"], 0.5, ["y"], "end"]
    store.record_submitted(JobRecord(running.id, "ep", status=JobStatus.IN_PROGRESS,
                                     submitted_at=clock.time()))  # fmt: skip
    store.record_submitted(JobRecord(streaming.id, "ep", mode="stream",
                                     status=JobStatus.IN_PROGRESS, submitted_at=clock.time()))
    store.append_chunks(streaming.id, 0, ["earlier"])  # read before the restart
    store.record_submitted(JobRecord("done-1", "ep", status=JobStatus.COMPLETED, output=1))
    s, rec = make(api, store, clock)
    await s.start()
    assert set(s.jobs) == {running.id, streaming.id, "done-1"}
    assert streaming.id in s.followers
    await clock.advance(10, step=0.1)
    assert s.jobs[running.id].status is JobStatus.COMPLETED
    assert store.get(running.id).status is JobStatus.COMPLETED
    assert s.jobs[streaming.id].status is JobStatus.COMPLETED
    assert s.chunks(streaming.id) == ["earlier", "x", "y"]
    assert api.per_job["done-1"] == 0
    assert {e.job.job_id for e in rec.of(JobFinished)} == {running.id, streaming.id}
    assert not s.followers
    await s.stop()


async def test_stop_leaves_no_pending_task(clock, store) -> None:
    api = FakeAPI(clock, workers=1, exec_time=30.0)
    s, _ = make(api, store, clock)
    await s.start()
    a = await s.submit("ep", {"mock_delay": 30})
    api.streams["job-3"] = [[1], 60.0, "end"]  # the next job's stream: one chunk, then long
    b = await s.submit("ep", {"mock_delay": 30}, mode="stream")
    assert b.job_id == "job-3"
    api.latency = 0.2  # requests now take time: some are in flight when stop() comes
    s.select(a.job_id)
    s.set_visible([a.job_id, b.job_id])
    await clock.advance(2.1, step=0.1)
    await s.stop()
    await settle()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_pause_stops_all_polling(clock, store) -> None:
    api = FakeAPI(clock, workers=1, exec_time=20.0)
    s, rec = make(api, store, clock)
    await s.start()
    a = await s.submit("ep", {"mock_delay": 20})
    s.set_visible([a.job_id])
    await clock.advance(3, step=0.1)
    s.pause()
    assert s.paused
    calls = sum(api.calls.values())
    await clock.advance(60, step=0.5)
    assert sum(api.calls.values()) == calls
    assert s.health["ep"].state is ConnState.PAUSED
    s.resume()
    await clock.advance(2, step=0.1)
    assert s.jobs[a.job_id].status is JobStatus.COMPLETED
    assert s.health["ep"].state is ConnState.OK
    await s.stop()


async def test_health_can_be_paused_alone(clock, store) -> None:
    api = FakeAPI(clock)
    s, rec = make(api, store, clock)
    await s.start()
    await clock.advance(1)
    s.set_health_active(False)
    n = api.calls["health"]
    await clock.advance(60, step=1)
    assert api.calls["health"] == n
    s.set_health_active(True)
    await settle()
    assert api.calls["health"] == n + 1
    await s.stop()


async def test_health_events_are_kept_per_endpoint(clock, store) -> None:
    api = FakeAPI(clock)
    s, rec = make(api, store, clock)
    await s.start()
    await settle()
    ev = s.health["ep"]
    assert isinstance(ev, HealthEvent) and ev.state is ConnState.OK and ev.health is not None
    await s.stop()


async def test_store_failure_never_stops_tracking(clock) -> None:
    class Flaky(HistoryStore):
        fail = False

        def update_many(self, items):  # noqa: ANN001
            if self.fail:
                raise StoreError("cannot write job history at /x: disk is full")
            return super().update_many(items)

    store = Flaky(None, clock=clock)
    api = FakeAPI(clock, workers=2, exec_time=2.0)
    s, rec = make(api, store, clock)
    await s.start()
    a = await s.submit("ep", {"mock_delay": 2})
    store.fail = True
    await clock.advance(6, step=0.1)
    assert s.jobs[a.job_id].status is JobStatus.COMPLETED  # the list is right
    assert any("disk is full" in p.message for p in rec.of(ProblemEvent))
    store.fail = False  # the disk has room again: the history catches up
    b = await s.submit("ep", {"mock_delay": 1})
    await clock.advance(10, step=0.1)
    assert store.get(a.job_id).status is JobStatus.COMPLETED
    assert store.get(b.job_id).status is JobStatus.COMPLETED
    await s.stop()
    store.close()


async def test_watch_an_existing_job(clock, store) -> None:
    api = FakeAPI(clock, workers=1, exec_time=2.0)
    j = api.add_job("ep")
    s, rec = make(api, store, clock)
    await s.start()
    r = s.watch(j.id, "ep")
    assert r.status is JobStatus.UNKNOWN and store.get(j.id) is not None
    await clock.advance(5, step=0.1)
    assert s.jobs[j.id].status is JobStatus.COMPLETED
    with pytest.raises(InvalidInput):
        s.watch("../x", "ep")
    with pytest.raises(InvalidInput):
        s.watch("ok-1", "bad endpoint")
    gone = s.watch("never-existed", "ep")
    await clock.advance(3, step=0.1)
    assert s.jobs[gone.job_id].expired  # unknown to the API: no grace for a watched id
    await s.stop()


async def test_follow_reads_the_stream_of_a_run_job(clock, store) -> None:
    api = FakeAPI(clock, workers=1, exec_time=1.0)
    s, rec = make(api, store, clock)
    await s.start()
    a = await s.submit("ep", {"mock_delay": 1})
    api.streams[a.job_id] = [["p1"], 0.3, "end"]
    s.follow(a.job_id)
    assert s.tracker.selected == a.job_id
    await clock.advance(3, step=0.05)
    assert s.chunks(a.job_id) == ["p1"]
    assert any(e.done for e in rec.of(StreamEvent))
    s.unfollow(a.job_id)
    assert s.tracker.selected is None
    await s.stop()


async def test_submit_on_session_validates_first(clock, store) -> None:
    api = FakeAPI(clock)
    s, rec = make(api, store, clock)
    await s.start()
    with pytest.raises(InvalidInput, match="line 1"):
        await s.submit("ep", "{oops}")
    s.readonly = True
    with pytest.raises(InvalidInput, match="read-only mode: submit is disabled"):
        await s.submit("ep", {"a": 1})
    with pytest.raises(InvalidInput, match="read-only mode: cancel is disabled"):
        await s.cancel(["x-1"])
    assert api.calls["run"] == api.calls["cancel"] == 0
    await s.stop()
