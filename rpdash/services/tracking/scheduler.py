"""The scheduler: when each live job is checked next, and which checks may start now.

Every tracked job has a *next due* time in one heap (lazy deletion by version number). The
loop moves the due jobs to a ready queue (on-screen jobs first) and starts polls while fewer
than ``concurrency`` are in flight and the endpoint's request budget (``max_rate`` per
second, below the documented 200/s for status calls) allows. A poll never overlaps another
poll of the same job.

What decides a due time: a terminal job leaves the heap for good; a job whose queue position
is inferred is due when the queue-position strategy says (see ``positions``); a started job
is due around its expected completion (``completion_due``); a job whose place is unknown
(watched, or an unknown status) every ``interval`` at first, then at steps that grow with
its age (``age_due``); an on-screen job at least every ``interval`` while it runs.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from typing import Protocol

from rpdash.core.clock import Clock
from rpdash.core.records import JobRecord
from rpdash.services.health import Waker
from rpdash.services.tracking.lanes import Lane, TrackedJob


class DueRules(Protocol):
    """What the scheduler asks the queue-position strategy (``positions.QueuePositions``)."""

    def due(
        self, j: TrackedJob, rec: JobRecord, now: float, *, first: bool, visible: bool
    ) -> float: ...

    def defer(self, j: TrackedJob, now: float) -> bool: ...

    def lane_work(self, lane: Lane, now: float) -> float | None: ...


class Scheduler:
    """Due heap, ready queues, concurrency bound and per-lane request budget."""

    def __init__(
        self,
        clock: Clock,
        records: dict[str, JobRecord],
        *,
        interval: float,
        min_interval: float,
        max_step: float,
        concurrency: int,
        max_rate: float,
    ) -> None:
        self.clock = clock
        self.records = records
        self.interval = interval
        self.min_interval = min_interval
        self.max_step = max_step
        self.concurrency = concurrency
        self.max_rate = max_rate
        self.heap: list[tuple[float, int, int, TrackedJob]] = []
        self._seq = itertools.count()
        self.ready_vis: deque[TrackedJob] = deque()
        self.ready: deque[TrackedJob] = deque()
        self.visible: set[str] = set()
        self.in_flight = 0
        self.wake = Waker()
        #: the queue-position strategy (set by the tracker)
        self.positions: DueRules | None = None
        #: True for the job a long-poll follows (it is kept out of the heap)
        self.followed: Callable[[TrackedJob], bool] = lambda j: False

    # ------------------------------------------------------------------ heap

    def push(self, j: TrackedJob, due: float) -> None:
        j.ver += 1
        j.due = due
        heapq.heappush(self.heap, (due, next(self._seq), j.ver, j))
        self.wake.set()

    def pump(self, now: float) -> None:
        """Due heap entries → ready queues (visible first)."""
        heap = self.heap
        while heap and heap[0][0] <= now:
            _, _, ver, j = heapq.heappop(heap)
            if ver != j.ver or not j.active or j.in_flight or j.owner is not None:
                continue
            j.ver += 1  # taken
            (self.ready_vis if j.job_id in self.visible else self.ready).append(j)

    def has_slot(self) -> bool:
        return self.in_flight < self.concurrency

    def take_token(self, lane: Lane, now: float) -> float:
        """Spend one request of the lane's budget: 0 when allowed, else seconds to wait."""
        if lane.tokens_at is None:
            lane.tokens_at = now
        lane.tokens = min(self.max_rate, lane.tokens + (now - lane.tokens_at) * self.max_rate)
        lane.tokens_at = now
        if lane.tokens >= 1.0:
            lane.tokens -= 1.0
            return 0.0
        return (1.0 - lane.tokens) / self.max_rate

    def dispatch(
        self,
        now: float,
        lanes: list[Lane],
        start_poll: Callable[[TrackedJob], None],
    ) -> float | None:
        """Start what is due; return when the loop should look again (None: when woken)."""
        positions = self.positions
        assert positions is not None
        nxt: float | None = None
        # lane-level work first: health samples and probes are cheap and inform the rest
        for lane in lanes:
            t = positions.lane_work(lane, now)
            if t is not None and (nxt is None or t < nxt):
                nxt = t
        blocked: list[TrackedJob] = []
        for q in (self.ready_vis, self.ready):
            while q and self.in_flight < self.concurrency:
                j = q.popleft()
                if not j.active or j.in_flight or j.owner is not None:
                    continue
                lane = j.lane
                if lane.blocked_until > now:
                    self.push(j, lane.blocked_until)
                    continue
                if positions.defer(j, now):
                    continue
                wait = self.take_token(lane, now)
                if wait > 0:
                    blocked.append(j)
                    t = now + wait
                    nxt = t if nxt is None else min(nxt, t)
                    continue
                start_poll(j)
        for j in blocked:
            (self.ready_vis if j.job_id in self.visible else self.ready).appendleft(j)
        if self.heap:
            # drop stale entries at the top so the sleep is not cut short for nothing
            heap = self.heap
            while heap and (heap[0][2] != heap[0][3].ver or not heap[0][3].active):
                heapq.heappop(heap)
            if heap and (self.in_flight < self.concurrency):
                t = heap[0][0]
                nxt = t if nxt is None else min(nxt, t)
        if (self.ready_vis or self.ready) and self.in_flight < self.concurrency and not blocked:
            nxt = now
        return nxt

    # ------------------------------------------------------------------ due times

    def reschedule(
        self,
        j: TrackedJob,
        now: float,
        *,
        first: bool = False,
        soon: bool = False,
        earlier_only: bool = False,
    ) -> None:
        """Compute and push the job's next due time."""
        if not j.active or j.owner is not None or self.followed(j):
            j.ver += 1  # drop any heap entry
            return
        rec = self.records.get(j.job_id)
        if rec is None:
            return
        assert self.positions is not None
        visible = j.job_id in self.visible
        if soon:
            due = now
        else:
            due = self.positions.due(j, rec, now, first=first, visible=visible)
        due = max(due, now)
        if earlier_only and due >= j.due and not j.in_flight:
            return  # its current heap entry is sooner
        self.push(j, due)

    def age_due(self, j: TrackedJob, now: float, visible: bool) -> float:
        """A job whose place is unknown: every ``interval`` at first (on screen: always),
        then a quarter of the time since its status last changed, up to ``max_step``."""
        age = now - j.since
        step = self.interval if visible else min(self.max_step, max(self.interval, age / 4))
        return j.last_poll + step if j.last_poll is not None else now

    def completion_due(self, j: TrackedJob, now: float) -> float:
        """A started job: first at ``start + p50`` of the lane's execution times, then at
        ``start + p90``, then at steps that grow with its age in progress (a quarter of the
        age, between ``min_interval`` and ``max_step``). Before any execution time is known:
        every ``interval``, then every half its age."""
        start = j.start_est if j.start_est is not None else now
        if not j.lane.exec_s:
            # no execution time seen on this endpoint yet: every ``interval`` at first,
            # then half the job's age (1, 2, 3, 4.5, 6.75 … s into the run)
            age = max(0.0, now - start)
            base = j.last_poll if j.last_poll is not None and j.checks else start
            return max(base + max(self.interval, age / 2), now)
        p50, p90 = j.lane.quantiles(self.interval)
        if j.checks == 0:
            target = start + p50
        elif j.checks == 1 and start + p90 > now:
            target = start + p90
        else:
            age = max(0.0, now - start)
            target = now + min(self.max_step, max(self.min_interval, age / 4))
        if j.last_poll is not None:
            target = max(target, j.last_poll + self.min_interval)
        return target
