"""Stuck-queue diagnosis and result expiry: each cause gives its sentence."""

from __future__ import annotations

from typing import Any

from rpdash.api.control import EndpointInfo, WorkerInfo, WorkerList
from rpdash.core.models import Health, JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.diagnosis import Finding, diagnose
from rpdash.services.expiry import ResultState, describe, result_remaining, result_state, retention_s

NOW = 1_800_000_000.0


def health(queue: int = 0, **workers: int) -> Health:
    return Health.model_validate({"jobs": {"inQueue": queue}, "workers": workers})


def info(wmax: int = 3, **kw: Any) -> EndpointInfo:
    return EndpointInfo(id="e", name="e", workers_min=0, workers_max=wmax, gpus=("ADA_24",), gpu_count=1, **kw)


def worker(status: str, started_ago: float = 30, **kw: Any) -> WorkerInfo:
    from datetime import UTC, datetime

    started = datetime.fromtimestamp(NOW - started_ago, UTC).isoformat().replace("+00:00", "Z")
    return WorkerInfo(id=f"w-{status.lower()}-{started_ago:g}", status=status, started_at=started, **kw)


def queued_job(**extra: Any) -> JobRecord:
    return JobRecord("job-1", "e", JobStatus.IN_QUEUE, submitted_at=NOW - 200, extra=extra)


def causes(findings: list[Finding]) -> list[str]:
    return [f.cause for f in findings]


def test_crash_loop_is_the_first_error() -> None:
    out = diagnose(health(5, unhealthy=2, initializing=1), None, info(), None, NOW)
    assert out[0].severity == "error" and out[0].cause == "unhealthy"
    assert "2 workers unhealthy" in out[0].text and "crash loop" in out[0].text and "rpdash logs" in out[0].text


def test_max_workers_zero_and_max_reached() -> None:
    out = diagnose(health(4), WorkerList([], {}), info(wmax=0), None, NOW)
    assert out[0].cause == "max_zero" and "max workers is 0" in out[0].text
    busy = [worker("RUNNING"), worker("RUNNING", 60)]
    out = diagnose(health(4, running=2), busy, info(wmax=2), None, NOW)
    assert "max_reached" in causes(out)
    assert "all 2 of 2 max workers are busy" in next(f.text for f in out if f.cause == "max_reached")


def test_every_worker_up_to_max_still_starting_is_a_cold_start_not_max_reached() -> None:
    out = diagnose(health(6, initializing=4), None, info(wmax=4), None, NOW)
    assert "max_reached" not in causes(out)
    out = diagnose(health(6, initializing=3, idle=1), None, info(wmax=4), None, NOW)
    assert "max_reached" in causes(out)  # one is up: the rest are all that will come
    # and the account's cap is not what holds an endpoint that starts all its max allows
    out = diagnose(health(6, initializing=4), None, info(wmax=4), None, NOW, account_cap=5, workers_elsewhere=1)
    assert "account_cap" not in causes(out)


def test_no_workers_at_all_while_jobs_wait() -> None:
    out = diagnose(health(3), WorkerList([], {}), info(wmax=3), None, NOW)
    f = next(f for f in out if f.cause == "no_workers")
    assert f.severity == "warn" and "quota" in f.text and "ADA_24" in f.text


def test_cold_start_says_since_when() -> None:
    out = diagnose(health(1, initializing=1), [worker("INITIALIZING", 125)], info(), None, NOW)
    f = next(f for f in out if f.cause == "cold_start")
    assert f.severity == "info" and "1 worker starting (cold start), the oldest for 2 min 5 s" in f.text
    long = diagnose(health(1, initializing=1), [worker("INITIALIZING", 900)], info(), None, NOW)
    assert next(f for f in long if f.cause == "cold_start").severity == "warn"


def test_throttled_hosts() -> None:
    out = diagnose(health(2, throttled=2), None, info(), None, NOW)
    f = next(f for f in out if f.cause == "throttled")
    assert "2 workers throttled" in f.text and "short of GPUs" in f.text


def test_low_priority_job() -> None:
    job = queued_job(policy={"lowPriority": True})
    out = diagnose(health(1, running=1), [worker("RUNNING")], info(), job, NOW)
    f = next(f for f in out if f.cause == "low_priority")
    assert f.severity == "warn" and "never makes RunPod start a worker" in f.text
    assert next(f for f in out if f.cause == "job_wait").text == "job job-1 has waited 3 min 20 s in the queue."
    assert "low_priority" not in causes(diagnose(health(1), None, info(), queued_job(), NOW))


def test_our_own_rate_limiting() -> None:
    out = diagnose(health(0), None, info(), None, NOW, our_rate_limited=12.0)
    f = next(f for f in out if f.cause == "rate_limited")
    assert "429" in f.text and "for 12 s" in f.text and "does not hold jobs" in f.text


def test_quiet_endpoint_and_context_notes() -> None:
    assert causes(diagnose(health(0, idle=1), None, info(), None, NOW)) == ["ok"]
    out = diagnose(health(2, idle=1), [worker("IDLE", is_stale=True)], info(scaler_type="QUEUE_DELAY", scaler_value=4),
                   None, NOW)  # fmt: skip
    assert {"stale", "idle_while_queued", "queue_delay"} <= set(causes(out))
    assert [f.severity for f in out] == sorted((f.severity for f in out), key=["error", "warn", "info"].index)


