"""Bad days on the simulated platform (runpod-api.md 5.2), on a FakeClock: worker deaths,
crash loops, the scalers and the account cap, GPU shortage, stuck progress, split stream
chunks, pickup orders. Each test checks what a client would see."""

from __future__ import annotations

from typing import Any

import pytest

from rpdash.core.clock import FakeClock
from rpdash.sim.engine import EndpointConfig, Engine, SimJob
from rpdash.sim.faults import Faults
from rpdash.sim.scenarios import apply_scenario, pickup_orders, scenario_catalog


def make(*cfgs: EndpointConfig, **kw: Any) -> Engine:
    eng = Engine(FakeClock(), 0, rate_limits=False, **kw)
    for cfg in cfgs:
        eng.add_endpoint(cfg)
    return eng


def cfg(eid: str = "e", **kw: Any) -> EndpointConfig:
    base: dict[str, Any] = {"workers_min": 0, "workers_max": 1, "cold_start": 1.0, "idle_timeout": 5.0}
    base.update(kw)
    return EndpointConfig(eid, **base)


def submit(eng: Engine, eid: str = "e", **inp: Any) -> SimJob:
    return eng.submit(eid, {"input": inp})


def view(eng: Engine, job: SimJob) -> dict[str, Any]:
    eng.sync()
    return eng.view(eng.job(job.endpoint_id, job.id))


def health(eng: Engine, eid: str = "e") -> dict[str, Any]:
    return eng.health(eid)


@pytest.fixture(autouse=True)
def _no_engine_errors(monkeypatch: pytest.MonkeyPatch) -> Any:
    made: list[Engine] = []
    orig = Engine.__init__

    def init(self: Engine, *a: Any, **kw: Any) -> None:
        orig(self, *a, **kw)
        made.append(self)

    monkeypatch.setattr(Engine, "__init__", init)
    yield
    for eng in made:
        assert not eng.errors, eng.errors


# ---------------------------------------------------------------- 1. worker dies mid-job


def test_worker_death_runs_the_job_again_and_counts_the_retry() -> None:
    eng = make(cfg(workers_max=2))
    job = submit(eng, mock_delay=1.0, mock_return="done")
    eng.advance(1.5)  # worker ready at 1, job running
    assert view(eng, job)["status"] == "IN_PROGRESS"
    w = job.worker
    assert w is not None
    eng._crash(eng.endpoint("e"), w)  # the worker process dies (OOM)
    v = view(eng, job)
    assert v["status"] == "IN_QUEUE" and v["retries"] == 1 and "output" not in v
    assert health(eng)["jobs"]["retried"] == 1 and health(eng)["workers"]["unhealthy"] == 1
    eng.advance(3)  # a replacement starts (1 s) and runs it (1 s)
    v = view(eng, job)
    assert v["status"] == "COMPLETED" and v["output"] == "done" and v["retries"] == 1
    assert v["workerId"] != w.id


def test_a_job_that_kills_every_worker_loops_until_the_crash_loop_cut_back() -> None:
    eng = make(cfg(workers_max=2, unhealthy_time=1000, crashloop_limit=4))
    job = submit(eng, mock_crash=True, mock_delay=0.5)
    seen = set()
    for _ in range(60):
        eng.advance(0.5)
        seen.add(view(eng, job)["status"])
    v = view(eng, job)
    # it ran, died, went back, again and again: after 4 deaths max workers is halved
    # (2 -> 1), never below 1 (one worker keeps trying); no error on the job
    assert seen == {"IN_QUEUE", "IN_PROGRESS"}
    assert v["retries"] > 8 and "error" not in v
    assert health(eng)["jobs"]["retried"] == v["retries"] and health(eng)["jobs"]["failed"] == 0
    assert [(n["was"], n["workersMax"]) for n in eng.endpoint("e").notices] == [(2, 1)]


def test_retry_keeps_the_ttl_counted_from_submission() -> None:
    eng = make(cfg(workers_max=1, crashloop_limit=1000))
    job = eng.submit("e", {"input": {"mock_crash": True, "mock_delay": 1}, "policy": {"ttl": 10_000}})
    eng.advance(9.9)
    assert view(eng, job)["retries"] >= 2
    eng.advance(0.2)
    with pytest.raises(Exception):  # gone at its TTL whatever it is doing
        view(eng, job)


# ---------------------------------------------------------------- 2. crash-looping endpoint


