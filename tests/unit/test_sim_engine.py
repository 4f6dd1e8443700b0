"""The simulator engine on a FakeClock: exact times, no sleeps, no sockets.

Each test builds an Engine with one or two endpoints, submits jobs as /run would, moves
time with ``engine.advance`` and checks what a client would see (job objects, health).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from rpdash.core.clock import FakeClock
from rpdash.sim import worker
from rpdash.sim.engine import (
    BadRequestError,
    EndpointConfig,
    Engine,
    NotFoundError,
    QueueFullError,
    SimJob,
)
from rpdash.sim.faults import Faults
from rpdash.sim.scenarios import apply_scenario, scenario_names


def make(*cfgs: EndpointConfig, seed: int = 0, rate_limits: bool = False, **kw: Any) -> Engine:
    eng = Engine(FakeClock(), seed, rate_limits=rate_limits, **kw)
    for cfg in cfgs:
        eng.add_endpoint(cfg)
    return eng


def ep(eid: str = "e", **kw: Any) -> EndpointConfig:
    base: dict[str, Any] = {"workers_min": 1, "workers_max": 1, "cold_start": 0.0, "idle_timeout": 5.0}
    base.update(kw)
    return EndpointConfig(eid, **base)


def run(eng: Engine, eid: str = "e", policy: dict[str, Any] | None = None, sync: bool = False,
        **inp: Any) -> SimJob:  # fmt: skip
    body: dict[str, Any] = {"input": inp}
    if policy:
        body["policy"] = policy
    return eng.submit(eid, body, sync=sync)


def st(eng: Engine, job: SimJob) -> dict[str, Any]:
    """What /status would answer (NotFoundError when gone)."""
    eng.sync()
    return eng.view(eng.job(job.endpoint_id, job.id))


def workers(eng: Engine, eid: str = "e") -> dict[str, int]:
    return eng.health(eid)["workers"]


def jobs(eng: Engine, eid: str = "e") -> dict[str, int]:
    return eng.health(eid)["jobs"]


@pytest.fixture(autouse=True)
def _no_engine_errors(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Fail any test in which an engine event callback raised."""
    created: list[Engine] = []
    orig = Engine.__init__

    def init(self: Engine, *a: Any, **k: Any) -> None:
        orig(self, *a, **k)
        created.append(self)

    monkeypatch.setattr(Engine, "__init__", init)
    yield
    for eng in created:
        assert eng.errors == []


# ------------------------------------------------------------------ queue order


def test_fifo_one_worker_runs_jobs_in_submission_order() -> None:
    eng = make(ep())
    a, b, c = (run(eng, mock_delay=1, mock_return=n) for n in "abc")
    assert eng.ref(a) == {"id": a.id, "status": "IN_QUEUE"}  # /run answers IN_QUEUE
    eng.advance(0)
    assert [st(eng, j)["status"] for j in (a, b, c)] == ["IN_PROGRESS", "IN_QUEUE", "IN_QUEUE"]
    eng.advance(3)
    views = [st(eng, j) for j in (a, b, c)]
    assert [v["output"] for v in views] == ["a", "b", "c"]
    assert [v["delayTime"] for v in views] == [0, 1000, 2000]
    assert [v["executionTime"] for v in views] == [1000, 1000, 1000]


def test_low_priority_jobs_wait_behind_every_normal_job() -> None:
    eng = make(ep())
    n1 = run(eng, mock_delay=1)
    low = run(eng, policy={"lowPriority": True}, mock_delay=1)
    n2 = run(eng, mock_delay=1)
    n3 = run(eng, mock_delay=1)
    eng.advance(4)
    starts = {j.id: j.started_at for j in (n1, low, n2, n3)}
    assert sorted(starts, key=lambda k: starts[k]) == [n1.id, n2.id, n3.id, low.id]
    assert st(eng, low)["delayTime"] == 3000


