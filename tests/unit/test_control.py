"""The control-plane client (rpdash.api.control) over real HTTP against the simulator.

Where the client waits (idle detection of a backlog, reconnect delays) it runs on a
FakeClock that the test moves; the simulator runs on real time unless a test says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from rpdash.api.control import (
    ControlClient,
    EndpointInfo,
    LogLine,
    control_url_for,
    log_matches,
    parse_line,
    parse_since,
)
from rpdash.api.control.sse import sse_events
from rpdash.core.clock import FakeClock
from rpdash.core.errors import (
    AuthError,
    InsecureTransport,
    InvalidInput,
    NotFound,
    RateLimited,
    ServerError,
)
from rpdash.sim.server import SimServer

Factory = Callable[..., SimServer]


def cc(sim: SimServer, **kw: Any) -> ControlClient:
    kw.setdefault("max_retries", 0)
    return ControlClient(kw.pop("key", sim.api_key), sim.control_url, **kw)


def data(sim: SimServer) -> httpx.Client:
    return httpx.Client(base_url=sim.base_url, headers={"Authorization": f"Bearer {sim.api_key}"}, timeout=10)


def runsync(sim: SimServer, endpoint: str = "mock", **inp: Any) -> dict[str, Any]:
    with data(sim) as c:
        return c.post(f"/{endpoint}/runsync", json={"input": inp}).json()


async def drain(agen: AsyncIterator[LogLine], clock: FakeClock, *, step: float = 1.0,
                until: int | None = None, limit_s: float = 10.0) -> list[LogLine]:  # fmt: skip
    """Collect ``agen`` to its end (or ``until`` lines): whenever the network is quiet,
    move the client's clock by ``step`` so idle timers and reconnect delays fire."""
    got: list[LogLine] = []

    async def consume() -> None:
        async for line in agen:
            got.append(line)
            if until is not None and len(got) >= until:
                return

    task = asyncio.ensure_future(consume())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    last, quiet = -1, 0
    try:
        while not task.done():
            assert loop.time() < deadline, f"log tail did not end; got {[x.message for x in got]}"
            await asyncio.sleep(0.02)
            quiet = quiet + 1 if len(got) == last else 0
            last = len(got)
            if quiet >= 3:
                await clock.advance(step)
                quiet = 0
        task.result()
    finally:
        if not task.done():
            task.cancel()
        await agen.aclose()  # type: ignore[attr-defined]
    return got


# ------------------------------------------------------------------ endpoints


async def test_list_endpoints_gives_queue_endpoints_with_picker_fields(sim: SimServer) -> None:
    async with cc(sim) as c:
        eps = await c.list_endpoints()
        assert [e.id for e in eps] == ["mock", "mock-stream"]
        assert c.last_source == "rest"
        mock = eps[0]
        assert (mock.name, mock.type, mock.workers_min, mock.workers_max) == ("mock", "QUEUE", 0, 3)
        assert mock.idle_timeout_s == 5 and mock.gpus and mock.gpu_text.startswith("AMPERE_16")
        everything = await c.list_endpoints(queue_only=False)
        assert [e.id for e in everything if not e.queue] == ["lb-gateway"]
        one = await c.get_endpoint("mock-stream")
        assert one.id == "mock-stream" and one.source == "rest"
        with pytest.raises(NotFound):
            await c.get_endpoint("nope")


@pytest.mark.parametrize("status", [404, 500, 501])
async def test_graphql_fallback_when_rest_v2_is_not_there(sim: SimServer, status: int) -> None:
    sim.call(setattr, sim.control, "rest_status", status)
    async with cc(sim) as c:
        eps = await c.list_endpoints()
        assert [e.id for e in eps] == ["mock", "mock-stream"]  # QB only, LB filtered
        assert c.last_source == "graphql" and str(status) in (c.fallback_reason or "")
        assert eps[0].source == "graphql" and eps[0].workers_max == 3 and eps[0].idle_timeout_s == 5
        assert eps[0].gpus == ("AMPERE_16", "ADA_24")
        assert (await c.get_endpoint("mock")).source == "graphql"


