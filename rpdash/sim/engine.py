"""The simulated RunPod serverless queue: endpoints, workers, jobs, on an injectable clock.

Design
------
The engine is a discrete-event simulation. Every future happening (a worker finishing its
cold start, the next step of a job, an execution timeout, a TTL or retention expiry, an
idle timeout, a long-poll deadline, the next demo arrival) is one entry in a heap ordered
by (time, sequence). Nothing polls: with a real or scaled clock one loop timer is armed for
the earliest entry; with a ``FakeClock`` (anything with ``advance_sync``) time moves only
through :meth:`Engine.advance`, which runs the events in order with ``now()`` equal to each
event's time, so tests are exact. Before answering any request the server calls
:meth:`Engine.sync`, which runs whatever is due, so answers never lag the clock.

All state is changed on one thread (the server's event loop), by plain synchronous methods;
an ``await`` happens only in :meth:`Engine.wait` (long polls), which is woken by
notifications from the state changes, never by sleeping. Scheduled events carry the job's
``attempt`` (bumped by retry) and are checked against the job's status when they fire, so
cancel / purge / retry / TTL racing a completion leave one consistent outcome: whatever is
due at or before the request's time has already happened when the request is handled.

Choices where runpod-api.md says [unconfirmed] (or where the docs disagree)
---------------------------------------------------------------------------
- Job ids: ``<uuid4>-u1`` for /run, ``sync-<uuid4>`` for /runsync, from a seeded random.
- Job object: ``id, status``; ``delayTime`` (queue wait, ms) once the job left the queue;
  ``executionTime`` (ms, growing while IN_PROGRESS); ``output`` (omitted while queued or
  when there is none; the latest progress update while IN_PROGRESS); ``error`` (string,
  only on failure); ``workerId`` once a worker took the job; ``retries`` when > 0.
- /run always answers ``IN_QUEUE``: a worker takes a job ``pickup_delay`` seconds later at
  the earliest (0 by default, i.e. at the same instant, after the answer).
- FIFO; lowPriority jobs wait behind every normal job and never cause a scale-up (they run
  when a worker is idle: min workers, or workers started for normal jobs).
- Autoscaling: when normal queued jobs exceed the free slots of live workers (initializing,
  throttled, idle, running), start workers up to ``workers_max``. ``workers_min`` workers
  are kept, and at start-up they are warm (idle) when ``prewarm``. A new worker is
  THROTTLED with probability ``throttle_chance`` for ``throttle_time`` s, then initializing
  for ``cold_start`` (+ uniform jitter) s, then idle. An idle worker above ``workers_min``
  is removed after ``idle_timeout`` s. Health ``ready`` equals ``idle`` (as in every old
  sample).
- mock_crash: the worker dies; every job it was running becomes FAILED with error
  ``CRASH_ERROR``; the worker shows as ``unhealthy`` for ``unhealthy_time`` s and is then
  removed; it does not count toward ``workers_max``, so a replacement starts at once if the
  queue or ``workers_min`` needs one (no automatic requeue of the job).
- executionTimeout (policy, else the endpoint's, default 600000 ms) counts from the moment
  a worker takes the job: the job becomes TIMED_OUT (no ``error``), the worker is told to
  stop and is free at once.
- TTL (policy ``ttl``, default 24 h, counted from submission, restarted by /retry):
  a job still IN_QUEUE at its TTL becomes TIMED_OUT ("expired before pickup"), stays
  visible ``EXPIRED_IN_QUEUE_KEEP_S`` (60 s) so a poller can see why, then is deleted (404);
  a job IN_PROGRESS or finished at its TTL is deleted at once (its worker is stopped).
- Retention: a finished job is deleted 30 min (/run) or 1 min (/runsync, whatever
  ``wait`` was) after it ended, then 404. ``/status?ttl=ms`` sets that: on a finished job
  it is deleted ``ttl`` ms after this call; on an unfinished one, ``ttl`` ms after it ends.
- Cancel: IN_QUEUE -> CANCELLED (leaves the queue), IN_PROGRESS -> CANCELLED (worker
  stopped, free at once). On a finished job cancel changes nothing and answers the current
  status. The last progress output and unread stream chunks are kept.
- Retry: only FAILED or TIMED_OUT (else 400); same id, original input, output/error/
  chunks cleared, back to the end of the queue; ``health.jobs.retried`` counts retries.
- Purge: IN_QUEUE jobs are deleted (404 afterwards); running jobs are untouched.
- Health counters ``completed``/``failed``/``retried`` are cumulative since the endpoint was
  created (not a rolling window); ``failed`` counts FAILED and TIMED_OUT (also TTL expiry in
  the queue); CANCELLED jobs and jobs deleted by TTL while running are in neither.
- Stream: each call hands out only chunks not handed out before (several readers split
  them); the status in the same answer is read at the same instant, so once a terminal
  status is returned every chunk has been delivered. Non-generator handlers never produce
  chunks (their stream stays empty).
- Policy values out of the documented ranges (executionTimeout 5 s..7 d, ttl 10 s..7 d) are
  refused with 400 (``strict_policy=False`` lifts the ranges, for tests and demos).
  Unknown top-level body keys and unknown policy keys are ignored. ``webhook`` is stored,
  never called.
- The older docs' /run queue-size limit applies when rate limits are on: /run is refused
  with 429 (Retry-After 10) while the queue holds more than 50 jobs and more than
  workersMax x 500 jobs (/runsync is not limited this way).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import random
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from rpdash.core.clock import Clock, RealClock
from rpdash.sim.limits import RateLimiter
from rpdash.sim.worker import HANDLERS, MISSING, RUNPOD_VERSION, Step, handler_error, plan

log = logging.getLogger("rpdash.sim")

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


# ---------------------------------------------------------------------------- errors


class SimError(Exception):
    """A request the engine refuses; ``status`` is the HTTP code the server answers."""

    status = 400

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class NotFoundError(SimError):
    status = 404


class BadRequestError(SimError):
    status = 400


class QueueFullError(SimError):
    status = 429


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


# ---------------------------------------------------------------------------- engine


class Engine:
    """The simulated data plane. Use it from one thread (the server's loop thread)."""

    def __init__(self, clock: Clock | None = None, seed: int = 0, *, rate_limits: bool = True,
                 strict_policy: bool = True) -> None:  # fmt: skip
        self.clock: Clock = clock or RealClock()
        self.seed = seed
        self.strict_policy = strict_policy
        self._rng_ids = random.Random(f"{seed}:ids")
        self._rng = random.Random(f"{seed}:workers")
        self._rng_traffic = random.Random(f"{seed}:traffic")
        self._eps: dict[str, SimEndpoint] = {}
        self._heap: list[tuple[float, int, _Event]] = []
        self._seq = itertools.count()
        self._ncancelled = 0
        self._manual = hasattr(self.clock, "advance_sync")
        self._scale = float(getattr(self.clock, "scale", 1.0) or 1.0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.Handle | None = None
        self._armed_at = math.inf
        self._t: float | None = None
        self._processing = False
        self._closed = False
        self._epoch = 0
        self._t0 = self.clock.now()
        self._traffic: list[TrafficSpec] = []
        self.limiter = RateLimiter(self.now, enabled=rate_limits)
        self.events_processed = 0
        #: sequence of log lines, over all endpoints (the control plane's SSE event ids)
        self._log_seq = itertools.count(1)
        #: exceptions raised by event callbacks (a bug if not empty; tests check it)
        self.errors: list[BaseException] = []

    # ------------------------------------------------------------------ time & events

    def now(self) -> float:
        """Simulated monotonic seconds (the time of the event being run, if any)."""
        return self._t if self._t is not None else self.clock.now()

    def wall(self) -> float:
        """Simulated epoch seconds matching :meth:`now`."""
        return self.clock.time() - (self.clock.now() - self.now())

    def schedule(self, delay: float, fn: Callable[..., Any], *args: Any) -> _Event:
        return self.schedule_at(self.now() + max(0.0, delay), fn, *args)

    def schedule_at(self, when: float, fn: Callable[..., Any], *args: Any) -> _Event:
        ev = _Event(when, fn, args)
        heapq.heappush(self._heap, (when, next(self._seq), ev))
        if when < self._armed_at and not self._processing:
            self._arm()
        return ev

    def cancel_event(self, ev: _Event | None) -> None:
        if ev is None or ev.cancelled or ev.fired:
            return
        ev.cancelled = True
        self._ncancelled += 1
        if self._ncancelled > 512 and self._ncancelled * 2 > len(self._heap):
            self._heap = [e for e in self._heap if not e[2].cancelled]
            heapq.heapify(self._heap)
            self._ncancelled = 0

    def next_event_time(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self._ncancelled -= 1
        return heap[0][0] if heap else None

    @property
    def pending_events(self) -> int:
        return len(self._heap) - self._ncancelled

    def sync(self) -> int:
        """Run every event due by the clock's now. Returns how many ran."""
        n = self._run_until(self.clock.now())
        if n:
            self._arm()
        return n

    def advance(self, seconds: float) -> None:
        """Move a fake clock forward by ``seconds``, running due events in time order."""
        if not self._manual:
            raise RuntimeError("Engine.advance needs a clock with advance_sync (FakeClock)")
        if seconds < 0:
            raise ValueError("cannot go back in time")
        clock: Any = self.clock
        target = clock.now() + seconds
        while True:
            nxt = self.next_event_time()
            if nxt is None or nxt > target:
                break
            if nxt > clock.now():
                clock.advance_sync(nxt - clock.now())
            self._run_until(nxt)
        if target > clock.now():
            clock.advance_sync(target - clock.now())
        self._run_until(clock.now())
        self._arm()

    def _run_until(self, t: float) -> int:
        if self._processing:
            return 0
        heap = self._heap
        n = 0
        self._processing = True
        try:
            while heap:
                when, _, ev = heap[0]
                if ev.cancelled:
                    heapq.heappop(heap)
                    self._ncancelled -= 1
                    continue
                if when > t:
                    break
                heapq.heappop(heap)
                ev.fired = True
                self._t = when
                try:
                    ev.fn(*ev.args)
                except Exception as exc:  # a bug: keep the engine alive, make it visible
                    log.exception("simulator event %r failed", ev.fn)
                    self.errors.append(exc)
                n += 1
        finally:
            self._t = None
            self._processing = False
        self.events_processed += n
        return n

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Drive the engine from ``loop`` (the server's loop); call from that loop's thread."""
        self._loop = loop
        self._closed = False
        self.sync()
        self._arm()

    def _arm(self) -> None:
        loop = self._loop
        if loop is None or self._closed:
            return
        nxt = self.next_event_time()
        if nxt is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._armed_at = math.inf
            return
        if self._timer is not None and self._armed_at <= nxt:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = self.clock.now()
        if self._manual:
            if nxt <= now:
                self._timer = loop.call_soon(self._on_timer)
                self._armed_at = nxt
            else:
                self._armed_at = math.inf
        else:
            delay = max(0.0, (nxt - now) / self._scale)
            self._timer = loop.call_later(delay, self._on_timer)
            self._armed_at = nxt

    def _on_timer(self) -> None:
        self._timer = None
        self._armed_at = math.inf
        self._run_until(self.clock.now())
        self._arm()

    def close(self) -> None:
        """Stop the timer and wake every long poll (they answer with what they have)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_at = math.inf
        for ep in self._eps.values():
            for job in ep.jobs.values():
                self._notify(job)
            self._wake_logs(ep)
        self._loop = None

    def reset(self) -> None:
        """Forget every endpoint, job, worker, event and traffic source."""
        for ep in list(self._eps.values()):
            self.remove_endpoint(ep.cfg.id)
        for _, _, ev in self._heap:  # dropped, so a later cancel_event() must be a no-op
            ev.cancelled = True
        self._heap.clear()
        self._ncancelled = 0
        self._traffic.clear()
        self._epoch += 1
        self.limiter.reset()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_at = math.inf

    # ------------------------------------------------------------------ waiting

    async def wait(self, job: SimJob, cond: Callable[[], bool], timeout: float) -> bool:
        """Wait (in simulated seconds) until ``cond()`` holds; False on timeout, deletion
        or shutdown. Woken by the engine's notifications, never by polling."""
        if cond():
            return True
        if timeout <= 0 or job.deleted or self._closed:
            return False
        loop = asyncio.get_running_loop()
        box: list[Any] = [None, False]  # [future, timed_out]

        def _timeout() -> None:
            box[1] = True
            fut = box[0]
            if fut is not None and not fut.done():
                fut.set_result(None)

        tev = self.schedule(timeout, _timeout)
        try:
            while True:
                fut: asyncio.Future[None] = loop.create_future()
                box[0] = fut
                job.waiters.append(fut)
                try:
                    await fut
                finally:
                    try:
                        job.waiters.remove(fut)
                    except ValueError:
                        pass
                if cond():
                    return True
                if box[1] or job.deleted or self._closed:
                    return False
        finally:
            self.cancel_event(tev)

    async def wait_terminal(self, job: SimJob, timeout: float) -> bool:
        return await self.wait(job, lambda: job.status in TERMINAL, timeout)

    async def wait_stream(self, job: SimJob, timeout: float) -> bool:
        return await self.wait(job, lambda: bool(job.pending) or job.status in TERMINAL, timeout)

    def _notify(self, job: SimJob) -> None:
        ws = job.waiters
        if ws:
            job.waiters = []
            for f in ws:
                if not f.done():
                    f.set_result(None)

    # ------------------------------------------------------------------ endpoints

    def add_endpoint(self, cfg: EndpointConfig) -> None:
        """Add (or replace) an endpoint; ``workers_min`` workers start (warm if prewarm)."""
        if cfg.id in self._eps:
            self.remove_endpoint(cfg.id)
        ep = SimEndpoint(replace(cfg, defaults=dict(cfg.defaults)), self.now())
        self._eps[cfg.id] = ep
        for _ in range(cfg.workers_min):
            self._spawn(ep, warm=cfg.prewarm)

    def update_endpoint(self, endpoint_id: str, **changes: Any) -> EndpointConfig:
        """Change an endpoint's settings in place (jobs and workers stay)."""
        ep = self.endpoint(endpoint_id)
        ep.cfg = replace(ep.cfg, **changes)
        self._autoscale(ep)
        self._want_dispatch(ep)
        return ep.cfg

    def remove_endpoint(self, endpoint_id: str) -> None:
        ep = self._eps.pop(endpoint_id, None)
        if ep is None:
            return
        for job in list(ep.jobs.values()):
            for ev in (job.step_ev, job.exec_ev, job.ttl_ev, job.end_ev):
                self.cancel_event(ev)
            job.deleted = True
            self._notify(job)
        ep.jobs.clear()
        for w in ep.workers.values():
            w.removed = True
            w.gen += 1
        ep.workers.clear()
        self.cancel_event(ep.dispatch_ev)
        self._wake_logs(ep)

    def endpoint(self, endpoint_id: str) -> SimEndpoint:
        ep = self._eps.get(endpoint_id)
        if ep is None:
            raise NotFoundError(f"endpoint {endpoint_id} not found")
        return ep

    def has_endpoint(self, endpoint_id: str) -> bool:
        return endpoint_id in self._eps

    def endpoint_ids(self) -> list[str]:
        return list(self._eps)

    # ------------------------------------------------------------------ requests

    def submit(self, endpoint_id: str, body: Any, *, sync: bool = False) -> SimJob:
        """Queue a job from a /run (or /runsync) body. Raises SimError (400/404/429)."""
        ep = self.endpoint(endpoint_id)
        inp, webhook, s3, exec_ms, ttl_ms, low = self._parse_body(body)
        if self.limiter.enabled and not sync:
            limit = max(QUEUE_LIMIT_MIN, ep.cfg.workers_max * QUEUE_LIMIT_PER_WORKER)
            if ep.in_queue > limit:
                raise QueueFullError(
                    f"queue of endpoint {endpoint_id} is full ({ep.in_queue} jobs waiting)",
                    retry_after=10.0,
                )
        u = uuid.UUID(int=self._rng_ids.getrandbits(128), version=4)
        job_id = f"sync-{u}" if sync else f"{u}-u1"
        job = SimJob(job_id, endpoint_id, inp, sync=sync, now=self.now())
        job.webhook = webhook
        job.s3_config = s3
        job.low_priority = low
        job.exec_timeout_s = (exec_ms if exec_ms is not None else ep.cfg.execution_timeout_ms) / 1000
        job.ttl_s = (ttl_ms if ttl_ms is not None else TTL_DEFAULT_MS) / 1000
        ep.jobs[job_id] = job
        ep.submitted += 1
        job.ttl_ev = self.schedule(job.ttl_s, self._on_ttl, job, job.attempt)
        self._enqueue(ep, job)
        return job

    def _parse_body(self, body: Any) -> tuple[dict[str, Any], str | None, dict[str, Any] | None,
                                              int | None, int | None, bool]:  # fmt: skip
        if not isinstance(body, dict):
            raise BadRequestError('request body must be a JSON object with an "input" object')
        if "input" not in body:
            raise BadRequestError('request body has no "input"')
        inp = body["input"]
        if not isinstance(inp, dict):
            raise BadRequestError('"input" must be a JSON object')
        webhook = body.get("webhook")
        if webhook is not None and not isinstance(webhook, str):
            raise BadRequestError('"webhook" must be a string')
        s3 = body.get("s3Config")
        if s3 is not None and not isinstance(s3, dict):
            raise BadRequestError('"s3Config" must be an object')
        policy = body.get("policy")
        if policy is None:
            policy = {}
        if not isinstance(policy, dict):
            raise BadRequestError('"policy" must be an object')
        exec_ms = self._policy_ms(policy, "executionTimeout", EXEC_TIMEOUT_RANGE_MS)
        ttl_ms = self._policy_ms(policy, "ttl", TTL_RANGE_MS)
        low = policy.get("lowPriority", False)
        if low is None:
            low = False
        if not isinstance(low, bool):
            raise BadRequestError('"policy.lowPriority" must be true or false')
        return inp, webhook, s3, exec_ms, ttl_ms, low

    def _policy_ms(self, policy: dict[str, Any], key: str, rng: tuple[int, int]) -> int | None:
        v = policy.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or v != v or v != int(v):
            raise BadRequestError(f'"policy.{key}" must be an integer number of milliseconds')
        v = int(v)
        lo, hi = rng
        if self.strict_policy and not lo <= v <= hi:
            raise BadRequestError(f'"policy.{key}" must be between {lo} and {hi} ms, not {v}')
        if v <= 0:
            raise BadRequestError(f'"policy.{key}" must be positive')
        return v

    def job(self, endpoint_id: str, job_id: str) -> SimJob:
        ep = self.endpoint(endpoint_id)
        job = ep.jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"job {job_id} not found")
        return job

    def find_job(self, endpoint_id: str, job_id: str) -> SimJob | None:
        ep = self._eps.get(endpoint_id)
        return ep.jobs.get(job_id) if ep is not None else None

    def view(self, job: SimJob) -> dict[str, Any]:
        """The job object as /status returns it."""
        d: dict[str, Any] = {"id": job.id, "status": job.status}
        if job.started_at is not None:
            d["delayTime"] = _ms(job.started_at - job.queued_at)
            end = job.ended_at if job.ended_at is not None else self.now()
            d["executionTime"] = _ms(end - job.started_at)
        elif job.ended_at is not None:
            d["delayTime"] = _ms(job.ended_at - job.queued_at)
        if job.output is not MISSING:
            d["output"] = job.output
        if job.error is not None:
            d["error"] = job.error
        if job.worker_id is not None:
            d["workerId"] = job.worker_id
        if job.retries:
            d["retries"] = job.retries
        return d

    @staticmethod
    def ref(job: SimJob) -> dict[str, Any]:
        return {"id": job.id, "status": job.status}

    def cancel(self, endpoint_id: str, job_id: str) -> SimJob:
        job = self.job(endpoint_id, job_id)
        if job.status == IN_PROGRESS and job.worker is not None:
            self._log(self._eps[job.endpoint_id], job.worker, "info",
                      f"job {job.id} cancelled; stopping it", job.id)  # fmt: skip
        if job.status in (IN_QUEUE, IN_PROGRESS):
            self._finish(job, CANCELLED)
        return job

    def retry(self, endpoint_id: str, job_id: str) -> SimJob:
        job = self.job(endpoint_id, job_id)
        if job.status not in (FAILED, TIMED_OUT):
            raise BadRequestError(
                f"job {job_id} is {job.status}; only FAILED or TIMED_OUT jobs can be retried"
            )
        ep = self._eps[endpoint_id]
        self.cancel_event(job.end_ev)
        self.cancel_event(job.ttl_ev)
        job.end_ev = None
        job.attempt += 1
        job.retries += 1
        ep.retried += 1
        job.output = MISSING
        job.error = None
        job.pending = []
        job.chunks_sent = 0
        job.started_at = None
        job.ended_at = None
        job.worker = None
        job.worker_id = None
        job.steps = []
        job.step_i = 0
        job.ttl_ev = self.schedule(job.ttl_s, self._on_ttl, job, job.attempt)
        self._enqueue(ep, job)
        return job

    def purge(self, endpoint_id: str) -> int:
        """Delete every IN_QUEUE job of the endpoint; returns how many."""
        ep = self.endpoint(endpoint_id)
        n = 0
        for q in (ep.queue, ep.low):
            entries = list(q)
            q.clear()
            for job, att in entries:
                if job.status == IN_QUEUE and job.attempt == att and not job.deleted:
                    self._delete(job)
                    n += 1
        return n

    def health(self, endpoint_id: str) -> dict[str, Any]:
        ep = self.endpoint(endpoint_id)
        c = dict.fromkeys(WORKER_STATES, 0)
        for w in ep.workers.values():
            c[w.state] += 1
        return {
            "jobs": {
                "completed": ep.completed,
                "failed": ep.failed,
                "inProgress": ep.in_progress,
                "inQueue": ep.in_queue,
                "retried": ep.retried,
            },
            "workers": {
                "idle": c[IDLE],
                "initializing": c[INITIALIZING],
                "ready": c[IDLE],
                "running": c[RUNNING],
                "throttled": c[THROTTLED],
                "unhealthy": c[UNHEALTHY],
            },
        }

    def take_chunks(self, job: SimJob, *, peek: bool = False) -> tuple[str, list[dict[str, Any]]]:
        """Hand out the chunks not handed out yet, with the status at the same instant.
        With ``peek`` the chunks are shown but stay pending (an answer that will not reach
        the client, e.g. a dropped connection, must not consume them)."""
        if job.pending:
            out = [{"output": c} for c in job.pending]
            if not peek:
                job.chunks_sent += len(job.pending)
                job.pending = []
        else:
            out = []
        return job.status, out

    def set_job_ttl(self, job: SimJob, ttl_ms: int) -> None:
        """``/status?ttl=``: how long the result is kept (see module docstring)."""
        seconds = max(0.0, ttl_ms / 1000)
        if job.status in TERMINAL:
            self.cancel_event(job.end_ev)
            job.end_ev = self.schedule(seconds, self._on_expire, job, job.attempt)
        else:
            job.retention_s = seconds

    # ------------------------------------------------------------------ introspection

    def workers(self, endpoint_id: str) -> list[dict[str, Any]]:
        """Workers in the shape of REST v2's worker list (plus the job ids they hold)."""
        ep = self.endpoint(endpoint_id)
        now = self.now()
        return [
            {
                "id": w.id,
                "status": w.state.upper(),
                "uptimeSeconds": int(now - w.created_at),
                "jobs": [j.id for j in w.jobs],
            }
            for w in ep.workers.values()
        ]

    def logs(self, endpoint_id: str, worker_id: str | None = None, tail: int = 100) -> list[dict[str, Any]]:
        ep = self.endpoint(endpoint_id)
        if worker_id is None:
            lines = list(ep.logs)
        else:
            w = ep.workers.get(worker_id)
            lines = list(w.logs) if w is not None else [e for e in ep.logs if e["workerId"] == worker_id]
        return lines[-tail:] if tail > 0 else lines

    def stats(self) -> dict[str, Any]:
        return {
            "now": self.now(),
            "events_processed": self.events_processed,
            "pending_events": self.pending_events,
            "endpoints": {
                eid: {
                    "submitted": ep.submitted,
                    "cancelled": ep.cancelled,
                    "jobs_kept": len(ep.jobs),
                    "workers": len(ep.workers),
                }
                for eid, ep in self._eps.items()
            },
        }

    # ------------------------------------------------------------------ traffic

    def add_traffic(self, spec: TrafficSpec) -> None:
        """Start background arrivals (the demo's lively queues)."""
        self._traffic.append(spec)
        self.schedule(self._traffic_gap(spec), self._on_traffic, spec, self._epoch)

    def _traffic_gap(self, spec: TrafficSpec) -> float:
        t = self.now() - self._t0
        r = spec.rate * max(0.0, 1 + spec.amplitude * math.sin(2 * math.pi * t / spec.period + spec.phase))
        if r <= 1e-9:
            return max(0.5, spec.period / 40)
        return self._rng_traffic.expovariate(r)

    def _on_traffic(self, spec: TrafficSpec, epoch: int) -> None:
        if epoch != self._epoch or spec.endpoint not in self._eps:
            return
        try:
            self.submit(spec.endpoint, spec.body(self._rng_traffic))
        except SimError:
            pass
        self.schedule(self._traffic_gap(spec), self._on_traffic, spec, epoch)

    # ------------------------------------------------------------------ internals: jobs

    def _enqueue(self, ep: SimEndpoint, job: SimJob) -> None:
        job.status = IN_QUEUE
        job.queued_at = self.now()
        entry = (job, job.attempt)
        if job.low_priority:
            ep.low.append(entry)
            ep.in_queue_low += 1
        else:
            ep.queue.append(entry)
        ep.in_queue += 1
        self._notify(job)
        self._want_dispatch(ep)
        if not job.low_priority:
            self._autoscale(ep)

    def _unqueue(self, ep: SimEndpoint, job: SimJob) -> None:
        ep.in_queue -= 1
        if job.low_priority:
            ep.in_queue_low -= 1

    def _pop(self, ep: SimEndpoint) -> SimJob | None:
        for q in (ep.queue, ep.low):
            while q:
                job, att = q.popleft()
                if job.status == IN_QUEUE and job.attempt == att and not job.deleted:
                    return job
        return None

    def _want_dispatch(self, ep: SimEndpoint) -> None:
        ev = ep.dispatch_ev
        if ev is not None and not ev.cancelled and not ev.fired:
            return
        ep.dispatch_ev = self.schedule(ep.cfg.pickup_delay, self._dispatch, ep)

    def _dispatch(self, ep: SimEndpoint) -> None:
        ep.dispatch_ev = None
        if self._eps.get(ep.cfg.id) is not ep or ep.in_queue == 0:
            return
        conc = ep.cfg.concurrency
        for w in list(ep.workers.values()):
            # re-checked per job: starting one can end it at once and restart/crash the worker
            while (w.state == IDLE or w.state == RUNNING) and not w.removed and len(w.jobs) < conc:
                job = self._pop(ep)
                if job is None:
                    return
                self._start(ep, job, w)

    def _start(self, ep: SimEndpoint, job: SimJob, w: SimWorker) -> None:
        now = self.now()
        self._unqueue(ep, job)
        job.status = IN_PROGRESS
        job.started_at = now
        job.worker = w
        job.worker_id = w.id
        ep.in_progress += 1
        w.jobs.append(job)
        if w.state == IDLE:
            w.state = RUNNING
            w.gen += 1
        try:
            job.steps = plan(job.input, handler=ep.cfg.handler, defaults=ep.cfg.defaults,
                             job_id=job.id, worker_id=w.id)  # fmt: skip
        except Exception as exc:  # the mock handler itself must never break the engine
            err = handler_error(type(exc).__name__, str(exc), worker_id=w.id)
            job.steps = [Step(0.0, "fail", MISSING, err)]
        job.step_i = 0
        job.exec_ev = self.schedule(job.exec_timeout_s, self._on_exec_timeout, job, job.attempt)
        self._log(ep, w, "info", f"job {job.id} started", job.id)
        self._notify(job)
        self._run_steps(job, job.attempt)

    def _run_steps(self, job: SimJob, attempt: int) -> None:
        if job.status != IN_PROGRESS or job.attempt != attempt:
            return
        job.step_ev = None
        steps = job.steps
        start = job.started_at
        assert start is not None
        now = self.now()
        while job.step_i < len(steps):
            st = steps[job.step_i]
            when = start + st.at
            if when > now:
                job.step_ev = self.schedule_at(when, self._run_steps, job, attempt)
                return
            job.step_i += 1
            self._do_step(job, st)
            if job.status != IN_PROGRESS or job.attempt != attempt:
                return

    def _do_step(self, job: SimJob, st: Step) -> None:
        ep = self._eps[job.endpoint_id]
        w = job.worker
        kind = st.kind
        if kind == "chunk":
            job.pending.append(st.value)
            self._notify(job)
        elif kind == "progress":
            job.output = st.value
            self._notify(job)
        elif kind == "log":
            level, message = st.value
            if w is not None:
                self._log(ep, w, level, message, job.id)
        elif kind == "complete" or kind == "fail":
            status = COMPLETED if kind == "complete" else FAILED
            self._finish(job, status, st.value, st.error)
            if st.refresh and w is not None:
                self._refresh(ep, w)
        elif kind == "crash":
            if w is not None:
                self._crash(ep, w)
        # "hang": the result never arrives; the execution timeout ends the job

    def _finish(self, job: SimJob, status: str, output: Any = _KEEP, error: str | None = None) -> None:
        ep = self._eps[job.endpoint_id]
        self.cancel_event(job.step_ev)
        self.cancel_event(job.exec_ev)
        job.step_ev = job.exec_ev = None
        was = job.status
        if was == IN_QUEUE:
            self._unqueue(ep, job)
        elif was == IN_PROGRESS:
            ep.in_progress -= 1
        job.status = status
        job.ended_at = self.now()
        if output is not _KEEP:
            job.output = output
        job.error = error
        if status == COMPLETED:
            ep.completed += 1
        elif status == CANCELLED:
            ep.cancelled += 1
        else:
            ep.failed += 1
        if was == IN_PROGRESS:
            w = job.worker
            if w is not None:
                self._log(ep, w, "info" if status == COMPLETED else "error",
                          f"job {job.id} {status}", job.id)  # fmt: skip
            self._release(ep, job)
        self.cancel_event(job.end_ev)
        job.end_ev = self.schedule(job.retention_s, self._on_expire, job, job.attempt)
        self._notify(job)

    def _release(self, ep: SimEndpoint, job: SimJob) -> None:
        """Take ``job`` off its worker; an emptied running worker becomes idle."""
        w = job.worker
        if w is None:
            return
        try:
            w.jobs.remove(job)
        except ValueError:
            return
        if not w.jobs and w.state == RUNNING:
            if w.refresh_pending:
                self._restart(ep, w)
            else:
                self._became_idle(ep, w)
        if ep.in_queue:
            self._want_dispatch(ep)

    def _delete(self, job: SimJob) -> None:
        if job.deleted:
            return
        ep = self._eps.get(job.endpoint_id)
        if ep is not None:
            if job.status == IN_QUEUE:
                self._unqueue(ep, job)
            elif job.status == IN_PROGRESS:
                ep.in_progress -= 1
                self._release(ep, job)
            ep.jobs.pop(job.id, None)
        for ev in (job.step_ev, job.exec_ev, job.ttl_ev, job.end_ev):
            self.cancel_event(ev)
        job.deleted = True
        self._notify(job)

    def _on_ttl(self, job: SimJob, attempt: int) -> None:
        if job.deleted or job.attempt != attempt:
            return
        if job.status == IN_QUEUE:
            self._finish(job, TIMED_OUT)
            self.cancel_event(job.end_ev)
            job.end_ev = self.schedule(EXPIRED_IN_QUEUE_KEEP_S, self._on_expire, job, job.attempt)
        else:
            if job.status == IN_PROGRESS and job.worker is not None:
                self._log(self._eps[job.endpoint_id], job.worker, "error",
                          f"job {job.id} reached its TTL; stopping it", job.id)  # fmt: skip
            self._delete(job)

    def _on_expire(self, job: SimJob, attempt: int) -> None:
        if job.attempt == attempt and job.status in TERMINAL:
            self._delete(job)

    def _on_exec_timeout(self, job: SimJob, attempt: int) -> None:
        if job.attempt == attempt and job.status == IN_PROGRESS:
            self._finish(job, TIMED_OUT)

    # ------------------------------------------------------------------ internals: workers

    def _new_worker_id(self) -> str:
        r = self._rng_ids
        return "".join(r.choice(_ID_CHARS) for _ in range(14))

    def _live(self, ep: SimEndpoint) -> list[SimWorker]:
        return [w for w in ep.workers.values() if w.state != UNHEALTHY]

    def _autoscale(self, ep: SimEndpoint) -> None:
        cfg = ep.cfg
        live = self._live(ep)
        n = len(live)
        spawn = max(0, cfg.workers_min - n)
        demand = ep.in_queue - ep.in_queue_low
        if demand > 0 and n < cfg.workers_max:
            free = sum(max(0, cfg.concurrency - len(w.jobs)) for w in live)
            short = demand - free
            if short > 0:
                spawn = max(spawn, min(math.ceil(short / cfg.concurrency), cfg.workers_max - n))
        for _ in range(spawn):
            self._spawn(ep)

    def _spawn(self, ep: SimEndpoint, *, warm: bool = False) -> SimWorker:
        w = SimWorker(self._new_worker_id(), ep.cfg.id, self.now())
        ep.workers[w.id] = w
        if warm:
            w.ready_at = self.now()
            self._log(ep, w, "info", "worker started (warm)")
            self._became_idle(ep, w)
            return w
        if ep.cfg.throttle_chance > 0 and self._rng.random() < ep.cfg.throttle_chance:
            w.state = THROTTLED
            w.gen += 1
            self._log(ep, w, "warn", "worker throttled: host short of capacity")
            self.schedule(ep.cfg.throttle_time, self._on_unthrottle, ep, w, w.gen)
        else:
            self._initialize(ep, w)
        return w

    def _initialize(self, ep: SimEndpoint, w: SimWorker) -> None:
        w.state = INITIALIZING
        w.gen += 1
        cold = ep.cfg.cold_start
        if ep.cfg.cold_start_jitter > 0:
            cold += self._rng.uniform(0, ep.cfg.cold_start_jitter)
        self._log(ep, w, "info", f"Pulling image {SIM_IMAGE}")
        self._log(ep, w, "info", "worker initializing (pulling image, loading)")
        self.schedule(cold, self._on_ready, ep, w, w.gen)

    def _on_unthrottle(self, ep: SimEndpoint, w: SimWorker, gen: int) -> None:
        if w.removed or w.gen != gen:
            return
        self._initialize(ep, w)

    def _on_ready(self, ep: SimEndpoint, w: SimWorker, gen: int) -> None:
        if w.removed or w.gen != gen:
            return
        w.ready_at = self.now()
        w.refresh_pending = False
        self._log(ep, w, "info", f"--- Starting Serverless Worker |  Version {RUNPOD_VERSION} ---",
                  source="container")  # fmt: skip
        self._log(ep, w, "info", "worker ready")
        self._became_idle(ep, w)
        if ep.in_queue:
            self._want_dispatch(ep)

    def _became_idle(self, ep: SimEndpoint, w: SimWorker) -> None:
        w.state = IDLE
        w.gen += 1
        self.schedule(ep.cfg.idle_timeout, self._on_idle_timeout, ep, w, w.gen)

    def _on_idle_timeout(self, ep: SimEndpoint, w: SimWorker, gen: int) -> None:
        if w.removed or w.gen != gen or w.state != IDLE or w.jobs:
            return
        if len(self._live(ep)) > ep.cfg.workers_min:
            self._log(ep, w, "info", "worker stopped after idle timeout")
            self._remove_worker(ep, w)

    def _remove_worker(self, ep: SimEndpoint, w: SimWorker) -> None:
        if w.removed:
            return
        w.removed = True
        w.gen += 1
        ep.workers.pop(w.id, None)

    def _on_unhealthy_over(self, ep: SimEndpoint, w: SimWorker, gen: int) -> None:
        if w.gen == gen:
            self._log(ep, w, "info", "unhealthy worker removed")
            self._remove_worker(ep, w)

    def _crash(self, ep: SimEndpoint, w: SimWorker) -> None:
        self._log(ep, w, "error", "worker process exited with code 1")
        w.state = UNHEALTHY
        w.gen += 1
        for job in list(w.jobs):
            self._finish(job, FAILED, _KEEP, CRASH_ERROR)
        w.jobs.clear()
        self.schedule(ep.cfg.unhealthy_time, self._on_unhealthy_over, ep, w, w.gen)
        self._autoscale(ep)

    def _refresh(self, ep: SimEndpoint, w: SimWorker) -> None:
        """refresh_worker: restart the worker once its current jobs are done."""
        if w.removed or w.state == UNHEALTHY:
            return
        w.refresh_pending = True
        if not w.jobs:
            self._restart(ep, w)

    def _restart(self, ep: SimEndpoint, w: SimWorker) -> None:
        self._log(ep, w, "info", "worker restarting (refresh_worker)")
        self._initialize(ep, w)

    def _log(self, ep: SimEndpoint, w: SimWorker, level: str, message: str,
             job_id: str | None = None, *, source: str | None = None) -> None:  # fmt: skip
        """One log line of worker ``w``. ``source`` is REST v2's: "container" (what the
        handler process prints; by default every line about a job) or "system" (the pod's
        lifecycle). ``seq`` orders lines over the whole engine (SSE event ids)."""
        entry = {"ts": self.wall(), "level": level, "message": message,
                 "workerId": w.id, "jobId": job_id, "seq": next(self._log_seq),
                 "source": source or ("container" if job_id else "system")}  # fmt: skip
        w.logs.append(entry)
        ep.logs.append(entry)
        if ep.log_waiters:
            self._wake_logs(ep)

    @staticmethod
    def _wake_logs(ep: SimEndpoint) -> None:
        ws = ep.log_waiters
        if ws:
            ep.log_waiters = []
            for f in ws:
                if not f.done():
                    f.set_result(None)