def test_low_priority_job_does_not_scale_up_but_runs_on_a_worker_started_for_others() -> None:
    eng = make(ep(workers_min=0, workers_max=3, cold_start=1.0))
    low = run(eng, policy={"lowPriority": True}, mock_delay=1)
    eng.advance(60)
    assert workers(eng) == dict.fromkeys(workers(eng), 0)
    assert st(eng, low)["status"] == "IN_QUEUE"
    normal = run(eng, mock_delay=1)
    eng.advance(0)
    assert workers(eng)["initializing"] == 1  # one worker, for the normal job only
    eng.advance(1)
    assert st(eng, normal)["status"] == "IN_PROGRESS"
    assert st(eng, low)["status"] == "IN_QUEUE"
    eng.advance(2)
    assert st(eng, normal)["status"] == "COMPLETED"
    assert st(eng, low)["status"] == "COMPLETED"
    assert st(eng, low)["delayTime"] == 62_000


# ------------------------------------------------------------------ workers


def test_cold_start_keeps_job_queued_until_worker_is_ready() -> None:
    eng = make(ep(workers_min=0, workers_max=2, cold_start=2.0))
    job = run(eng, mock_delay=1)
    eng.sync()
    assert workers(eng)["initializing"] == 1
    assert jobs(eng)["inQueue"] == 1
    eng.advance(1.5)
    assert st(eng, job)["status"] == "IN_QUEUE"
    assert "delayTime" not in st(eng, job) and "output" not in st(eng, job)
    eng.advance(0.5)
    v = st(eng, job)
    assert v["status"] == "IN_PROGRESS" and v["delayTime"] == 2000
    assert workers(eng)["running"] == 1 and workers(eng)["initializing"] == 0
    eng.advance(1)
    assert st(eng, job)["status"] == "COMPLETED"
    assert workers(eng)["idle"] == 1 and workers(eng)["ready"] == 1


def test_scale_up_starts_one_worker_per_waiting_job_up_to_max() -> None:
    eng = make(ep(workers_min=0, workers_max=3, cold_start=1.0))
    for _ in range(5):
        run(eng, mock_delay=10)
    eng.sync()
    assert workers(eng)["initializing"] == 3
    eng.advance(1)
    assert workers(eng)["running"] == 3
    assert jobs(eng) == {"completed": 0, "failed": 0, "inProgress": 3, "inQueue": 2, "retried": 0}


def test_idle_timeout_removes_workers_above_min_only() -> None:
    eng = make(ep(workers_min=1, workers_max=2, idle_timeout=5.0, cold_start=1.0))
    run(eng, mock_delay=2)
    run(eng, mock_delay=2)
    eng.advance(3)  # both done: the warm one at t=2, the new one at t=3
    assert workers(eng)["idle"] == 2
    eng.advance(3.9)
    assert workers(eng)["idle"] == 2
    eng.advance(1.1)  # first idle worker reaches its timeout at t=7: removed
    assert workers(eng)["idle"] == 1
    eng.advance(1000)
    assert workers(eng)["idle"] == 1  # min stays


def test_idle_engine_schedules_nothing_busy() -> None:
    eng = make(ep(workers_min=0, workers_max=1, cold_start=0.5, idle_timeout=5.0))
    job = run(eng)
    eng.advance(60)
    assert workers(eng)["idle"] == 0
    before = eng.events_processed
    eng.advance(3600)  # an hour with nothing to do: only the job's retention expiry
    assert eng.events_processed - before == 1
    with pytest.raises(NotFoundError):
        st(eng, job)


def test_throttled_worker_then_initializing_then_ready() -> None:
    eng = make(ep(workers_min=0, throttle_chance=1.0, throttle_time=3.0, cold_start=2.0))
    job = run(eng)
    eng.sync()
    assert workers(eng)["throttled"] == 1
    eng.advance(3)
    assert workers(eng)["throttled"] == 0 and workers(eng)["initializing"] == 1
    eng.advance(2)
    assert st(eng, job)["status"] == "COMPLETED"
    assert st(eng, job)["delayTime"] == 5000


def test_concurrency_lets_one_worker_run_several_jobs() -> None:
    eng = make(ep(concurrency=2))
    a, b, c = (run(eng, mock_delay=1) for _ in range(3))
    eng.advance(0)
    assert [a.status, b.status, c.status] == ["IN_PROGRESS", "IN_PROGRESS", "IN_QUEUE"]
    assert workers(eng)["running"] == 1
    eng.advance(1)
    assert c.status == "IN_PROGRESS" and st(eng, c)["delayTime"] == 1000


