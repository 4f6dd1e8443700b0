"""A queue-position strategy that assumes nothing about the order workers pick jobs in.

For endpoints whose workers take jobs in batches, at random, or by some priority of their
own: no lanes, no health inference, no probes. Every live job is checked on its own
schedule: a queued job every ``interval`` at first, then at steps that grow with the time
since its status last changed; a started job around its expected completion. Nothing ever
waits longer than ``max_step`` (5 × ``interval`` by default), so a finish is shown at most
``max_step`` after it happens (plus any wait for the request budget). The price is more
requests than ``FifoPositions`` on a deep FIFO queue.
"""

from __future__ import annotations

from rpdash.core.models import Health
from rpdash.core.records import JobRecord
from rpdash.services.tracking.lanes import Lane, TrackedJob
from rpdash.services.tracking.positions import TrackerHost
from rpdash.services.tracking.scheduler import Scheduler


class UnorderedPositions:
    """Infers nothing: each job is checked at least every ``max_step``."""

    host: TrackerHost
    sched: Scheduler

    def bind(self, host: TrackerHost) -> None:
        self.host = host
        self.sched = host.scheduler

    def add(self, j: TrackedJob) -> None:
        j.ordered = False  # no FIFO place

    def remove(self, j: TrackedJob) -> None:
        pass

    def requeued(self, j: TrackedJob) -> None:
        pass

    def due(
        self, j: TrackedJob, rec: JobRecord, now: float, *, first: bool, visible: bool
    ) -> float:
        sched = self.sched
        if first:
            return now
        if not j.started:
            return sched.age_due(j, now, visible)
        last = j.last_poll if j.last_poll is not None else now
        cap = sched.interval if visible else sched.max_step
        return min(sched.completion_due(j, now), last + cap)

    def observed(self, j: TrackedJob, rec: JobRecord, t0: float, now: float, probe: bool) -> None:
        pass

    def defer(self, j: TrackedJob, now: float) -> bool:
        return False

    def lane_work(self, lane: Lane, now: float) -> float | None:
        return None

    def note_health(self, lane: Lane, health: Health) -> None:
        pass