def test_crash_looping_endpoint_keeps_jobs_queued_and_cuts_max_workers() -> None:
    eng = make(cfg(workers_max=4, cold_start=2.0, unhealthy_time=30.0, start_failure=1.0,
                   crashloop_limit=5))  # fmt: skip
    jobs = [submit(eng, mock_delay=1) for _ in range(3)]
    eng.advance(2.1)  # three workers fail their start-up checks
    h = health(eng)
    assert h["workers"]["unhealthy"] == 3 and h["workers"]["idle"] == 0
    assert all(view(eng, j) == {"id": j.id, "status": "IN_QUEUE"} for j in jobs)
    eng.advance(2.0)  # replacements fail too: 6 unhealthy in total >= 5 -> cut back
    ep = eng.endpoint("e")
    assert ep.cfg.workers_max == 2
    assert ep.notices[0]["kind"] == "crash-loop" and ep.notices[0]["was"] == 4
    assert any("max workers lowered from 4 to 2" in e["message"] for e in ep.logs)
    assert all(view(eng, j)["status"] == "IN_QUEUE" for j in jobs)
    assert health(eng)["jobs"]["failed"] == 0


def test_max_workers_0_stops_the_workers_running_ones_after_their_jobs() -> None:
    """A drain (max 0) stops an endpoint's workers: the unhealthy ones of a crash loop at
    once (they no longer count as a crash loop), a running one once its job is done."""
    eng = make(cfg(workers_max=4, cold_start=1.0, unhealthy_time=300.0, start_failure=1.0,
                   crashloop_limit=1000))  # fmt: skip
    for _ in range(3):
        submit(eng, mock_delay=1)
    eng.advance(1.1)
    assert health(eng)["workers"]["unhealthy"] >= 3
    eng.update_endpoint("e", workers_max=0)
    assert eng.endpoint("e").workers == {}
    assert health(eng)["workers"]["unhealthy"] == 0
    eng.advance(10)
    assert eng.endpoint("e").workers == {}  # nothing new starts
    # a running worker finishes its job, then stops
    eng.update_endpoint("e", workers_max=1, start_failure=0.0)
    eng.advance(1.5)  # started, running the first queued job (1 s)
    (w,) = eng.endpoint("e").workers.values()
    assert w.state == "running"
    eng.update_endpoint("e", workers_max=0)
    assert list(eng.endpoint("e").workers.values()) == [w]
    eng.advance(1)
    assert eng.endpoint("e").workers == {} and health(eng)["jobs"]["completed"] == 1


# ---------------------------------------------------------------- 3. autoscaling


def test_queue_delay_scaler_waits_scaler_value_seconds() -> None:
    eng = make(cfg(workers_max=3, scaler_type="QUEUE_DELAY", scaler_value=4.0))
    submit(eng, mock_delay=30)
    eng.advance(3.9)
    assert sum(health(eng)["workers"].values()) == 0
    eng.advance(0.2)
    assert health(eng)["workers"]["initializing"] == 1


def test_request_count_scaler_targets_ceil_of_jobs_over_value() -> None:
    eng = make(cfg(workers_max=10, scaler_type="REQUEST_COUNT", scaler_value=3.0))
    for _ in range(7):
        submit(eng, mock_delay=30)
    eng.advance(0)
    assert health(eng)["workers"]["initializing"] == 3  # ceil(7 / 3)


def test_extra_workers_above_max_only_in_a_spike_once_the_image_is_cached() -> None:
    eng = make(cfg(workers_max=2, extra_workers=2), account_max_workers=10)
    for _ in range(2):
        submit(eng, mock_delay=100)
    eng.advance(0)
    assert health(eng)["workers"]["initializing"] == 2  # image not cached yet: max only
    eng.advance(1.5)
    for _ in range(5):
        submit(eng, mock_delay=100)
    eng.advance(0)
    ws = eng.endpoint("e").workers.values()
    assert len(ws) == 4 and sum(w.extra for w in ws) == 2


def test_account_cap_is_shared_by_every_endpoint() -> None:
    eng = make(cfg("a", workers_max=4), cfg("b", workers_max=4))  # default cap: 5
    for _ in range(4):
        submit(eng, "a", mock_delay=3)
        submit(eng, "b", mock_delay=3)
    eng.advance(0)
    live = sum(len(eng.endpoint(e).workers) for e in ("a", "b"))
    assert live == 5
    eng.advance(4.5)  # a-workers end their jobs... the waiting endpoint gets its share
    total = sum(len(eng.endpoint(e).workers) for e in ("a", "b"))
    assert total <= 5


def test_account_cap_frees_a_slot_for_a_blocked_endpoint() -> None:
    eng = make(cfg("a", workers_max=5, idle_timeout=1.0), cfg("b", workers_max=1))
    for _ in range(5):
        submit(eng, "a", mock_delay=1)
    eng.advance(0)
    job = submit(eng, "b", mock_delay=1)
    eng.advance(0)
    assert len(eng.endpoint("b").workers) == 0
    eng.advance(3.1)  # a's workers idle out after their jobs (at 3); b starts one
    assert len(eng.endpoint("b").workers) == 1
    eng.advance(1.0)
    assert view(eng, job)["status"] in ("IN_PROGRESS", "COMPLETED")


