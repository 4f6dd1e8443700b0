"""Queue-position inference: which of our queued jobs can have started, without asking.

A queued job cannot finish, so knowing where the queue has got to saves most status
requests. How that is inferred is a *strategy* behind the small ``QueuePositions``
protocol, so a different pickup order can be modelled by swapping it (the tracker takes
``positions=``). ``FifoPositions`` is the default.

FIFO
----
An endpoint starts its queued jobs oldest first (low-priority jobs after the others). Our
live jobs of one endpoint are kept in that order (a *lane*). A queued job behind others of
ours cannot start before them, so queued jobs are not polled at all; the lane learns which
jobs have started from two cheap sources:

- **health counts.** While a lane has ``health_min_jobs`` or more live jobs, the tracker
  samples the endpoint's ``/health`` every ``health_every`` seconds (one request for the
  whole lane, handed to the health pane too). At most ``inQueue`` of our N live jobs can
  still be queued, so (FIFO) the first ``N - inQueue`` have started. Jobs of other clients
  only make ``inQueue`` larger, so this bound is never wrong, only weaker;
- **a probe.** Now and then the lane polls the one job where the queue should have got
  to by now: our jobs' start rate is measured between exact start times the API
  reported (``delayTime`` of finished jobs), times a gain that grows while probes land
  on started jobs and shrinks when they land on queued ones. A hit means every job
  before it started too; a miss is an upper bound, bisected at once. This finds the
  frontier in a few requests when other clients' jobs blur the health counts, or when
  there is no health. Probes that keep finding the first unknown job still queued mean
  the lane is in sync: they slow down (at most one per expected start on a slow queue).

The frontier is kept as the FIFO key of the newest job known to have started, so jobs
that finish and leave the lane do not make it forget how far the queue got. A job that
started, according to either source, gets an estimated start time.

What health says about finishes: when two consecutive health samples are identical
(queue, in progress, completed and failed counts), no job of that endpoint can have
finished in between, so a started job's check waits for the next sample. When they say
``k`` of ``P`` running jobs finished, that share of our started jobs whose check is not due
soon anyway (a job longer than usual) is checked now, the longest-running first.

Safety net and self-correction: a queued job is still checked now and then (``max(60 s,
N / 2 s)``, never more than ``max_blind`` = 120 s apart), so a FIFO assumption broken by
some other cause costs time, never a lost job. When the order proves wrong (a job the lane
thought started answers IN_QUEUE: workers pick in batches or at random), the lane's queued
jobs are checked at least every ``max_step`` for the next ``disorder_memory`` seconds, and
the lane stops inferring starts from the order meanwhile (health counts, probes and "the
jobs before a started one started too" would all mark the wrong jobs started, and each
wrong mark costs a poll that answers IN_QUEUE), so a finish is then shown about
``max_step`` after it happens, or later when the lane's request budget cannot poll every
queued job that often (2,000 queued jobs every 10 s is 200 requests/s: the documented
/status limit of one endpoint). A job re-run by the
platform (back in the queue after running) leaves the lane: its new place is unknown.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from rpdash.api.protocol import RunPodAPI
from rpdash.core.clock import Clock
from rpdash.core.errors import RateLimited, RpdashError
from rpdash.core.models import Health, JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.tracking.book import status_started
from rpdash.services.tracking.lanes import Lane, TrackedJob, TrackerStats, start_from_record
from rpdash.services.tracking.scheduler import Scheduler

log = logging.getLogger("rpdash.services.tracking")


class TrackerHost(Protocol):
    """What a strategy may use of the tracker that runs it."""

    client: RunPodAPI
    clock: Clock
    stats: TrackerStats
    scheduler: Scheduler
    interval: float
    min_interval: float
    health_every: float
    health_min_jobs: int
    probe_every: float
    on_health: Callable[[str, Health], None] | None

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...

    def start_poll(self, j: TrackedJob, *, probe: bool) -> None: ...


class QueuePositions(Protocol):
    """How the tracker infers which queued jobs can have started."""

    def bind(self, host: TrackerHost) -> None:
        """Called once by the tracker that uses this strategy."""

    def add(self, j: TrackedJob) -> None:
        """A job starts being tracked."""

    def remove(self, j: TrackedJob) -> None:
        """A job stops being tracked."""

    def due(
        self, j: TrackedJob, rec: JobRecord, now: float, *, first: bool, visible: bool
    ) -> float:
        """When the job should next be checked (``first``: it was just added)."""

    def observed(self, j: TrackedJob, rec: JobRecord, t0: float, now: float, probe: bool) -> None:
        """A status answer (asked at ``t0``) was merged into ``rec``: learn from it."""

    def requeued(self, j: TrackedJob) -> None:
        """The platform put a started job back in the queue (a re-run after a worker died):
        its place in the queue is unknown from now on."""

    def defer(self, j: TrackedJob, now: float) -> bool:
        """True to skip a due check now (the strategy rescheduled it)."""

    def lane_work(self, lane: Lane, now: float) -> float | None:
        """Start the lane's own requests when due; return when to look again."""

    def note_health(self, lane: Lane, health: Health) -> None:
        """A health answer fetched elsewhere (the health poller)."""