def test_pickup_delay_shows_in_delay_time() -> None:
    eng = make(ep(pickup_delay=0.25))
    job = run(eng)
    eng.advance(0.2)
    assert st(eng, job)["status"] == "IN_QUEUE"
    eng.advance(0.05)
    assert st(eng, job)["status"] == "COMPLETED" and st(eng, job)["delayTime"] == 250


# ------------------------------------------------------------------ TTL, timeouts, retention


def test_ttl_expiry_in_queue_gives_timed_out_then_gone() -> None:
    eng = make(ep(workers_min=0, workers_max=0))
    job = run(eng, policy={"ttl": 10_000})
    eng.advance(9.5)
    assert st(eng, job)["status"] == "IN_QUEUE"
    eng.advance(0.5)
    v = st(eng, job)
    assert v["status"] == "TIMED_OUT" and v["delayTime"] == 10_000 and "error" not in v
    assert jobs(eng)["inQueue"] == 0 and jobs(eng)["failed"] == 1
    eng.advance(59.5)
    assert st(eng, job)["status"] == "TIMED_OUT"
    eng.advance(0.5)
    with pytest.raises(NotFoundError):
        st(eng, job)


def test_ttl_expiry_while_running_deletes_job_and_frees_worker() -> None:
    eng = make(ep())
    job = run(eng, policy={"ttl": 10_000}, mock_delay=100)
    nxt = run(eng, mock_delay=1)
    eng.advance(10)
    with pytest.raises(NotFoundError):
        st(eng, job)
    assert st(eng, nxt)["status"] == "IN_PROGRESS"
    eng.advance(100)
    assert jobs(eng) == {"completed": 1, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0}


def test_execution_timeout_from_policy_and_from_endpoint() -> None:
    eng = make(ep(), ep("short", execution_timeout_ms=5_000))
    job = run(eng, policy={"executionTimeout": 5_000}, mock_delay=10)
    hung = run(eng, "short", mock_external={"error_job_return": True})
    eng.advance(5)
    for j in (job, hung):
        v = st(eng, j)
        assert v["status"] == "TIMED_OUT" and v["executionTime"] == 5000 and "error" not in v
    assert workers(eng)["idle"] == 1  # the worker was told to stop and is free
    assert jobs(eng)["failed"] == 1


def test_retention_30_min_for_run_1_min_for_runsync() -> None:
    eng = make(ep())
    a = run(eng)
    s = run(eng, sync=True)
    assert s.id.startswith("sync-") and a.id.endswith("-u1")
    eng.advance(59.5)
    assert st(eng, s)["status"] == "COMPLETED"
    eng.advance(0.5)
    with pytest.raises(NotFoundError):
        st(eng, s)
    eng.advance(1800 - 60 - 0.5)
    assert st(eng, a)["status"] == "COMPLETED"
    eng.advance(0.5)
    with pytest.raises(NotFoundError):
        st(eng, a)


def test_status_ttl_shortens_retention() -> None:
    eng = make(ep())
    done = run(eng)
    later = run(eng, mock_delay=10)
    eng.advance(1)
    eng.set_job_ttl(done, 6_000)  # /status?ttl=6000 on a finished job: 6 s from now
    eng.set_job_ttl(later, 2_000)  # on a running one: kept 2 s after it ends
    eng.advance(5.5)
    assert st(eng, done)["status"] == "COMPLETED"
    eng.advance(0.5)
    with pytest.raises(NotFoundError):
        st(eng, done)
    eng.advance(4.5)  # later ended at t=11 (it waited 1 s for the worker)
    assert st(eng, later)["status"] == "COMPLETED"
    eng.advance(1.5)
    with pytest.raises(NotFoundError):
        st(eng, later)


# ------------------------------------------------------------------ cancel, purge, races


