"""Changing an endpoint's scaling: the control client (REST v2 PATCH, GraphQL saveEndpoint)
over real HTTP against the simulator, and the simulator's own PATCH semantics."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from rpdash.api.control import ControlClient, UpdateUncertain, WorkerCapRefused, cap_in
from rpdash.core.clock import FakeClock
from rpdash.core.errors import InvalidInput, Unreachable
from rpdash.sim.server import SimServer


def cc(sim: SimServer, **kw: Any) -> ControlClient:
    kw.setdefault("max_retries", 0)
    return ControlClient(sim.api_key, sim.control_url, **kw)


def patch(sim: SimServer, endpoint: str, body: Any) -> httpx.Response:
    with httpx.Client(base_url=sim.control_url, headers={"Authorization": f"Bearer {sim.api_key}"},
                      timeout=10) as c:  # fmt: skip
        return c.patch(f"/v2/serverless/{endpoint}", json=body)


def rest(sim: SimServer, endpoint: str) -> dict[str, Any]:
    return sim.call(sim.control.endpoint_rest, endpoint)


# ------------------------------------------------------------------ client, REST v2


async def test_sparse_patch_changes_only_what_was_asked_and_reads_it_back(sim: SimServer) -> None:
    before = rest(sim, "mock")
    async with cc(sim) as c:
        after = await c.update_endpoint("mock", workers_max=5, idle_timeout=30)
        assert c.update_source == "rest"
    assert (after.workers_min, after.workers_max, after.idle_timeout_s) == (0, 5, 30)
    now = rest(sim, "mock")
    assert now["workers"] == {"min": 0, "max": 5, "idleTimeout": 30}
    assert now["scaling"] == before["scaling"] and now["timeout"] == before["timeout"]
    assert sim.control.updates.patches == 1


async def test_explicit_zeros_are_sent(sim: SimServer) -> None:
    sim.call(sim.control.updates.apply, "mock", workers_min=2, workers_max=4)
    async with cc(sim) as c:
        after = await c.update_endpoint("mock", workers_min=0, workers_max=0)
    assert (after.workers_min, after.workers_max) == (0, 0)
    assert rest(sim, "mock")["workers"]["max"] == 0


async def test_scaler_value_alone_reads_the_type_first(sim: SimServer) -> None:
    async with cc(sim) as c:
        after = await c.update_endpoint("mock", scaler_value=9)
        assert (after.scaler_type, after.scaler_value) == ("QUEUE_DELAY", 9)
        switched = await c.update_endpoint("mock", scaler_type="request-count", scaler_value=2)
    assert (switched.scaler_type, switched.scaler_value) == ("REQUEST_COUNT", 2)
    assert rest(sim, "mock")["scaling"] == {"type": "REQUEST_COUNT", "requestCount": 2}


@pytest.mark.parametrize("kw, words", [
    ({"workers_min": 4, "workers_max": 2}, "must not be more than max"),
    ({"workers_min": 7}, r"must not be more than max workers \(3\)"),  # compared with the endpoint
    ({"workers_max": -1}, ">= 0"),
    ({"idle_timeout": 0}, "1 to 3600"),
    ({"idle_timeout": 3601}, "1 to 3600"),
    ({"scaler_value": 0}, "at least 1"),
    ({"scaler_type": "FASTEST", "scaler_value": 1}, "QUEUE_DELAY or REQUEST_COUNT"),
    ({"scaler_type": "REQUEST_COUNT", "scaler_value": 1, "idle_timeout": 10}, "no idle timeout"),
    ({}, "nothing to change"),
])  # fmt: skip
async def test_bad_values_are_refused_and_nothing_is_sent(sim: SimServer, kw: dict[str, Any],
                                                          words: str) -> None:  # fmt: skip
    before = rest(sim, "mock")
    async with cc(sim) as c:
        with pytest.raises(InvalidInput, match=words):
            await c.update_endpoint("mock", **kw)
    assert sim.control.updates.patches == 0 and sim.control.updates.saves == 0
    assert rest(sim, "mock") == before


# ------------------------------------------------------------------ client, GraphQL fallback


@pytest.mark.parametrize("status", [404, 405])
async def test_graphql_fallback_keeps_the_fields_not_asked(sim: SimServer, status: int) -> None:
    sim.call(sim.control.updates.apply, "mock", workers_min=1, idle_timeout=42,
             scaler=("QUEUE_DELAY", 6))  # fmt: skip
    sim.call(setattr, sim.control.updates, "patch_status", status)
    async with cc(sim) as c:
        after = await c.update_endpoint("mock", workers_max=7)
        assert c.update_source == "graphql"
    assert after.source == "graphql" and after.workers_max == 7
    # saveEndpoint resets what it is not given: the client echoed every field back
    assert (after.workers_min, after.idle_timeout_s, after.scaler_value) == (1, 42, 6)
    assert rest(sim, "mock")["workers"] == {"min": 1, "max": 7, "idleTimeout": 42}
    assert sim.control.updates.saves == 1


async def test_without_rest_v2_both_the_read_and_the_update_go_through_graphql(sim: SimServer) -> None:
    sim.call(setattr, sim.control, "rest_status", 404)
    async with cc(sim) as c:
        after = await c.update_endpoint("mock", workers_min=1)  # reads max to compare first
        assert c.update_source == "graphql" and (after.workers_min, after.workers_max) == (1, 3)
        with pytest.raises(InvalidInput, match="more than max workers"):
            await c.update_endpoint("mock", workers_max=0)
    assert sim.control.updates.patches == 0 and sim.control.updates.saves == 1


async def test_sim_save_endpoint_is_not_sparse(sim: SimServer) -> None:
    sim.call(sim.control.updates.apply, "mock", workers_min=1, idle_timeout=42)
    q = "mutation S($input: EndpointInput!) { saveEndpoint(input: $input) { id workersMax } }"
    with httpx.Client(base_url=sim.control_url, headers={"Authorization": f"Bearer {sim.api_key}"}) as c:
        r = c.post("/graphql", json={"query": q, "variables": {"input": {"id": "mock", "workersMax": 2}}})
    assert r.status_code == 200 and r.json()["data"]["saveEndpoint"]["workersMax"] == 2
    assert rest(sim, "mock")["workers"] == {"min": 0, "max": 2, "idleTimeout": 5}  # reset


# ------------------------------------------------------------------ client, lost answers


async def test_a_dropped_answer_is_not_sent_again_and_is_reread(sim: SimServer) -> None:
    sim.set_faults(endpoint="mock", operation="serverless", drop_rate=1.0, burst=1)
    async with cc(sim, max_retries=3) as c:
        with pytest.raises(UpdateUncertain) as err:
            await c.update_endpoint("mock", workers_max=0, workers_min=0)
    msg = str(err.value)
    assert "may have been applied; re-read the endpoint" in msg and "workers 0-0" in msg
    assert "(what was asked)" in msg
    assert err.value.endpoint is not None and err.value.endpoint.workers_max == 0
    assert sim.control.updates.patches == 1  # never sent twice


async def test_a_429_is_waited_out_on_the_clock_and_the_update_sent_once(sim: SimServer) -> None:
    sim.set_faults(endpoint="mock", operation="serverless", throttle_rate=1.0, retry_after=3, burst=1)
    clock = FakeClock()
    async with cc(sim, clock=clock, max_retries=2) as c:
        task = asyncio.ensure_future(c.update_endpoint("mock", workers_max=4))
        for _ in range(300):
            await asyncio.sleep(0.01)
            if clock.pending:
                break
        assert not task.done() and sim.control.updates.patches == 0  # refused, waiting 3 s
        await clock.advance(3)
        after = await asyncio.wait_for(task, 5)
    assert after.workers_max == 4 and sim.control.updates.patches == 1


async def test_an_unreachable_host_is_not_uncertain() -> None:
    async with ControlClient("k", "http://127.0.0.1:9", max_retries=0) as c:
        with pytest.raises(Unreachable) as err:
            await c.update_endpoint("mock", workers_max=1)
    assert not isinstance(err.value, UpdateUncertain) and "cannot reach" in str(err.value)


# ------------------------------------------------------------------ simulator PATCH


def test_sim_patch_rejects_unknown_keys_and_bad_values_with_422(sim: SimServer) -> None:
    r = patch(sim, "mock", {"workers": {"min": -1, "bogus": 1}, "type": "QUEUE"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    errors = r.json()["errors"]
    assert "$: additional properties 'type' not allowed" in errors
    assert "$.workers: additional properties 'bogus' not allowed" in errors
    assert any(e.startswith("$.workers.min") for e in errors)
    r = patch(sim, "mock", {"scaling": {"queueDelay": 3}})
    assert r.status_code == 422 and "$.scaling.type" in r.json()["errors"][0]
    assert rest(sim, "mock")["workers"]["min"] == 0


def test_sim_patch_rule_conflicts_are_400(sim: SimServer) -> None:
    r = patch(sim, "mock", {"workers": {"min": 5}})  # max stays 3
    assert r.status_code == 400 and "min (5)" in r.json()["detail"]
    r = patch(sim, "mock", {"scaling": {"type": "REQUEST_COUNT", "requestCount": 1},
                            "workers": {"idleTimeout": 9}})  # fmt: skip
    assert r.status_code == 400 and "REQUEST_COUNT" in r.json()["detail"]
    assert patch(sim, "nope", {"workers": {"max": 1}}).status_code == 404


def test_sim_patch_answers_the_whole_endpoint(sim: SimServer) -> None:
    r = patch(sim, "mock-stream", {"workers": {"max": 6}, "name": "streamer"})
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == "mock-stream" and body["name"] == "streamer" and body["workers"]["max"] == 6
    assert body["requestUrls"]["health"].endswith("/mock-stream/health")


# ------------------------------------------------------------------ the engine obeys (fake clock)


def _engine() -> tuple[Any, Any]:
    from rpdash.core.clock import FakeClock
    from rpdash.sim.control import ControlPlane
    from rpdash.sim.engine import EndpointConfig, Engine

    eng = Engine(FakeClock(), 0, rate_limits=False)
    eng.add_endpoint(EndpointConfig("e", workers_min=0, workers_max=2, cold_start=1.0, idle_timeout=60.0))
    return eng, ControlPlane(eng)


def _live(eng: Any) -> int:
    w = eng.health("e")["workers"]
    return sum(w[k] for k in ("idle", "initializing", "running", "throttled"))


def test_engine_max_zero_stops_idle_workers_and_starts_no_new_ones() -> None:
    eng, cp = _engine()
    for _ in range(2):
        eng.submit("e", {"input": {"mock_delay": 1}})
    eng.advance(5.0)
    assert eng.health("e")["workers"]["idle"] == 2 and eng.health("e")["jobs"]["completed"] == 2
    cp.updates.apply_rest("e", {"workers": {"min": 0, "max": 0}})
    assert _live(eng) == 0  # at once, not after the 60 s idle timeout
    job = eng.submit("e", {"input": {"mock_delay": 1}})
    eng.advance(30.0)
    assert job.status == "IN_QUEUE" and _live(eng) == 0
    cp.updates.apply_rest("e", {"workers": {"max": 2}})
    assert eng.health("e")["workers"]["initializing"] == 1  # the scaler starts one now
    eng.advance(5.0)
    assert job.status == "COMPLETED"


def test_engine_lowering_max_keeps_busy_workers_until_their_job_ends() -> None:
    eng, cp = _engine()
    busy = eng.submit("e", {"input": {"mock_delay": 10}})
    eng.submit("e", {"input": {"mock_delay": 1}})
    eng.advance(4.0)  # one worker busy, one idle again
    assert eng.health("e")["workers"] == {**eng.health("e")["workers"], "running": 1, "idle": 1}
    cp.updates.apply_rest("e", {"workers": {"max": 1}})
    assert eng.health("e")["workers"]["idle"] == 0 and eng.health("e")["workers"]["running"] == 1
    eng.advance(10.0)
    assert busy.status == "COMPLETED"


def test_engine_lowering_max_stops_busy_surplus_workers_after_their_job_despite_a_backlog() -> None:
    eng, cp = _engine()
    cp.updates.apply_rest("e", {"workers": {"max": 3}})
    for _ in range(12):
        eng.submit("e", {"input": {"mock_delay": 5}})
    eng.advance(3.0)
    assert eng.health("e")["workers"]["running"] == 3
    cp.updates.apply_rest("e", {"workers": {"max": 1}})
    assert eng.health("e")["workers"]["running"] == 3  # their jobs go on
    eng.advance(8.0)  # each finished its job: the two beyond max took no other one
    assert _live(eng) == 1 and eng.health("e")["jobs"]["inQueue"] > 0
    assert any("max workers lowered to 1" in line["message"] for line in eng.logs("e", tail=0))


# ------------------------------------------------------------------ the account's worker cap


def test_sim_refuses_max_above_the_account_cap_with_runpods_text(sim: SimServer) -> None:
    before = rest(sim, "mock")
    r = patch(sim, "mock", {"workers": {"max": 11}})  # the default scenario's cap is 10
    assert r.status_code == 400
    assert r.json()["detail"].startswith("Your worker concurrency cannot go beyond the maximum limit of (10).")
    assert rest(sim, "mock") == before  # nothing changed
    assert patch(sim, "mock", {"workers": {"max": 10}}).status_code == 200  # the cap itself is allowed
    q = "mutation S($input: EndpointInput!) { saveEndpoint(input: $input) { id workersMax } }"
    with httpx.Client(base_url=sim.control_url, headers={"Authorization": f"Bearer {sim.api_key}"}) as c:
        r = c.post("/graphql", json={"query": q, "variables": {"input": {"id": "mock", "workersMax": 12}}})
    assert "maximum limit of (10)" in r.json()["errors"][0]["message"]


@pytest.mark.parametrize("graphql", [False, True])
async def test_a_refusal_naming_the_cap_teaches_the_client(sim: SimServer, graphql: bool) -> None:
    if graphql:
        sim.call(setattr, sim.control.updates, "patch_status", 405)
    async with cc(sim) as c:
        c.account_cap.configured = 3  # RunPod's word wins over the setting
        assert c.account_cap.value == 3
        with pytest.raises(WorkerCapRefused, match=r"maximum limit of \(10\).*account's worker cap is 10") as err:
            await c.update_endpoint("mock", workers_max=20)
        assert err.value.cap == 10 and c.account_cap.value == 10
        assert "learned from RunPod" in c.account_cap.describe()
    assert rest(sim, "mock")["workers"]["max"] == 3


def test_cap_in_reads_runpods_text_only() -> None:
    text = ("graphql error: Your worker concurrency cannot go beyond the maximum limit of (20). "
            "Please contact support if you wish to scale past this number.")  # fmt: skip
    assert cap_in(text) == 20
    assert cap_in("workers.min (4) must not be greater than workers.max (2)") is None
    assert cap_in(None) is None
