"""What a failed status check means, and when to try again.

A 429 pauses the endpoint's lane for ``Retry-After`` (or a backoff); a transient error keeps
the job and retries it with a growing delay; a rejected key retries every 30 s; a 404 marks
the job expired (terminal, "result expired") *except* within ``not_found_grace`` seconds of
our own submission, when it is retried: a job just accepted by ``/run`` might not be visible
to ``/status`` at once (eventual consistency: the docs do not rule it out, and allowing for
it costs one more request). Right after ``/purge-queue`` a 404 on a queued job says "removed
by purge-queue" instead (``JobTracker.expire``).

A 404 cannot tell an expired job from an unknown endpoint (``NotFound.ambiguous``, RunPod's
404 bodies are undocumented): ``check_not_found`` asks ``/health`` once per endpoint per
30 s (``notfound.NotFoundCheck``) and ``not_found_answer`` acts on the answer: ``"job"``
expires it as above; ``"endpoint"`` stops checking every job of that endpoint and reports
one problem, marking none expired; ``"unknown"`` (``/health`` failed too) keeps the job
live and checks it again later.
"""

from __future__ import annotations

import logging
from typing import Protocol

from rpdash.core.clock import Clock
from rpdash.core.errors import AuthError, InvalidInput, NotFound, RateLimited, RpdashError
from rpdash.services.tracking.book import JobBook
from rpdash.services.tracking.lanes import TrackedJob, TrackerStats
from rpdash.services.tracking.notfound import NotFoundCheck, Which, is_ambiguous
from rpdash.services.tracking.scheduler import Scheduler

log = logging.getLogger("rpdash.services.tracking")


class FailureHost(Protocol):
    clock: Clock
    stats: TrackerStats
    book: JobBook
    scheduler: Scheduler
    interval: float
    not_found: NotFoundCheck

    def expire(self, j: TrackedJob) -> None: ...

    def untrack(self, job_id: str) -> None: ...

    def endpoint_gone(self, endpoint_id: str) -> None: ...


#: after a purge, a 404 is the purge's doing (the endpoint answered the purge): no check
PURGE_EXPLAINS_404_S = 120.0


def needs_check(host: FailureHost, j: TrackedJob, e: BaseException) -> bool:
    """``e`` is a 404 past the grace that cannot tell the job from its endpoint."""
    if not is_ambiguous(e) or host.clock.now() < j.fresh_until:
        return False
    purged = j.lane.purged_at
    return purged is None or host.clock.now() - purged >= PURGE_EXPLAINS_404_S


async def check_not_found(host: FailureHost, j: TrackedJob) -> None:
    """Ask which thing the 404 was about (shared, cached), then act on it."""
    what = await host.not_found.which(j.lane.endpoint_id)
    not_found_answer(host, j, what)


def not_found_answer(
    host: FailureHost, j: TrackedJob, what: Which, *, reschedule: bool = True
) -> float | None:
    """Act on the answer for ``j``'s 404; for ``"unknown"`` return the wait before the next
    check (the job stays live; ``reschedule``: put it back in the heap), else None."""
    if not j.active:
        return None
    if what == "job":
        host.expire(j)
        return None
    if what == "endpoint":
        host.endpoint_gone(j.lane.endpoint_id)
        return None
    j.fails += 1
    wait = min(60.0, host.interval * 2 ** (j.fails - 1))
    ep = j.lane.endpoint_id
    host.book.problem(
        f"job {j.job_id}: 404 on endpoint {ep}, and /health could not tell whether the job "
        "expired or the endpoint is unknown; the job stays live and is checked again",
        key=f"404?:{ep}",
        endpoint_id=ep,
    )
    if reschedule:
        host.scheduler.push(j, host.clock.now() + wait)
    return wait


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