def test_cancel_queued_job_never_runs() -> None:
    eng = make(ep())
    a = run(eng, mock_delay=5)
    b = run(eng, mock_delay=5)
    eng.advance(1)
    assert eng.ref(eng.cancel("e", b.id)) == {"id": b.id, "status": "CANCELLED"}
    v = st(eng, b)
    assert v["delayTime"] == 1000 and "executionTime" not in v and "workerId" not in v
    eng.advance(20)
    assert b.started_at is None and st(eng, b)["status"] == "CANCELLED"
    assert st(eng, a)["status"] == "COMPLETED"
    assert jobs(eng) == {"completed": 1, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0}


def test_cancel_running_job_stops_it_and_frees_the_worker() -> None:
    eng = make(ep())
    a = run(eng, mock_delay=5)
    b = run(eng, mock_delay=1)
    eng.advance(2)
    eng.cancel("e", a.id)
    assert st(eng, a)["status"] == "CANCELLED" and st(eng, a)["executionTime"] == 2000
    eng.advance(0)
    assert st(eng, b)["status"] == "IN_PROGRESS"
    eng.advance(10)
    assert st(eng, a)["status"] == "CANCELLED"  # the old completion never lands
    assert jobs(eng)["completed"] == 1


def test_cancel_of_finished_job_changes_nothing() -> None:
    eng = make(ep())
    job = run(eng, mock_error=True)
    eng.advance(1)
    assert eng.ref(eng.cancel("e", job.id))["status"] == "FAILED"
    with pytest.raises(NotFoundError):
        eng.cancel("e", "nope")


def test_cancel_at_the_instant_of_completion_sees_the_completion() -> None:
    eng = make(ep())
    job = run(eng, mock_delay=2, mock_return="r")
    eng.advance(2)  # completion is due at exactly this time and has happened
    assert eng.cancel("e", job.id).status == "COMPLETED"
    assert st(eng, job)["output"] == "r"
    assert jobs(eng)["completed"] == 1


def test_cancel_just_before_completion_wins() -> None:
    eng = make(ep())
    job = run(eng, mock_delay=2)
    eng.advance(1.5)
    eng.cancel("e", job.id)
    eng.advance(1)
    assert st(eng, job)["status"] == "CANCELLED" and jobs(eng)["completed"] == 0


def test_purge_removes_queued_jobs_only() -> None:
    eng = make(ep())
    a = run(eng, mock_delay=2, mock_return="a")
    b, c = run(eng), run(eng, policy={"lowPriority": True})
    eng.advance(1)
    assert eng.purge("e") == 2
    for j in (b, c):
        with pytest.raises(NotFoundError):
            st(eng, j)
    assert jobs(eng)["inQueue"] == 0 and jobs(eng)["inProgress"] == 1
    eng.advance(1)
    assert st(eng, a)["output"] == "a"
    assert eng.purge("e") == 0


def test_purge_racing_pickup() -> None:
    eng = make(ep(pickup_delay=0.5))
    a = run(eng, mock_delay=1)
    eng.advance(0.5)  # the worker took it at this instant
    assert eng.purge("e") == 0
    b = run(eng)
    assert eng.purge("e") == 1  # still queued: its pickup is not due
    eng.advance(5)
    assert st(eng, a)["status"] == "COMPLETED"
    with pytest.raises(NotFoundError):
        st(eng, b)
    assert workers(eng)["idle"] == 1 and jobs(eng)["inQueue"] == 0


def test_purge_then_retry_and_cancel_keep_counters_consistent() -> None:
    eng = make(ep())
    jobs_ = [run(eng, mock_delay=1, mock_error=(i % 2 == 0)) for i in range(6)]
    eng.advance(2.5)  # two finished (one failed, one ok), one running
    eng.cancel("e", jobs_[2].id)
    assert eng.purge("e") == 3
    eng.retry("e", jobs_[0].id)
    eng.advance(10)
    h = jobs(eng)
    assert h == {"completed": 1, "failed": 2, "inProgress": 0, "inQueue": 0, "retried": 1}
    ep_state = eng.endpoint("e")
    assert ep_state.in_queue == 0 and ep_state.in_progress == 0


# ------------------------------------------------------------------ retry


