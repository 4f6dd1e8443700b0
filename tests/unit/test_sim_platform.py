"""Platform behaviours of the simulator on a FakeClock: rolling releases, webhooks, idle
endpoint cut-backs, REST v2 worker placement fields, log cursors and 404 bodies."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from rpdash.core.clock import FakeClock
from rpdash.sim.control import ControlPlane
from rpdash.sim.control_logs import parse_event_id
from rpdash.sim.engine import EndpointConfig, Engine


def make(*cfgs: EndpointConfig) -> Engine:
    eng = Engine(FakeClock(), 0, rate_limits=False)
    for c in cfgs:
        eng.add_endpoint(c)
    return eng


def cfg(eid: str = "e", **kw: Any) -> EndpointConfig:
    base: dict[str, Any] = {"workers_min": 2, "workers_max": 3, "cold_start": 1.0, "idle_timeout": 60.0}
    base.update(kw)
    return EndpointConfig(eid, **base)


def stale_flags(eng: Engine) -> list[tuple[str, bool]]:
    ws = ControlPlane(eng).workers_rest("e")["workers"]
    return sorted((w["status"], w["isStale"]) for w in ws)


# ---------------------------------------------------------------- 8. rolling releases


def test_release_rolls_out_worker_by_worker_and_marks_outdated_workers_stale() -> None:
    eng = make(cfg())
    assert stale_flags(eng) == [("IDLE", False), ("IDLE", False)]
    assert eng.release("e") == 2
    # one new worker starts; the two old ones are outdated but still there
    assert stale_flags(eng) == [("IDLE", True), ("IDLE", True), ("INITIALIZING", False)]
    rel = ControlPlane(eng).releases_rest("e")
    assert rel["endpointVersion"] == 2 and rel["rollout"]["inProgress"] is True
    assert [r["version"] for r in rel["releases"]] == [2, 1]
    eng.advance(1.0)  # it is ready: one old worker goes, the next new one starts
    assert stale_flags(eng) == [("IDLE", False), ("IDLE", True), ("INITIALIZING", False)]
    eng.advance(1.0)
    assert stale_flags(eng) == [("IDLE", False), ("IDLE", False)]
    rollout = ControlPlane(eng).releases_rest("e")["rollout"]
    assert rollout == {"inProgress": False, "workersOnLatest": 2, "workersTotal": 2, "percentOnLatest": 100}


def test_running_outdated_worker_finishes_its_job_before_it_goes() -> None:
    eng = make(cfg(workers_min=1))
    job = eng.submit("e", {"input": {"mock_delay": 5, "mock_return": "ok"}})
    eng.advance(0.5)
    eng.release("e")
    eng.advance(2)  # the new worker is ready; the old one is busy: it is kept until done
    assert eng.view(job)["status"] == "IN_PROGRESS"
    assert stale_flags(eng) == [("IDLE", False), ("RUNNING", True)]
    eng.advance(3)
    assert eng.view(job)["status"] == "COMPLETED"
    assert stale_flags(eng) == [("IDLE", False)]


def test_bad_release_crash_loops_while_outdated_workers_keep_serving() -> None:
    eng = make(cfg(unhealthy_time=100.0, crashloop_limit=1000))
    eng.release("e", bad=True)
    eng.advance(3.5)  # new workers fail their start-up checks, one after another
    h = eng.health("e")["workers"]
    assert h["unhealthy"] == 3 and h["idle"] == 2
    assert all(w["isStale"] for w in ControlPlane(eng).workers_rest("e")["workers"] if w["status"] == "IDLE")
    job = eng.submit("e", {"input": {"mock_delay": 1, "mock_return": "served"}})
    eng.advance(1.5)
    v = eng.view(job)
    assert v["status"] == "COMPLETED" and v["output"] == "served"
    assert eng.endpoint("e").workers[v["workerId"]].version == 1


# ---------------------------------------------------------------- 7. webhooks


def _serve_webhooks(statuses: list[int], url: str, *, status: str = "ok") -> tuple[Engine, list[Any]]:
    calls: list[Any] = []

    async def main() -> Engine:
        eng = make(cfg(workers_min=1))
        eng.attach(asyncio.get_running_loop())
        answers = iter(statuses)

        async def poster(u: str, body: dict[str, Any]) -> int:
            calls.append((eng.now(), u, body))
            return next(answers)

        eng.webhook_poster = poster  # type: ignore[method-assign]
        inp: dict[str, Any] = {"mock_delay": 1, "mock_return": "r"}
        if status == "fail":
            inp["mock_error"] = True
        eng.submit("e", {"input": inp, "webhook": url})
        for _ in range(5):
            eng.advance(10.5 if calls else 1.5)
            for _ in range(5):
                await asyncio.sleep(0)
        eng.close()
        return eng

    return asyncio.run(main()), calls


def test_webhook_posts_the_job_once_when_it_finishes() -> None:
    eng, calls = _serve_webhooks([200], "http://127.0.0.1:9/hook")
    assert len(calls) == 1
    _, url, body = calls[0]
    assert url == "http://127.0.0.1:9/hook"
    assert body["status"] == "COMPLETED" and body["output"] == "r" and "executionTime" in body


def test_webhook_is_retried_twice_ten_seconds_apart() -> None:
    eng, calls = _serve_webhooks([500, 503, 502, 200], "http://localhost:9/hook", status="fail")
    assert len(calls) == 3  # one try and two retries, no more
    job = next(iter(eng.endpoint("e").jobs.values()))
    t = [a["at"] for a in job.webhook_log]
    assert t[1] - t[0] == pytest.approx(10.0) and t[2] - t[1] == pytest.approx(10.0)
    assert [a["status"] for a in job.webhook_log] == [500, 503, 502]
    assert all(c[2]["status"] == "FAILED" for c in calls)


def test_webhook_to_a_non_loopback_url_is_stored_not_sent() -> None:
    eng, calls = _serve_webhooks([200], "https://example.com/hook")
    assert calls == []
    job = next(iter(eng.endpoint("e").jobs.values()))
    assert job.webhook == "https://example.com/hook" and job.webhook_log[0]["sent"] is False


# ---------------------------------------------------------------- 9. idle cut-back, placement, logs

DAY = 24 * 3600.0


def test_idle_endpoint_max_workers_cut_to_two_then_zero() -> None:
    eng = make(cfg(workers_min=0, workers_max=5))
    eng.advance(2 * DAY)
    eng.submit("e", {"input": {"mock_delay": 1}})  # a request restarts the count
    eng.advance(2.9 * DAY)
    assert eng.endpoint("e").cfg.workers_max == 5
    eng.advance(0.2 * DAY)  # 3 days after the request
    assert eng.endpoint("e").cfg.workers_max == 2
    assert eng.endpoint("e").notices[-1]["kind"] == "idle"
    eng.advance(4 * DAY)  # 7 days after it
    assert eng.endpoint("e").cfg.workers_max == 0
    assert ControlPlane(eng).endpoint_rest("e")["workers"]["max"] == 0


def test_worker_placement_fields_are_null_until_placed() -> None:
    eng = make(cfg(workers_min=0, capacity_short_for=30.0))
    eng.submit("e", {"input": {"mock_delay": 100}})
    eng.advance(1)
    (w,) = ControlPlane(eng).workers_rest("e")["workers"]
    assert w["status"] == "THROTTLED"
    assert (w["gpuTypeId"], w["dataCenterId"], w["uptimeSeconds"], w["startedAt"]) == (None,) * 4
    eng.advance(29.5)  # placed at 30: initializing, not started
    (w,) = ControlPlane(eng).workers_rest("e")["workers"]
    assert w["status"] == "INITIALIZING" and w["gpuTypeId"] and w["dataCenterId"]
    assert w["startedAt"] is None
    eng.advance(1)
    (w,) = ControlPlane(eng).workers_rest("e")["workers"]
    assert w["startedAt"] is not None


def _scope(query: str = "", last_event_id: str | None = None) -> dict[str, Any]:
    headers = [(b"last-event-id", last_event_id.encode())] if last_event_id else []
    return {"query_string": query.encode(), "headers": headers}


def test_log_event_ids_as_timestamp_cursors_and_tail_ignored_with_since() -> None:
    eng = make(cfg(workers_min=1))
    ep = eng.endpoint("e")
    (wid,) = ep.workers
    for i in range(4):
        eng.advance(1)
        eng._log(ep, ep.workers[wid], "info", f"line {i}")
    cp = ControlPlane(eng)
    entry = ep.workers[wid].logs[-1]
    raw = cp.sse_event(entry, cursor=True).decode()
    cursor = re.match(r"id: (\S+)\n", raw).group(1)  # type: ignore[union-attr]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/\d{12}", cursor)
    assert parse_event_id(cursor) == (entry["seq"], None)
    lines, _, _ = cp._select(_scope("tail=1"), ep, wid)
    assert [e["message"] for e in lines] == ["line 3"]
    since = ep.workers[wid].logs[-3]
    from rpdash.sim.control_logs import rfc3339

    lines, _, _ = cp._select(_scope(f"tail=1&since={rfc3339(since['ts'])}"), ep, wid)
    assert [e["message"] for e in lines] == ["line 1", "line 2", "line 3"]  # tail ignored
    prev = ep.workers[wid].logs[-2]
    lines, _, _ = cp._select(_scope("tail=5000&since=2000-01-01T00:00:00Z",
                                    cp.sse_event(prev, True).decode().split()[1]), ep, wid)  # fmt: skip
    assert [e["message"] for e in lines] == ["line 3"]  # Last-Event-ID wins over both


# ---------------------------------------------------------------- 11. 404 bodies


def test_neutral_404_gives_unknown_job_and_unknown_endpoint_the_same_body() -> None:
    import httpx

    from rpdash.sim.app import create_app
    from rpdash.sim.faults import Faults

    async def main() -> list[tuple[int, Any]]:
        eng = make(cfg())
        app = create_app(eng, Faults(0), None)
        out = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as c:
            for neutral in (False, True):
                await c.post("/_sim/control", json={"neutral_404": neutral})
                for path in ("/v2/e/status/nope-u1", "/v2/nope/status/nope-u1", "/v2/nope/health"):
                    r = await c.get(path)
                    out.append((r.status_code, r.json()))
        return out

    out = asyncio.run(main())
    assert [code for code, _ in out] == [404] * 6
    assert [b["error"] for _, b in out[:2]] == ["job nope-u1 not found", "endpoint nope not found"]
    assert [b for _, b in out[3:]] == [{"error": "not found"}] * 3


def test_webhook_reaches_a_loopback_receiver_over_http() -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from rpdash.sim.server import SimServer

    got: list[dict[str, Any]] = []
    arrived = threading.Event()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            got.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.end_headers()
            arrived.set()

        def log_message(self, *args: Any) -> None:
            pass

    rx = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=rx.serve_forever, daemon=True).start()
    try:
        with SimServer(clock=FakeClock(), api_key=None) as sim:
            url = f"http://127.0.0.1:{rx.server_address[1]}/done"
            job = sim.call(sim.engine.submit, "mock", {"input": {"mock_return": 7}, "webhook": url})
            sim.advance(2)
            assert arrived.wait(10)
            sim.advance(30)  # a 200 answer: no retry
    finally:
        rx.shutdown()
    assert len(got) == 1 and got[0]["id"] == job.id
    assert got[0]["status"] == "COMPLETED" and got[0]["output"] == 7


def test_admin_routes_publish_a_release_and_start_a_shortage() -> None:
    import httpx

    from rpdash.sim.app import create_app
    from rpdash.sim.faults import Faults

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        eng = make(cfg())
        app = create_app(eng, Faults(0), None)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as c:
            cap = (await c.post("/_sim/endpoints/e/capacity", json={"short_for": None})).json()
            rel = (await c.post("/_sim/endpoints/e/release", json={"bad": True})).json()
        return rel, cap

    rel, cap = asyncio.run(main())
    assert cap["version"] == 1 and cap["health"]["workers"]["idle"] == 2
    # the release's first new worker finds no GPU: throttled, the outdated two still idle
    assert rel["version"] == 2 and rel["health"]["workers"] | {"ready": 0} == {
        "idle": 2, "initializing": 0, "ready": 0, "running": 0, "throttled": 1, "unhealthy": 0}
