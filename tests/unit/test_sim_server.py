"""The simulator over real HTTP on 127.0.0.1, driven with httpx as a client would.

Where time matters the server runs on a FakeClock (moved with ``sim.advance``) or a
ScaledClock (``time_scale``), so no test waits on a real interval longer than a fraction
of a second.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from rpdash.core.clock import FakeClock
from rpdash.core.errors import ConfigError
from rpdash.sim.server import SimServer, serve

JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}-u1$")
Factory = Callable[..., SimServer]


def client(sim: SimServer, key: str | None = "default", **kw: Any) -> httpx.Client:
    headers = {} if key is None else {"Authorization": f"Bearer {sim.api_key if key == 'default' else key}"}
    return httpx.Client(base_url=sim.base_url, headers=headers, timeout=kw.pop("timeout", 10), **kw)


def aclient(sim: SimServer, **kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=sim.base_url, headers={"Authorization": f"Bearer {sim.api_key}"},
                             timeout=kw.pop("timeout", 10), **kw)  # fmt: skip


def submitted(sim: SimServer, endpoint: str = "mock") -> int:
    return sim.call(lambda: sim.engine.endpoint(endpoint).submitted)


# ------------------------------------------------------------------ shapes of every route


def test_run_status_and_status_sync_shapes(sim: SimServer) -> None:
    with client(sim) as c:
        r = c.post("/mock/run", json={"input": {"mock_delay": 0.05, "mock_return": {"n": 1}}})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        ref = r.json()
        assert set(ref) == {"id", "status"} and ref["status"] == "IN_QUEUE"
        assert JOB_ID.match(ref["id"])
        first = c.get(f"/mock/status/{ref['id']}").json()
        assert first["id"] == ref["id"] and first["status"] in ("IN_QUEUE", "IN_PROGRESS")
        done = c.post(f"/mock/status-sync/{ref['id']}?wait=10000").json()
        assert done["status"] == "COMPLETED" and done["output"] == {"n": 1}
        assert isinstance(done["delayTime"], int) and done["executionTime"] == 50
        assert c.post(f"/mock/status/{ref['id']}").json() == done  # go-sdk POSTs status
        assert c.get(f"/mock/status-sync/{ref['id']}").json() == done  # JS GETs status-sync


def test_runsync_returns_the_terminal_job(sim: SimServer) -> None:
    with client(sim) as c:
        job = c.post("/mock/runsync", json={"input": {"mock_return": [1, "two"]}}).json()
        assert job["id"].startswith("sync-") and job["status"] == "COMPLETED"
        assert job["output"] == [1, "two"]
        failed = c.post("/mock/runsync", json={"input": {"mock_error": True}}).json()
        assert failed["status"] == "FAILED" and json.loads(failed["error"])["error_message"] == "Mock error"


def test_runsync_wait_expires_into_id_and_status(sim_factory: Factory) -> None:
    sim = sim_factory(time_scale=20)  # wait=1000 ms simulated = 50 ms real
    with client(sim) as c:
        t0 = time.perf_counter()
        r = c.post("/mock/runsync?wait=1000", json={"input": {"mock_delay": 600}})
        assert time.perf_counter() - t0 < 2
        body = r.json()
        assert set(body) == {"id", "status"} and body["status"] in ("IN_QUEUE", "IN_PROGRESS")
        assert c.get(f"/mock/status/{body['id']}").json()["status"] == "IN_PROGRESS"


async def test_runsync_held_on_fake_clock_until_time_moves(sim_factory: Factory) -> None:
    sim = sim_factory(clock=FakeClock())
    async with aclient(sim) as c:
        call = asyncio.ensure_future(c.post("/mock/runsync?wait=5000", json={"input": {"mock_delay": 2}}))
        while submitted(sim) == 0:
            await asyncio.sleep(0.005)
        await asyncio.to_thread(sim.advance, 2.25)  # cold start 0.25 s + 2 s of work
        job = (await asyncio.wait_for(call, 5)).json()
        assert job["status"] == "COMPLETED" and job["delayTime"] == 250 and job["executionTime"] == 2000


def test_stream_drains_in_batches_and_ends_with_terminal_status(sim: SimServer) -> None:
    with client(sim) as c:
        items = list(range(8))
        ref = c.post("/mock-stream/run", json={"input": {"mock_return": items, "mock_delay": 0.05}}).json()
        got: list[Any] = []
        replies = 0
        while True:
            method = c.get if replies % 2 else c.post  # python SDK GETs, go-sdk POSTs
            batch = method(f"/mock-stream/stream/{ref['id']}?wait=5000").json()
            replies += 1
            assert set(batch) == {"status", "stream"}
            assert all(set(chunk) == {"output"} for chunk in batch["stream"])
            got += [chunk["output"] for chunk in batch["stream"]]
            if batch["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"):
                break
        assert got == items  # nothing lost, nothing repeated
        assert c.get(f"/mock-stream/stream/{ref['id']}").json() == {"status": "COMPLETED", "stream": []}
        assert c.get(f"/mock-stream/status/{ref['id']}").json()["output"] == items


def test_stream_long_poll_returns_early_when_a_chunk_arrives(sim: SimServer) -> None:
    with client(sim) as c:
        ref = c.post("/mock-stream/run", json={"input": {"mock_return": ["a", "b"], "mock_delay": 0.4}}).json()
        t0 = time.perf_counter()
        batch = c.get(f"/mock-stream/stream/{ref['id']}?wait=30000").json()
        elapsed = time.perf_counter() - t0
        assert batch == {"status": "IN_PROGRESS", "stream": [{"output": "a"}]}
        assert 0.3 < elapsed < 3


def test_stream_long_poll_holds_for_wait_when_nothing_comes(sim_factory: Factory) -> None:
    sim = sim_factory(time_scale=20)
    with client(sim) as c:
        ref = c.post("/mock-stream/run", json={"input": {"mock_return": ["x"], "mock_delay": 1000}}).json()
        c.get(f"/mock-stream/status-sync/{ref['id']}?wait=1000")  # past the cold start
        t0 = time.perf_counter()
        batch = c.get(f"/mock-stream/stream/{ref['id']}").json()  # default hold 9 s simulated
        elapsed = time.perf_counter() - t0
        assert batch == {"status": "IN_PROGRESS", "stream": []}
        assert 0.4 < elapsed < 2.5


def test_stream_reader_that_gave_up_loses_no_chunks(sim: SimServer) -> None:
    with client(sim) as c:
        ref = c.post("/mock-stream/run", json={"input": {"mock_return": ["only"], "mock_delay": 0.6}}).json()
        with pytest.raises(httpx.ReadTimeout):
            c.get(f"/mock-stream/stream/{ref['id']}?wait=30000", timeout=0.3)
        time.sleep(0.6)  # the chunk is produced after the first reader left
        assert c.get(f"/mock-stream/stream/{ref['id']}").json() == {
            "status": "COMPLETED",
            "stream": [{"output": "only"}],
        }


def test_cancel_retry_purge_health_shapes(sim_factory: Factory) -> None:
    sim = sim_factory(clock=FakeClock())
    with client(sim) as c:
        ids = [c.post("/mock/run", json={"input": {"mock_delay": 5}}).json()["id"] for _ in range(5)]
        assert c.post(f"/mock/cancel/{ids[0]}").json() == {"id": ids[0], "status": "CANCELLED"}
        assert c.get(f"/mock/status/{ids[0]}").json()["status"] == "CANCELLED"
        assert c.post("/mock/purge-queue").json() == {"removed": 4, "status": "completed"}
        assert c.get(f"/mock/status/{ids[1]}").status_code == 404
        health = c.get("/mock/health").json()
        assert set(health) == {"jobs", "workers"}
        assert set(health["jobs"]) == {"completed", "failed", "inProgress", "inQueue", "retried"}
        assert set(health["workers"]) == {"idle", "initializing", "ready", "running", "throttled", "unhealthy"}
        assert health["jobs"]["inQueue"] == 0

        failed = c.post("/mock/run", json={"input": {"mock_error": True}}).json()["id"]
        sim.advance(1)
        assert c.get(f"/mock/status/{failed}").json()["status"] == "FAILED"
        assert c.post(f"/mock/retry/{failed}").json() == {"id": failed, "status": "IN_QUEUE"}
        assert c.get("/mock/health").json()["jobs"]["retried"] == 1
        r = c.post(f"/mock/retry/{ids[0]}")  # CANCELLED: not retryable
        assert r.status_code == 400 and "CANCELLED" in r.json()["error"]
        assert c.post("/mock/retry/no-such-job").status_code == 404


# ------------------------------------------------------------------ auth


def test_auth_bearer_and_bare_keys_accepted_others_401(sim: SimServer) -> None:
    with httpx.Client(base_url=sim.base_url, timeout=5) as c:
        for value in (f"Bearer {sim.api_key}", f"bearer {sim.api_key}", str(sim.api_key)):
            assert c.get("/mock/health", headers={"authorization": value}).status_code == 200
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "nope"}):
            r = c.get("/mock/health", headers=headers)
            assert r.status_code == 401 and "unauthorized" in r.json()["error"]
            assert sim.api_key not in r.text
        assert httpx.get(sim.url + "/_sim/faults", timeout=5).status_code == 401


def test_auth_disabled_with_no_key(sim_factory: Factory) -> None:
    sim = sim_factory(api_key=None)
    with httpx.Client(base_url=sim.base_url, timeout=5) as c:
        assert c.get("/mock/health").status_code == 200


# ------------------------------------------------------------------ error codes


def test_404s(sim_factory: Factory) -> None:
    sim = sim_factory(clock=FakeClock())
    with client(sim) as c:
        assert c.get("/nope/health").status_code == 404
        # RunPod's 404 bodies are undocumented: by default every one says the same
        assert c.get("/mock/status/no-such-job").json() == {"error": "not found"}
        assert c.get("/nope/status/no-such-job").json() == {"error": "not found"}
        assert c.post("/mock/frobnicate").status_code == 404
        assert c.get("/mock/status/").status_code == 404
        assert httpx.get(sim.url + "/v1/mock/health", timeout=5).status_code == 404
        job = c.post("/mock/run", json={"input": {}}).json()["id"]
        sim.advance(1)
        assert c.get(f"/mock/status/{job}").status_code == 200
        sim.advance(30 * 60)  # result retention of /run jobs
        assert c.get(f"/mock/status/{job}").status_code == 404
        assert c.get(f"/mock/stream/{job}").status_code == 404


@pytest.mark.parametrize(
    "content",
    [
        b'{"inputs": {}}',
        b'{"input": "text"}',
        b'{"input": {}, "policy": {"executionTimeout": 10}}',
        b"{not json",
        b'{"input": {"x": NaN}}',
        b"",
        b"[1, 2]",
    ],
)
def test_400_for_a_body_without_object_input(sim: SimServer, content: bytes) -> None:
    with client(sim) as c:
        r = c.post("/mock/run", content=content, headers={"content-type": "application/json"})
        assert r.status_code == 400 and isinstance(r.json()["error"], str)


def test_400_for_bad_query_parameters(sim: SimServer) -> None:
    with client(sim) as c:
        job = c.post("/mock/run", json={"input": {}}).json()["id"]
        assert c.get(f"/mock/status-sync/{job}?wait=soon").status_code == 400
        assert c.get(f"/mock/status/{job}?ttl=abc").status_code == 400
        assert c.get(f"/mock/status/{job}?ttl=60000").status_code == 200


def test_413_over_payload_limits_10mb_run_20mb_runsync(sim: SimServer) -> None:
    def body(size: int) -> bytes:
        head, tail = b'{"input": {"blob": "', b'"}}'
        return head + b"x" * (size - len(head) - len(tail)) + tail

    with client(sim, timeout=30) as c:
        r = c.post("/mock/run", content=body(10_000_001))
        assert r.status_code == 413 and "10000000" in r.json()["error"]
        assert c.post("/mock/run", content=body(10_000_000)).status_code == 200
        assert c.post("/mock/runsync", content=body(20_000_001)).status_code == 413
        r = c.post("/mock/runsync?wait=10000", content=body(15_000_000))
        assert r.status_code == 200 and r.json()["status"] == "COMPLETED"
        assert c.get("/mock/health").status_code == 200  # the connection is still usable


def test_405_for_wrong_methods(sim: SimServer) -> None:
    with client(sim) as c:
        for method, path, allow in (
            ("GET", "/mock/run", "POST"),
            ("GET", "/mock/runsync", "POST"),
            ("POST", "/mock/health", "GET"),
            ("GET", "/mock/cancel/x", "POST"),
            ("GET", "/mock/retry/x", "POST"),
            ("GET", "/mock/purge-queue", "POST"),
            ("DELETE", "/mock/status/x", "GET, POST"),
        ):
            r = c.request(method, path)
            assert r.status_code == 405, (method, path)
            assert r.headers["allow"] == allow and "not allowed" in r.json()["error"]


def test_429_with_retry_after_under_a_small_limit(sim_factory: Factory) -> None:
    sim = sim_factory(clock=FakeClock())
    sim.set_rate_limit("health", 3, 10.0)
    with client(sim) as c:
        assert [c.get("/mock/health").status_code for _ in range(3)] == [200] * 3
        sim.advance(4)
        r = c.get("/mock/health")
        assert r.status_code == 429 and r.headers["retry-after"] == "6"
        assert c.get("/mock-stream/health").status_code == 200  # per endpoint
        sim.advance(6)
        assert c.get("/mock/health").status_code == 200


def test_purge_queue_documented_limit_2_per_10s(sim_factory: Factory) -> None:
    sim = sim_factory(clock=FakeClock())
    with client(sim) as c:
        assert [c.post("/mock/purge-queue").status_code for _ in range(3)] == [200, 200, 429]
        assert c.post("/mock/purge-queue").headers["retry-after"] == "10"


async def test_429_over_the_concurrency_bound(sim_factory: Factory) -> None:
    sim = sim_factory(clock=FakeClock())
    sim.set_rate_limit("status-sync", 100, 10.0, concurrent=1)
    async with aclient(sim) as c:
        job = (await c.post("/mock/run", json={"input": {"mock_delay": 50}})).json()["id"]
        held = asyncio.ensure_future(c.get(f"/mock/status-sync/{job}?wait=60000"))
        while sim.call(lambda: sim.engine.limiter._inflight.get(("mock", "status-sync"), 0)) == 0:
            await asyncio.sleep(0.005)
        r = await c.get(f"/mock/status-sync/{job}?wait=60000")
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        await asyncio.to_thread(sim.advance, 60)  # the job ends at 50.25 s: the poll returns then
        done = (await asyncio.wait_for(held, 5)).json()
        assert done["status"] == "COMPLETED" and done["executionTime"] == 50_000


# ------------------------------------------------------------------ faults


def test_fault_5xx_share_on_one_operation_only(sim: SimServer) -> None:
    sim.set_faults(operation="health", error_rate=1.0, error_codes=[502, 503])
    with client(sim) as c:
        codes = {c.get("/mock/health").status_code for _ in range(20)}
        assert codes == {502, 503}
        r = c.get("/mock/health")
        assert r.json() == {"error": "internal server error"}
        assert c.post("/mock/run", json={"input": {}}).status_code == 200


def test_fault_shares_follow_the_seed(sim_factory: Factory) -> None:
    def pattern(seed: int) -> list[int]:
        sim = sim_factory(seed=seed)
        sim.set_faults(error_rate=0.5, error_codes=[500])
        with client(sim) as c:
            return [c.get("/mock/health").status_code for _ in range(40)]

    first = pattern(7)
    assert first == pattern(7)
    assert 8 <= first.count(500) <= 32 and set(first) == {200, 500}


def test_fault_garbage_and_wrong_shape_bodies(sim: SimServer) -> None:
    with client(sim) as c:
        sim.set_faults(garbage_rate=1.0)
        for _ in range(5):
            r = c.get("/mock/health")
            assert r.status_code == 200
            with pytest.raises(ValueError):
                json.loads(r.content)
        sim.set_faults(wrong_shape_rate=1.0)
        for _ in range(5):
            body = c.get("/mock/health").json()
            assert not (isinstance(body, dict) and isinstance(body.get("jobs"), dict))


def test_fault_dropped_connection_after_the_operation_ran(sim: SimServer) -> None:
    sim.set_faults(operation="run", drop_rate=1.0)
    with client(sim) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.post("/mock/run", json={"input": {}})
        assert submitted(sim) == 1  # the job exists; only the answer was lost
        assert c.get("/mock/health").status_code == 200


def test_fault_429_with_and_without_retry_after(sim: SimServer) -> None:
    with client(sim) as c:
        sim.set_faults(throttle_rate=1.0, retry_after=2)
        r = c.get("/mock/health")
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        sim.set_faults(throttle_rate=1.0, retry_after=None)
        r = c.get("/mock/health")
        assert r.status_code == 429 and "retry-after" not in r.headers


def test_fault_latency(sim: SimServer) -> None:
    sim.set_faults(endpoint="mock", latency=0.3)
    with client(sim) as c:
        t0 = time.perf_counter()
        assert c.get("/mock/health").status_code == 200
        assert time.perf_counter() - t0 >= 0.3
        t0 = time.perf_counter()
        c.get("/mock-stream/health")
        assert time.perf_counter() - t0 < 0.3


def test_faults_change_at_run_time_through_the_admin_route(sim: SimServer) -> None:
    with client(sim) as c, httpx.Client(base_url=sim.url, timeout=5,
                                        headers={"Authorization": str(sim.api_key)}) as admin:  # fmt: skip
        assert c.get("/mock/health").status_code == 200
        r = admin.post("/_sim/faults", json={"endpoint": "mock", "error_rate": 1.0, "error_codes": [500]})
        assert r.status_code == 200 and r.json()["faults"][0]["endpoint"] == "mock"
        assert c.get("/mock/health").status_code == 500
        assert c.get("/mock-stream/health").status_code == 200
        assert admin.post("/_sim/faults", json={"error_rate": 2}).status_code == 400
        assert admin.delete("/_sim/faults").json() == {"faults": []}
        assert c.get("/mock/health").status_code == 200
        sim.set_faults(error_rate=1.0)
        assert c.get("/mock/health").status_code >= 500
        sim.set_faults(reset=True)
        assert c.get("/mock/health").status_code == 200


async def test_flaky_scenario_injects_faults(sim_factory: Factory) -> None:
    sim = sim_factory(scenario="flaky", seed=1)

    async def one(c: httpx.AsyncClient) -> bool:
        try:
            r = await c.get("/mock/health")
            return r.status_code == 200 and isinstance(r.json(), dict) and "jobs" in r.json()
        except (httpx.HTTPError, ValueError):
            return False

    async with aclient(sim, limits=httpx.Limits(max_connections=20)) as c:
        results = await asyncio.gather(*(one(c) for _ in range(80)))
    assert results.count(True) > 40 and results.count(False) > 5


# ------------------------------------------------------------------ admin, lifecycle


def test_admin_scenario_endpoints_workers_and_logs(sim: SimServer) -> None:
    with httpx.Client(base_url=sim.url + "/_sim", timeout=5,
                      headers={"Authorization": f"Bearer {sim.api_key}"}) as admin, client(sim) as c:  # fmt: skip
        assert admin.get("/scenario").json()["endpoints"] == ["mock", "mock-stream"]
        c.post("/mock/runsync", json={"input": {"mock_logs": [{"level": "info", "message": "hi"}]}})
        workers = admin.get("/endpoints/mock/workers").json()
        assert workers["workers"][0]["status"] in ("IDLE", "RUNNING")
        lines = admin.get("/endpoints/mock/logs").json()["lines"]
        assert any(line["message"] == "hi" for line in lines)
        r = admin.post("/endpoints", json={"id": "extra", "workers_min": 1, "workers_max": 1})
        assert r.status_code == 200 and r.json()["health"]["workers"]["idle"] == 1
        assert c.post("/extra/runsync", json={"input": {}}).json()["output"] == "Hello World!"
        assert admin.post("/endpoints", json={"id": "bad", "handler": "nope"}).status_code == 400
        info = admin.post("/scenario", json={"name": "demo"}).json()
        assert "llm-chat" in info["endpoints"] and c.get("/mock/health").status_code == 404
        assert sim.endpoints == info["endpoints"]
        assert c.get("/llm-chat/health").status_code == 200
        assert admin.post("/scenario", json={"name": "nope"}).status_code == 400
        assert admin.get("/stats").json()["requests"] > 0


def test_load_scenario_with_rate_limits_off(sim: SimServer) -> None:
    sc = sim.load_scenario("backlog", rate_limits=False)
    assert sim.endpoints == sc.endpoint_ids == ["backlog", "mock"]
    with client(sim) as c:
        assert c.get("/backlog/health").json()["jobs"]["inQueue"] == 400
        assert {c.post("/mock/purge-queue").status_code for _ in range(5)} == {200}


def test_many_servers_start_and_stop_fast(sim_factory: Factory) -> None:
    t0 = time.perf_counter()
    sims = [sim_factory(seed=i) for i in range(4)]
    assert len({s.port for s in sims}) == 4
    for s in sims:
        with client(s) as c:
            assert c.get("/mock/health").status_code == 200
    for s in sims:
        s.stop()
    assert time.perf_counter() - t0 < 3


def test_stop_answers_pending_long_polls_quickly(sim_factory: Factory) -> None:
    sim = sim_factory()
    with client(sim) as c:
        ref = c.post("/mock/run", json={"input": {"mock_delay": 100}}).json()
        import threading

        result: dict[str, Any] = {}

        def poll() -> None:
            try:
                result["r"] = c.get(f"/mock/status-sync/{ref['id']}?wait=60000")
            except httpx.HTTPError as exc:
                result["r"] = exc

        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.2)
        t0 = time.perf_counter()
        sim.stop()
        th.join(5)
        assert time.perf_counter() - t0 < 2 and "r" in result


def test_refuses_non_loopback_hosts() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        SimServer(host="0.0.0.0")
    with pytest.raises(ConfigError, match="loopback"):
        serve(host="192.0.2.10", port=0)
    assert SimServer(host="0.0.0.0", allow_remote=True).host == "0.0.0.0"  # not started
    with pytest.raises(ConfigError, match="scenario"):
        SimServer(scenario="nope")


def test_busy_port_is_a_one_line_config_error(sim: SimServer) -> None:
    with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{sim.port}") as exc:
        SimServer(port=sim.port).start()
    assert "\n" not in str(exc.value)