def test_retry_requeues_same_id_with_original_input_and_clears_output() -> None:
    eng = make(ep())
    job = run(eng, mock_error=True, mock_delay=1)
    eng.advance(1)
    assert st(eng, job)["status"] == "FAILED"
    assert eng.ref(eng.retry("e", job.id)) == {"id": job.id, "status": "IN_QUEUE"}
    v = st(eng, job)
    assert v == {"id": job.id, "status": "IN_PROGRESS", "delayTime": 0, "executionTime": 0,
                 "workerId": job.worker_id, "retries": 1}  # fmt: skip
    assert jobs(eng)["retried"] == 1
    eng.advance(1)
    assert st(eng, job)["status"] == "FAILED"  # same input, same failure
    assert jobs(eng)["failed"] == 2


def test_retry_only_for_failed_or_timed_out() -> None:
    eng = make(ep())
    done = run(eng)
    running = run(eng, mock_delay=10)
    queued = run(eng)
    eng.advance(1)
    for j in (done, running, queued):
        with pytest.raises(BadRequestError):
            eng.retry("e", j.id)
    eng.cancel("e", running.id)
    with pytest.raises(BadRequestError):
        eng.retry("e", running.id)


def test_retry_of_timed_out_job_and_impossible_after_retention() -> None:
    eng = make(ep(workers_min=0, workers_max=0))
    job = run(eng, policy={"ttl": 10_000})
    eng.advance(10)
    assert st(eng, job)["status"] == "TIMED_OUT"
    eng.retry("e", job.id)
    assert st(eng, job)["status"] == "IN_QUEUE"  # TTL restarted from the retry
    eng.advance(9)
    assert st(eng, job)["status"] == "IN_QUEUE"
    eng.advance(1 + 60)
    with pytest.raises(NotFoundError):
        eng.retry("e", job.id)


# ------------------------------------------------------------------ health


