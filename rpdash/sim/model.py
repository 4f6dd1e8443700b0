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

    def __post_init__(self) -> None:
        if self.handler not in HANDLERS:
            raise ValueError(f"handler must be one of {', '.join(HANDLERS)}, not {self.handler!r}")
        if not (0 <= self.workers_min <= self.workers_max):
            raise ValueError("need 0 <= workers_min <= workers_max")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.id == "serverless":  # the control plane's path (/v2/serverless) shadows it
            raise ValueError('"serverless" is reserved by the control plane; pick another id')
        if min(self.cold_start, self.idle_timeout, self.pickup_delay, self.unhealthy_time) < 0:
            raise ValueError("durations must be >= 0")


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
        "step_ev", "exec_ev", "ttl_ev", "end_ev",
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

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def __repr__(self) -> str:
        return f"SimJob({self.id!r}, {self.status})"


class SimWorker:
    __slots__ = ("id", "endpoint_id", "state", "jobs", "created_at", "ready_at", "gen",
                 "logs", "refresh_pending", "removed")  # fmt: skip

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


def _ms(seconds: float) -> int:
    return max(0, int(round(seconds * 1000)))
