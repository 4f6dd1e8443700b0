"""The job book: the one place a job record changes.

``JobBook`` holds the records the job list shows (``records``, shared with the Session),
merges what the API said into a *new* record (records are never mutated in place, so the UI
can keep the old one for diffing), writes the change to the history store, and emits one
coalesced ``JobsEvent`` per event-loop tick plus a ``JobFinished`` when a job becomes
terminal. A store that cannot be written (``StoreError``: disk full, read-only, locked)
becomes one ``ProblemEvent`` (at most every 30 s) and never stops tracking; unsaved changes
are written again later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from rpdash.core.clock import Clock, RealClock
from rpdash.core.models import Job, JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.events import JobFinished, JobsEvent, ProblemEvent, Sink
from rpdash.services.health import safe_emit

EXPIRED_MESSAGE = "result expired: RunPod no longer keeps this job (404)"
PURGED_MESSAGE = "removed from the queue by purge-queue (404)"


def merge_job(rec: JobRecord, job: Job, now_wall: float) -> JobRecord | None:
    """``rec`` updated with what the API said about the job, or None when nothing changed.

    The IN_PROGRESS ``output`` is the latest progress update; a terminal ``output`` the
    result. A job seen back in the queue after a terminal state (``/retry``) loses its old
    output, error and finish time.
    """
    fields = job.model_fields_set
    changes: dict[str, Any] = {}
    status = job.status if "status" in fields else rec.status
    if status is JobStatus.UNKNOWN and rec.status is not JobStatus.UNKNOWN and not job.raw_status:
        status = rec.status
    if status != rec.status:
        changes["status"] = status
    if job.delayTime is not None and job.delayTime != rec.delay_ms:
        changes["delay_ms"] = job.delayTime
    if job.executionTime is not None and job.executionTime != rec.execution_ms:
        changes["execution_ms"] = job.executionTime
    if job.retries is not None and job.retries != rec.retries:
        changes["retries"] = job.retries
    if job.workerId is not None and job.workerId != rec.worker_id:
        changes["worker_id"] = job.workerId
    if status.terminal:
        if job.output != rec.output and ("output" in fields or rec.output is None):
            changes["output"] = job.output
        err = job.error_text
        if err != rec.error:
            changes["error"] = err
        if rec.finished_at is None or not rec.status.terminal:
            changes["finished_at"] = now_wall
    else:
        if rec.status.terminal or rec.expired:  # back in the game (retry)
            for k, v in (("output", None), ("error", None), ("finished_at", None)):
                if getattr(rec, k) != v:
                    changes[k] = v
            if rec.progress is not None:
                changes["progress"] = None
        elif status is JobStatus.IN_QUEUE and rec.progress is not None:
            changes["progress"] = None  # re-queued (a re-run): the old run's progress is moot
        if status is JobStatus.IN_PROGRESS and "output" in fields and job.output is not None:
            if job.output != rec.progress:
                changes["progress"] = job.output
        if job.error is not None and job.error_text != rec.error:
            changes["error"] = job.error_text
    if rec.expired:
        changes["expired"] = False
    if not changes:
        return None
    changes["updated_at"] = now_wall
    return rec.copy(**changes)


def status_started(status: JobStatus) -> bool:
    return status is JobStatus.IN_PROGRESS or status.terminal and status is not JobStatus.CANCELLED


class JobBook:
    """The job records (shared with the UI), their store writes and their events."""

    def __init__(
        self,
        store: Any,
        sink: Sink,
        clock: Clock | None = None,
        records: dict[str, JobRecord] | None = None,
        *,
        problem_every: float = 30.0,
    ) -> None:
        self.store = store
        self.sink = sink
        self.clock: Clock = clock or RealClock()
        self.records: dict[str, JobRecord] = records if records is not None else {}
        self.problem_every = problem_every
        self.store_failures = 0
        self._pending: dict[str, JobRecord] = {}
        self._finished: list[JobRecord] = []
        self._writes: dict[str, tuple[JobRecord, dict[str, Any] | None]] = {}
        self._retry_writes_at = 0.0
        self._flush_scheduled = False
        self._problems: dict[str, float] = {}

    # ------------------------------------------------------------------ reads

    def get(self, job_id: str) -> JobRecord | None:
        return self.records.get(job_id)

    # ------------------------------------------------------------------ changes

    def load(self, recs: Iterable[JobRecord]) -> None:
        """Put records read from the history in memory (no event, no write)."""
        for r in recs:
            self.records.setdefault(r.job_id, r)

    def add(self, rec: JobRecord, *, submitted: bool = False, emit: bool = True) -> JobRecord:
        """A new job (submitted, watched). ``submitted`` writes and commits it at once."""
        self.records[rec.job_id] = rec
        if submitted:
            if not self.store_call("record_submitted", rec):
                self._writes[rec.job_id] = (rec, None)  # the id is written again later
        else:
            self._writes[rec.job_id] = (rec, None)
        if emit:
            self._pending[rec.job_id] = rec
            if rec.terminal:
                self._finished.append(rec)
        self._schedule_flush()
        return rec

    def apply(self, job_id: str, job: Job) -> JobRecord | None:
        """Merge an API answer into the job's record; returns the new record if it changed."""
        rec = self.records.get(job_id)
        if rec is None:
            return None
        new = merge_job(rec, job, self.clock.time())
        if new is None:
            return None
        try:
            raw = job.raw()
        except Exception:  # noqa: BLE001
            raw = None
        self.put(new, raw, was=rec)
        return new

    def change(self, job_id: str, **changes: Any) -> JobRecord | None:
        """Set fields of a record (an expiry, a cancel answer, a chunk count...)."""
        rec = self.records.get(job_id)
        if rec is None:
            return None
        changes.setdefault("updated_at", self.clock.time())
        new = rec.copy(**changes)
        self.put(new, None, was=rec)
        return new

    def put(
        self,
        new: JobRecord,
        raw: dict[str, Any] | None = None,
        *,
        was: JobRecord | None = None,
        emit: bool = True,
    ) -> None:
        was = was if was is not None else self.records.get(new.job_id)
        self.records[new.job_id] = new
        self._writes[new.job_id] = (new, raw)
        if emit:
            self._pending[new.job_id] = new
            if new.terminal and (was is None or not was.terminal):
                self._finished.append(new)
        self._schedule_flush()

    # ------------------------------------------------------------------ output

    def _schedule_flush(self) -> None:
        if self._flush_scheduled:
            return
        self._flush_scheduled = True
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no loop (sync use in tests): flush now
            self.flush()

    def flush(self) -> None:
        """Write pending changes in one transaction, then emit one JobsEvent and the
        JobFinished events. Called once per loop tick; safe to call any time."""
        self._flush_scheduled = False
        if self._writes:
            self._write_pending()
        if self._pending:
            jobs = list(self._pending.values())
            self._pending.clear()
            safe_emit(self.sink, JobsEvent(jobs))
        if self._finished:
            done, self._finished = self._finished, []
            for rec in done:
                safe_emit(self.sink, JobFinished(self.records.get(rec.job_id, rec)))

    def _write_pending(self) -> None:
        if self.store_failures and self.clock.now() < self._retry_writes_at:
            return  # the store failed a moment ago: keep the changes, try again later
        items = list(self._writes.values())
        many = getattr(self.store, "update_many", None)
        ok = (
            self.store_call("update_many", items)
            if many is not None
            else all(self.store_call("update", r, raw) for r, raw in items)
        )
        if ok:
            self._writes.clear()
            self.store_failures = 0
        else:
            self._retry_writes_at = self.clock.now() + 5.0
            if len(self._writes) > 50_000:  # never grow without bound on a dead disk
                self._writes.clear()

    def store_call(self, method: str, *args: Any) -> bool:
        """Call a store method; a failure becomes a ProblemEvent (rate-limited)."""
        if self.store is None:
            return True
        try:
            getattr(self.store, method)(*args)
            return True
        except Exception as e:  # noqa: BLE001 - StoreError, or an unexpected sqlite error
            self.store_failures += 1
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.problem(f"job history not saved: {msg}", key="store", severity="error")
            return False

    def store_read(self, method: str, *args: Any, default: Any = None) -> Any:
        if self.store is None:
            return default
        try:
            return getattr(self.store, method)(*args)
        except Exception as e:  # noqa: BLE001
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.problem(f"job history not readable: {msg}", key="store-read", severity="error")
            return default

    def problem(
        self,
        message: str,
        *,
        key: str | None = None,
        severity: str = "warning",
        endpoint_id: str | None = None,
        every: float | None = None,
    ) -> None:
        """Emit a ProblemEvent, at most once per ``every`` seconds for the same ``key``."""
        k = key or message
        now = self.clock.now()
        last = self._problems.get(k)
        if last is not None and now - last < (self.problem_every if every is None else every):
            return
        self._problems[k] = now
        safe_emit(self.sink, ProblemEvent(message, severity=severity, endpoint_id=endpoint_id))
