"""The simulated platform's data model: statuses, limits, endpoint configuration and the
state of one job, one worker and one endpoint. Plain data; the engine changes it."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rpdash.sim.worker import HANDLERS, MISSING, Step

IN_QUEUE = "IN_QUEUE"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
TIMED_OUT = "TIMED_OUT"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED, TIMED_OUT})

# worker states (health keys)
INITIALIZING = "initializing"
THROTTLED = "throttled"
IDLE = "idle"
RUNNING = "running"
UNHEALTHY = "unhealthy"
WORKER_STATES = (IDLE, INITIALIZING, RUNNING, THROTTLED, UNHEALTHY)

RETENTION_RUN_S = 30 * 60.0
RETENTION_RUNSYNC_S = 60.0
EXPIRED_IN_QUEUE_KEEP_S = 60.0
TTL_DEFAULT_MS = 24 * 3600 * 1000
EXEC_TIMEOUT_DEFAULT_MS = 600_000
EXEC_TIMEOUT_RANGE_MS = (5_000, 7 * 24 * 3600 * 1000)
TTL_RANGE_MS = (10_000, 7 * 24 * 3600 * 1000)
QUEUE_LIMIT_MIN = 50
QUEUE_LIMIT_PER_WORKER = 500
#: the image the simulated workers run (shown in worker lists and log lines)
SIM_IMAGE = "runpod/mock-worker:1.1.0"
CRASH_ERROR = "worker exited unexpectedly (exit code 1) while running this job"

SCALER_TYPES = ("QUEUE_DELAY", "REQUEST_COUNT")
QUEUE_DELAY_DEFAULT_S = 4.0
EXTRA_WORKERS_DEFAULT = 2
PICKUP_ORDERS = ("fifo", "batch", "random")
#: account-wide cap on workers over all endpoints (workers/overview.mdx: 5 by default)
ACCOUNT_MAX_WORKERS_DEFAULT = 5
STREAM_CHUNK_MAX_BYTES = 1_000_000
WEBHOOK_RETRIES = 2
WEBHOOK_RETRY_GAP_S = 10.0
IDLE_CUT_TO_2_S = 3 * 24 * 3600.0
IDLE_CUT_TO_0_S = 7 * 24 * 3600.0
OUTDATED = "outdated"  # shown as isStale in REST v2; never a health key

_KEEP: Any = object()  # "leave the output as it is"
_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


# ---------------------------------------------------------------------------- config


@dataclass
class EndpointConfig:
    """How one simulated endpoint behaves. Durations in simulated seconds."""

    id: str
    #: "mock" (standard handler), "stream" (generator, aggregated output), "llm" (tokens)
    handler: str = "mock"
    workers_min: int = 0
    workers_max: int = 3
    cold_start: float = 1.0
    cold_start_jitter: float = 0.0
    idle_timeout: float = 5.0
    execution_timeout_ms: int = EXEC_TIMEOUT_DEFAULT_MS
    #: jobs one worker runs at once
    concurrency: int = 1
    #: seconds between a job being queued (or a worker freeing up) and a worker taking it
    pickup_delay: float = 0.0
    throttle_chance: float = 0.0
    throttle_time: float = 10.0
    unhealthy_time: float = 30.0
    #: start ``workers_min`` workers warm (idle) rather than cold
    prewarm: bool = True
    #: input defaults (like the mock worker's MOCK_* environment variables)
    defaults: dict[str, Any] = field(default_factory=dict)
    #: autoscaler (scaler.py): "QUEUE_DELAY" (add workers once a job waited
    #: ``scaler_value`` s; RunPod's default is 4 s, this simulator's 0 = at once) or
    #: "REQUEST_COUNT" (ceil((inQueue + inProgress) / scaler_value) workers)
    scaler_type: str = "QUEUE_DELAY"
    scaler_value: float = 0.0
    #: workers allowed above ``workers_max`` in a spike once the image is cached (RunPod: 2)
    extra_workers: int = 0
    #: pickup order (pickup.py): "fifo", "batch" (a worker takes up to ``pickup_batch``
    #: jobs at once and runs them in turn) or "random"
    pickup: str = "fifo"
    pickup_batch: int = 4
    #: share of new workers that fail their start-up checks (crash loop; incidents.py)
    start_failure: float = 0.0
    #: this many workers turning unhealthy within ``crashloop_window`` s make the platform
    #: halve ``workers_max`` (RunPod: "scaled down", amount not documented)
    crashloop_limit: int = 5
    crashloop_window: float = 600.0
    #: GPU shortage: for this many seconds after the endpoint is created, new workers are
    #: THROTTLED (no host) until capacity returns (see also ``Engine.set_capacity``)
    capacity_short_for: float = 0.0
    #: chance that a job which sent progress updates gets one more after its result (the
    #: race of runpod-python issue 250): the job then shows IN_PROGRESS for good
    late_progress_chance: float = 0.0
    #: at most this many chunks per /stream answer (None = all); the rest come in later
    #: answers, also after the terminal status (runpod-api.md 6.5)
    stream_batch_max: int | None = None

    def __post_init__(self) -> None:
        if self.handler not in HANDLERS:
            raise ValueError(f"handler must be one of {', '.join(HANDLERS)}, not {self.handler!r}")
        if not (0 <= self.workers_min <= self.workers_max):
            raise ValueError("need 0 <= workers_min <= workers_max")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.id == "serverless":  # the control plane's path (/v2/serverless) shadows it
            raise ValueError('"serverless" is reserved by the control plane; pick another id')
        if min(self.cold_start, self.idle_timeout, self.pickup_delay, self.unhealthy_time,
               self.scaler_value, self.capacity_short_for) < 0:  # fmt: skip
            raise ValueError("durations must be >= 0")
        if self.scaler_type not in SCALER_TYPES:
            raise ValueError(f"scaler_type must be one of {', '.join(SCALER_TYPES)}")
        if self.scaler_type == "REQUEST_COUNT" and self.scaler_value < 1:
            raise ValueError("REQUEST_COUNT needs scaler_value >= 1")
        if self.pickup not in PICKUP_ORDERS:
            raise ValueError(f"pickup must be one of {', '.join(PICKUP_ORDERS)}, not {self.pickup!r}")
        if self.pickup_batch < 1 or self.extra_workers < 0 or self.crashloop_limit < 1:
            raise ValueError("pickup_batch and crashloop_limit must be >= 1, extra_workers >= 0")


@dataclass
class TrafficSpec:
    """Background arrivals on one endpoint: a Poisson process whose rate follows a wave,
    ``rate * max(0, 1 + amplitude * sin(2 pi t / period + phase))`` jobs per second."""

    endpoint: str
    rate: float
    body: Callable[[random.Random], dict[str, Any]]
    period: float = 120.0
    amplitude: float = 0.0
    phase: float = 0.0


# ---------------------------------------------------------------------------- state


class _Event:
    __slots__ = ("when", "fn", "args", "cancelled", "fired")

    def __init__(self, when: float, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self.fn = fn
        self.args = args
        self.cancelled = False
        self.fired = False


class SimJob:
    """One job. Read it freely; change it only through the engine."""

    __slots__ = (
        "id", "endpoint_id", "input", "webhook", "s3_config", "sync", "low_priority",
        "exec_timeout_s", "ttl_s", "retention_s", "status", "submitted_at", "queued_at",
        "started_at", "ended_at", "output", "error", "pending", "chunks_sent", "worker",
        "worker_id", "attempt", "retries", "deleted", "waiters", "steps", "step_i",
        "step_ev", "exec_ev", "ttl_ev", "end_ev", "run_at", "stuck", "had_progress",
        "webhook_log",
    )  # fmt: skip

    def __init__(self, job_id: str, endpoint_id: str, inp: dict[str, Any], *, sync: bool,
                 now: float) -> None:  # fmt: skip
        self.id = job_id
        self.endpoint_id = endpoint_id
        self.input = inp
        self.webhook: str | None = None
        self.s3_config: dict[str, Any] | None = None
        self.sync = sync
        self.low_priority = False
        self.exec_timeout_s = EXEC_TIMEOUT_DEFAULT_MS / 1000
        self.ttl_s = TTL_DEFAULT_MS / 1000
        self.retention_s = RETENTION_RUNSYNC_S if sync else RETENTION_RUN_S
        self.status = IN_QUEUE
        self.submitted_at = now
        self.queued_at = now
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.output: Any = MISSING
        self.error: str | None = None
        self.pending: list[Any] = []  # stream chunks not handed out yet
        self.chunks_sent = 0
        self.worker: SimWorker | None = None
        self.worker_id: str | None = None
        self.attempt = 0
        self.retries = 0
        self.deleted = False
        self.waiters: list[asyncio.Future[None]] = []
        self.steps: list[Step] = []
        self.step_i = 0
        self.step_ev: _Event | None = None
        self.exec_ev: _Event | None = None
        self.ttl_ev: _Event | None = None
        self.end_ev: _Event | None = None
        #: when the handler started (later than ``started_at`` for a batch-held job)
        self.run_at: float | None = None
        #: finished, but a late progress update left it showing IN_PROGRESS
        self.stuck = False
        self.had_progress = False
        #: webhook attempts: {"at", "attempt", "status" (HTTP code, or None), "sent"}
        self.webhook_log: list[dict[str, Any]] = []

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def __repr__(self) -> str:
        return f"SimJob({self.id!r}, {self.status})"


class SimWorker:
    __slots__ = ("id", "endpoint_id", "state", "jobs", "created_at", "ready_at", "gen",
                 "logs", "refresh_pending", "removed", "held", "version", "placed_at",
                 "extra", "retiring")  # fmt: skip

    def __init__(self, worker_id: str, endpoint_id: str, now: float) -> None:
        self.id = worker_id
        self.endpoint_id = endpoint_id
        self.state = INITIALIZING
        self.jobs: list[SimJob] = []
        self.created_at = now
        self.ready_at: float | None = None
        self.gen = 0  # bumped on every state change, so stale timers are ignored
        self.logs: deque[dict[str, Any]] = deque(maxlen=200)
        self.refresh_pending = False
        self.removed = False
        #: jobs taken in a batch pickup, waiting on this worker for a free slot
        self.held: deque[SimJob] = deque()
        self.version = 1
        #: when a host was found (None while throttled before placement)
        self.placed_at: float | None = None
        #: started above workers_max in a spike ("Extra" in the console)
        self.extra = False
        #: outdated worker to stop once its current jobs are done (rolling release)
        self.retiring = False

    def __repr__(self) -> str:
        return f"SimWorker({self.id!r}, {self.state}, jobs={len(self.jobs)})"


class SimEndpoint:
    def __init__(self, cfg: EndpointConfig, created_at: float) -> None:
        self.cfg = cfg
        self.created_at = created_at
        self.jobs: dict[str, SimJob] = {}
        self.queue: deque[tuple[SimJob, int]] = deque()  # (job, attempt); stale entries skipped
        self.low: deque[tuple[SimJob, int]] = deque()
        self.workers: dict[str, SimWorker] = {}
        self.in_queue = 0
        self.in_queue_low = 0
        self.in_progress = 0
        self.completed = 0
        self.failed = 0
        self.retried = 0
        self.cancelled = 0
        self.submitted = 0
        self.dispatch_ev: _Event | None = None
        self.logs: deque[dict[str, Any]] = deque(maxlen=2000)
        #: futures of log tails (control plane SSE) waiting for the next line
        self.log_waiters: list[asyncio.Future[None]] = []
        #: when workers turned unhealthy (crash-loop detection) and platform notices
        self.unhealthy_times: deque[float] = deque()
        self.notices: list[dict[str, Any]] = []
        self.scale_ev: _Event | None = None
        self.capacity_short_until = created_at + cfg.capacity_short_for
        self.last_request_at = created_at
        self.idle_ev: _Event | None = None
        #: releases, newest last: {"version", "createdAt", "bad", "note"}
        self.version = 1
        self.releases: list[dict[str, Any]] = [{"version": 1, "at": created_at, "bad": False}]
        self.bad_versions: set[int] = set()
        #: the newest version whose image some worker has started (extra workers need it)
        self.cached_version = 0


def _ms(seconds: float) -> int:
    return max(0, int(round(seconds * 1000)))
