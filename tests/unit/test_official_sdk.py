"""The official runpod SDK (1.12.0), unmodified, runs its documented endpoint flows against
the simulator: proof that the simulator speaks RunPod's API as real clients expect it.

Only the base URL and the key differ from production use. runpod reads
``RUNPOD_ENDPOINT_BASE_URL`` into ``runpod.endpoint_url_base`` at import, and ``Endpoint`` /
``AsyncioEndpoint`` / ``Job`` read that attribute when they are constructed (see
runpod/endpoint/runner.py and asyncio/asyncio_runner.py), so setting the attribute for the
test is enough. The sync SDK blocks, which is fine: the simulator runs in its own thread.
"""

from __future__ import annotations

import asyncio

import pytest

runpod = pytest.importorskip("runpod")

from tests.unit.test_client import park_jobs  # noqa: E402


@pytest.fixture
def sdk(sim, monkeypatch):
    monkeypatch.setattr(runpod, "endpoint_url_base", sim.base_url)
    monkeypatch.setattr(runpod, "api_key", sim.api_key)
    return sim


def test_run_then_status_and_output(sdk):
    ep = runpod.Endpoint("mock")
    job = ep.run({"mock_return": {"greeting": "hi"}, "mock_delay": 0.3})
    assert job.status() in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
    assert job.output(timeout=15) == {"greeting": "hi"}
    assert job.status() == "COMPLETED"


def test_run_with_full_body_keeps_policy(sdk):
    """run() passes a body that has a truthy ``input`` through as it is (policy, webhook)."""
    ep = runpod.Endpoint("mock", api_key=sdk.api_key)
    job = ep.run({"input": {"mock_return": 7}, "policy": {"ttl": 60_000}})
    assert job.output(timeout=15) == 7
    assert sdk.call(sdk.engine.job, "mock", job.job_id).ttl_s == 60


def test_run_sync(sdk):
    ep = runpod.Endpoint("mock")
    assert ep.run_sync({"mock_return": [1, 2, 3]}, timeout=30) == [1, 2, 3]


def test_run_sync_waits_for_a_slow_job(sdk):
    """run_sync sends /runsync without ?wait: the server holds (90 s by default) until the
    2 s job ends and answers with the finished job."""
    ep = runpod.Endpoint("mock")
    assert ep.run_sync({"mock_return": "late", "mock_delay": 2}, timeout=30) == "late"


def test_stream_on_mock_stream(sdk):
    ep = runpod.Endpoint("mock-stream")
    items = ["alpha", "beta", {"gamma": 3}, "delta"]
    job = ep.run({"mock_return": items, "mock_delay": 0.2})
    assert list(job.stream()) == items
    assert job.output(timeout=10) == items


def test_cancel(sdk):
    park_jobs(sdk)
    ep = runpod.Endpoint("mock")
    job = ep.run({"mock_return": "never"})
    answer = job.cancel()
    assert answer["id"] == job.job_id and answer["status"] == "CANCELLED"
    assert job.status() == "CANCELLED"


def test_health(sdk):
    ep = runpod.Endpoint("mock")
    ep.run_sync({"mock_return": 1}, timeout=30)
    h = ep.health()
    assert set(h) >= {"jobs", "workers"}
    assert h["jobs"]["completed"] == 1
    assert {"idle", "running"} <= set(h["workers"])


def test_purge_queue(sdk):
    park_jobs(sdk)
    ep = runpod.Endpoint("mock")
    ep.run({"n": 1})
    ep.run({"n": 2})
    assert ep.purge_queue() == {"removed": 2, "status": "completed"}


def test_wrong_key_is_runtime_error_401(sdk):
    ep = runpod.Endpoint("mock", api_key="wrong-key")
    with pytest.raises(RuntimeError) as exc:
        ep.run({"mock_return": 1})
    assert "401" in str(exc.value)


def test_asyncio_endpoint_flow(sdk):
    """runpod.AsyncioEndpoint over aiohttp: run, status, output, health, cancel."""
    from runpod.http_client import AsyncClientSession

    async def flow():
        async with AsyncClientSession() as session:
            ep = runpod.AsyncioEndpoint("mock", session)
            job = await ep.run({"mock_return": "async-ok", "mock_delay": 0.2})
            assert await job.status() in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
            out = await job.output(timeout=15)
            health = await ep.health()
            stream_ep = runpod.AsyncioEndpoint("mock-stream", session)
            sjob = await stream_ep.run({"mock_return": ["x", "y"]})
            chunks = [c async for c in sjob.stream()]
            return out, health, chunks

    out, health, chunks = asyncio.run(flow())
    assert out == "async-ok"
    assert health["jobs"]["completed"] >= 1
    assert chunks == ["x", "y"]