class FifoPositions:
    """Our jobs of one endpoint start in FIFO order (module docstring).

    Self-correcting when the order is not FIFO after all: a job the lane thought started
    that answers IN_QUEUE is *disorder*; for ``disorder_memory`` seconds after that, every
    queued job of the lane is checked at least every ``max_step`` (as if nothing were known
    of the order), and any queued job is checked at least every ``max_blind`` seconds in
    any case."""

    host: TrackerHost
    sched: Scheduler

    def __init__(self, *, max_blind: float = 120.0, disorder_memory: float = 300.0) -> None:
        self.max_blind = max_blind
        self.disorder_memory = disorder_memory

    def bind(self, host: TrackerHost) -> None:
        self.host = host
        self.sched = host.scheduler

    def add(self, j: TrackedJob) -> None:
        if j.ordered:
            j.lane.insert(j)

    def remove(self, j: TrackedJob) -> None:
        if j.ordered:
            j.lane.remove(j)

    def requeued(self, j: TrackedJob) -> None:
        self.remove(j)  # it would roll the lane's frontier back for nothing
        j.ordered = False

    def due(
        self, j: TrackedJob, rec: JobRecord, now: float, *, first: bool, visible: bool
    ) -> float:
        sched = self.sched
        last = j.last_poll
        if not j.ordered or rec.status is JobStatus.UNKNOWN:  # no known place in the FIFO
            return now if first else sched.age_due(j, now, visible)
        if j.started:
            due = sched.completion_due(j, now)
            if visible:
                due = min(due, (last if last is not None else now) + self.host.interval)
            return due
        # queued, behind the frontier: the lane's health / probe will tell
        n = len(j.lane.order)
        blind = min(max(60.0, n / 2.0), self.max_blind)
        if j.lane.disorder_until > now:
            blind = min(blind, sched.max_step)
        due = (last if last is not None else j.tracked_at) + blind
        if visible:
            cap = self.host.interval * (5 if self._health_fresh(j.lane, now) else 2.5)
            due = min(due, (last if last is not None else now) + cap)
        return due

    def observed(self, j: TrackedJob, rec: JobRecord, t0: float, now: float, probe: bool) -> None:
        lane = j.lane
        status = rec.status
        if j.ordered and rec.delay_ms is not None and status_started(status):
            self._anchor(j, start_from_record(rec, now, self.host.clock))
        if rec.terminal or status is JobStatus.IN_PROGRESS:
            if j.ordered and lane.disorder_until <= now:  # FIFO: the ones before it started
                self._imply_started_before(lane, lane.index(j), now, lane.queue_evidence_at)
                lane.note_started(j.key)
            if probe:
                self._probe_result(lane, j, True, lane.probe_at_frontier)
        elif status is JobStatus.IN_QUEUE:
            if j.ordered:
                idx = lane.index(j)
                f = lane.frontier()
                if idx < f:  # the lane thought the queue had got past it
                    lane.started_key = lane.order[idx - 1].key if idx > 0 else None
                    self._disorder(lane, now)
                if idx <= f:
                    lane.queue_evidence_at = t0
            if probe:
                self._probe_result(lane, j, False, lane.probe_at_frontier)

    def _disorder(self, lane: Lane, now: float) -> None:
        """The queue is not FIFO: check the lane's queued jobs without trusting the order."""
        fresh = lane.disorder_until <= now
        lane.disorder_until = now + self.disorder_memory
        if fresh:
            for other in lane.order:
                if not other.started and not other.in_flight:
                    self.sched.reschedule(other, now, earlier_only=True)

    def note_health(self, lane: Lane, health: Health) -> None:
        now = self.host.clock.now()
        if not lane.order or self._health_fresh(lane, now):
            return  # nothing to learn, or the tracker's own samples are fresher
        self._use_health(lane, health, list(lane.order), now)

    def _mark_started(self, j: TrackedJob, est: float, now: float) -> None:
        if j.started:
            return
        j.lane.count_start(now)
        j.started = True
        j.start_est = min(est, now)
        j.start_exact = False
        j.checks = 0
        self.sched.reschedule(j, now)

    def _imply_started_before(self, lane: Lane, idx: int, now: float, base: float) -> None:
        """FIFO: the job at ``idx`` started, so did every job before it. Their start is
        put halfway between ``base`` (when the queue was last seen that far back) and now."""
        if idx <= 0:
            return
        for k in range(lane.frontier(), idx):
            other = lane.order[k]
            if not other.started:
                self._mark_started(other, (max(base, other.tracked_at) + now) / 2, now)
        lane.note_started(lane.order[idx - 1].key)

    def _health_fresh(self, lane: Lane, now: float) -> bool:
        return lane.health_at is not None and now - lane.health_at <= 2.5 * self.host.health_every

    def _use_health(
        self, lane: Lane, health: Health, snapshot: list[TrackedJob], now: float
    ) -> None:
        """A health sample for ``lane``; ``snapshot`` is the lane's order when it was asked."""
        jobs = health.jobs
        cur = (jobs.inQueue, jobs.inProgress, jobs.completed + jobs.failed)
        prev = lane.health_cur
        lane.quiet = prev == cur
        if prev is not None:
            # about k jobs finished since the last sample: check the k oldest of ours that
            # are not due soon anyway (a job longer than usual, a start estimated too late)
            k = max(cur[2] - prev[2], (prev[0] + prev[1]) - (cur[0] + cur[1]))
            if k > 0:
                self._pull_forward(lane, k, max(1, prev[1]), now)
        lane.health_prev_at, lane.health_at = lane.health_at, now
        lane.health_cur = cur
        started = len(snapshot) - jobs.inQueue  # at most inQueue of ours are still queued
        if started > 0 and lane.disorder_until <= now:  # which ones: only FIFO can tell
            base = lane.health_prev_at if lane.health_prev_at is not None else -math.inf
            upto = bisect.bisect_right(lane.keys, snapshot[started - 1].key)
            self._imply_started_before(lane, upto, now, base)
            lane.note_started(snapshot[started - 1].key)
        lane.queue_evidence_at = now

    def _pull_forward(self, lane: Lane, k: int, running: int, now: float) -> None:
        """``k`` of the ``running`` jobs finished: each running job had a k/running chance
        to be one of them, so check that share of our started jobs that are not due soon
        anyway, the longest-running first."""
        horizon = now + 2 * self.host.health_every
        cands = []
        for j in lane.order:
            if not j.started:
                break
            if j.due > horizon and not j.in_flight and j.owner is None and j.active:
                cands.append(j)
        if not cands:
            return
        n = min(len(cands), math.ceil(len(cands) * min(1.0, k / running)))
        cands.sort(key=lambda j: j.start_est if j.start_est is not None else now)
        for j in cands[:n]:
            self.sched.push(j, now)

    def defer(self, j: TrackedJob, now: float) -> bool:
        """Health says nothing finished since the job's last check: wait for the next one."""
        lane = j.lane
        if not (j.started and lane.quiet and j.job_id not in self.sched.visible):
            return False
        if not self._health_fresh(lane, now) or lane.health_at is None:
            return False
        if j.last_poll is not None and j.last_poll > (lane.health_prev_at or -math.inf):
            # the last check came after the earlier of the two identical samples: a finish
            # after it would have changed the counts
            self.host.stats.deferred += 1
            self.sched.push(j, max(lane.next_health, now + self.host.min_interval) + 0.01)
            return True
        return False

    def lane_work(self, lane: Lane, now: float) -> float | None:
        """Start the lane's health sample or probe when due; return the next time."""
        if not lane.order:
            return None
        nxt: float | None = None
        if lane.blocked_until > now:
            return lane.blocked_until
        if len(lane.order) >= self.host.health_min_jobs:
            if not lane.health_in_flight:
                if now >= lane.next_health:
                    if self.sched.has_slot():
                        self._start_health(lane, now)
                else:
                    nxt = lane.next_health
        if not lane.probe_in_flight and lane.disorder_until <= now:  # probes assume FIFO
            if now >= lane.next_probe:
                if self.sched.has_slot():
                    self._start_probe(lane, now)
            else:
                nxt = lane.next_probe if nxt is None else min(nxt, lane.next_probe)
        return nxt

    def _start_health(self, lane: Lane, now: float) -> None:
        lane.health_in_flight = True
        lane.next_health = now + self.host.health_every
        self.sched.in_flight += 1
        self.host.spawn(self._health(lane, list(lane.order)))

    def _probe_target(self, lane: Lane, now: float) -> int:
        """Index of the job to probe: where the queue should have got to by now.

        The estimate comes from our jobs' start rate, measured between exact start times
        the API reported (``delayTime``), or else from how fast the lane learnt of starts;
        a gain grows while probes land on started jobs and shrinks when they land on queued
        ones. A recent miss is an upper bound: the next probe bisects below it. Without any
        rate yet, the jump doubles after each hit (1, 3, 7, …)."""
        f = lane.frontier()
        mark = lane.rate_mark
        if mark is None:
            lane.rate_mark = (now, lane.started_total)
        elif now - mark[0] >= 1.0:
            sample = (lane.started_total - mark[1]) / (now - mark[0])
            lane.rate = sample if lane.rate is None else 0.5 * lane.rate + 0.5 * sample
            lane.rate_mark = (now, lane.started_total)
        a = lane.anchor
        if a is not None and lane.rate_exact:
            expected = a[0] + lane.probe_gain * lane.rate_exact * max(0.0, now - a[1])
            target = max(f, bisect.bisect_right(lane.ords, expected) - 1)
        elif lane.rate:
            since = max(0.0, now - max(lane.moved_at, now - 4 * self.host.interval))
            target = f + max(lane.probe_L, int(lane.probe_gain * lane.rate * since))
        else:
            target = f + lane.probe_L
        hi = lane.probe_hi
        if hi is not None and now - hi[1] <= 2 * self.host.probe_every:
            hi_idx = bisect.bisect_left(lane.ords, hi[0])
            if target >= hi_idx:
                target = f + max(0, hi_idx - f) // 2
        return target

    def _anchor(self, j: TrackedJob, start: float) -> None:
        """``j`` started at ``start`` (exactly, per the API): measure our start rate."""
        lane = j.lane
        a = lane.anchor
        if a is not None and j.ordinal <= a[0]:
            return
        if a is not None:
            dt = start - a[1]
            if dt < 0.5:
                return  # too close to measure; keep the older anchor
            sample = (j.ordinal - a[0]) / dt
            lane.rate_exact = sample if lane.rate_exact is None else (
                0.5 * lane.rate_exact + 0.5 * sample
            )
        lane.anchor = (j.ordinal, start)

    def _probe_result(self, lane: Lane, j: TrackedJob, started: bool, at_frontier: bool) -> None:
        """Adapt jump and pace. A miss far ahead is bisected at once; a miss on the very
        first queued job means the lane already knows its frontier (health is exact when
        the queue is all ours), so probes slow down, up to 2 × ``interval`` apart (or two
        expected starts on a slow queue)."""
        now = self.host.clock.now()
        if started:
            lane.probe_L = min(512, lane.probe_L * 2 + 1)
            lane.probe_gain = min(1.5, lane.probe_gain * 1.2)
            lane.probe_misses = 0
            return
        lane.probe_L //= 2
        lane.probe_gain = max(0.25, lane.probe_gain * 0.7)
        lane.probe_hi = (j.ordinal, now)
        if at_frontier:
            lane.probe_misses += 1
            cap = max(2 * self.host.interval, min(30.0, 2 * self._start_gap(lane)))
            wait = min(cap, self.host.probe_every * 2**lane.probe_misses)
        else:
            wait = self.host.probe_every / 4
        lane.next_probe = now + wait

    @staticmethod
    def _start_gap(lane: Lane) -> float:
        """Seconds between two of our jobs starting on this lane (0 when unknown)."""
        rate = lane.rate_exact or lane.rate
        return 1.0 / rate if rate and rate > 0 else 0.0

    def _start_probe(self, lane: Lane, now: float) -> None:
        # never more than about one probe per expected start: a slow queue needs few
        lane.next_probe = now + max(self.host.probe_every, min(30.0, self._start_gap(lane)))
        f = lane.frontier()
        n = len(lane.order)
        if f >= n:
            return
        idx = min(n - 1, self._probe_target(lane, now))
        # probe only unowned jobs that are not being checked anyway
        while idx >= f and (lane.order[idx].owner is not None or lane.order[idx].in_flight):
            idx -= 1
        if idx < f or idx < 0:
            return
        j = lane.order[idx]
        if self.sched.take_token(lane, now) > 0:
            return
        lane.probe_in_flight = True
        lane.probe_at_frontier = idx == f
        self.host.stats.probes += 1
        j.ver += 1
        self.host.start_poll(j, probe=True)

    async def _health(self, lane: Lane, snapshot: list[TrackedJob]) -> None:
        try:
            self.host.stats.health_requests += 1
            health = await self.host.client.health(lane.endpoint_id)
        except asyncio.CancelledError:
            raise
        except RpdashError as e:
            lane.health_fails += 1
            lane.next_health = self.host.clock.now() + min(
                30.0, self.host.health_every * 2**lane.health_fails
            )
            if isinstance(e, RateLimited):
                self.host.stats.rate_limited += 1
        except Exception:  # noqa: BLE001
            log.exception("health sample failed")
            lane.next_health = self.host.clock.now() + 30.0
        else:
            lane.health_fails = 0
            self._use_health(lane, health, snapshot, self.host.clock.now())
            if self.host.on_health is not None:
                try:
                    self.host.on_health(lane.endpoint_id, health)
                except Exception:  # noqa: BLE001
                    log.exception("on_health hook failed")
        finally:
            lane.health_in_flight = False
            self.sched.in_flight -= 1
            self.sched.wake.set()

