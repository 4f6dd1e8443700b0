"""The services against the real simulator and the real client, over HTTP on 127.0.0.1.

Real time (the simulator's clock is real here), so jobs are kept to fractions of a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from rpdash.api.client import RunPodClient
from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.events import ConnState, JobFinished, StreamEvent
from rpdash.services.session import Session
from rpdash.services.tracking import PURGED_MESSAGE
from rpdash.sim.server import SimServer
from rpdash.store.history import HistoryStore
from tests.unit.test_services_fakes import Recorder


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def rig(sim: SimServer, tmp_path) -> AsyncIterator[tuple[Session, Recorder, HistoryStore]]:
    client = RunPodClient(sim.api_key, sim.base_url)
    store = HistoryStore(tmp_path / "history.sqlite3")
    rec = Recorder()
    session = Session(client=client, store=store, endpoints=["mock", "mock-stream"], sink=rec,
                      health_interval=1.0, status_interval=0.5)  # fmt: skip
    await session.start()
    try:
        yield session, rec, store
    finally:
        await session.stop()
        await client.aclose()
        store.close()


async def test_submit_then_completes(rig) -> None:
    s, rec, store = rig
    r = await s.submit("mock", '{"mock_return": {"answer": 42}, "mock_delay": 0.2}')
    assert store.get(r.job_id) is not None  # stored before submit returned
    await until(lambda: s.jobs[r.job_id].terminal)
    done = s.jobs[r.job_id]
    assert done.status is JobStatus.COMPLETED and done.output == {"answer": 42}
    assert done.execution_ms is not None and done.execution_ms >= 150
    assert store.get(r.job_id).output == {"answer": 42}
    assert [e.job.job_id for e in rec.of(JobFinished)] == [r.job_id]
    await until(lambda: s.health.get("mock") is not None and s.health["mock"].state is ConnState.OK)


async def test_failed_job_error_and_retry(rig) -> None:
    s, rec, store = rig
    r = await s.submit("mock", {"mock_error": True, "mock_delay": 0.1})
    await until(lambda: s.jobs[r.job_id].terminal)
    assert s.jobs[r.job_id].status is JobStatus.FAILED and s.jobs[r.job_id].error
    again = await s.retry(r.job_id)
    assert again.job_id == r.job_id and again.status is JobStatus.IN_QUEUE
    await until(lambda: s.jobs[r.job_id].terminal)
    assert s.jobs[r.job_id].status is JobStatus.FAILED  # same input, same fate
    assert s.jobs[r.job_id].retries >= 1


async def test_stream_chunks_in_order(rig) -> None:
    s, rec, store = rig
    words = [f"w{i}" for i in range(12)]
    r = await s.submit("mock-stream", {"mock_return": words, "mock_delay": 0.03}, mode="stream")
    await until(lambda: any(e.done for e in rec.of(StreamEvent) if e.job_id == r.job_id))
    got = [o for e in rec.of(StreamEvent) if e.job_id == r.job_id for o in e.outputs]
    assert got == words
    assert s.chunks(r.job_id) == words
    final = s.jobs[r.job_id]
    assert final.status is JobStatus.COMPLETED and final.output == words
    assert store.get(r.job_id).chunk_count == 12


async def test_runsync_mode(rig) -> None:
    s, rec, store = rig
    r = await s.submit("mock", {"mock_return": "quick", "mock_delay": 0.1}, mode="runsync")
    assert r.status is JobStatus.COMPLETED and r.output == "quick"
    assert store.get(r.job_id).status is JobStatus.COMPLETED


async def test_cancel_running_and_queued(rig) -> None:
    s, rec, store = rig
    a = await s.submit("mock", {"mock_delay": 30})
    await until(lambda: s.jobs[a.job_id].status is JobStatus.IN_PROGRESS or True)
    out = dict(await s.cancel([a.job_id, "no-such-job"]))
    assert out[a.job_id].status is JobStatus.CANCELLED
    assert not isinstance(out["no-such-job"], JobRecord)
    assert store.get(a.job_id).status is JobStatus.CANCELLED


async def test_purge_removes_queued_jobs(rig) -> None:
    s, rec, store = rig
    jobs = [await s.submit("mock", {"mock_delay": 20}) for _ in range(6)]  # 3 workers at most
    await asyncio.sleep(0.5)
    res = await s.purge("mock")
    assert res.removed >= 3
    await until(lambda: sum(1 for j in jobs if s.jobs[j.job_id].terminal) >= res.removed)
    purged = [s.jobs[j.job_id] for j in jobs if s.jobs[j.job_id].terminal]
    assert all(p.expired and p.error == PURGED_MESSAGE or p.status is JobStatus.CANCELLED
               for p in purged)  # fmt: skip
    await s.cancel([j.job_id for j in jobs if not s.jobs[j.job_id].terminal])


async def test_restart_resumes_tracking(sim: SimServer, tmp_path) -> None:
    path = tmp_path / "history.sqlite3"
    client = RunPodClient(sim.api_key, sim.base_url)
    store = HistoryStore(path)
    s1 = Session(client=client, store=store, endpoints=["mock"], sink=Recorder(),
                 status_interval=0.5)  # fmt: skip
    await s1.start()
    r = await s1.submit("mock", {"mock_return": "after restart", "mock_delay": 1.0})
    await s1.stop()  # rpdash quits while the job runs
    store.close()
    store = HistoryStore(path)
    rec = Recorder()
    s2 = Session(client=client, store=store, endpoints=["mock"], sink=rec, status_interval=0.5)
    await s2.start()
    assert r.job_id in s2.jobs and not s2.jobs[r.job_id].terminal
    await until(lambda: s2.jobs[r.job_id].terminal)
    assert s2.jobs[r.job_id].output == "after restart"
    await s2.stop()
    await client.aclose()
    store.close()


async def test_demo_environment_and_traffic(tmp_path) -> None:
    from rpdash.services.demo import DemoTraffic, start_demo

    env = await asyncio.to_thread(start_demo, seed=3)
    try:
        assert env.base_url.startswith("http://127.0.0.1:")
        assert {"llm-chat", "whisper-asr"} <= set(env.endpoints)
        client = RunPodClient(env.api_key, env.base_url)
        store = HistoryStore(None)
        session = Session(client=client, store=store, endpoints=env.endpoints, sink=Recorder(),
                          status_interval=0.5)  # fmt: skip
        await session.start()
        traffic = DemoTraffic(session, rng=__import__("random").Random(1))
        traffic.kinds = [k for k in traffic.kinds if k[0] == "whisper-asr"]  # warm worker
        jid = await traffic.submit_one()
        assert jid is not None and jid in session.jobs
        await until(lambda: session.jobs[jid].terminal, timeout=15)
        await session.stop()
        await client.aclose()
        store.close()
    finally:
        await asyncio.to_thread(env.stop)