def test_missing_inputs_do_not_break_it() -> None:
    assert causes(diagnose(None, None, None, None, NOW)) == ["ok"]
    out = diagnose(None, None, None, queued_job(), NOW)
    assert out[0].cause == "job_wait"


def test_problem_states_say_the_numbers_are_old() -> None:
    assert causes(diagnose(None, None, None, None, NOW, problem="key rejected")) == ["key_rejected"]
    out = diagnose(health(3, running=1), None, info(), None, NOW, problem="unreachable")
    assert out[0].cause == "no_answer" and "last good ones" in out[0].text
    assert "rate_limited" in causes(diagnose(health(0), None, info(), None, NOW, problem="rate limited"))
    assert "no_answer" not in causes(diagnose(health(0), None, info(), None, NOW, problem="ok"))


def test_account_cap_bad_release_and_retry_storm() -> None:
    out = diagnose(health(2), WorkerList([], {}), info(wmax=3), None, NOW, account_cap=5, workers_elsewhere=5)
    f = next(f for f in out if f.cause == "account_cap")
    assert "worker cap (5) is used" in f.text and f.data == {"cap": 5, "elsewhere": 5}
    assert "no_workers" not in causes(out)
    ws = [worker("UNHEALTHY"), worker("RUNNING", is_stale=True)]
    f = next(f for f in diagnose(health(1), ws, info(), None, NOW) if f.cause == "bad_release")
    assert f.severity == "error" and "1 new worker unhealthy while 1 outdated worker" in f.text
    assert "bad_release" not in causes(diagnose(health(1), [worker("UNHEALTHY")], info(), None, NOW))
    storm = [JobRecord("j-9", "e", JobStatus.IN_QUEUE, retries=5)]
    f = next(f for f in diagnose(health(1), None, info(), None, NOW, jobs=storm) if f.cause == "retry_storm")
    assert "re-run 5 times" in f.text and f.data["retries"] == 5


# ------------------------------------------------------------------ result expiry


def done(mode: str = "run", **kw: Any) -> JobRecord:
    base = dict(status=JobStatus.COMPLETED, mode=mode, submitted_at=NOW - 100, finished_at=NOW - 60)
    base.update(kw)
    return JobRecord("j", "e", **base)


def test_remaining_time_of_an_unseen_result() -> None:
    sent_with_runsync = {"sent_with": "/runsync"}
    assert retention_s(done()) == 1800 and retention_s(done("runsync")) == 1800  # sent with /run
    assert retention_s(done("runsync", extra=sent_with_runsync)) == 60
    assert result_remaining(done(), NOW) == 1740
    assert result_state(done(), NOW) is ResultState.AVAILABLE
    assert describe(done(), NOW) == "result not fetched yet: RunPod keeps it 29 min 0 s more"
    # the job's own timings end it earlier than rpdash saw it: the earlier bound wins
    early = done(delay_ms=10_000, execution_ms=20_000)  # ended at NOW - 70
    assert result_remaining(early, NOW) == 1730
    sync = done("runsync", extra=sent_with_runsync)
    assert result_remaining(sync, NOW) == 0 and result_state(sync, NOW) is ResultState.EXPIRED_UNSEEN


def test_expired_before_rpdash_saw_it() -> None:
    gone = JobRecord("j", "e", JobStatus.IN_PROGRESS, submitted_at=NOW - 5000, expired=True)
    assert result_state(gone, NOW) is ResultState.EXPIRED_UNSEEN
    assert describe(gone, NOW) is not None and "expired before rpdash saw it" in describe(gone, NOW)  # type: ignore[operator]
    assert result_remaining(gone, NOW) == 0.0


def test_nothing_to_say_when_stored_pending_or_cancelled() -> None:
    assert result_state(done(output={"ok": 1}), NOW) is ResultState.STORED
    assert result_remaining(done(output={"ok": 1}), NOW) is None
    assert result_state(done(status=JobStatus.FAILED, error="boom"), NOW) is ResultState.STORED
    assert result_state(done(chunk_count=3), NOW) is ResultState.STORED
    assert result_state(done(status=JobStatus.IN_PROGRESS, finished_at=None), NOW) is ResultState.PENDING
    assert result_state(done(status=JobStatus.CANCELLED), NOW) is ResultState.NO_RESULT
    assert describe(done(output=1), NOW) is None


def test_jobs_the_idle_and_starting_workers_at_max_will_take_are_no_max_reached() -> None:
    """A moment's queue while workers at max boot or pick up jobs (the first jobs of the
    stuck-progress scenario: 2 queued, 2 of 3 workers still starting) is no incident."""
    out = diagnose(health(2, initializing=2, running=1), None, info(wmax=3), None, NOW)
    assert "max_reached" not in causes(out)
    out = diagnose(health(1, idle=1, running=2), None, info(wmax=3), None, NOW)
    assert "max_reached" not in causes(out)
    out = diagnose(health(3, initializing=1, idle=1, running=1), None, info(wmax=3), None, NOW)
    assert "max_reached" in causes(out)  # one more than they take: max holds it
