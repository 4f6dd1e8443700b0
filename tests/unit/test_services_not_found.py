"""A 404 on a job cannot say whether the job or its endpoint is missing (RunPod's 404 bodies
are undocumented): rpdash asks /health once per endpoint, not the wording. Against the
simulator with ``neutral_404`` on (every 404 says just "not found"), on a fake clock."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from rpdash.api.client import RunPodClient
from rpdash.core.clock import FakeClock
from rpdash.core.errors import InvalidInput, NotFound
from rpdash.core.models import JobStatus, RunRequest
from rpdash.core.records import JobRecord
from rpdash.services.actions import Actions
from rpdash.services.events import ProblemEvent, StreamEvent
from rpdash.services.streams import StreamFollower
from rpdash.services.tracking import EXPIRED_MESSAGE, JobTracker
from rpdash.sim.app import create_app
from rpdash.sim.engine import EndpointConfig, Engine
from rpdash.sim.faults import Faults
from tests.unit.test_services_fakes import Recorder, settle


class Counting(httpx.ASGITransport):
    """The network to the simulator, counting requests per operation."""

    def __init__(self, app: Any) -> None:
        super().__init__(app=app)
        self.ops: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.ops[request.url.path.split("/")[3]] += 1
        return await super().handle_async_request(request)


def rig(clock: FakeClock, *eids: str) -> tuple[Engine, Any, Counting, RunPodClient]:
    eng = Engine(clock, 0, rate_limits=False)
    for eid in eids:
        eng.add_endpoint(EndpointConfig(eid, workers_min=1, workers_max=2, cold_start=0.5))
    app = create_app(eng, Faults(0), "k")
    assert app.neutral_404  # the default: no wording to lean on
    net = Counting(app)
    client = RunPodClient("k", "http://sim/v2", transport=net, clock=clock,
                          allow_insecure_http=True, max_retries=0)  # fmt: skip
    return eng, app, net, client


async def job_of_deleted_endpoint(clock: FakeClock) -> tuple[Counting, RunPodClient, str]:
    """A job running on endpoint "gone" when the endpoint is deleted."""
    eng, _, net, client = rig(clock, "gone")
    ref = await client.run("gone", RunRequest(input={"mock_delay": 500}))
    eng.remove_endpoint("gone")
    return net, client, ref.id


def record(job_id: str, ep: str, clock: FakeClock) -> JobRecord:
    return JobRecord(job_id, ep, status=JobStatus.IN_PROGRESS, submitted_at=clock.time() - 60)


def tracker(
    client: RunPodClient, store: Any, clock: FakeClock, **kw: Any
) -> tuple[JobTracker, Recorder]:
    rec = Recorder(clock)
    tr = JobTracker(client, store, rec, clock, interval=1.0, **kw)
    tr.start()
    return tr, rec


def problems(rec: Recorder) -> list[str]:
    return [e.message for e in rec.of(ProblemEvent)]


async def test_expired_job_is_marked_expired(clock: FakeClock, store) -> None:
    eng, _, net, client = rig(clock, "e")
    ref = await client.run("e", RunRequest(input={"mock_return": 1, "mock_delay": 0.1}))
    eng.advance(5)
    assert (await client.status("e", ref.id)).status is JobStatus.COMPLETED
    eng.advance(31 * 60)  # past /run's 30 min retention: /status is 404 now
    tr, rec = tracker(client, store, clock)
    tr.track(record(ref.id, "e", clock))
    await clock.advance(5, step=0.1)
    r = tr.records[ref.id]
    assert r.expired and r.error == EXPIRED_MESSAGE
    assert net.ops["health"] - tr.stats.health_requests == 1
    await tr.stop()
    await client.aclose()


async def test_jobs_of_a_deleted_endpoint_are_not_marked_expired(clock: FakeClock, store) -> None:
    eng, _, net, client = rig(clock, "e", "gone")
    ids = [(await client.run("gone", RunRequest(input={"mock_delay": 500}))).id for _ in range(3)]
    eng.remove_endpoint("gone")
    tr, rec = tracker(client, store, clock)
    for i in ids:
        tr.track(record(i, "gone", clock))
    await clock.advance(10, step=0.1)
    assert not any(tr.records[i].expired for i in ids)
    assert all(tr.records[i].status is JobStatus.IN_PROGRESS for i in ids)
    assert not tr.tracked  # no longer checked
    gone = [m for m in problems(rec) if "endpoint gone not found" in m]
    assert len(gone) == 1
    n = net.ops["status"]
    await clock.advance(60, step=1)
    assert net.ops["status"] == n  # nothing polls them again
    await tr.stop()
    await client.aclose()


async def test_many_404s_ask_health_once(clock: FakeClock, store) -> None:
    _, _, net, client = rig(clock, "e")
    tr, rec = tracker(client, store, clock, concurrency=16)
    for i in range(60):
        tr.track(record(f"old-{i}", "e", clock))
    tr.set_visible([f"old-{i}" for i in range(60)])
    await clock.advance(10, step=0.1)
    assert all(tr.records[f"old-{i}"].expired for i in range(60))
    assert net.ops["status"] >= 60
    # one /health to tell job from endpoint (the tracker's own queue sampling aside)
    assert net.ops["health"] - tr.stats.health_requests == 1
    await tr.stop()
    await client.aclose()


async def test_health_failing_keeps_the_job_live(clock: FakeClock, store) -> None:
    _, app, net, client = rig(clock, "e")
    app.faults.set(operation="health", error_rate=1.0)
    tr, rec = tracker(client, store, clock)
    tr.track(record("old-1", "e", clock))
    await clock.advance(20, step=0.1)
    r = tr.records["old-1"]
    assert not r.expired and not r.terminal
    assert tr.is_tracking("old-1")
    assert any("could not tell" in m for m in problems(rec))
    await tr.stop()
    await client.aclose()


async def test_selected_job_of_a_deleted_endpoint_is_not_expired(clock: FakeClock, store) -> None:
    _, client, jid = await job_of_deleted_endpoint(clock)
    tr, rec = tracker(client, store, clock)
    tr.track(record(jid, "gone", clock))
    tr.select(jid)
    await clock.advance(10, step=0.1)
    assert tr.stats.sync_requests >= 1
    assert not tr.records[jid].expired
    assert not tr.tracked
    assert any("endpoint gone not found" in m for m in problems(rec))
    await tr.stop()
    await client.aclose()


async def test_stream_of_a_deleted_endpoint_is_not_expired(clock: FakeClock, store) -> None:
    net, client, jid = await job_of_deleted_endpoint(clock)
    rec = Recorder(clock)
    f = StreamFollower(client, store, rec, clock, record(jid, "gone", clock), not_found_grace=0.0)
    f.start()
    await clock.advance(5, step=0.1)
    await settle()
    assert f.done and not f.book.records[jid].expired
    assert any("endpoint gone not found" in m for m in problems(rec))
    assert rec.of(StreamEvent)[-1].done
    assert net.ops["health"] == 1
    await f.stop()
    await client.aclose()


async def test_stream_of_an_expired_job_is_marked_expired(clock: FakeClock, store) -> None:
    _, _, net, client = rig(clock, "e")
    rec = Recorder(clock)
    f = StreamFollower(client, store, rec, clock, record("old-1", "e", clock), not_found_grace=0.0)
    f.start()
    await clock.advance(5, step=0.1)
    await settle()
    assert f.done and f.book.records["old-1"].expired
    await f.stop()
    await client.aclose()


async def failed_job(clock: FakeClock, store: Any, *, then: str) -> tuple[Actions, RunPodClient, str]:
    """A FAILED job whose result then expired (``then="expire"``) or whose endpoint was
    deleted (``then="delete"``), in an ``Actions`` that knows it."""
    eng, _, _, client = rig(clock, "e")
    ref = await client.run("e", RunRequest(input={"mock_error": True, "mock_delay": 0.1}))
    eng.advance(5)
    assert (await client.status("e", ref.id)).status is JobStatus.FAILED
    if then == "expire":
        eng.advance(31 * 60)
    else:
        eng.remove_endpoint("e")
    tr, _ = tracker(client, store, clock)
    tr.book.add(JobRecord(ref.id, "e", status=JobStatus.FAILED, error="boom"), emit=False)
    return Actions(client, tr.book, tr, clock), client, ref.id


async def test_retry_of_an_expired_job_says_expired_and_marks_it(clock: FakeClock, store) -> None:
    actions, client, jid = await failed_job(clock, store, then="expire")
    with pytest.raises(InvalidInput, match="has expired"):
        await actions.retry(jid)
    assert actions.book.get(jid).expired
    with pytest.raises(InvalidInput, match="has expired"):  # now without a request
        await actions.retry(jid)
    await actions.tracker.stop()
    await client.aclose()


async def test_retry_on_a_deleted_endpoint_names_the_endpoint(clock: FakeClock, store) -> None:
    actions, client, jid = await failed_job(clock, store, then="delete")
    with pytest.raises(NotFound, match="endpoint e not found"):
        await actions.retry(jid)
    assert not actions.book.get(jid).expired
    await actions.tracker.stop()
    await client.aclose()