def test_health_counters_agree_with_what_happened() -> None:
    eng = make(ep(workers_min=0, workers_max=2, cold_start=1.0))
    ok = [run(eng, mock_delay=2) for _ in range(3)]
    bad = run(eng, mock_error=True)
    eng.sync()
    assert eng.health("e") == {
        "jobs": {"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 4, "retried": 0},
        "workers": {"idle": 0, "initializing": 2, "ready": 0, "running": 0, "throttled": 0,
                    "unhealthy": 0},
    }  # fmt: skip
    eng.advance(1)
    assert jobs(eng)["inProgress"] == 2 and workers(eng)["running"] == 2
    eng.advance(4)  # ok[2] ran 3..5, bad failed at 3
    eng.retry("e", bad.id)
    eng.advance(0)
    eng.advance(1)
    assert all(st(eng, j)["status"] == "COMPLETED" for j in ok)
    assert eng.health("e") == {
        "jobs": {"completed": 3, "failed": 2, "inProgress": 0, "inQueue": 0, "retried": 1},
        "workers": {"idle": 2, "initializing": 0, "ready": 2, "running": 0, "throttled": 0,
                    "unhealthy": 0},
    }  # fmt: skip


# ------------------------------------------------------------------ the mock-worker contract


def test_mock_error_standard_handler_error_is_runpod_python_json() -> None:
    eng = make(ep())
    job = run(eng, mock_error=True, mock_delay=1)
    eng.advance(1)
    v = st(eng, job)
    assert v["status"] == "FAILED" and "output" not in v
    err = json.loads(v["error"])
    assert err["error_type"] == "<class 'Exception'>"
    assert err["error_message"] == "Mock error"
    assert err["error_traceback"].startswith("Traceback (most recent call last):")
    assert err["worker_id"] == v["workerId"]
    assert set(err) == {"error_type", "error_message", "error_traceback", "hostname",
                        "worker_id", "runpod_version"}  # fmt: skip


def test_mock_error_generator_handler_error_is_plain_string() -> None:
    eng = make(ep(handler="stream"))
    job = run(eng, mock_error=True)
    eng.advance(0)
    err = st(eng, job)["error"]
    assert err.startswith("handler: Mock error \ntraceback: Traceback")
    assert eng.take_chunks(job) == ("FAILED", [])


def test_handler_output_dict_with_error_key_fails_and_keeps_the_rest() -> None:
    eng = make(ep())
    bad = run(eng, mock_return={"error": "bad input", "partial": 1})
    empty = run(eng, mock_return={})
    eng.advance(0)
    assert st(eng, bad) | {"workerId": None} == {
        "id": bad.id, "status": "FAILED", "delayTime": 0, "executionTime": 0,
        "output": {"partial": 1}, "error": "bad input", "workerId": None,
    }  # fmt: skip
    v = st(eng, empty)
    assert v["status"] == "COMPLETED" and "output" not in v


def test_invalid_mock_delay_fails_like_python_would() -> None:
    eng = make(ep())
    job = run(eng, mock_delay="soon")
    eng.advance(0)
    err = json.loads(st(eng, job)["error"])
    assert err["error_type"] == "<class 'TypeError'>"


def test_mock_crash_requeues_job_marks_worker_unhealthy_and_replaces_it() -> None:
    eng = make(ep(workers_min=0, workers_max=1, cold_start=1.0, unhealthy_time=30.0))
    crash = run(eng, mock_crash=True, mock_delay=0.5)
    nxt = run(eng, mock_delay=1)
    eng.advance(1.5)
    v = st(eng, crash)
    assert v["status"] == "IN_QUEUE" and v["retries"] == 1 and "error" not in v
    assert workers(eng)["unhealthy"] == 1 and workers(eng)["initializing"] == 1
    assert jobs(eng)["retried"] == 1
    eng.advance(1)  # the replacement takes the job that waited longest
    assert st(eng, nxt)["status"] == "IN_PROGRESS"
    eng.advance(1)
    assert st(eng, nxt)["status"] == "COMPLETED"
    assert st(eng, crash)["status"] == "IN_PROGRESS"
    eng.advance(0.5)  # it kills this worker too, and goes back again
    assert st(eng, crash)["status"] == "IN_QUEUE" and st(eng, crash)["retries"] == 2
    assert jobs(eng)["failed"] == 0 and jobs(eng)["completed"] == 1 and jobs(eng)["retried"] == 2


def test_mock_progress_updates_show_as_output_while_in_progress() -> None:
    eng = make(ep())
    job = run(eng, mock_delay=1, mock_return="done",
              mock_progress={"updates": ["a", {"pct": 50}, "c"], "wait_time": 2})  # fmt: skip
    eng.advance(0.5)
    assert "output" not in st(eng, job)
    seen = []
    for dt in (0.5, 1.9, 0.1, 2, 2):  # t = 1, 2.9, 3, 5, 7
        eng.advance(dt)
        v = st(eng, job)
        seen.append((v["status"], v.get("output")))
    assert seen == [
        ("IN_PROGRESS", "a"), ("IN_PROGRESS", "a"), ("IN_PROGRESS", {"pct": 50}),
        ("IN_PROGRESS", "c"), ("COMPLETED", "done"),
    ]  # fmt: skip
    assert st(eng, job)["executionTime"] == 7000


def test_mock_logs_are_recorded_per_worker() -> None:
    eng = make(ep())
    job = run(eng, mock_logs=[{"level": "debug", "message": "loading"},
                              {"level": "error", "message": "oops"}])  # fmt: skip
    eng.advance(0)
    lines = [(e["level"], e["message"]) for e in eng.logs("e", job.worker_id) if e["jobId"] == job.id]
    assert ("info", "loading") in lines and ("error", "oops") in lines


def test_mock_refresh_restarts_the_worker_after_the_job() -> None:
    eng = make(ep(cold_start=2.0))
    job = run(eng, mock_refresh=True, mock_return=7)
    nxt = run(eng)
    eng.advance(0)
    assert st(eng, job)["output"] == {"mock_return": 7}
    assert workers(eng)["initializing"] == 1
    eng.advance(2)
    assert st(eng, nxt)["status"] == "COMPLETED" and st(eng, nxt)["delayTime"] == 2000


# ------------------------------------------------------------------ streaming


def test_generator_chunks_drain_and_last_chunks_come_with_terminal_status() -> None:
    eng = make(ep(handler="stream"))
    job = run(eng, mock_return=[1, {"k": 2}, 3, 4], mock_delay=1)
    eng.advance(0)
    assert eng.take_chunks(job) == ("IN_PROGRESS", [])
    eng.advance(1)
    assert eng.take_chunks(job) == ("IN_PROGRESS", [{"output": 1}])
    eng.advance(2)
    assert eng.take_chunks(job) == ("IN_PROGRESS", [{"output": {"k": 2}}, {"output": 3}])
    assert eng.take_chunks(job) == ("IN_PROGRESS", [])  # each call only hands out new ones
    eng.advance(1)  # last item and completion at the same instant
    assert eng.take_chunks(job) == ("COMPLETED", [{"output": 4}])
    assert eng.take_chunks(job) == ("COMPLETED", [])
    assert st(eng, job)["output"] == [1, {"k": 2}, 3, 4]


def test_generator_string_is_streamed_per_character_and_default_is_hello_world() -> None:
    eng = make(ep(handler="stream"), ep("d", handler="stream"))
    job = run(eng, mock_return="hey")
    default = run(eng, "d")
    eng.advance(0)
    assert [c["output"] for c in eng.take_chunks(job)[1]] == ["h", "e", "y"]
    assert st(eng, default)["output"] == ["Hello World!"]


def test_generator_error_item_stops_stream_and_fails_job() -> None:
    eng = make(ep(handler="stream"))
    job = run(eng, mock_return=[1, {"error": "boom"}, 3], mock_delay=1)
    eng.advance(5)
    assert eng.take_chunks(job) == ("FAILED", [{"output": 1}])
    v = st(eng, job)
    assert v["error"] == "boom" and "output" not in v


def test_generator_over_a_number_fails_like_python() -> None:
    eng = make(ep(handler="stream"))
    job = run(eng, mock_return=5)
    eng.advance(0)
    assert st(eng, job)["error"].startswith("handler: 'int' object is not iterable")


def test_standard_handler_never_streams() -> None:
    eng = make(ep())
    job = run(eng, mock_return=[1, 2])
    eng.advance(0)
    assert eng.take_chunks(job) == ("COMPLETED", [])


def test_llm_handler_streams_tokens_and_aggregates() -> None:
    eng = make(ep(handler="llm"))
    job = run(eng, prompt="hello world", max_tokens=12, mock_delay=0.1)
    eng.advance(0.6)
    first = eng.take_chunks(job)[1]
    assert len(first) == 6
    eng.advance(1)
    rest = eng.take_chunks(job)
    assert rest[0] == "COMPLETED"
    tokens = [c["output"] for c in first + rest[1]]
    assert st(eng, job)["output"] == tokens and len(tokens) == 12


async def test_long_poll_wait_wakes_on_chunk_and_times_out_exactly() -> None:
    eng = make(ep(handler="stream"))
    eng.attach(asyncio.get_running_loop())
    job = run(eng, mock_return=["x"], mock_delay=3)
    eng.advance(0)
    waiter = asyncio.ensure_future(eng.wait_stream(job, 10.0))
    await asyncio.sleep(0)
    eng.advance(2.9)
    await asyncio.sleep(0)
    assert not waiter.done()
    eng.advance(0.1)
    assert await asyncio.wait_for(waiter, 1) is True
    assert eng.take_chunks(job) == ("COMPLETED", [{"output": "x"}])

    slow = run(eng, mock_delay=100)  # "mock" items: one chunk, far away
    eng.advance(0)
    waiter = asyncio.ensure_future(eng.wait_stream(slow, 5.0))
    await asyncio.sleep(0)
    eng.advance(4.9)
    await asyncio.sleep(0)
    assert not waiter.done()
    eng.advance(0.1)
    assert await asyncio.wait_for(waiter, 1) is False
    eng.close()


async def test_wait_terminal_is_woken_by_cancel() -> None:
    eng = make(ep())
    eng.attach(asyncio.get_running_loop())
    job = run(eng, mock_delay=100)
    eng.advance(0)
    waiter = asyncio.ensure_future(eng.wait_terminal(job, 50))
    await asyncio.sleep(0)
    eng.cancel("e", job.id)
    assert await asyncio.wait_for(waiter, 1) is True
    assert job.waiters == []
    eng.close()


# ------------------------------------------------------------------ requests refused


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"input": "text"},
        {"input": [1]},
        {"input": {}, "policy": {"executionTimeout": 1000}},
        {"input": {}, "policy": {"ttl": 5_000}},
        {"input": {}, "policy": {"ttl": "1h"}},
        {"input": {}, "policy": {"lowPriority": "yes"}},
        {"input": {}, "policy": []},
        {"input": {}, "webhook": 5},
    ],
)
def test_bad_bodies_are_400(body: Any) -> None:
    eng = make(ep())
    with pytest.raises(BadRequestError):
        eng.submit("e", body)