async def test_no_fallback_on_a_rejected_key_and_the_key_is_never_shown(sim: SimServer) -> None:
    async with cc(sim, key="wrong-key-123") as c:
        with pytest.raises(AuthError) as err:
            await c.list_endpoints()
    assert "401" in str(err.value) and "GraphQL" not in str(err.value)
    assert "wrong-key-123" not in str(err.value)


async def test_both_apis_failing_says_so_in_one_line(sim: SimServer) -> None:
    sim.call(sim.control.configure, {"rest_status": 404, "graphql_enabled": False})
    async with cc(sim) as c:
        with pytest.raises(NotFound) as err:
            await c.list_endpoints()
    msg = str(err.value)
    assert "REST v2 before it" in msg and "\n" not in msg


async def test_graphql_auth_error_is_an_auth_error(sim: SimServer) -> None:
    sim.call(setattr, sim.control, "rest_status", 404)
    async with cc(sim, key="bad") as c:
        with pytest.raises(AuthError):
            await c.list_endpoints()


async def test_403_and_429_map_to_typed_errors(sim: SimServer) -> None:
    sim.set_faults(operation="serverless", error_rate=1.0, error_codes=[403])
    async with cc(sim) as c:
        with pytest.raises(AuthError, match="403.*access"):
            await c.list_endpoints()
    sim.set_faults(reset=True, operation="workers", throttle_rate=1.0, retry_after=7)
    async with cc(sim) as c:
        with pytest.raises(RateLimited) as err:
            await c.workers("mock")
    assert err.value.retry_after == 7


async def test_transient_errors_are_retried_on_the_clock(sim: SimServer) -> None:
    sim.set_faults(operation="workers", error_rate=1.0, error_codes=[503])
    clock = FakeClock()
    async with cc(sim, clock=clock, max_retries=2) as c:
        task = asyncio.ensure_future(c.workers("mock"))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if clock.pending:
                sim.set_faults(reset=True)  # the gateway recovers while we back off
                await clock.advance(5)
                break
        wl = await asyncio.wait_for(task, 5)
    assert wl.workers == []


async def test_refuses_plain_http_to_a_remote_host_and_a_missing_key() -> None:
    async with ControlClient("k", "http://example.com") as c:
        with pytest.raises(InsecureTransport):
            await c.list_endpoints()
    async with ControlClient(None, "http://127.0.0.1:9") as c:
        with pytest.raises(AuthError, match="no API key"):
            await c.workers("mock")
    async with ControlClient("k", "http://127.0.0.1:9") as c:
        with pytest.raises(InvalidInput):
            await c.workers("../etc")


def test_control_url_follows_the_data_plane() -> None:
    assert control_url_for("https://api.runpod.ai/v2") == "https://api.runpod.io"
    assert control_url_for("http://127.0.0.1:8123/v2") == "http://127.0.0.1:8123"
    assert control_url_for(None) == "https://api.runpod.io"


# ------------------------------------------------------------------ workers


async def test_workers_list_and_summary(sim: SimServer) -> None:
    runsync(sim)
    async with cc(sim) as c:
        wl = await c.workers("mock")
        assert len(wl.workers) == 1 and wl.summary["idle"] == 1 and wl.summary["total"] == 1
        w = wl.workers[0]
        assert w.status == "IDLE" and w.gpu_type == "AMPERE_16" and w.data_center
        assert w.version == 1 and not w.is_stale and w.started_epoch is not None
        assert (await c.workers("mock-stream")).workers == []
        with pytest.raises(NotFound):
            await c.workers("nope")


# ------------------------------------------------------------------ logs


