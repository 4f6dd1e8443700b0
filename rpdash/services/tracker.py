"""Job tracking: keep every live job's record current with as few requests as possible.

Two pieces live here.

``JobBook`` is the one place a job record changes. It holds the records the job list shows
(``records``, shared with the Session), merges what the API said into a *new* record (records
are never mutated in place, so the UI can keep the old one for diffing), writes the change to
the history store, and emits one coalesced ``JobsEvent`` per event-loop tick plus a
``JobFinished`` when a job becomes terminal. A store that cannot be written (``StoreError``:
disk full, read-only, locked) becomes one ``ProblemEvent`` (at most every 30 s) and never
stops tracking; unsaved changes are written again later.

``JobTracker`` refreshes the non-terminal jobs. Polling every job every ``interval`` is what
the official SDKs do (one loop per job); at scale it costs a request per job per second and
runs into the rate limit long before the work is done. The tracker instead uses what the API
tells for free.

Scheduler
---------
Every tracked job has a *next due* time in one heap (lazy deletion by version number). The
main loop sleeps until the earliest due time (or until woken: a new job, a result, a visibility
change, ``refresh_now``), moves the due jobs to a ready queue (on-screen jobs first), and
starts polls while fewer than ``concurrency`` are in flight and the endpoint's request budget
(``max_rate`` per second, below the documented 200/s for status calls) allows. A poll never
overlaps another poll of the same job. What decides a job's next due time:

1. **Terminal jobs leave the heap for good.** Nothing ever polls them again.
2. **FIFO.** An endpoint starts its queued jobs oldest first (low-priority jobs after the
   others). Our live jobs of one endpoint are kept in that order (a *lane*). A queued job
   behind others of ours cannot start before them, so queued jobs are not polled at all; the
   lane learns which jobs have started from two cheap sources:

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
3. **Expected completion.** A started job is first checked at ``start + p50`` of the
   execution times the lane has seen, then at ``start + p90``, then at steps that grow with
   its age in progress (a quarter of the age, between ``min_interval`` and ``max_step``).
   Before any execution time is known: every ``interval``, then every half its age.
   An ``IN_PROGRESS`` answer carrying ``executionTime`` or ``delayTime`` pins the start.
4. **What health says about finishes.** When two consecutive health samples are identical
   (queue, in progress, completed and failed counts), no job of that endpoint can have
   finished in between, so a started job's check waits for the next sample. When they say
   ``k`` of ``P`` running jobs finished, that share of our started jobs whose check is not
   due soon anyway (a job longer than usual) is checked now, the longest-running first.
5. **On screen first.** A visible job is polled at least every ``interval`` while it runs
   (progress output), and visible jobs go first when more polls are due than slots.
6. **The selected job** is not in the heap at all: one ``/status-sync`` long-poll at a time
   (``wait`` = ``interval``) shows its progress and ends the instant the job does.
7. **Safety net.** A queued job is still checked now and then (``max(60 s, N / 2 s)``), so a
   FIFO assumption broken by some other cause costs time, never a lost job.

Measured (tests/unit/test_services_tracker.py in simulated time; bench/polling_bench.py over
HTTP against the simulator): 2,000 jobs of 1-2 s on 50 workers cost about 1.5 status
requests per job, finishes are seen 0.4 s (p50) / under 2 s (p95) after they happen, the
selected job at once, with no 429; one loop per job polling every second (runpod-python's
asyncio client) costs over 20 requests per job and tens of thousands of 429s on the same work.

Errors: a 429 pauses the endpoint's lane for ``Retry-After`` (or a backoff); a transient error
keeps the job and retries it with a growing delay; a rejected key retries every 30 s; a 404
marks the job expired (terminal, "result expired") *except* within ``not_found_grace``
seconds of our own submission, when it is retried: a job just accepted by ``/run`` might not
be visible to ``/status`` at once (eventual consistency: the docs do not rule it out, and
allowing for it costs one more request). Right after ``/purge-queue`` a 404 on a queued job
says "removed by purge-queue" instead.

Jobs owned by someone else (a stream follower, a runsync call in flight) are kept in the lane
(they hold a FIFO place) but not polled until ``release``.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rpdash.api.protocol import RunPodAPI
from rpdash.core.clock import Clock, RealClock
from rpdash.core.errors import (
    AuthError,
    InvalidInput,
    NotFound,
    RateLimited,
    RpdashError,
)
from rpdash.core.models import Health, Job, JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.events import JobFinished, JobsEvent, ProblemEvent, Sink
from rpdash.services.health import Waker, safe_emit, sleep_or_wake

log = logging.getLogger("rpdash.services.tracker")

_KEEP: Any = object()  # track(owner=...) default: leave the owner as it is

EXPIRED_MESSAGE = "result expired: RunPod no longer keeps this job (404)"
PURGED_MESSAGE = "removed from the queue by purge-queue (404)"


# ====================================================================== records


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


# ====================================================================== tracker


@dataclass(slots=True)
class TrackerStats:
    status_requests: int = 0  # /status
    sync_requests: int = 0  # /status-sync (selected job)
    health_requests: int = 0  # /health samples taken by the tracker
    probes: int = 0  # status requests that were FIFO probes
    rate_limited: int = 0  # 429 answers that reached the tracker
    errors: int = 0
    expired: int = 0
    deferred: int = 0  # due checks skipped because health said nothing finished
    finished: int = 0  # jobs seen reaching a terminal state
    per_job: dict[str, int] = field(default_factory=dict)


class _Job:
    """Scheduling state of one tracked job (the record itself lives in the JobBook)."""

    __slots__ = (
        "job_id", "lane", "key", "ordered", "tracked_at", "fresh_until", "ver", "due",
        "started", "start_est", "start_exact", "checks", "last_poll", "since", "fails",
        "owner", "in_flight", "active", "ordinal",
    )  # fmt: skip

    def __init__(self, job_id: str, lane: _Lane, key: tuple, ordered: bool, now: float) -> None:
        self.job_id = job_id
        self.lane = lane
        self.key = key
        self.ordered = ordered
        self.tracked_at = now
        self.fresh_until = 0.0
        self.ver = 0
        self.due = math.inf
        self.started = False
        self.start_est: float | None = None
        self.start_exact = False
        self.checks = 0  # completion checks since it started
        self.last_poll: float | None = None
        self.since = now  # when its status last changed, as far as we saw
        self.fails = 0
        self.owner: str | None = None
        self.in_flight = False
        self.active = True
        self.ordinal = 0.0


class _Lane:
    """One endpoint's live jobs in FIFO order, plus what its health says."""

    def __init__(self, endpoint_id: str) -> None:
        self.endpoint_id = endpoint_id
        self.order: list[_Job] = []
        self.keys: list[tuple] = []
        self.started_key: tuple | None = None  # FIFO key of the newest job known started
        self.ords: list[float] = []  # a job's place among every job the lane ever held
        self.next_ordinal = 0.0
        # (ordinal, start time) of the newest job whose start time the API told exactly,
        # and our jobs' start rate measured between such anchors
        self.anchor: tuple[float, float] | None = None
        self.rate_exact: float | None = None
        self.exec_s: deque[float] = deque(maxlen=128)
        self._q: tuple[float, float] | None = None
        self._q_n = -1
        # health
        self.health_cur: tuple[int, int, int] | None = None
        self.health_at: float | None = None  # now() of the last sample
        self.health_prev_at: float | None = None
        self.quiet = False
        self.next_health = 0.0
        self.health_in_flight = False
        self.health_fails = 0
        # probe
        self.next_probe = 0.0
        self.probe_L = 0  # jump used until the start rate is known
        self.probe_gain = 1.0
        self.probe_misses = 0  # probes in a row that found the first unknown job queued
        self.probe_hi: tuple[float, float] | None = None  # (ordinal, when) of a queued job
        self.probe_at_frontier = False
        self.probe_in_flight = False
        self.started_total = 0  # jobs of ours seen (or implied) starting, ever
        self.moved_at = -math.inf  # when the known-started prefix last grew
        self.rate: float | None = None  # our jobs starting per second (EWMA)
        self.rate_mark: tuple[float, int] | None = None
        self.queue_evidence_at = -math.inf  # last time the first unstarted job was queued
        # budget
        self.tokens = 0.0
        self.tokens_at: float | None = None
        self.blocked_until = 0.0
        self.rl_fails = 0
        self.purged_at: float | None = None

    def index(self, j: _Job) -> int:
        i = bisect.bisect_left(self.keys, j.key)
        if i < len(self.order) and self.order[i] is j:
            return i
        return -1

    def insert(self, j: _Job) -> None:
        i = bisect.bisect_right(self.keys, j.key)
        if i == len(self.order):
            j.ordinal = self.next_ordinal
            self.next_ordinal += 1.0
        elif i == 0:
            j.ordinal = self.ords[0] - 1.0
        else:
            j.ordinal = (self.ords[i - 1] + self.ords[i]) / 2
        self.keys.insert(i, j.key)
        self.ords.insert(i, j.ordinal)
        self.order.insert(i, j)

    def remove(self, j: _Job) -> None:
        i = self.index(j)
        if i >= 0:
            del self.order[i]
            del self.keys[i]
            del self.ords[i]

    def frontier(self) -> int:
        """How many leading jobs (FIFO order) have started: every job whose key is not
        after the newest job known to have started. Kept as a key, not an index, so jobs
        that finish and leave the lane do not make the lane forget how far the queue got."""
        if self.started_key is None:
            return 0
        return bisect.bisect_right(self.keys, self.started_key)

    def note_started(self, key: tuple) -> None:
        if self.started_key is None or key > self.started_key:
            self.started_key = key

    def quantiles(self, default: float) -> tuple[float, float]:
        """(p50, p90) of recent execution times in seconds."""
        n = len(self.exec_s)
        if n == 0:
            return default, default
        if self._q is None or n != self._q_n or n == self.exec_s.maxlen:
            s = sorted(self.exec_s)
            self._q = (s[(n - 1) // 2], s[min(n - 1, int(n * 0.9))])
            self._q_n = n
        return self._q


def _order_key(rec: JobRecord, seq: int) -> tuple:
    policy = rec.extra.get("policy") if isinstance(rec.extra, dict) else None
    low = 1 if isinstance(policy, dict) and policy.get("lowPriority") else 0
    queued_at = rec.extra.get("queued_at") if isinstance(rec.extra, dict) else None
    t = queued_at if isinstance(queued_at, (int, float)) else rec.submitted_at
    return (low, float(t or 0.0), seq)


class JobTracker:
    """Refreshes the live jobs' records (see the module docstring for the scheduler)."""

    def __init__(
        self,
        client: RunPodAPI,
        store: Any,
        sink: Sink,
        clock: Clock | None = None,
        interval: float = 2.0,
        concurrency: int = 8,
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

        self._jobs: dict[str, _Job] = {}
        self._lanes: dict[str, _Lane] = {}
        self._heap: list[tuple[float, int, int, _Job]] = []
        self._seq = itertools.count()
        self._ready_vis: deque[_Job] = deque()
        self._ready: deque[_Job] = deque()
        self._visible: set[str] = set()
        self._selected: str | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = Waker()
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
            self._start_sync()
        return self._task

    async def stop(self) -> None:
        tasks = [t for t in (self._task, self._sync_task) if t is not None]
        tasks += list(self._tasks)
        self._task = self._sync_task = None
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
            self._reschedule(old, now)
            return
        if ordered is None:
            ordered = not (isinstance(rec.extra, dict) and rec.extra.get("watched"))
        lane = self._lane(rec.endpoint_id)
        j = _Job(rec.job_id, lane, _order_key(rec, next(self._seq)), ordered, now)
        j.owner = None if owner is _KEEP else owner  # type: ignore[assignment]
        if fresh:
            j.fresh_until = now + self.not_found_grace
        if rec.status is JobStatus.IN_PROGRESS:
            j.started = True
            j.start_est = self._start_from_record(rec, now)
        self._jobs[rec.job_id] = j
        if ordered:
            lane.insert(j)
        if lane.tokens_at is None:
            lane.tokens_at = now
            lane.tokens = min(self.max_rate, 20.0)
        self._reschedule(j, now, first=True)
        if rec.job_id == self._selected and self._sync_task is None and self._task is not None:
            if not self.paused:
                self._start_sync()

    def release(self, job_id: str) -> None:
        """The owner (stream follower, runsync call) stopped reporting: poll it again."""
        j = self._jobs.get(job_id)
        if j is not None and j.owner is not None:
            j.owner = None
            self._reschedule(j, self.clock.now(), soon=True)
            if job_id == self._selected and self._task is not None and not self.paused:
                self._start_sync()

    def untrack(self, job_id: str) -> None:
        j = self._jobs.pop(job_id, None)
        if j is None:
            return
        j.active = False
        j.ver += 1
        if j.ordered:
            j.lane.remove(j)
        if self._selected == job_id:
            self._stop_sync()

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
        if new == self._visible:
            return
        added = new - self._visible
        self._visible = new
        now = self.clock.now()
        for jid in added:
            j = self._jobs.get(jid)
            if j is not None and not j.in_flight:
                self._reschedule(j, now, earlier_only=True)
        self._wake.set()

    def select(self, job_id: str | None) -> None:
        """The job the user looks at: followed by a ``/status-sync`` long-poll."""
        if job_id == self._selected:
            return
        self._stop_sync()
        self._selected = job_id
        if job_id is not None and self._task is not None and not self.paused:
            self._start_sync()

    @property
    def selected(self) -> str | None:
        return self._selected

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        self._running.clear()
        self._stop_sync()
        self._wake.set()

    def resume(self) -> None:
        if not self.paused:
            return
        self._running.set()
        self._wake.set()
        if self._selected is not None and self._task is not None:
            self._start_sync()

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
            elif j.job_id not in self._visible:
                continue
            self._push(j, now)
        for lane in self._lanes.values():
            if endpoint_id is None or lane.endpoint_id == endpoint_id:
                lane.next_health = now
                lane.next_probe = now
        self._wake.set()

    def note_health(self, endpoint_id: str, health: Health) -> None:
        """A health answer fetched elsewhere (the health poller): use it too."""
        lane = self._lanes.get(endpoint_id)
        if lane is None or not lane.order or self._health_fresh(lane, self.clock.now()):
            return  # nothing to learn, or the tracker's own samples are fresher
        self._use_health(lane, health, list(lane.order), self.clock.now())

    # ================================================================== scheduling

    def _lane(self, endpoint_id: str) -> _Lane:
        lane = self._lanes.get(endpoint_id)
        if lane is None:
            lane = self._lanes[endpoint_id] = _Lane(endpoint_id)
            lane.next_probe = self.clock.now() + self.probe_every
        return lane

    def _push(self, j: _Job, due: float) -> None:
        j.ver += 1
        j.due = due
        heapq.heappush(self._heap, (due, next(self._seq), j.ver, j))
        self._wake.set()

    def _start_from_record(self, rec: JobRecord, now: float) -> float:
        if rec.delay_ms is not None and rec.submitted_at:
            submitted_mono = now - (self.clock.time() - rec.submitted_at)
            return min(now, submitted_mono + rec.delay_ms / 1000.0)
        return now

    def _reschedule(
        self,
        j: _Job,
        now: float,
        *,
        first: bool = False,
        soon: bool = False,
        earlier_only: bool = False,
    ) -> None:
        """Compute and push the job's next due time (see the module docstring)."""
        if not j.active or j.owner is not None or j.job_id == self._selected and self._sync_task:
            j.ver += 1  # drop any heap entry
            return
        rec = self.book.records.get(j.job_id)
        if rec is None:
            return
        visible = j.job_id in self._visible
        last = j.last_poll
        if soon or (first and (not j.ordered or rec.status is JobStatus.UNKNOWN)):
            due = now
        elif not j.ordered or rec.status is JobStatus.UNKNOWN:
            age = now - j.since
            step = self.interval if visible else min(self.max_step, max(self.interval, age / 4))
            due = last + step if last is not None else now
        elif j.started:
            due = self._completion_due(j, now)
            if visible:
                due = min(due, (last if last is not None else now) + self.interval)
        else:  # queued, behind the frontier: the lane's health / probe will tell
            n = len(j.lane.order)
            due = (last if last is not None else j.tracked_at) + max(60.0, n / 2.0)
            if visible:
                cap = self.interval * (5 if self._health_fresh(j.lane, now) else 2.5)
                due = min(due, (last if last is not None else now) + cap)
        due = max(due, now)
        if earlier_only and due >= j.due and not j.in_flight:
            return  # its current heap entry is sooner
        self._push(j, due)

    def _completion_due(self, j: _Job, now: float) -> float:
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

    def _mark_started(self, j: _Job, est: float, now: float) -> None:
        if j.started:
            return
        j.lane.started_total += 1
        j.lane.moved_at = now
        j.started = True
        j.start_est = min(est, now)
        j.start_exact = False
        j.checks = 0
        self._reschedule(j, now)

    def _imply_started_before(self, lane: _Lane, idx: int, now: float, base: float) -> None:
        """FIFO: the job at ``idx`` started, so did every job before it. Their start is
        put halfway between ``base`` (when the queue was last seen that far back) and now."""
        if idx <= 0:
            return
        for k in range(lane.frontier(), idx):
            other = lane.order[k]
            if not other.started:
                self._mark_started(other, (max(base, other.tracked_at) + now) / 2, now)
        lane.note_started(lane.order[idx - 1].key)

    def _health_fresh(self, lane: _Lane, now: float) -> bool:
        return lane.health_at is not None and now - lane.health_at <= 2.5 * self.health_every

    def _use_health(self, lane: _Lane, health: Health, snapshot: list[_Job], now: float) -> None:
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
        if started > 0:
            base = lane.health_prev_at if lane.health_prev_at is not None else -math.inf
            upto = bisect.bisect_right(lane.keys, snapshot[started - 1].key)
            self._imply_started_before(lane, upto, now, base)
            lane.note_started(snapshot[started - 1].key)
        lane.queue_evidence_at = now

    def _pull_forward(self, lane: _Lane, k: int, running: int, now: float) -> None:
        """``k`` of the ``running`` jobs finished: each running job had a k/running chance
        to be one of them, so check that share of our started jobs that are not due soon
        anyway, the longest-running first."""
        horizon = now + 2 * self.health_every
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
            self._push(j, now)

    # ================================================================== loop

    async def _run(self) -> None:
        try:
            while True:
                if self.paused:
                    await self._running.wait()
                now = self.clock.now()
                self._pump(now)
                nxt = self._dispatch(now)
                if self._wake.is_set():
                    self._wake.clear()
                    await asyncio.sleep(0)
                    continue
                delay = None if nxt is None else max(0.0, nxt - self.clock.now())
                await sleep_or_wake(self.clock, delay, self._wake)
                self._wake.clear()
        finally:
            self.book.flush()

    def _pump(self, now: float) -> None:
        """Due heap entries → ready queues (visible first)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, ver, j = heapq.heappop(heap)
            if ver != j.ver or not j.active or j.in_flight or j.owner is not None:
                continue
            j.ver += 1  # taken
            (self._ready_vis if j.job_id in self._visible else self._ready).append(j)

    def _dispatch(self, now: float) -> float | None:
        """Start what is due; return when the loop should look again (None: when woken)."""
        nxt: float | None = None
        # lane-level work first: health samples and probes are cheap and inform the rest
        for lane in self._lanes.values():
            t = self._lane_work(lane, now)
            if t is not None and (nxt is None or t < nxt):
                nxt = t
        blocked: list[_Job] = []
        for q in (self._ready_vis, self._ready):
            while q and self._in_flight < self.concurrency:
                j = q.popleft()
                if not j.active or j.in_flight or j.owner is not None:
                    continue
                lane = j.lane
                if lane.blocked_until > now:
                    self._push(j, lane.blocked_until)
                    continue
                if self._defer_quiet(j, now):
                    continue
                wait = self._take_token(lane, now)
                if wait > 0:
                    blocked.append(j)
                    t = now + wait
                    nxt = t if nxt is None else min(nxt, t)
                    continue
                self._start_poll(j, probe=False)
        for j in blocked:
            (self._ready_vis if j.job_id in self._visible else self._ready).appendleft(j)
        if self._heap:
            # drop stale entries at the top so the sleep is not cut short for nothing
            heap = self._heap
            while heap and (heap[0][2] != heap[0][3].ver or not heap[0][3].active):
                heapq.heappop(heap)
            if heap and (self._in_flight < self.concurrency):
                t = heap[0][0]
                nxt = t if nxt is None else min(nxt, t)
        if (self._ready_vis or self._ready) and self._in_flight < self.concurrency and not blocked:
            nxt = now
        return nxt

    def _defer_quiet(self, j: _Job, now: float) -> bool:
        """Health says nothing finished since the job's last check: wait for the next one."""
        lane = j.lane
        if not (j.started and lane.quiet and j.job_id not in self._visible):
            return False
        if not self._health_fresh(lane, now) or lane.health_at is None:
            return False
        if j.last_poll is not None and j.last_poll > (lane.health_prev_at or -math.inf):
            # the last check came after the earlier of the two identical samples: a finish
            # after it would have changed the counts
            self.stats.deferred += 1
            self._push(j, max(lane.next_health, now + self.min_interval) + 0.01)
            return True
        return False

    def _take_token(self, lane: _Lane, now: float) -> float:
        if lane.tokens_at is None:
            lane.tokens_at = now
        lane.tokens = min(self.max_rate, lane.tokens + (now - lane.tokens_at) * self.max_rate)
        lane.tokens_at = now
        if lane.tokens >= 1.0:
            lane.tokens -= 1.0
            return 0.0
        return (1.0 - lane.tokens) / self.max_rate

    def _lane_work(self, lane: _Lane, now: float) -> float | None:
        """Start the lane's health sample or probe when due; return the next time."""
        if not lane.order:
            return None
        nxt: float | None = None
        if lane.blocked_until > now:
            return lane.blocked_until
        if len(lane.order) >= self.health_min_jobs:
            if not lane.health_in_flight:
                if now >= lane.next_health:
                    if self._in_flight < self.concurrency:
                        self._start_health(lane, now)
                else:
                    nxt = lane.next_health
        if not lane.probe_in_flight:
            if now >= lane.next_probe:
                if self._in_flight < self.concurrency:
                    self._start_probe(lane, now)
            else:
                nxt = lane.next_probe if nxt is None else min(nxt, lane.next_probe)
        return nxt

    # ================================================================== requests

    def _spawn(self, coro: Any) -> None:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _start_poll(self, j: _Job, *, probe: bool) -> None:
        j.in_flight = True
        self._in_flight += 1
        self._spawn(self._poll(j, probe))

    def _start_health(self, lane: _Lane, now: float) -> None:
        lane.health_in_flight = True
        lane.next_health = now + self.health_every
        self._in_flight += 1
        self._spawn(self._health(lane, list(lane.order)))

    def _probe_target(self, lane: _Lane, now: float) -> int:
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
            since = max(0.0, now - max(lane.moved_at, now - 4 * self.interval))
            target = f + max(lane.probe_L, int(lane.probe_gain * lane.rate * since))
        else:
            target = f + lane.probe_L
        hi = lane.probe_hi
        if hi is not None and now - hi[1] <= 2 * self.probe_every:
            hi_idx = bisect.bisect_left(lane.ords, hi[0])
            if target >= hi_idx:
                target = f + max(0, hi_idx - f) // 2
        return target

    def _anchor(self, j: _Job, start: float) -> None:
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

    def _probe_result(self, lane: _Lane, j: _Job, started: bool, at_frontier: bool) -> None:
        """Adapt jump and pace. A miss far ahead is bisected at once; a miss on the very
        first queued job means the lane already knows its frontier (health is exact when
        the queue is all ours), so probes slow down, up to 2 × ``interval`` apart (or two
        expected starts on a slow queue)."""
        now = self.clock.now()
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
            cap = max(2 * self.interval, min(30.0, 2 * self._start_gap(lane)))
            wait = min(cap, self.probe_every * 2**lane.probe_misses)
        else:
            wait = self.probe_every / 4
        lane.next_probe = now + wait

    @staticmethod
    def _start_gap(lane: _Lane) -> float:
        """Seconds between two of our jobs starting on this lane (0 when unknown)."""
        rate = lane.rate_exact or lane.rate
        return 1.0 / rate if rate and rate > 0 else 0.0

    def _start_probe(self, lane: _Lane, now: float) -> None:
        # never more than about one probe per expected start: a slow queue needs few
        lane.next_probe = now + max(self.probe_every, min(30.0, self._start_gap(lane)))
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
        if self._take_token(lane, now) > 0:
            return
        lane.probe_in_flight = True
        lane.probe_at_frontier = idx == f
        self.stats.probes += 1
        j.ver += 1
        self._start_poll(j, probe=True)

    async def _health(self, lane: _Lane, snapshot: list[_Job]) -> None:
        try:
            self.stats.health_requests += 1
            health = await self.client.health(lane.endpoint_id)
        except asyncio.CancelledError:
            raise
        except RpdashError as e:
            lane.health_fails += 1
            lane.next_health = self.clock.now() + min(
                30.0, self.health_every * 2**lane.health_fails
            )
            if isinstance(e, RateLimited):
                self.stats.rate_limited += 1
        except Exception:  # noqa: BLE001
            log.exception("health sample failed")
            lane.next_health = self.clock.now() + 30.0
        else:
            lane.health_fails = 0
            self._use_health(lane, health, snapshot, self.clock.now())
            if self.on_health is not None:
                try:
                    self.on_health(lane.endpoint_id, health)
                except Exception:  # noqa: BLE001
                    log.exception("on_health hook failed")
        finally:
            lane.health_in_flight = False
            self._in_flight -= 1
            self._wake.set()

    async def _poll(self, j: _Job, probe: bool) -> None:
        lane = j.lane
        t0 = self.clock.now()
        try:
            self.stats.status_requests += 1
            self.stats.per_job[j.job_id] = self.stats.per_job.get(j.job_id, 0) + 1
            job = await self.client.status(lane.endpoint_id, j.job_id)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001
            self._poll_failed(j, e, t0)
        else:
            self._observe(j, job, t0, probe=probe)
        finally:
            j.in_flight = False
            self._in_flight -= 1
            if probe:
                lane.probe_in_flight = False
            self._wake.set()

    def _poll_failed(self, j: _Job, e: BaseException, t0: float) -> None:
        now = self.clock.now()
        lane = j.lane
        ep = lane.endpoint_id
        if not j.active:
            return
        if isinstance(e, NotFound):
            if now < j.fresh_until:
                self._push(j, now + min(1.0, self.interval))  # just submitted: not visible yet
                return
            self._expire(j)
            return
        self.stats.errors += 1
        if isinstance(e, RateLimited):
            self.stats.rate_limited += 1
            lane.rl_fails += 1
            wait = e.retry_after if e.retry_after is not None else min(30.0, 2.0**lane.rl_fails)
            lane.blocked_until = max(lane.blocked_until, now + wait)
            self._push(j, lane.blocked_until)
            self.book.problem(
                f"rate limited on endpoint {ep}: job updates paused for {wait:.0f} s",
                key=f"rl:{ep}",
                endpoint_id=ep,
            )
            return
        if isinstance(e, InvalidInput):  # an id the client refuses: it can never be polled
            self.book.problem(str(e), key=f"bad:{j.job_id}", endpoint_id=ep)
            self.untrack(j.job_id)
            return
        j.fails += 1
        if isinstance(e, AuthError):
            wait = 30.0
        elif isinstance(e, RpdashError) and e.transient:
            wait = min(60.0, self.interval * 2 ** (j.fails - 1))
        elif isinstance(e, RpdashError):
            wait = 30.0
        else:
            log.error("status poll of %s failed", j.job_id, exc_info=e)
            wait = 30.0
        msg = str(e) if isinstance(e, RpdashError) else f"unexpected error: {type(e).__name__}"
        self.book.problem(msg, key=f"err:{ep}:{type(e).__name__}", endpoint_id=ep)
        self._push(j, now + wait)

    def _expire(self, j: _Job) -> None:
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

    def note_purged(self, endpoint_id: str) -> None:
        """``/purge-queue`` just ran: queued jobs that now 404 were purged, not expired."""
        lane = self._lanes.get(endpoint_id)
        if lane is not None:
            lane.purged_at = self.clock.now()
            for j in lane.order:  # a 404 now means purged, not "not visible yet"
                j.fresh_until = 0.0

    def _observe(self, j: _Job, job: Job, t0: float, *, probe: bool = False) -> None:
        """Use a status answer: update the record, move the lane's knowledge, reschedule."""
        if not j.active:
            return
        now = self.clock.now()
        lane = j.lane
        lane.rl_fails = 0
        j.fails = 0
        j.last_poll = t0
        old = self.book.records.get(j.job_id)
        new = self.book.apply(j.job_id, job)
        rec = new or old
        if rec is None:
            return
        if new is not None and (old is None or new.status != old.status):
            j.since = now
        status = rec.status
        if j.ordered and rec.delay_ms is not None and status_started(rec.status):
            self._anchor(j, self._start_from_record(rec, now))
        if rec.terminal:
            self.stats.finished += 1
            if not j.started:
                lane.started_total += 1
                lane.moved_at = now
            if rec.execution_ms is not None and status in (JobStatus.COMPLETED, JobStatus.FAILED):
                lane.exec_s.append(rec.execution_ms / 1000.0)
            if j.ordered:
                self._imply_started_before(lane, lane.index(j), now, lane.queue_evidence_at)
                lane.note_started(j.key)
            self.untrack(j.job_id)
            if probe:
                self._probe_result(lane, j, True, lane.probe_at_frontier)
            return
        if status is JobStatus.IN_PROGRESS:
            if job.executionTime is not None:
                j.start_est, j.start_exact = t0 - job.executionTime / 1000.0, True
            elif job.delayTime is not None and not j.start_exact:
                j.start_est, j.start_exact = self._start_from_record(rec, t0), True
            if not j.started:
                j.started = True
                j.checks = 0
                lane.started_total += 1
                lane.moved_at = now
                if j.start_est is None:
                    j.start_est = (max(lane.queue_evidence_at, j.tracked_at) + t0) / 2
            else:
                j.checks += 1
            if j.ordered:
                self._imply_started_before(lane, lane.index(j), now, lane.queue_evidence_at)
                lane.note_started(j.key)
            if probe:
                self._probe_result(lane, j, True, lane.probe_at_frontier)
        elif status is JobStatus.IN_QUEUE:
            if j.started:  # FIFO was wrong about it (or it was retried): queued after all
                j.started = False
                j.start_est = None
            if j.ordered:
                idx = lane.index(j)
                f = lane.frontier()
                if idx < f:  # the lane thought the queue had got past it
                    lane.started_key = lane.order[idx - 1].key if idx > 0 else None
                if idx <= f:
                    lane.queue_evidence_at = t0
            if probe:
                self._probe_result(lane, j, False, lane.probe_at_frontier)
        self._reschedule(j, now)

    # ================================================================== selected job

    def _start_sync(self) -> None:
        self._stop_sync()
        jid = self._selected
        if jid is None:
            return
        j = self._jobs.get(jid)
        if j is None or j.owner is not None:
            return
        self._sync_task = asyncio.create_task(self._sync_loop(j), name=f"status-sync:{jid}")
        j.ver += 1  # out of the heap while the long-poll follows it

    def _stop_sync(self) -> None:
        task, self._sync_task = self._sync_task, None
        if task is not None and not task.done():
            task.cancel()
            self._tasks.add(task)  # awaited by stop()
            task.add_done_callback(self._tasks.discard)
        jid = self._selected
        j = self._jobs.get(jid) if jid else None
        if j is not None and j.active and not j.in_flight:
            self._reschedule(j, self.clock.now())

    async def _sync_loop(self, j: _Job) -> None:
        """Follow the selected job with ``/status-sync`` long-polls: its progress every
        ``sync_wait`` seconds, its end the moment it happens."""
        wait_ms = int(self.sync_wait * 1000)
        fails = 0
        while j.active and self._sync_task is asyncio.current_task():
            while j.in_flight:  # a regular poll was already on its way
                await asyncio.sleep(0)
                await self.clock.sleep(0.01)
            t0 = self.clock.now()
            try:
                j.in_flight = True
                self.stats.sync_requests += 1
                self.stats.per_job[j.job_id] = self.stats.per_job.get(j.job_id, 0) + 1
                job = await self.client.status_sync(j.lane.endpoint_id, j.job_id, wait_ms=wait_ms)
            except asyncio.CancelledError:
                j.in_flight = False
                raise
            except Exception as e:  # noqa: BLE001
                j.in_flight = False
                if isinstance(e, NotFound) and self.clock.now() >= j.fresh_until:
                    self._expire(j)
                    return
                fails += 1
                if isinstance(e, RateLimited):
                    self.stats.rate_limited += 1
                    wait = e.retry_after or min(30.0, 2.0**fails)
                else:
                    wait = min(30.0, self.interval * 2 ** (fails - 1))
                if fails == 1 and not isinstance(e, NotFound):
                    self.book.problem(str(e), key=f"sync:{j.lane.endpoint_id}")
                await self.clock.sleep(wait)
                continue
            j.in_flight = False
            fails = 0
            if self._sync_task is not asyncio.current_task():
                # unselected while the answer was on its way: use it, then hand over
                self._observe(j, job, t0)
                return
            self._observe(j, job, t0)
            j.ver += 1  # _observe rescheduled it; the long-poll keeps it
            self._wake.set()