def test_policy_ranges_can_be_lifted_and_unknown_endpoint_is_404() -> None:
    eng = make(ep(), strict_policy=False)
    job = eng.submit("e", {"input": {}, "policy": {"ttl": 1000}, "extra": True})
    assert job.ttl_s == 1.0
    with pytest.raises(NotFoundError):
        eng.submit("nope", {"input": {}})


def test_queue_size_limit_answers_429_when_limits_are_on() -> None:
    eng = make(ep(workers_min=0, workers_max=0), rate_limits=True)
    for _ in range(51):  # refused only once the queue holds more than 50
        run(eng)
    with pytest.raises(QueueFullError) as exc:
        run(eng)
    assert exc.value.status == 429 and exc.value.retry_after == 10
    assert run(eng, sync=True).status == "IN_QUEUE"  # /runsync is not limited this way


# ------------------------------------------------------------------ determinism, scenarios


def test_same_seed_same_ids_other_seed_other_ids() -> None:
    def ids(seed: int) -> list[str]:
        eng = make(ep(workers_min=0, workers_max=2, cold_start=1), seed=seed)
        out = [run(eng).id for _ in range(3)]
        eng.advance(2)
        out += [w["id"] for w in eng.workers("e")]
        return out

    assert ids(1) == ids(1)
    assert ids(1) != ids(2)