# ---------------------------------------------------------------- 4. GPU shortage


def test_gpu_shortage_throttles_workers_while_capacity_is_short() -> None:
    eng = make(cfg(workers_max=2, capacity_short_for=60.0))
    job = submit(eng, mock_delay=1)
    eng.advance(59)
    assert health(eng)["workers"]["throttled"] == 1 and view(eng, job)["status"] == "IN_QUEUE"
    w = next(iter(eng.endpoint("e").workers.values()))
    assert w.placed_at is None
    eng.advance(1.5)
    assert health(eng)["workers"]["throttled"] == 0
    assert w.placed_at == eng.endpoint("e").created_at + 60
    eng.advance(1.6)  # ready at 61, done at 62
    assert view(eng, job)["status"] == "COMPLETED"


def test_capacity_knob_can_start_and_end_a_shortage() -> None:
    eng = make(cfg(workers_max=1))
    eng.set_capacity("e", None)
    job = submit(eng, mock_delay=1)
    eng.advance(500)
    assert health(eng)["workers"]["throttled"] == 1
    eng.set_capacity("e", 0)
    eng.advance(2.5)
    assert view(eng, job)["status"] == "COMPLETED"


# ---------------------------------------------------------------- 5. stuck progress


def test_late_progress_update_leaves_finished_job_in_progress() -> None:
    eng = make(cfg(late_progress_chance=1.0))
    job = submit(eng, mock_delay=0.5, mock_return="final",
                 mock_progress={"updates": ["1/2", "2/2"], "wait_time": 0.5})  # fmt: skip
    eng.advance(3)
    v = view(eng, job)
    assert v["status"] == "IN_PROGRESS" and v["output"] == "final"
    assert v["executionTime"] == 1500
    eng.advance(60)
    assert view(eng, job)["executionTime"] == 1500  # frozen: it ended
    assert health(eng)["jobs"]["completed"] == 1 and health(eng)["jobs"]["inProgress"] == 0


def test_a_stuck_job_is_cancelled_like_any_in_progress_job_and_keeps_its_output() -> None:
    """The operator's lever for a job left IN_PROGRESS (issue 250): RunPod's /cancel."""
    eng = make(cfg(late_progress_chance=1.0))
    job = submit(eng, mock_delay=0.5, mock_return="final",
                 mock_progress={"updates": ["1/2", "2/2"], "wait_time": 0.5})  # fmt: skip
    eng.advance(3)
    assert job.stuck and view(eng, job)["status"] == "IN_PROGRESS"
    assert eng.cancel("e", job.id).status == "CANCELLED"
    v = view(eng, job)
    assert v["status"] == "CANCELLED" and v["output"] == "final" and v["executionTime"] == 1500
    assert not job.stuck  # over: no job of the endpoint is stuck IN_PROGRESS any more
    h = health(eng)["jobs"]
    assert h["completed"] == 1 and h["inProgress"] == 0  # counted once, as it finished
    # the endpoint goes on serving; the cancelled job is kept as long as a finished one
    other = submit(eng, mock_delay=0.5)
    eng.advance(3)
    assert view(eng, other)["status"] == "COMPLETED"
    eng.advance(3600)
    assert eng.find_job("e", job.id) is None


def test_jobs_without_progress_updates_never_get_stuck() -> None:
    eng = make(cfg(late_progress_chance=1.0))
    job = submit(eng, mock_delay=0.5)
    eng.advance(3)
    assert view(eng, job)["status"] == "COMPLETED"


# ---------------------------------------------------------------- 6. streams


def test_stream_items_over_one_mb_are_split_into_chunks() -> None:
    eng = make(cfg(handler="stream"))
    big = "x" * 2_500_000
    job = submit(eng, mock_return=[big, "small"])
    eng.advance(2)
    status, chunks = eng.take_chunks(job)
    outs = [c["output"] for c in chunks]
    assert [len(o) for o in outs] == [1_000_000, 1_000_000, 500_000, 5]
    assert "".join(outs[:3]) == big and status == "COMPLETED"


def test_stream_chunks_can_come_with_and_after_the_terminal_status() -> None:
    eng = make(cfg(handler="stream", stream_batch_max=2))
    job = submit(eng, mock_return=list("abcde"))
    eng.advance(2)
    answers = []
    while True:
        status, chunks = eng.take_chunks(job)
        answers.append((status, [c["output"] for c in chunks]))
        if status == "COMPLETED" and not chunks:
            break
    assert answers == [("COMPLETED", ["a", "b"]), ("COMPLETED", ["c", "d"]),
                       ("COMPLETED", ["e"]), ("COMPLETED", [])]  # fmt: skip