async def test_worker_log_tail_levels_and_job_ids(sim: SimServer) -> None:
    job = runsync(sim, mock_logs=[{"level": "warn", "message": "disk almost full"},
                                  {"level": "error", "message": "retrying upload"}])  # fmt: skip
    clock = FakeClock()
    async with cc(sim, clock=clock) as c:
        wid = (await c.workers("mock")).workers[0].id
        lines = await drain(c.worker_logs("mock", wid, follow=False, idle=1.0), clock)
        msgs = [x.message for x in lines]
        assert msgs[0].startswith("Pulling image") and "worker ready" in msgs
        warn = next(x for x in lines if x.message == "disk almost full")
        assert warn.level == "warn" and warn.request_id == job["id"] and warn.source == "container"
        assert next(x for x in lines if x.message == "retrying upload").level == "error"
        assert all(x.worker_id == wid and x.ts is not None for x in lines)
        ids = [x.event_id for x in lines]  # opaque cursors: present, distinct, resumable
        assert all(ids) and len(set(ids)) == len(ids)

        last2 = await drain(c.worker_logs("mock", wid, tail=2, follow=False, idle=1.0), clock)
        assert [x.message for x in last2] == msgs[-2:]
        system = await drain(c.worker_logs("mock", wid, source="system", follow=False, idle=1.0), clock)
        assert system and all(x.source == "system" for x in system)

        # since: from the warn line's time on; Last-Event-ID: strictly after an id
        since = await drain(c.worker_logs("mock", wid, since=warn.ts_text, follow=False, idle=1.0), clock)
        assert since[0].ts is not None and warn.ts is not None and since[0].ts >= warn.ts
        assert all((x.ts or 0) >= warn.ts for x in since) and "disk almost full" in [x.message for x in since]
        assert not any(x.message.startswith("Pulling image") for x in since)  # 0.25 s earlier
        after = await drain(c.worker_logs("mock", wid, last_event_id=warn.event_id, follow=False, idle=1.0), clock)
        assert [x.message for x in after] == msgs[msgs.index("disk almost full") + 1:]


async def test_unknown_worker_is_not_found(sim: SimServer) -> None:
    async with cc(sim) as c:
        with pytest.raises(NotFound):
            async for _ in c.worker_logs("mock", "nosuchworker", follow=False):
                pass
        with pytest.raises(InvalidInput):
            async for _ in c.worker_logs("mock", "w", tail=9999):
                pass


async def test_follow_receives_new_lines_live(sim: SimServer) -> None:
    runsync(sim)
    async with cc(sim) as c:
        wid = (await c.workers("mock")).workers[0].id
        agen = c.worker_logs("mock", wid, tail=0, follow=True)
        got: list[str] = []

        async def consume() -> None:
            async for line in agen:
                got.append(line.message)
                if line.message == "fresh line":
                    return

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.1)  # let the stream open before the job runs
        await asyncio.to_thread(runsync, sim, mock_logs=[{"level": "info", "message": "fresh line"}])
        await asyncio.wait_for(task, 5)
        await agen.aclose()
    assert got[-1] == "fresh line" and not any("Pulling image" in m for m in got)  # tail=0: no backlog


async def test_dropped_stream_resumes_with_last_event_id(sim: SimServer) -> None:
    runsync(sim, mock_logs=[{"level": "info", "message": f"line {i}"} for i in range(7)])
    clock = FakeClock()
    async with cc(sim, clock=clock) as c:
        wid = (await c.workers("mock")).workers[0].id
        full = await drain(c.worker_logs("mock", wid, follow=False, idle=1.0), clock)
        sim.call(setattr, sim.control, "drop_logs_after", 2)  # every connection ends after 2 events
        opened = sim.call(lambda: sim.control.log_streams_opened)
        resumed = await drain(c.worker_logs("mock", wid, follow=True), clock, until=len(full))
    assert [x.event_id for x in resumed] == [x.event_id for x in full]  # nothing lost or repeated
    assert sim.call(lambda: sim.control.log_streams_opened) - opened >= len(full) // 2


