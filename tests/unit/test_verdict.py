"""The verdict per endpoint: one short text and severity from the diagnosis' findings."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from rpdash.core.models import Health, JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.events import ConnState
from rpdash.services.verdict import KINDS, Verdict, VerdictBook, judge, worst_severity

NOW = 1_800_000_000.0


def health(queue: int = 0, **workers: int) -> Health:
    return Health.model_validate({"jobs": {"inQueue": queue}, "workers": workers})


def info(wmax: int = 3) -> Any:
    return SimpleNamespace(workers_max=wmax, gpu_text="ADA_24 x1", scaler_type=None, scaler_value=None)


def worker(status: str, stale: bool = False, wid: str = "") -> Any:
    return SimpleNamespace(id=wid or f"w-{status}-{stale}", status=status, is_stale=stale, started_epoch=NOW - 30)


def test_crash_loop_with_nothing_running_is_critical() -> None:
    v = judge(health(5, unhealthy=3, initializing=1), None, info(), now=NOW)
    assert (v.kind, v.severity, v.short_text) == ("crash_loop", "critical", "crash-looping (3 unhealthy, 0 running)")
    assert "crash loop" in v.reasons[0] and v.since == NOW
    assert any("cold start" in r for r in v.reasons)  # the full reasoning, not only the chosen one
    some = judge(health(5, unhealthy=1, running=2), None, info(), now=NOW)
    assert (some.severity, some.short_text) == ("warn", "crash-looping (1 unhealthy, 2 running)")


def test_drained_endpoint_is_max_workers_0_not_a_crash_loop() -> None:
    """After a drain (max 0) unhealthy workers still listed start no more: no crash loop."""
    v = judge(health(0, unhealthy=3), None, info(wmax=0), now=NOW)
    assert (v.kind, v.severity, v.short_text) == ("max_zero", "info", "max workers 0")
    assert any("unhealthy" in r for r in v.reasons)  # still said in the reasoning
    queued = judge(health(4, unhealthy=2), None, info(wmax=0), now=NOW)
    assert (queued.kind, queued.severity) == ("max_zero", "critical")


def test_no_gpus_when_throttled_and_nothing_serves() -> None:
    v = judge(health(2, throttled=4), None, info(wmax=5), now=NOW)
    assert (v.kind, v.severity, v.short_text) == ("no_gpus", "warn", "no GPUs (4 throttled)")
    calm = judge(health(0, throttled=1, idle=1), None, info(), now=NOW)
    assert calm.severity == "info"


def test_max_workers_reached() -> None:
    v = judge(health(7, running=5), None, info(wmax=5), now=NOW)
    assert (v.kind, v.severity, v.short_text) == ("max_workers", "warn", "max workers reached (5/5)")


def test_account_cap_used_by_other_endpoints() -> None:
    v = judge(health(3), [], info(wmax=3), now=NOW, account_cap=5, workers_elsewhere=5)
    assert (v.kind, v.severity) == ("account_cap", "warn")
    assert v.short_text == "account worker cap (5) used by other endpoints"
    assert "5 workers run on other endpoints" in v.reasons[0]
    # without the cap known it stays "no workers"
    plain = judge(health(3), [], info(wmax=3), now=NOW)
    assert (plain.kind, plain.short_text) == ("no_workers", "no workers (3 queued)")
    # a cap with room left is not the cause
    assert judge(health(3), [], info(wmax=3), now=NOW, account_cap=10, workers_elsewhere=5).kind == "no_workers"


def test_retry_storm_from_job_records() -> None:
    jobs = [
        JobRecord("job-a", "e", JobStatus.IN_PROGRESS, retries=1, updated_at=NOW),
        JobRecord("job-x", "e", JobStatus.IN_QUEUE, retries=4, updated_at=NOW),
        SimpleNamespace(job_id="no-retries-attr", status="IN_PROGRESS"),  # attributes absent
    ]
    v = judge(health(1, running=1), None, info(), now=NOW, jobs=jobs)
    assert (v.kind, v.severity, v.short_text) == ("retry_storm", "warn", "retry storm (job job-x re-run 4x)")
    assert "re-run 4 times" in v.reasons[0]
    old = [JobRecord("job-x", "e", JobStatus.FAILED, retries=4, finished_at=NOW - 3600)]
    assert judge(health(0, idle=1), None, info(), now=NOW, jobs=old).kind == "ok"
    long_id = [JobRecord("0123456789abcdef-u1", "e", JobStatus.IN_PROGRESS, retries=3)]
    assert judge(health(0), None, info(), now=NOW, jobs=long_id).short_text == "retry storm (job 01234567… re-run 3x)"


def test_retry_storm_explains_the_unhealthy_workers_and_ends_with_a_cancel() -> None:
    """A job that kills every worker it meets leaves unhealthy workers: the verdict names
    the job (the lever is to cancel it), not a crash loop; once cancelled it is over."""
    poison = JobRecord("job-p", "e", JobStatus.IN_QUEUE, retries=5, updated_at=NOW)
    v = judge(health(3, unhealthy=2, running=1), None, info(), now=NOW, jobs=[poison])
    assert v.short_text == "retry storm (job job-p re-run 5x)"
    cancelled = JobRecord("job-p", "e", JobStatus.CANCELLED, retries=5, finished_at=NOW - 5)
    assert judge(health(0, idle=1), None, info(), now=NOW, jobs=[cancelled]).kind == "ok"


def test_stuck_in_progress_flag() -> None:
    rec = JobRecord("job-s", "e", JobStatus.IN_PROGRESS, extra={"stuck": True})
    v = judge(health(0, running=1), None, info(), now=NOW, jobs=[rec])
    assert (v.kind, v.short_text) == ("stuck_job", "stuck job (job-s IN_PROGRESS after finishing)")
    flagged = SimpleNamespace(job_id="job-t", status=JobStatus.IN_PROGRESS, stuck_in_progress=True)
    assert judge(health(0), None, info(), now=NOW, jobs=[flagged]).kind == "stuck_job"
    # the tracker's own flag: the job is shown COMPLETED, the endpoint still says why
    seen = JobRecord("job-u", "e", JobStatus.COMPLETED, stuck_progress=True, finished_at=NOW - 5)
    assert judge(health(0), None, info(), now=NOW, jobs=[seen]).kind == "stuck_job"


def test_stuck_job_verdict_ends_once_a_cancel_cleared_it_at_runpod() -> None:
    """The lever (RunPod's /cancel of the job it still reports IN_PROGRESS) ends the
    incident: the record stays COMPLETED* with its output, the verdict is ok again; a
    second stuck job still IN_PROGRESS there keeps it."""
    from rpdash.services.tracking.quirks import cleared_changes

    seen = JobRecord("job-u", "e", JobStatus.COMPLETED, stuck_progress=True, output={"frames": 3},
                     finished_at=NOW - 5)  # fmt: skip
    cleared = seen.copy(**cleared_changes(seen, NOW))
    assert cleared.status is JobStatus.COMPLETED and cleared.output == {"frames": 3}
    assert judge(health(0), None, info(), now=NOW, jobs=[cleared]).kind == "ok"
    other = JobRecord("job-v", "e", JobStatus.COMPLETED, stuck_progress=True, finished_at=NOW - 5)
    v = judge(health(0), None, info(), now=NOW, jobs=[cleared, other])
    assert (v.kind, v.short_text) == ("stuck_job", "stuck job (job-v IN_PROGRESS after finishing)")


def test_bad_release_beats_crash_loop() -> None:
    ws = [worker("UNHEALTHY"), worker("RUNNING", stale=True, wid="o1"), worker("IDLE", stale=True, wid="o2")]
    v = judge(health(2, unhealthy=1, running=1, idle=1), ws, info(), now=NOW)
    assert (v.kind, v.severity) == ("bad_release", "critical")
    assert v.short_text == "bad release (new workers unhealthy, 2 outdated serving)"
    assert "crash loop" in " ".join(v.reasons)


def test_rpdash_problems() -> None:
    assert judge(None, now=NOW, problem=ConnState.KEY_REJECTED).short_text == "key rejected"
    assert judge(None, now=NOW, problem=ConnState.KEY_REJECTED).severity == "critical"
    v = judge(health(0, unhealthy=2), now=NOW, problem="unreachable")
    assert (v.kind, v.short_text) == ("no_answer", "no answer")  # the old numbers are not the news
    rl = judge(health(0, idle=1), now=NOW, problem=ConnState.RATE_LIMITED)
    assert (rl.kind, rl.severity, rl.short_text) == ("rate_limited", "info", "rate limited")
    # a real problem with the endpoint outranks rpdash's own rate limiting
    assert judge(health(4, unhealthy=2), now=NOW, rate_limited=5.0).kind == "crash_loop"


def test_ok_and_unknown() -> None:
    v = judge(health(0, idle=1), None, info(), now=NOW)
    assert (v.kind, v.severity, v.short_text) == ("ok", "ok", "ok") and v.reasons
    assert judge(None, now=NOW).kind == "unknown"
    assert judge(None, now=NOW, problem=ConnState.CONNECTING).kind == "unknown"
    assert set(KINDS) >= {"crash_loop", "no_gpus", "ok", "unknown"}


def test_book_keeps_since_while_the_kind_holds() -> None:
    book = VerdictBook()
    first = book.update("e", judge(health(5, unhealthy=3), now=NOW))
    later = book.update("e", judge(health(5, unhealthy=4), now=NOW + 60))
    assert later.since == first.since == NOW and later.short_text == "crash-looping (4 unhealthy, 0 running)"
    other = book.update("e", judge(health(0, idle=1), now=NOW + 90))
    assert other.since == NOW + 90
    book.update("f", Verdict("max_workers", "warn", "max workers reached (1/1)", since=NOW))
    assert book.worst() == "warn" and worst_severity([]) == "ok"


def test_max_zero_after_a_drain_from_rpdash_is_drained_not_an_incident():
    from rpdash.services.verdict import Verdict, drained_verdict

    zero = Verdict("max_zero", "critical", "max workers 0", ["max workers is 0"])
    v = drained_verdict(zero)
    assert (v.kind, v.severity, v.short_text) == ("drained", "info", "drained (:restore)")
    assert ":restore" in v.reasons[0] and "max workers is 0" in v.reasons
    other = Verdict("key_rejected", "critical", "key rejected")
    assert drained_verdict(other) is other  # a drained endpoint can still have other trouble
