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
- Pickup order FIFO by default (pickup.py: ``batch``, ``random``); lowPriority jobs wait
  behind every normal job and never cause a scale-up (they run when a worker is idle:
  min workers, or workers started for normal jobs).
- Autoscaling (scaler.py): QUEUE_DELAY (default; ``scaler_value`` 0 = at once, RunPod's
  default is 4 s) or REQUEST_COUNT, within ``workers_min``..``workers_max`` (plus
  ``extra_workers`` in a spike once the image is cached) and the account's worker cap
  (``account_max_workers``, 5 by default) over all endpoints. ``workers_min`` workers are
  kept, and at start-up they are warm (idle) when ``prewarm``. A new worker is THROTTLED
  while the endpoint's GPU capacity is short (``capacity_short_for``,
  :meth:`set_capacity`), or with probability ``throttle_chance`` for ``throttle_time`` s,
  then initializing for ``cold_start`` (+ uniform jitter) s, then idle. An idle worker
  above ``workers_min`` is removed after ``idle_timeout`` s. Health ``ready`` equals
  ``idle`` (as in every old sample).
- Incidents (incidents.py): a worker that dies mid-job (mock_crash) shows as
  ``unhealthy`` for ``unhealthy_time`` s and is then removed; its jobs go back to the
  queue (IN_QUEUE, ``retries`` + 1, ``health.jobs.retried`` + 1) and run again, as often
  as the crash repeats. Workers failing their start-up checks (``start_failure``, a bad
  release) turn unhealthy before taking a job. Repeated unhealthy workers halve
  ``workers_max``; 3 / 7 days without requests cut it to 2 / 0. Unhealthy workers do not
  count toward ``workers_max``, so a replacement starts at once if the queue needs one.