async def test_follow_ends_when_the_worker_is_gone(sim_factory: Factory) -> None:
    sim = sim_factory(clock=FakeClock())
    with data(sim) as d:
        d.post("/mock/run", json={"input": {}})
    sim.advance(1)  # cold start 0.25 s, job done
    clock = FakeClock()
    async with cc(sim, clock=clock) as c:
        wid = (await c.workers("mock")).workers[0].id
        agen = c.worker_logs("mock", wid, tail=1, follow=True)
        got: list[LogLine] = []

        async def consume() -> None:
            async for line in agen:
                got.append(line)

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.1)
        sim.advance(10)  # idle timeout: the worker stops
        for _ in range(100):
            await asyncio.sleep(0.02)
            await clock.advance(1)  # the reconnect delay; then 404 -> the tail ends
            if task.done():
                break
        assert task.done(), "the tail did not end"
        task.result()
    assert got[-1].message == "worker stopped after idle timeout"


async def test_endpoint_logs_merge_every_worker_by_time(sim_factory: Factory) -> None:
    sim = sim_factory(clock=FakeClock())
    with data(sim) as d:
        for i in range(2):
            d.post("/mock/run", json={"input": {"mock_delay": 0.3, "mock_logs": [{"message": f"job {i}"}]}})
    sim.advance(1)  # two workers start (0.25 s), run a job each (0.3 s)
    clock = FakeClock()
    async with cc(sim, clock=clock) as c:
        wl = await c.workers("mock")
        assert len(wl.workers) == 2
        merged = await drain(c.endpoint_logs("mock", follow=False, idle=1.0), clock)
        assert {x.worker_id for x in merged} == {w.id for w in wl.workers}
        assert [x.ts for x in merged] == sorted(x.ts or 0 for x in merged)
        assert {"job 0", "job 1"} <= {x.message for x in merged}
        last3 = await drain(c.endpoint_logs("mock", tail=3, follow=False, idle=1.0), clock)
        assert [x.event_id for x in last3] == [x.event_id for x in merged][-3:]


# ------------------------------------------------------------------ pure helpers


@pytest.mark.parametrize(
    ("line", "level", "message", "rid"),
    [
        ('{"requestId": "j1", "message": "loading model", "level": "INFO"}', "info", "loading model", "j1"),
        ('{"requestId": null, "message": "oops", "level": "ERROR"}', "error", "oops", None),
        ("WARN   | test-1 | low memory", "warn", "test-1 | low memory", None),
        ("[DEBUG] tokens=12", "debug", "tokens=12", None),
        ("2026-08-01 12:00:00,123 ERROR: boom", "error", "boom", None),
        ('ts=1 level=warning msg="slow"', "warn", 'ts=1 level=warning msg="slow"', None),
        ("Traceback (most recent call last):", "error", "Traceback (most recent call last):", None),
        ("ValueError: bad input", "error", "ValueError: bad input", None),
        ("plain words", "info", "plain words", None),
        ("INFORMATION is not a level", "info", "INFORMATION is not a level", None),
    ],
)
def test_parse_line_reads_levels(line: str, level: str, message: str, rid: str | None) -> None:
    assert parse_line(line) == (level, message, rid)


def test_log_filters() -> None:
    line = LogLine.build("w1", {"source": "container", "ts": "2026-08-01T12:00:00Z",
                                "line": '{"requestId": "job-7", "message": "Disk FULL", "level": "WARN"}'}, "3")  # fmt: skip
    assert line.ts == 1785585600.0
    assert log_matches(line, level="info") and log_matches(line, level="warn")
    assert not log_matches(line, level="error")
    assert log_matches(line, grep="disk full") and not log_matches(line, grep="nope")
    assert log_matches(line, request_id="job-7") and not log_matches(line, request_id="job-8")
    assert not log_matches(line, source="system")
    with pytest.raises(InvalidInput):
        log_matches(line, level="loud")


def test_parse_since() -> None:
    now = 1785585600.0  # 2026-08-01T12:00:00Z
    assert parse_since("10m", now) == "2026-08-01T11:50:00.000Z"
    assert parse_since("2026-08-01T13:00:00+01:00", now) == "2026-08-01T12:00:00.000Z"
    assert parse_since(now, now) == "2026-08-01T12:00:00.000Z"
    with pytest.raises(InvalidInput):
        parse_since("yesterday", now)


