"""The loop: ``JobTracker`` wires the book, the scheduler, the queue-position strategy and
the selected-job follower, and turns status answers into record changes (failed checks:
``failures``).

Jobs owned by someone else (a stream follower, a runsync call in flight) are kept in the lane
(they hold a FIFO place) but not polled until ``release``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from rpdash.api.protocol import RunPodAPI
from rpdash.core.clock import Clock, RealClock
from rpdash.core.models import Health, Job, JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.events import Sink
from rpdash.services.health import sleep_or_wake
from rpdash.services.tracking.book import EXPIRED_MESSAGE, PURGED_MESSAGE, JobBook
from rpdash.services.tracking.failures import check_not_found, needs_check, poll_failed
from rpdash.services.tracking.lanes import (
    Lane,
    TrackedJob,
    TrackerStats,
    order_key,
    start_from_record,
)
from rpdash.services.tracking.notfound import NotFoundCheck, endpoint_gone_message
from rpdash.services.tracking.positions import FifoPositions, QueuePositions
from rpdash.services.tracking.quirks import (
    confirm_gap,
    is_rerun,
    looks_final,
    repeats_final,
    restarted,
    stuck_after_completion,
    stuck_changes,
)
from rpdash.services.tracking.scheduler import Scheduler
from rpdash.services.tracking.selected import SelectedJobFollower

_KEEP: Any = object()  # track(owner=...) default: leave the owner as it is

#: Status/health requests the tracker keeps in flight at most. A bound on requests in
#: flight is a bound on the rate only through the answer time (rate = in flight / answer
#: time): 8 held polling to ~10/s while a submit burst made answers take 0.6 s, and the
#: jobs that finished meanwhile waited in the ready queue (bench/README.md section 3). The
#: rate itself is bounded per endpoint by ``max_rate`` and the client's /status window.
POLL_CONCURRENCY = 32


class JobTracker:
    """Refreshes the live jobs' records (see the package docstring for the scheduler).

    ``positions`` is the queue-position strategy: ``FifoPositions()`` (the default) or
    ``UnorderedPositions()`` for endpoints whose workers pick jobs in no known order."""

    def __init__(
        self,
        client: RunPodAPI,
        store: Any,
        sink: Sink,
        clock: Clock | None = None,
        interval: float = 2.0,
        concurrency: int = POLL_CONCURRENCY,
        *,
        book: JobBook | None = None,
        min_interval: float = 0.5,
        max_step: float | None = None,
        health_every: float = 1.0,
        health_min_jobs: int = 4,
        max_rate: float = 100.0,
        not_found_grace: float = 5.0,
        sync_wait: float | None = None,
        on_health: Callable[[str, Health], None] | None = None,
        positions: QueuePositions | None = None,
        not_found: NotFoundCheck | None = None,
    ) -> None:
        self.client = client
        self.clock: Clock = clock or RealClock()
        self.book = book if book is not None else JobBook(store, sink, self.clock)
        self.sink = sink
        self.min_interval = max(0.05, float(min_interval))
        self.interval = max(self.min_interval, float(interval))
        self.max_step = max_step if max_step is not None else 5 * self.interval
        self.concurrency = max(1, int(concurrency))
        self.health_every = max(0.2, float(health_every))
        self.health_min_jobs = health_min_jobs
        self.max_rate = max(1.0, float(max_rate))
        self.not_found_grace = not_found_grace
        self.sync_wait = sync_wait if sync_wait is not None else max(1.0, self.interval)
        self.probe_every = max(self.min_interval, self.interval / 2)
        #: called with every health sample the tracker fetched (to show it, not fetch twice)
        self.on_health = on_health
        self.stats = TrackerStats()
        #: tells an expired job from an unknown endpoint after a 404 (shared per client)
        self.not_found = not_found or NotFoundCheck.shared(client, self.clock)

        self.scheduler = Scheduler(
            self.clock,
            self.book.records,
            interval=self.interval,
            min_interval=self.min_interval,
            max_step=self.max_step,
            concurrency=self.concurrency,
            max_rate=self.max_rate,
        )
        #: the queue-position inference (swappable; FIFO by default)
        self.positions: QueuePositions = positions if positions is not None else FifoPositions()
        self.scheduler.positions = self.positions
        self.follower = SelectedJobFollower(self)
        self.scheduler.followed = self.follower.follows
        self.positions.bind(self)

        self._jobs: dict[str, TrackedJob] = {}
        self._lanes: dict[str, Lane] = {}
        self._seq = itertools.count()
        self._selected: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = asyncio.Event()
        self._running.set()
        self._task: asyncio.Task[None] | None = None

    # ================================================================== public

    @property
    def records(self) -> dict[str, JobRecord]:
        return self.book.records

    @property
    def tracked(self) -> list[str]:
        """Ids of the jobs being tracked (live)."""
        return list(self._jobs)

    def is_tracking(self, job_id: str) -> bool:
        return job_id in self._jobs

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="job-tracker")
        if self._selected is not None and not self.paused:
            self.follower.start()
        return self._task

    async def stop(self) -> None:
        tasks = [t for t in (self._task, self.follower.task) if t is not None]
        tasks += list(self._tasks)
        self._task = self.follower.task = None
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self.book.flush()

    def track(
        self,
        rec: JobRecord,
        *,
        fresh: bool = False,
        owner: str | None | object = _KEEP,
        ordered: bool | None = None,
    ) -> None:
        """Start (or keep) tracking ``rec``'s job. The record must be in the book (added if
        not). ``fresh``: we just submitted it (a quick 404 is retried). ``owner``: someone
        else reports its status for now (see ``release``; unchanged when not given).
        ``ordered``: its place in the endpoint's FIFO is known from its submit time (False
        for watched jobs)."""
        if rec.job_id not in self.book.records:
            self.book.add(rec, emit=False)
        rec = self.book.records[rec.job_id]
        if rec.terminal:
            self.untrack(rec.job_id)
            return
        now = self.clock.now()
        old = self._jobs.get(rec.job_id)
        if old is not None:
            if owner is not _KEEP:
                old.owner = owner  # type: ignore[assignment]
            if fresh:
                old.fresh_until = now + self.not_found_grace
            self.scheduler.reschedule(old, now)
            return
        if ordered is None:
            ordered = not (isinstance(rec.extra, dict) and rec.extra.get("watched"))
        lane = self._lane(rec.endpoint_id)
        j = TrackedJob(rec.job_id, lane, order_key(rec, next(self._seq)), ordered, now)
        j.owner = None if owner is _KEEP else owner  # type: ignore[assignment]
        if fresh:
            j.fresh_until = now + self.not_found_grace
        if rec.status is JobStatus.IN_PROGRESS:
            j.started = True
            j.start_est = start_from_record(rec, now, self.clock)
        self._jobs[rec.job_id] = j
        self.positions.add(j)
        if lane.tokens_at is None:
            lane.tokens_at = now
            lane.tokens = min(self.max_rate, 20.0)
        self.scheduler.reschedule(j, now, first=True)
        if rec.job_id == self._selected and self.follower.task is None and self._task is not None:
            if not self.paused:
                self.follower.start()

    def release(self, job_id: str) -> None:
        """The owner (stream follower, runsync call) stopped reporting: poll it again."""
        j = self._jobs.get(job_id)
        if j is not None and j.owner is not None:
            j.owner = None
            self.scheduler.reschedule(j, self.clock.now(), soon=True)
            if job_id == self._selected and self._task is not None and not self.paused:
                self.follower.start()

    def untrack(self, job_id: str) -> None:
        j = self._jobs.pop(job_id, None)
        if j is None:
            return
        j.active = False
        j.ver += 1
        self.positions.remove(j)
        if self._selected == job_id:
            self.follower.stop()

    def requeued(self, rec: JobRecord) -> None:
        """The job went back to the queue (``/retry``): it joins the end of the FIFO."""
        self.untrack(rec.job_id)
        extra = dict(rec.extra) if isinstance(rec.extra, dict) else {}
        extra["queued_at"] = self.clock.time()
        if extra != rec.extra:
            rec = rec.copy(extra=extra)
            self.book.put(rec, emit=False)
        self.track(rec)

    def set_visible(self, job_ids: Iterable[str]) -> None:
        new = set(job_ids)
        sched = self.scheduler
        if new == sched.visible:
            return
        added = new - sched.visible
        sched.visible = new
        now = self.clock.now()
        for jid in added:
            j = self._jobs.get(jid)
            if j is not None and not j.in_flight:
                sched.reschedule(j, now, earlier_only=True)
        sched.wake.set()

    def select(self, job_id: str | None) -> None:
        """The job the user looks at: followed by a ``/status-sync`` long-poll."""
        if job_id == self._selected:
            return
        self.follower.stop()
        self._selected = job_id
        if job_id is not None and self._task is not None and not self.paused:
            self.follower.start()

    @property
    def selected(self) -> str | None:
        return self._selected

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        self._running.clear()
        self.follower.stop()
        self.scheduler.wake.set()

    def resume(self) -> None:
        if not self.paused:
            return
        self._running.set()
        self.scheduler.wake.set()
        if self._selected is not None and self._task is not None:
            self.follower.start()

    def refresh_now(self, endpoint_id: str | None = None, *, queued_only: bool = False) -> None:
        """Check the on-screen jobs now (or every job of ``endpoint_id``, e.g. after a
        purge; ``queued_only`` limits that to the jobs we think are queued)."""
        now = self.clock.now()
        for j in list(self._jobs.values()):
            if endpoint_id is not None:
                if j.lane.endpoint_id != endpoint_id:
                    continue
                if queued_only and j.started:
                    continue
            elif j.job_id not in self.scheduler.visible:
                continue
            self.scheduler.push(j, now)
        for lane in self._lanes.values():
            if endpoint_id is None or lane.endpoint_id == endpoint_id:
                lane.next_health = now
                lane.next_probe = now
        self.scheduler.wake.set()

    def note_health(self, endpoint_id: str, health: Health) -> None:
        """A health answer fetched elsewhere (the health poller): use it too."""
        lane = self._lanes.get(endpoint_id)
        if lane is not None:
            self.positions.note_health(lane, health)

    def note_purged(self, endpoint_id: str) -> None:
        """``/purge-queue`` just ran: queued jobs that now 404 were purged, not expired."""
        lane = self._lanes.get(endpoint_id)
        if lane is not None:
            lane.purged_at = self.clock.now()
            for j in self._jobs.values():  # a 404 now means purged, not "not visible yet"
                if j.lane is lane:
                    j.fresh_until = 0.0

    # ================================================================== for the parts

    def job(self, job_id: str) -> TrackedJob | None:
        return self._jobs.get(job_id)

    def keep_task(self, task: asyncio.Task[Any]) -> None:
        """A task to await in ``stop()`` (a cancelled long-poll)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self.keep_task(asyncio.create_task(coro))

    def start_poll(self, j: TrackedJob, *, probe: bool = False) -> None:
        j.in_flight = True
        self.scheduler.in_flight += 1
        self.spawn(self._poll(j, probe))

    # ================================================================== loop

    def _lane(self, endpoint_id: str) -> Lane:
        lane = self._lanes.get(endpoint_id)
        if lane is None:
            lane = self._lanes[endpoint_id] = Lane(endpoint_id)
            lane.next_probe = self.clock.now() + self.probe_every
        return lane

    async def _run(self) -> None:
        sched = self.scheduler
        wake = sched.wake
        try:
            while True:
                if self.paused:
                    await self._running.wait()
                now = self.clock.now()
                sched.pump(now)
                nxt = sched.dispatch(now, list(self._lanes.values()), self.start_poll)
                if wake.is_set():
                    wake.clear()
                    await asyncio.sleep(0)
                    continue
                delay = None if nxt is None else max(0.0, nxt - self.clock.now())
                await sleep_or_wake(self.clock, delay, wake)
                wake.clear()
        finally:
            self.book.flush()

    async def _poll(self, j: TrackedJob, probe: bool) -> None:
        lane = j.lane
        t0 = self.clock.now()
        try:
            self.stats.status_requests += 1
            self.stats.per_job[j.job_id] = self.stats.per_job.get(j.job_id, 0) + 1
            job = await self.client.status(lane.endpoint_id, j.job_id)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001
            if needs_check(self, j, e):
                await check_not_found(self, j)
            else:
                poll_failed(self, j, e)
        else:
            self.observe(j, job, t0, probe=probe)
        finally:
            j.in_flight = False
            self.scheduler.in_flight -= 1
            if probe:
                lane.probe_in_flight = False
            self.scheduler.wake.set()

    def expire(self, j: TrackedJob) -> None:
        """RunPod answered 404 for a job no longer fresh: it expired (or was purged)."""
        self.stats.expired += 1
        rec = self.book.records.get(j.job_id)
        purged = j.lane.purged_at is not None and self.clock.now() - j.lane.purged_at < 120
        self.untrack(j.job_id)
        if rec is not None and not rec.terminal:
            if purged and rec.status in (JobStatus.IN_QUEUE, JobStatus.UNKNOWN):
                why = PURGED_MESSAGE
            else:
                why = rec.error or EXPIRED_MESSAGE
            self.book.change(j.job_id, expired=True, error=why, finished_at=self.clock.time())

    def endpoint_gone(self, endpoint_id: str) -> None:
        """A job 404 and ``/health`` 404 too: the endpoint is unknown. Its jobs are no longer
        checked (and not marked expired: nobody knows what became of them); one problem."""
        for jid in [jid for jid, j in self._jobs.items() if j.lane.endpoint_id == endpoint_id]:
            self.untrack(jid)
        self.book.problem(
            endpoint_gone_message(endpoint_id), key=f"gone:{endpoint_id}",
            severity="error", endpoint_id=endpoint_id,
        )  # fmt: skip

    def observe(self, j: TrackedJob, job: Job, t0: float, *, probe: bool = False) -> None:
        """Use a status answer: update the record, move the lane's knowledge, reschedule."""
        if not j.active:
            return
        now = self.clock.now()
        lane = j.lane
        lane.rl_fails = 0
        j.fails = 0
        last_poll, j.last_poll = j.last_poll, t0
        old = self.book.records.get(j.job_id)
        # a stuck job: identical answers counted from the first one, however close together
        if not repeats_final(old, job):
            j.final_since = t0 if looks_final(job) else None
        elif j.final_since is None:
            j.final_since = last_poll if last_poll is not None else t0
        since_first = t0 - j.final_since if j.final_since is not None else None
        if stuck_after_completion(old, job, since_first, confirm_gap(self.interval)):
            new = self.book.change(j.job_id, **stuck_changes(job, self.clock.time()))
        else:
            new = self.book.apply(j.job_id, job)
        rec = new or old
        if rec is None:
            return
        if new is not None and (old is None or new.status != old.status):
            j.since = now
        if new is not None and is_rerun(old, new):
            self.positions.requeued(j)  # back in the queue, at a place nobody tells
        elif new is not None and restarted(old, new):
            j.started, j.start_est, j.start_exact = False, None, False
        status = rec.status
        if rec.terminal:
            self.stats.finished += 1
            if not j.started:
                lane.count_start(now)
            if rec.execution_ms is not None and status in (JobStatus.COMPLETED, JobStatus.FAILED):
                lane.exec_s.append(rec.execution_ms / 1000.0)
            self.positions.observed(j, rec, t0, now, probe)
            self.untrack(j.job_id)
            return
        if status is JobStatus.IN_PROGRESS:
            j.saw_running(job, rec, t0, now, self.clock)
        elif status is JobStatus.IN_QUEUE:
            if j.started:  # FIFO was wrong about it (or it was retried): queued after all
                j.started = False
                j.start_est = None
        self.positions.observed(j, rec, t0, now, probe)
        self.scheduler.reschedule(j, now)
