"""What RunPod's platform does that the tracker must survive. Pure.

- **Re-runs.** When a worker dies mid-job the platform puts the job back in the queue: its
  status goes from IN_PROGRESS back to IN_QUEUE (then IN_PROGRESS again) and ``retries``
  grows. That is news, not an error: the record shows it, the job keeps being polled, and
  its place in the queue is unknown from then on (``is_rerun``).
- **Stuck IN_PROGRESS after completion.** runpod-python's progress thread can race the
  completion and leave a finished job saying ``IN_PROGRESS`` for good, with
  ``executionTime`` set and the final ``output`` present. A running job's
  ``executionTime`` grows with time; a stuck one's does not. Two IN_PROGRESS answers at
  least ``gap`` seconds apart with the same ``executionTime`` and the same ``output``
  (and only such answers between them) therefore mean the job ended (``stuck_after_completion``): it is recorded as COMPLETED
  with ``stuck_progress`` set, and never polled again. Detection takes the first such
  answer plus one more check (``confirm_gap`` after it at the latest).
- **Clearing a stuck job.** To RunPod such a job is still IN_PROGRESS; the operator's lever
  is ``/cancel`` (RunPod's answer for it is [unconfirmed]; runpod-api.md 5.2). A cancel
  RunPod accepts ends the stuck state there; rpdash keeps the record COMPLETED with its
  output (the work finished; CANCELLED would count it as lost in the metrics and tell the
  operator the result is gone) and notes when it was cleared (``extra[CLEARED_KEY]``,
  :func:`cleared_changes`); :func:`still_stuck` is then False.
"""

from __future__ import annotations

from typing import Any

from rpdash.core.models import Job, JobStatus
from rpdash.core.records import JobRecord


def is_rerun(old: JobRecord | None, new: JobRecord) -> bool:
    """The platform re-queued a job that had started (a worker died mid-job)."""
    if old is None or new.status is not JobStatus.IN_QUEUE:
        return False
    return old.status is JobStatus.IN_PROGRESS or new.retries > old.retries


def restarted(old: JobRecord | None, new: JobRecord) -> bool:
    """A re-run seen only once it runs again (the IN_QUEUE phase fell between two polls)."""
    return old is not None and new.status is JobStatus.IN_PROGRESS and new.retries > old.retries


def looks_final(job: Job) -> bool:
    """An IN_PROGRESS answer that carries what a finished job has (first hint of a stuck job)."""
    return (
        job.status is JobStatus.IN_PROGRESS
        and job.executionTime is not None
        and job.output is not None
    )


def repeats_final(old: JobRecord | None, job: Job) -> bool:
    """``job`` (IN_PROGRESS, looking finished) repeats the previous answer's
    ``executionTime`` and ``output`` (kept as the record's progress)."""
    if old is None or not looks_final(job) or old.status is not JobStatus.IN_PROGRESS:
        return False
    return job.executionTime == old.execution_ms and _same(job.output, old.progress)


def stuck_after_completion(
    old: JobRecord | None, job: Job, since_first: float | None, gap: float
) -> bool:
    """``job`` (IN_PROGRESS) repeats the previous answer's ``executionTime`` and ``output``,
    and the first of these identical answers was asked at least ``gap`` seconds ago
    (``since_first``): the job finished and the status is stuck.

    ``since_first`` counts from the first identical answer, not the previous one: polls
    closer together than ``gap`` (a stuck job's ``executionTime`` does not grow, so the
    scheduler keeps thinking it is a short, overdue job and checks it every fraction of a
    second) must still add up to a detection."""
    if not repeats_final(old, job):
        return False
    return since_first is not None and since_first >= gap


def stuck_changes(job: Job, now_wall: float) -> dict[str, Any]:
    """The record changes that finish a stuck job (seen finished at ``now_wall``)."""
    return {
        "status": JobStatus.COMPLETED,
        "output": job.output,
        "progress": None,
        "stuck_progress": True,
        "finished_at": now_wall,
    }


#: ``JobRecord.extra`` key: when a cancel cleared a stuck job at RunPod (wall epoch seconds)
CLEARED_KEY = "stuck_cleared_at"


def still_stuck(rec: Any) -> bool:
    """A job rpdash recognised as stuck that RunPod still reports IN_PROGRESS (duck-typed:
    ``stuck_progress`` and ``extra``)."""
    if not getattr(rec, "stuck_progress", False):
        return False
    extra = getattr(rec, "extra", None)
    return not (isinstance(extra, dict) and extra.get(CLEARED_KEY))


def cleared_changes(rec: JobRecord, now_wall: float) -> dict[str, Any]:
    """The record changes once RunPod accepted the cancel of a stuck job: status COMPLETED
    and the output kept, the time it was cleared noted."""
    return {"status": JobStatus.COMPLETED, "extra": {**rec.extra, CLEARED_KEY: now_wall},
            "updated_at": now_wall}


def confirm_gap(interval: float) -> float:
    """How far apart two identical answers must be to call a job stuck."""
    return max(1.0, interval)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - exotic output values
        return False
