"""RunPodClient operations against the simulator over real HTTP on 127.0.0.1.

Error paths, retries and pacing are in test_client_errors.py; streaming in
test_client_stream.py. Helpers used by those files live here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from rpdash.api.client import RunPodClient
from rpdash.core.clock import FakeClock
from rpdash.core.errors import NotFound, ServerError, Timeout
from rpdash.core.models import JobStatus, Policy, RunRequest, S3Config
from rpdash.sim.server import SimServer


class StepClock(FakeClock):
    """A FakeClock whose ``sleep`` returns at once, moving fake time forward.

    It records every delay the client asked for (so a test can assert on backoff and
    Retry-After without waiting) and calls ``on_sleep(seconds)`` first, which lets a test
    change the simulator between two tries (clear a fault, advance the simulator's clock).
    """

    def __init__(self, on_sleep: Callable[[float], None] | None = None) -> None:
        super().__init__()
        self.slept: list[float] = []
        self.on_sleep = on_sleep

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep(seconds)
        self.advance_sync(max(0.0, seconds))
        await asyncio.sleep(0)


def requests_seen(sim: SimServer) -> int:
    """How many HTTP requests the simulator received so far."""
    return sim.call(lambda: sim.app.requests)


def submitted(sim: SimServer, endpoint: str = "mock") -> int:
    """How many jobs the simulator created on ``endpoint``."""
    return sim.call(lambda: sim.engine.stats()["endpoints"][endpoint]["submitted"])


def sim_job(sim: SimServer, endpoint: str, job_id: str) -> Any:
    return sim.call(sim.engine.job, endpoint, job_id)


def park_jobs(sim: SimServer, endpoint: str = "mock") -> None:
    """No workers for ``endpoint``: new jobs stay IN_QUEUE."""
    sim.call(lambda: sim.engine.update_endpoint(endpoint, workers_max=0, workers_min=0))


def client_for(sim: SimServer, **kw: Any) -> RunPodClient:
    return RunPodClient(sim.api_key, sim.base_url, **kw)


def req(**inp: Any) -> RunRequest:
    return RunRequest(input=inp)


# ---------------------------------------------------------------------------- run / status


async def test_run_then_status_sync_then_status(sim):
    async with client_for(sim) as c:
        ref = await c.run("mock", req(mock_return={"answer": 42}))
        assert ref.status is JobStatus.IN_QUEUE
        assert ref.id.endswith("-u1")
        done = await c.status_sync("mock", ref.id, wait_ms=10_000)
        assert done.status is JobStatus.COMPLETED
        assert done.output == {"answer": 42}
        again = await c.status("mock", ref.id)
        assert again.status is JobStatus.COMPLETED and again.output == {"answer": 42}
        assert again.delayTime is not None and again.executionTime is not None
        assert again.raw()["id"] == ref.id  # raw JSON is kept for --json / the detail view
    assert submitted(sim) == 1


async def test_run_sends_webhook_policy_and_s3_config(sim):
    request = RunRequest(
        input={"mock_return": 1},
        webhook="https://hooks.example.invalid/done",
        policy=Policy(executionTimeout=60_000, ttl=3_600_000, lowPriority=True),
        s3Config=S3Config(accessId="a", accessSecret="s", bucketName="b", endpointUrl="https://s3"),
    )
    async with client_for(sim) as c:
        ref = await c.run("mock", request)
    job = sim_job(sim, "mock", ref.id)
    assert job.webhook == "https://hooks.example.invalid/done"
    assert job.low_priority is True
    assert job.exec_timeout_s == 60
    assert job.ttl_s == 3600
    assert job.s3_config["bucketName"] == "b"


async def test_status_ttl_shortens_retention(sim_factory):
    sim = sim_factory(clock=FakeClock())
    async with client_for(sim) as c:
        ref = await c.run("mock", req(mock_return="x"))
        sim.advance(5)
        job = await c.status("mock", ref.id, ttl_ms=1_000)
        assert job.status is JobStatus.COMPLETED
        sim.advance(2)
        with pytest.raises(NotFound) as exc:
            await c.status("mock", ref.id)
    assert f"job {ref.id} not found on endpoint mock" in str(exc.value)


# ---------------------------------------------------------------------------- runsync


async def test_runsync_finished_in_time_returns_the_job_and_reports_the_id(sim):
    ids: list[str] = []
    async with client_for(sim) as c:
        job = await c.runsync("mock", req(mock_return="fast"), on_job_id=ids.append)
    assert job.status is JobStatus.COMPLETED and job.output == "fast"
    assert ids == [job.id]
    assert submitted(sim) == 1


async def test_runsync_that_outlives_wait_keeps_following(sim):
    seen_while_running: list[str] = []

    def on_id(job_id: str) -> None:
        # called as soon as /runsync answered, while the job still runs
        seen_while_running.append(sim_job(sim, "mock", job_id).status)

    async with client_for(sim) as c:
        job = await c.runsync(
            "mock", req(mock_return="slow", mock_delay=1.4), wait_ms=1_000, on_job_id=on_id
        )
    assert job.status is JobStatus.COMPLETED and job.output == "slow"
    assert seen_while_running and seen_while_running[0] in ("IN_QUEUE", "IN_PROGRESS")
    assert submitted(sim) == 1  # followed, never resubmitted


async def test_runsync_timeout_carries_the_job_id(sim):
    ids: list[str] = []
    async with client_for(sim) as c:
        with pytest.raises(Timeout) as exc:
            await c.runsync(
                "mock", req(mock_delay=30), wait_ms=1_000, timeout=1.2, on_job_id=ids.append
            )
    assert len(ids) == 1
    assert ids[0] in str(exc.value) and exc.value.job_id == ids[0]
    assert "rpdash status" in str(exc.value)
    # the job was not lost: it keeps running on the server
    assert sim_job(sim, "mock", ids[0]).status in ("IN_QUEUE", "IN_PROGRESS")


async def test_runsync_failed_job_comes_back_with_its_error(sim):
    async with client_for(sim) as c:
        job = await c.runsync("mock", req(mock_error=True))
    assert job.status is JobStatus.FAILED
    assert "Mock error" in job.error_text


# ---------------------------------------------------------------------------- cancel / retry


async def test_cancel_queued_job(sim):
    park_jobs(sim)
    async with client_for(sim) as c:
        ref = await c.run("mock", req())
        out = await c.cancel("mock", ref.id)
        assert out.id == ref.id and out.status is JobStatus.CANCELLED
        assert (await c.status("mock", ref.id)).status is JobStatus.CANCELLED


async def test_retry_failed_job_requeues_same_id(sim):
    async with client_for(sim) as c:
        ref = await c.run("mock", req(mock_error=True))
        failed = await c.status_sync("mock", ref.id, wait_ms=10_000)
        assert failed.status is JobStatus.FAILED
        again = await c.retry("mock", ref.id)
        assert again.id == ref.id and again.status is JobStatus.IN_QUEUE
        done = await c.status_sync("mock", ref.id, wait_ms=10_000)
        assert done.status is JobStatus.FAILED and done.retries == 1
    assert submitted(sim) == 1


# ---------------------------------------------------------------------------- health / purge


async def test_health_reports_jobs_and_workers(sim):
    async with client_for(sim) as c:
        await c.runsync("mock", req())
        h = await c.health("mock")
    assert h.jobs.completed == 1
    assert h.workers.idle + h.workers.running + h.workers.initializing >= 1


async def test_purge_queue_removes_queued_jobs(sim):
    park_jobs(sim)
    async with client_for(sim) as c:
        refs = [await c.run("mock", req(n=i)) for i in range(3)]
        assert (await c.health("mock")).jobs.inQueue == 3
        res = await c.purge_queue("mock")
        assert res.removed == 3 and res.status == "completed"
        assert (await c.health("mock")).jobs.inQueue == 0
        with pytest.raises(NotFound):
            await c.status("mock", refs[0].id)


# ---------------------------------------------------------------------------- lifecycle


async def test_one_connection_is_reused(sim):
    """Keep-alive: many calls, one TCP connection (one httpx client per base URL)."""
    async with client_for(sim) as c:
        ref = await c.run("mock", req())
        for _ in range(20):
            await c.status("mock", ref.id)
        pool = c._http._transport._pool  # noqa: SLF001 - the point of the test
        assert len(pool.connections) == 1


async def test_closed_client_refuses_calls(sim):
    c = client_for(sim)
    await c.health("mock")
    await c.aclose()
    with pytest.raises(Exception) as exc:
        await c.health("mock")
    assert "closed" in str(exc.value)


# ---------------------------------------------------------------------------- follow


async def test_follow_until_done_or_deadline(sim):
    async with client_for(sim) as c:
        quick = await c.run("mock", req(mock_return="q", mock_delay=0.3))
        job = await c.follow("mock", quick.id, timeout=20)
        assert job.status is JobStatus.COMPLETED and job.output == "q"
        slow = await c.run("mock", req(mock_delay=30))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(Timeout) as exc:
            await c.follow("mock", slow.id, timeout=0.5)
        assert loop.time() - t0 < 1.5  # stops at the deadline, not after a whole hold
    assert exc.value.job_id == slow.id and exc.value.still_running
    assert f"job {slow.id} on endpoint mock did not finish within 0.5 s" in str(exc.value)


async def test_errors_while_following_carry_the_job_id(sim):
    sim.set_faults(operation="status-sync", error_rate=1.0, error_codes=[500])
    ids: list[str] = []
    async with client_for(sim, max_retries=0) as c:
        with pytest.raises(ServerError) as exc:
            await c.runsync("mock", req(mock_delay=5), wait_ms=1_000, on_job_id=ids.append)
    assert ids and exc.value.job_id == ids[0]
    assert str(exc.value).endswith(f"(job {ids[0]})")
    assert not getattr(exc.value, "still_running", False)


def test_client_implements_the_protocol():
    """Every RunPodAPI method exists on RunPodClient with the same parameters."""
    import inspect

    from rpdash.api.protocol import RunPodAPI

    for name, proto in inspect.getmembers(RunPodAPI, inspect.isfunction):
        if name.startswith("_"):
            continue
        impl = getattr(RunPodClient, name)
        want = list(inspect.signature(proto).parameters)
        have = list(inspect.signature(impl).parameters)
        assert have[: len(want)] == want, name
        assert inspect.iscoroutinefunction(impl) or inspect.isasyncgenfunction(impl), name
    c = RunPodClient("k", "https://api.runpod.ai/v2")
    assert c.base_url == "https://api.runpod.ai/v2"
    assert "k" not in repr(c).replace("RunPodClient", "")