async def test_sse_parser_follows_the_spec() -> None:
    async def lines() -> AsyncIterator[str]:
        for x in [": comment", "id: 7", "data: {\"a\":", "data: 1}", "", "retry: 2500", "",
                  "event: log", "data:x", "", "id: 9", "data: tail-without-blank"]:  # fmt: skip
            yield x

    evs = [e async for e in sse_events(lines())]
    assert (evs[0].id, evs[0].data) == ("7", '{"a":\n1}')
    assert evs[1].retry == 2500 and evs[1].data is None
    assert (evs[2].event, evs[2].data) == ("log", "x")
    assert (evs[3].id, evs[3].data) == ("9", "tail-without-blank")


def test_endpoint_info_from_both_shapes() -> None:
    rest = EndpointInfo.from_rest({"id": "e1", "name": "prod", "type": "QUEUE", "cpu": [{"flavor": "x"}],
                                   "workers": {"min": 1, "max": "4", "idleTimeout": 30}})  # fmt: skip
    assert rest.cpu and rest.gpu_text == "CPU" and rest.workers_max == 4
    gql = EndpointInfo.from_graphql({"id": "e2", "type": "LB", "gpuIds": "AMPERE_16, ADA_24", "gpuCount": 2})
    assert gql.type == "LOAD_BALANCER" and gql.name == "e2" and gql.gpu_text == "AMPERE_16, ADA_24 x2"


async def test_server_errors_are_typed(sim: SimServer) -> None:
    sim.set_faults(operation="workers", error_rate=1.0, error_codes=[502])
    async with cc(sim) as c:
        with pytest.raises(ServerError, match="502"):
            await c.workers("mock")


async def test_endpoint_follow_picks_up_new_workers_from_their_first_line(sim_factory: Factory) -> None:
    sim = sim_factory(clock=FakeClock())
    clock = FakeClock()
    async with cc(sim, clock=clock) as c:
        agen = c.endpoint_logs("mock", follow=True, refresh=5.0, idle=1.0)
        got: list[LogLine] = []

        async def consume() -> None:
            async for line in agen:
                got.append(line)
                if "job" in line.message and "COMPLETED" in line.message:
                    return

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.05)
        assert not got  # no worker yet: nothing to show
        with data(sim) as d:
            d.post("/mock/run", json={"input": {}})
        sim.advance(1)  # a worker starts and runs the job
        for _ in range(100):
            await clock.advance(5)  # the next look at the worker list
            await asyncio.sleep(0.02)
            if task.done():
                break
        await asyncio.wait_for(task, 5)
        await agen.aclose()
    assert got[0].message.startswith("Pulling image")  # the cold start is in view


def test_sim_control_admin_graphql_key_in_query_and_reserved_id(sim: SimServer) -> None:
    auth = {"Authorization": f"Bearer {sim.api_key}"}
    with httpx.Client(base_url=sim.url, timeout=5) as h:
        r = h.post("/_sim/control", json={"rest_status": 503, "drop_logs_after": 3}, headers=auth)
        assert r.json()["rest_status"] == 503 and r.json()["drop_logs_after"] == 3
        assert h.get("/v2/serverless", headers=auth).status_code == 503
        assert h.get("/v2/serverless").headers["content-type"] == "application/problem+json"  # 401
        q = {"query": "{ myself { endpoints { id } } }"}
        assert h.post(f"/graphql?api_key={sim.api_key}", json=q).status_code == 200
        assert h.post("/graphql?api_key=nope", json=q).status_code == 401
        assert "errors" in h.post("/graphql", json={"query": "{ pods { id } }"}, headers=auth).json()
        bad = h.post("/_sim/endpoints", json={"id": "serverless"}, headers=auth)
        assert bad.status_code == 400 and "reserved" in bad.json()["error"]
        assert h.get("/v2/mock/health", headers=auth).status_code == 200  # data plane unchanged
