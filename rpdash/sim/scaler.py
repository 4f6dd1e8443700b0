"""Scaler policies: how many workers an endpoint wants now (runpod-api.md 5.2,
endpoint-configurations.mdx "Auto-scaling type").

- ``QUEUE_DELAY``: a worker is added for every ``concurrency`` normal jobs that have waited
  ``scaler_value`` seconds or more and find no free slot. (RunPod's default is 4 s; a bare
  ``EndpointConfig`` uses 0, i.e. at once, so scripted tests stay short.)
- ``REQUEST_COUNT``: ``ceil((inQueue + inProgress) / scaler_value)`` workers, low-priority
  queued jobs left out (they never cause a scale-up).
- Both are bounded below by ``workers_min`` and above by ``workers_max``; in a spike (the
  policy wants more than ``workers_max``) up to ``extra_workers`` more may start once the
  image is cached, i.e. once a worker of the current release has started (our choice of
  "cached"). Every endpoint together stays within the account's worker cap.

Pure functions over :class:`~rpdash.sim.model.SimEndpoint`; the worker pool acts on them.
"""

from __future__ import annotations

import math

from rpdash.sim.model import IN_QUEUE, UNHEALTHY, SimEndpoint, SimWorker


def live_workers(ep: SimEndpoint) -> list[SimWorker]:
    """Workers that count toward limits: every state but UNHEALTHY (a crashed worker)."""
    return [w for w in ep.workers.values() if w.state != UNHEALTHY]


def free_slots(ep: SimEndpoint, live: list[SimWorker]) -> int:
    conc = ep.cfg.concurrency
    return sum(max(0, conc - len(w.jobs) - len(w.held)) for w in live)


def waited(ep: SimEndpoint, now: float) -> tuple[int, float | None]:
    """Normal queued jobs that waited at least the queue delay, and when the next one will
    (None if none is left). The queue is in queueing order, so they form its head."""
    delay = ep.cfg.scaler_value
    demand = ep.in_queue - ep.in_queue_low
    if delay <= 0:
        return demand, None
    n = 0
    for job, att in ep.queue:
        if job.status != IN_QUEUE or job.attempt != att or job.deleted:
            continue
        due = job.queued_at + delay
        if due > now + 1e-9:
            return n, due
        n += 1
    return n, None


def wanted(ep: SimEndpoint, live: list[SimWorker], now: float) -> tuple[int, float | None]:
    """How many live workers the policy wants (before bounds), and when to look again."""
    cfg = ep.cfg
    n = len(live)
    if cfg.scaler_type == "REQUEST_COUNT":
        demand = ep.in_queue - ep.in_queue_low + ep.in_progress
        return math.ceil(demand / cfg.scaler_value), None
    count, again = waited(ep, now)
    short = count - free_slots(ep, live)
    if short <= 0:
        return n, again
    return n + math.ceil(short / cfg.concurrency), again


def upper_bound(ep: SimEndpoint, want: int, image_cached: bool) -> int:
    """``workers_max``, or up to ``extra_workers`` more in a spike with a cached image."""
    cfg = ep.cfg
    if want > cfg.workers_max and image_cached and cfg.extra_workers:
        return cfg.workers_max + cfg.extra_workers
    return cfg.workers_max


def to_start(ep: SimEndpoint, now: float, account_room: int, image_cached: bool) -> tuple[int, float | None]:
    """Workers to start now on ``ep`` (within the account's ``account_room``), and when the
    queue-delay policy wants to look again."""
    live = live_workers(ep)
    n = len(live)
    want, again = wanted(ep, live, now)
    want = max(want, ep.cfg.workers_min)
    top = upper_bound(ep, want, image_cached)
    return max(0, min(min(want, top) - n, account_room)), again
