"""What a failed status check means, and when to try again.

A 429 pauses the endpoint's lane for ``Retry-After`` (or a backoff); a transient error keeps
the job and retries it with a growing delay; a rejected key retries every 30 s; a 404 marks
the job expired (terminal, "result expired") *except* within ``not_found_grace`` seconds of
our own submission, when it is retried: a job just accepted by ``/run`` might not be visible
to ``/status`` at once (eventual consistency: the docs do not rule it out, and allowing for
it costs one more request). Right after ``/purge-queue`` a 404 on a queued job says "removed
by purge-queue" instead (``JobTracker.expire``).
"""

from __future__ import annotations

import logging
from typing import Protocol

from rpdash.core.clock import Clock
from rpdash.core.errors import AuthError, InvalidInput, NotFound, RateLimited, RpdashError
from rpdash.services.tracking.book import JobBook
from rpdash.services.tracking.lanes import TrackedJob, TrackerStats
from rpdash.services.tracking.scheduler import Scheduler

log = logging.getLogger("rpdash.services.tracking")


class FailureHost(Protocol):
    clock: Clock
    stats: TrackerStats
    book: JobBook
    scheduler: Scheduler
    interval: float

    def expire(self, j: TrackedJob) -> None: ...

    def untrack(self, job_id: str) -> None: ...


def poll_failed(host: FailureHost, j: TrackedJob, e: BaseException) -> None:
    """The status check of ``j`` failed with ``e``: reschedule, expire or drop it."""
    now = host.clock.now()
    lane = j.lane
    ep = lane.endpoint_id
    push = host.scheduler.push
    if not j.active:
        return
    if isinstance(e, NotFound):
        if now < j.fresh_until:
            push(j, now + min(1.0, host.interval))  # just submitted: not visible yet
            return
        host.expire(j)
        return
    host.stats.errors += 1
    if isinstance(e, RateLimited):
        host.stats.rate_limited += 1
        lane.rl_fails += 1
        wait = e.retry_after if e.retry_after is not None else min(30.0, 2.0**lane.rl_fails)
        lane.blocked_until = max(lane.blocked_until, now + wait)
        push(j, lane.blocked_until)
        host.book.problem(
            f"rate limited on endpoint {ep}: job updates paused for {wait:.0f} s",
            key=f"rl:{ep}",
            endpoint_id=ep,
        )
        return
    if isinstance(e, InvalidInput):  # an id the client refuses: it can never be polled
        host.book.problem(str(e), key=f"bad:{j.job_id}", endpoint_id=ep)
        host.untrack(j.job_id)
        return
    j.fails += 1
    if isinstance(e, AuthError):
        wait = 30.0
    elif isinstance(e, RpdashError) and e.transient:
        wait = min(60.0, host.interval * 2 ** (j.fails - 1))
    elif isinstance(e, RpdashError):
        wait = 30.0
    else:
        log.error("status poll of %s failed", j.job_id, exc_info=e)
        wait = 30.0
    msg = str(e) if isinstance(e, RpdashError) else f"unexpected error: {type(e).__name__}"
    host.book.problem(msg, key=f"err:{ep}:{type(e).__name__}", endpoint_id=ep)
    push(j, now + wait)
