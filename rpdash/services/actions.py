"""What the user does to jobs: submit, cancel, retry, purge.

Each action checks everything it can before a request (``validation.py``: JSON object,
size, ids, policy ranges, webhook URL; the read-only switch) and raises ``InvalidInput``
(``ReadOnly`` for the switch) with one line a person can act on. Then:

- **submit, run mode**: ``/run``; the record is committed to the history *before* the call
  returns, and the tracker follows the job.
- **submit, runsync mode** (wait for the result): ``/run``, and the record is committed to the
  history at once, so quitting or a crash never loses the id (a ``/runsync`` answer brings
  the id only with the result, up to 90 s later, and RunPod keeps that result 1 minute
  instead of 30). Then one ``/status-sync`` long-poll of ``runsync_wait_ms`` (10 s): short
  jobs come back finished from ``submit``; longer ones are followed by a background task
  with ``/status-sync`` until they end (or the tracker takes over after
  ``runsync_follow_s``). Only an input too big for ``/run`` (10-20 MB) is sent with
  ``/runsync``, the id then stored the moment its answer arrives.
- **submit, stream mode**: ``/run``, then a stream follower is the job's only reader.
- **cancel** of several jobs, at most 8 at a time (the documented cancel concurrency is 20):
  each answer is a record or the error for that job. The final state is what the API says:
  when the answer is not a plain ``CANCELLED`` for a live job (the job had already ended,
  or the server said something else), the job's status is read again. A job rpdash shows
  COMPLETED* (finished, RunPod still said IN_PROGRESS) stays COMPLETED with its output; a
  ``CANCELLED`` answer notes it cleared at RunPod (``tracking/quirks.py``).
- **retry**: ``/retry`` puts the same id back in the queue; its output and error are cleared
  and the tracker follows it again from the back of the FIFO. A 404 says nothing about what
  is missing: ``/health`` (asked once per endpoint per 30 s) tells an expired job (marked
  so, "cannot be retried") from an unknown endpoint (named in the error).
- **purge**: ``/purge-queue``; then the endpoint's health and its queued jobs are refreshed at
  once (purged jobs show whatever the API says about them now, CANCELLED or expired).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from rpdash.api.protocol import RunPodAPI
from rpdash.core.clock import Clock, RealClock
from rpdash.core.errors import InvalidInput, NotFound, RpdashError, Timeout
from rpdash.core.models import (
    RUN_MAX_BYTES,
    RUNSYNC_WAIT_MIN_MS,
    Job,
    JobStatus,
    Policy,
    PurgeResult,
)
from rpdash.core.records import JobRecord
from rpdash.services.expiry import SENT_WITH
from rpdash.services.tracking import EXPIRED_MESSAGE, JobBook, JobTracker
from rpdash.services.tracking.notfound import endpoint_gone_message, is_ambiguous
from rpdash.services.tracking.quirks import cleared_changes, still_stuck
from rpdash.services.validation import (
    body_size,
    build_request,
    check_endpoint_id,
    check_job_id,
    check_mode,
)

log = logging.getLogger("rpdash.services.actions")

#: ``wait`` of the ``/runsync`` call (ms): how long submit may take before the id is known.
RUNSYNC_WAIT_MS = 10_000
#: How long the client follows a runsync job before the tracker takes over (seconds).
RUNSYNC_FOLLOW_S = 600.0
#: the longest ``/status-sync`` hold asked for while following (the SDKs' maximum, ms)
STATUS_SYNC_HOLD_MS = 90_000
CANCEL_CONCURRENCY = 8


class ReadOnly(InvalidInput):
    """The action changes something on RunPod and rpdash runs read-only."""

    label = "read-only"


class Actions:
    """Submit, cancel, retry and purge on behalf of the Session."""

    def __init__(
        self,
        client: RunPodAPI,
        book: JobBook,
        tracker: JobTracker,
        clock: Clock | None = None,
        *,
        readonly: bool = False,
        start_follower: Callable[[JobRecord], Any] | None = None,
        on_purged: Callable[[str], None] | None = None,
        runsync_wait_ms: int = RUNSYNC_WAIT_MS,
        runsync_follow_s: float = RUNSYNC_FOLLOW_S,
    ) -> None:
        self.client = client
        self.book = book
        self.tracker = tracker
        self.clock: Clock = clock or RealClock()
        self.readonly = readonly
        self.start_follower = start_follower
        self.on_purged = on_purged
        self.runsync_wait_ms = runsync_wait_ms
        self.runsync_follow_s = runsync_follow_s
        self._tasks: set[asyncio.Task[Any]] = set()

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def guard(self, what: str) -> None:
        if self.readonly:
            raise ReadOnly(f"read-only mode: {what} is disabled (started with --readonly)")

    # ------------------------------------------------------------------ submit

    async def submit(
        self,
        endpoint_id: str,
        input: str | dict[str, Any],
        *,
        mode: str = "run",
        policy: Policy | dict[str, Any] | None = None,
        webhook: str | None = None,
    ) -> JobRecord:
        self.guard("submit")
        endpoint_id = check_endpoint_id(endpoint_id)
        mode = check_mode(mode)
        req = build_request(input, mode=mode, policy=policy, webhook=webhook)
        extra: dict[str, Any] = {}
        if req.policy is not None:
            extra["policy"] = req.policy.body()
        if req.webhook:
            extra["webhook"] = req.webhook
        if mode == "runsync":
            if body_size(req) > RUN_MAX_BYTES:
                return await self._submit_runsync(endpoint_id, req, extra)
            return await self._submit_and_wait(endpoint_id, req, extra)
        ref = await self.client.run(endpoint_id, req)
        rec = self._new_record(ref.id, endpoint_id, ref.status, mode, req.input, extra)
        self.book.add(rec, submitted=True)
        if mode == "stream":
            self.tracker.track(rec, fresh=True, owner="stream")
            if self.start_follower is not None:
                self.start_follower(rec)
        else:
            self.tracker.track(rec, fresh=True)
        self.book.flush()  # the store and the UI have it when submit returns
        return self.book.get(rec.job_id) or rec

    def _new_record(
        self,
        job_id: str,
        endpoint_id: str,
        status: JobStatus,
        mode: str,
        input: dict[str, Any],
        extra: dict[str, Any],
    ) -> JobRecord:
        now = self.clock.time()
        if status is JobStatus.UNKNOWN or status.terminal:
            status = JobStatus.IN_QUEUE
        return JobRecord(
            job_id=job_id,
            endpoint_id=endpoint_id,
            status=status,
            mode=mode,
            input=input,
            submitted_at=now,
            updated_at=now,
            extra=dict(extra),
        )

    async def _submit_and_wait(
        self, endpoint_id: str, req: Any, extra: dict[str, Any]
    ) -> JobRecord:
        """runsync mode through ``/run``: the id is stored before anything can go wrong."""
        ref = await self.client.run(endpoint_id, req)
        job_id = ref.id
        rec = self._new_record(job_id, endpoint_id, ref.status, "runsync", req.input, extra)
        self.book.add(rec, submitted=True)
        self.tracker.track(rec, fresh=True, owner="runsync")
        self.book.flush()  # in the store and on screen before the first wait
        deadline = self.clock.now() + self.runsync_follow_s
        first = asyncio.ensure_future(
            self.client.status_sync(endpoint_id, job_id, wait_ms=self.runsync_wait_ms)
        )
        try:
            await asyncio.wait({first})
        except asyncio.CancelledError:
            first.cancel()
            self.tracker.release(job_id)  # stored and tracked: the tracker follows it
            raise
        if not first.cancelled() and first.exception() is None and not first.result().terminal:
            self.book.apply(job_id, first.result())
            call = asyncio.ensure_future(self._follow(endpoint_id, job_id, deadline))
            self._tasks.add(call)
            call.add_done_callback(self._tasks.discard)
            call.add_done_callback(lambda t: self._runsync_done(job_id, t))
        else:
            self._runsync_done(job_id, first)
        self.book.flush()
        return self.book.get(job_id) or rec

    async def _follow(self, endpoint_id: str, job_id: str, deadline: float) -> Job:
        """``/status-sync`` long-polls until the job ends; ``Timeout`` at ``deadline``."""
        while True:
            left_ms = int((deadline - self.clock.now()) * 1000)
            if left_ms < RUNSYNC_WAIT_MIN_MS:
                raise Timeout(f"job {job_id} still running after {self.runsync_follow_s:g} s")
            hold = min(STATUS_SYNC_HOLD_MS, left_ms)
            job = await self.client.status_sync(endpoint_id, job_id, wait_ms=hold)
            if job.terminal:
                return job
            self.book.apply(job_id, job)

    async def _submit_runsync(
        self, endpoint_id: str, req: Any, extra: dict[str, Any]
    ) -> JobRecord:
        """runsync mode for an input over /run's 10 MB: ``/runsync``, whose answer brings
        the id (stored through ``on_job_id`` the moment it arrives). Its record says so:
        RunPod keeps that result 1 minute, not 30 (``expiry.SENT_WITH``)."""
        extra = {**extra, SENT_WITH: "/runsync"}
        loop = asyncio.get_running_loop()
        got_id: asyncio.Future[str] = loop.create_future()
        holder: dict[str, JobRecord] = {}

        def on_job_id(job_id: str) -> None:
            # called inside the client the moment /runsync answers: store the id at once
            if job_id not in self.book.records:
                rec = self._new_record(
                    job_id, endpoint_id, JobStatus.IN_QUEUE, "runsync", req.input, extra
                )
                self.book.add(rec, submitted=True)
                holder["rec"] = rec
                self.tracker.track(rec, fresh=True, owner="runsync")
            if not got_id.done():
                got_id.set_result(job_id)

        call = asyncio.ensure_future(
            self.client.runsync(
                endpoint_id,
                req,
                wait_ms=self.runsync_wait_ms,
                timeout=self.runsync_follow_s,
                on_job_id=on_job_id,
            )
        )
        try:
            await asyncio.wait((got_id, call), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            if not got_id.done():
                call.cancel()
            raise
        if not got_id.done():
            # the call ended before any id: an error (or a client that never calls back)
            job = call.result()  # raises the error
            on_job_id(job.id)
        job_id = got_id.result()
        if call.done():
            self._runsync_done(job_id, call)
        else:
            self._tasks.add(call)
            call.add_done_callback(self._tasks.discard)
            call.add_done_callback(lambda t: self._runsync_done(job_id, t))
        self.book.flush()
        return self.book.get(job_id) or holder["rec"]

    def _runsync_done(self, job_id: str, call: asyncio.Task[Job] | asyncio.Future[Job]) -> None:
        if call.cancelled():
            return
        exc = call.exception()
        if exc is None:
            self.book.apply(job_id, call.result())
            rec = self.book.get(job_id)
            if rec is not None and rec.terminal:
                self.tracker.untrack(job_id)
                return
        elif not isinstance(exc, Timeout):
            msg = str(exc) if isinstance(exc, RpdashError) else type(exc).__name__
            self.book.problem(f"runsync job {job_id}: {msg}; following it by status")
        self.tracker.release(job_id)  # the tracker takes it from here

    # ------------------------------------------------------------------ cancel

    async def cancel(self, job_ids: Iterable[str]) -> list[tuple[str, JobRecord | RpdashError]]:
        self.guard("cancel")
        ids = list(dict.fromkeys(job_ids))
        sem = asyncio.Semaphore(CANCEL_CONCURRENCY)

        async def one(job_id: str) -> tuple[str, JobRecord | RpdashError]:
            async with sem:
                try:
                    return job_id, await self._cancel_one(job_id)
                except RpdashError as e:
                    return job_id, e

        results = list(await asyncio.gather(*(one(j) for j in ids)))
        self.book.flush()
        return results

    async def _cancel_one(self, job_id: str) -> JobRecord:
        job_id = check_job_id(job_id)
        rec = self.book.get(job_id)
        if rec is None:
            raise InvalidInput(f"job {job_id} is not in the job list: watch it first")
        ref = await self.client.cancel(rec.endpoint_id, job_id)
        if still_stuck(rec):  # finished, RunPod still said IN_PROGRESS: the cancel clears it
            if ref.status is JobStatus.CANCELLED:
                return self.book.change(job_id, **cleared_changes(rec, self.clock.time())) or rec
            raise RpdashError(f"RunPod answered {ref.status} and may still report job {job_id} IN_PROGRESS")
        ambiguous = ref.status is not JobStatus.CANCELLED or rec.terminal
        new: JobRecord | None = None
        if ambiguous:
            try:
                job = await self.client.status(rec.endpoint_id, job_id)
            except RpdashError:
                job = None
            if job is not None:
                self.book.apply(job_id, job)
            elif ref.status.terminal and not rec.terminal:
                self.book.change(job_id, status=ref.status, finished_at=self.clock.time())
        elif rec.status is not JobStatus.CANCELLED:
            self.book.change(job_id, status=JobStatus.CANCELLED, finished_at=self.clock.time())
        new = self.book.get(job_id) or rec
        if new.terminal:
            self.tracker.untrack(job_id)
        else:
            self.tracker.track(new)
            self.tracker.refresh_now(new.endpoint_id, queued_only=False)
        return new

    # ------------------------------------------------------------------ retry

    async def retry(self, job_id: str) -> JobRecord:
        self.guard("retry")
        job_id = check_job_id(job_id)
        rec = self.book.get(job_id)
        if rec is None:
            raise InvalidInput(f"job {job_id} is not in the job list: watch it first")
        if rec.expired:
            raise InvalidInput(
                f"job {job_id} has expired: RunPod no longer keeps it, so it cannot be "
                "retried; submit its input again"
            )
        if rec.status in (JobStatus.COMPLETED, JobStatus.CANCELLED):
            raise InvalidInput(
                f"job {job_id} is {rec.status.value}: only FAILED or TIMED_OUT jobs can be "
                "retried (edit and resubmit instead)"
            )
        try:
            ref = await self.client.retry(rec.endpoint_id, job_id)
        except NotFound as e:
            raise await self._retry_not_found(rec, e) from e
        status = ref.status if ref.status is not JobStatus.UNKNOWN else JobStatus.IN_QUEUE
        new = rec.copy(
            status=status,
            output=None,
            error=None,
            progress=None,
            finished_at=None,
            delay_ms=None,
            execution_ms=None,
            worker_id=None,
            expired=False,
            retries=rec.retries + 1,
            updated_at=self.clock.time(),
        )
        self.book.put(new, {"id": ref.id, "status": ref.status.value}, was=rec)
        if new.terminal:
            return new
        if new.mode == "stream" and self.start_follower is not None:
            self.tracker.requeued(new)
            self.tracker.track(self.book.get(job_id) or new, owner="stream")
            self.start_follower(self.book.get(job_id) or new)
        else:
            self.tracker.requeued(new)
        self.book.flush()
        return self.book.get(job_id) or new

    async def _retry_not_found(self, rec: JobRecord, e: NotFound) -> RpdashError:
        """``/retry`` said 404: ask ``/health`` which is missing (the wording says nothing).
        The job: it expired, and its record says so. The endpoint: nothing is marked."""
        what = await self.tracker.not_found.which(rec.endpoint_id) if is_ambiguous(e) else ""
        if what == "job":
            if not rec.expired:
                self.book.change(rec.job_id, expired=True, error=rec.error or EXPIRED_MESSAGE,
                                 finished_at=rec.finished_at or self.clock.time())  # fmt: skip
            self.book.flush()
            return InvalidInput(
                f"job {rec.job_id} has expired: RunPod no longer keeps it, so it cannot be "
                "retried; submit its input again"
            )
        if what == "endpoint":
            return NotFound(endpoint_gone_message(rec.endpoint_id), status_code=404)
        return e

    # ------------------------------------------------------------------ purge

    async def purge(self, endpoint_id: str) -> PurgeResult:
        self.guard("purge")
        endpoint_id = check_endpoint_id(endpoint_id)
        result = await self.client.purge_queue(endpoint_id)
        self.tracker.note_purged(endpoint_id)
        self.tracker.refresh_now(endpoint_id, queued_only=True)
        if self.on_purged is not None:
            try:
                self.on_purged(endpoint_id)
            except Exception:  # noqa: BLE001
                log.exception("on_purged hook failed")
        return result
