"""What the tracker knows beyond the record: per tracked job and per endpoint (a *lane*).

``TrackedJob`` is the scheduling state of one live job (the record itself lives in the
JobBook). ``Lane`` is one endpoint's live jobs in FIFO order (for the queue-position
strategy), what its health said, its probe state and its request budget.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field

from rpdash.core.clock import Clock
from rpdash.core.models import Job
from rpdash.core.records import JobRecord


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


class TrackedJob:
    """Scheduling state of one tracked job (the record itself lives in the JobBook)."""

    __slots__ = (
        "job_id", "lane", "key", "ordered", "tracked_at", "fresh_until", "ver", "due",
        "started", "start_est", "start_exact", "checks", "last_poll", "since", "fails",
        "owner", "in_flight", "active", "ordinal", "final_since",
    )  # fmt: skip

    def __init__(self, job_id: str, lane: Lane, key: tuple, ordered: bool, now: float) -> None:
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
        #: when the first of the identical finished-looking IN_PROGRESS answers was asked
        #: (a job stuck after completion, quirks.py); None when the last answer was not one
        self.final_since: float | None = None

    def saw_running(self, job: Job, rec: JobRecord, t0: float, now: float, clock: Clock) -> None:
        """An IN_PROGRESS answer asked at ``t0``: pin (or estimate) its start, count checks.
        ``executionTime`` or ``delayTime`` pins the start."""
        if job.executionTime is not None:
            self.start_est, self.start_exact = t0 - job.executionTime / 1000.0, True
        elif job.delayTime is not None and not self.start_exact:
            self.start_est, self.start_exact = start_from_record(rec, t0, clock), True
        if not self.started:
            self.started = True
            self.checks = 0
            self.lane.count_start(now)
            if self.start_est is None:
                self.start_est = (max(self.lane.queue_evidence_at, self.tracked_at) + t0) / 2
        else:
            self.checks += 1


class Lane:
    """One endpoint's live jobs in FIFO order, plus what its health says."""

    def __init__(self, endpoint_id: str) -> None:
        self.endpoint_id = endpoint_id
        self.order: list[TrackedJob] = []
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
        #: until when the lane distrusts its FIFO order (a job it thought started was queued)
        self.disorder_until = -math.inf

    def index(self, j: TrackedJob) -> int:
        i = bisect.bisect_left(self.keys, j.key)
        if i < len(self.order) and self.order[i] is j:
            return i
        return -1

    def insert(self, j: TrackedJob) -> None:
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

    def remove(self, j: TrackedJob) -> None:
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

    def count_start(self, now: float) -> None:
        """One more of our jobs started (for the start rate the probes use)."""
        self.started_total += 1
        self.moved_at = now

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


def order_key(rec: JobRecord, seq: int) -> tuple:
    """A job's place in its endpoint's FIFO: normal priority first, then queue time."""
    policy = rec.extra.get("policy") if isinstance(rec.extra, dict) else None
    low = 1 if isinstance(policy, dict) and policy.get("lowPriority") else 0
    queued_at = rec.extra.get("queued_at") if isinstance(rec.extra, dict) else None
    t = queued_at if isinstance(queued_at, (int, float)) else rec.submitted_at
    return (low, float(t or 0.0), seq)



def start_from_record(rec: JobRecord, now: float, clock: Clock) -> float:
    """When the job started (``clock.now()`` time), from its submit time and ``delayTime``."""
    if rec.delay_ms is not None and rec.submitted_at:
        submitted_mono = now - (clock.time() - rec.submitted_at)
        return min(now, submitted_mono + rec.delay_ms / 1000.0)
    return now
