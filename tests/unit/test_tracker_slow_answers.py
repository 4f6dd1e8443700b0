"""The tracker's polling rate when answers are slow (a submit burst, a loaded machine).

A bound on requests in flight bounds the rate only through the answer time: with 8 in
flight and answers taking 0.5 s, the tracker could ask ~16 times a second, fewer than jobs
finished, and the finishes piled up in its ready queue (bench/README.md section 3).
"""

from __future__ import annotations

from rpdash.core.clock import FakeClock
from rpdash.services.tracking import JobTracker
from tests.unit.test_services_fakes import FakeAPI, Recorder
from tests.unit.test_services_tracker import submit, terminal_times


async def test_finishes_are_seen_on_time_when_every_answer_takes_half_a_second(
    clock: FakeClock,
) -> None:
    """2,000 jobs of 1-2 s on 50 workers (~33 finishes/s); every answer takes 0.5 s. The
    tracker with its default bound still sees 95 % of the finishes within 5 s."""
    api = FakeAPI(clock, workers=50, exec_time=lambda r, i: r.uniform(1, 2), seed=7, latency=0.5)
    rec = Recorder(clock)
    tr = JobTracker(api, None, rec, clock, interval=2.0)
    tr.start()
    jobs = [submit(api, tr, clock) for _ in range(2000)]
    while tr.tracked and clock.now() < 1000 + 300:
        await clock.advance(0.5, step=0.05)
    seen = terminal_times(rec)
    assert len(seen) == 2000
    lags = sorted(seen[j.job_id] - api.jobs[j.job_id].finished for j in jobs)
    assert lags[int(0.95 * len(lags))] <= 5.0
    assert api.throttled == 0
    assert api.calls["status"] / 2000 <= 3.0
    await tr.stop()
