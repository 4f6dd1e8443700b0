"""Workers that take queued jobs at random (the simulator's ``random`` pickup): once the
lane has seen that its FIFO order is wrong, it stops inferring starts from that order.

Before, every health sample marked the first ``N - inQueue`` jobs of the lane started (right
only for FIFO); each was polled around its expected end, answered IN_QUEUE, and the next
sample marked it again: polls spent on jobs known to be queued, while the jobs that really
ran waited for their turn.
"""

from __future__ import annotations

import heapq

from rpdash.core.clock import FakeClock
from rpdash.core.models import JobStatus
from rpdash.services.tracking import JobTracker
from tests.unit.test_services_fakes import FakeAPI, Recorder
from tests.unit.test_services_tracker import submit, terminal_times


class RandomPickupAPI(FakeAPI):
    """The FIFO fake, but a free worker takes any queued job, uniformly."""

    def advance(self, ep: str) -> None:
        e = self.endpoint(ep)
        now = self.clock.now()
        while True:
            while e.queue and len(e.running) < e.workers:
                e.queue.rotate(-self.rng.randrange(len(e.queue)))
                j = e.queue.popleft()
                j.started = max(j.submitted, e.t)
                j.status = JobStatus.IN_PROGRESS
                heapq.heappush(e.running, (j.started + j.exec_s, j.seq, j))
            if e.running and e.running[0][0] <= now:
                t, _, j = heapq.heappop(e.running)
                e.t = t
                j.finished = t
                j.status = JobStatus.COMPLETED
                j.output = "Hello World!"
                e.completed += 1
                continue
            break
        e.t = max(e.t, now)


async def test_random_pickup_finishes_are_seen_without_fifo_guesses(clock: FakeClock) -> None:
    """600 jobs of 1-2 s on 20 workers picked at random (~45 s to drain). Polling every
    queued job every ``max_step`` (10 s) is within the budget here, so finishes are seen
    within about that; the selected job at once."""
    api = RandomPickupAPI(clock, workers=20, exec_time=lambda r, i: r.uniform(1, 2), seed=3)
    rec = Recorder(clock)
    tr = JobTracker(api, None, rec, clock, interval=2.0)
    tr.start()
    jobs = [submit(api, tr, clock) for _ in range(600)]
    selected = jobs[300].job_id
    tr.select(selected)
    while tr.tracked and clock.now() < 1000 + 300:
        await clock.advance(0.5, step=0.05)
    seen = terminal_times(rec)
    assert len(seen) == 600
    lags = sorted(seen[j.job_id] - api.jobs[j.job_id].finished for j in jobs)
    p95 = lags[int(0.95 * len(lags))]
    per_job = (api.calls["status"] + api.calls["status-sync"]) / 600
    assert seen[selected] - api.jobs[selected].finished <= 1.0
    assert p95 <= 10.0, p95  # 16.6 s with the FIFO guesses
    assert per_job <= 3.5, per_job  # 5.9 with the FIFO guesses
    await tr.stop()