# ---------------------------------------------------------------- 10. pickup order


def _order(pickup: str) -> list[str]:
    eng = make(cfg(workers_min=1, workers_max=1, cold_start=0.0, pickup=pickup))
    jobs = [submit(eng, mock_delay=1, mock_return=i) for i in range(6)]
    starts: dict[str, float] = {}
    for _ in range(80):
        eng.advance(0.1)
        for j in jobs:
            if j.started_at is not None and j.id not in starts:
                starts[j.id] = j.started_at
    assert all(view(eng, j)["status"] == "COMPLETED" for j in jobs)
    return [str(view(eng, j)["output"]) for j in sorted(jobs, key=lambda j: (starts[j.id], j.run_at))]


def test_pickup_fifo_runs_jobs_in_submission_order() -> None:
    assert _order("fifo") == [str(i) for i in range(6)]


def test_pickup_random_runs_them_in_another_order() -> None:
    order = _order("random")
    assert sorted(order) == [str(i) for i in range(6)] and order != [str(i) for i in range(6)]


def test_pickup_batch_takes_several_jobs_at_once() -> None:
    eng = make(cfg(workers_min=1, workers_max=1, cold_start=0.0, pickup="batch", pickup_batch=3))
    jobs = [submit(eng, mock_delay=1) for _ in range(5)]
    eng.advance(0.5)
    st = [view(eng, j)["status"] for j in jobs]
    assert st == ["IN_PROGRESS"] * 3 + ["IN_QUEUE"] * 2  # three taken, one runs
    assert len(jobs[0].worker.jobs) == 1 and len(jobs[0].worker.held) == 2  # type: ignore[union-attr]
    eng.advance(2.6)
    assert [view(eng, j)["status"] for j in jobs[:3]] == ["COMPLETED"] * 3
    assert view(eng, jobs[2])["executionTime"] == 3000  # counted from the pickup
    eng.advance(2)
    assert all(view(eng, j)["status"] == "COMPLETED" for j in jobs)


# ---------------------------------------------------------------- scenarios


def test_scenario_catalog_lists_the_incident_scenarios_with_descriptions() -> None:
    names = dict(scenario_catalog())
    for name in ("crashloop", "retry-storm", "gpu-shortage", "stuck-progress", "bad-release",
                 "worker-cap"):  # fmt: skip
        assert names[name] and "\n" not in names[name]
    assert pickup_orders() == ("fifo", "batch", "random")


@pytest.mark.parametrize("name", ["crashloop", "retry-storm", "gpu-shortage", "stuck-progress",
                                  "bad-release", "worker-cap"])  # fmt: skip
def test_incident_scenarios_show_their_incident(name: str) -> None:
    eng = Engine(FakeClock(), 0)
    apply_scenario(eng, Faults(0), name, pickup="batch")
    for _ in range(36):
        eng.advance(5)
    hs = {e: eng.health(e) for e in eng.endpoint_ids()}
    eps = {e: eng.endpoint(e) for e in eng.endpoint_ids()}
    if name == "crashloop":
        assert eps["broken"].notices and hs["broken"]["jobs"]["inQueue"] >= 5
        assert hs["broken"]["jobs"]["completed"] == 0 and hs["mock"]["jobs"]["completed"] > 0
    elif name == "retry-storm":
        assert hs["oom"]["jobs"]["retried"] > 5 and hs["oom"]["jobs"]["completed"] > 0
    elif name == "gpu-shortage":
        assert hs["sdxl"]["jobs"]["completed"] > 0
        eng2 = Engine(FakeClock(), 0)
        apply_scenario(eng2, Faults(0), name)
        eng2.advance(60)
        assert eng2.health("sdxl")["workers"]["throttled"] > 0
        assert eng2.health("sdxl")["jobs"]["completed"] == 0
    elif name == "stuck-progress":
        stuck = [j for j in eps["render"].jobs.values() if j.stuck]
        assert stuck and all(eng.view(j)["status"] == "IN_PROGRESS" for j in stuck)
    elif name == "bad-release":
        ep = eps["api"]
        assert ep.version == 2 and hs["api"]["workers"]["unhealthy"] + len(ep.notices) > 0
        assert any(w.version == 1 for w in ep.workers.values())  # outdated ones still serve
        assert hs["api"]["jobs"]["completed"] > 0
    elif name == "worker-cap":
        total = sum(len(e.workers) for e in eps.values())
        assert total <= 5 and all(h["jobs"]["inQueue"] > 0 for h in hs.values())