def test_demo_traffic_is_lively_deterministic_and_cheap() -> None:
    def play(seed: int) -> tuple[dict[str, Any], int]:
        eng = Engine(FakeClock(), seed)
        apply_scenario(eng, Faults(seed), "demo")
        eng.advance(900)
        return {e: eng.health(e) for e in eng.endpoint_ids()}, eng.events_processed

    health, events = play(3)
    assert play(3) == (health, events)
    assert events / 900 < 40  # a handful of events per simulated second
    total = {k: sum(h["jobs"][k] for h in health.values()) for k in ("completed", "failed")}
    assert total["completed"] > 100 and total["failed"] > 5
    assert any(h["workers"]["idle"] + h["workers"]["running"] for h in health.values())


@pytest.mark.parametrize("name", scenario_names())
def test_every_scenario_runs(name: str) -> None:
    eng = Engine(FakeClock(), 0)
    sc = apply_scenario(eng, Faults(0), name)
    assert eng.endpoint_ids() == sc.endpoint_ids
    eng.advance(120)
    for eid in eng.endpoint_ids():
        h = eng.health(eid)
        assert all(v >= 0 for v in h["jobs"].values())


def test_backlog_scales_to_fifty_workers() -> None:
    eng = Engine(FakeClock(), 0)
    apply_scenario(eng, Faults(0), "backlog")
    assert eng.health("backlog")["jobs"]["inQueue"] == 400
    eng.advance(10)
    assert eng.health("backlog")["workers"]["running"] == 50


def test_plan_is_pure_and_ordered() -> None:
    steps = worker.plan({"mock_delay": 2, "mock_progress": {"updates": [1, 2], "wait_time": 1},
                         "mock_logs": [{"level": "info", "message": "hi"}]})  # fmt: skip
    assert [(s.at, s.kind) for s in steps] == [(0.0, "log"), (2.0, "progress"), (3.0, "progress"),
                                               (4.0, "complete")]  # fmt: skip
    assert steps[-1].value == "Hello World!"
    defaults = worker.plan({}, defaults={"mock_return": "env"})
    assert defaults[-1].value == "env"
