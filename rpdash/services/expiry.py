"""How long RunPod keeps a finished job's result, and whether rpdash missed it. Pure.

RunPod keeps a result 30 minutes after a ``/run`` job ends and 1 minute after a
``/runsync`` job ends (runpod-api.md 7.2); after that ``/status`` answers 404 and the output
is gone. What counts is the request that created the job, not rpdash's mode: "runsync" mode
(wait for the result) sends ``/run`` and waits with ``/status-sync`` (30 min), and only an
input over ``/run``'s 10 MB goes with ``/runsync``; such a record carries
``extra["sent_with"] == "/runsync"`` (``SENT_WITH``), and only those get 1 minute.

rpdash stores outputs as soon as it sees them, so the risk is a job that finished while
rpdash was not looking (closed, offline, or a job submitted elsewhere and watched).

When did the job end? rpdash's ``finished_at`` is when it *saw* the end, which can be later
than the real end. When the job's own timings are known, ``submitted_at + (delayTime +
executionTime)`` also bounds the end; the earlier of the two is used, so the remaining
time shown is never more than what is really left.
"""

from __future__ import annotations

from enum import StrEnum

from rpdash.core.models import RESULT_RETENTION_RUN_S, RESULT_RETENTION_RUNSYNC_S, JobStatus
from rpdash.core.records import JobRecord


class ResultState(StrEnum):
    #: not finished: nothing to lose yet
    PENDING = "pending"
    #: rpdash has the output (or error / stream chunks)
    STORED = "stored"
    #: finished, output not stored, RunPod still keeps it (see remaining seconds)
    AVAILABLE = "available"
    #: finished without a result to keep (cancelled)
    NO_RESULT = "no_result"
    #: RunPod dropped it (404) or its retention ran out before rpdash saw the output
    EXPIRED_UNSEEN = "expired_unseen"


#: the record's ``extra`` key naming the request that created the job when it was not
#: ``/run`` (the value ``"/runsync"``); absent means ``/run``
SENT_WITH = "sent_with"


def sent_with_runsync(job: JobRecord) -> bool:
    """True when the job was created by a ``/runsync`` request (not ``/run``)."""
    return isinstance(job.extra, dict) and job.extra.get(SENT_WITH) == "/runsync"


def retention_s(job: JobRecord) -> float:
    """Seconds RunPod keeps the job's result after it ends: 60 when it was created by
    ``/runsync``, else 1800 (``/run``, whatever rpdash's mode)."""
    return float(RESULT_RETENTION_RUNSYNC_S if sent_with_runsync(job) else RESULT_RETENTION_RUN_S)


def output_seen(job: JobRecord) -> bool:
    """True when rpdash stored what the job produced."""
    return job.output is not None or job.error is not None or job.chunk_count > 0


def ended_at(job: JobRecord) -> float | None:
    """The earliest sure bound on when the job ended (epoch s), or None if unknown."""
    candidates = []
    if job.finished_at is not None:
        candidates.append(job.finished_at)
    if job.submitted_at and job.delay_ms is not None and job.execution_ms is not None:
        candidates.append(job.submitted_at + (job.delay_ms + job.execution_ms) / 1000.0)
    return min(candidates) if candidates else None


def result_remaining(job: JobRecord, now: float) -> float | None:
    """Seconds left before RunPod drops the result of a finished job whose output rpdash
    has not stored; None when that does not apply (not finished, already stored, no
    result, end time unknown). 0.0 means it has (most likely) expired."""
    if job.expired:
        return None if output_seen(job) else 0.0
    if not job.status.terminal or job.status is JobStatus.CANCELLED or output_seen(job):
        return None
    end = ended_at(job)
    if end is None:
        return None
    return max(0.0, end + retention_s(job) - now)


def result_state(job: JobRecord, now: float) -> ResultState:
    if output_seen(job):
        return ResultState.STORED
    if job.expired:
        return ResultState.EXPIRED_UNSEEN
    if not job.status.terminal:
        return ResultState.PENDING
    if job.status is JobStatus.CANCELLED:
        return ResultState.NO_RESULT
    left = result_remaining(job, now)
    if left is not None and left <= 0:
        return ResultState.EXPIRED_UNSEEN
    return ResultState.AVAILABLE


def describe(job: JobRecord, now: float) -> str | None:
    """One line for the job detail, or None when there is nothing to say."""
    state = result_state(job, now)
    if state is ResultState.EXPIRED_UNSEEN:
        return "result expired before rpdash saw it (RunPod keeps results 30 min after /run, 1 min after /runsync)"
    if state is ResultState.AVAILABLE:
        left = result_remaining(job, now)
        if left is None:
            return "result not fetched yet: RunPod keeps it only for a limited time"
        m, s = divmod(int(left), 60)
        when = f"{m} min {s} s" if m else f"{s} s"
        return f"result not fetched yet: RunPod keeps it {when} more"
    return None