- Rolling releases (releases.py), webhooks (webhooks.py), stream chunk splitting and
  batching (streams.py), late progress updates (``late_progress_chance``, queue.py).
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
  chunks cleared, back to the end of the queue; ``health.jobs.retried`` counts retries
  (by /retry and by the platform after a worker's death).
- Purge: IN_QUEUE jobs are deleted (404 afterwards); running jobs are untouched.
- Health counters ``completed``/``failed``/``retried`` are cumulative since the endpoint was
  created (not a rolling window); ``failed`` counts FAILED and TIMED_OUT (also TTL expiry in
  the queue); CANCELLED jobs and jobs deleted by TTL while running are in neither.
- Stream: each call hands out only chunks not handed out before (several readers split
  them); the status in the same answer is read at the same instant, so once a terminal
  status is returned with an empty batch every chunk has been delivered (with
  ``stream_batch_max`` chunks may still follow a terminal answer that carried some).
  Items over 1 MB are split (streams.py). Non-generator handlers never produce chunks.
- Policy values out of the documented ranges (executionTimeout 5 s..7 d, ttl 10 s..7 d) are
  refused with 400 (``strict_policy=False`` lifts the ranges, for tests and demos).
  Unknown top-level body keys and unknown policy keys are ignored.
- The older docs' /run queue-size limit applies when rate limits are on: /run is refused
  with 429 (Retry-After 10) while the queue holds more than 50 jobs and more than
  workersMax x 500 jobs (/runsync is not limited this way).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from dataclasses import replace
from typing import Any

from rpdash.core.clock import Clock
from rpdash.sim.errors import BadRequestError, NotFoundError, QueueFullError, SimError
from rpdash.sim.events import EventLoop
from rpdash.sim.jobs import JobRequests
from rpdash.sim.limits import RateLimiter
from rpdash.sim.model import (
    ACCOUNT_MAX_WORKERS_DEFAULT, CANCELLED, COMPLETED, CRASH_ERROR, FAILED, IN_PROGRESS, IN_QUEUE, SIM_IMAGE, TERMINAL,
    TIMED_OUT, EndpointConfig, SimEndpoint, SimJob, SimWorker, TrafficSpec,
)  # fmt: skip
from rpdash.sim.incidents import Incidents
from rpdash.sim.pool import WorkerPool
from rpdash.sim.queue import JobQueue
from rpdash.sim.releases import Releases
from rpdash.sim.retention import Retention
from rpdash.sim.webhooks import Webhooks

__all__ = [
    "CANCELLED", "COMPLETED", "CRASH_ERROR", "FAILED", "IN_PROGRESS", "IN_QUEUE", "SIM_IMAGE",
    "TERMINAL", "TIMED_OUT", "BadRequestError", "EndpointConfig", "Engine", "NotFoundError",
    "QueueFullError", "SimEndpoint", "SimError", "SimJob", "SimWorker", "TrafficSpec",
]  # fmt: skip


class Engine(EventLoop, JobRequests, JobQueue, Retention, WorkerPool, Incidents, Releases,
             Webhooks):  # fmt: skip
    """The simulated data plane: the facade over the event loop, the job queue, retention,
    the worker pool and its scaler, incidents, releases and webhooks. Use it from one
    thread (the server's loop thread)."""

    def __init__(self, clock: Clock | None = None, seed: int = 0, *, rate_limits: bool = True,
                 strict_policy: bool = True,
                 account_max_workers: int = ACCOUNT_MAX_WORKERS_DEFAULT) -> None:  # fmt: skip
        super().__init__(clock)
        #: workers (every endpoint, every state but unhealthy) the account may run at once
        self.account_max_workers = account_max_workers
        self._cap_blocked: set[str] = set()
        self._rng_pickup = random.Random(f"{seed}:pickup")
        self._webhook_tasks: set[asyncio.Task[Any]] = set()
        self.seed = seed
        self.strict_policy = strict_policy
        self._rng_ids = random.Random(f"{seed}:ids")
        self._rng = random.Random(f"{seed}:workers")
        self._rng_traffic = random.Random(f"{seed}:traffic")
        self._eps: dict[str, SimEndpoint] = {}
        self._epoch = 0
        self._t0 = self.clock.now()
        self._traffic: list[TrafficSpec] = []
        self.limiter = RateLimiter(self.now, enabled=rate_limits)
        #: sequence of log lines, over all endpoints (the control plane's SSE event ids)
        self._log_seq = itertools.count(1)

    def close(self) -> None:
        """Stop the timer and wake every long poll (they answer with what they have)."""
        self._closed = True
        self.stop_timer()
        for task in list(self._webhook_tasks):
            task.cancel()
        for ep in self._eps.values():
            for job in ep.jobs.values():
                self._notify(job)
            self._wake_logs(ep)
        self._loop = None

    def reset(self) -> None:
        """Forget every endpoint, job, worker, event and traffic source."""
        for ep in list(self._eps.values()):
            self.remove_endpoint(ep.cfg.id)
        self.drop_events()
        self._traffic.clear()
        self._epoch += 1
        self.limiter.reset()

    def add_endpoint(self, cfg: EndpointConfig) -> None:
        """Add (or replace) an endpoint; ``workers_min`` workers start (warm if prewarm)."""
        if cfg.id in self._eps:
            self.remove_endpoint(cfg.id)
        ep = SimEndpoint(replace(cfg, defaults=dict(cfg.defaults)), self.now())
        self._eps[cfg.id] = ep
        for _ in range(min(cfg.workers_min, max(0, self._account_room()))):
            self._spawn(ep, warm=cfg.prewarm)
        self._arm_idle_check(ep)

    def update_endpoint(self, endpoint_id: str, **changes: Any) -> EndpointConfig:
        """Change an endpoint's settings in place (jobs stay; workers above a lowered
        ``workers_max`` stop, see ``WorkerPool._shrink``)."""
        ep = self.endpoint(endpoint_id)
        was = ep.cfg.workers_max
        ep.cfg = replace(ep.cfg, **changes)
        if ep.cfg.workers_max < was:
            self._shrink(ep)
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
        for ev in (ep.dispatch_ev, ep.scale_ev, ep.idle_ev):
            self.cancel_event(ev)
        self._wake_logs(ep)
        self._cap_blocked.discard(endpoint_id)
        if self._cap_blocked:
            self._rescale_blocked()

    def endpoint(self, endpoint_id: str) -> SimEndpoint:
        ep = self._eps.get(endpoint_id)
        if ep is None:
            raise NotFoundError(f"endpoint {endpoint_id} not found")
        return ep

    def has_endpoint(self, endpoint_id: str) -> bool:
        return endpoint_id in self._eps

    def endpoint_ids(self) -> list[str]:
        return list(self._eps)

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

    def remove_traffic(self, endpoint_id: str) -> None:
        """Stop the background arrivals on ``endpoint_id`` (its jobs stay)."""
        self._traffic = [t for t in self._traffic if t.endpoint != endpoint_id]

    def _on_traffic(self, spec: TrafficSpec, epoch: int) -> None:
        if epoch != self._epoch or spec.endpoint not in self._eps or spec not in self._traffic:
            return
        try:
            self.submit(spec.endpoint, spec.body(self._rng_traffic))
        except SimError:
            pass
        self.schedule(self._traffic_gap(spec), self._on_traffic, spec, epoch)
