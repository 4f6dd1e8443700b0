"""The selected job: followed by one ``/status-sync`` long-poll at a time.

The job the user looks at is not in the scheduler's heap at all: a long-poll (``wait`` =
``sync_wait``) shows its progress every few seconds and ends the instant the job does.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from rpdash.api.protocol import RunPodAPI
from rpdash.core.clock import Clock
from rpdash.core.errors import NotFound, RateLimited
from rpdash.core.models import Job
from rpdash.services.tracking.book import JobBook
from rpdash.services.tracking.failures import needs_check, not_found_answer
from rpdash.services.tracking.lanes import TrackedJob, TrackerStats
from rpdash.services.tracking.notfound import NotFoundCheck
from rpdash.services.tracking.scheduler import Scheduler


class FollowerHost(Protocol):
    """What the follower uses of the tracker."""

    client: RunPodAPI
    clock: Clock
    stats: TrackerStats
    book: JobBook
    scheduler: Scheduler
    interval: float
    sync_wait: float
    not_found: NotFoundCheck

    @property
    def selected(self) -> str | None: ...

    def job(self, job_id: str) -> TrackedJob | None: ...

    def observe(self, j: TrackedJob, job: Job, t0: float, *, probe: bool = False) -> None: ...

    def expire(self, j: TrackedJob) -> None: ...

    def untrack(self, job_id: str) -> None: ...

    def endpoint_gone(self, endpoint_id: str) -> None: ...

    def keep_task(self, task: asyncio.Task[Any]) -> None: ...


class SelectedJobFollower:
    """Runs the long-poll of the selected job (at most one at a time)."""

    def __init__(self, host: FollowerHost) -> None:
        self.host = host
        self.task: asyncio.Task[None] | None = None

    def follows(self, j: TrackedJob) -> bool:
        return self.task is not None and j.job_id == self.host.selected

    def start(self) -> None:
        self.stop()
        jid = self.host.selected
        if jid is None:
            return
        j = self.host.job(jid)
        if j is None or j.owner is not None:
            return
        self.task = asyncio.create_task(self._loop(j), name=f"status-sync:{jid}")
        j.ver += 1  # out of the heap while the long-poll follows it

    def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            self.host.keep_task(task)  # awaited by the tracker's stop()
        jid = self.host.selected
        j = self.host.job(jid) if jid else None
        if j is not None and j.active and not j.in_flight:
            self.host.scheduler.reschedule(j, self.host.clock.now())

    async def _loop(self, j: TrackedJob) -> None:
        """Follow the selected job with ``/status-sync`` long-polls: its progress every
        ``sync_wait`` seconds, its end the moment it happens."""
        host = self.host
        wait_ms = int(host.sync_wait * 1000)
        fails = 0
        while j.active and self.task is asyncio.current_task():
            while j.in_flight:  # a regular poll was already on its way
                await asyncio.sleep(0)
                await host.clock.sleep(0.01)
            t0 = host.clock.now()
            try:
                j.in_flight = True
                host.stats.sync_requests += 1
                host.stats.per_job[j.job_id] = host.stats.per_job.get(j.job_id, 0) + 1
                job = await host.client.status_sync(j.lane.endpoint_id, j.job_id, wait_ms=wait_ms)
            except asyncio.CancelledError:
                j.in_flight = False
                # stop() could not reschedule it while the request was on its way
                if j.active and host.selected != j.job_id:
                    host.scheduler.reschedule(j, host.clock.now())
                raise
            except Exception as e:  # noqa: BLE001
                j.in_flight = False
                if needs_check(host, j, e):
                    what = await host.not_found.which(j.lane.endpoint_id)
                    wait = not_found_answer(host, j, what, reschedule=False)
                    if wait is None:
                        return
                    await host.clock.sleep(wait)
                    continue
                if isinstance(e, NotFound) and host.clock.now() >= j.fresh_until:
                    host.expire(j)
                    return
                fails += 1
                if isinstance(e, RateLimited):
                    host.stats.rate_limited += 1
                    wait = e.retry_after or min(30.0, 2.0**fails)
                else:
                    wait = min(30.0, host.interval * 2 ** (fails - 1))
                if fails == 1 and not isinstance(e, NotFound):
                    host.book.problem(str(e), key=f"sync:{j.lane.endpoint_id}")
                await host.clock.sleep(wait)
                continue
            j.in_flight = False
            fails = 0
            if self.task is not asyncio.current_task():
                # unselected while the answer was on its way: use it, then hand over
                host.observe(j, job, t0)
                return
            host.observe(j, job, t0)
            j.ver += 1  # observe rescheduled it; the long-poll keeps it
            host.scheduler.wake.set()
