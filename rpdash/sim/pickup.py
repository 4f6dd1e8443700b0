"""Pickup order: which queued job a free worker takes next (``EndpointConfig.pickup``).

RunPod documents none of this; FIFO is what its docs imply ("queue"), the others are
knobs so a client can be tested against jobs that do not start in submission order:

- ``fifo``: oldest first (normal-priority jobs before every low-priority one).
- ``batch``: FIFO, but a worker with a free slot takes up to ``pickup_batch`` jobs at
  once (as runpod-python's job-take asks for several); the ones beyond its free slots
  wait on the worker, already IN_PROGRESS, and run in turn. Their ``executionTime`` and
  execution timeout count from the pickup.
- ``random``: any queued job, uniformly (normal-priority jobs still first).
"""

from __future__ import annotations

import random

from rpdash.sim.model import IN_QUEUE, SimEndpoint, SimJob


def _valid(job: SimJob, att: int) -> bool:
    return job.status == IN_QUEUE and job.attempt == att and not job.deleted


def pop_job(ep: SimEndpoint, rng: random.Random) -> SimJob | None:
    """Take the next job off ``ep``'s queue in its pickup order (None if none waits)."""
    for q in (ep.queue, ep.low):
        if ep.cfg.pickup == "random" and len(q) > 1:
            while q:
                i = rng.randrange(len(q))
                job, att = q[i]
                del q[i]
                if _valid(job, att):
                    return job
            continue
        while q:
            job, att = q.popleft()
            if _valid(job, att):
                return job
    return None


def take_count(ep: SimEndpoint, running: int, held: int) -> int:
    """How many jobs a worker running ``running`` and holding ``held`` takes now."""
    free = ep.cfg.concurrency - running
    if free <= 0 or held:
        return 0
    if ep.cfg.pickup == "batch":
        return max(free, ep.cfg.pickup_batch)
    return free
